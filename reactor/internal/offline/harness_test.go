package offline

import (
	"errors"
	"fmt"

	"github.com/ferry-proto/ferry/codec"
)

// harness drives a Queue and the reference model with the same operations
// on a fake clock, and after each one checks the model's agreement, the
// queue's invariants and the properties the design promises independently
// of the model: bounds held, FIFO, nothing due ever returned, conservation,
// and the gap report's wire round trip.
type harness struct {
	q   *Queue
	r   *ref
	now int64

	timed    int64  // now of the last operation that took a time
	nextID   uint64 // Meta of the next message pushed; ids grow in push order
	lastPop  uint64 // Meta of the last message popped, 0 before the first
	pushed   uint64 // since the last ResetGap
	carried  uint64 // Len at the last ResetGap: messages pushed before it
	maxBytes int
}

func newHarness(l Limits, start int64) *harness {
	return &harness{q: New(l), r: newRef(l), now: start, nextID: 1}
}

func (h *harness) advance(d int64) { h.now += d }

func (h *harness) push(size int, lane uint8, enqueued, expires int64) error {
	m := Message{Lane: lane, Payload: payload(h.nextID, size), Enqueued: enqueued, Expires: expires, Meta: h.nextID}
	h.nextID++
	h.pushed++
	h.r.push(m, h.now)
	h.q.Push(m, h.now)
	h.timed = h.now
	return h.verify("push")
}

func (h *harness) pop() error {
	want, wantOK := h.r.pop(h.now)
	peek, peekOK := h.q.Peek(h.now)
	got, ok := h.q.Pop(h.now)
	h.timed = h.now
	switch {
	case ok != wantOK || got.Meta != want.Meta:
		return fmt.Errorf("Pop = %d %v, model %d %v", got.Meta, ok, want.Meta, wantOK)
	case peekOK != ok || peek.Meta != got.Meta:
		return fmt.Errorf("Peek = %d %v, then Pop = %d %v", peek.Meta, peekOK, got.Meta, ok)
	}
	if ok {
		if got.Meta <= h.lastPop {
			return fmt.Errorf("FIFO: popped %d after %d", got.Meta, h.lastPop)
		}
		h.lastPop = got.Meta
		if got.Expires != 0 && got.Expires <= h.now {
			return fmt.Errorf("popped %d at %d, expired at %d", got.Meta, h.now, got.Expires)
		}
		if age := int64(h.q.lim.MaxAge); age > 0 && got.Enqueued <= h.now-age {
			return fmt.Errorf("popped %d at %d, enqueued %d, MaxAge %d", got.Meta, h.now, got.Enqueued, age)
		}
		if !payloadOK(got) || got.Enqueued == 0 {
			return fmt.Errorf("popped %d with payload %x, Enqueued %d", got.Meta, got.Payload, got.Enqueued)
		}
	}
	return h.verify("pop")
}

func (h *harness) expire() error {
	h.r.expire(h.now)
	h.q.Expire(h.now)
	h.timed = h.now
	return h.verify("expire")
}

func (h *harness) resetGap() error {
	h.q.ResetGap()
	h.r.gap = codec.GapReport{}
	h.pushed, h.carried = 0, uint64(h.q.Len())
	return h.verify("reset")
}

func (h *harness) verify(op string) error {
	q := h.q
	if err := q.check(); err != nil {
		return fmt.Errorf("%s at %d: invariant: %w", op, h.now, err)
	}
	if err := q.matches(h.r); err != nil {
		return fmt.Errorf("%s at %d: model: %w", op, h.now, err)
	}
	if q.Len() > q.lim.MaxCount || q.Bytes() > q.lim.MaxBytes {
		return fmt.Errorf("%s: bound exceeded: %d messages, %d bytes, limits %+v", op, q.Len(), q.Bytes(), q.lim)
	}
	h.maxBytes = max(h.maxBytes, q.Bytes())
	g := q.Gap()
	if in, out := h.pushed+h.carried, g.Delivered+g.Lost()+uint64(q.Len()); in != out {
		return fmt.Errorf("%s: conservation: pushed %d (+%d carried) != delivered+lost+queued %d (%+v, len %d)",
			op, h.pushed, h.carried, out, g, q.Len())
	}
	if at, ok := q.NextDeadline(); ok && at <= h.timed {
		return fmt.Errorf("%s: NextDeadline %d is not after %d: something due is still queued", op, at, h.timed)
	}
	b := g.Append(make([]byte, 0, codec.GapReportLen))
	if len(b) != codec.GapReportLen || len(b) != g.Len() {
		return fmt.Errorf("gap report encodes to %d bytes", len(b))
	}
	back, err := codec.ParseGapReport(b)
	if err != nil || back != g {
		return fmt.Errorf("gap report round trip: %+v, %v; want %+v", back, err, g)
	}
	if _, err := codec.ParseGapReport(b[:len(b)-1]); !errors.Is(err, codec.ErrGapReportSize) {
		return fmt.Errorf("truncated gap report: err %v", err)
	}
	return nil
}
