package offline

import (
	"math"
	"time"

	"github.com/ferry-proto/ferry/codec"
)

// Defaults of Limits, from the reliability design: a resuming client gets at
// most the last 1,000 messages or 1 MiB of payload, whichever is smaller.
const (
	DefaultMaxCount = 1000
	DefaultMaxBytes = 1 << 20
)

// maxCount bounds Limits.MaxCount so a ring index fits the int32 kept in
// each slot's heap back-pointer and in the heap's entries.
const maxCount = math.MaxInt32

// minRing is the first ring allocation; it doubles from there.
const minRing = 16

// Limits bound one queue. A zero or negative MaxCount or MaxBytes means the
// default (a queue is always bounded); a zero or negative MaxAge means no
// age limit.
type Limits struct {
	MaxCount int           // messages; at most math.MaxInt32
	MaxBytes int           // sum of len(Payload)
	MaxAge   time.Duration // from Message.Enqueued; 0 = no limit
}

// DefaultLimits returns 1,000 messages, 1 MiB and no age limit.
func DefaultLimits() Limits {
	return Limits{MaxCount: DefaultMaxCount, MaxBytes: DefaultMaxBytes}
}

// normalize applies the defaults and clamps described on Limits.
func (l Limits) normalize() Limits {
	if l.MaxCount <= 0 {
		l.MaxCount = DefaultMaxCount
	}
	l.MaxCount = min(l.MaxCount, maxCount)
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	l.MaxAge = max(l.MaxAge, 0)
	return l
}

// Message is one queued message.
//
// Push takes ownership of Payload: the caller must pass a buffer it no longer
// reads or writes (a copy, or a buffer handed over for good). Pop hands
// ownership back. A message dropped by the queue is forgotten, and its
// buffer left to the garbage collector.
type Message struct {
	Lane    uint8  // carried, not interpreted: the queue is FIFO across lanes
	Payload []byte // owned by the queue from Push to Pop
	// Enqueued is when the message entered the offline path, in nanoseconds;
	// the age limit runs from it. 0 means "now": Push fills in its now. It
	// may be earlier than now (an unacknowledged message moved into the
	// queue when the connection dropped keeps its time) and need not be in
	// push order.
	Enqueued int64
	// Expires is the message's own absolute deadline in nanoseconds, 0 for
	// none. At or after it the message is dropped and counted as Expired.
	Expires int64
	Meta    uint64 // opaque to the queue: the caller's frame kind, route, etc.
}

// slot is one ring entry: 64 bytes on 64-bit platforms (pinned by a test).
type slot struct {
	m    Message
	hidx int32 // index of m's deadline in Queue.heap; -1 when m has none
	live bool  // false: unused, or a hole left by a message that expired out of order
}

// Queue is a bounded FIFO of messages waiting for a session to resume,
// with drop accounting. The zero value is not usable; call New.
//
// A Queue is not safe for concurrent use: its owner (the session's event
// loop) serializes every call.
//
// The messages sit in a ring of slots, oldest at head. Messages with a
// deadline (their own expiry or the age limit) are also indexed by a
// min-heap of deadlines, each heap entry pointing at its slot and each slot
// back at its heap entry, so NextDeadline is the heap's root (O(1)),
// dropping what is due is O(log n) a message, and a message leaving from the
// head (Pop, or drop-oldest) leaves the heap in O(log n). Age deadlines alone
// would arrive in push order and a FIFO would do, but per-message expiries
// arrive in any order, and so may Enqueued times; one heap covers both with
// one code path. A message that expires behind the head becomes a hole in
// the ring (not a live slot) rather than being shifted out at once; holes at
// either end are trimmed at once, and holes in the middle are squeezed out
// only when the ring is full.
type Queue struct {
	lim   Limits
	ring  []slot
	head  int // ring index of the oldest message; ring[head].live whenever used > 0
	used  int // slots from head to tail, holes included; ring[head+used-1].live whenever used > 0
	n     int // live messages
	bytes int // sum of len(Payload) over live messages
	heap  []deadline
	gap   codec.GapReport
}

