package client

import "time"

// backoff is the reconnect schedule: attempt n (n ≥ 1) waits
// initial × 1.6^(n−1), at most max, times a jitter factor uniform in
// [0.8, 1.2], and never more than max. With the defaults (0.5 s, 30 s):
// 0.5, 0.8, 1.28, 2.05, 3.28, 5.24, 8.39, 13.4, 21.5, 30, 30 … s, each ±20 %
// (the capped steps spread over [24 s, 30 s]).
type backoff struct {
	initial, max time.Duration
	rnd          func() float64 // uniform in [0, 1); clamped
}

const backoffFactor = 1.6

func (b backoff) delay(attempt int) time.Duration {
	nominal := float64(b.initial)
	for i := 1; i < attempt && nominal < float64(b.max); i++ {
		nominal *= backoffFactor
	}
	nominal = min(nominal, float64(b.max))
	d := time.Duration(nominal * (0.8 + 0.4*unit(b.rnd)))
	return min(d, b.max)
}

// goAwayDelay is how long SPEC §7.4 makes a client wait after a GOAWAY
// before it connects again: ReconnectAfterMs + J, J uniform in
// [0, ReconnectAfterMs/2], or in [0, 1000] ms when the hint is 0.
func goAwayDelay(hintMs uint32, rnd func() float64) time.Duration {
	hint := time.Duration(hintMs) * time.Millisecond
	span := hint / 2
	if hintMs == 0 {
		span = time.Second
	}
	return hint + time.Duration(float64(span)*unit(rnd))
}

// unit draws from rnd and clamps the value to [0, 1]; nil gives 0.5.
func unit(rnd func() float64) float64 {
	if rnd == nil {
		return 0.5
	}
	r := rnd()
	if !(r >= 0) { // negative or NaN
		return 0
	}
	return min(r, 1)
}
