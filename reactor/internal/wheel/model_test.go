package wheel

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// The model test drives a wheel and a reference model with the same random
// schedule, stop and advance sequence on a fake clock, with callbacks that
// schedule and stop timers themselves. The model is the specification, kept
// as plain per-timer expiry ticks scanned linearly:
//
//   - a deadline of D ns since start expires at tick ceil(D/tick), at least
//     one tick after the wheel's current tick and at most horizon ticks after;
//   - Advance(now) fires exactly the timers expiring at or before
//     floor(now/tick), each once, in expiry order (ties in any order), and the
//     current tick during a callback is the expiry of the timer firing;
//   - a stopped timer never fires; nothing fires before its deadline unless
//     the deadline was clamped to the horizon.
type model struct {
	t      *testing.T
	w      *Wheel
	clk    fakeClock
	tick   int64
	rng    *rand.Rand
	timers []*modelTimer

	cur       int64 // the wheel's current tick, as the model sees it
	nowNs     int64
	target    int64 // during Advance: the tick being advanced to
	advancing bool
	fired     int   // callbacks during this Advance
	lastFired int64 // expiry of the previous callback in this Advance
	total     int
}

type modelTimer struct {
	Timer
	id       int
	pending  bool
	e        int64 // expected expiry tick
	deadline int64 // requested deadline, ns since start
	clamped  bool
}

func newModel(t *testing.T, tick time.Duration, seed uint64, n int) *model {
	start := time.Now()
	if seed%2 == 1 {
		start = time.Unix(1_700_000_000, 0) // no monotonic reading
	}
	m := &model{
		t:    t,
		w:    New(tick, start),
		clk:  fakeClock{start, tick},
		tick: int64(tick),
		rng:  rand.New(rand.NewPCG(seed, 0x5eed)),
	}
	for i := range n {
		mt := &modelTimer{id: i}
		mt.Init(func(*Timer) { m.onFire(mt) })
		m.timers = append(m.timers, mt)
	}
	return m
}

func (m *model) expiry(deadline int64) (e int64, clamped bool) {
	e = 0
	if deadline > 0 {
		e = (deadline-1)/m.tick + 1
	}
	if e <= m.cur {
		return m.cur + 1, false
	}
	if e > m.cur+horizon {
		return m.cur + horizon, true
	}
	return e, false
}

// randDelay returns a delay in ns: mostly near, sometimes across level
// boundaries, sometimes in the past or beyond the horizon.
func (m *model) randDelay() int64 {
	r := m.rng
	sub := r.Int64N(m.tick)
	var ticks int64
	switch r.IntN(10) {
	case 0:
		return -r.Int64N(5 * m.tick)
	case 1, 2, 3:
		ticks = r.Int64N(130)
	case 4, 5, 6, 7:
		b := int64(1) << r.IntN(37)
		ticks = b + r.Int64N(b)
	case 8: // just around a level boundary of the current tick
		l := r.IntN(levels)
		k := 1 + r.Int64N(3)
		at := ((m.cur>>(levelBits*l))+k)<<(levelBits*l) + r.Int64N(3) - 1
		return at*m.tick + r.Int64N(2) - m.nowNs
	default:
		ticks = horizon - 2 + r.Int64N(1<<31)
	}
	return ticks*m.tick + sub
}

func (m *model) schedule(mt *modelTimer) {
	d := m.randDelay()
	deadline := m.nowNs + d
	if d > 0 && deadline < m.nowNs {
		deadline = math.MaxInt64
	}
	if m.rng.IntN(2) == 0 && deadline < 1<<61 {
		m.w.Schedule(&mt.Timer, m.clk.start.Add(time.Duration(deadline)))
	} else {
		m.w.ScheduleAfter(&mt.Timer, time.Duration(d))
	}
	mt.pending = true
	mt.deadline = deadline
	mt.e, mt.clamped = m.expiry(deadline)
}

func (m *model) stop(mt *modelTimer) {
	if got := m.w.Stop(&mt.Timer); got != mt.pending {
		m.t.Fatalf("Stop(timer %d) = %v, model says pending %v", mt.id, got, mt.pending)
	}
	mt.pending = false
}

func (m *model) onFire(mt *modelTimer) {
	t := m.t
	if !m.advancing {
		t.Fatalf("timer %d fired outside Advance", mt.id)
	}
	if !mt.pending {
		t.Fatalf("timer %d fired but is not pending in the model (stopped or fired twice)", mt.id)
	}
	if mt.e > m.target {
		t.Fatalf("timer %d fired early: expiry tick %d, advancing to %d", mt.id, mt.e, m.target)
	}
	if !mt.clamped && m.nowNs < mt.deadline {
		t.Fatalf("timer %d fired before its deadline: now %d ns, deadline %d ns", mt.id, m.nowNs, mt.deadline)
	}
	if mt.e < m.lastFired {
		t.Fatalf("timer %d (tick %d) fired after a timer of tick %d", mt.id, mt.e, m.lastFired)
	}
	for _, o := range m.timers {
		if o.pending && o.e < mt.e {
			t.Fatalf("timer %d (tick %d) fired before timer %d (tick %d)", mt.id, mt.e, o.id, o.e)
		}
	}
	if m.w.cur != mt.e {
		t.Fatalf("timer %d of tick %d fired with the wheel at tick %d", mt.id, mt.e, m.w.cur)
	}
	if mt.Pending() {
		t.Fatalf("timer %d pending inside its own callback", mt.id)
	}
	mt.pending = false
	m.cur = mt.e
	m.lastFired = mt.e
	m.fired++

	// Act on the wheel from inside the callback.
	for range m.rng.IntN(3) {
		o := mt
		if m.rng.IntN(2) == 0 {
			o = m.timers[m.rng.IntN(len(m.timers))]
		}
		if m.rng.IntN(3) == 0 {
			m.stop(o)
		} else {
			m.schedule(o)
		}
	}
}

