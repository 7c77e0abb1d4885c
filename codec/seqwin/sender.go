package seqwin

import (
	"errors"
	"math"
	"math/bits"
	"time"
)

var (
	// ErrAckUnknown: an ACK acknowledges a Seq that was never sent on its
	// lane. SPEC §12.2: PROTOCOL_ERROR.
	ErrAckUnknown = errors.New("seqwin: ACK acknowledges a Seq never sent")
	// ErrSeqOrder: Sent was given a Seq other than Next (a caller bug).
	ErrSeqOrder = errors.New("seqwin: Sent with a Seq other than Next")
	// ErrWindowFull: Sent when CanSend would have said no (a caller bug).
	ErrWindowFull = errors.New("seqwin: send window full")
)

// Flags of a slot.
const (
	slotSacked   = 1 << iota // selectively acknowledged
	slotReplayed             // sent again by Replay: no RTT sample (Karn)
)

// slot is one in-flight Seq. 16 bytes.
type slot struct {
	at    int64  // when it was sent
	size  uint32 // bytes counted against the byte limit
	flags uint8
}

// Sender is the send state of one lane of one direction of a session. The
// zero value is usable: it assigns Seq 1 first and allows DefaultReceiveMax
// frames and any number of bytes in flight; SetLimits changes that. The
// ring of in-flight slots is allocated on the first Sent (or by SetLimits)
// and again only if SetLimits raises the receive maximum past its size.
type Sender struct {
	slots []slot // ring: Seq s lives at s & (len-1); len is a power of two ≥ the window
	// acked is the peer's Cumulative point as far as we know: every Seq ≤ it
	// is released. The in-flight Seqs are acked+1 .. sent.
	acked uint64
	// sent is the highest Seq sent; Next is sent+1.
	sent     uint64
	bytes    int // bytes of the in-flight Seqs
	max      int // receive maximum in effect; 0: DefaultReceiveMax
	maxBytes int // byte limit; 0: none
}

// AckResult is what one ACK did.
type AckResult struct {
	// Released counts the Seqs released by this ACK's Cumulative field; the
	// release callback was called for each, in order.
	Released int
	// Bytes is their total size, now freed from the in-flight count.
	Bytes int
	// Largest is the highest Seq this ACK acknowledged for the first time,
	// cumulatively or selectively; 0 if it acknowledged nothing new.
	Largest uint64
	// HasRTT says whether RTT and RawRTT hold a sample: Largest is set, was
	// never replayed (Karn's rule) and was not sent in the future.
	HasRTT bool
	// RawRTT is the time from sending Largest to the ACK's arrival.
	RawRTT time.Duration
	// RTT is RawRTT less the peer's AckDelay, or RawRTT itself when the
	// delay is not smaller than it. (An estimator that keeps a minimum RTT
	// may prefer RawRTT and its own rule, as in RFC 9002 §5.3.)
	RTT time.Duration
}

// SetLimits sets the receive maximum (the peer's announced ReceiveMax,
// SPEC §5.4.5) and the byte limit for this lane. receiveMax ≤ 0 means
// DefaultReceiveMax, and above MaxReceiveMax it is clamped to MaxReceiveMax:
// sending fewer than the peer allows is always allowed. maxBytes ≤ 0 means
// no byte limit. Lowering a limit below what is in flight keeps what is in
// flight and stops CanSend until enough is acknowledged. Raising the receive
// maximum past the ring's size allocates a larger ring: call it at the
// handshake, not per message.
func (s *Sender) SetLimits(receiveMax, maxBytes int) {
	if receiveMax <= 0 {
		receiveMax = DefaultReceiveMax
	}
	s.max = min(receiveMax, MaxReceiveMax)
	s.maxBytes = max(maxBytes, 0)
	if len(s.slots) < s.max {
		s.grow()
	}
}

func (s *Sender) window() int {
	if s.max == 0 {
		return DefaultReceiveMax
	}
	return s.max
}

// grow replaces the ring by one that holds window() slots, moving the
// in-flight ones.
func (s *Sender) grow() {
	n := 1
	for n < s.window() {
		n <<= 1
	}
	ring := make([]slot, n)
	if len(s.slots) > 0 {
		oldMask, newMask := uint64(len(s.slots)-1), uint64(n-1)
		for seq := s.acked + 1; seq <= s.sent; seq++ {
			ring[seq&newMask] = s.slots[seq&oldMask]
		}
	}
	s.slots = ring
}

// Next is the Seq the next reliable frame on this lane carries (SPEC §12.1:
// 1, then each further frame the previous + 1). It does not consume it:
// Sent does.
func (s *Sender) Next() uint64 { return s.sent + 1 }

// Acked is the peer's Cumulative point as far as this Sender knows: every
// Seq ≤ it has been released.
func (s *Sender) Acked() uint64 { return s.acked }

// InFlight is how many Seqs are above the peer's Cumulative point: sent and
// not yet released, selectively acknowledged ones included (the peer still
// holds those above its gap, and they are still replayed on resume).
func (s *Sender) InFlight() int { return int(s.sent - s.acked) }

