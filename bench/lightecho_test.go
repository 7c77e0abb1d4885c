package bench

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-proto/ferry/protocol"
)

// Light echo against a real ferryd: every request answered, none failed,
// latencies that make sense, and the server's CPU time from the admin
// endpoint or from /proc.
func TestLightEcho(t *testing.T) {
	srv := startFerryd(t)
	for _, c := range []struct {
		name string
		cfg  Config
	}{
		{"pipelined", Config{Conns: 4, Inflight: 8, Size: 1024, Admin: srv.Admin, Sources: mustSources(t, "127.0.0.1-2")}},
		{"one in flight, lane 1, smallest payload", Config{Conns: 2, Size: 3, Lane: protocol.LaneInteractive, Admin: srv.Admin}},
		{"largest payload, server CPU from /proc", Config{Conns: 2, Inflight: 4, Size: maxLightSize, ServerPID: srv.PID}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := c.cfg
			cfg.Scenario, cfg.Light, cfg.Addr, cfg.Duration = "echo", true, srv.Addr, 500*time.Millisecond
			var reports int
			cfg.Progress, cfg.ProgressEvery = func(Progress) { reports++ }, 100*time.Millisecond
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			r, err := Run(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			wantSeries(t, r, "echo", "connect")
			if r.Errors != 0 || len(r.Notes) != 0 {
				t.Errorf("%d errors, notes %q", r.Errors, r.Notes)
			}
			if r.Msgs == 0 || r.MsgsPerSec <= 0 || r.Count < r.Msgs {
				t.Errorf("%d msgs at %.0f/s, %d latencies", r.Msgs, r.MsgsPerSec, r.Count)
			}
			if r.P50ms <= 0 || r.P50ms > r.P99ms || r.P99ms > r.MaxMs || r.MaxMs > 5000 {
				t.Errorf("p50 %v ms, p99 %v, max %v", r.P50ms, r.P99ms, r.MaxMs)
			}
			if want := max(c.cfg.Size, lightStampSize); r.Size != want || r.MBPerSec <= 0 {
				t.Errorf("size %d (want %d), %.1f MB/s", r.Size, want, r.MBPerSec)
			}
			if !r.Light || r.Inflight != max(c.cfg.Inflight, 1) || r.Lane != int(cfg.WithDefaults().Lane) {
				t.Errorf("light %v, inflight %d, lane %d", r.Light, r.Inflight, r.Lane)
			}
			if r.ServerCPUS <= 0 || r.ClientCPUS <= 0 {
				t.Errorf("server CPU %v s, client CPU %v s", r.ServerCPUS, r.ClientCPUS)
			}
			if reports == 0 {
				t.Error("no progress reports")
			}
		})
	}
}

