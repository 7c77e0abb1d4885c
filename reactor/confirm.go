package reactor

import (
	"math/rand/v2"
	"time"

	"github.com/ferry-proto/ferry/codec"
	"github.com/ferry-proto/ferry/codec/rtt"
	"github.com/ferry-proto/ferry/protocol"
)

// This file is application-level confirmation (SPEC §12, CONFIRM and
// APP_ACK): a reliable message sent with APP_ACK waits for the receiving
// application's CONFIRM; a REJECTED verdict, or none within the confirm
// timeout, sends it again (as a new reliable frame) after a backoff of 1,
// 5, 15, 30 and 60 s ±20 %, until the maximum number of deliveries, after
// which it is dead-lettered. Runs on the connection's event loop; the
// waits belong to the session, so they carry over a resume.

// confirmWait is one message waiting for its CONFIRM, or for its
// redelivery.
type confirmWait struct {
	buf        *codec.Buffer // the frame as sent (its Seq is rewritten on redelivery)
	seq        uint64        // Seq of the delivery waiting for a CONFIRM; 0 once failed
	at         int64         // confirm deadline (0 until the frame is acknowledged), or, once failed, when to redeliver
	expires    int64         // the message's own deadline (EXPIRY), 0 for none
	lane       protocol.Lane
	deliveries uint8
}

// confirmKey names a delivery by lane and Seq.
func confirmKey(lane protocol.Lane, seq uint64) uint64 { return uint64(lane)<<62 | seq }

// confirmSet is a session's APP_ACK messages waiting for a CONFIRM or a
// redelivery. Lookups by (lane, Seq) and the start of confirm timers on an
// ACK cost O(1) per message, so neither a CONFIRM flood nor an ACK flood
// scans the set; only the timer does, when it fires.
type confirmSet struct {
	waits []confirmWait
	index map[uint64]int // confirmKey → position in waits, for deliveries awaiting a CONFIRM
	// unacked holds, per lane, the Seqs of deliveries whose frame the peer
	// has not acknowledged yet, in Seq order: their timers start at the ACK.
	unacked [protocol.NumLanes - 1][]uint64
}

func (cs *confirmSet) add(w confirmWait) {
	if cs.index == nil {
		cs.index = make(map[uint64]int)
	}
	cs.index[confirmKey(w.lane, w.seq)] = len(cs.waits)
	cs.waits = append(cs.waits, w)
	cs.unacked[w.lane-1] = append(cs.unacked[w.lane-1], w.seq)
}

// remove takes waits[i] out; the last one moves into its place.
func (cs *confirmSet) remove(i int) {
	if w := &cs.waits[i]; w.seq != 0 {
		delete(cs.index, confirmKey(w.lane, w.seq))
	}
	last := len(cs.waits) - 1
	if i != last {
		cs.waits[i] = cs.waits[last]
		if m := &cs.waits[i]; m.seq != 0 {
			cs.index[confirmKey(m.lane, m.seq)] = i
		}
	}
	cs.waits[last] = confirmWait{}
	cs.waits = cs.waits[:last]
}

// release frees every buffer and returns how many messages it held.
func (cs *confirmSet) release() int {
	n := len(cs.waits)
	for _, w := range cs.waits {
		codec.PutBuffer(w.buf)
	}
	*cs = confirmSet{}
	return n
}

// trackConfirm records a just-sent APP_ACK frame. b is the retained frame;
// the wait keeps a copy of its own, since the retained one is freed by the
// transport-level ACK.
func (c *Conn) trackConfirm(d *delivery, lane protocol.Lane, seq uint64, b []byte, deliveries uint8, expires int64) {
	cp := codec.GetBuffer()
	cp.B = append(cp.B[:0], b...)
	d.confirms.add(confirmWait{buf: cp, seq: seq, lane: lane, deliveries: deliveries, expires: expires})
}

// startConfirmTimers starts the confirm timeout of the APP_ACK messages
// of lane the peer has now acknowledged: SPEC §12.10 counts it from the
// acknowledgement of the message's frame, so time spent disconnected or
// in flight does not count against the peer's application.
func (c *Conn) startConfirmTimers(d *delivery, lane protocol.Lane, now int64) {
	acked := d.lanes[lane-1].tx.Acked()
	q := d.confirms.unacked[lane-1]
	n := 0
	for n < len(q) && q[n] <= acked {
		if i, ok := d.confirms.index[confirmKey(lane, q[n])]; ok && d.confirms.waits[i].at == 0 {
			d.confirms.waits[i].at = now + int64(c.srv.cfg.Sessions.ConfirmTimeout)
		}
		n++
	}
	if n == 0 {
		return
	}
	d.confirms.unacked[lane-1] = q[n:]
	if len(q) == n {
		d.confirms.unacked[lane-1] = nil
	}
	c.schedule()
}

