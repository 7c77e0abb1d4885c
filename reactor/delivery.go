package reactor

import (
	"encoding/binary"
	"time"

	"github.com/ferry-proto/ferry/codec"
	"github.com/ferry-proto/ferry/codec/rtt"
	"github.com/ferry-proto/ferry/codec/seqwin"
	"github.com/ferry-proto/ferry/protocol"
)

// This file is reliable delivery on a connection (SPEC §12): numbering and
// retaining what we send, acknowledging and deduplicating what we
// receive, the probe timer, and the hand-over of a session between
// connections. Everything here runs on the connection's event loop.

// seqOffset is where the Seq field of an encoded message frame starts:
// after the header and the type's fixed fields (SPEC §3.3).
func seqOffset(typ protocol.FrameType, b []byte) int {
	if typ == protocol.FrameData {
		return protocol.HeaderSize + 8
	}
	return protocol.HeaderSize + 6 + int(binary.BigEndian.Uint16(b[protocol.HeaderSize+4:]))
}

// ttlOffset is where the TTL field of an encoded unfragmented message frame
// starts.
func ttlOffset(typ protocol.FrameType, b []byte) int {
	off := seqOffset(typ, b)
	if protocol.Flags(b[5]).Has(protocol.FlagReliable) {
		off += 8
	}
	return off
}

// ackPolicy is the configured ACK timing.
func (c *Conn) ackPolicy() seqwin.AckPolicy {
	s := &c.srv.cfg.Sessions
	return seqwin.AckPolicy{EveryN: s.AckEvery, MaxDelay: s.AckDelay}
}

// delivery returns the session's reliable state, creating it.
func (c *Conn) delivery() *delivery {
	d := c.session().ensureDelivery()
	if !d.ready {
		c.initDelivery(d)
	}
	return d
}

// initDelivery applies this connection's negotiated limits.
func (c *Conn) initDelivery(d *delivery) {
	d.ready = true
	for i := range d.lanes {
		d.lanes[i].tx.SetLimits(int(c.peerRecvMax), c.srv.cfg.Sessions.MaxInflightBytes)
	}
	d.probe.MaxAckDelay = c.srv.cfg.Sessions.AckDelay
	d.probe.MinPingInterval = c.heartbeat / 8
}

// expired reports whether a message with deadline expires is past it.
func expired(expires, now int64) bool { return expires != 0 && now >= expires }

// patchTTL writes what remains of a message's TTL into its frame (SPEC
// §6.4: a forwarder sends the remaining time).
func patchTTL(it *outItem, now int64) {
	if it.expires == 0 || it.frag != nil {
		return
	}
	ms := (it.expires - now) / int64(time.Millisecond)
	binary.BigEndian.PutUint32(it.buf.B[ttlOffset(it.typ, it.buf.B):], uint32(max(ms, 1)))
}

// windowShut reports whether the head item of a lane must wait for an ACK:
// it is reliable and the peer's window (SPEC §5.4.5) or our byte limit has
// no room for it.
func (c *Conn) windowShut(it *outItem) bool {
	if !it.rel || it.replay {
		return false
	}
	d := c.delivery()
	return !d.lanes[it.lane-1].tx.CanSend(c.nextSize(it))
}

// sendReliable numbers an unfragmented reliable frame, keeps it for a
// replay and adds it to iov. The retained buffer is not released after the
// write: it lives until the peer acknowledges it.
func (c *Conn) sendReliable(iov [][]byte, it *outItem, now int64) [][]byte {
	d := c.delivery()
	ld := &d.lanes[it.lane-1]
	b := it.buf
	if it.replay {
		return append(iov, b.B)
	}
	seq := ld.tx.Next()
	binary.BigEndian.PutUint64(b.B[seqOffset(it.typ, b.B):], seq)
	_ = ld.tx.Sent(seq, len(b.B), now)
	ld.unacked = append(ld.unacked, retained{buf: b, expires: it.expires})
	if protocol.Flags(b.B[5]).Has(protocol.FlagAppAck) {
		c.trackConfirm(d, it.lane, seq, b.B, it.tries+1, it.expires)
	}
	c.armProbe(d, now)
	c.ctr.ReliableOut.Add(1)
	it.buf = nil // owned by unacked now
	return append(iov, b.B)
}

