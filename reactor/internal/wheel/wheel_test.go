package wheel

import (
	"math"
	"slices"
	"testing"
	"time"
	"unsafe"
)

// fakeClock turns ticks into times for a wheel started at start.
type fakeClock struct {
	start time.Time
	tick  time.Duration
}

func (c fakeClock) at(ticks int64) time.Time { return c.start.Add(time.Duration(ticks) * c.tick) }

func newTestWheel(tick time.Duration) (*Wheel, fakeClock) {
	start := time.Now() // monotonic, like the reactor's
	return New(tick, start), fakeClock{start, tick}
}

// probe is a timer that records the wheel tick of every firing.
type probe struct {
	Timer
	w     *Wheel
	fired []int64
}

func newProbe(w *Wheel) *probe {
	p := &probe{w: w}
	p.Init(func(*Timer) { p.fired = append(p.fired, p.w.cur) })
	return p
}

func TestTimerSize(t *testing.T) {
	size := unsafe.Sizeof(Timer{})
	t.Logf("unsafe.Sizeof(Timer{}) = %d bytes", size)
	if size > 48 {
		t.Fatalf("Timer is %d bytes, over the 48-byte ceiling", size)
	}
	// Two pointers, an int64 and a func: 32 bytes on 64-bit platforms.
	if want := 3*unsafe.Sizeof(uintptr(0)) + 8; size != want {
		t.Fatalf("Timer is %d bytes, want %d: a field was added", size, want)
	}
}

func TestNewDefaults(t *testing.T) {
	w := New(0, time.Now())
	if w.Tick() != DefaultTick {
		t.Fatalf("Tick() = %v, want %v", w.Tick(), DefaultTick)
	}
	if w.Len() != 0 {
		t.Fatalf("Len() = %d on a new wheel", w.Len())
	}
	if _, ok := w.NextDeadline(); ok {
		t.Fatal("NextDeadline ok on an empty wheel")
	}
	if got, min := w.Horizon(), 30*24*time.Hour; got < min {
		t.Fatalf("Horizon() = %v at the default tick, want at least %v", got, min)
	}
	t.Logf("horizon at %v: %v (%.0f days)", DefaultTick, w.Horizon(), w.Horizon().Hours()/24)
	mustPanic(t, "negative tick", func() { New(-time.Millisecond, time.Now()) })
}

func TestScheduleRounding(t *testing.T) {
	const tick = 10 * time.Millisecond
	tests := []struct {
		name     string
		cur      int64         // advance the empty wheel to this tick first
		after    time.Duration // ScheduleAfter(after), from the advanced time
		absolute bool          // use Schedule(Now()+after) instead
		want     int64         // tick at which it must fire
	}{
		{name: "exact tick", after: 20 * time.Millisecond, want: 2},
		{name: "rounds up", after: 15 * time.Millisecond, want: 2},
		{name: "one ns", after: 1, want: 1},
		{name: "zero", after: 0, want: 1},
		{name: "negative", after: -time.Hour, want: 1},
		{name: "past after advance", cur: 5, after: -25 * time.Millisecond, want: 6},
		{name: "zero after advance", cur: 5, after: 0, want: 6},
		{name: "one tick after advance", cur: 5, after: tick, want: 6},
		{name: "absolute rounds up", cur: 7, after: 31 * time.Millisecond, absolute: true, want: 11},
		{name: "absolute in the past", cur: 7, after: -time.Second, absolute: true, want: 8},
		{name: "level 1", after: 64 * tick, want: 64},
		{name: "ten minutes", cur: 3, after: 10 * time.Minute, want: 3 + 60_000},
		{name: "thirty days", after: 30 * 24 * time.Hour, want: 30 * 24 * 360_000},
		{name: "at horizon", cur: 9, after: horizon * tick, want: 9 + horizon},
		{name: "beyond horizon", cur: 9, after: horizon*tick + tick, want: 9 + horizon},
		{name: "max duration", cur: 9, after: math.MaxInt64, want: 9 + horizon},
		{name: "absolute max", cur: 9, after: math.MaxInt64 / 2, absolute: true, want: 9 + horizon},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w, clk := newTestWheel(tick)
			w.Advance(clk.at(tc.cur))
			p := newProbe(w)
			if tc.absolute {
				w.Schedule(&p.Timer, w.Now().Add(tc.after))
			} else {
				w.ScheduleAfter(&p.Timer, tc.after)
			}
			if !p.Pending() || w.Len() != 1 {
				t.Fatalf("Pending() = %v, Len() = %d after Schedule", p.Pending(), w.Len())
			}
			if at, ok := w.NextDeadline(); !ok || at.After(clk.at(tc.want)) {
				t.Fatalf("NextDeadline() = %v, %v: later than the expiry %v", at.Sub(clk.start), ok, clk.at(tc.want).Sub(clk.start))
			}
			// One nanosecond short of the rounded deadline: nothing fires.
			if n := w.Advance(clk.at(tc.want).Add(-1)); n != 0 || len(p.fired) != 0 {
				t.Fatalf("fired early: Advance to tick %d - 1ns fired %d, ticks %v", tc.want, n, p.fired)
			}
			if n := w.Advance(clk.at(tc.want)); n != 1 || len(p.fired) != 1 || p.fired[0] != tc.want {
				t.Fatalf("Advance to tick %d fired %d, ticks %v", tc.want, n, p.fired)
			}
			if p.Pending() || w.Len() != 0 {
				t.Fatalf("Pending() = %v, Len() = %d after firing", p.Pending(), w.Len())
			}
			if _, ok := w.NextDeadline(); ok {
				t.Fatal("NextDeadline ok on an empty wheel")
			}
		})
	}
}

