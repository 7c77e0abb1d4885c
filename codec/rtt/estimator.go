package rtt

import "time"

const (
	// InitialRTT stands in for SRTT before the first sample (RFC 9002 §6.2.2:
	// 333 ms, which RFC 6298 would turn into a 1 s initial timeout). RTTVAR
	// starts at InitialRTT/2, as if InitialRTT had been the first sample.
	InitialRTT = 333 * time.Millisecond

	// Granularity is the floor of the variance term of the PTO, so that a
	// path with a perfectly steady RTT still gets some slack for timer and
	// scheduling jitter (RFC 9002's kGranularity, which is 1 ms; ours is
	// 10 ms, a tick of the reactor's timing wheel).
	Granularity = 10 * time.Millisecond

	// MinPTO and MaxPTO bound the probe timeout. The floor keeps a fast
	// path from being probed (and declared dead) within a GC pause or a
	// loaded loop's tick; the ceiling bounds how long a dead connection goes
	// unnoticed and how far doubling can go.
	MinPTO = 250 * time.Millisecond
	MaxPTO = 60 * time.Second
)

// Estimator is a connection's round-trip time estimate: RFC 6298's SRTT and
// RTTVAR, with RFC 9002's MinRTT and ACK-delay rule. The zero value is ready
// and has no samples; until the first, SRTT is InitialRTT and RTTVAR
// InitialRTT/2. It is not safe for concurrent use: it belongs to the
// connection's event loop.
type Estimator struct {
	srtt    time.Duration
	rttvar  time.Duration
	minRTT  time.Duration
	samples int
}

// Sample adds one round-trip measurement: rtt is the time from sending a
// frame to receiving what answers it, ackDelay the time the peer says it held
// its answer (an ACK's AckDelay; 0 for a PONG). The caller applies Karn's
// rule: no sample from a frame that was sent more than once.
//
// As RFC 9002 §5.3 does, MinRTT tracks the raw rtt, and ackDelay is
// subtracted only when rtt ≥ MinRTT + ackDelay, so that a peer's claim can
// never bring a sample below the smallest round trip seen here. The first
// sample therefore keeps its ack delay (unless it is 0) and sets SRTT = R,
// RTTVAR = R/2 (RFC 6298 §2.2); later ones update
//
//	RTTVAR = 3/4·RTTVAR + 1/4·|SRTT − R|   (first, with the old SRTT)
//	SRTT   = 7/8·SRTT + 1/8·R
//
// (RFC 6298 §2.3) in integer nanoseconds, computed as increments so that no
// value overflows. A negative rtt is ignored; a negative ackDelay counts as 0.
// Sample runs on the connection's loop and does not allocate.
func (e *Estimator) Sample(rtt, ackDelay time.Duration) {
	if rtt < 0 {
		return
	}
	ackDelay = max(ackDelay, 0)
	if e.samples == 0 || rtt < e.minRTT {
		e.minRTT = rtt
	}
	r := rtt
	if rtt-ackDelay >= e.minRTT { // rtt ≥ minRTT + ackDelay, without overflow
		r = rtt - ackDelay
	}
	e.samples++
	if e.samples == 1 {
		e.srtt = r
		e.rttvar = r / 2
		return
	}
	dev := e.srtt - r
	if dev < 0 {
		dev = -dev
	}
	e.rttvar += (dev - e.rttvar) / 4
	e.srtt += (r - e.srtt) / 8
}

// SRTT is the smoothed round-trip time: InitialRTT before the first sample.
func (e *Estimator) SRTT() time.Duration {
	if e.samples == 0 {
		return InitialRTT
	}
	return e.srtt
}

// RTTVar is the round-trip time variation: InitialRTT/2 before the first
// sample.
func (e *Estimator) RTTVar() time.Duration {
	if e.samples == 0 {
		return InitialRTT / 2
	}
	return e.rttvar
}

// MinRTT is the smallest raw sample seen (ack delay included), 0 before the
// first.
func (e *Estimator) MinRTT() time.Duration { return e.minRTT }

// Samples is how many samples Sample has accepted.
func (e *Estimator) Samples() int { return e.samples }

// PTO is how long to wait for an ACK (or a PONG) before probing:
//
//	(SRTT + max(4·RTTVAR, Granularity) + maxAckDelay) × 2^probes
//
// clamped to [MinPTO, MaxPTO]. probes is how many probes have gone
// unanswered; each doubles the wait. The clamp comes after the doubling, so
// MaxPTO bounds the doubled value too (any probes, 100 or more, gives at most
// MaxPTO, with no overflow), and with a small RTT the first few doublings
// stay under MinPTO and do not show. maxAckDelay is the longest the peer may
// hold an ACK; a negative one counts as 0, as does a negative probes.
// PTO does not allocate.
func (e *Estimator) PTO(maxAckDelay time.Duration, probes int) time.Duration {
	srtt, rttvar := e.SRTT(), e.RTTVar()
	maxAckDelay = max(maxAckDelay, 0)
	// Any term at or past the ceiling gives the ceiling; below it the sum
	// is under 3·MaxPTO and cannot overflow.
	if srtt >= MaxPTO || rttvar >= MaxPTO/4 || maxAckDelay >= MaxPTO {
		return MaxPTO
	}
	d := srtt + max(4*rttvar, Granularity) + maxAckDelay
	if probes > 0 {
		// d ≥ Granularity, so 32 doublings pass any ceiling; the test
		// against MaxPTO>>probes keeps the shift from overflowing.
		if probes >= 32 || d > MaxPTO>>probes {
			return MaxPTO
		}
		d <<= probes
	}
	return min(max(d, MinPTO), MaxPTO)
}
