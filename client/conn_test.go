package client

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/ferry-proto/ferry/codec"
	"github.com/ferry-proto/ferry/protocol"
)

// The reconnect schedule, with a fake random source: 0.5 s × 1.6^n, ±20 %,
// at most 30 s.
func TestBackoffSchedule(t *testing.T) {
	r := 0.5
	b := backoff{initial: 500 * time.Millisecond, max: 30 * time.Second, rnd: func() float64 { return r }}
	want := []time.Duration{500, 800, 1280, 2048, 3276, 5242, 8388, 13421, 21474, 30000, 30000}
	for i, w := range want {
		got := b.delay(i + 1).Round(time.Millisecond)
		if d := got - w*time.Millisecond; d < -time.Millisecond || d > time.Millisecond {
			t.Errorf("attempt %d: %v, want %v ms", i+1, got, w)
		}
	}
	r = 0 // −20 %
	if got := b.delay(1); got != 400*time.Millisecond {
		t.Errorf("low jitter: %v", got)
	}
	r = 1 // +20 %, but never past the cap
	if got := b.delay(2); got != 960*time.Millisecond {
		t.Errorf("high jitter: %v", got)
	}
	if got := b.delay(50); got != 30*time.Second {
		t.Errorf("capped: %v", got)
	}
	r = 0
	if got := b.delay(50); got != 24*time.Second {
		t.Errorf("capped, low: %v", got)
	}
	r = -3 // clamped
	if got := b.delay(1); got != 400*time.Millisecond {
		t.Errorf("clamped: %v", got)
	}
	// SPEC §7.4: ReconnectAfterMs + [0, ReconnectAfterMs/2], or [0, 1 s].
	r = 1
	if got := goAwayDelay(2000, b.rnd); got != 3*time.Second {
		t.Errorf("GOAWAY 2000 ms: %v", got)
	}
	if got := goAwayDelay(0, b.rnd); got != time.Second {
		t.Errorf("GOAWAY 0: %v", got)
	}
	r = 0
	if got := goAwayDelay(2000, b.rnd); got != 2*time.Second {
		t.Errorf("GOAWAY 2000 ms, no jitter: %v", got)
	}
}

// SPEC §7.4: after GOAWAY the client does not connect again before
// ReconnectAfterMs has passed.
func TestGoAwayHint(t *testing.T) {
	p := newPeer(t, peerOpts{})
	var hellos []time.Time
	p.opts.hello = func(*codec.Hello) (protocol.ErrorCode, bool, uint32) {
		hellos = append(hellos, time.Now())
		if len(hellos) == 3 {
			// A GOAWAY in place of WELCOME gives a hint too.
			return protocol.CodeTooManyConnections, true, 200
		}
		return protocol.CodeOK, false, 0
	}
	c := dial(t, p.addr(), withRand(func() float64 { return 0 }))
	p.mu.Lock()
	pc := p.only().conn
	pc.writeFrame(&codec.Frame{Type: protocol.FrameGoAway, Code: protocol.CodeGoingAway, ReconnectAfter: 300})
	sentAt := time.Now()
	_ = pc.nc.Close()
	p.mu.Unlock()
	waitFor(t, "resumed", func() bool { return c.Stats().Resumes == 1 })
	p.kill()
	waitFor(t, "resumed again", func() bool { return c.Stats().Resumes == 2 })
	_ = c.Close()
	// The reconnect hello came no sooner than 300 ms after the GOAWAY (the
	// jitter was 0), and after the refusal no sooner than 200 ms.
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(hellos) != 4 {
		t.Fatalf("%d HELLOs", len(hellos))
	}
	if d := hellos[1].Sub(sentAt); d < 300*time.Millisecond {
		t.Fatalf("reconnected %v after GOAWAY", d)
	}
	if d := hellos[3].Sub(hellos[2]); d < 200*time.Millisecond {
		t.Fatalf("reconnected %v after the refusal", d)
	}
}

// withRand replaces the random source of the jitters.
func withRand(rnd func() float64) Option { return func(c *config) { c.rnd = rnd } }

