//go:build !race

package offline

import (
	"testing"
	"time"
)

// Zero-allocation claims: once the ring has grown, Push, Pop, Peek and
// Expire allocate nothing, with or without deadlines, and squeezing holes
// out of a full ring allocates nothing either.
func TestAllocs(t *testing.T) {
	buf := make([]byte, 100) // the test reuses one buffer; callers hand over theirs

	t.Run("push+pop", func(t *testing.T) {
		q := New(Limits{MaxCount: 1000})
		now := int64(1)
		for range 1000 {
			q.Push(Message{Payload: buf}, now)
		}
		allocs := testing.AllocsPerRun(1000, func() {
			now++
			q.Push(Message{Payload: buf, Meta: 1}, now)
			if _, ok := q.Pop(now); !ok {
				t.Fatal("empty")
			}
		})
		if allocs != 0 {
			t.Fatalf("push+pop: %v allocs/op, want 0", allocs)
		}
	})

	t.Run("push+pop with deadlines", func(t *testing.T) {
		q := New(Limits{MaxCount: 1000, MaxAge: time.Hour})
		now := int64(1)
		for i := range 1000 {
			q.Push(Message{Payload: buf, Expires: now + int64(1_000_000-i)}, now)
		}
		allocs := testing.AllocsPerRun(1000, func() {
			now++
			q.Push(Message{Payload: buf, Expires: now + 500_000}, now) // out of order
			q.Peek(now)
			if _, ok := q.Pop(now); !ok {
				t.Fatal("empty")
			}
			q.NextDeadline()
		})
		if allocs != 0 {
			t.Fatalf("push+pop with deadlines: %v allocs/op, want 0", allocs)
		}
	})

	t.Run("expire+compact", func(t *testing.T) {
		const n = 64
		q := New(Limits{MaxCount: n})
		now := int64(1)
		fill := func() {
			for i := range n {
				exp := int64(0)
				if i%2 == 1 {
					exp = now + 1 // every other one expires behind the head
				}
				q.Push(Message{Payload: buf[:1], Expires: exp}, now)
			}
		}
		fill()
		allocs := testing.AllocsPerRun(100, func() {
			now++
			q.Expire(now) // leaves holes
			fill()        // squeezes them out, then drops the oldest
		})
		if allocs != 0 {
			t.Fatalf("expire+compact: %v allocs/op, want 0", allocs)
		}
		if g := q.Gap(); g.Expired == 0 || g.DroppedCount == 0 {
			t.Fatalf("the loop did not expire and drop: %+v", g)
		}
	})
}
