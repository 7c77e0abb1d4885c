package offline

import (
	"math"
	"testing"
	"time"
	"unsafe"

	"github.com/ferry-proto/ferry/codec"
)

// step is one operation of a table test. For push, id, size, enq and exp
// make the message. For pop and peek, id is the Meta expected back, 0 for
// an empty queue.
type step struct {
	op   byte // 'u' push, 'o' pop, 'e' peek, 'x' expire
	now  int64
	id   uint64
	size int
	enq  int64
	exp  int64
}

func push(now int64, id uint64, size int) step { return step{op: 'u', now: now, id: id, size: size} }
func pushExp(now int64, id uint64, size int, exp int64) step {
	return step{op: 'u', now: now, id: id, size: size, exp: exp}
}
func pushAt(now int64, id uint64, enq, exp int64) step {
	return step{op: 'u', now: now, id: id, enq: enq, exp: exp}
}
func pop(now int64, id uint64) step  { return step{op: 'o', now: now, id: id} }
func peek(now int64, id uint64) step { return step{op: 'e', now: now, id: id} }
func expire(now int64) step          { return step{op: 'x', now: now} }

func TestQueue(t *testing.T) {
	tests := []struct {
		name      string
		lim       Limits
		steps     []step
		wantLen   int
		wantBytes int
		wantGap   codec.GapReport
		wantNext  int64 // 0: no deadline
	}{
		{
			name:    "FIFO",
			lim:     DefaultLimits(),
			steps:   []step{push(1, 1, 3), push(2, 2, 0), push(3, 3, 5), pop(4, 1), push(5, 4, 1), pop(6, 2), pop(6, 3), pop(6, 4), pop(6, 0)},
			wantGap: codec.GapReport{Delivered: 4},
		},
		{
			name:      "count bound drops the oldest",
			lim:       Limits{MaxCount: 3},
			steps:     []step{push(1, 1, 1), push(1, 2, 1), push(1, 3, 1), push(1, 4, 1), push(1, 5, 1), pop(2, 3)},
			wantLen:   2,
			wantBytes: 2,
			wantGap:   codec.GapReport{Delivered: 1, DroppedCount: 2},
		},
		{
			name:      "byte bound drops the oldest until it fits",
			lim:       Limits{MaxBytes: 10},
			steps:     []step{push(1, 1, 4), push(1, 2, 4), push(1, 3, 2), push(1, 4, 9), peek(2, 4)},
			wantLen:   1,
			wantBytes: 9,
			wantGap:   codec.GapReport{DroppedBytes: 3},
		},
		{
			name:      "exactly MaxBytes fits",
			lim:       Limits{MaxBytes: 10},
			steps:     []step{push(1, 1, 10), push(1, 2, 0), pop(1, 1)},
			wantLen:   1,
			wantGap:   codec.GapReport{Delivered: 1},
			wantBytes: 0,
		},
		{
			name:      "a message larger than MaxBytes is dropped itself",
			lim:       Limits{MaxBytes: 10},
			steps:     []step{push(1, 1, 6), push(1, 2, 11), peek(1, 1)},
			wantLen:   1,
			wantBytes: 6,
			wantGap:   codec.GapReport{DroppedBytes: 1},
		},
		{
			name:      "count first, then bytes",
			lim:       Limits{MaxCount: 2, MaxBytes: 10},
			steps:     []step{push(1, 1, 5), push(1, 2, 5), push(1, 3, 6), pop(1, 3)},
			wantGap:   codec.GapReport{Delivered: 1, DroppedCount: 1, DroppedBytes: 1},
			wantBytes: 0,
		},
		{
			name:    "an expired message is skipped by Pop and counted",
			lim:     DefaultLimits(),
			steps:   []step{pushExp(1, 1, 1, 10), push(2, 2, 1), pop(10, 2), pop(10, 0)},
			wantGap: codec.GapReport{Delivered: 1, Expired: 1},
		},
		{
			name:    "expiry is reached at the deadline, not after",
			lim:     DefaultLimits(),
			steps:   []step{pushExp(1, 1, 1, 5), peek(4, 1), peek(5, 0)},
			wantGap: codec.GapReport{Expired: 1},
		},
		{
			name:    "age limit",
			lim:     Limits{MaxAge: 10},
			steps:   []step{push(100, 1, 1), push(105, 2, 1), pop(109, 1), pop(115, 0), push(120, 3, 1)},
			wantLen: 1, wantBytes: 1,
			wantGap:  codec.GapReport{Delivered: 1, DroppedAge: 1},
			wantNext: 130,
		},
		{
			name:     "a tie between age and expiry counts as expired",
			lim:      Limits{MaxAge: 10},
			steps:    []step{pushAt(100, 1, 100, 110), pushAt(100, 2, 100, 115), pushAt(100, 3, 100, 105), expire(200)},
			wantGap:  codec.GapReport{Expired: 2, DroppedAge: 1},
			wantNext: 0,
		},
		{
			name:    "the earlier deadline names the reason, however late the check",
			lim:     Limits{MaxAge: 10},
			steps:   []step{pushAt(100, 1, 95, 108), pushAt(100, 2, 100, 109), pop(1000, 0)},
			wantGap: codec.GapReport{DroppedAge: 1, Expired: 1},
		},
		{
			name:    "a message due on arrival is not queued",
			lim:     Limits{MaxAge: 10},
			steps:   []step{pushExp(100, 1, 1, 100), pushAt(100, 2, 90, 0), pushAt(100, 3, 89, 0), pushExp(100, 4, 1, -5), pop(100, 0)},
			wantGap: codec.GapReport{Expired: 2, DroppedAge: 2},
		},
		{
			name:      "Enqueued 0 means now",
			lim:       Limits{MaxAge: 10},
			steps:     []step{push(50, 1, 2)},
			wantLen:   1,
			wantBytes: 2,
			wantNext:  60,
		},
		{
			name: "expiry out of order leaves the others in order",
			lim:  DefaultLimits(),
			steps: []step{
				pushExp(1, 1, 1, 100), pushExp(1, 2, 1, 10), push(1, 3, 1), pushExp(1, 4, 1, 5), pushExp(1, 5, 1, 50),
				expire(10), pop(11, 1), pop(11, 3), pop(11, 5),
			},
			wantGap: codec.GapReport{Delivered: 3, Expired: 2},
		},
		{
			name: "holes are squeezed out rather than counted as drops",
			lim:  Limits{MaxCount: 4},
			steps: []step{
				push(1, 1, 1), pushExp(1, 2, 1, 5), pushExp(1, 3, 1, 5), push(1, 4, 1),
				expire(5), push(6, 5, 1), push(6, 6, 1),
				pop(7, 1), pop(7, 4), pop(7, 5), pop(7, 6),
			},
			wantGap: codec.GapReport{Delivered: 4, Expired: 2},
		},
		{
			name:     "NextDeadline is the earliest of any order",
			lim:      Limits{MaxAge: 1000},
			steps:    []step{pushExp(1, 1, 1, 500), pushExp(2, 2, 1, 40), push(3, 3, 1), pushExp(4, 4, 1, 30), pop(5, 1), expire(30)},
			wantLen:  2,
			wantGap:  codec.GapReport{Delivered: 1, Expired: 1},
			wantNext: 40, wantBytes: 2,
		},
		{
			name:     "age saturates rather than overflows",
			lim:      Limits{MaxAge: time.Duration(math.MaxInt64)},
			steps:    []step{push(100, 1, 1), pop(math.MaxInt64-1, 1)},
			wantGap:  codec.GapReport{Delivered: 1},
			wantNext: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := New(tt.lim)
			for i, s := range tt.steps {
				switch s.op {
				case 'u':
					q.Push(Message{Payload: payload(s.id, s.size), Enqueued: s.enq, Expires: s.exp, Meta: s.id}, s.now)
				case 'o', 'e':
					pop := q.Pop
					if s.op == 'e' {
						pop = q.Peek
					}
					m, ok := pop(s.now)
					if ok != (s.id != 0) || m.Meta != s.id {
						t.Fatalf("step %d (%c at %d): got %d %v, want %d", i, s.op, s.now, m.Meta, ok, s.id)
					}
					if ok && !payloadOK(m) {
						t.Fatalf("step %d: payload %x for %d", i, m.Payload, m.Meta)
					}
				case 'x':
					q.Expire(s.now)
				}
				if err := q.check(); err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
			}
			if q.Len() != tt.wantLen || q.Bytes() != tt.wantBytes {
				t.Errorf("Len, Bytes = %d, %d; want %d, %d", q.Len(), q.Bytes(), tt.wantLen, tt.wantBytes)
			}
			if g := q.Gap(); g != tt.wantGap {
				t.Errorf("Gap = %+v\nwant  %+v", g, tt.wantGap)
			}
			at, ok := q.NextDeadline()
			if ok != (tt.wantNext != 0) || at != tt.wantNext {
				t.Errorf("NextDeadline = %d %v, want %d", at, ok, tt.wantNext)
			}
		})
	}
}

