package rtt

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

var nominal = []struct {
	attempt int
	want    time.Duration
}{
	{math.MinInt, time.Second}, {-1, time.Second}, {0, time.Second},
	{1, time.Second}, {2, 5 * time.Second}, {3, 15 * time.Second}, {4, 30 * time.Second},
	{5, 60 * time.Second}, {6, 60 * time.Second}, {100, 60 * time.Second}, {math.MaxInt, 60 * time.Second},
}

func fixed(v float64) func() float64 { return func() float64 { return v } }

func TestRedeliverySchedule(t *testing.T) {
	for _, c := range nominal {
		if got := Redelivery(c.attempt, nil); got != c.want {
			t.Errorf("Redelivery(%d, nil) = %v, want %v", c.attempt, got, c.want)
		}
		// 0.5 is the middle of the jitter range: factor 1.0 exactly.
		if got := Redelivery(c.attempt, fixed(0.5)); got != c.want {
			t.Errorf("Redelivery(%d, 0.5) = %v, want %v", c.attempt, got, c.want)
		}
		if got, want := Redelivery(c.attempt, fixed(0)), c.want*8/10; got != want {
			t.Errorf("Redelivery(%d, 0) = %v, want %v", c.attempt, got, want)
		}
		if got, want := Redelivery(c.attempt, fixed(1)), c.want*12/10; got != want {
			t.Errorf("Redelivery(%d, 1) = %v, want %v", c.attempt, got, want)
		}
	}
}

// Whatever rnd returns, the wait stays within ±20 % of the nominal one.
func TestRedeliveryBadSource(t *testing.T) {
	for _, v := range []float64{math.Nextafter(1, 0), -1, 2, math.NaN(), math.Inf(1), math.Inf(-1), math.SmallestNonzeroFloat64} {
		for _, c := range nominal {
			got := Redelivery(c.attempt, fixed(v))
			if got < c.want*8/10 || got > c.want*12/10 {
				t.Errorf("Redelivery(%d, %v) = %v, outside ±20%% of %v", c.attempt, v, got, c.want)
			}
		}
	}
}

// Property: over many draws of math/rand/v2's Float64 every wait is within
// ±20 % of the nominal one, the draws reach close to both ends, and their
// mean is within 0.5 % of the nominal (the standard error of the mean of
// 100,000 draws of U[0.8, 1.2] is 0.04 %).
func TestRedeliveryJitter(t *testing.T) {
	const draws = 100_000
	rng := rand.New(rand.NewPCG(1, 2))
	for attempt := 1; attempt <= 6; attempt++ {
		n := Redelivery(attempt, nil)
		lo, hi := n*8/10, n*12/10
		minSeen, maxSeen, sum := time.Duration(math.MaxInt64), time.Duration(0), 0.0
		for range draws {
			d := Redelivery(attempt, rng.Float64)
			if d < lo || d > hi {
				t.Fatalf("attempt %d: %v outside [%v, %v]", attempt, d, lo, hi)
			}
			minSeen, maxSeen = min(minSeen, d), max(maxSeen, d)
			sum += float64(d)
		}
		mean := sum / draws
		if math.Abs(mean/float64(n)-1) > 0.005 {
			t.Errorf("attempt %d: mean %v, nominal %v", attempt, time.Duration(mean), n)
		}
		if float64(minSeen) > 0.801*float64(n) || float64(maxSeen) < 1.199*float64(n) {
			t.Errorf("attempt %d: draws span only [%v, %v] of [%v, %v]", attempt, minSeen, maxSeen, lo, hi)
		}
	}
}

func TestShouldDeadLetter(t *testing.T) {
	cases := []struct {
		deliveries, max int
		want            bool
	}{
		{1, 5, false}, {4, 5, false}, {5, 5, true}, {6, 5, true},
		{4, 0, false}, {5, 0, true}, {5, -1, true}, // default 5
		{0, 1, false}, {1, 1, true},
		{9, 10, false}, {10, 10, true},
	}
	for _, c := range cases {
		if got := ShouldDeadLetter(c.deliveries, c.max); got != c.want {
			t.Errorf("ShouldDeadLetter(%d, %d) = %v, want %v", c.deliveries, c.max, got, c.want)
		}
	}
}

// With the default limit a message is delivered 5 times, waiting 1, 5, 15
// and 30 s between deliveries, then dead-lettered.
func TestRedeliveryLifecycle(t *testing.T) {
	var waits []time.Duration
	deliveries := 1 // the first delivery
	for !ShouldDeadLetter(deliveries, DefaultMaxDeliveries) {
		waits = append(waits, Redelivery(deliveries, nil))
		deliveries++
	}
	want := []time.Duration{time.Second, 5 * time.Second, 15 * time.Second, 30 * time.Second}
	if deliveries != DefaultMaxDeliveries || len(waits) != len(want) {
		t.Fatalf("%d deliveries, waits %v; want %d deliveries, waits %v", deliveries, waits, DefaultMaxDeliveries, want)
	}
	for i := range want {
		if waits[i] != want[i] {
			t.Fatalf("waits %v, want %v", waits, want)
		}
	}
}
