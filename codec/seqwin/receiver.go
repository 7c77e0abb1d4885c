package seqwin

import (
	"math"
	"math/bits"
	"time"
)

const (
	// WindowBits is how far above its Cumulative point a Receiver tracks
	// Seqs: C+1 .. C+WindowBits. It is twice MaxReceiveMax; see the package
	// doc for why.
	WindowBits = 1024

	// MaxReceiveMax is the largest ReceiveMax (SPEC §5.4.5) this side may
	// announce, and the largest in-flight window a Sender uses.
	MaxReceiveMax = WindowBits / 2

	// DefaultReceiveMax is what an announced ReceiveMax of 0 means
	// (SPEC §5.4.5).
	DefaultReceiveMax = 256

	windowWords = WindowBits / 64
	windowMask  = WindowBits - 1
)

// Verdict is what Receive decided about a Seq, and so what the caller does
// with its message.
type Verdict uint8

const (
	// Invalid: Seq 0. SPEC §12.1: "a receiver that gets a reliable frame
	// with Seq 0 closes with PROTOCOL_ERROR". Nothing is recorded. It is the
	// zero Verdict.
	Invalid Verdict = iota
	// Deliver: new and next in order; hand it to the application now, then
	// drain Ready, which may have become non-empty.
	Deliver
	// Hold: new, but above a gap, or behind Seqs that Ready has not yet
	// popped. It is recorded as received (and acknowledged); the caller keeps
	// the message until Ready returns its Seq. SPEC §12.3: a gap is not an
	// error.
	Hold
	// Duplicate: received before. SPEC §12.3: the receiver "MUST NOT deliver
	// it again, and MUST acknowledge it again"; AckDue is true from now until
	// AckSent.
	Duplicate
	// TooFar: above Cumulative+WindowBits, so the sender had more than
	// WindowBits frames unacknowledged. Nothing is recorded: the frame is
	// dropped and, never acknowledged, replayed on resume. See the package
	// doc (Limits) for why this is not a PROTOCOL_ERROR yet.
	TooFar
)

var verdictNames = [...]string{
	Invalid:   "Invalid",
	Deliver:   "Deliver",
	Hold:      "Hold",
	Duplicate: "Duplicate",
	TooFar:    "TooFar",
}

func (v Verdict) String() string {
	if int(v) < len(verdictNames) {
		return verdictNames[v]
	}
	return "Verdict(?)"
}

// AckPolicy says when a Receiver owes an ACK (SPEC §12.4: after every 2nd
// reliable frame or 25 ms, whichever first); these are the knobs. The
// zero value means the defaults.
type AckPolicy struct {
	// EveryN: an ACK is due once this many new Seqs arrived since the last
	// one. ≤ 0 means 2.
	EveryN int
	// MaxDelay: an ACK is due when the oldest receipt it would acknowledge is
	// this old. ≤ 0 means 25 ms.
	MaxDelay time.Duration
}

const (
	defaultEveryN   = 2
	defaultMaxDelay = 25 * time.Millisecond
)

func (p AckPolicy) everyN() int {
	if p.EveryN <= 0 {
		return defaultEveryN
	}
	return p.EveryN
}

func (p AckPolicy) maxDelay() int64 {
	if p.MaxDelay <= 0 {
		return int64(defaultMaxDelay)
	}
	return int64(p.MaxDelay)
}

// Receiver is the receive state of one lane of one direction of a session:
// the zero value expects Seq 1. It is a fixed 168 bytes and does not
// allocate.
type Receiver struct {
	// bits: bit (s mod WindowBits) is set when Seq s was received, for s in
	// C+1 .. C+WindowBits; every other bit is 0. Bit (C+1) is always 0.
	bits [windowWords]uint64
	// cum is the Cumulative point C: every Seq ≤ cum was received.
	cum uint64
	// delivered is the highest Seq handed to the application by Deliver or
	// Ready; delivered ≤ cum, and Ready pops delivered+1 .. cum.
	delivered uint64
	// firstAt is when the oldest receipt not yet acknowledged arrived; valid
	// when unacked > 0 or dup.
	firstAt int64
	// lastAt is when the newest accepted frame (new or duplicate) arrived;
	// valid when seen.
	lastAt int64
	// unacked counts new Seqs since the last AckSent (saturating).
	unacked uint32
	// dup: a Duplicate arrived since the last AckSent.
	dup  bool
	seen bool
}

// Check returns the Verdict Receive would return for seq, without changing
// anything. A caller that will not buffer out-of-order messages uses it to
// drop a frame that would be Hold before it is recorded and acknowledged.
func (r *Receiver) Check(seq uint64) Verdict {
	switch {
	case seq == 0:
		return Invalid
	case seq <= r.cum:
		return Duplicate
	case seq-r.cum > WindowBits:
		return TooFar
	case r.has(seq):
		return Duplicate
	case seq == r.cum+1 && r.delivered == r.cum:
		return Deliver
	default:
		return Hold
	}
}