// New returns an empty queue bounded by l (see Limits for defaults). It
// allocates no message storage until the first Push.
func New(l Limits) *Queue {
	return &Queue{lim: l.normalize()}
}

// Limits returns the bounds in force, after defaults were applied.
func (q *Queue) Limits() Limits { return q.lim }

// Len returns the number of queued messages. Messages whose deadline has
// passed since the last call that took a time are still counted until the
// next such call drops them.
func (q *Queue) Len() int { return q.n }

// Bytes returns the sum of len(Payload) over the queued messages.
func (q *Queue) Bytes() int { return q.bytes }

// Gap returns the counters accumulated since New or the last ResetGap.
func (q *Queue) Gap() codec.GapReport { return q.gap }

// ResetGap zeroes the counters, typically once a gap report has been sent.
func (q *Queue) ResetGap() { q.gap = codec.GapReport{} }

// Push queues m at time now, dropping first whatever has reached its
// deadline. If m has itself reached its deadline it is dropped and counted
// (Expired or DroppedAge). If len(m.Payload) > MaxBytes, m is dropped and
// counted as DroppedBytes, and the queue is left as it was. Otherwise the
// oldest messages are dropped while the count or byte bound would be
// exceeded (DroppedCount for the one that makes room under MaxCount,
// DroppedBytes for the rest), and m is queued.
//
// Push takes ownership of m.Payload. It allocates only while the queue is
// still growing: the ring of slots (16, doubling, up to MaxCount: seven
// allocations in the life of a default queue), and the deadline heap the
// same way, once messages with deadlines arrive.
func (q *Queue) Push(m Message, now int64) {
	q.Expire(now)
	if m.Enqueued == 0 {
		m.Enqueued = now
	}
	at, own, ok := q.deadline(&m)
	if ok && at <= now {
		q.countDue(own)
		return
	}
	size := len(m.Payload)
	if size > q.lim.MaxBytes {
		q.gap.DroppedBytes++
		return
	}
	if q.n >= q.lim.MaxCount {
		q.removeHead()
		q.gap.DroppedCount++
	}
	for q.bytes+size > q.lim.MaxBytes {
		q.removeHead()
		q.gap.DroppedBytes++
	}
	if q.used == len(q.ring) {
		q.makeRoom()
	}
	p := q.wrap(q.head + q.used)
	q.ring[p] = slot{m: m, hidx: -1, live: true}
	q.used++
	q.n++
	q.bytes += size
	if ok {
		q.heapPush(at, p)
	}
}

// Pop removes and returns the oldest message at time now, after dropping
// whatever has reached its deadline, and counts it as Delivered. It returns
// false when the queue is empty. Ownership of the Payload passes to the
// caller.
func (q *Queue) Pop(now int64) (Message, bool) {
	q.Expire(now)
	if q.n == 0 {
		return Message{}, false
	}
	m := q.ring[q.head].m
	q.removeHead()
	q.gap.Delivered++
	return m, true
}

// Peek returns the message the next Pop at the same now would return,
// without removing it. Like Pop it first drops whatever has reached its
// deadline. The Payload is a view of a buffer the queue still owns: do not
// modify it, and do not keep it past the Pop that hands the buffer over.
func (q *Queue) Peek(now int64) (Message, bool) {
	q.Expire(now)
	if q.n == 0 {
		return Message{}, false
	}
	return q.ring[q.head].m, true
}

// Expire drops, and counts as Expired or DroppedAge, every message whose
// deadline is at or before now. Push, Pop and Peek do this themselves;
// Expire is for the timer the caller arms at NextDeadline, so that memory is
// released and the counters are current while nobody pushes or pops. It costs
// one comparison when nothing is due.
func (q *Queue) Expire(now int64) {
	if len(q.heap) > 0 && q.heap[0].at <= now {
		q.expire(now)
	}
}

