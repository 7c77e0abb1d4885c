package loadgen

import (
	"context"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ferry-proto/ferry/reactor/internal/rawecho"
)

// TestMain checks that Run and the echo servers leave no goroutine behind.
// It ignores only the two goroutines of gnet's global worker pool
// (gnet/v2/pkg/pool/goroutine.DefaultWorkerPool, an ants pool built in a
// package-level var when gnet is imported, which lives for the process by
// design); they are not left behind by rawecho's Stop.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/panjf2000/ants/v2.(*poolCommon).purgeStaleWorkers"),
		goleak.IgnoreTopFunction("github.com/panjf2000/ants/v2.(*poolCommon).ticktock"),
	)
}

func startEcho(t testing.TB, cfg rawecho.Config) *rawecho.Server {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	s, err := rawecho.StartConfig(cfg)
	if err != nil {
		t.Fatalf("rawecho: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("rawecho Stop: %v", err)
		}
	})
	return s
}

func rawConfig(addr string, conns, depth, size int) Config {
	return Config{Addr: addr, Conns: conns, Depth: depth, Size: size, Encode: RawEncode, Decode: RawDecode}
}

// testCtx bounds every run: a hung run fails instead of hanging the suite.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestRunRawEcho(t *testing.T) {
	s := startEcho(t, rawecho.Config{Loops: 2})
	for _, tc := range []struct {
		name                      string
		conns, depth, size, total int
	}{
		{"4x16x1KiB", 4, 16, 1024, 20000},
		{"empty payload", 3, 5, 0, 1000},
		{"depth 1", 2, 1, 100, 500},
		{"total not a multiple of depth", 3, 7, 33, 1001},
		{"fewer requests than the pipelines hold", 8, 16, 10, 5},
		{"64KiB", 2, 4, 64 << 10, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Run(testCtx(t), rawConfig(s.Addr(), tc.conns, tc.depth, tc.size), tc.total)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			bytes := int64(tc.total) * int64(RawHeaderLen+tc.size)
			if res.Responses != tc.total || res.BytesSent != bytes || res.BytesReceived != bytes {
				t.Fatalf("got %+v; want %d responses and %d bytes each way", res, tc.total, bytes)
			}
			if res.Elapsed <= 0 || res.MsgsPerSec() <= 0 {
				t.Fatalf("no time measured: %+v", res)
			}
			t.Logf("%d responses in %v: %.0f msgs/s", res.Responses, res.Elapsed, res.MsgsPerSec())
		})
	}
}

func TestRunHandshake(t *testing.T) {
	s := startEcho(t, rawecho.Config{Loops: 1})
	var calls atomic.Int32
	cfg := rawConfig(s.Addr(), 5, 4, 16)
	// A handshake in the raw format: one frame out, its echo back.
	cfg.Handshake = func(c net.Conn) error {
		calls.Add(1)
		hello := RawEncode(nil, 0, []byte("HELLO"))
		if _, err := c.Write(hello); err != nil {
			return err
		}
		_, err := io.ReadFull(c, make([]byte, len(hello)))
		return err
	}
	res, err := Run(testCtx(t), cfg, 100)
	if err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 5 || res.Responses != 100 || res.BytesSent != 100*20 {
		t.Fatalf("handshakes %d, result %+v", calls.Load(), res)
	}

	failed := errors.New("refused")
	cfg.Handshake = func(net.Conn) error { return failed }
	if _, err := Run(testCtx(t), cfg, 100); !errors.Is(err, failed) {
		t.Fatalf("failing handshake: err %v, want %v", err, failed)
	}
}

// TestRunContextEnds checks that a run bounded by time rather than count
// stops when the context ends and reports what it measured until then.
func TestRunContextEnds(t *testing.T) {
	s := startEcho(t, rawecho.Config{Loops: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	res, err := Run(ctx, rawConfig(s.Addr(), 4, 8, 256), 1<<40)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want DeadlineExceeded", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("Run took %v after a 300ms deadline", took)
	}
	if res.Responses == 0 || res.BytesReceived < int64(res.Responses)*(RawHeaderLen+256) {
		t.Fatalf("partial result not reported: %+v", res)
	}
}

// TestRunServerCloses: rawecho closes on a frame over its MaxFrame, and Run
// must report that instead of waiting for the missing responses.
func TestRunServerCloses(t *testing.T) {
	s := startEcho(t, rawecho.Config{Loops: 1, MaxFrame: 100})
	_, err := Run(testCtx(t), rawConfig(s.Addr(), 2, 4, 101), 1000)
	if err == nil {
		t.Fatal("Run succeeded against a server that closes every connection")
	}
	t.Logf("err: %v", err)
}

func TestRunDialFails(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	if _, err := Run(testCtx(t), rawConfig(addr, 2, 1, 1), 10); err == nil {
		t.Fatal("Run succeeded with no server")
	}
}

func TestRunConfig(t *testing.T) {
	good := rawConfig("127.0.0.1:1", 1, 1, 0)
	for name, mod := range map[string]func(*Config, *int){
		"conns":  func(c *Config, _ *int) { c.Conns = 0 },
		"depth":  func(c *Config, _ *int) { c.Depth = 0 },
		"size":   func(c *Config, _ *int) { c.Size = -1 },
		"encode": func(c *Config, _ *int) { c.Encode = nil },
		"decode": func(c *Config, _ *int) { c.Decode = nil },
		"total":  func(_ *Config, n *int) { *n = 0 },
	} {
		cfg, total := good, 1
		mod(&cfg, &total)
		if _, err := Run(context.Background(), cfg, total); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: err %v, want ErrConfig", name, err)
		}
	}
}

// TestRunBadDecoder: a decoder that claims more than it was given, and a
// server that answers what was never asked, both end the run with an error.
func TestRunBadDecoder(t *testing.T) {
	s := startEcho(t, rawecho.Config{Loops: 1})
	cfg := rawConfig(s.Addr(), 1, 2, 8)
	cfg.Decode = func(b []byte) (int, bool, error) { return len(b) + 1, true, nil }
	if _, err := Run(testCtx(t), cfg, 10); !errors.Is(err, ErrBadDecode) {
		t.Fatalf("overlong decode: err %v", err)
	}
	// A decoder that takes each byte for a response sees 12 responses in
	// the echo of one 8-byte request, 11 of them without a request.
	cfg = rawConfig(s.Addr(), 1, 1, 8)
	cfg.Decode = func(b []byte) (int, bool, error) { return 1, len(b) > 0, nil }
	if _, err := Run(testCtx(t), cfg, 1); !errors.Is(err, ErrUnexpectedResponse) {
		t.Fatalf("unsolicited response: err %v", err)
	}
}

func TestBudget(t *testing.T) {
	var b budget
	b.n.Store(10)
	for i, tc := range []struct{ want, got int }{{4, 4}, {4, 4}, {4, 2}, {4, 0}, {1, 0}, {0, 0}} {
		if got := b.take(tc.want); got != tc.got {
			t.Fatalf("take %d: take(%d) = %d, want %d", i, tc.want, got, tc.got)
		}
	}
}