func TestStopAndMove(t *testing.T) {
	w, clk := newTestWheel(time.Millisecond)
	a, b := newProbe(w), newProbe(w)

	if w.Stop(&a.Timer) {
		t.Fatal("Stop of a never-scheduled timer returned true")
	}
	w.ScheduleAfter(&a.Timer, 10*time.Millisecond)
	w.ScheduleAfter(&b.Timer, 10*time.Millisecond)
	if !w.Stop(&a.Timer) || a.Pending() || w.Len() != 1 {
		t.Fatalf("Stop of a pending timer: Pending() = %v, Len() = %d", a.Pending(), w.Len())
	}
	if w.Stop(&a.Timer) {
		t.Fatal("second Stop returned true")
	}

	// Moving a pending timer keeps one entry, later or earlier.
	w.ScheduleAfter(&b.Timer, 500*time.Millisecond)
	w.ScheduleAfter(&b.Timer, 500*time.Millisecond) // same tick: no-op
	if w.Len() != 1 {
		t.Fatalf("Len() = %d after moving", w.Len())
	}
	if n := w.Advance(clk.at(499)); n != 0 {
		t.Fatalf("moved timer fired at its old deadline or early (%d)", n)
	}
	w.ScheduleAfter(&b.Timer, 0) // earlier: next tick
	if n := w.Advance(clk.at(500)); n != 1 || len(b.fired) != 1 || b.fired[0] != 500 {
		t.Fatalf("moved timer: fired %d, ticks %v", n, b.fired)
	}
	if w.Stop(&b.Timer) {
		t.Fatal("Stop after firing returned true")
	}
	if n := w.Advance(clk.at(10_000)); n != 0 || len(a.fired) != 0 {
		t.Fatalf("a stopped timer fired: %d, %v", n, a.fired)
	}

	// Reusable after firing and stopping.
	w.ScheduleAfter(&a.Timer, time.Millisecond)
	if n := w.Advance(clk.at(10_001)); n != 1 || len(a.fired) != 1 {
		t.Fatalf("re-armed timer: fired %d, ticks %v", n, a.fired)
	}

	var bare Timer
	mustPanic(t, "Schedule without Init", func() { w.ScheduleAfter(&bare, time.Second) })
	w.ScheduleAfter(&a.Timer, time.Second)
	mustPanic(t, "Init of a pending timer", func() { a.Init(func(*Timer) {}) })
}

func TestTimeDoesNotRunBackwards(t *testing.T) {
	w, clk := newTestWheel(time.Millisecond)
	w.Advance(clk.at(100))
	p := newProbe(w)
	w.ScheduleAfter(&p.Timer, 5*time.Millisecond)
	if n := w.Advance(clk.at(50)); n != 0 || w.Now() != clk.at(100) {
		t.Fatalf("Advance into the past: fired %d, Now() = %v", n, w.Now().Sub(clk.start))
	}
	if n := w.Advance(clk.start.Add(-time.Hour)); n != 0 {
		t.Fatalf("Advance before start fired %d", n)
	}
	if n := w.Advance(clk.at(105)); n != 1 || p.fired[0] != 105 {
		t.Fatalf("fired %d at %v, want tick 105", n, p.fired)
	}
}

