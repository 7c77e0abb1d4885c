package rawecho

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleakOptions()...)
}

// goleakOptions ignores only the two goroutines of gnet's global worker
// pool (gnet/v2/pkg/pool/goroutine.DefaultWorkerPool, an ants pool built in
// a package-level var when gnet is imported). They start at init, before
// any server, and live for the whole process by design: they are not left
// behind by Stop. Anything a server starts must be gone after Stop.
func goleakOptions() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreTopFunction("github.com/panjf2000/ants/v2.(*poolCommon).purgeStaleWorkers"),
		goleak.IgnoreTopFunction("github.com/panjf2000/ants/v2.(*poolCommon).ticktock"),
	}
}

// frame returns a frame carrying n payload bytes of a pattern seeded by n.
func frame(n int) []byte {
	b := make([]byte, HeaderLen+n)
	binary.BigEndian.PutUint32(b, uint32(n))
	for i := range n {
		b[HeaderLen+i] = byte(i*7 + n)
	}
	return b
}

func startServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	s, err := StartConfig(cfg)
	if err != nil {
		t.Fatalf("StartConfig: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return s
}

func dial(t *testing.T, s *Server) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", s.Addr(), 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", s.Addr(), err)
	}
	t.Cleanup(func() { _ = c.Close() })
	// Every read and write below is bounded: a hung server fails the test.
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	return c.(*net.TCPConn)
}

// readAll reads exactly n bytes from c on another goroutine, so that the
// writer never waits on a reader that has not started.
func readAll(c net.Conn, n int) <-chan []byte {
	ch := make(chan []byte, 1)
	go func() {
		b := make([]byte, n)
		k, _ := io.ReadFull(c, b)
		ch <- b[:k]
	}()
	return ch
}

func TestAddrHasRealPort(t *testing.T) {
	s := startServer(t, Config{Loops: 1})
	host, port, err := net.SplitHostPort(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := strconv.Atoi(port); host != "127.0.0.1" || p == 0 {
		t.Fatalf("Addr() = %q, want 127.0.0.1 with a non-zero port", s.Addr())
	}
}

func TestStartBadAddr(t *testing.T) {
	s, err := Start("127.0.0.1:notaport", 1)
	if err == nil {
		_ = s.Stop()
		t.Fatal("Start on a bad address succeeded")
	}
}

// TestEchoSplit sends frames of several sizes, the whole stream cut into
// writes of a fixed size with a pause after each, so that frames and headers
// arrive split across OnTraffic calls, and expects the same bytes back.
func TestEchoSplit(t *testing.T) {
	var small, full []byte
	for _, n := range []int{0, 1, 3, 4, 5, 100, 1023, 1024, 4096, 2} {
		small = append(small, frame(n)...)
	}
	full = append(full, small...)
	for _, n := range []int{65535, DefaultMaxFrame, 7} {
		full = append(full, frame(n)...)
	}
	s := startServer(t, Config{Loops: 2})
	for _, chunk := range []int{1, 3, 7, 1000, 16 << 10, len(full)} {
		stream := full
		if chunk < 1000 {
			stream = small // 137 KB in 1-byte writes is too slow under -race
		}
		t.Run(strconv.Itoa(chunk), func(t *testing.T) {
			c := dial(t, s)
			got := readAll(c, len(stream))
			writes := 0
			for off := 0; off < len(stream); off += chunk {
				if _, err := c.Write(stream[off:min(off+chunk, len(stream))]); err != nil {
					t.Fatalf("write: %v", err)
				}
				// A pause now and then lets the server see the pieces
				// apart; pausing after every 1-byte write would take
				// minutes.
				if writes++; writes%64 == 0 || chunk >= 1000 {
					time.Sleep(100 * time.Microsecond)
				}
			}
			if b := <-got; !bytes.Equal(b, stream) {
				t.Fatalf("echo differs: got %d bytes, want %d", len(b), len(stream))
			}
		})
	}
}

// TestEchoManyConns runs connections in parallel across the loops, each
// pipelining frames, and checks every echo.
func TestEchoManyConns(t *testing.T) {
	s := startServer(t, Config{Loops: 2})
	const conns, frames = 16, 200
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for i := range conns {
		c := dial(t, s)
		wg.Add(1)
		go func() {
			defer wg.Done()
			var stream []byte
			for j := range frames {
				stream = append(stream, frame((i*frames+j)%3000)...)
			}
			got := readAll(c, len(stream))
			if _, err := c.Write(stream); err != nil {
				errs <- err
				return
			}
			if b := <-got; !bytes.Equal(b, stream) {
				errs <- errors.New("echo differs")
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// expectClosed reads until the server closes or resets c, ignoring what it
// echoes; only a timeout fails.
func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("server did not close the connection")
	}
}

func TestRejectOversize(t *testing.T) {
	const max = 1000
	s := startServer(t, Config{Loops: 1, MaxFrame: max})

	c := dial(t, s)
	ok := frame(max)
	got := readAll(c, len(ok))
	if _, err := c.Write(ok); err != nil {
		t.Fatal(err)
	}
	if b := <-got; !bytes.Equal(b, ok) {
		t.Fatal("frame of exactly MaxFrame not echoed")
	}

	// Only the header of the oversized frame is sent: the server must
	// close on the length alone, without waiting for the payload.
	hdr := binary.BigEndian.AppendUint32(nil, max+1)
	if _, err := c.Write(hdr); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, c)

	c2 := dial(t, s)
	if _, err := c2.Write([]byte{0xff, 0xff, 0xff, 0xff}); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, c2)
}

// TestMaxOutbound checks that a peer that writes but never reads is cut off
// once the server holds more than MaxOutbound for it, instead of growing
// the server's memory without bound.
func TestMaxOutbound(t *testing.T) {
	s := startServer(t, Config{Loops: 1, MaxOutbound: 256 << 10})
	c := dial(t, s)
	// A small receive buffer stops the kernel from absorbing the echoes
	// (autotuning would let it take up to tcp_rmem's max, 32 MiB here).
	if err := c.SetReadBuffer(4 << 10); err != nil {
		t.Fatal(err)
	}
	f := frame(32 << 10)
	var err error
	for i := 0; i < 2048 && err == nil; i++ { // at most 64 MiB
		_, err = c.Write(f)
	}
	if err == nil {
		t.Fatal("64 MiB written to a server whose echoes were never read")
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("write blocked instead of failing: %v", err)
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count open files: %v", err)
	}
	return len(fds)
}

// TestStopClosesEverything dials a connection just before Stop, which is
// when gnet used to lose it (accepted, never registered, never closed: see
// handler.OnShutdown), and checks that the peer sees its connection end and
// that the process holds no more descriptors than before.
func TestStopClosesEverything(t *testing.T) {
	before := openFDs(t)
	for range 6 {
		s, err := Start("127.0.0.1:0", 2)
		if err != nil {
			t.Fatal(err)
		}
		c, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(frame(10)); err != nil {
			t.Fatal(err)
		}
		if err := s.Stop(); err != nil {
			t.Fatalf("Stop: %v", err)
		}
		if err := s.Stop(); err != nil {
			t.Fatalf("second Stop: %v", err)
		}
		expectClosed(t, c) // by a FIN after an echo, or a reset from the backlog
		_ = c.Close()
		if c, err := net.DialTimeout("tcp", s.Addr(), time.Second); err == nil {
			_ = c.Close()
			t.Fatal("listener still accepts after Stop")
		}
	}
	if after := openFDs(t); after != before {
		t.Fatalf("%d descriptors open before, %d after", before, after)
	}
}
