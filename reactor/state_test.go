package reactor

import (
	"testing"
	"time"

	"github.com/ferry-proto/ferry/codec"
	"github.com/ferry-proto/ferry/protocol"
)

// These tests use the real clock with short intervals and assert bounds
// that hold on a loaded machine: a close never comes before its deadline,
// and comes within a generous slack after it.

func TestHandshakeTimeout(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng, func(t *testing.T) {
			const timeout = 300 * time.Millisecond
			s, _ := startServer(t, eng, Config{HandshakeTimeout: timeout})
			c := dial(t, s.Addr())
			start := time.Now()
			// SPEC §5.5: no HELLO in time is HANDSHAKE_TIMEOUT and a close.
			if code := c.ExpectClose(5 * time.Second); code != protocol.CodeHandshakeTimeout {
				t.Fatalf("closed with %s", code)
			}
			if el := time.Since(start); el < timeout {
				t.Fatalf("closed after %v, before the %v timeout", el, timeout)
			}
			waitFor(t, "close counted", 2*time.Second, func() bool {
				return s.Counters().ClosesBy(protocol.CodeHandshakeTimeout) == 1
			})
		})
	}
}

func TestFirstFrameMustBeHello(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng, func(t *testing.T) {
			s, _ := startServer(t, eng, Config{})
			c := dial(t, s.Addr())
			c.Send(codec.Frame{Type: protocol.FramePing})
			if code := c.ExpectClose(5 * time.Second); code != protocol.CodeProtocolError {
				t.Fatalf("closed with %s", code)
			}
			c2 := dial(t, s.Addr())
			h := codec.Hello{Version: 7}
			c2.Write(codec.AppendHello(nil, &h))
			if code := c2.ExpectClose(5 * time.Second); code != protocol.CodeUnsupportedVersion {
				t.Fatalf("wrong version closed with %s", code)
			}
		})
	}
}

func TestAuthRefused(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng, func(t *testing.T) {
			h := newTestHandler()
			h.refuse = protocol.CodeAuthFailed
			s, _ := startServer(t, eng, Config{Handler: h})
			c := dial(t, s.Addr())
			hello := codec.Hello{Version: 1, AuthToken: []byte("bad")}
			c.Write(codec.AppendHello(nil, &hello))
			if code := c.ExpectClose(5 * time.Second); code != protocol.CodeAuthFailed {
				t.Fatalf("closed with %s", code)
			}
		})
	}
}

// SPEC §7.1: silence for 1.5×K closes with IDLE_TIMEOUT, not before; the
// server PINGs after 0.8×K of sending nothing; any frame keeps it alive.
func TestHeartbeat(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng, func(t *testing.T) {
			const k = 400 * time.Millisecond
			prof := HeartbeatProfile{Default: k, Min: 100 * time.Millisecond, Max: time.Second}
			s, _ := startServer(t, eng, Config{Heartbeat: prof})

			// A client that answers nothing and sends nothing.
			silent := dial(t, s.Addr())
			// The server's clock starts at the HELLO's arrival: measure
			// from before it is sent, so the bounds below err on the
			// strict side.
			start := time.Now()
			w := silent.Hello(codec.Hello{})
			if w.HeartbeatMs != uint32(k/time.Millisecond) {
				t.Fatalf("granted %d ms", w.HeartbeatMs)
			}
			sawPing := time.Duration(0)
			var code protocol.ErrorCode
			for {
				f, err := silent.Read(5 * time.Second)
				if err != nil {
					break
				}
				switch f.Type {
				case protocol.FramePing:
					if sawPing == 0 {
						sawPing = time.Since(start)
					}
				case protocol.FrameError:
					code = f.Code
				}
			}
			closedAfter := time.Since(start)
			if code != protocol.CodeIdleTimeout {
				t.Fatalf("closed with %s", code)
			}
			if closedAfter < k*3/2 {
				t.Fatalf("closed after %v, before 1.5×K = %v", closedAfter, k*3/2)
			}
			if sawPing == 0 || sawPing < k*4/5 {
				t.Fatalf("first PING after %v, want >= 0.8×K = %v", sawPing, k*4/5)
			}

			// A client that PINGs every K/2 stays connected past 3×K.
			live := dial(t, s.Addr())
			live.Hello(codec.Hello{})
			deadline := time.Now().Add(3 * k)
			for time.Now().Before(deadline) {
				live.Send(codec.Frame{Type: protocol.FramePing, Opaque: 1})
				time.Sleep(k / 2)
			}
			live.Send(codec.Frame{Type: protocol.FrameData, Lane: 1, Route: echoRoute, Payload: []byte("alive")})
			for {
				f := live.Next(5 * time.Second)
				if f.Type == protocol.FrameError {
					t.Fatalf("live client closed with %s", f.Code)
				}
				if f.Type == protocol.FrameData {
					break
				}
			}
		})
	}
}