// levelStart is the number of ticks one slot of level l spans.
func levelStart(l int) int64 { return 1 << (levelBits * l) }

// TestCascadeBoundaries puts the wheel just before, at and after every level
// boundary and schedules timers a boundary-sized distance away, then checks
// each fires exactly at its tick, one timer per wheel and all together.
func TestCascadeBoundaries(t *testing.T) {
	var starts []int64 // where cur sits when the timers are scheduled
	var deltas []int64 // how far ahead they are
	for l := 0; l < levels; l++ {
		b := levelStart(l)
		for _, k := range []int64{1, 2, 5, 63} {
			for _, d := range []int64{-2, -1, 0, 1} {
				if s := k*b + d; s >= 0 {
					starts = append(starts, s)
				}
				if x := k*b + d; x >= 1 && x <= horizon {
					deltas = append(deltas, x)
				}
			}
		}
	}
	starts = append(starts, 0, 1<<36-1, 1<<36, 3<<36+12345)
	deltas = append(deltas, horizon-1, horizon)

	for _, s := range starts {
		// One timer per wheel.
		for _, d := range deltas {
			w, clk := newTestWheel(time.Nanosecond)
			w.Advance(clk.at(s))
			p := newProbe(w)
			w.Schedule(&p.Timer, clk.at(s+d))
			if at, _ := w.NextDeadline(); at.After(clk.at(s + d)) {
				t.Fatalf("cur %d delta %d: NextDeadline %d later than expiry", s, d, at.Sub(clk.start))
			}
			if n := w.Advance(clk.at(s + d - 1)); n != 0 {
				t.Fatalf("cur %d delta %d: fired one tick early", s, d)
			}
			if n := w.Advance(clk.at(s + d)); n != 1 || p.fired[0] != s+d {
				t.Fatalf("cur %d delta %d: fired %d at %v", s, d, n, p.fired)
			}
		}

		// All timers in one wheel; walk the clock to one tick before and
		// then onto each expiry, so every cascade happens with others
		// pending around it.
		w, clk := newTestWheel(time.Nanosecond)
		w.Advance(clk.at(s))
		byTick := map[int64][]*probe{}
		var ticks []int64
		for _, d := range deltas {
			p := newProbe(w)
			w.Schedule(&p.Timer, clk.at(s+d))
			if byTick[s+d] == nil {
				ticks = append(ticks, s+d)
			}
			byTick[s+d] = append(byTick[s+d], p)
		}
		slices.Sort(ticks)
		for _, e := range ticks {
			if n := w.Advance(clk.at(e - 1)); n != 0 {
				t.Fatalf("cur %d: %d timers fired before tick %d", s, n, e)
			}
			if at, ok := w.NextDeadline(); !ok || at != clk.at(e) {
				t.Fatalf("cur %d: NextDeadline %v, %v one tick before %d", s, at.Sub(clk.start), ok, e)
			}
			if n := w.Advance(clk.at(e)); n != len(byTick[e]) {
				t.Fatalf("cur %d: %d fired at tick %d, want %d", s, n, e, len(byTick[e]))
			}
			for _, p := range byTick[e] {
				if len(p.fired) != 1 || p.fired[0] != e {
					t.Fatalf("cur %d: timer for tick %d fired at %v", s, e, p.fired)
				}
			}
		}
		if w.Len() != 0 {
			t.Fatalf("cur %d: %d timers left", s, w.Len())
		}
	}
}

// TestTickByTick steps one tick at a time across the first three levels,
// where a timer sits at every tick near a boundary.
func TestTickByTick(t *testing.T) {
	const end = 3*(1<<12) + 70
	w, clk := newTestWheel(time.Millisecond)
	want := map[int64]*probe{}
	for e := int64(1); e <= end; e++ {
		if e < 200 || e%64 <= 2 || e%64 == 63 || e%4096 <= 1 || e%4096 == 4095 {
			p := newProbe(w)
			w.Schedule(&p.Timer, clk.at(e))
			want[e] = p
		}
	}
	for e := int64(1); e <= end; e++ {
		n := w.Advance(clk.at(e))
		if p, ok := want[e]; ok {
			if n != 1 || len(p.fired) != 1 || p.fired[0] != e {
				t.Fatalf("tick %d: fired %d, probe %v", e, n, p.fired)
			}
		} else if n != 0 {
			t.Fatalf("tick %d: fired %d, want none", e, n)
		}
	}
	if w.Len() != 0 {
		t.Fatalf("%d timers left", w.Len())
	}
}

