package offline

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/ferry-proto/ferry/codec"
)

// ref is the reference model: the specification of the queue written as
// plainly as possible, a slice scanned linearly.
//
//   - A message's deadline is the earlier of its Expires (if not 0) and
//     Enqueued+MaxAge (if MaxAge > 0, saturating); a tie counts as Expired.
//     Enqueued 0 means the now of its Push.
//   - Every operation at time now first drops, and counts, every message
//     whose deadline is <= now.
//   - Push: a message already due is counted and not queued; one larger
//     than MaxBytes is counted DroppedBytes and not queued; otherwise one
//     oldest is dropped (DroppedCount) if the queue holds MaxCount, then
//     oldest ones (DroppedBytes) while the bytes would exceed MaxBytes.
//   - Pop returns the oldest, counted Delivered.
type ref struct {
	lim   Limits
	msgs  []refMsg
	bytes int
	gap   codec.GapReport
}

type refMsg struct {
	m   Message
	at  int64 // deadline, valid if has
	own bool  // the deadline is the message's own expiry
	has bool
}

func newRef(l Limits) *ref { return &ref{lim: l.normalize()} }

func (r *ref) deadline(m Message) refMsg {
	rm := refMsg{m: m}
	if r.lim.MaxAge > 0 {
		age := int64(r.lim.MaxAge)
		rm.at, rm.has = math.MaxInt64, true
		if m.Enqueued <= math.MaxInt64-age {
			rm.at = m.Enqueued + age
		}
	}
	if m.Expires != 0 && (!rm.has || m.Expires <= rm.at) {
		rm.at, rm.own, rm.has = m.Expires, true, true
	}
	return rm
}

func (r *ref) count(rm refMsg) {
	if rm.own {
		r.gap.Expired++
	} else {
		r.gap.DroppedAge++
	}
}

func (r *ref) expire(now int64) {
	r.msgs = slices.DeleteFunc(r.msgs, func(rm refMsg) bool {
		if rm.has && rm.at <= now {
			r.count(rm)
			r.bytes -= len(rm.m.Payload)
			return true
		}
		return false
	})
}

func (r *ref) dropOldest() {
	r.bytes -= len(r.msgs[0].m.Payload)
	r.msgs = r.msgs[1:]
}

func (r *ref) push(m Message, now int64) {
	r.expire(now)
	if m.Enqueued == 0 {
		m.Enqueued = now
	}
	rm := r.deadline(m)
	switch {
	case rm.has && rm.at <= now:
		r.count(rm)
		return
	case len(m.Payload) > r.lim.MaxBytes:
		r.gap.DroppedBytes++
		return
	}
	if len(r.msgs) == r.lim.MaxCount {
		r.dropOldest()
		r.gap.DroppedCount++
	}
	for r.bytes+len(m.Payload) > r.lim.MaxBytes {
		r.dropOldest()
		r.gap.DroppedBytes++
	}
	r.msgs = append(r.msgs, rm)
	r.bytes += len(m.Payload)
}

func (r *ref) pop(now int64) (Message, bool) {
	r.expire(now)
	if len(r.msgs) == 0 {
		return Message{}, false
	}
	m := r.msgs[0].m
	r.dropOldest()
	r.gap.Delivered++
	return m, true
}

func (r *ref) nextDeadline() (int64, bool) {
	at, ok := int64(0), false
	for _, rm := range r.msgs {
		if rm.has && (!ok || rm.at < at) {
			at, ok = rm.at, true
		}
	}
	return at, ok
}

