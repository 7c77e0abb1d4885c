package reactor

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/ferry-proto/ferry/codec"
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

// rawClient speaks FERRY/1 over a real loopback socket with the codec, so
// tests see exactly what the server puts on the wire.
type rawClient struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
	dec  codec.Decoder
	buf  []byte
}

func dial(t testing.TB, addr string) *rawClient {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawClient{t: t, conn: nc, r: bufio.NewReaderSize(nc, 256<<10), dec: codec.Decoder{MaxFrameSize: protocol.HardMaxFrameSize, Compression: true}}
}

func (c *rawClient) write(b []byte) {
	c.t.Helper()
	if _, err := c.conn.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *rawClient) send(f codec.Frame) { c.t.Helper(); c.write(f.Append(nil)) }

// hello sends HELLO and returns the WELCOME.
func (c *rawClient) hello(h codec.Hello) codec.Welcome {
	c.t.Helper()
	h.Version = protocol.Version
	c.write(codec.AppendHello(nil, &h))
	f := c.next(5 * time.Second)
	if f.Type != protocol.FrameWelcome {
		c.t.Fatalf("got %s (code %s %q), want WELCOME", f.Type, f.Code, f.Payload)
	}
	w, err := codec.ParseWelcome(f.Payload)
	if err != nil {
		c.t.Fatal(err)
	}
	return w
}

// next reads the next frame; its slices are valid until the next call.
func (c *rawClient) next(timeout time.Duration) codec.Frame {
	c.t.Helper()
	f, err := c.read(timeout)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return f
}

func (c *rawClient) read(timeout time.Duration) (codec.Frame, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(timeout))
	for {
		f, n, err := c.dec.Decode(c.buf)
		if err == nil {
			c.buf = c.buf[n:]
			return f, nil
		}
		if !errors.Is(err, codec.ErrNeedMore) {
			return f, err
		}
		// Copy-on-read keeps earlier frames' views intact.
		chunk := make([]byte, 64<<10)
		m, rerr := c.r.Read(chunk)
		c.buf = append(append([]byte(nil), c.buf...), chunk[:m]...)
		if rerr != nil {
			if m == 0 {
				return f, rerr
			}
		}
	}
}

// expectClose reads until the server's ERROR and EOF, and returns the code.
func (c *rawClient) expectClose(timeout time.Duration) protocol.ErrorCode {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	code := protocol.ErrorCode(0xffff)
	for {
		f, err := c.read(time.Until(deadline))
		if err != nil {
			if errors.Is(err, io.EOF) || isReset(err) {
				return code
			}
			c.t.Fatalf("waiting for close: %v (code so far %s)", err, code)
		}
		if f.Type == protocol.FrameError {
			code = f.Code
		}
	}
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}

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