// onConfirm applies a CONFIRM from the peer. One for a Seq that waits for
// none is ignored (SPEC: confirms can cross a redelivery).
func (c *Conn) onConfirm(f *codec.Frame, now int64) {
	if c.sess == nil || c.sess.d == nil {
		return
	}
	d := c.sess.d
	i, ok := d.confirms.index[confirmKey(f.AckLane, f.Seq)]
	if !ok {
		return
	}
	if f.Verdict == protocol.ConfirmProcessed {
		c.ctr.Confirmed.Add(1)
		codec.PutBuffer(d.confirms.waits[i].buf)
		d.confirms.remove(i)
		return
	}
	c.ctr.Rejected.Add(1)
	c.failDelivery(d, i, now)
	c.schedule()
}

// failDelivery handles a delivery that was rejected or not confirmed in
// time: a redelivery after the backoff, or the dead letter once the
// maximum number of deliveries is reached. It may remove waits[i] (the
// last one then moves into its place).
func (c *Conn) failDelivery(d *delivery, i int, now int64) {
	w := &d.confirms.waits[i]
	cfg := &c.srv.cfg.Sessions
	// SPEC §12.10: an expired message is dead-lettered, never redelivered.
	if rtt.ShouldDeadLetter(int(w.deliveries), cfg.MaxDeliveries) || expired(w.expires, now) {
		c.ctr.DeadLettered.Add(1)
		if cfg.DeadLetter != nil {
			dec := codec.NewDecoder()
			dec.MaxFrameSize, dec.Compression = protocol.HardMaxFrameSize, true
			if f, _, err := dec.Decode(w.buf.B); err == nil {
				if f.Flags.Has(protocol.FlagCompressed) {
					f.Payload, _ = codec.AppendDecompressed(nil, f.Payload, protocol.HardMaxMessageSize)
					f.Flags &^= protocol.FlagCompressed
				}
				cfg.DeadLetter(c.sess, &f)
			}
		}
		codec.PutBuffer(w.buf)
		d.confirms.remove(i)
		return
	}
	delete(d.confirms.index, confirmKey(w.lane, w.seq))
	w.seq = 0
	w.at = now + int64(rtt.Redelivery(int(w.deliveries), rand.Float64))
}

// confirmDeadline is the earliest confirm or redelivery deadline.
func (d *delivery) confirmDeadline(at int64) int64 {
	for i := range d.confirms.waits {
		if w := &d.confirms.waits[i]; w.at != 0 {
			at = min(at, w.at)
		}
	}
	return at
}

// runConfirms fails the deliveries whose confirm deadline passed and
// queues the redeliveries that are due.
func (c *Conn) runConfirms(d *delivery, now int64) {
	for i := 0; i < len(d.confirms.waits); {
		w := &d.confirms.waits[i]
		if w.at == 0 || now < w.at {
			i++
			continue
		}
		if w.seq != 0 { // no CONFIRM in time
			c.ctr.ConfirmTimeouts.Add(1)
			n := len(d.confirms.waits)
			c.failDelivery(d, i, now)
			if len(d.confirms.waits) < n {
				continue // dead-lettered: waits[i] is another one now
			}
			i++
			continue
		}
		// Redeliver: a new reliable frame, numbered when sent.
		c.ctr.Redelivered.Add(1)
		b := w.buf.B
		it := outItem{buf: w.buf, lane: w.lane, typ: protocol.FrameType(b[4]), msgs: 1, rel: true, tries: w.deliveries, expires: w.expires}
		d.confirms.remove(i)
		c.requeue(it)
	}
}

// Confirm answers a message received with APP_ACK (SPEC §12): lane and
// seq are the message frame's (for a fragmented message, its last
// fragment's, as OnMessage sees it). Call it on the loop, in or after the
// OnMessage callback.
func (c *Conn) Confirm(lane protocol.Lane, seq uint64, v protocol.Verdict) {
	if c.state == stateClosed {
		return
	}
	f := codec.Frame{Type: protocol.FrameConfirm, AckLane: lane, Verdict: v, Seq: seq}
	c.ctrl = f.Append(c.ctrl)
	c.ctr.FramesOut[protocol.FrameConfirm].Add(1)
}

// defaultConfirmTimeout is how long a message sent with APP_ACK waits for
// its CONFIRM before it counts as failed.
const defaultConfirmTimeout = 30 * time.Second