// check verifies the queue's internal invariants: ring shape, holes only
// strictly inside the used span, no payload retained outside it, the counts,
// the heap property and the slot<->heap back-pointers.
func (q *Queue) check() error {
	if len(q.ring) > q.lim.MaxCount {
		return fmt.Errorf("ring has %d slots, MaxCount %d", len(q.ring), q.lim.MaxCount)
	}
	if q.used > len(q.ring) || q.head < 0 || (len(q.ring) > 0 && q.head >= len(q.ring)) {
		return fmt.Errorf("head %d used %d ring %d", q.head, q.used, len(q.ring))
	}
	if cap(q.heap) > len(q.ring) {
		return fmt.Errorf("heap capacity %d beyond the ring's %d slots", cap(q.heap), len(q.ring))
	}
	if q.n > q.lim.MaxCount || q.bytes > q.lim.MaxBytes {
		return fmt.Errorf("bounds exceeded: n %d bytes %d, limits %+v", q.n, q.bytes, q.lim)
	}
	if q.used > 0 && (!q.ring[q.head].live || !q.ring[q.wrap(q.head+q.used-1)].live) {
		return fmt.Errorf("hole at an end: head %d used %d", q.head, q.used)
	}
	n, bytes, withDeadline := 0, 0, 0
	for i := range q.ring {
		s := &q.ring[i]
		inside := (i-q.head+len(q.ring))%len(q.ring) < q.used
		if !s.live {
			if s.m.Payload != nil {
				return fmt.Errorf("slot %d (not live, inside=%v) retains a payload", i, inside)
			}
			continue
		}
		if !inside {
			return fmt.Errorf("live slot %d outside head %d used %d", i, q.head, q.used)
		}
		n++
		bytes += len(s.m.Payload)
		at, _, ok := q.deadline(&s.m)
		if !ok {
			if s.hidx != -1 {
				return fmt.Errorf("slot %d without deadline has hidx %d", i, s.hidx)
			}
			continue
		}
		withDeadline++
		if s.hidx < 0 || int(s.hidx) >= len(q.heap) || int(q.heap[s.hidx].pos) != i || q.heap[s.hidx].at != at {
			return fmt.Errorf("slot %d: hidx %d does not point at its deadline %d", i, s.hidx, at)
		}
	}
	if n != q.n || bytes != q.bytes {
		return fmt.Errorf("counted n %d bytes %d, queue says %d %d", n, bytes, q.n, q.bytes)
	}
	if withDeadline != len(q.heap) {
		return fmt.Errorf("%d messages with deadlines, heap holds %d", withDeadline, len(q.heap))
	}
	for i := 1; i < len(q.heap); i++ {
		if q.heap[(i-1)/2].at > q.heap[i].at {
			return fmt.Errorf("heap property broken at %d", i)
		}
	}
	return nil
}

// matches compares the queue with the model: same messages in the same
// order, same counters, same NextDeadline.
func (q *Queue) matches(r *ref) error {
	if q.n != len(r.msgs) || q.bytes != r.bytes {
		return fmt.Errorf("len %d bytes %d, model %d %d", q.n, q.bytes, len(r.msgs), r.bytes)
	}
	if q.gap != r.gap {
		return fmt.Errorf("gap %+v, model %+v", q.gap, r.gap)
	}
	at, ok := q.NextDeadline()
	rat, rok := r.nextDeadline()
	if at != rat || ok != rok {
		return fmt.Errorf("NextDeadline %d %v, model %d %v", at, ok, rat, rok)
	}
	k := 0
	for i := range q.used {
		s := &q.ring[q.wrap(q.head+i)]
		if !s.live {
			continue
		}
		if s.m.Meta != r.msgs[k].m.Meta || s.m.Enqueued != r.msgs[k].m.Enqueued {
			return fmt.Errorf("message %d is %d, model %d", k, s.m.Meta, r.msgs[k].m.Meta)
		}
		k++
	}
	return nil
}

// payload returns a payload of the given size that carries id in its first
// bytes (as many as fit), to check that what comes out is what went in.
func payload(id uint64, size int) []byte {
	p := make([]byte, size)
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], id)
	copy(p, b[:])
	return p
}

func payloadOK(m Message) bool {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], m.Meta)
	n := min(len(m.Payload), 8)
	return string(m.Payload[:n]) == string(b[:n])
}
