// Package offline is the queue that holds a session's messages while it has
// no connection (or a client id's, for direct messages), until the client
// resumes and they are delivered. It is pure logic: no sockets, no timers,
// no goroutines, no clock. The caller passes the time to every call and
// arms one timer of its own (the reactor's timing wheel) at NextDeadline.
//
// # Bounds and accounting
//
// A queue is bounded three ways (Limits): by message count (default 1,000),
// by payload bytes (default 1 MiB) and by age (default none). When a Push
// would exceed the count or byte bound, the OLDEST messages are dropped to
// make room; a single message larger than MaxBytes is itself dropped. A
// message also leaves undelivered when its own expiry (Message.Expires, an
// absolute deadline) or its age limit (Enqueued + MaxAge) is reached: an
// expired message is never delivered late.
//
// Nothing is dropped silently. Every message pushed ends in exactly one of:
// delivered (returned by Pop), dropped by count, dropped by bytes, dropped
// by age, expired, or still queued:
//
//	pushed = Delivered + DroppedCount + DroppedBytes + DroppedAge + Expired + Len()
//
// Gap returns these counters as a codec.GapReport, the body of the
// GAP_REPORT frame the server sends on resume (SPEC §7.8, §12.9). Per
// §12.9 the server takes the queued messages (Pop) before it builds the
// report, so that Delivered counts the messages that follow it.
//
// # Time
//
// Times are int64 nanoseconds on the caller's clock (Unix nanoseconds, or
// any monotonic base used consistently). A deadline at is reached when
// now >= at. Every call that takes now first drops what has reached its
// deadline, so after Push, Pop, Peek or Expire at time now the queue holds
// no message whose deadline is <= now, and which counter a message lands in
// does not depend on how often the caller runs Expire.
//
// # Usage
//
//	q := offline.New(offline.DefaultLimits())
//
//	// The connection is gone: queue instead of sending.
//	q.Push(offline.Message{Lane: 1, Payload: buf, Expires: deadline}, now)
//	if at, ok := q.NextDeadline(); ok {
//		w.Schedule(&sess.offlineTimer, time.Unix(0, at)) // on fire: q.Expire(now)
//	}
//
//	// The client resumed (SPEC §12.9): take the queue, then report the
//	// gap right after WELCOME, then replay, then send what was queued.
//	var backlog []offline.Message
//	for m, ok := q.Pop(now); ok; m, ok = q.Pop(now) {
//		backlog = append(backlog, m)
//	}
//	if g := q.Gap(); g != (codec.GapReport{}) {
//		send(codec.AppendGapReport(buf, g))
//		q.ResetGap()
//	}
//
// # Limits
//
//   - FIFO across all lanes: Lane and Meta are carried, never interpreted.
//   - Bytes counts len(Payload) only, not the bookkeeping, which the count
//     bound limits: on 64-bit, 64 bytes a slot, plus 16 a slot once any
//     message carries a deadline (at most 80 KB at the default MaxCount).
//     A server's total across sessions is the caller's to budget.
//   - Storage grows by doubling up to MaxCount slots and never shrinks;
//     drop the Queue when the session resumes and the queue is drained, or
//     when the session expires.
//   - Push, Pop and Peek cost O(1) amortized when no message carries a
//     deadline, and O(log n) for one that does. A message that expires
//     while older messages stay queued leaves a hole in the ring; when the
//     ring is at MaxCount slots and a Push needs one, the holes are squeezed
//     out in one O(MaxCount) pass.
//
// # Goroutines
//
// A Queue is not safe for concurrent use. It belongs to whoever owns the
// session (the event loop the session lives on, or a goroutine that holds
// the session's lock) and every method must be called there. The
// codec.GapReport that Gap returns is a plain value, safe from any
// goroutine.
package offline
