package wheel

import (
	"math"
	"math/bits"
	"time"
)

// DefaultTick is the tick New uses when it is given 0: fine enough for
// handshake, idle, ACK and reassembly timeouts (all tens of milliseconds or
// more), coarse enough that an idle loop wakes at most 100 times a second.
const DefaultTick = 10 * time.Millisecond

const (
	levelBits = 6
	slotCount = 1 << levelBits // slots per level
	slotMask  = slotCount - 1
	levels    = 6
	numSlots  = levels * slotCount

	// horizon is the furthest a timer may lie ahead of the wheel's current
	// tick. The top level has 64 slots of 2^30 ticks; keeping every deadline
	// within 63 of them ahead means a top-level slot is never shared by two
	// laps of the wheel. Later deadlines are clamped to it.
	horizon = (slotCount - 1) << (levelBits * (levels - 1))
)

// Timer is one intrusive timer entry. Embed it in the struct it times (the
// connection state), call Init once, then Schedule and Stop it as often as
// needed: nothing is allocated after Init.
//
// A Timer belongs to at most one Wheel at a time and must not be copied or
// moved while pending (the wheel holds its address). Its zero value is a
// stopped timer without a callback.
//
// Layout (32 bytes on 64-bit platforms, pinned by TestTimerSize): two list
// pointers for O(1) unlink, the expiry in ticks since the wheel's start, and
// the callback. List heads inside the wheel are Timers too, marked by a
// negative when that encodes their slot index, so unlinking needs neither a
// pointer to the wheel nor a slot field.
type Timer struct {
	next, prev *Timer // nil when not pending
	when       int64  // expiry tick; for a list head, ^slot index
	f          func(*Timer)
}

// Init sets the function called when t fires. The function receives t itself;
// recover the owning struct from it with a closure built once per owner, or
// with a static function and unsafe.Offsetof (see the package doc). Init must
// not be called while t is pending. It may be called from any goroutine that
// owns t at that moment (typically before t is ever scheduled).
func (t *Timer) Init(f func(*Timer)) {
	if t.next != nil {
		panic("wheel: Init of a pending Timer")
	}
	t.f = f
}

// Pending reports whether t is scheduled and has neither fired nor been
// stopped. A timer whose callback is running is no longer pending. Event
// loop only (it reads state the loop writes).
func (t *Timer) Pending() bool { return t.next != nil }

// Wheel is a hierarchical timing wheel: 6 levels of 64 slots, level L slot
// covering 64^L ticks. It is owned by one event loop and every method must be
// called from that loop's goroutine (callbacks included); it takes no locks.
//
// A Wheel holds pointers into itself and must not be copied; use New.
type Wheel struct {
	slots     [numSlots]Timer // list heads (sentinels), level-major
	occ       [levels]uint64  // bit s of occ[l]: slot l*64+s is non-empty
	start     time.Time       // tick 0; carries the monotonic reading
	tick      int64           // ns per tick
	maxRel    int64           // horizon*tick, saturated
	cur       int64           // current tick: every pending timer has when > cur
	nowNs     int64           // ns since start of the last Advance
	n         int             // pending timers
	advancing bool
}

// New returns a wheel whose tick 0 is start and whose ticks last tick (0
// means DefaultTick). Pass a time.Now() reading so the wheel runs on the
// monotonic clock, and later pass readings of the same clock to Advance.
// New panics if tick is negative.
func New(tick time.Duration, start time.Time) *Wheel {
	if tick == 0 {
		tick = DefaultTick
	}
	if tick < 0 {
		panic("wheel: negative tick")
	}
	w := &Wheel{start: start, tick: int64(tick)}
	w.maxRel = math.MaxInt64
	if int64(tick) <= math.MaxInt64/horizon {
		w.maxRel = horizon * int64(tick)
	}
	for i := range w.slots {
		h := &w.slots[i]
		h.next, h.prev, h.when = h, h, ^int64(i)
	}
	return w
}

// Tick returns the wheel's granularity.
func (w *Wheel) Tick() time.Duration { return time.Duration(w.tick) }