func TestPingFloodClosed(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng, func(t *testing.T) {
			s, _ := startServer(t, eng, Config{PingWarnings: 3})
			c := dial(t, s.Addr())
			c.Hello(codec.Hello{})
			var flood []byte
			for i := range 10 {
				p := codec.Frame{Type: protocol.FramePing, Opaque: uint64(i)}
				flood = p.Append(flood)
			}
			c.Write(flood)
			warnings, pongs := 0, 0
			var code protocol.ErrorCode
			for {
				f, err := c.Read(5 * time.Second)
				if err != nil {
					break
				}
				switch f.Type {
				case protocol.FrameResult:
					if f.Code == protocol.CodeRateLimited {
						warnings++
					}
				case protocol.FramePong:
					pongs++
				case protocol.FrameError:
					code = f.Code
				}
			}
			if code != protocol.CodeRateLimited || warnings != 3 {
				t.Fatalf("closed with %s after %d warnings, %d pongs", code, warnings, pongs)
			}
		})
	}
}

func TestMaxConnsRefused(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng, func(t *testing.T) {
			s, _ := startServer(t, eng, Config{MaxConns: 3})
			for range 3 {
				dial(t, s.Addr()).Hello(codec.Hello{})
			}
			extra := dial(t, s.Addr())
			if code := extra.ExpectClose(5 * time.Second); code != protocol.CodeTooManyConnections {
				t.Fatalf("4th connection closed with %s", code)
			}
			if s.Counters().ConnsRefused.Load() != 1 || s.NumConns() != 3 {
				t.Fatalf("refused %d, open %d", s.Counters().ConnsRefused.Load(), s.NumConns())
			}
		})
	}
}

func TestProtocolErrorClosesOnlyThatConnection(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng, func(t *testing.T) {
			s, _ := startServer(t, eng, Config{})
			good := dial(t, s.Addr())
			good.Hello(codec.Hello{})
			bad := dial(t, s.Addr())
			bad.Hello(codec.Hello{})
			bad.Write([]byte{0xff, 0xff, 0xff, 0xff}) // SPEC §3.2: a 4 GiB prefix
			if code := bad.ExpectClose(5 * time.Second); code != protocol.CodeFrameTooLarge {
				t.Fatalf("closed with %s", code)
			}
			good.Send(codec.Frame{Type: protocol.FrameData, Lane: 2, Route: echoRoute, Payload: []byte("still here")})
			if f := good.Next(5 * time.Second); string(f.Payload) != "still here" {
				t.Fatalf("good client got %+v", f)
			}
		})
	}
}

func TestShutdownSendsGoAway(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng, func(t *testing.T) {
			s, _ := startServer(t, eng, Config{DrainTimeout: 2 * time.Second, ReconnectAfter: 1500 * time.Millisecond})
			c := dial(t, s.Addr())
			c.Hello(codec.Hello{})
			done := make(chan error, 1)
			go func() { done <- s.Shutdown(t.Context()) }()
			f := c.Next(5 * time.Second)
			if f.Type != protocol.FrameGoAway || f.Code != protocol.CodeGoingAway || f.ReconnectAfter != 1500 {
				t.Fatalf("got %+v, want GOAWAY", f)
			}
			// The client leaves; Shutdown returns without waiting out the drain.
			c.Conn.Close()
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Shutdown did not return")
			}
		})
	}
}
