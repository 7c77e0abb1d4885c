package rtt

import "time"

// DefaultMaxDeliveries is how many times a message is delivered to the
// application (the first delivery included) before it is dead-lettered,
// when no limit is configured.
const DefaultMaxDeliveries = 5

// redeliverySchedule is the nominal wait before each redelivery; past its
// end the last step repeats.
var redeliverySchedule = [...]time.Duration{
	1 * time.Second,
	5 * time.Second,
	15 * time.Second,
	30 * time.Second,
	60 * time.Second,
}

// Redelivery is how long to wait before redelivering a message to the
// application after a NACK or a missed processing confirmation: attempt n
// is the nth redelivery, the wait before delivery n+1. The nominal waits are
// 1 s, 5 s, 15 s, 30 s, then 60 s for every later attempt; an attempt below 1
// counts as 1.
//
// Each wait is multiplied by a jitter factor uniform in [0.8, 1.2] drawn from
// rnd (math/rand/v2's Float64; a test passes a fixed source), so that
// messages failed together do not come back together. rnd's value is
// clamped to [0, 1], so the result stays within ±20 % of the nominal wait
// whatever rnd returns; a nil rnd means no jitter. The arithmetic is in
// integer nanoseconds apart from one multiplication by rnd's value, so the
// bounds are exact. Safe from any goroutine if rnd is; no allocation.
func Redelivery(attempt int, rnd func() float64) time.Duration {
	i := min(max(attempt, 1), len(redeliverySchedule)) - 1
	nominal := redeliverySchedule[i]
	if rnd == nil {
		return nominal
	}
	r := rnd()
	if !(r >= 0) { // negative or NaN
		r = 0
	}
	r = min(r, 1)
	// nominal is a whole number of seconds, so 4/5 and 2/5 of it are exact;
	// span·r ≤ span for r ≤ 1, and the conversion truncates.
	span := nominal * 2 / 5
	return nominal*4/5 + time.Duration(float64(span)*r)
}

// ShouldDeadLetter reports whether a message delivered deliveries times
// (the first delivery included) without success must go to the dead-letter
// queue instead of being redelivered. A maxDeliveries of 0 or less means
// DefaultMaxDeliveries. With the default the waits used are 1, 5, 15 and
// 30 s: the fifth delivery is the last.
func ShouldDeadLetter(deliveries, maxDeliveries int) bool {
	if maxDeliveries <= 0 {
		maxDeliveries = DefaultMaxDeliveries
	}
	return deliveries >= maxDeliveries
}