func TestHorizon(t *testing.T) {
	for _, s := range []int64{0, 1, 63, 1<<30 - 1, 1 << 30, 5<<30 + 777, 1<<36 - 1, 1<<36 - 1<<30, 1 << 36, 7<<36 + 3<<30 + 5} {
		w, clk := newTestWheel(time.Nanosecond)
		w.Advance(clk.at(s))
		far, at, near := newProbe(w), newProbe(w), newProbe(w)
		w.ScheduleAfter(&far.Timer, 10*horizon)     // clamped
		w.ScheduleAfter(&at.Timer, horizon)         // exactly at the horizon
		w.ScheduleAfter(&near.Timer, horizon-1<<30) // one top slot earlier
		if w.Len() != 3 {
			t.Fatalf("cur %d: Len() = %d", s, w.Len())
		}
		for _, step := range []int64{1 << 20, 1 << 29, 1<<30 + 1, 17 << 30, horizon - 1<<30 - 1} {
			if next, ok := w.NextDeadline(); !ok || next.After(clk.at(s+horizon-1<<30)) {
				t.Fatalf("cur %d: NextDeadline %v later than the earliest expiry", s, next.Sub(clk.start))
			}
			if n := w.Advance(clk.at(s + step)); n != 0 {
				t.Fatalf("cur %d: fired %d at +%d, before the horizon", s, n, step)
			}
		}
		if n := w.Advance(clk.at(s + horizon - 1<<30)); n != 1 || near.fired[0] != s+horizon-1<<30 {
			t.Fatalf("cur %d: near: fired %d at %v", s, n, near.fired)
		}
		if n := w.Advance(clk.at(s + horizon - 1)); n != 0 {
			t.Fatalf("cur %d: fired %d one tick before the horizon", s, n)
		}
		if n := w.Advance(clk.at(s + horizon)); n != 2 || far.fired[0] != s+horizon || at.fired[0] != s+horizon {
			t.Fatalf("cur %d: at horizon fired %d: far %v at %v", s, n, far.fired, at.fired)
		}
	}
}

