package reactor

import (
	"encoding/binary"
	"time"

	"github.com/ferry-proto/ferry/codec"
	"github.com/ferry-proto/ferry/protocol"
)

// This file hands a session between connections (SPEC §5.4.7, §12): a new
// session at the handshake, a resume (with a takeover when the session is
// still attached elsewhere), and the detach when a connection ends.

// grantExpiry is the session expiry granted for a HELLO's request.
func (c *Conn) grantExpiry(requestedSec uint32) time.Duration {
	cfg := &c.srv.cfg.Sessions
	if cfg.DefaultExpiry < 0 {
		return 0
	}
	if requestedSec == 0 {
		return min(cfg.DefaultExpiry, cfg.MaxExpiry)
	}
	return min(time.Duration(requestedSec)*time.Second, cfg.MaxExpiry)
}

// startSession starts a new session for the connection and fills in the
// session fields of its WELCOME. Nothing is allocated for the session
// until it holds something (see session).
func (c *Conn) startSession(id string, h *codec.Hello, w *codec.Welcome) {
	c.srv.forgetClient(id)
	exp := c.grantExpiry(h.SessionExpiry)
	c.expirySec = uint32(min(exp/time.Second, 1<<32-1))
	w.SessionExpiry = c.expirySec
	if c.expirySec > 0 {
		sid := c.srv.sessionID(c.id)
		w.SessionID = []byte(sid)
		w.ResumeToken = c.srv.resumeToken(sid, 1)
	}
}

// session returns the connection's session, materializing it on first
// use: a reliable frame either way, or the end of a resumable connection.
// Runs on the loop.
func (c *Conn) session() *Session {
	if c.sess != nil {
		return c.sess
	}
	sess := &Session{srv: c.srv, clientID: c.ClientID(), expiry: time.Duration(c.expirySec) * time.Second, conn: c, gen: 1}
	if c.expirySec > 0 {
		sess.id = c.srv.sessionID(c.id)
	}
	c.sess = sess
	// A connection may already wait to take it over (register makes it
	// the session's waiter): the close it asked for is on its way, and
	// our detach wakes it.
	c.srv.register(sess)
	return sess
}

// beginResumeHeld handles a valid resume of a session that was never
// materialized: it is still only its first connection, holder. The holder
// is closed (SESSION_TAKEN_OVER); its detach materializes the session and
// hands it to this connection, waiting meanwhile.
func (c *Conn) beginResumeHeld(holder *Conn, id []byte, h *codec.Hello) {
	c.resuming = true
	st := &c.srv.sessions
	st.mu.Lock()
	sess := st.store.Get(string(id))
	refused := holder.sessRefused
	if sess == nil && !refused {
		if prev := st.waiters[string(id)].c; prev != nil && prev != c {
			prev.Close(protocol.CodeSessionTakenOver)
		}
		st.waiters[string(id)] = resumeWaiter{c: c, received: h.Received}
	}
	st.mu.Unlock()
	if sess == nil && refused {
		// Its connection ended and the session was not kept (past
		// MaxSessions): a new session.
		c.resuming = false
		c.sendWelcome(c.ClientID(), &codec.Hello{})
		return
	}
	if sess != nil {
		// It materialized meanwhile.
		c.resuming = false
		c.beginResume(sess, h, false)
		return
	}
	c.srv.counters.Takeovers.Add(1)
	holder.Close(protocol.CodeSessionTakenOver)
	c.schedule() // the handshake timeout still runs
}

// beginResume handles a HELLO whose token is valid for sess: it attaches
// at once, or, when another connection still holds the session, closes
// that one (SESSION_TAKEN_OVER) and waits for it to let go; its detach
// wakes this connection, which then finishes (finishResume).
func (c *Conn) beginResume(sess *Session, h *codec.Hello, prevToken bool) {
	c.sess = sess
	c.resuming = true
	sess.mu.Lock()
	sess.waitReceived, sess.waitPrev = h.Received, prevToken
	old, prev := sess.conn, sess.waiter
	sess.waiter = c
	sess.mu.Unlock()
	if prev != nil && prev != c {
		prev.Close(protocol.CodeSessionTakenOver)
	}
	if old != nil {
		c.srv.counters.Takeovers.Add(1)
		old.Close(protocol.CodeSessionTakenOver)
		c.schedule() // the handshake timeout still runs
		return
	}
	c.finishResume()
}

