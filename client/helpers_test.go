package client

import (
	"context"
	"sync"
	"testing"
	"time"
)

// testTimeout bounds every wait of the tests: they wait for states, never
// for durations, and fail after this.
const testTimeout = 15 * time.Second

func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// dial connects a client to addr with short backoffs and closes it when the
// test ends.
func dial(t testing.TB, addr string, opts ...Option) *Client {
	t.Helper()
	opts = append([]Option{WithBackoff(10*time.Millisecond, 50*time.Millisecond)}, opts...)
	c, err := Dial(testCtx(t), addr, opts...)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitFor polls cond until it holds or the test times out.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// events records the client's connection events.
type events struct {
	mu sync.Mutex
	ev []Event
}

func (e *events) add(ev Event) {
	e.mu.Lock()
	e.ev = append(e.ev, ev)
	e.mu.Unlock()
}

func (e *events) kinds() []EventKind {
	e.mu.Lock()
	defer e.mu.Unlock()
	var k []EventKind
	for _, ev := range e.ev {
		k = append(k, ev.Kind)
	}
	return k
}

func (e *events) has(k EventKind) bool {
	for _, x := range e.kinds() {
		if x == k {
			return true
		}
	}
	return false
}

func (e *events) last(k EventKind) (Event, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := len(e.ev) - 1; i >= 0; i-- {
		if e.ev[i].Kind == k {
			return e.ev[i], true
		}
	}
	return Event{}, false
}

// inbox collects the messages a handler received.
type got struct {
	mu   sync.Mutex
	msgs []*Message
}

func (g *got) handler(m *Message) error {
	g.mu.Lock()
	g.msgs = append(g.msgs, m)
	g.mu.Unlock()
	return nil
}

func (g *got) len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.msgs)
}

func (g *got) payloads() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []string
	for _, m := range g.msgs {
		out = append(out, string(m.Payload))
	}
	return out
}