func (m *model) advance() {
	r := m.rng
	var delta int64 // ns
	switch r.IntN(10) {
	case 0:
		delta = -r.Int64N(3 * m.tick) // backwards or still: a no-op
	case 1, 2, 3, 4:
		delta = r.Int64N(3*m.tick + 1)
	case 5, 6:
		delta = r.Int64N(70 * m.tick)
	case 7, 8:
		b := int64(1) << r.IntN(38)
		delta = (b + r.Int64N(b)) * m.tick
	default: // onto, or one ns short of, the earliest expiry
		minE := int64(math.MaxInt64)
		for _, o := range m.timers {
			if o.pending {
				minE = min(minE, o.e)
			}
		}
		if minE == math.MaxInt64 {
			return
		}
		delta = minE*m.tick - r.Int64N(2) - m.nowNs
	}
	if m.nowNs > 1<<61 && delta > 100*m.tick {
		delta = 100 * m.tick // keep ns since start far from overflow
	}
	now := m.nowNs + delta
	if now <= m.nowNs {
		if n := m.w.Advance(m.clk.start.Add(time.Duration(now))); n != 0 {
			m.t.Fatalf("Advance backwards fired %d", n)
		}
		return
	}
	m.nowNs = now
	m.target = now / m.tick
	m.advancing, m.fired, m.lastFired = true, 0, 0
	n := m.w.Advance(m.clk.start.Add(time.Duration(now)))
	m.advancing = false
	if n != m.fired {
		m.t.Fatalf("Advance returned %d, %d callbacks ran", n, m.fired)
	}
	m.total += n
	for _, o := range m.timers {
		if o.pending && o.e <= m.target {
			m.t.Fatalf("timer %d of tick %d did not fire in Advance to tick %d", o.id, o.e, m.target)
		}
	}
	m.cur = max(m.cur, m.target)
}

func (m *model) check() {
	t := m.t
	pending := 0
	minE := int64(math.MaxInt64)
	for _, o := range m.timers {
		if o.Pending() != o.pending {
			t.Fatalf("timer %d: Pending() = %v, model %v", o.id, o.Pending(), o.pending)
		}
		if o.pending {
			pending++
			minE = min(minE, o.e)
		}
	}
	if m.w.Len() != pending {
		t.Fatalf("Len() = %d, model %d", m.w.Len(), pending)
	}
	if m.w.Now() != m.clk.start.Add(time.Duration(m.nowNs)) {
		t.Fatalf("Now() = %v, model %v", m.w.Now().Sub(m.clk.start), m.nowNs)
	}
	next, ok := m.w.NextDeadline()
	if ok != (pending > 0) {
		t.Fatalf("NextDeadline ok = %v with %d pending", ok, pending)
	}
	if !ok {
		return
	}
	if want := m.clk.at(minE); next.After(want) {
		t.Fatalf("NextDeadline %d ns, later than the earliest expiry %d ns", next.Sub(m.clk.start), want.Sub(m.clk.start))
	} else if minE>>levelBits == m.cur>>levelBits && !next.Equal(want) {
		t.Fatalf("NextDeadline %d ns, want exactly %d ns within the current block", next.Sub(m.clk.start), want.Sub(m.clk.start))
	}
}

func TestModel(t *testing.T) {
	seeds, ops := 24, 4000
	if testing.Short() {
		seeds, ops = 4, 2000
	}
	for _, tick := range []time.Duration{time.Nanosecond, 7 * time.Microsecond, DefaultTick} {
		t.Run(tick.String(), func(t *testing.T) {
			fired, laps := 0, int64(0)
			for seed := range uint64(seeds) {
				m := newModel(t, tick, seed, 10+int(seed%5)*20)
				for range ops {
					mt := m.timers[m.rng.IntN(len(m.timers))]
					switch m.rng.IntN(4) {
					case 0, 1:
						m.schedule(mt)
					case 2:
						m.stop(mt)
					default:
						m.advance()
					}
					m.check()
				}
				fired += m.total
				laps += m.cur >> (levelBits * levels)
			}
			t.Logf("%d seeds × %d ops: %d timers fired, %d full turns of the top level", seeds, ops, fired, laps)
		})
	}
}