// replayNone is the Replay callback: the frames are found in the
// retained list, Replay only marks them for Karn's rule.
func replayNone(uint64) {}

// finishResume attaches the waiting connection once the session is free,
// answers WELCOME (SessionPresent = 1), sends the GAP_REPORT of the
// offline queue, and queues, lane by lane and in Seq order, the frames the
// peer has not received, then the messages that waited. Runs on the loop.
func (c *Conn) finishResume() {
	if !c.resuming || c.state != stateHandshake {
		return
	}
	if h := c.handoff.Swap(nil); h != nil {
		c.sess = h
	}
	if c.sess == nil {
		return
	}
	sess := c.sess
	now := c.loop.now()
	sess.mu.Lock()
	if sess.waiter != c {
		sess.mu.Unlock() // a newer connection took the session over
		c.closeWith(protocol.CodeSessionTakenOver, "session resumed elsewhere")
		return
	}
	if sess.conn != nil {
		sess.mu.Unlock() // still closing: its detach wakes us
		return
	}
	if sess.gone {
		sess.waiter = nil
		sess.mu.Unlock()
		// Expired while we waited: a new session (SPEC §5.4.7).
		c.resuming = false
		c.sess = nil
		id := c.ClientID()
		c.sendWelcome(id, &codec.Hello{})
		return
	}
	sess.conn, sess.waiter = c, nil
	// SPEC §5.4.7: a resume with the current token rotates it. One with
	// the previous token (the client never read the WELCOME that carried
	// the current one) gets the current one again, unchanged, so that any
	// number of WELCOMEs lost in a row still leave the client a token
	// that works.
	if !sess.waitPrev {
		sess.gen++
	}
	sess.waitPrev = false
	sess.prevValid = true
	c.tokenUnproven = true
	gen, received := sess.gen, sess.waitReceived
	parked := sess.parked
	sess.parked = [protocol.NumLanes - 1][]outItem{}
	var waiting []outItem
	var gap codec.GapReport
	if q := sess.offline; q != nil {
		for m, ok := q.Pop(now); ok; m, ok = q.Pop(now) {
			b := codec.GetBuffer()
			b.B = append(b.B[:0], m.Payload...)
			waiting = append(waiting, outItem{buf: b, lane: protocol.Lane(m.Lane), typ: protocol.FrameType(b.B[4]), msgs: 1, rel: true, expires: m.Expires})
		}
	}
	if sess.gapQueued && sess.offline != nil {
		gap = sess.offline.Gap()
		sess.offline.ResetGap()
	}
	sess.gapQueued = false
	sess.mu.Unlock()
	c.resuming, c.resumed = false, true
	c.srv.counters.Resumes.Add(1)

	d := sess.d
	if d != nil {
		d.ready = false
		c.initDelivery(d)
		d.probe.Outstanding(false)
		c.reasm, d.reasm = d.reasm, nil
		if c.reasm != nil {
			c.reasm.Touch(now)
		}
	}
	// SPEC §12: the peer's Received is a cumulative ACK; above the
	// highest Seq sent it is a PROTOCOL_ERROR.
	for i, r := range received {
		if d == nil {
			if r != 0 {
				c.closeWith(protocol.CodeProtocolError, "Received above the highest Seq sent")
				return
			}
			continue
		}
		ld := &d.lanes[i]
		before := ld.tx.Acked()
		if _, err := ld.tx.OnAck(r, 0, 0, now, nil); err != nil {
			c.closeWith(protocol.CodeProtocolError, "Received above the highest Seq sent")
			return
		}
		c.releaseAcked(ld, before)
		if len(d.confirms.waits) > 0 {
			c.startConfirmTimers(d, protocol.Lane(i+1), now)
		}
	}
	w := c.welcome(c.ClientID())
	w.SessionPresent = true
	w.SessionExpiry = uint32(sess.expiry / time.Second)
	w.SessionID = []byte(sess.id)
	w.ResumeToken = c.srv.resumeToken(sess.id, gen)
	if d != nil {
		for i := range d.lanes {
			w.Received[i] = d.lanes[i].rx.Cumulative()
		}
	}
	c.ctrl = codec.AppendWelcome(c.ctrl, &w)
	c.ctr.FramesOut[protocol.FrameWelcome].Add(1)
	if gap != (codec.GapReport{}) {
		g := codec.Frame{Type: protocol.FrameGapReport, Payload: gap.Append(nil)}
		c.ctrl = g.Append(c.ctrl)
		c.ctr.FramesOut[protocol.FrameGapReport].Add(1)
	}
	if d != nil {
		for i := range d.lanes {
			ld := &d.lanes[i]
			q := c.lane(protocol.Lane(i + 1))
			for j := range ld.unacked {
				r := &ld.unacked[j]
				switch {
				case expired(r.expires, now):
					c.placeholder(r)
				case protocol.Flags(r.buf.B[5]).Has(protocol.FlagCompressed) && !c.compress,
					r.expires != 0 && !protocol.Flags(r.buf.B[5]).Has(protocol.FlagFragment):
					c.reencode(r, now)
				}
				q.push(outItem{buf: r.buf, lane: protocol.Lane(i + 1), typ: protocol.FrameType(r.buf.B[4]), msgs: 1, rel: true, replay: true})
				c.ctr.Replayed.Add(1)
			}
			ld.tx.Replay(replayNone)
			if len(ld.unacked) > 0 {
				c.armProbe(d, now)
			}
		}
	}
	for i := range parked {
		for _, it := range parked[i] {
			c.requeue(it)
		}
	}
	for _, it := range waiting {
		c.requeue(it)
	}
	c.open()
}

