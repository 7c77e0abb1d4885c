package bench

import (
	"context"
	"encoding/binary"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-proto/ferry/protocol"
)

// SPEC §5.2: "The fixed part is 48 bytes; the smallest body is 56 bytes
// (Length 59)".
func TestAppendHello(t *testing.T) {
	b := appendHello(nil, 90*time.Second, true)
	if len(b) != 4+59 {
		t.Fatalf("HELLO of %d bytes, want 63", len(b))
	}
	be := binary.BigEndian
	if n := be.Uint32(b); n != 59 {
		t.Errorf("Length %d, want 59", n)
	}
	body := b[protocol.HeaderSize:]
	for _, c := range []struct {
		name      string
		got, want uint64
	}{
		{"type", uint64(b[4]), uint64(protocol.FrameHello)},
		{"flags", uint64(b[5]), 0},
		{"lane", uint64(b[6]), 0},
		{"version", uint64(body[0]), uint64(protocol.Version)},
		{"caps", uint64(body[1]), uint64(protocol.CapCompression)},
		{"max frame", uint64(be.Uint32(body[4:])), protocol.DefaultMaxFrameSize},
		{"heartbeat ms", uint64(be.Uint32(body[12:])), 90_000},
	} {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	// Everything after the heartbeat is zero: defaults, no session, no id,
	// no token.
	for i, v := range body[16:] {
		if v != 0 {
			t.Fatalf("body byte %d = %d, want 0", 16+i, v)
		}
	}
	if b := appendHello(nil, 0, false); b[protocol.HeaderSize+1] != 0 {
		t.Error("caps set without compression")
	}
}

func TestLightFrames(t *testing.T) {
	ping := appendPing(nil, protocol.FramePing, 0x0102030405060708)
	pong := appendPing(nil, protocol.FramePong, 0x0102030405060708)
	// SPEC §7.1: "A side MUST answer every PING with one PONG carrying the
	// same Opaque".
	rest, out, err := lightFrames(append(append([]byte(nil), pong...), ping...), nil)
	if err != nil || len(rest) != 0 || string(out) != string(pong) {
		t.Fatalf("rest %x, out %x, err %v; want out %x", rest, out, err, pong)
	}
	// A frame split at every byte boundary: the prefix waits, whole.
	for i := range len(ping) {
		rest, out, err := lightFrames(ping[:i], nil)
		if err != nil || len(out) != 0 || len(rest) != i {
			t.Fatalf("prefix %d: rest %d, out %x, err %v", i, len(rest), out, err)
		}
	}
	// ERROR and GOAWAY end the connection with their code.
	errFrame := binary.BigEndian.AppendUint32(nil, protocol.MinLength+4)
	errFrame = append(errFrame, byte(protocol.FrameError), 0, 0)
	errFrame = binary.BigEndian.AppendUint16(errFrame, uint16(protocol.CodeIdleTimeout))
	errFrame = append(errFrame, 0, 0)
	if _, _, err := lightFrames(errFrame, nil); err == nil || !strings.Contains(err.Error(), "IDLE_TIMEOUT") {
		t.Errorf("ERROR: %v", err)
	}
	// SPEC §3.2: a length prefix below 3 or above the max frame size is an
	// error from the prefix alone.
	for _, n := range []uint32{0, 2, protocol.DefaultMaxFrameSize} {
		bad := binary.BigEndian.AppendUint32(nil, n)
		bad = append(bad, 3, 0, 0)
		if _, _, err := lightFrames(bad, nil); err == nil {
			t.Errorf("length %d accepted", n)
		}
	}
}

// A light connection against a fake server: HELLO read, WELCOME answered,
// then the first PING; a server PING is answered with its PONG at the next
// sweep, and a closed server is noticed.
func TestLightConn(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		hello := make([]byte, 63)
		if _, err := readFull(c, hello); err != nil {
			return
		}
		w := binary.BigEndian.AppendUint32(nil, protocol.MinLength+54)
		w = append(w, byte(protocol.FrameWelcome), 0, 0, protocol.Version, 0, 0, 0)
		w = binary.BigEndian.AppendUint32(w, 65536)
		w = binary.BigEndian.AppendUint32(w, 0)
		w = binary.BigEndian.AppendUint32(w, 400) // K = 400 ms
		w = append(w, make([]byte, 54-16)...)
		w[4+3+50] = 0 // ClientIDLen (checked by real clients, not this one)
		_, _ = c.Write(w)
		_, _ = c.Write(appendPing(nil, protocol.FramePing, 42))
		// The client's first PING, then the PONG for 42.
		buf := make([]byte, 30)
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _ := readFull(c, buf)
		got <- buf[:n]
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	lc, err := dialLight(ctx, &net.Dialer{}, ln.Addr().String(), appendHello(nil, time.Second, false))
	if err != nil {
		t.Fatal(err)
	}
	defer lc.tc.Close()
	if lc.k != 400*time.Millisecond {
		t.Errorf("K = %v", lc.k)
	}
	scratch := make([]byte, 64)
	deadline := time.Now().Add(5 * time.Second)
	var b []byte
	for b == nil && time.Now().Before(deadline) {
		if err := lc.sweep(time.Now(), scratch); err != nil {
			t.Fatal(err)
		}
		select {
		case b = <-got:
		case <-time.After(10 * time.Millisecond):
		}
	}
	want := append(appendPing(nil, protocol.FramePing, 1), appendPing(nil, protocol.FramePong, 42)...)
	if string(b) != string(want) {
		t.Fatalf("server read %x, want %x", b, want)
	}
	// The server has closed: the next sweeps notice.
	for time.Now().Before(deadline) {
		if err := lc.sweep(time.Now(), scratch); err != nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Error("closed connection not noticed")
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := c.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// Connections are spread over the source addresses round robin.
func TestDialersSources(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d := dialers{sources: mustSources(t, "127.0.0.2-3")}
	var slot atomic.Pointer[net.TCPConn]
	for i := range 4 {
		c, err := d.forConn(i, &slot)(context.Background(), ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"127.0.0.2", "127.0.0.3"}[i%2]
		if got := s.RemoteAddr().(*net.TCPAddr).IP.String(); got != want {
			t.Errorf("connection %d from %s, want %s", i, got, want)
		}
		if slot.Load() != c {
			t.Errorf("connection %d not in its slot", i)
		}
		c.Close()
		s.Close()
	}
}

func TestPacer(t *testing.T) {
	r := newRun(Config{Rate: 1000}.WithDefaults())
	ctx := context.Background()
	// Closed loop: at once, with the current time.
	p := r.pacer(0, 1, -1)
	if p.open {
		t.Error("negative rate made an open-loop pacer")
	}
	// Open loop: 1000/s over 4 senders is one send per 4 ms each, sender 1
	// starting 1 ms in. A sender that fell behind gets the intended times
	// of what it missed, at once: its latency counts the delay.
	p = r.pacer(1, 4, 0)
	first, _ := p.wait(ctx)
	time.Sleep(20 * time.Millisecond)
	start := time.Now()
	var prev time.Time = first
	for range 3 {
		at, ok := p.wait(ctx)
		if !ok || at.Sub(prev) != 4*time.Millisecond {
			t.Fatalf("intended %v after the previous, want 4ms", at.Sub(prev))
		}
		prev = at
	}
	if el := time.Since(start); el > 3*time.Millisecond {
		t.Errorf("a late sender waited %v", el)
	}
	// Ahead of schedule, it waits for the intended time.
	p = r.pacer(0, 1, 50)
	_, _ = p.wait(ctx)
	at, _ := p.wait(ctx)
	if early := time.Until(at); early > time.Millisecond {
		t.Errorf("returned %v before the intended time", early)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, ok := p.wait(cctx); ok {
		t.Error("wait went on after its context ended")
	}
}

func TestStamp(t *testing.T) {
	b := make([]byte, 20)
	putStamp(b, 7, 123456789)
	seq, at, ok := readStamp(b)
	if !ok || seq != 7 || at != 123456789 {
		t.Errorf("%d %d %v", seq, at, ok)
	}
	if _, _, ok := readStamp(b[:15]); ok {
		t.Error("short payload read")
	}
}

func TestParseMetrics(t *testing.T) {
	m, err := ParseMetrics(strings.NewReader(`# HELP go_goroutines Number of goroutines.
# TYPE go_goroutines gauge
go_goroutines 19
go_memstats_heap_inuse_bytes 2.064384e+06
ferry_drops_total{reason="closed"} 3328
ferry_queued_bytes{lane="a b"} 5 1700000000000
garbage line
`))
	if err != nil {
		t.Fatal(err)
	}
	want := Metrics{"go_goroutines": 19, "go_memstats_heap_inuse_bytes": 2064384,
		`ferry_drops_total{reason="closed"}`: 3328, `ferry_queued_bytes{lane="a b"}`: 5}
	if len(m) != len(want) {
		t.Errorf("got %v", m)
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
}

// Scrape with gc asks for a collection first, and a server without pprof
// is scraped anyway.
func TestAdminScrape(t *testing.T) {
	var gcs atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("go_memstats_heap_inuse_bytes 100\ngo_memstats_stack_inuse_bytes 20\n"))
	})
	mux.HandleFunc("/debug/pprof/heap", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("gc") == "1" {
			gcs.Add(1)
		}
	})
	ts := httptest.NewServer(mux)
	defer ts.Close()
	a := NewAdmin(ts.URL)
	defer a.Close()
	m, err := a.Scrape(context.Background(), true)
	if err != nil || m.memory() != 120 || gcs.Load() != 2 {
		t.Errorf("memory %v, gcs %d, err %v", m.memory(), gcs.Load(), err)
	}
	if _, err := NewAdmin(strings.TrimPrefix(ts.URL, "http://")).Scrape(context.Background(), false); err != nil {
		t.Errorf("host:port form: %v", err)
	}
	bad := NewAdmin(ts.URL + "/nothing")
	defer bad.Close()
	if _, err := bad.Scrape(context.Background(), true); err == nil {
		t.Error("no error for a missing /metrics")
	}
}
