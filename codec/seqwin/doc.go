// Package seqwin keeps the sequence-number state of one lane of one
// direction of a session's reliable messages (SPEC §12): which Seqs a
// receiver has seen and in what order they may reach the application, the
// fields of the ACK it owes (§7.2, §12.2), and, on the sending side, which
// Seqs are unacknowledged and whether the peer's receive maximum (§5.4.5)
// and a byte limit leave room for another. It is pure bookkeeping: the
// messages themselves, the frames, the timers and the clock stay with the
// caller. A connection holds three Receivers and three Senders (lanes 1 to
// 3); they belong to the session, so they survive a reconnect-and-resume.
//
// # Design
//
// Receiver: a Cumulative point C (every Seq ≤ C received) and a circular
// bitmap of WindowBits (1024) bits for C+1 .. C+1024, indexed by Seq mod
// 1024, so sliding the window costs nothing: when C+1 arrives, the run of
// set bits above it is cleared and C jumps over it a word at a time. The
// Selective field of an ACK is 64 bits read out of that bitmap at C+2. A
// Seq ≤ C or with its bit set is a duplicate, exactly: nothing ever falls
// out of the window (it is anchored at C, not at the highest Seq seen), and
// a Seq beyond it is refused (TooFar) rather than recorded approximately.
// The state is a fixed 168 bytes; Receive, Ack and AckDue do not allocate.
//
// Receiving and delivering are apart: a new Seq above a gap is Hold, and
// when the gap is filled the filling Seq is Deliver and Ready pops the held
// Seqs that have become in order, one at a time. The caller buffers the held
// messages (at most WindowBits of them); seqwin tracks only their numbers.
//
// Sender: the Seqs from the peer's Cumulative point (Acked) up to the last
// Seq sent are in flight. A ring of slots indexed by Seq, sized to the
// receive maximum rounded up to a power of two (≤ MaxReceiveMax = 512) and
// allocated once, holds each in-flight Seq's send time, size and two flags
// (selectively acknowledged; replayed). OnAck checks the ACK against what
// was sent before changing anything, releases the Seqs it covers
// cumulatively, records the selective ones, and returns one RTT sample
// taken from the newest Seq it newly acknowledges unless that Seq was
// replayed (Karn's rule).
//
// Selective acknowledgements are advisory, as in TCP and unlike QUIC: a
// message is released (its bytes freed, the release callback called) only
// when the Cumulative point passes it. The resume handshake carries only a
// cumulative position per lane (HELLO/WELCOME Received1..3, §5.2, §5.3) and
// the replay starts there (§12.8), so a resumed receiver may have forgotten
// the frames it held above a gap; a sender that had discarded them on a
// selective ACK could never send them again. Over TCP a compliant sender
// makes no gaps, so holding these few messages a little longer costs
// nothing in practice.
//
// # Usage
//
// Receiving, per reliable frame, on the event loop:
//
//	switch rx.Receive(seq, now) {
//	case seqwin.Deliver:
//		deliver(msg)
//		for s, ok := rx.Ready(); ok; s, ok = rx.Ready() {
//			deliver(held.take(s))
//		}
//	case seqwin.Hold:
//		held.put(seq, msg) // only where the transport may reorder: over TCP, SPEC §12.3 closes
//	case seqwin.Duplicate:
//		// SPEC §12.3: not delivered again; AckDue is now true (re-ACK).
//	case seqwin.TooFar:
//		drop(msg) // not recorded, so never acknowledged: replayed on resume
//	case seqwin.Invalid:
//		closeWith(PROTOCOL_ERROR) // SPEC §12.1: Seq 0
//	}
//	if rx.AckDue(now, policy) {
//		c, sel, delay := rx.Ack(now)
//		sendAck(lane, c, sel, delay)
//		rx.AckSent()
//	} else if at, ok := rx.AckDeadline(policy); ok {
//		armTimer(at)
//	}
//
// Sending:
//
//	if tx.CanSend(len(frame)) {
//		seq := tx.Next()
//		write(encode(seq, frame))
//		tx.Sent(seq, len(frame), now)
//	}
//	// an ACK for this lane arrived:
//	res, err := tx.OnAck(c, sel, delay, now, func(seq uint64) { queue.free(seq) })
//	if err != nil {
//		closeWith(PROTOCOL_ERROR) // SPEC §12.2
//	}
//	if res.HasRTT {
//		rtt.Update(res.RTT)
//	}
//
// Resuming a session: the Receiver is left as it is and its Cumulative is
// sent as ReceivedN; the Sender applies the peer's ReceivedN as a
// cumulative ACK, then Replay hands it the Seqs to send again, in order:
//
//	tx.OnAck(peerReceived, 0, 0, now, free)
//	tx.Replay(func(seq uint64) { requeue(seq) })
//
// # Limits
//
//   - WindowBits = 1024: a Receiver tracks Seqs up to Cumulative+1024. The
//     ReceiveMax this side announces must be ≤ MaxReceiveMax (512) for every
//     frame of a sender that honours it to be tracked and deduplicated
//     exactly. Such a sender never has a Seq beyond C+512 in flight (its
//     window starts at or below our C+1), so the other half is headroom: a
//     peer that overshoots the announced maximum by up to 2×, which §5.4.5
//     forbids us to close for, is still tracked.
//   - TooFar and Hold: SPEC §12.3 makes a gap (a Seq above C+1) a
//     PROTOCOL_ERROR: over one connection a compliant sender makes none (the
//     replay after a resume starts at our Cumulative point). The reactor and
//     the client call Check first and close on either verdict. A caller on a
//     transport that can reorder would buffer held frames instead; it drops
//     a frame that would be Hold,
//     unrecorded, exactly as for TooFar.
//   - An ACK covers Seqs up to C+65 only (§7.2): a duplicate of a held Seq
//     above that is re-acknowledged with an ACK that cannot mention it.
//   - Senders: the receive maximum is clamped to 1..MaxReceiveMax (0 means
//     the spec's default, 256); a message larger than the byte limit can
//     never be sent, so the limit must be at least the largest frame.
//   - Seq 2^64−1 is never assigned (§12.1: a sender MUST NOT wrap around).
//   - Times are int64 nanoseconds from any monotonic origin; the caller's
//     clock must not go backwards.
//
// # Goroutines
//
// A Receiver or Sender belongs to whoever owns its session's lane: the
// connection's event loop while it is attached, the session's owner between
// connections. No method is safe for concurrent use; there are no locks.
// The callbacks of OnAck and Replay run inside the call, on the caller's
// goroutine, and must not call methods of the same Sender.
package seqwin