// placeholder replaces a retained frame whose message expired with the
// stand-in SPEC §12.8 replays for it: same type, lane, Seq and fixed
// fields, RELIABLE and EXPIRY with TTL 0, no payload. The receiver's
// sequence has no gap, and nothing is delivered late.
func (c *Conn) placeholder(r *retained) {
	dec := codec.NewDecoder()
	dec.MaxFrameSize, dec.Compression = protocol.HardMaxFrameSize, true
	f, _, err := dec.Decode(r.buf.B)
	if err != nil {
		return // cannot happen: we encoded it
	}
	p := codec.Frame{Type: f.Type, Lane: f.Lane, Route: f.Route, Corr: f.Corr, Name: f.Name, Seq: f.Seq,
		Flags: protocol.FlagReliable | protocol.FlagExpiry | f.Flags&protocol.FlagResponse}
	b := codec.GetBuffer()
	b.B = p.Append(b.B[:0])
	codec.PutBuffer(r.buf)
	r.buf, r.expires = b, 0
	c.ctr.Drops[DropExpired].Add(1)
}

// reencode adapts a retained frame to the new connection before it is
// replayed (SPEC §12.8): decompressed when compression is now off, and an
// unfragmented message's TTL set to what remains.
func (c *Conn) reencode(r *retained, now int64) {
	b := r.buf.B
	if protocol.Flags(b[5]).Has(protocol.FlagCompressed) && !c.compress {
		dec := codec.NewDecoder()
		dec.MaxFrameSize, dec.Compression = protocol.HardMaxFrameSize, true
		f, _, err := dec.Decode(b)
		if err != nil {
			return
		}
		plain, err := codec.AppendDecompressed(nil, f.Payload, protocol.HardMaxMessageSize)
		if err != nil {
			return
		}
		f.Flags &^= protocol.FlagCompressed
		f.Payload = plain
		nb := codec.GetBuffer()
		nb.B = f.Append(nb.B[:0])
		codec.PutBuffer(r.buf)
		r.buf = nb
		b = nb.B
	}
	if r.expires != 0 && !protocol.Flags(b[5]).Has(protocol.FlagFragment) {
		ms := (r.expires - now) / int64(time.Millisecond)
		binary.BigEndian.PutUint32(b[ttlOffset(protocol.FrameType(b[4]), b):], uint32(max(ms, 1)))
	}
}

