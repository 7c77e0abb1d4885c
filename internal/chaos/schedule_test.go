package chaos

import (
	"testing"
	"time"
)

func TestScheduleRepeatsFromSeed(t *testing.T) {
	a, b, c := NewSchedule(42), NewSchedule(42), NewSchedule(43)
	same := true
	for range 50 {
		x, y, z := a.Next(), b.Next(), c.Next()
		if x.String() != y.String() {
			t.Fatalf("same seed, different epochs:\n%v\n%v", x, y)
		}
		same = same && x.String() == z.String()
	}
	if same {
		t.Fatal("seeds 42 and 43 gave the same schedule")
	}
}

// Every toxic the schedule draws is one toxiproxy accepts, every kind of
// kill and of weather turns up, and the holds stay under MaxHold.
func TestScheduleToxicsAreValid(t *testing.T) {
	p := newProxy(t, "127.0.0.1:1", nil)
	s := NewSchedule(7)
	kills := map[Kill]int{}
	types := map[string]int{}
	for range 400 {
		e := s.Next()
		kills[e.Kill]++
		if e.KillAt < 0 || e.KillAt >= 1 {
			t.Fatalf("KillAt %v", e.KillAt)
		}
		if e.Hold > s.MaxHold+200*time.Millisecond || e.Outage > s.MaxHold {
			t.Fatalf("%v: hold over %v", e, s.MaxHold)
		}
		if e.Kill == KillTimeout && e.Hold <= 0 || e.Kill == KillDown && e.Outage <= 0 {
			t.Fatalf("%v: no hold", e)
		}
		if err := p.Restart(e.Weather, 0); err != nil {
			t.Fatalf("%v: %v", e, err)
		}
		for _, x := range e.KillToxics {
			if err := p.Add(x); err != nil {
				t.Fatalf("%v: %v", e, err)
			}
		}
		for _, x := range p.Active() {
			types[x.Type]++
		}
	}
	for k := range numKills {
		if kills[k] == 0 {
			t.Errorf("no %v kill in 400 epochs", k)
		}
	}
	for _, ty := range []string{"latency", "slicer", "bandwidth", "reset_peer", "timeout"} {
		if types[ty] == 0 {
			t.Errorf("no %s toxic in 400 epochs", ty)
		}
	}
}

// No weather is slower than the slowest bandwidth toxic, 64 KB/s: a slicer
// pauses only after slices of minDelayedSlice bytes or more, since any
// pause may last a millisecond (see minDelayedSlice).
func TestScheduleWeatherFloor(t *testing.T) {
	slicers, tiny := 0, 0
	for _, seed := range []uint64{1, 7, 42, stalledSeed} {
		s := NewSchedule(seed)
		for range 1000 {
			e := s.Next()
			for _, x := range e.Weather {
				switch x.Type {
				case "slicer":
					slicers++
					if x.Attrs["average_size"] <= 3 {
						tiny++
					}
					if x.Attrs["delay"] > 0 && x.Attrs["average_size"] < minDelayedSlice {
						t.Fatalf("%v: a pause after slices of %d bytes", e, x.Attrs["average_size"])
					}
				case "bandwidth":
					if x.Attrs["rate"] < 64 {
						t.Fatalf("%v: under 64 KB/s", e)
					}
				}
			}
		}
	}
	if tiny == 0 || slicers == 0 {
		t.Fatalf("%d slicers, %d of a byte or three: the schedule no longer slices finely", slicers, tiny)
	}
}
