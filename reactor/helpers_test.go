package reactor

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ferry-proto/ferry/codec"
	"github.com/ferry-proto/ferry/internal/wiretest"
	"github.com/ferry-proto/ferry/protocol"
)

// testHandler echoes DATA with route echoRoute back on the loop, records
// opens, messages and closes, and hands connections to the test.
type testHandler struct {
	mu     sync.Mutex
	opened chan *Conn
	closed chan protocol.ErrorCode
	msgs   int
	refuse protocol.ErrorCode
	onMsg  func(c *Conn, f *codec.Frame)
}

const echoRoute = 1

func newTestHandler() *testHandler {
	return &testHandler{opened: make(chan *Conn, 1024), closed: make(chan protocol.ErrorCode, 1024)}
}

func (h *testHandler) OnHello(c *Conn, hello *codec.Hello) (string, protocol.ErrorCode) {
	if h.refuse != protocol.CodeOK {
		return "", h.refuse
	}
	return string(hello.ClientID), protocol.CodeOK
}

func (h *testHandler) OnOpen(c *Conn) {
	select {
	case h.opened <- c:
	default:
	}
}

func (h *testHandler) OnMessage(c *Conn, f *codec.Frame) {
	h.mu.Lock()
	h.msgs++
	h.mu.Unlock()
	if h.onMsg != nil {
		h.onMsg(c, f)
		return
	}
	if f.Type == protocol.FrameData && f.Route == echoRoute {
		r := codec.Frame{Type: protocol.FrameData, Lane: f.Lane, Route: f.Route, Corr: f.Corr, Payload: f.Payload}
		if f.Corr != 0 {
			r.Flags = protocol.FlagResponse // SPEC §6.1: only requests get responses
		}
		if err := c.SendOnLoop(&r); err != nil {
			panic(err)
		}
	}
}

func (h *testHandler) OnClose(c *Conn, code protocol.ErrorCode) {
	select {
	case h.closed <- code:
	default:
	}
}

// expectClosed waits for the server to close a connection, with code.
func (h *testHandler) expectClosed(t testing.TB, code protocol.ErrorCode) {
	t.Helper()
	select {
	case got := <-h.closed:
		if got != code {
			t.Fatalf("closed with %s, want %s", got, code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("connection not closed")
	}
}

var engines = []string{"gnet", "netpoll"}

func startServer(t testing.TB, engine string, cfg Config) (*Server, *testHandler) {
	t.Helper()
	h := newTestHandler()
	if cfg.Handler == nil {
		cfg.Handler = h
	}
	cfg.Engine = engine
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Loops == 0 {
		cfg.Loops = 2
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, h
}

// rawClient is the test client of internal/wiretest: real loopback
// sockets and the codec, nothing of the server's.
type rawClient = wiretest.Client

func dial(t testing.TB, addr string) *rawClient { t.Helper(); return wiretest.Dial(t, addr) }

func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(5 * time.Millisecond):
		}
	}
}
