package client

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
)

// cutProxy forwards TCP connections to a target and cuts each one after a
// chosen number of bytes in each direction: the fault injection of the
// tests, so that a connection can end at any byte of any frame. 127.0.0.1
// only.
type cutProxy struct {
	t      testing.TB
	ln     net.Listener
	target string
	// limits returns, for the n-th connection (from 0), how many bytes may
	// go up (client to server) and down before the connection is cut; a
	// negative limit never cuts.
	limits func(n int) (up, down int64)

	mu    sync.Mutex
	n     int
	conns []net.Conn
	cuts  int
	wg    sync.WaitGroup
}

func newCutProxy(t testing.TB, target string, limits func(n int) (up, down int64)) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{t: t, ln: ln, target: target, limits: limits}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *cutProxy) addr() string { return p.ln.Addr().String() }

// dial is a DialFunc that ignores addr and goes through the proxy.
func (p *cutProxy) dial(ctx context.Context, _ string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", p.addr())
}

func (p *cutProxy) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *cutProxy) cutCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cuts
}

func (p *cutProxy) accept() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = in.Close()
			continue
		}
		p.mu.Lock()
		up, down := p.limits(p.n)
		p.n++
		p.conns = append(p.conns, in, out)
		p.mu.Unlock()
		var once sync.Once
		cut := func(byLimit bool) {
			once.Do(func() {
				_ = in.Close()
				_ = out.Close()
				if byLimit {
					p.mu.Lock()
					p.cuts++
					p.mu.Unlock()
				}
			})
		}
		p.wg.Add(2)
		go p.pipe(out, in, up, cut)
		go p.pipe(in, out, down, cut)
	}
}

// pipe copies src to dst; after limit bytes (if ≥ 0) it cuts both.
func (p *cutProxy) pipe(dst, src net.Conn, limit int64, cut func(bool)) {
	defer p.wg.Done()
	if limit < 0 {
		_, _ = io.Copy(dst, src)
		cut(false)
		return
	}
	n, _ := io.Copy(dst, io.LimitReader(src, limit))
	cut(n == limit)
}

// cutFirst is a cut rule: the first connection is cut after up bytes
// upstream and down bytes downstream (-1: never); later ones are not cut.
func cutFirst(up, down int64) func(n int) (int64, int64) {
	return func(n int) (int64, int64) {
		if n == 0 {
			return up, down
		}
		return -1, -1
	}
}