// SPEC §7.1: a PING after 0.8 × K without sending, never two PINGs less
// than K/8 apart, and a PONG for every PING.
func TestHeartbeat(t *testing.T) {
	const k = 200 // ms
	var pings []time.Time
	p := newPeer(t, peerOpts{heartbeatMs: k, frame: func(pc *peerConn, f *codec.Frame) bool {
		if f.Type == protocol.FramePing {
			pings = append(pings, time.Now())
		}
		return false
	}})
	start := time.Now()
	dial(t, p.addr())
	p.mu.Lock()
	p.only().conn.writeFrame(&codec.Frame{Type: protocol.FramePing, Opaque: 42})
	p.mu.Unlock()
	p.waitUntil("PINGs", func() bool { return len(pings) >= 4 })
	pong := p.framesOf(0, protocol.FramePong)
	if len(pong) != 1 || pong[0].Opaque != 42 {
		t.Fatalf("PONGs %+v", pong)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	// The first PING seeds the RTT at connect; the next come 0.8 K apart
	// (nothing else is sent), never closer than K/8.
	for i := 1; i < len(pings); i++ {
		if d := pings[i].Sub(pings[i-1]); d < k*time.Millisecond/8 {
			t.Fatalf("PINGs %v apart", d)
		}
	}
	if d := pings[3].Sub(start); d < 2*k*4/5*time.Millisecond {
		t.Fatalf("4 PINGs within %v", d)
	}
}

// SPEC §7.1: nothing received for 1.5 × K: IDLE_TIMEOUT, then a reconnect.
func TestIdleTimeout(t *testing.T) {
	p := newPeer(t, peerOpts{heartbeatMs: 200, noPong: true})
	c := dial(t, p.addr())
	waitFor(t, "reconnect", func() bool { return c.Stats().Reconnects >= 1 })
	errs := p.framesOf(0, protocol.FrameError)
	if len(errs) != 1 || errs[0].Code != protocol.CodeIdleTimeout {
		t.Fatalf("ERRORs %+v", errs)
	}
}

// notes/delivery.md: an overdue ACK brings PING probes; three unanswered
// probes drop the connection (IDLE_TIMEOUT), and the session resumes on a
// new one, where the message is replayed.
func TestProbesDropDeadPath(t *testing.T) {
	silent := false
	p := newPeer(t, peerOpts{heartbeatMs: 2000, frame: func(pc *peerConn, f *codec.Frame) bool {
		// A server stuck since the DATA arrived: it reads but answers
		// nothing, and the connection's bytes keep it from an idle timeout.
		if f.Type == protocol.FrameData && len(pc.p.conns) == 1 {
			silent = true
		}
		return silent && pc == pc.p.conns[0]
	}})
	c := dial(t, p.addr())
	p.waitUntil("RTT sample", func() bool { return len(p.conns[0].frames) >= 2 })
	if err := c.SendAsync(1, routeRecord, []byte("m"), nil); err != nil {
		t.Fatal(err)
	}
	var errAt int
	p.waitUntil("dropped", func() bool {
		for i, f := range p.conns[0].frames {
			if f.Type == protocol.FrameError {
				errAt = i
				return true
			}
		}
		return false
	})
	if f := p.conns[0].frames[errAt]; f.Code != protocol.CodeIdleTimeout {
		t.Fatalf("ERROR %v", f.Code)
	}
	if pings := len(p.framesOf(0, protocol.FramePing)); pings != 1+3 { // the first PING of the connection, then 3 probes
		t.Fatalf("%d PINGs", pings)
	}
	if err := c.Flush(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if got := p.received(1); len(got) != 1 || c.Stats().Replayed != 1 {
		t.Fatalf("got %q, stats %+v", got, c.Stats())
	}
}

// SPEC §5.3, §5.4: the client checks the WELCOME and closes with
// PROTOCOL_ERROR when one check fails.
func TestWelcomeChecks(t *testing.T) {
	for _, tc := range []struct {
		name string
		bad  func(w *codec.Welcome)
	}{
		{"capability not offered", func(w *codec.Welcome) { w.Capabilities = protocol.CapCompression }},
		{"heartbeat 0", func(w *codec.Welcome) { w.HeartbeatMs = 0 }},
		{"empty client id", func(w *codec.Welcome) { w.ClientID = nil }},
		{"resumes an unnamed session", func(w *codec.Welcome) { w.SessionPresent = true }},
		{"new session with Received", func(w *codec.Welcome) { w.Received[1] = 3 }},
		{"token without session", func(w *codec.Welcome) { w.SessionID = nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPeer(t, peerOpts{welcome: tc.bad})
			_, err := Dial(testCtx(t), p.addr(), WithReconnect(false))
			var se *ServerError
			if !errors.As(err, &se) || !se.Local || se.Code != protocol.CodeProtocolError {
				t.Fatalf("Dial: %v", err)
			}
			waitFor(t, "ERROR", func() bool {
				errs := p.framesOf(0, protocol.FrameError)
				return len(errs) == 1 && errs[0].Code == protocol.CodeProtocolError
			})
		})
	}
	// A resumed WELCOME whose Received is above what the client sent.
	p := newPeer(t, peerOpts{})
	dial(t, p.addr())
	p.mu.Lock()
	p.opts.welcome = func(w *codec.Welcome) {
		if w.SessionPresent {
			w.Received[0] = 5
		}
	}
	p.mu.Unlock()
	p.kill()
	waitFor(t, "PROTOCOL_ERROR", func() bool {
		return p.connCount() >= 2 && len(p.framesOf(1, protocol.FrameError)) == 1
	})
	if f := p.framesOf(1, protocol.FrameError)[0]; f.Code != protocol.CodeProtocolError {
		t.Fatalf("ERROR %v", f.Code)
	}
}

// SPEC §13.5: AUTH_FAILED is not retried: Dial fails with it at once.
func TestDialRefused(t *testing.T) {
	p := newPeer(t, peerOpts{hello: func(h *codec.Hello) (protocol.ErrorCode, bool, uint32) {
		if string(h.AuthToken) != "secret" {
			return protocol.CodeAuthFailed, false, 0
		}
		return protocol.CodeOK, false, 0
	}})
	_, err := Dial(testCtx(t), p.addr(), WithToken([]byte("wrong")))
	var se *ServerError
	if !errors.As(err, &se) || se.Code != protocol.CodeAuthFailed || se.Local {
		t.Fatalf("Dial: %v", err)
	}
	if p.connCount() != 1 {
		t.Fatalf("%d attempts", p.connCount())
	}
	c := dial(t, p.addr(), WithToken([]byte("secret")))
	if c.State() != StateConnected {
		t.Fatal(c.State())
	}
}

// Dial retries a server that is not there yet, through the dial hook, until
// its context ends.
func TestDialRetriesUntilContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens
	attempts := 0
	ctx, cancel := context.WithCancel(context.Background())
	_, err = Dial(ctx, addr, WithBackoff(time.Millisecond, 2*time.Millisecond),
		WithDialer(func(ctx context.Context, a string) (net.Conn, error) {
			attempts++
			if attempts == 3 {
				cancel()
			}
			return defaultDial(ctx, a)
		}))
	if !errors.Is(err, context.Canceled) || attempts < 3 {
		t.Fatalf("Dial: %v after %d attempts", err, attempts)
	}
	// Without reconnection the first failure is final.
	_, err = Dial(testCtx(t), addr, WithReconnect(false))
	if err == nil || errors.Is(err, context.Canceled) {
		t.Fatalf("Dial without reconnect: %v", err)
	}
}

// Without reconnection, the end of the connection closes the client, and
// its pending reliable messages fail.
func TestNoReconnect(t *testing.T) {
	p := newPeer(t, peerOpts{noAck: true})
	var ev events
	c := dial(t, p.addr(), WithReconnect(false), WithStateHandler(ev.add))
	done := make(chan error, 1)
	go func() { done <- c.SendReliable(context.Background(), 1, routeRecord, []byte("x")) }()
	p.waitUntil("message", func() bool { s := p.only(); return s != nil && len(s.got[1]) == 1 })
	p.kill()
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("SendReliable: %v", err)
	}
	waitFor(t, "closed", func() bool { return ev.has(EventClosed) })
	if p.connCount() != 1 {
		t.Fatal("reconnected")
	}
}

