package client

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/ferry-proto/ferry/codec"
	"github.com/ferry-proto/ferry/codec/rtt"
	"github.com/ferry-proto/ferry/codec/seqwin"
	"github.com/ferry-proto/ferry/protocol"
)

// Write scheduling (SPEC §8.2): lane 0 first, then lanes 1-3 by deficit
// round robin with weights 4:2:1, at most writeBudget bytes of lanes 1-3
// per write so that control frames never wait long behind bulk data.
const (
	quantum     = protocol.DefaultFragmentSize
	writeBudget = 256 << 10
	// maxFragHeader is the largest header of a fragment: 7 + 6 + topic or
	// peer + Seq, fragment header and TTL.
	maxFragHeader = protocol.HeaderSize + 6 + protocol.MaxTopicLen + 24
	// linger bounds how long a side that sent ERROR keeps reading before
	// it closes the socket (SPEC §13.3: at most 2 s).
	linger = 2 * time.Second
	// drainLimit bounds how long the client waits for the server to close
	// after its GOAWAY (the reference server drains for 5 s).
	drainLimit = 10 * time.Second
	// maxAckDelay is the peer's assumed ACK delay (notes/delivery.md).
	maxAckDelay = 25 * time.Millisecond
)

var laneWeight = [protocol.NumLanes]int{0, 4, 2, 1}

// conn is one connection of a Client, from the WELCOME on: a reader
// goroutine that decodes and handles frames, and a writer goroutine that
// writes whatever is due and keeps the connection's one timer. The fields
// marked "mu" are guarded by Client.mu; the others belong to the goroutine
// named.
type conn struct {
	// inBuf is the held bytes (see Client.unrelBytes) of the unreliable
	// messages appended to the write buffers and not yet written. c.mu.
	inBuf int
	c     *Client
	nc    net.Conn
	id    uint64 // Client.connGen when it was made
	topic string // of the last PUBLISH received (reader, c.mu)
	// stir: a frame of the last read needs the writer (reader, c.mu);
	// moveDeadline: when the read deadline is next moved (reader).
	stir         bool
	moveDeadline int64
	staged       []inboxItem // messages of the current read (reader, c.mu)

	// Negotiated at the handshake (SPEC §5.4), then fixed.
	k            time.Duration // heartbeat interval K
	compress     bool
	peerMaxFrame int
	peerMaxMsg   int
	fragSize     int
	window       int // the server's ReceiveMax (SPEC §5.4.5)

	// Reader's.
	dec      codec.Decoder
	leftover []byte // bytes read with the WELCOME, past it
	batchBuf []byte

	// Writer's.
	wbuf, dbuf, scratch []byte

	// mu.
	ctrl       []byte // encoded lane-0 frames to write: PONG, SUBSCRIBE, ...
	lastSent   int64
	lastPing   int64
	pinged     bool
	pings      [4]uint64 // Opaques of the last PINGs, to sample their PONGs
	pingIdx    int
	probe      rtt.Prober
	paused     bool // the reader waits for the callback goroutine: no probes
	draining   bool // a GOAWAY arrived: no new work (SPEC §7.4)
	drainAt    int64
	goAway     *ServerError
	closing    bool
	sendErr    bool // write ERROR errCode before closing
	errWritten bool
	errCode    protocol.ErrorCode
	errReason  string
	err        error // why the connection ended

	wake     chan struct{} // cap 1: the writer has something to look at
	stop     chan struct{} // closed when both goroutines must end
	stopOnce sync.Once
}

func (cn *conn) wakeUp() {
	select {
	case cn.wake <- struct{}{}:
	default:
	}
}

// stopNow closes the socket, which ends both goroutines.
func (cn *conn) stopNow() {
	cn.stopOnce.Do(func() {
		close(cn.stop)
		_ = cn.nc.Close()
	})
}

// failLocked ends the connection with err. With send, the writer first
// writes an ERROR with code (SPEC §13.3) and half-closes, and the reader
// lingers; otherwise the socket closes at once. Only the first call counts.
// c.mu held.
func (cn *conn) failLocked(err error, code protocol.ErrorCode, send bool) {
	if cn.closing {
		return
	}
	cn.closing = true
	cn.err = err
	if !send {
		cn.stopNow()
		return
	}
	cn.sendErr, cn.errCode = true, code
	if se, ok := err.(*ServerError); ok {
		cn.errReason = se.Reason
	}
	// The reader lingers at most this long (SPEC §13.3); its deadline is
	// only ever set under mu, so this one is not overwritten.
	_ = cn.nc.SetReadDeadline(time.Now().Add(linger))
	cn.wakeUp()
}

