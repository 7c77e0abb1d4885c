// Package wheel is the reactor's timing wheel: one per event loop, holding
// the handful of deadlines each connection has (handshake timeout,
// idle/heartbeat deadline, ACK-timeout probe, reassembly timeout, session
// expiry). It replaces time.AfterFunc, which costs a heap allocation, a
// runtime heap insert (~0.5–1.4 µs) and ~150 B per pending timer, and runs
// its callback on another goroutine; a wheel timer is a 32-byte node inside
// the connection struct, scheduled and stopped in O(1) with no allocation,
// and fired on the loop's own goroutine.
//
// # Design
//
// Six levels of 64 slots; a slot of level L spans 64^L ticks, so level 0
// resolves single ticks and the wheel reaches 63·2^30 ticks (about 21 years
// at the default 10 ms tick). A timer is filed by the highest 6-bit digit in
// which its expiry tick differs from the current tick; when the current tick
// enters a slot above level 0, that slot's timers are re-filed (cascaded)
// into the levels below, so each timer moves at most five times in its life.
// A 64-bit occupancy word per level lets Advance and NextDeadline jump over
// empty slots, so an idle hour costs a few steps, not 360,000.
//
// Each slot is a circular doubly linked list whose head is a Timer in the
// wheel, so Stop is four pointer writes and needs no back pointer. The
// callback is a func(*Timer) stored in the Timer (set once by Init) rather
// than one handler per wheel plus a kind byte: it keeps the node at 32 bytes
// (a kind byte would pad it to 40), lets each owner type dispatch without a
// switch in the reactor, and costs nothing per schedule.
//
// # Usage
//
// Embed a Timer, Init it once, schedule it, and drive the wheel from the loop:
//
//	type conn struct {
//		idle wheel.Timer
//		// ...
//	}
//
//	func newConn(w *wheel.Wheel) *conn {
//		c := &conn{}
//		c.idle.Init(func(*wheel.Timer) { c.onIdle() }) // one closure per conn
//		w.ScheduleAfter(&c.idle, 30*time.Second)
//		return c
//	}
//
//	// the event loop
//	for {
//		timeout := -1 * time.Millisecond // block
//		if at, ok := w.NextDeadline(); ok {
//			timeout = max(time.Until(at), 0)
//		}
//		poll(timeout)
//		w.Advance(time.Now()) // fires due callbacks here, on this goroutine
//	}
//
// To avoid even the one closure per owner, use a static function and recover
// the owner from the embedded field's offset:
//
//	func onIdle(t *wheel.Timer) {
//		c := (*conn)(unsafe.Add(unsafe.Pointer(t), -unsafe.Offsetof(conn{}.idle)))
//		c.onIdle()
//	}
//
// Do not reschedule per message: an idle deadline that slides on every
// message should record the time of last activity and, when it fires, either
// act or reschedule itself for the remainder. (Rescheduling to the same tick
// is a cheap no-op, but one timer per connection and a few operations per
// deadline is the budget, like TCP's single retransmission timer.)
//
// # Limits
//
//   - Granularity is one tick. A timer fires in the first Advance that
//     reaches its deadline rounded up to the tick: never early, and at most
//     one tick after its deadline if Advance is called at least once per
//     tick. Deadlines at or before the current tick fire at the next tick.
//   - Timers due in the same tick fire in no promised order (today the order
//     they were scheduled). Different ticks fire in tick order.
//   - Range: deadlines beyond Horizon (63·2^30 ticks ahead; ≥ 30 days needs
//     a tick of at least 40 µs) are clamped to it, so such a timer fires at
//     the horizon, early. No caller should get near it.
//   - NextDeadline is exact only for the next 64 ticks; beyond that it may be
//     up to one slot early (a slot of level L spans 64^L ticks), and the
//     wakeup then refines it. It is never late.
//   - A Timer must not be copied or moved while pending, and belongs to one
//     Wheel at a time.
//
// # Goroutines
//
// A Wheel and its Timers belong to one event loop. Every Wheel method and
// Timer.Pending must be called on that loop's goroutine; there are no locks.
// Callbacks run on it too, inside Advance, and may call Schedule,
// ScheduleAfter, Stop, Len, Now and NextDeadline on any timer, themselves
// included, but not Advance. Another goroutine that needs a timer changed
// must hand the request to the loop (the reactor's task queue). Init may
// run on whichever goroutine owns a timer before it is first scheduled.
package wheel