// Requests fail when their connection ends (SPEC §6); unreliable sends
// fail fast while disconnected.
func TestRequestFailsOnDisconnect(t *testing.T) {
	p := newPeer(t, peerOpts{})
	c := dial(t, p.addr())
	done := make(chan error, 1)
	go func() {
		_, err := c.Request(context.Background(), 1, routeSilent, []byte("q"))
		done <- err
	}()
	p.waitUntil("request", func() bool { s := p.only(); return s != nil && len(s.got[1]) == 1 })
	p.forget()
	p.mu.Lock()
	p.opts.hello = func(*codec.Hello) (protocol.ErrorCode, bool, uint32) {
		return protocol.CodeGoingAway, true, 60_000 // keep it away
	}
	p.mu.Unlock()
	p.kill()
	if err := <-done; !errors.Is(err, ErrDisconnected) {
		t.Fatalf("Request: %v", err)
	}
	waitFor(t, "disconnected", func() bool { return c.State() == StateConnecting })
	if err := c.Send(1, routeRecord, nil); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("Send: %v", err)
	}
	if _, err := c.Request(testCtx(t), 1, routeEcho, nil); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("Request: %v", err)
	}
	// Reliable messages wait for the connection.
	if err := c.SendAsync(1, routeRecord, []byte("later"), nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := c.Flush(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Flush: %v", err)
	}
}