// protocolError closes the connection because the server broke a rule.
func (cn *conn) protocolError(code protocol.ErrorCode, reason string) {
	cn.c.log.Warn("ferry client: protocol error", "code", code.String(), "reason", reason)
	cn.failLocked(&ServerError{Code: code, Reason: reason, Local: true}, code, true)
}

// ---------------------------------------------------------------- reader

func (cn *conn) readLoop(done func()) {
	defer done()
	defer cn.stopNow()
	c := cn.c
	idle := cn.k * protocol.IdleAfterNum / protocol.IdleAfterDen
	buf := make([]byte, 0, protocol.DefaultMaxFrameSize+4096)
	buf = append(buf, cn.leftover...)
	cn.leftover = nil
	first := len(buf) > 0
	for {
		if !cn.waitRoom() {
			return
		}
		c.mu.Lock()
		if cn.closing {
			c.mu.Unlock()
			cn.discard(buf)
			return
		}
		// SPEC §7.1: nothing received for 1.5 × K closes with IDLE_TIMEOUT.
		// The deadline moves at most every idle/16 and is set that much
		// further: the close comes between idle and 17/16 × idle after the
		// last byte, and a busy reader does not move a timer per read.
		if now := c.now(); now >= cn.moveDeadline {
			_ = cn.nc.SetReadDeadline(time.Now().Add(idle + idle/16))
			cn.moveDeadline = now + int64(idle/16)
		}
		c.mu.Unlock()
		var n int
		var err error
		if first {
			first = false
		} else {
			if len(buf) == cap(buf) {
				buf = append(buf, 0)[:len(buf)] // a frame larger than the buffer: grow
			}
			n, err = cn.nc.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+n]
		}
		if len(buf) > 0 && (n > 0 || err == nil) {
			c.mu.Lock()
			cn.stir = false
			used := cn.onBytes(buf)
			closing, stir := cn.closing, cn.stir
			c.mu.Unlock()
			if stir {
				cn.wakeUp()
			}
			rest := copy(buf, buf[used:])
			buf = buf[:rest]
			if closing {
				cn.discard(nil)
				return
			}
		}
		if err != nil {
			c.mu.Lock()
			if errors.Is(err, os.ErrDeadlineExceeded) && !cn.closing {
				// (A connection already closing, for example after
				// unanswered probes, only waited here for the peer: its
				// error is set and is not an idle timeout.)
				cn.c.log.Warn("ferry client: idle timeout", "after", idle)
				cn.failLocked(&ServerError{Code: protocol.CodeIdleTimeout, Reason: "nothing received", Local: true},
					protocol.CodeIdleTimeout, true)
			} else {
				cn.failLocked(transportError(err), 0, false)
			}
			send := cn.sendErr
			c.mu.Unlock()
			if send {
				cn.discard(nil)
			}
			return
		}
	}
}

// waitRoom waits until the callback goroutine has room for what the next
// read may bring. Meanwhile nothing is read, so no ACK or PONG can arrive:
// probing pauses, or a slow handler would pass for a dead path.
func (cn *conn) waitRoom() bool {
	c := cn.c
	if !c.inbox.isFull() {
		return true
	}
	c.mu.Lock()
	cn.paused = true
	c.mu.Unlock()
	ok := c.inbox.waitRoom(cn.stop)
	c.mu.Lock()
	cn.paused = false
	cn.probe.OnAckOrPong(c.now())
	c.mu.Unlock()
	cn.wakeUp()
	return ok
}

// discard reads and drops input until the peer closes or the linger
// deadline set by failLocked passes (SPEC §13.3).
func (cn *conn) discard(buf []byte) {
	if buf == nil || cap(buf) == 0 {
		buf = make([]byte, 4096)
	}
	buf = buf[:cap(buf)]
	for {
		if _, err := cn.nc.Read(buf); err != nil {
			return
		}
	}
}