func TestLimits(t *testing.T) {
	tests := []struct {
		in, want Limits
	}{
		{Limits{}, Limits{MaxCount: 1000, MaxBytes: 1 << 20}},
		{DefaultLimits(), Limits{MaxCount: 1000, MaxBytes: 1 << 20}},
		{Limits{MaxCount: -1, MaxBytes: -1, MaxAge: -time.Second}, Limits{MaxCount: 1000, MaxBytes: 1 << 20}},
		{Limits{MaxCount: 5, MaxBytes: 7, MaxAge: time.Minute}, Limits{MaxCount: 5, MaxBytes: 7, MaxAge: time.Minute}},
		{Limits{MaxCount: math.MaxInt, MaxBytes: math.MaxInt}, Limits{MaxCount: math.MaxInt32, MaxBytes: math.MaxInt}},
	}
	for _, tt := range tests {
		if got := New(tt.in).Limits(); got != tt.want {
			t.Errorf("New(%+v).Limits() = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

// The ring doubles from 16 up to MaxCount and never past it, and allocates
// nothing before the first Push.
func TestRingGrowth(t *testing.T) {
	q := New(Limits{MaxCount: 100})
	if q.ring != nil {
		t.Fatal("ring allocated before the first Push")
	}
	var sizes []int
	for i := range 250 {
		q.Push(Message{Meta: uint64(i + 1)}, 1)
		if len(sizes) == 0 || sizes[len(sizes)-1] != len(q.ring) {
			sizes = append(sizes, len(q.ring))
		}
	}
	want := []int{16, 32, 64, 100}
	if len(sizes) != len(want) {
		t.Fatalf("ring sizes %v, want %v", sizes, want)
	}
	for i := range want {
		if sizes[i] != want[i] {
			t.Fatalf("ring sizes %v, want %v", sizes, want)
		}
	}
	if g := q.Gap(); g.DroppedCount != 150 || q.Len() != 100 {
		t.Fatalf("Len %d, Gap %+v", q.Len(), g)
	}
}

// Pop hands the payload over and the queue keeps no reference to it; a
// dropped message's payload is released too.
func TestNoRetainedPayload(t *testing.T) {
	q := New(Limits{MaxCount: 2})
	q.Push(Message{Payload: []byte("a"), Meta: 1}, 1)
	q.Push(Message{Payload: []byte("b"), Expires: 5, Meta: 2}, 1)
	q.Push(Message{Payload: []byte("c"), Meta: 3}, 1) // drops 1
	q.Expire(5)                                       // drops 2
	if m, _ := q.Pop(6); string(m.Payload) != "c" {
		t.Fatalf("popped %q", m.Payload)
	}
	for i, s := range q.ring {
		if s.m.Payload != nil || s.live {
			t.Fatalf("slot %d retains %+v", i, s)
		}
	}
}

// Sizes of the hot structs, pinned: a slot is one cache line on 64-bit.
func TestSizes(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("sizes pinned for 64-bit platforms")
	}
	if s := unsafe.Sizeof(Message{}); s != 56 {
		t.Errorf("Message is %d bytes, want 56", s)
	}
	if s := unsafe.Sizeof(slot{}); s != 64 {
		t.Errorf("slot is %d bytes, want 64", s)
	}
	if s := unsafe.Sizeof(deadline{}); s != 16 {
		t.Errorf("deadline is %d bytes, want 16", s)
	}
}
