package rtt_test

import (
	"fmt"
	"time"

	"github.com/ferry-proto/ferry/codec/rtt"
)

// A connection sends a reliable frame and then hears nothing: three PINGs,
// each after a doubled PTO, then it is declared dead. The PTO starts at
// 40 + 4·20 + 25 = 145 ms, which the floor raises to 250 ms; the doubled
// values 290, 580 and 1160 ms are above it.
func ExampleProber() {
	var p rtt.Prober
	p.RTT.Sample(40*time.Millisecond, 0) // from an earlier PING/PONG
	p.MaxAckDelay = 25 * time.Millisecond

	now := int64(0) // the loop clock, in nanoseconds
	p.Arm(now)      // a reliable frame went out
	for {
		at, ok := p.Deadline()
		if !ok {
			break
		}
		now = at // the connection's wheel timer fires
		a := p.OnDeadline(now)
		fmt.Printf("%5v %v\n", time.Duration(now), a)
		if a == rtt.Dead {
			break
		}
	}
	// Output:
	// 250ms SendPing
	// 540ms SendPing
	// 1.12s SendPing
	// 2.28s Dead
}

// A message whose processing keeps failing is delivered
// DefaultMaxDeliveries times, then dead-lettered.
func ExampleRedelivery() {
	deliveries := 1
	for !rtt.ShouldDeadLetter(deliveries, rtt.DefaultMaxDeliveries) {
		// In the server: rtt.Redelivery(deliveries, rand.Float64), ±20 %.
		fmt.Printf("delivery %d failed, redeliver in %v\n", deliveries, rtt.Redelivery(deliveries, nil))
		deliveries++
	}
	fmt.Printf("delivery %d failed, dead-letter\n", deliveries)
	// Output:
	// delivery 1 failed, redeliver in 1s
	// delivery 2 failed, redeliver in 5s
	// delivery 3 failed, redeliver in 15s
	// delivery 4 failed, redeliver in 30s
	// delivery 5 failed, dead-letter
}