// A server that answers light echo wrongly: each connection counts one
// error and ends, and the run returns as soon as none is left, with
// whatever was measured, instead of hanging or panicking.
func TestLightEchoBrokenServers(t *testing.T) {
	for _, c := range []struct {
		name  string
		serve func(c net.Conn)
		note  string // in the notes
	}{
		{"closes after the first request", func(c net.Conn) { _, _ = readRequest(c) }, "EOF"},
		{"garbage", func(c net.Conn) {
			_, _ = c.Write([]byte{0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4, 5, 6, 7, 8})
			drain(c)
		}, "frame length"},
		{"a length below the header", func(c net.Conn) {
			_, _ = c.Write([]byte{0, 0, 0, 2, 5, 8, 2, 0})
			drain(c)
		}, "frame length 2"},
		{"ERROR", func(c net.Conn) {
			b := binary.BigEndian.AppendUint32(nil, protocol.MinLength+4)
			b = append(b, byte(protocol.FrameError), 0, 0)
			b = binary.BigEndian.AppendUint16(b, uint16(protocol.CodeProtocolError))
			_, _ = c.Write(append(b, 0, 0))
			drain(c)
		}, "PROTOCOL_ERROR"},
		{"a response of another length", answerFirst(func(f []byte) []byte {
			f = f[:len(f)-1]
			binary.BigEndian.PutUint32(f, uint32(len(f)-4))
			f[5] = byte(protocol.FlagResponse)
			return f
		}), "another length"},
		{"a request instead of a response", answerFirst(func(f []byte) []byte { return f }), "plain response"},
		{"a response on another lane", answerFirst(func(f []byte) []byte {
			f[5], f[6] = byte(protocol.FlagResponse), byte(protocol.LaneBulk)
			return f
		}), "lane 3"},
		{"every request answered twice", answerEach(func(f []byte) []byte {
			f[5] = byte(protocol.FlagResponse)
			return append(f, f...)
		}), "more requests"},
		{"a PUBLISH", func(c net.Conn) {
			b := binary.BigEndian.AppendUint32(nil, protocol.MinLength+8)
			b = append(b, byte(protocol.FramePublish), 0, 2)
			_, _ = c.Write(append(b, make([]byte, 8)...))
			drain(c)
		}, "PUBLISH frame"},
	} {
		t.Run(c.name, func(t *testing.T) {
			addr := startFake(t, c.serve)
			start := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			r, err := Run(ctx, Config{Scenario: "echo", Light: true, Addr: addr, Conns: 3, Inflight: 1,
				Duration: 20 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("took %v: the run did not end with its last connection", took)
			}
			if r.Errors != 3 || r.Msgs != 0 {
				t.Errorf("%d errors, %d msgs; want 3 errors, one per connection, and no message", r.Errors, r.Msgs)
			}
			notes := strings.Join(r.Notes, "\n")
			if !strings.Contains(notes, c.note) || !strings.Contains(notes, "every connection ended") {
				t.Errorf("notes %q, want %q", r.Notes, c.note)
			}
		})
	}
}

// A server that refuses every request with a RESULT: each refusal counts
// an error, and the connections go on (SPEC §7.6: "A RESULT never closes
// the connection").
func TestLightEchoRefused(t *testing.T) {
	addr := startFake(t, answerEach(func(f []byte) []byte {
		b := binary.BigEndian.AppendUint32(nil, protocol.MinLength+8)
		b = append(b, byte(protocol.FrameResult), 0, f[6])
		b = append(b, f[protocol.HeaderSize+4:protocol.HeaderSize+8]...) // the request's Corr
		b = binary.BigEndian.AppendUint16(b, uint16(protocol.CodeNoSuchRoute))
		return append(b, 0, 0)
	}))
	r, err := Run(context.Background(), Config{Scenario: "echo", Light: true, Addr: addr, Conns: 2, Inflight: 4,
		Duration: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if r.Msgs != 0 || r.Errors < 8 {
		t.Errorf("%d msgs, %d errors: want none answered and every refusal counted", r.Msgs, r.Errors)
	}
	if notes := strings.Join(r.Notes, "\n"); !strings.Contains(notes, "RESULT NO_SUCH_ROUTE") || strings.Contains(notes, "every connection ended") {
		t.Errorf("notes %q", r.Notes)
	}
}

// A server PING is answered with its PONG (SPEC §7.1: "A side MUST answer
// every PING with one PONG carrying the same Opaque"), in the stream of
// requests, which go on.
func TestLightEchoAnswersPing(t *testing.T) {
	pong := make(chan []byte, 1)
	addr := startFake(t, func(c net.Conn) {
		_, _ = c.Write(appendPing(nil, protocol.FramePing, 0xfeed))
		for {
			f, err := readFrame(c)
			if err != nil {
				return
			}
			switch protocol.FrameType(f[4]) {
			case protocol.FramePong:
				select {
				case pong <- f:
				default:
				}
			case protocol.FrameData:
				f[5] = byte(protocol.FlagResponse)
				if _, err := c.Write(f); err != nil {
					return
				}
			}
		}
	})
	r, err := Run(context.Background(), Config{Scenario: "echo", Light: true, Addr: addr, Conns: 1, Inflight: 2,
		Duration: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if r.Msgs == 0 || r.Errors != 0 {
		t.Errorf("%d msgs, %d errors (notes %q)", r.Msgs, r.Errors, r.Notes)
	}
	select {
	case f := <-pong:
		if want := appendPing(nil, protocol.FramePong, 0xfeed); string(f) != string(want) {
			t.Errorf("PONG %x, want %x", f, want)
		}
	default:
		t.Error("no PONG")
	}
}

// A server that does not answer HELLO with WELCOME fails the connect
// phase: Run returns the error.
func TestLightEchoNoWelcome(t *testing.T) {
	addr := startListener(t, func(c net.Conn) {
		// Read the HELLO first: a close with unread data would reset the
		// connection, and the client might never see the answer.
		_, _ = io.ReadFull(c, make([]byte, 4+protocol.MinLength+helloBodySize))
		_, _ = c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
	})
	_, err := Run(context.Background(), Config{Scenario: "echo", Light: true, Addr: addr, Conns: 2,
		Duration: 20 * time.Second, ConnectTimeout: 5 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "handshake frame length") {
		t.Fatalf("error %v, want the handshake's", err)
	}
}

// A server whose max frame size is below the request's frame refuses to
// start: a light connection does not fragment.
func TestLightEchoFrameTooLarge(t *testing.T) {
	addr := startFakeWelcome(t, 4096, func(c net.Conn) { drain(c) })
	_, err := Run(context.Background(), Config{Scenario: "echo", Light: true, Addr: addr, Conns: 1, Size: 5000,
		Duration: 20 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "max frame size, 4096") {
		t.Fatalf("error %v", err)
	}
}

// SPEC §6.1: a request is DATA, no flags, lane 1 to 3, Route then Corr ≠ 0,
// then the payload.
func TestAppendEchoRequest(t *testing.T) {
	b := appendEchoRequest(nil, protocol.LaneBulk, []byte("abcdefgh!"))
	be := binary.BigEndian
	if len(b) != protocol.HeaderSize+8+9 || be.Uint32(b) != uint32(len(b)-4) {
		t.Fatalf("frame %x", b)
	}
	if protocol.FrameType(b[4]) != protocol.FrameData || b[5] != 0 || b[6] != byte(protocol.LaneBulk) ||
		be.Uint32(b[7:]) != RouteEcho || be.Uint32(b[echoCorrAt:]) == 0 || string(b[echoStampAt:]) != "abcdefgh!" {
		t.Errorf("frame %x", b)
	}
}

// SPEC §5.4.1: 0 is 65,536; 1 to 4,095 are 4,096; above 16,777,216 none.
func TestMaxFrameSize(t *testing.T) {
	for _, c := range []struct {
		v  uint32
		n  int
		ok bool
	}{{0, 65536, true}, {1, 4096, true}, {4095, 4096, true}, {4096, 4096, true}, {100000, 100000, true},
		{16 << 20, 16 << 20, true}, {16<<20 + 1, 0, false}} {
		if n, ok := maxFrameSize(c.v); n != c.n || ok != c.ok {
			t.Errorf("maxFrameSize(%d) = %d, %v; want %d, %v", c.v, n, ok, c.n, c.ok)
		}
	}
}

// startFake runs a FERRY/1 server of the test's making on a free loopback
// port: it answers HELLO with WELCOME, then hands the connection to serve
// and closes it when serve returns. Everything stops when the test ends.
func startFake(t *testing.T, serve func(c net.Conn)) string {
	return startFakeWelcome(t, protocol.DefaultMaxFrameSize, serve)
}

func startFakeWelcome(t *testing.T, maxFrame uint32, serve func(c net.Conn)) string {
	t.Helper()
	return startListener(t, func(c net.Conn) {
		if f, err := readFrame(c); err != nil || protocol.FrameType(f[4]) != protocol.FrameHello {
			return
		}
		if _, err := c.Write(testWelcome(maxFrame)); err != nil {
			return
		}
		serve(c)
	})
}

// startListener accepts connections on a free loopback port and runs
// handle on each, closing it when handle returns. Everything stops when
// the test ends.
func startListener(t *testing.T, handle func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(30 * time.Second))
				handle(c)
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// testWelcome is a WELCOME (SPEC §5.3) with maxFrame, K = 30 s and every
// variable-length field empty.
func testWelcome(maxFrame uint32) []byte {
	const body = 48 + 2 + 2 + 2 // fixed part, ClientIDLen, SessionIDLen, ResumeTokenLen
	w := binary.BigEndian.AppendUint32(nil, protocol.MinLength+body)
	w = append(w, byte(protocol.FrameWelcome), 0, 0, protocol.Version, 0, 0, 0)
	w = binary.BigEndian.AppendUint32(w, maxFrame)
	w = binary.BigEndian.AppendUint32(w, 0)
	w = binary.BigEndian.AppendUint32(w, 30_000)
	return append(w, make([]byte, body-16)...)
}

// readFrame reads one whole frame.
func readFrame(c net.Conn) ([]byte, error) {
	f := make([]byte, 4)
	if _, err := io.ReadFull(c, f); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(f)
	if n < protocol.MinLength || n > protocol.DefaultMaxFrameSize {
		return nil, io.ErrUnexpectedEOF
	}
	f = append(f, make([]byte, n)...)
	_, err := io.ReadFull(c, f[4:])
	return f, err
}

// readRequest reads frames until a DATA frame, which it returns: the
// client's PING after WELCOME comes first.
func readRequest(c net.Conn) ([]byte, error) {
	for {
		f, err := readFrame(c)
		if err != nil || protocol.FrameType(f[4]) == protocol.FrameData {
			return f, err
		}
	}
}

// answerFirst returns a server that writes rewrite(request) for the first
// request and nothing more.
func answerFirst(rewrite func(f []byte) []byte) func(c net.Conn) {
	return func(c net.Conn) {
		f, err := readRequest(c)
		if err != nil {
			return
		}
		_, _ = c.Write(rewrite(f))
		drain(c)
	}
}

// answerEach returns a server that writes rewrite(request) for every
// request.
func answerEach(rewrite func(f []byte) []byte) func(c net.Conn) {
	return func(c net.Conn) {
		for {
			f, err := readRequest(c)
			if err != nil {
				return
			}
			if _, err := c.Write(rewrite(f)); err != nil {
				return
			}
		}
	}
}

// drain reads until the peer closes.
func drain(c net.Conn) { _, _ = io.Copy(io.Discard, c) }
