//go:build !race

package rtt

import (
	"math/rand/v2"
	"testing"
	"time"
)

// Zero-allocation claims: the estimator, the PTO, the prober and the backoff
// run per ACK, per PONG and per timer firing on the event loop.
func TestAllocs(t *testing.T) {
	var e Estimator
	r := time.Duration(0)
	check := func(name string, f func()) {
		t.Helper()
		if n := testing.AllocsPerRun(1000, f); n != 0 {
			t.Errorf("%s: %v allocs/op, want 0", name, n)
		}
	}
	check("Sample", func() {
		r += 37 * time.Microsecond
		e.Sample(r, time.Millisecond)
	})
	probes := 0
	var sink time.Duration
	check("PTO", func() {
		probes = (probes + 1) % 12
		sink += e.PTO(25*time.Millisecond, probes)
	})
	p := &Prober{MinPingInterval: time.Second}
	p.RTT.Sample(100*time.Millisecond, 0)
	now := int64(0)
	check("Prober", func() {
		p.Arm(now)
		for {
			at, ok := p.Deadline()
			if !ok {
				break
			}
			now = at
			if p.OnDeadline(now) == Dead {
				break
			}
		}
		p.OnAckOrPong(now)
		p.PingSent(now)
		p.Outstanding(false)
	})
	rnd := rand.New(rand.NewPCG(1, 1)).Float64
	attempt := 0
	check("Redelivery", func() {
		attempt++
		sink += Redelivery(attempt, rnd)
		_ = ShouldDeadLetter(attempt, DefaultMaxDeliveries)
	})
	_ = sink
}