// sendReliableFragment encodes one reliable fragment into a buffer of its
// own (it is retained for a replay), numbers it and adds it to iov.
func (c *Conn) sendReliableFragment(iov [][]byte, f *codec.Frame, lane protocol.Lane, expires, now int64) [][]byte {
	d := c.delivery()
	ld := &d.lanes[lane-1]
	f.Seq = ld.tx.Next()
	b := codec.GetBuffer()
	b.B = f.Append(b.B[:0])
	_ = ld.tx.Sent(f.Seq, len(b.B), now)
	ld.unacked = append(ld.unacked, retained{buf: b, expires: expires})
	c.armProbe(d, now)
	c.ctr.ReliableOut.Add(1)
	return append(iov, b.B)
}

// armProbe starts the probe timer if it is not running, and moves the
// connection's timer to it.
func (c *Conn) armProbe(d *delivery, now int64) {
	_, running := d.probe.Deadline()
	d.probe.Arm(now)
	if !running {
		c.schedule()
	}
}

// onAck applies an ACK from the peer (SPEC §7.2, §12.2): it releases what
// the Cumulative point passes, feeds the RTT estimate and reopens the
// window. An ACK for a Seq we never sent closes with PROTOCOL_ERROR.
func (c *Conn) onAck(f *codec.Frame, now int64) {
	if c.sess == nil || c.sess.d == nil {
		// SPEC §12.2: nothing reliable was sent, so nothing can be acked.
		c.ctr.AcksRejected.Add(1)
		c.closeWith(protocol.CodeProtocolError, "ACK for a Seq never sent")
		return
	}
	d := c.delivery()
	ld := &d.lanes[f.AckLane-1]
	before := ld.tx.Acked()
	res, err := ld.tx.OnAck(f.Cumulative, f.Selective, f.AckDelay, now, nil)
	if err != nil {
		c.ctr.AcksRejected.Add(1)
		c.closeWith(protocol.CodeProtocolError, err.Error())
		return
	}
	c.releaseAcked(ld, before)
	if ld.tx.Acked() != before && len(d.confirms.waits) > 0 {
		c.startConfirmTimers(d, f.AckLane, now)
	}
	if res.HasRTT {
		d.probe.RTT.Sample(res.RawRTT, time.Duration(f.AckDelay)*time.Microsecond)
		c.ctr.RTT.Observe(res.RTT)
	}
	if res.Largest != 0 {
		d.probe.OnAckOrPong(now)
	}
	d.probe.Outstanding(c.inFlight(d))
}

// releaseAcked frees the retained frames the sender's Cumulative point
// has passed since before.
func (c *Conn) releaseAcked(ld *laneDelivery, before uint64) {
	n := int(ld.tx.Acked() - before)
	if n <= 0 {
		return
	}
	for i := range n {
		codec.PutBuffer(ld.unacked[i].buf)
	}
	rest := copy(ld.unacked, ld.unacked[n:])
	clear(ld.unacked[rest:])
	ld.unacked = ld.unacked[:rest]
	if cap(ld.unacked) > 64 && rest < cap(ld.unacked)/4 {
		ld.unacked = append([]retained(nil), ld.unacked...)
	}
}

func (c *Conn) inFlight(d *delivery) bool {
	for i := range d.lanes {
		if d.lanes[i].tx.InFlight() > 0 {
			return true
		}
	}
	return false
}

// onPong takes an RTT sample from the answer to our last PING.
func (c *Conn) onPong(f *codec.Frame, now int64) {
	if c.sess == nil || c.sess.d == nil {
		return
	}
	d := c.sess.d
	if f.Opaque == d.pingOpaque && d.pingOpaque != 0 {
		if rttNs := now - int64(f.Opaque); rttNs >= 0 {
			d.probe.RTT.Sample(time.Duration(rttNs), 0)
			c.ctr.RTT.Observe(time.Duration(rttNs))
		}
		d.pingOpaque = 0
	}
	d.probe.OnAckOrPong(now)
}

