package wheel_test

import (
	"fmt"
	"time"

	"github.com/ferry-proto/ferry/reactor/internal/wheel"
)

type conn struct {
	id        int
	handshake wheel.Timer
	idle      wheel.Timer
}

func Example() {
	start := time.Now()
	w := wheel.New(10*time.Millisecond, start)

	c := &conn{id: 7}
	c.handshake.Init(func(*wheel.Timer) { fmt.Println("conn", c.id, "handshake timeout") })
	c.idle.Init(func(*wheel.Timer) { fmt.Println("conn", c.id, "idle") })
	w.ScheduleAfter(&c.handshake, 5*time.Second)
	w.ScheduleAfter(&c.idle, 30*time.Second)

	// The handshake completes after 1 s: its timer is no longer needed.
	w.Advance(start.Add(time.Second))
	fmt.Println("stopped:", w.Stop(&c.handshake), "pending:", w.Len())

	// 30 s is beyond the current 640 ms block, so the answer is the start of
	// the wheel slot holding the timer: early, never late.
	at, _ := w.NextDeadline()
	fmt.Println("sleep at most until", at.Sub(start))

	// A fake clock here; the reactor passes time.Now().
	fmt.Println("fired:", w.Advance(start.Add(29*time.Second)))
	fmt.Println("fired:", w.Advance(start.Add(30*time.Second)))
	// Output:
	// stopped: true pending: 1
	// sleep at most until 29.44s
	// fired: 0
	// conn 7 idle
	// fired: 1
}