func transportError(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// onBytes decodes and handles every complete frame of b and returns how
// many bytes it used. c.mu held.
func (cn *conn) onBytes(b []byte) int {
	now := cn.c.now()
	used := 0
	for !cn.closing {
		f, n, err := cn.dec.Decode(b[used:])
		if err == codec.ErrNeedMore {
			break
		}
		if err != nil {
			cn.protocolError(codec.CodeOf(err), err.Error())
			break
		}
		used += n
		cn.handle(&f, now, false)
	}
	cn.flushStaged()
	return used
}

// handle acts on one frame. c.mu held.
func (cn *conn) handle(f *codec.Frame, now int64, inBatch bool) {
	c := cn.c
	if !f.Type.IsMessage() {
		cn.flushStaged()
	}
	if !f.Type.IsMessage() || f.Flags&(protocol.FlagReliable|protocol.FlagFragment) != 0 {
		// The writer has something to look at: an answer, an ACK to
		// time, a window or a probe that changed, a reassembly deadline.
		// A read of complete unreliable messages alone leaves it asleep.
		cn.stir = true
	}
	switch f.Type {
	case protocol.FramePing:
		// SPEC §7.1: every PING gets one PONG with the same Opaque.
		pong := codec.Frame{Type: protocol.FramePong, Opaque: f.Opaque}
		cn.ctrl = pong.Append(cn.ctrl)
	case protocol.FramePong:
		cn.onPong(f.Opaque, now)
	case protocol.FrameAck:
		cn.onAck(f, now)
	case protocol.FrameData, protocol.FramePublish, protocol.FrameDirect:
		cn.onMessage(f, now)
	case protocol.FrameBatch:
		if inBatch {
			cn.protocolError(protocol.CodeProtocolError, "batch in a batch")
			return
		}
		cn.onBatch(f, now)
	case protocol.FrameResult:
		c.onResultLocked(f)
	case protocol.FrameError:
		// SPEC §7.3: the receiver of ERROR sends nothing more and closes.
		err := &ServerError{Code: readCode(f.Code), Reason: string(f.Payload)}
		c.log.Info("ferry client: server closed the connection", "code", err.Code.String(), "reason", err.Reason)
		cn.failLocked(err, 0, false)
	case protocol.FrameGoAway:
		// SPEC §7.4: no new requests; wait for the server to close.
		if !cn.draining {
			cn.draining, cn.drainAt = true, now
			cn.goAway = &ServerError{Code: readCode(f.Code), Reason: string(f.Payload), GoAway: true}
			c.goAwayHint = f.ReconnectAfter
			c.log.Info("ferry client: GOAWAY", "code", cn.goAway.Code.String(), "reconnect_after_ms", f.ReconnectAfter)
		}
	case protocol.FrameConfirm:
		// This client sends no APP_ACK messages, and a CONFIRM for a Seq
		// not sent with APP_ACK is ignored (notes/delivery.md).
	case protocol.FrameGapReport:
		cn.onGapReport(f)
	default:
		// HELLO, WELCOME, SUBSCRIBE, UNSUBSCRIBE: not from a server, and
		// not after the handshake (SPEC §4.3, §5.5).
		cn.protocolError(protocol.CodeProtocolError, "unexpected "+f.Type.String()+" from the server")
	}
}

// readCode reads an ERROR, GOAWAY or RESULT code; SPEC §13.4: unknown codes
// are INTERNAL.
func readCode(code protocol.ErrorCode) protocol.ErrorCode {
	if !code.Known() {
		return protocol.CodeInternal
	}
	return code
}

func (cn *conn) onBatch(f *codec.Frame, now int64) {
	inner := f.Payload
	if f.Flags.Has(protocol.FlagCompressed) {
		var err error
		// SPEC §9.3: the decoded inner region is at most our max frame size.
		cn.batchBuf, err = codec.AppendDecompressed(cn.batchBuf[:0], f.Payload, cn.dec.MaxFrameSize)
		if err != nil {
			cn.protocolError(codec.CodeOf(err), err.Error())
			return
		}
		inner = cn.batchBuf
	}
	it := cn.dec.Batch(f, inner)
	for !cn.closing {
		g, ok, err := it.Next()
		if err != nil {
			cn.protocolError(codec.CodeOf(err), err.Error())
			return
		}
		if !ok {
			return
		}
		cn.handle(&g, now, true)
	}
}

func (cn *conn) onPong(opaque uint64, now int64) {
	for i, p := range cn.pings {
		if p == opaque && p != 0 {
			cn.pings[i] = 0
			// The Opaque is the send time; a PONG answers at once (SPEC §7.1).
			if d := now - int64(opaque); d >= 0 {
				cn.probe.RTT.Sample(time.Duration(d), 0)
			}
			cn.probe.OnAckOrPong(now)
			return
		}
	}
	// SPEC §7.1: a PONG matching no PING is ignored (it is still liveness).
}

func (cn *conn) onAck(f *codec.Frame, now int64) {
	c := cn.c
	ls := &c.sess.lanes[f.AckLane]
	res, err := ls.tx.OnAck(f.Cumulative, f.Selective, f.AckDelay, now, func(uint64) { c.releaseFront(ls) })
	if err != nil {
		// SPEC §12.2: an ACK for a Seq never sent.
		cn.protocolError(protocol.CodeProtocolError, "ACK for a Seq never sent")
		return
	}
	ls.replayNext = max(ls.replayNext, ls.tx.Acked()+1)
	if res.HasRTT { // Karn's rule is applied by seqwin: no sample from a replayed frame
		cn.probe.RTT.Sample(res.RawRTT, min(time.Duration(f.AckDelay)*time.Microsecond, maxAckDelay))
	}
	cn.probe.OnAckOrPong(now)
	cn.probe.Outstanding(c.sess.outstanding())
}

func (cn *conn) onGapReport(f *codec.Frame) {
	c := cn.c
	g, err := codec.ParseGapReport(f.Payload)
	if err != nil {
		cn.protocolError(protocol.CodeProtocolError, "bad GAP_REPORT")
		return
	}
	k := &c.stats
	k.gapReports.Add(1)
	k.gapDelivered.Add(g.Delivered)
	k.gapDropped.Add(g.DroppedCount)
	k.gapDroppedBytes.Add(g.DroppedBytes)
	k.gapExpired.Add(g.Expired)
	c.log.Info("ferry client: gap report", "delivered", g.Delivered, "dropped", g.DroppedCount, "expired", g.Expired)
	if fn := c.cfg.onGap; fn != nil {
		c.inbox.pushFn(func() { fn(g) })
	}
}

// onMessage takes one DATA, PUBLISH or DIRECT frame: deduplication and
// order (notes/delivery.md), reassembly, then delivery. c.mu held.
func (cn *conn) onMessage(f *codec.Frame, now int64) {
	c := cn.c
	ls := &c.sess.lanes[f.Lane]
	reliable := f.Flags.Has(protocol.FlagReliable)
	if f.Flags.Has(protocol.FlagAppAck) && !reliable {
		cn.protocolError(protocol.CodeProtocolError, "APP_ACK without RELIABLE")
		return
	}
	if reliable {
		switch ls.rx.Check(f.Seq) {
		case seqwin.Deliver:
		case seqwin.Duplicate:
			// SPEC §12.3: not delivered again, acknowledged again at once.
			ls.rx.Receive(f.Seq, now)
			c.stats.duplicates.Add(1)
			return
		default:
			// notes/delivery.md: a Seq above C+1 is a gap: PROTOCOL_ERROR.
			cn.protocolError(protocol.CodeProtocolError, "sequence gap")
			return
		}
	}
	if ls.partial && reliable && f.Flags&protocol.FlagFragment == 0 && f.Flags.Has(protocol.FlagExpiry) && f.TTL == 0 {
		// SPEC §12.8: an expired placeholder ends the reliable partial
		// message of its lane, which is discarded as expired.
		c.sess.reasm.Discard(f.Lane)
		ls.partial = false
	}
	if !ls.partial {
		ls.partialReliable, ls.partialAt = reliable, now
	}
	msg, done, err := c.sess.reasm.Add(f, now)
	if err != nil {
		cn.protocolError(codec.CodeOf(err), err.Error())
		return
	}
	if reliable {
		ls.rx.Receive(f.Seq, now)
	}
	if !done {
		ls.partial = true
		return
	}
	ls.partial = false
	if f.Flags.Has(protocol.FlagExpiry) && f.TTL == 0 {
		cn.expired(f)
		return
	}
	if f.Type == protocol.FrameData && f.Flags.Has(protocol.FlagResponse) {
		c.onResponseLocked(f.Corr, msg)
		return
	}
	m := newMessage(msg)
	m.Kind, m.Lane, m.Reliable = Kind(f.Type), f.Lane, reliable
	m.c, m.connGen, m.sessGen, m.seq, m.arrived = c, cn.id, c.sess.gen, f.Seq, ls.partialAt
	m.appAck = f.Flags.Has(protocol.FlagAppAck)
	switch f.Type {
	case protocol.FrameData:
		m.Route, m.corr = f.Route, f.Corr
	case protocol.FramePublish:
		// SPEC §6.2: a server's Corr is ignored. Publications come in
		// runs of one topic: the string of the last one is reused.
		if string(f.Name) != cn.topic {
			cn.topic = string(f.Name)
		}
		m.Topic = cn.topic
	case protocol.FrameDirect:
		m.Peer = string(f.Name)
	}
	if f.Flags.Has(protocol.FlagExpiry) {
		m.expiry, m.ttl = true, f.TTL
	}
	// Queued for the callback goroutine with the others of this read
	// (flushStaged): one lock per read, not per message.
	cn.staged = append(cn.staged, inboxItem{m: m})
}

// flushStaged hands the messages of this read to the callback goroutine.
// It runs at the end of a read and before any frame that is not a message,
// so that callbacks queued by those stay behind the messages before them.
// c.mu held.
func (cn *conn) flushStaged() {
	if len(cn.staged) == 0 {
		return
	}
	cn.c.inbox.pushMsgs(cn.staged)
	clear(cn.staged)
	cn.staged = cn.staged[:0]
}

// smallPayload is the largest payload allocated with its Message.
const smallPayload = 48

// newMessage returns a Message holding a copy of payload: for a small one,
// message and bytes in one allocation (192 bytes).
func newMessage(payload []byte) *Message {
	if len(payload) > smallPayload {
		return &Message{Payload: bytes.Clone(payload)}
	}
	sm := new(struct {
		m   Message
		buf [smallPayload]byte
	})
	n := copy(sm.buf[:], payload)
	sm.m.Payload = sm.buf[:n:n]
	return &sm.m
}

// expired drops a message whose TTL is 0: an expired placeholder of a
// replay (SPEC §12.8), or a sender's mistake. It answers what expects an
// answer (SPEC §6.4, §12.10). c.mu held.
func (cn *conn) expired(f *codec.Frame) {
	c := cn.c
	c.stats.dropped.Add(1)
	switch {
	case f.Type == protocol.FrameData && f.Flags.Has(protocol.FlagResponse):
		if cl, ok := c.calls[f.Corr]; ok && cl.kind == callRequest {
			delete(c.calls, f.Corr)
			cl.finish(nil, &ResultError{Code: protocol.CodeExpired})
		}
	case f.Type == protocol.FrameData && f.Corr != 0:
		_ = c.replyLocked(f.Lane, f.Route, f.Corr, cn.id, nil, true, protocol.CodeExpired, "")
	}
	if f.Flags.Has(protocol.FlagAppAck) {
		c.confirmLocked(f.Lane, f.Seq, protocol.ConfirmRejected)
	}
}

// ---------------------------------------------------------------- writer

func (cn *conn) writeLoop(done func()) {
	defer done()
	c := cn.c
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		c.mu.Lock()
		now := c.now()
		next, fin := cn.build(now)
		c.mu.Unlock()
		wrote := len(cn.wbuf)+len(cn.dbuf) > 0
		if wrote {
			_ = cn.nc.SetWriteDeadline(time.Now().Add(cn.k * protocol.IdleAfterNum / protocol.IdleAfterDen))
			bufs := net.Buffers{cn.wbuf, cn.dbuf}
			_, err := bufs.WriteTo(cn.nc)
			c.mu.Lock()
			c.writtenLocked(cn.inBuf)
			cn.inBuf = 0
			if err != nil {
				cn.failLocked(transportError(err), 0, false)
				c.mu.Unlock()
				return
			}
			c.mu.Unlock()
		}
		if fin {
			if hc, ok := cn.nc.(interface{ CloseWrite() error }); ok {
				_ = hc.CloseWrite() // SPEC §13.3: the ERROR reaches the peer before the FIN
			}
			return
		}
		if wrote {
			continue
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(time.Duration(max(next-now, 0)))
		select {
		case <-cn.wake:
		case <-timer.C:
		case <-cn.stop:
			return
		}
	}
}

// build fills wbuf (lane 0) and dbuf (lanes 1-3) with what is due at now
// and returns when to look again; fin says the writer is done after this
// write. c.mu held.
func (cn *conn) build(now int64) (next int64, fin bool) {
	c := cn.c
	cn.wbuf, cn.dbuf = cn.wbuf[:0], cn.dbuf[:0]
	if cap(cn.dbuf) > 2*writeBudget {
		cn.dbuf = nil
	}
	if !cn.closing {
		cn.checkTimers(now)
	}
	if cn.closing {
		cn.wbuf = cn.wbuf[:0] // SPEC §13.3: ERROR goes ahead of anything queued
		if cn.sendErr && !cn.errWritten {
			cn.errWritten = true
			reason := cn.errReason
			if len(reason) > protocol.MaxReasonLen {
				reason = reason[:protocol.MaxReasonLen]
			}
			e := codec.Frame{Type: protocol.FrameError, Code: cn.errCode, Payload: []byte(reason)}
			cn.wbuf = e.Append(cn.wbuf)
		}
		return 0, true
	}
	cn.wbuf = append(cn.wbuf, cn.ctrl...)
	cn.ctrl = cn.ctrl[:0]
	cn.wbuf = c.sess.appendConfirms(cn.wbuf)
	if !cn.draining {
		cn.buildLanes(now)
	}
	for l := protocol.LaneInteractive; l < protocol.NumLanes; l++ {
		rx := &c.sess.lanes[l].rx
		_, owed := rx.AckDeadline(c.cfg.ackPolicy)
		// notes/delivery.md: an ACK that is due rides in the same write as
		// outbound data; one that is owed goes along when data goes anyway.
		if rx.AckDue(now, c.cfg.ackPolicy) || (owed && len(cn.dbuf) > 0) {
			cum, sel, delay := rx.Ack(now)
			a := codec.Frame{Type: protocol.FrameAck, AckLane: l, Cumulative: cum, Selective: sel, AckDelay: delay}
			cn.wbuf = a.Append(cn.wbuf)
			rx.AckSent()
		}
	}
	keepalive := int64(cn.k * protocol.PingAfterNum / protocol.PingAfterDen)
	spacing := int64(cn.k / 8)
	if len(cn.wbuf)+len(cn.dbuf) == 0 && now-cn.lastSent >= keepalive && (!cn.pinged || now-cn.lastPing >= spacing) {
		// SPEC §7.1: a PING after 0.8 × K without sending.
		cn.appendPing(now)
		cn.probe.PingSent(now)
		cn.wbuf = append(cn.wbuf, cn.ctrl...)
		cn.ctrl = cn.ctrl[:0]
	}
	if len(cn.wbuf)+len(cn.dbuf) > 0 {
		cn.lastSent = now
	}
	return cn.nextDeadline(now, keepalive, spacing), false
}

// checkTimers acts on the deadlines that close the connection or ask for
// a probe. c.mu held.
func (cn *conn) checkTimers(now int64) {
	c := cn.c
	if err := c.sess.reasm.Expire(now); err != nil {
		cn.protocolError(codec.CodeOf(err), err.Error())
		return
	}
	if cn.draining && now-cn.drainAt > int64(drainLimit) {
		cn.failLocked(cn.goAway, 0, false)
		return
	}
	if cn.paused {
		return
	}
	switch cn.probe.OnDeadline(now) {
	case rtt.SendPing:
		cn.appendPing(now)
	case rtt.Dead:
		// notes/delivery.md: three unanswered probes: the path is dead.
		c.log.Warn("ferry client: no ACK or PONG after probes; dropping the connection")
		cn.failLocked(&ServerError{Code: protocol.CodeIdleTimeout, Reason: "probes unanswered", Local: true},
			protocol.CodeIdleTimeout, true)
	}
}

func (cn *conn) appendPing(now int64) {
	opaque := uint64(now)
	if opaque == 0 {
		opaque = 1
	}
	p := codec.Frame{Type: protocol.FramePing, Opaque: opaque}
	cn.ctrl = p.Append(cn.ctrl)
	cn.pings[cn.pingIdx] = opaque
	cn.pingIdx = (cn.pingIdx + 1) % len(cn.pings)
	cn.lastPing, cn.pinged = now, true
}

func (cn *conn) nextDeadline(now, keepalive, spacing int64) int64 {
	c := cn.c
	next := cn.lastSent + keepalive
	if cn.pinged {
		next = max(next, cn.lastPing+spacing)
	}
	if at, ok := cn.probe.Deadline(); ok {
		next = min(next, at)
	}
	for l := protocol.LaneInteractive; l < protocol.NumLanes; l++ {
		if at, ok := c.sess.lanes[l].rx.AckDeadline(c.cfg.ackPolicy); ok {
			next = min(next, at)
		}
	}
	if at, ok := c.sess.reasm.NextDeadline(); ok {
		next = min(next, at+1)
	}
	if cn.draining {
		next = min(next, cn.drainAt+int64(drainLimit)+1)
	}
	return max(next, now)
}

// buildLanes appends frames of lanes 1-3 to dbuf by weighted round robin,
// within writeBudget. c.mu held.
func (cn *conn) buildLanes(now int64) {
	budget := writeBudget
	for budget > 0 {
		progress := false
		for l := protocol.LaneInteractive; l < protocol.NumLanes && budget > 0; l++ {
			quota := laneWeight[l] * quantum
			for quota > 0 && budget > 0 {
				n := cn.emit(l, now)
				if n == 0 {
					break
				}
				quota -= n
				budget -= n
				progress = true
			}
		}
		if !progress {
			return
		}
	}
}

// emit appends the next frame of lane l to dbuf, if there is one that may go
// now, and returns its size (0: none). c.mu held.
func (cn *conn) emit(l protocol.Lane, now int64) int {
	c := cn.c
	ls := &c.sess.lanes[l]
	start := len(cn.dbuf)
	// SPEC §12.7: after a resume the frames in flight go first, from the
	// server's Received+1, in Seq order, with their Seqs.
	for ls.replayNext <= ls.replayEnd {
		seq := ls.replayNext
		if seq <= ls.tx.Acked() {
			ls.replayNext++
			continue
		}
		if seq-ls.tx.Acked() > uint64(cn.window) {
			// SPEC §12.5: replayed frames count against the window the
			// server announced on this connection.
			return 0
		}
		fr := ls.frameOf(seq)
		f := cn.frame(fr.m, fr.off, fr.n, seq)
		if f.Len() > cn.peerMaxFrame {
			// SPEC §12.8: a frame that must be replayed keeps its size; if
			// the server no longer takes it, close, and start a new session.
			cn.protocolError(protocol.CodeProtocolError, "replayed frame larger than the server's max frame size")
			c.sess.id, c.sess.token = nil, nil
			return 0
		}
		ls.replayNext++
		cn.dbuf = cn.appendFrame(cn.dbuf, fr.m, fr.off, fr.n, seq)
		c.stats.replayed.Add(1)
		cn.probe.Arm(now)
		return len(cn.dbuf) - start
	}
	m := ls.cur
	if m == nil {
		if m = cn.next(ls); m == nil {
			return 0
		}
		if m.packed > 0 {
			// Frames encoded when they were sent, written as they are.
			m.started = true
			cn.dbuf = append(cn.dbuf, m.payload...)
			cn.inBuf += m.held
			m.held = 0
			c.stats.sent.Add(uint64(m.packed))
			c.freePack(m.payload)
			m.payload = nil
			return len(cn.dbuf) - start
		}
		if m.typ.IsMessage() && len(m.payload) > cn.fragSize {
			// SPEC §10.1: a message larger than the fragment size goes in
			// fragments; MsgID differs from the lane's previous one.
			ls.msgID++
			if ls.msgID == 0 {
				ls.msgID = 1
			}
			m.frag, m.msgID = true, ls.msgID
		}
		ls.cur = m
	}
	n := len(m.payload) - m.off
	if m.frag {
		n = min(n, cn.fragSize)
	}
	var seq uint64
	if m.reliable() {
		size := cn.frameLen(m, n)
		// SPEC §12.5: at most ReceiveMax frames and 1 MiB in flight per lane;
		// a fragmented message waits for room, and its lane with it
		// (SPEC §10.2).
		if !ls.tx.CanSend(size) {
			return 0
		}
		seq = ls.tx.Next()
		_ = ls.tx.Sent(seq, size, now) // cannot fail: Next and CanSend were checked
		ls.inflight = append(ls.inflight, sentFrame{m: m, off: m.off, n: n})
		cn.probe.Arm(now)
	}
	m.started = true
	cn.dbuf = cn.appendFrame(cn.dbuf, m, m.off, n, seq)
	m.off += n
	if m.off == len(m.payload) {
		ls.cur = nil
		// Its bytes count against Send's bound (and keep Flush waiting)
		// until the writer has handed them to the socket.
		cn.inBuf += m.held
		m.held = 0
		if m.typ.IsMessage() && m.flags&protocol.FlagResponse == 0 {
			c.stats.sent.Add(1)
		}
	}
	return len(cn.dbuf) - start
}

// next takes out of the lane's queue the message to write next: the first
// one, unless it is reliable and the window is full, in which case the
// first unreliable one behind it (SPEC §12.5: unreliable frames are not
// held by the window). nil: nothing can go now. c.mu held.
func (cn *conn) next(ls *lane) *outMsg {
	c := cn.c
	for i := 0; i < len(ls.queue); i++ {
		m := ls.queue[i]
		if m.dropped {
			ls.remove(i)
			i--
			c.unheldLocked(m)
			continue
		}
		if m.packed == 0 && m.typ.IsMessage() && len(m.payload) > cn.peerMaxMsg {
			// SPEC §5.4.2: never send more than the peer accepts.
			ls.remove(i)
			i--
			c.failMsgLocked(m, ErrTooLarge)
			continue
		}
		if m.reliable() {
			n := len(m.payload)
			if m.typ.IsMessage() && n > cn.fragSize {
				n = cn.fragSize
			}
			f := cn.frame(m, 0, n, 1)
			if n < len(m.payload) {
				f.Flags |= protocol.FlagFragment
			}
			if !ls.tx.CanSend(f.Len()) {
				// The window holds this one and the reliable ones behind it.
				for j := i + 1; j < len(ls.queue); j++ {
					if u := ls.queue[j]; !u.reliable() && !u.dropped {
						ls.remove(j)
						return u
					}
				}
				return nil
			}
		}
		ls.remove(i)
		return m
	}
	return nil
}

// frame returns the frame of m carrying payload bytes [off, off+n).
func (cn *conn) frame(m *outMsg, off, n int, seq uint64) codec.Frame {
	f := codec.Frame{Type: m.typ, Flags: m.flags, Lane: m.lane, Route: m.route, Corr: m.corr, Code: m.code,
		Name: m.name, Seq: seq, Opaque: m.key, Payload: m.payload[off : off+n]}
	if m.key != 0 {
		f.Flags |= protocol.FlagKeyed
	}
	if m.frag {
		f.Flags |= protocol.FlagFragment
		f.MsgID, f.Offset, f.Total = m.msgID, uint32(off), uint32(len(m.payload))
	}
	return f
}

// frameLen is the size of the frame of m carrying n bytes, uncompressed:
// what the send window counts.
func (cn *conn) frameLen(m *outMsg, n int) int {
	f := cn.frame(m, m.off, n, 1)
	return f.Len()
}

func (cn *conn) appendFrame(b []byte, m *outMsg, off, n int, seq uint64) []byte {
	f := cn.frame(m, off, n, seq)
	if cn.compress && m.typ.IsMessage() && n >= codec.MinCompressSize {
		// SPEC §11.3: compressed only when it saves bytes; a fragment's data
		// is compressed on its own (§10.1).
		var ok bool
		cn.scratch, ok = codec.AppendMaybeCompressed(cn.scratch[:0], f.Payload)
		if ok {
			f.Flags |= protocol.FlagCompressed
			f.Payload = cn.scratch
		}
	}
	return f.Append(b)
}
