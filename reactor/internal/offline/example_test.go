package offline_test

import (
	"fmt"
	"time"

	"github.com/ferry-proto/ferry/codec"
	"github.com/ferry-proto/ferry/reactor/internal/offline"
)

func Example() {
	q := offline.New(offline.Limits{MaxCount: 3, MaxBytes: 1 << 10, MaxAge: time.Minute})
	sec := int64(time.Second)
	now := 1000 * sec

	// The client is away: queue its messages. The queue owns each payload.
	for i, text := range []string{"a", "b", "c", "d"} {
		m := offline.Message{Lane: 1, Payload: []byte(text), Meta: uint64(i)}
		if text == "c" {
			m.Expires = now + 5*sec // the publisher gave this one a 5 s TTL
		}
		q.Push(m, now) // "d" drops "a": MaxCount is 3
	}
	at, _ := q.NextDeadline()
	fmt.Println("queued:", q.Len(), "timer in:", time.Duration(at-now))

	// The timer fires; "c" expires.
	now = at
	q.Expire(now)

	// The client resumes (SPEC §12.9): take what is left, then report the
	// gap, whose Delivered counts the messages that follow it.
	var backlog []offline.Message
	for m, ok := q.Pop(now); ok; m, ok = q.Pop(now) {
		backlog = append(backlog, m)
	}
	wire := codec.AppendGapReport(nil, q.Gap())
	q.ResetGap()
	d := codec.NewDecoder()
	f, _, _ := d.Decode(wire)
	back, _ := codec.ParseGapReport(f.Payload)
	fmt.Printf("gap report: %d bytes, %+v, lost %d\n", len(wire), back, back.Lost())
	for _, m := range backlog {
		fmt.Printf("deliver %s\n", m.Payload)
	}
	fmt.Printf("after the report: %+v\n", q.Gap())
	// Output:
	// queued: 3 timer in: 5s
	// gap report: 47 bytes, {Delivered:2 DroppedCount:1 DroppedBytes:0 DroppedAge:0 Expired:1}, lost 2
	// deliver b
	// deliver d
	// after the report: {Delivered:0 DroppedCount:0 DroppedBytes:0 DroppedAge:0 Expired:0}
}