// sendPing queues a PING whose Opaque is the send time.
func (c *Conn) sendPing(now int64) {
	ping := codec.Frame{Type: protocol.FramePing, Opaque: uint64(now)}
	c.ctrl = ping.Append(c.ctrl)
	c.ctr.FramesOut[protocol.FramePing].Add(1)
	if c.sess != nil && c.sess.d != nil {
		c.sess.d.pingOpaque = uint64(now)
		c.sess.d.probe.PingSent(now)
	}
}

// receiveReliable runs the dedup window on an inbound reliable frame
// (SPEC §12.3). It reports whether the frame goes on to the application.
func (c *Conn) receiveReliable(f *codec.Frame, now int64) bool {
	d := c.delivery()
	ld := &d.lanes[f.Lane-1]
	switch ld.rx.Check(f.Seq) {
	case seqwin.Deliver:
		ld.rx.Receive(f.Seq, now)
		c.ctr.ReliableIn.Add(1)
		return true
	case seqwin.Duplicate:
		ld.rx.Receive(f.Seq, now) // makes the re-ACK due
		c.ctr.DuplicatesIn.Add(1)
		return false
	default:
		// SPEC §12.3: over one connection a lane's reliable frames
		// arrive in Seq order, without gaps.
		c.closeWith(protocol.CodeProtocolError, "sequence gap")
		return false
	}
}

// appendAcks queues an ACK for every lane that owes one: when due by the
// policy, or, with piggyback, whenever a receipt is unacknowledged and we
// write anyway.
func (c *Conn) appendAcks(now int64, piggyback bool) {
	if c.sess == nil || c.sess.d == nil || c.state == stateClosed {
		return
	}
	d := c.sess.d
	pol := c.ackPolicy()
	for i := range d.lanes {
		rx := &d.lanes[i].rx
		_, owed := rx.AckDeadline(pol)
		if !rx.AckDue(now, pol) && !(piggyback && owed) {
			continue
		}
		cum, sel, delay := rx.Ack(now)
		a := codec.Frame{Type: protocol.FrameAck, AckLane: protocol.Lane(i + 1), Cumulative: cum, Selective: sel, AckDelay: delay}
		c.ctrl = a.Append(c.ctrl)
		c.ctr.FramesOut[protocol.FrameAck].Add(1)
		rx.AckSent()
	}
}

// deliveryDeadline is the earliest of the ACK and probe deadlines.
func (c *Conn) deliveryDeadline(at int64) int64 {
	if c.sess == nil || c.sess.d == nil {
		return at
	}
	d := c.sess.d
	pol := c.ackPolicy()
	for i := range d.lanes {
		if dl, ok := d.lanes[i].rx.AckDeadline(pol); ok {
			at = min(at, dl)
		}
	}
	if dl, ok := d.probe.Deadline(); ok {
		at = min(at, dl)
	}
	return d.confirmDeadline(at)
}

// onDeliveryTimer sends the ACKs that fell due and runs the probe (SPEC
// §12: an overdue ACK means a dead path or a stuck peer, so we PING rather
// than resend; three unanswered probes close the connection and the
// messages wait for the resume). It reports false when it closed.
func (c *Conn) onDeliveryTimer(now int64) bool {
	if c.sess == nil || c.sess.d == nil {
		return true
	}
	d := c.sess.d
	c.appendAcks(now, false)
	c.runConfirms(d, now)
	switch d.probe.OnDeadline(now) {
	case rtt.SendPing:
		c.ctr.Probes.Add(1)
		c.sendPing(now)
	case rtt.Dead:
		c.closeWith(protocol.CodeIdleTimeout, "3 probes unanswered")
		return false
	}
	if len(c.ctrl) > 0 || c.hasLaneData() {
		c.flush()
	}
	return true
}
