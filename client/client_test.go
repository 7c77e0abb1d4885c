package client

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/ferry-proto/ferry/protocol"
)

func TestDialAndClientID(t *testing.T) {
	p := newPeer(t, peerOpts{})
	var ev events
	c := dial(t, p.addr(), WithClientID("alice"), WithStateHandler(ev.add))
	if got := c.ClientID(); got != "alice" {
		t.Fatalf("ClientID = %q", got)
	}
	if c.State() != StateConnected {
		t.Fatalf("State = %v", c.State())
	}
	waitFor(t, "connected event", func() bool { return ev.has(EventConnected) })
	c.Close()
	waitFor(t, "closed event", func() bool { return ev.has(EventClosed) })
	if err := c.Send(1, routeRecord, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
}

func TestRequestResponse(t *testing.T) {
	p := newPeer(t, peerOpts{})
	c := dial(t, p.addr())
	ctx := testCtx(t)
	for lane := protocol.LaneInteractive; lane <= protocol.LaneBulk; lane++ {
		out, err := c.Request(ctx, lane, routeEcho, []byte("ping"))
		if err != nil || string(out) != "ping" {
			t.Fatalf("lane %d: echo = %q, %v", lane, out, err)
		}
	}
	// SPEC §6.1: a RESULT OK answering a DATA request is an empty response.
	out, err := c.Request(ctx, 2, routeOK, []byte("x"))
	if err != nil || len(out) != 0 {
		t.Fatalf("RESULT OK: %q, %v", out, err)
	}
	_, err = c.Request(ctx, 2, routeFail, []byte("x"))
	var re *ResultError
	if !errors.As(err, &re) || re.Code != protocol.CodeHandlerError || re.Detail != "boom" {
		t.Fatalf("RESULT HANDLER_ERROR: %v", err)
	}
	_, err = c.Request(ctx, 2, routeUnknown, nil)
	if !errors.As(err, &re) || re.Code != protocol.CodeNoSuchRoute {
		t.Fatalf("NO_SUCH_ROUTE: %v", err)
	}
	if _, err := c.Request(ctx, 0, routeEcho, nil); !errors.Is(err, ErrBadLane) {
		t.Fatalf("lane 0: %v", err)
	}
	// A large request and response are fragmented both ways.
	big := bytes.Repeat([]byte("0123456789abcdef"), 10_000)
	out, err = c.Request(ctx, 3, routeEcho, big)
	if err != nil || !bytes.Equal(out, big) {
		t.Fatalf("big echo: %d bytes, %v", len(out), err)
	}
}

func TestSendReliableInOrder(t *testing.T) {
	p := newPeer(t, peerOpts{})
	c := dial(t, p.addr())
	ctx := testCtx(t)
	const n = 300
	for i := range n {
		lane := protocol.Lane(1 + i%3)
		if err := c.SendAsync(lane, routeRecord, []byte(fmt.Sprint(i)), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.SendReliable(ctx, 2, routeRecord, []byte("last")); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for lane := protocol.LaneInteractive; lane <= protocol.LaneBulk; lane++ {
		got := p.received(lane)
		want := 0
		for i := range n {
			if protocol.Lane(1+i%3) != lane {
				continue
			}
			if want >= len(got) || string(got[want]) != fmt.Sprint(i) {
				t.Fatalf("lane %d: message %d: got %q", lane, want, got)
			}
			want++
		}
	}
	st := c.Stats()
	if st.MessagesSent != n+1 {
		t.Fatalf("MessagesSent = %d", st.MessagesSent)
	}
}

// Close from a handler does not wait for the callback goroutine it runs on;
// pending calls fail with ErrClosed and nothing is left running (TestMain's
// goleak checks the last part).
func TestCloseFromHandler(t *testing.T) {
	p := newPeer(t, peerOpts{noAck: true})
	closed := make(chan struct{})
	var c *Client
	c = dial(t, p.addr(), WithHandler(func(m *Message) error {
		c.Close()
		close(closed)
		return nil
	}))
	done := make(chan error, 1)
	go func() { done <- c.SendReliable(testCtx(t), 1, routeRecord, []byte("pending")) }()
	p.waitUntil("pending message", func() bool { s := p.only(); return s != nil && len(s.got[1]) == 1 })
	p.sendTo(c.ClientID(), 2, []byte("close now"), false)
	<-closed
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("SendReliable: %v", err)
	}
	if c.State() != StateClosed {
		t.Fatal(c.State())
	}
}