// NextDeadline returns the earliest deadline (own expiry or age limit) of a
// queued message, and false when no queued message has one. The caller arms
// one timer for it and calls Expire when it fires. The answer may already
// be in the past if time moved on since the last call that took a time. It
// changes after Push (earlier or equal), and after Pop, Peek and Expire
// (later or equal): re-read it after each.
func (q *Queue) NextDeadline() (int64, bool) {
	if len(q.heap) == 0 {
		return 0, false
	}
	return q.heap[0].at, true
}

// deadline returns when m must leave the queue undelivered: the earlier of
// its own expiry and Enqueued+MaxAge. own reports that the deadline is the
// message's own expiry (a tie goes to the expiry: the sender asked for it);
// ok is false when m has neither.
func (q *Queue) deadline(m *Message) (at int64, own, ok bool) {
	if q.lim.MaxAge > 0 {
		at, ok = satAdd(m.Enqueued, int64(q.lim.MaxAge)), true
	}
	if m.Expires != 0 && (!ok || m.Expires <= at) {
		return m.Expires, true, true
	}
	return at, false, ok
}

// satAdd returns a+b for b > 0, saturated at math.MaxInt64.
func satAdd(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

func (q *Queue) countDue(own bool) {
	if own {
		q.gap.Expired++
	} else {
		q.gap.DroppedAge++
	}
}

// expire drops every message whose deadline is at or before now, leaving
// holes where they sat behind the head.
func (q *Queue) expire(now int64) {
	for len(q.heap) > 0 && q.heap[0].at <= now {
		p := int(q.heap[0].pos)
		s := &q.ring[p]
		_, own, _ := q.deadline(&s.m)
		q.countDue(own)
		q.n--
		q.bytes -= len(s.m.Payload)
		q.heapRemove(0)
		*s = slot{} // a hole; forget the payload now
	}
	q.trim()
}

// removeHead removes the oldest message (there must be one).
func (q *Queue) removeHead() {
	s := &q.ring[q.head]
	if s.hidx >= 0 {
		q.heapRemove(int(s.hidx))
	}
	q.n--
	q.bytes -= len(s.m.Payload)
	*s = slot{}
	q.head = q.wrap(q.head + 1)
	q.used--
	q.trim()
}

// trim drops holes from both ends of the ring, restoring the invariant that
// the head and tail slots are live (or the ring is empty).
func (q *Queue) trim() {
	for q.used > 0 && !q.ring[q.head].live {
		q.head = q.wrap(q.head + 1)
		q.used--
	}
	for q.used > 0 && !q.ring[q.wrap(q.head+q.used-1)].live {
		q.used--
	}
	if q.used == 0 {
		q.head = 0
	}
}

// wrap maps i in [0, 2*len(ring)) into the ring.
func (q *Queue) wrap(i int) int {
	if i >= len(q.ring) {
		i -= len(q.ring)
	}
	return i
}

// makeRoom frees at least one slot in a full ring: it doubles the ring
// (never past MaxCount), or, at MaxCount, squeezes out the holes. Push has
// already made n < MaxCount, so a full ring at MaxCount has a hole.
func (q *Queue) makeRoom() {
	if len(q.ring) < q.lim.MaxCount {
		size := min(max(2*len(q.ring), minRing), q.lim.MaxCount)
		ring := make([]slot, size)
		w := 0
		for i := range q.used {
			s := &q.ring[q.wrap(q.head+i)]
			if !s.live {
				continue
			}
			ring[w] = *s
			if s.hidx >= 0 {
				q.heap[s.hidx].pos = int32(w)
			}
			w++
		}
		q.ring, q.head, q.used = ring, 0, w
		return
	}
	// In place, keeping head: the write index never passes the read index,
	// so every slot is read before it is overwritten.
	w := 0
	for i := range q.used {
		from := q.wrap(q.head + i)
		if !q.ring[from].live {
			continue
		}
		if w != i {
			to := q.wrap(q.head + w)
			q.ring[to] = q.ring[from]
			q.ring[from] = slot{}
			if h := q.ring[to].hidx; h >= 0 {
				q.heap[h].pos = int32(to)
			}
		}
		w++
	}
	q.used = w
}
