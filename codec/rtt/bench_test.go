package rtt

import (
	"math/rand/v2"
	"testing"
	"time"
)

var sinkDuration time.Duration

func BenchmarkSample(b *testing.B) {
	rtts := make([]time.Duration, 1024)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range rtts {
		rtts[i] = 20*time.Millisecond + time.Duration(rng.Int64N(int64(10*time.Millisecond)))
	}
	var e Estimator
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		e.Sample(rtts[i&1023], 500*time.Microsecond)
		i++
	}
	sinkDuration = e.SRTT()
}

func BenchmarkPTO(b *testing.B) {
	for _, c := range []struct {
		name   string
		probes int
	}{{"probes=0", 0}, {"probes=3", 3}, {"probes=100", 100}} {
		b.Run(c.name, func(b *testing.B) {
			var e Estimator
			e.Sample(30*time.Millisecond, 0)
			e.Sample(34*time.Millisecond, 0)
			b.ReportAllocs()
			var d time.Duration
			for b.Loop() {
				d += e.PTO(25*time.Millisecond, c.probes)
			}
			sinkDuration = d
		})
	}
}

// BenchmarkProber is one ACK-timeout cycle of a connection: a send arms the
// timer, the timer fires once and asks for a probe, and the PONG resets it.
func BenchmarkProber(b *testing.B) {
	p := &Prober{MaxAckDelay: 25 * time.Millisecond}
	p.RTT.Sample(30*time.Millisecond, 0)
	now := int64(0)
	b.ReportAllocs()
	for b.Loop() {
		p.Arm(now)
		now, _ = p.Deadline()
		if p.OnDeadline(now) != SendPing {
			b.Fatal("no probe")
		}
		p.OnAckOrPong(now)
		p.Outstanding(false)
	}
}
