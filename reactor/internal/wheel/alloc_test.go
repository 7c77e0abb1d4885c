//go:build !race

package wheel

import (
	"testing"
	"time"
)

// Zero-allocation claims: scheduling, moving, stopping, cascading and firing
// allocate nothing once a Timer is initialised.
func TestAllocs(t *testing.T) {
	w, clk := newTestWheel(time.Millisecond)
	fired := 0
	onFire := func(*Timer) { fired++ }
	background := make([]Timer, 1000)
	for i := range background {
		background[i].Init(onFire)
		w.ScheduleAfter(&background[i], time.Duration(i+1)*24*time.Hour)
	}
	var x, y Timer
	x.Init(onFire)
	y.Init(onFire)

	t.Run("schedule+stop", func(t *testing.T) {
		d := time.Second
		allocs := testing.AllocsPerRun(1000, func() {
			d += 7 * time.Millisecond
			w.ScheduleAfter(&x, d)
			w.Schedule(&x, w.Now().Add(2*d)) // move while pending
			if !w.Stop(&x) {
				t.Fatal("Stop of a pending timer returned false")
			}
		})
		if allocs != 0 {
			t.Fatalf("schedule+stop: %v allocs/op, want 0", allocs)
		}
	})

	t.Run("schedule+advance+fire", func(t *testing.T) {
		now := w.Now()
		before := fired
		allocs := testing.AllocsPerRun(1000, func() {
			w.ScheduleAfter(&x, 3*time.Millisecond)
			w.ScheduleAfter(&y, 5*time.Second) // cascades from level 1
			now = now.Add(5 * time.Second)
			w.Advance(now)
		})
		if allocs != 0 {
			t.Fatalf("schedule+advance+fire: %v allocs/op, want 0", allocs)
		}
		if got := fired - before; got != 2*1001 {
			t.Fatalf("%d timers fired, want %d", got, 2*1001)
		}
		_ = clk
	})
}