func TestCallbacks(t *testing.T) {
	const tick = time.Millisecond
	t.Run("periodic", func(t *testing.T) {
		w, clk := newTestWheel(tick)
		p := &probe{w: w}
		p.Init(func(*Timer) {
			p.fired = append(p.fired, w.cur)
			w.ScheduleAfter(&p.Timer, 7*tick) // from Now(): the Advance time
		})
		w.Schedule(&p.Timer, clk.at(7))
		w.Advance(clk.at(1000))
		// Now() is 1000 during the callback, so the second firing is
		// the tick after: a periodic timer measured from Now() catches up
		// once, not 142 times.
		if len(p.fired) != 1 || p.fired[0] != 7 || !p.Pending() {
			t.Fatalf("fired at %v, pending %v", p.fired, p.Pending())
		}
		w.Advance(clk.at(1006))
		if len(p.fired) != 1 {
			t.Fatalf("fired early at %v", p.fired)
		}
		w.Advance(clk.at(1007))
		if len(p.fired) != 2 || p.fired[1] != 1007 {
			t.Fatalf("fired at %v", p.fired)
		}
	})
	t.Run("periodic absolute", func(t *testing.T) {
		w, clk := newTestWheel(tick)
		p := &probe{w: w}
		p.Init(func(*Timer) {
			p.fired = append(p.fired, w.cur)
			w.Schedule(&p.Timer, clk.at(w.cur+7))
		})
		w.Schedule(&p.Timer, clk.at(7))
		if n := w.Advance(clk.at(1000)); n != 142 {
			t.Fatalf("fired %d, want 142", n)
		}
		for i, e := range p.fired {
			if e != int64(7*(i+1)) {
				t.Fatalf("firing %d at tick %d, want %d", i, e, 7*(i+1))
			}
		}
	})
	t.Run("into the past", func(t *testing.T) {
		w, clk := newTestWheel(tick)
		p := &probe{w: w}
		p.Init(func(*Timer) {
			p.fired = append(p.fired, w.cur)
			w.ScheduleAfter(&p.Timer, -time.Hour)
		})
		w.Schedule(&p.Timer, clk.at(50))
		if n := w.Advance(clk.at(100)); n != 51 {
			t.Fatalf("fired %d, want once per tick 50..100", n)
		}
		if !p.Pending() || p.when != 101 {
			t.Fatalf("pending %v at %d, want tick 101", p.Pending(), p.when)
		}
	})
	t.Run("stop others", func(t *testing.T) {
		w, clk := newTestWheel(tick)
		same, later, after := newProbe(w), newProbe(w), newProbe(w)
		var stopped [3]bool
		killer := &probe{w: w}
		killer.Init(func(*Timer) {
			killer.fired = append(killer.fired, w.cur)
			stopped[0] = w.Stop(&same.Timer)
			stopped[1] = w.Stop(&later.Timer)
			stopped[2] = w.Stop(&after.Timer)
			if w.Len() != 0 {
				t.Errorf("Len() = %d in callback, want 0", w.Len())
			}
		})
		w.Schedule(&killer.Timer, clk.at(10))
		w.Schedule(&same.Timer, clk.at(10))
		w.Schedule(&later.Timer, clk.at(20))
		w.Schedule(&after.Timer, clk.at(5000))
		n := w.Advance(clk.at(100))
		// Timers of one tick fire in no promised order: same either fired
		// before the killer or was stopped by it, never both or neither.
		if stopped[0] == (len(same.fired) == 1) || len(same.fired) > 1 {
			t.Fatalf("same tick: Stop returned %v, fired %v", stopped[0], same.fired)
		}
		if n != 1+len(same.fired) {
			t.Fatalf("fired %d", n)
		}
		if !stopped[1] || !stopped[2] || len(later.fired)+len(after.fired) != 0 {
			t.Fatalf("Stop results %v; fired %v %v", stopped, later.fired, after.fired)
		}
	})
	t.Run("schedule others", func(t *testing.T) {
		w, clk := newTestWheel(tick)
		inside, outside, moved := newProbe(w), newProbe(w), newProbe(w)
		sched := &probe{w: w}
		sched.Init(func(*Timer) {
			sched.fired = append(sched.fired, w.cur)
			w.Schedule(&inside.Timer, clk.at(w.cur+90))    // 100: within this Advance
			w.Schedule(&outside.Timer, clk.at(w.cur+5000)) // 5010
			w.Schedule(&moved.Timer, clk.at(w.cur+1))      // from 10 (same tick) to 11
		})
		w.Schedule(&sched.Timer, clk.at(10))
		w.Schedule(&moved.Timer, clk.at(10))
		if n := w.Advance(clk.at(100)); n != 3 {
			t.Fatalf("fired %d, want 3", n)
		}
		if inside.fired[0] != 100 || moved.fired[0] != 11 || len(outside.fired) != 0 || !outside.Pending() {
			t.Fatalf("inside %v moved %v outside %v", inside.fired, moved.fired, outside.fired)
		}
		w.Advance(clk.at(5010))
		if len(outside.fired) != 1 || outside.fired[0] != 5010 {
			t.Fatalf("outside fired at %v", outside.fired)
		}
	})
	t.Run("no Advance in callback", func(t *testing.T) {
		w, clk := newTestWheel(tick)
		p := &probe{w: w}
		p.Init(func(*Timer) { w.Advance(clk.at(2000)) })
		w.Schedule(&p.Timer, clk.at(10))
		left := newProbe(w)
		w.Schedule(&left.Timer, clk.at(50))
		mustPanic(t, "Advance from a callback", func() { w.Advance(clk.at(100)) })
		// The wheel stays usable after a callback panicked, and the next
		// Advance, even to the same time, finishes the interrupted one.
		if n := w.Advance(clk.at(100)); n != 1 || len(left.fired) != 1 || left.fired[0] != 50 {
			t.Fatalf("after a panic: fired %d, left behind timer fired at %v", n, left.fired)
		}
		q := newProbe(w)
		w.Schedule(&q.Timer, clk.at(200))
		if n := w.Advance(clk.at(200)); n != 1 || q.fired[0] != 200 {
			t.Fatalf("after a panic: fired %d at %v", n, q.fired)
		}

		// The same when the panic comes at the last tick of the Advance.
		w.Schedule(&p.Timer, clk.at(300))
		w.Schedule(&left.Timer, clk.at(300))
		mustPanic(t, "Advance from a callback", func() { w.Advance(clk.at(300)) })
		w.Advance(clk.at(300))
		if len(left.fired) != 2 || left.fired[1] != 300 || w.Len() != 0 {
			t.Fatalf("after a panic at the last tick: fired at %v, Len() = %d", left.fired, w.Len())
		}
	})
}

func mustPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Fatalf("%s did not panic", what)
		}
	}()
	f()
}