// Receive records the arrival of the reliable frame seq at time now (int64
// nanoseconds, monotonic) and says what to do with its message. Invalid and
// TooFar change nothing; Deliver, Hold and Duplicate count towards the next
// ACK (see AckDue).
func (r *Receiver) Receive(seq uint64, now int64) Verdict {
	v := r.Check(seq)
	switch v {
	case Deliver, Hold:
		p := seq & windowMask
		r.bits[p>>6] |= 1 << (p & 63)
		if seq == r.cum+1 {
			r.advance()
		}
		if v == Deliver {
			r.delivered = seq
		}
		r.noteReceipt(now)
		if r.unacked != math.MaxUint32 {
			r.unacked++
		}
	case Duplicate:
		r.noteReceipt(now)
		r.dup = true
	}
	return v
}

func (r *Receiver) has(seq uint64) bool {
	p := seq & windowMask
	return r.bits[p>>6]&(1<<(p&63)) != 0
}

// advance moves cum over the run of set bits starting at cum+1, clearing
// them, a word at a time. The run ends within WindowBits: bits above
// cum+WindowBits are never set, and those passed are cleared.
func (r *Receiver) advance() {
	for {
		p := (r.cum + 1) & windowMask
		w, b := p>>6, p&63
		// Consecutive ones from bit b up; the zeros shifted in at the top
		// stop the count at 64-b.
		run := uint64(bits.TrailingZeros64(^(r.bits[w] >> b)))
		if run == 0 {
			return
		}
		r.bits[w] &^= (^uint64(0) >> (64 - run)) << b
		r.cum += run
		if b+run < 64 {
			return
		}
	}
}

func (r *Receiver) noteReceipt(now int64) {
	if r.unacked == 0 && !r.dup {
		r.firstAt = now
	}
	r.lastAt = now
	r.seen = true
}

// Ready pops the next Seq that has become deliverable in order: after a
// Deliver that filled a gap, the held Seqs above it, lowest first. ok is
// false when there is none. Drain it after every Deliver.
func (r *Receiver) Ready() (seq uint64, ok bool) {
	if r.delivered == r.cum {
		return 0, false
	}
	r.delivered++
	return r.delivered, true
}

// Next is the Seq whose arrival would be in order: Cumulative()+1.
func (r *Receiver) Next() uint64 { return r.cum + 1 }

// Cumulative is the ACK's Cumulative field (SPEC §12.2): every Seq ≤ it was
// received; 0 means none. It is also the position this side announces as
// ReceivedN when the session resumes (SPEC §5.2, §5.3).
func (r *Receiver) Cumulative() uint64 { return r.cum }

// Ack returns the fields of the ACK for this lane (SPEC §7.2, §12.2) as of
// now. It changes nothing; call AckSent once the ACK is queued.
//
// Selective bit i is set exactly when Seq cumulative+2+i was received.
// delayMicros is the time since the newest frame this ACK acknowledges
// arrived, as §7.2 defines AckDelay: the frame most recently accepted (new
// or duplicate), capped at 2^32−1 µs, 0 before any. It is never more than
// the time the ACK held any Seq it acknowledges, so a sender that subtracts
// it from an RTT sample measured on any of them never underestimates the
// round trip.
func (r *Receiver) Ack(now int64) (cumulative, selective uint64, delayMicros uint32) {
	p := (r.cum + 2) & windowMask
	w, b := p>>6, p&63
	selective = r.bits[w] >> b
	if b != 0 {
		selective |= r.bits[(w+1)%windowWords] << (64 - b)
	}
	if r.seen && now > r.lastAt {
		us := (now - r.lastAt) / int64(time.Microsecond)
		if us > math.MaxUint32 {
			us = math.MaxUint32
		}
		delayMicros = uint32(us)
	}
	return r.cum, selective, delayMicros
}

// AckDue reports whether an ACK is owed now: a Duplicate arrived since the
// last AckSent (SPEC §12.3: acknowledge it again), or policy.EveryN new Seqs
// did, or the oldest receipt not yet acknowledged is policy.MaxDelay old.
func (r *Receiver) AckDue(now int64, policy AckPolicy) bool {
	if r.dup || int64(r.unacked) >= int64(policy.everyN()) {
		return true
	}
	return r.unacked > 0 && now-r.firstAt >= policy.maxDelay()
}

// AckDeadline is when the owed ACK becomes due under policy, for the
// caller's timer; ok is false when nothing awaits acknowledgement. A
// deadline at or before now means due now. (It takes the policy because the
// deadline depends on MaxDelay.)
func (r *Receiver) AckDeadline(policy AckPolicy) (at int64, ok bool) {
	switch {
	case r.dup || int64(r.unacked) >= int64(policy.everyN()):
		return r.lastAt, true
	case r.unacked > 0:
		return r.firstAt + policy.maxDelay(), true
	default:
		return 0, false
	}
}

// AckSent records that the ACK returned by Ack has been queued: nothing is
// owed until the next Receive.
func (r *Receiver) AckSent() {
	r.unacked = 0
	r.dup = false
}

// Reset forgets everything and expects next: every Seq below it counts as
// received and delivered. next 0 means 1. Use it to start a new session
// (Reset(1), the same as the zero value) or to restore a lane from a stored
// position. A resumed session keeps its Receiver as it is instead: Reset
// drops the held Seqs, which the caller must then discard (the sender
// replays them, as it replays everything above the position, §12.8).
func (r *Receiver) Reset(next uint64) {
	if next == 0 {
		next = 1
	}
	*r = Receiver{cum: next - 1, delivered: next - 1}
}