// proveToken retires the previous resume token: a frame arrived after the
// WELCOME that carried the new one, so the client has it.
func (c *Conn) proveToken() {
	c.tokenUnproven = false
	sess := c.sess
	sess.mu.Lock()
	sess.prevValid = false
	sess.mu.Unlock()
}

// requeue puts an item that waited in the session into its lane.
func (c *Conn) requeue(it outItem) {
	n := int64(it.remaining())
	c.queued.Add(n)
	c.lane(c.queueOf(it.lane)).push(it)
	c.ctr.Queued[it.lane].Add(n)
}

// detach runs when the connection ends: the session keeps what must
// survive (unacknowledged frames, unsent reliable items, reliable partial
// messages) for a resume, or is discarded when it cannot be resumed.
// Unreliable items are dropped and counted. Runs on the loop, from onClosed.
func (c *Conn) detach(pending []outItem) {
	if c.resuming {
		c.stopWaiting()
		return
	}
	if c.sess == nil && c.expirySec == 0 {
		return
	}
	sess := c.session() // a resumable session is kept from here on
	c.sess = nil
	now := c.loop.now()
	if d := sess.d; d != nil {
		if c.reasm != nil {
			for i := range d.relPart {
				if !d.relPart[i] {
					c.reasm.Discard(protocol.Lane(i + 1))
				}
			}
			if c.reasm.Partial() == 0 {
				c.reasm = nil
			}
		}
		d.reasm, c.reasm = c.reasm, nil
		d.probe.Outstanding(false)
	}
	var parked [protocol.NumLanes - 1][]outItem
	for l := range c.laneSlice() {
		q := &c.lanes[l]
		for !q.empty() {
			it := q.pop()
			n := it.settled()
			c.ctr.Queued[it.lane].Add(-n)
			c.queued.Add(-n)
			it.unsettled = 0
			c.park(&parked, *it)
			*it = outItem{}
		}
	}
	for i := range pending {
		c.queued.Add(-int64(pending[i].remaining()))
		c.park(&parked, pending[i])
	}
	sess.mu.Lock()
	sess.conn = nil
	sess.detachAt = now
	for i := range parked {
		sess.parked[i] = append(sess.parked[i], parked[i]...)
	}
	w := sess.waiter
	gone := sess.gone || sess.expiry == 0
	if sess.gone {
		c.ctr.Drops[DropSessionExpired].Add(uint64(sess.releaseLocked()))
	}
	sess.mu.Unlock()
	if w != nil {
		w.wakeResume(sess)
	} else if gone {
		st := &c.srv.sessions
		st.mu.Lock()
		c.srv.discardLocked(sess)
		st.mu.Unlock()
	}
}

// stopWaiting withdraws a connection that waited to resume a session.
func (c *Conn) stopWaiting() {
	if sess := c.sess; sess != nil {
		sess.mu.Lock()
		if sess.waiter == c {
			sess.waiter = nil
		}
		sess.mu.Unlock()
		c.sess = nil
	}
	if sess := c.handoff.Swap(nil); sess != nil {
		sess.mu.Lock()
		if sess.waiter == c {
			sess.waiter = nil
		}
		sess.mu.Unlock()
	}
	st := &c.srv.sessions
	st.mu.Lock()
	for id, w := range st.waiters {
		if w.c == c {
			delete(st.waiters, id)
		}
	}
	st.mu.Unlock()
}

// park keeps a reliable item for the session; anything else is dropped
// and counted. A replay item's bytes belong to the retained list: it is
// simply forgotten (it is replayed again from there).
func (c *Conn) park(parked *[protocol.NumLanes - 1][]outItem, it outItem) {
	switch {
	case it.replay:
	case it.rel && it.lane >= protocol.LaneInteractive:
		parked[it.lane-1] = append(parked[it.lane-1], it)
	default:
		c.drop(&it, DropClosed)
	}
}

// wakeResume hands sess to a connection waiting to resume it and wakes
// it. Safe from any goroutine.
func (c *Conn) wakeResume(sess *Session) {
	c.handoff.Store(sess)
	c.wakeLoop()
}
