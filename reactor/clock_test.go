package reactor

import (
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-proto/ferry/codec"
	"github.com/ferry-proto/ferry/protocol"
)

// fakeClock is the time a test server's deadlines are measured on: it
// moves only when the test says so; the loops' ticks (every 10 ms of real
// time) then fire what is due.
type fakeClock struct {
	base time.Time
	off  atomic.Int64
}

func (f *fakeClock) now() time.Time          { return f.base.Add(time.Duration(f.off.Load())) }
func (f *fakeClock) advance(d time.Duration) { f.off.Add(int64(d)) }

// startFake starts a server on a fake clock.
func startFake(t *testing.T, eng string, cfg Config) (*Server, *testHandler, *fakeClock) {
	t.Helper()
	h := newTestHandler()
	if cfg.Handler == nil {
		cfg.Handler = h
	}
	cfg.Engine, cfg.Addr, cfg.Loops = eng, "127.0.0.1:0", 2
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	fc := &fakeClock{base: time.Now()}
	s.clock = fc.now
	s.epoch = fc.now()
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, h, fc
}

// stillOpen reports whether the connection got no ERROR within a few real
// ticks of the loops.
func stillOpen(t *testing.T, c *rawClient) bool {
	t.Helper()
	f, err := c.Read(100 * time.Millisecond)
	for err == nil && f.Type != protocol.FrameError {
		f, err = c.Read(100 * time.Millisecond)
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() // nothing closed it, and nothing came
}

// SPEC §5.5 on a fake clock: no HELLO for just under the handshake
// timeout keeps the connection; at the timeout it is closed.
func TestHandshakeTimeoutFakeClock(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng, func(t *testing.T) {
			s, _, fc := startFake(t, eng, Config{HandshakeTimeout: 5 * time.Second})
			c := dial(t, s.Addr())
			waitFor(t, "accept", 5*time.Second, func() bool { return s.NumConns() == 1 })
			fc.advance(5*time.Second - 20*time.Millisecond)
			if !stillOpen(t, c) {
				t.Fatal("closed before the handshake timeout")
			}
			fc.advance(20 * time.Millisecond)
			if code := c.ExpectClose(5 * time.Second); code != protocol.CodeHandshakeTimeout {
				t.Fatalf("closed with %s", code)
			}
		})
	}
}

// SPEC §7.1 on a fake clock, K = 10 s: PING after 0.8 K of sending
// nothing, not before; IDLE_TIMEOUT at 1.5 K of silence, not before; a
// byte received restarts the count.
func TestHeartbeatFakeClock(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng, func(t *testing.T) {
			s, _, fc := startFake(t, eng, Config{})
			c := dial(t, s.Addr())
			c.Hello(codec.Hello{HeartbeatMs: 10_000})
			tick := 20 * time.Millisecond // two wheel ticks of rounding

			fc.advance(8*time.Second - tick)
			if f, err := c.Read(100 * time.Millisecond); err == nil {
				t.Fatalf("got %s before 0.8 K", f.Type)
			}
			fc.advance(tick)
			if f := c.Next(5 * time.Second); f.Type != protocol.FramePing {
				t.Fatalf("got %s at 0.8 K, want PING", f.Type)
			}
			// A byte from the client at 9 s: the idle count restarts there.
			fc.advance(time.Second)
			c.Send(codec.Frame{Type: protocol.FramePong})
			waitFor(t, "PONG counted", 5*time.Second, func() bool {
				return s.Counters().FramesIn[protocol.FramePong].Load() == 1
			})
			fc.advance(15*time.Second - tick)
			if !stillOpen(t, c) {
				t.Fatal("closed before 1.5 K of silence")
			}
			fc.advance(tick)
			if code := c.ExpectClose(5 * time.Second); code != protocol.CodeIdleTimeout {
				t.Fatalf("closed with %s", code)
			}
		})
	}
}
