package chaos

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// echoServer echoes every connection on 127.0.0.1 until the test ends.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Go(func() {
				io.Copy(c, c)
				c.Close()
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

func newProxy(t *testing.T, upstream string, weather []Toxic) *Proxy {
	t.Helper()
	p, err := NewProxy("127.0.0.1:0", upstream, weather)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { must(t, p.Close()) })
	return p
}

func TestLoopbackOnly(t *testing.T) {
	for _, a := range []string{"10.0.0.1:1", "0.0.0.0:0", "localhost:1", ":0", "8.8.8.8:53"} {
		if err := CheckLoopback(a); err == nil {
			t.Errorf("CheckLoopback(%q) = nil", a)
		}
		if _, err := NewProxy(a, "127.0.0.1:1", nil); err == nil {
			t.Errorf("NewProxy(%q) = nil error", a)
		}
		if _, err := NewProxy("127.0.0.1:0", a, nil); err == nil {
			t.Errorf("NewProxy upstream %q = nil error", a)
		}
	}
	for _, a := range []string{"127.0.0.1:0", "127.3.2.1:80", "[::1]:0"} {
		if err := CheckLoopback(a); err != nil {
			t.Errorf("CheckLoopback(%q) = %v", a, err)
		}
	}
	d := NewDialer(1)
	if _, err := d.Dial(context.Background(), 0, "192.0.2.1:80"); !errors.Is(err, ErrNotLoopback) {
		t.Fatalf("Dial non-loopback: %v", err)
	}
}

// echoThrough streams up to max bytes through the proxy to the echo
// server for at most d and checks that they come back whole and in order.
func echoThrough(t *testing.T, dl *Dialer, addr string, d time.Duration, max int) int {
	t.Helper()
	c, err := dl.Dial(context.Background(), 0, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(d + 20*time.Second))
	gen := func(i int) byte { return byte(i*7 + i>>11) }
	sent := make(chan int, 1)
	go func() { // writes for d, then says how much
		buf := make([]byte, 3000)
		n := 0
		defer func() { sent <- n }()
		for end := time.Now().Add(d); time.Now().Before(end) && n < max; {
			k := 1 + (n*13)%len(buf)
			for i := range k {
				buf[i] = gen(n + i)
			}
			if _, err := c.Write(buf[:k]); err != nil {
				t.Errorf("write: %v", err)
				return
			}
			n += k
		}
	}()
	got := make([]byte, 0, 256<<10)
	buf := make([]byte, 64<<10)
	total := -1
	deadline := time.Now().Add(d + 20*time.Second)
	for total < 0 || len(got) < total {
		if total < 0 {
			select {
			case total = <-sent:
				continue
			default:
			}
		}
		// Short reads: the last echoed bytes may arrive before the writer
		// says how many it wrote, and a read waiting for more would wait
		// for nothing (the writer is done) until the deadline.
		rd := time.Now().Add(50 * time.Millisecond)
		if rd.After(deadline) {
			rd = deadline
		}
		_ = c.SetReadDeadline(rd)
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if ne, ok := err.(net.Error); ok && ne.Timeout() && time.Now().Before(deadline) {
			continue
		}
		if err != nil {
			t.Fatalf("read after %d bytes: %v", len(got), err)
		}
	}
	if len(got) != total {
		t.Fatalf("echoed %d bytes of %d", len(got), total)
	}
	for i, b := range got {
		if b != gen(i) {
			t.Fatalf("echo differs from byte %d of %d", i, total)
		}
	}
	return total
}

// The weather toxics slice, delay and throttle the byte stream but never
// change it, and every restart brings the next weather.
func TestWeatherKeepsTheStream(t *testing.T) {
	p := newProxy(t, echoServer(t), nil)
	dl := NewDialer(1)
	s := NewSchedule(1)
	total := 0
	for range 10 {
		e := s.Next()
		if err := p.Restart(e.Weather, 0); err != nil {
			t.Fatal(err)
		}
		if len(p.Active()) != len(e.Weather) {
			t.Fatalf("active %v, want %v", p.Active(), e.Weather)
		}
		total += echoThrough(t, dl, p.Addr(), 100*time.Millisecond, 32<<10)
	}
	if total < 1<<17 {
		t.Fatalf("only %d bytes went through", total)
	}
	if p.Restarts() != 10 {
		t.Fatalf("Restarts = %d", p.Restarts())
	}
}