// Horizon returns how far ahead a timer may be scheduled; later deadlines are
// clamped to it and fire early by the difference. It is 63·2^30 ticks (capped
// at the longest time.Duration): about 21 years at the default 10 ms tick,
// 2.1 years at 1 ms, 78 days at 100 µs.
func (w *Wheel) Horizon() time.Duration { return time.Duration(w.maxRel) }

// Len returns the number of pending timers.
func (w *Wheel) Len() int { return w.n }

// Now returns the time last passed to Advance (start before the first call),
// the base of ScheduleAfter. Callbacks may use it instead of reading the
// clock again.
func (w *Wheel) Now() time.Time { return w.start.Add(time.Duration(w.nowNs)) }

// Schedule arms t to fire at the first Advance whose time reaches at rounded
// up to the tick. A deadline at or before the current tick fires at the next
// tick; one beyond the horizon is clamped to it. If t is already pending it
// is moved (O(1): unlink and link). Schedule panics if t has no callback.
// Event loop only; callbacks may call it.
func (w *Wheel) Schedule(t *Timer, at time.Time) {
	w.schedule(t, w.expiry(int64(at.Sub(w.start))))
}

// ScheduleAfter is Schedule(t, w.Now().Add(d)): d is measured from the time of
// the last Advance, not from the clock. Event loop only.
func (w *Wheel) ScheduleAfter(t *Timer, d time.Duration) {
	ns := w.nowNs + int64(d)
	if d > 0 && ns < w.nowNs {
		ns = math.MaxInt64
	}
	w.schedule(t, w.expiry(ns))
}

// Stop cancels t and reports whether it was pending. Stopping a timer that
// fired, was stopped or was never scheduled is a no-op that returns false.
// Event loop only; callbacks may stop any timer, including ones due in the
// same Advance, which then do not fire.
func (w *Wheel) Stop(t *Timer) bool {
	if t.next == nil {
		return false
	}
	w.unlink(t)
	w.n--
	return true
}

// NextDeadline returns a time at or before the earliest pending expiry, and
// false if nothing is pending: the loop may sleep until then. It is exact
// when the earliest timer is due within the current 64-tick block; further
// out it is the start of the wheel slot holding it (at most one slot width
// early), and the Advance at that time refines it. O(levels). Event loop only.
func (w *Wheel) NextDeadline() (time.Time, bool) {
	_, _, at, ok := w.next()
	if !ok {
		return time.Time{}, false
	}
	ns := int64(math.MaxInt64)
	if at <= math.MaxInt64/w.tick {
		ns = at * w.tick
	}
	return w.start.Add(time.Duration(ns)), true
}

// Advance moves the wheel to now and fires, on the calling goroutine, every
// timer whose expiry tick is at or before now: in tick order, timers of one
// tick in no particular order (today: the order they were scheduled). It
// returns the number fired.
//
// A timer never fires before its deadline rounded up to the tick, so it
// fires at most one tick after its deadline, in the first Advance that
// passes that rounded deadline. Callbacks may schedule and stop any timer;
// one scheduled at or before the tick being fired is due at the following
// tick, and fires in this same Advance if that tick is not past now (so a
// timer that keeps rescheduling itself into the past cannot loop forever:
// it fires at most once per tick). Time never runs backwards: an earlier now
// is ignored. If a callback panics, the wheel stays consistent and the next
// Advance fires what this one left.
//
// Event loop only, and not from a callback (it panics).
func (w *Wheel) Advance(now time.Time) int {
	if w.advancing {
		panic("wheel: Advance called from a timer callback")
	}
	if ns := int64(now.Sub(w.start)); ns > w.nowNs {
		w.nowNs = ns
	}
	// Target the latest time seen, not now: after a callback panicked out
	// of an Advance, the next call finishes the ticks that one left, down to
	// the timers left in cur's own level-0 slot (set only in that case).
	target := w.nowNs / w.tick
	if target <= w.cur && w.occ[0]&(1<<uint(w.cur&slotMask)) == 0 {
		return 0
	}
	w.advancing = true
	defer func() { w.advancing = false }()
	fired := 0
	for {
		l, s, at, ok := w.next()
		if !ok || at > target {
			break
		}
		w.cur = at
		h := &w.slots[l<<levelBits|s]
		if l > 0 {
			w.cascade(h, l, s)
			continue
		}
		// Every timer here expires at cur, and callbacks cannot add to this
		// slot (they schedule at cur+1 or later), so drain it from the head.
		for h.next != h {
			t := h.next
			w.unlink(t)
			w.n--
			fired++
			t.f(t)
		}
	}
	w.cur = target
	return fired
}

