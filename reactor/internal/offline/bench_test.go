package offline

import (
	"strconv"
	"testing"
	"time"
)

// BenchmarkPushPop measures one Push plus one Pop, per queue depth (1; half
// the default MaxCount; full, where every Push also drops the oldest),
// without deadlines and with out-of-order per-message expiries plus an age
// limit (every message then goes through the deadline heap). The queue never
// touches payload bytes, so there is no b.SetBytes: the cost is per message,
// whatever its size.
func BenchmarkPushPop(b *testing.B) {
	for _, depth := range []int{1, DefaultMaxCount / 2, DefaultMaxCount} {
		for _, deadlines := range []bool{false, true} {
			name := "depth=" + strconv.Itoa(depth)
			if deadlines {
				name += "/deadlines"
			}
			b.Run(name, func(b *testing.B) {
				l := DefaultLimits()
				if deadlines {
					l.MaxAge = time.Hour
				}
				q := New(l)
				buf := make([]byte, 256)
				now := int64(1)
				exp := func(i int64) int64 {
					if !deadlines {
						return 0
					}
					return now + int64(time.Minute) + (i*7919)%1000 // out of push order
				}
				for i := range int64(depth) {
					q.Push(Message{Payload: buf, Expires: exp(i)}, now)
				}
				b.ReportAllocs()
				var i int64
				for b.Loop() {
					i++
					now++
					q.Push(Message{Payload: buf, Expires: exp(i), Meta: uint64(i)}, now)
					if _, ok := q.Pop(now); !ok {
						b.Fatal("empty")
					}
				}
				if want := min(depth, DefaultMaxCount-1); q.Len() != want {
					b.Fatalf("Len %d, want %d", q.Len(), want)
				}
			})
		}
	}
}