// readDead reads from c until it fails and says how long that took.
func readDead(t *testing.T, c net.Conn, within time.Duration) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(within))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still alive after %v", within)
	}
}

func TestKills(t *testing.T) {
	for _, tc := range []struct {
		name  string
		toxic Toxic
	}{
		{"reset", Toxic{Name: "r", Type: "reset_peer", Stream: "downstream", Attrs: map[string]int64{"timeout": 0}}},
		{"reset-later", Toxic{Name: "r", Type: "reset_peer", Stream: "upstream", Attrs: map[string]int64{"timeout": 30}}},
		{"timeout-expires", Toxic{Name: "t", Type: "timeout", Stream: "downstream", Attrs: map[string]int64{"timeout": 40}}},
		{"timeout-restart", Toxic{Name: "t", Type: "timeout", Stream: "upstream", Attrs: map[string]int64{"timeout": 0}}},
		{"down", Toxic{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			weather := []Toxic{{Name: "l", Type: "latency", Stream: "downstream", Attrs: map[string]int64{"latency": 2, "jitter": 1}}}
			p := newProxy(t, echoServer(t), weather)
			d := NewDialer(1)
			c, err := d.Dial(context.Background(), 0, p.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.Write([]byte("before"))
			b := make([]byte, 6)
			if _, err := io.ReadFull(c, b); err != nil {
				t.Fatal(err)
			}
			restarted := make(chan struct{})
			if tc.toxic.Type == "" {
				must(t, p.Restart(nil, 50*time.Millisecond))
				close(restarted)
			} else {
				must(t, p.Add(tc.toxic))
				if len(p.Active()) != 2 {
					t.Fatalf("active %v", p.Active())
				}
				go func() {
					defer close(restarted)
					if tc.name == "timeout-restart" {
						time.Sleep(50 * time.Millisecond) // a restart ends what the toxic holds
						must(t, p.Restart(nil, 0))
					}
				}()
			}
			c.Write([]byte("into the toxic"))
			readDead(t, c, 5*time.Second)
			<-restarted
			if tc.name != "timeout-restart" && tc.name != "down" {
				must(t, p.Restart(nil, 0))
			}
			if len(p.Active()) != 0 {
				t.Fatalf("active after restart %v", p.Active())
			}
			// The proxy works again afterwards, on the same address.
			echoThrough(t, d, p.Addr(), 20*time.Millisecond, 1<<20)
			if got := d.Disconnects(); got != 1 {
				t.Fatalf("Disconnects = %d, want 1", got)
			}
		})
	}
}

// While the proxy is down, dials are refused.
func TestRestartOutage(t *testing.T) {
	p := newProxy(t, echoServer(t), nil)
	done := make(chan error)
	go func() { done <- p.Restart(nil, 300*time.Millisecond) }()
	time.Sleep(100 * time.Millisecond)
	if c, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		c.Close()
		t.Error("dial while down succeeded")
	}
	must(t, <-done)
	echoThrough(t, NewDialer(1), p.Addr(), 10*time.Millisecond, 1<<20)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Error(err)
	}
}

func TestWaitRedial(t *testing.T) {
	d := NewDialer(2)
	addr := echoServer(t)
	before := d.Dials()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	c, err := d.Dial(ctx, 1, addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if late := d.WaitRedial(ctx, before); len(late) != 1 || late[0] != 0 {
		t.Fatalf("late = %v, want [0]", late)
	}
	c, err = d.Dial(context.Background(), 0, addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if late := d.WaitRedial(context.Background(), before); late != nil {
		t.Fatalf("late = %v", late)
	}
}