// expiry converts a deadline in ns since start to a tick: rounded up, at
// least cur+1, at most cur+horizon.
func (w *Wheel) expiry(ns int64) int64 {
	base := w.cur * w.tick // ≤ nowNs: cannot overflow
	if ns <= base {
		return w.cur + 1
	}
	rel := ns - base
	if rel > w.maxRel {
		return w.cur + horizon
	}
	return w.cur + (rel-1)/w.tick + 1
}

func (w *Wheel) schedule(t *Timer, e int64) {
	if t.f == nil {
		panic("wheel: Schedule of a Timer without Init")
	}
	if t.next != nil {
		if t.when == e {
			return
		}
		w.unlink(t)
	} else {
		w.n++
	}
	t.when = e
	w.link(t)
}

// link puts t in the slot for t.when relative to cur: the level is the
// highest 6-bit digit in which when and cur differ (clamped to the top
// level), the slot is when's digit at that level. Invariant: at levels below
// the top, a timer's slot digit is greater than cur's digit at that level and
// all higher digits agree, so a slot is reached (and cascaded or fired)
// exactly when cur enters it. The top level wraps, which the horizon keeps
// unambiguous. A timer with when == cur (only from cascade) lands in cur's
// own level-0 slot, which Advance fires next.
func (w *Wheel) link(t *Timer) {
	l := (bits.Len64(uint64(t.when^w.cur)|slotMask) - 1) / levelBits
	if l >= levels {
		l = levels - 1
	}
	s := int(t.when>>(uint(l)*levelBits)) & slotMask
	h := &w.slots[l<<levelBits|s]
	p := h.prev
	t.prev, t.next = p, h
	p.next, h.prev = t, t
	w.occ[l] |= 1 << uint(s)
}

// unlink takes t out of its list and clears the slot's bit if the list is
// left empty (t's neighbours are then both the list head).
func (w *Wheel) unlink(t *Timer) {
	n, p := t.next, t.prev
	p.next, n.prev = n, p
	t.next, t.prev = nil, nil
	if n == p && n.when < 0 {
		i := ^n.when
		w.occ[i>>levelBits] &^= 1 << uint(i&slotMask)
	}
}

// next finds the earliest non-empty slot: at the lowest non-empty level (any
// slot there starts before every slot of the levels above), the first
// occupied slot counting from cur's digit. It returns the level, the slot and
// the tick at which the slot starts, which is the expiry of its timers at
// level 0 and a lower bound of them above.
//
// By link's invariant an occupied slot lies 1 to 63 slots after cur's digit
// (0 only for cur's level-0 slot between a cascade and its firing), so the
// rotated occupancy word orders the slots by distance. At the top level the
// distance wraps around, and the horizon of 63 top slots keeps it below 64.
func (w *Wheel) next() (l, s int, at int64, ok bool) {
	for l = 0; l < levels; l++ {
		occ := w.occ[l]
		if occ == 0 {
			continue
		}
		shift := uint(l) * levelBits
		d := int(w.cur>>shift) & slotMask
		dist := bits.TrailingZeros64(bits.RotateLeft64(occ, -d))
		s = (d + dist) & slotMask
		at = (w.cur &^ (1<<shift - 1)) + int64(dist)<<shift
		return l, s, at, true
	}
	return 0, 0, 0, false
}

// cascade re-files every timer of the level l slot s that cur has just
// entered into the levels below (or cur's level-0 slot if it is due now).
func (w *Wheel) cascade(h *Timer, l, s int) {
	t := h.next
	h.next, h.prev = h, h
	w.occ[l] &^= 1 << uint(s)
	for t != h {
		next := t.next
		w.link(t)
		t = next
	}
}