// Bytes is the total size of the in-flight Seqs.
func (s *Sender) Bytes() int { return s.bytes }

// CanSend reports whether a reliable frame of n bytes may be sent now:
// fewer than the receive maximum are in flight (SPEC §5.4.5: a sender
// SHOULD NOT have more unacknowledged) and n more bytes stay within the byte
// limit.
func (s *Sender) CanSend(n int) bool {
	if n < 0 || n > math.MaxUint32 || s.sent == math.MaxUint64-1 {
		return false // SPEC §12.1: never wrap; 2^64−1 is not used either
	}
	if s.InFlight() >= s.window() {
		return false
	}
	return s.maxBytes == 0 || n <= s.maxBytes-s.bytes
}

// Sent records that the frame Seq seq (which must be Next) of n bytes was
// sent at now. It fails, changing nothing, if seq is not Next
// (ErrSeqOrder) or CanSend(n) is false (ErrWindowFull).
func (s *Sender) Sent(seq uint64, n int, now int64) error {
	if seq != s.sent+1 {
		return ErrSeqOrder
	}
	if !s.CanSend(n) {
		return ErrWindowFull
	}
	if s.slots == nil {
		s.grow()
	}
	s.slots[seq&uint64(len(s.slots)-1)] = slot{at: now, size: uint32(n)}
	s.sent = seq
	s.bytes += n
	return nil
}

// OnAck applies an ACK for this lane (SPEC §7.2, §12.2) that arrived at
// now; delayMicros is its AckDelay. It first checks the ACK against what
// was sent: SPEC §12.2: "An ACK that acknowledges a Seq its receiver never
// sent on that lane (C, or a selective bit, above the highest Seq sent):
// PROTOCOL_ERROR" — it then returns ErrAckUnknown and changes nothing.
//
// Otherwise every in-flight Seq ≤ cumulative is released, lowest first,
// calling release (if not nil) for each, and the Seqs named by selective are
// marked received, which only keeps them from counting as newly
// acknowledged again (see the package doc: selective ACKs release nothing).
// An ACK older than what is already known (cumulative below Acked) is
// harmless: an ACK states the receiver's state, and what was released stays
// released.
func (s *Sender) OnAck(cumulative, selective uint64, delayMicros uint32, now int64, release func(seq uint64)) (AckResult, error) {
	if cumulative > s.sent {
		return AckResult{}, ErrAckUnknown
	}
	if selective != 0 {
		top := uint64(63 - bits.LeadingZeros64(selective)) // highest bit: Seq cumulative+2+top
		if s.sent-cumulative < top+2 {
			return AckResult{}, ErrAckUnknown
		}
	}
	var res AckResult
	var largestAt int64
	var largestReplayed bool
	mask := uint64(len(s.slots) - 1)

	// Selective first: its Seqs are all above cumulative, so a Seq newly
	// marked here is never also released below.
	for sel := selective; sel != 0; sel &= sel - 1 {
		seq := cumulative + 2 + uint64(bits.TrailingZeros64(sel))
		if seq <= s.acked {
			continue // released already
		}
		sl := &s.slots[seq&mask]
		if sl.flags&slotSacked != 0 {
			continue
		}
		sl.flags |= slotSacked
		if seq > res.Largest {
			res.Largest, largestAt, largestReplayed = seq, sl.at, sl.flags&slotReplayed != 0
		}
	}
	for s.acked < cumulative {
		seq := s.acked + 1
		sl := &s.slots[seq&mask]
		if sl.flags&slotSacked == 0 && seq > res.Largest {
			res.Largest, largestAt, largestReplayed = seq, sl.at, sl.flags&slotReplayed != 0
		}
		size := int(sl.size)
		*sl = slot{}
		s.acked = seq
		s.bytes -= size
		res.Released++
		res.Bytes += size
		if release != nil {
			release(seq)
		}
	}

	if res.Largest != 0 && !largestReplayed && now >= largestAt {
		raw := time.Duration(now - largestAt)
		delay := time.Duration(delayMicros) * time.Microsecond
		res.HasRTT, res.RawRTT, res.RTT = true, raw, raw
		if delay < raw {
			res.RTT = raw - delay
		}
	}
	return res, nil
}

// Replay marks every in-flight Seq as replayed, so that no RTT sample is
// taken from it (Karn's rule), and calls fn for each, lowest first: the
// frames to send again on a resumed session's new connection, after the
// peer's ReceivedN has been applied with OnAck (SPEC §12.8: replay from
// these positions). Selectively acknowledged Seqs are included: the resumed
// peer may no longer hold them. Replay changes neither Next nor what counts
// as in flight.
func (s *Sender) Replay(fn func(seq uint64)) {
	mask := uint64(len(s.slots) - 1)
	for seq := s.acked + 1; seq <= s.sent; seq++ {
		s.slots[seq&mask].flags |= slotReplayed
		if fn != nil {
			fn(seq)
		}
	}
}
