package main

import (
	"bufio"
	"errors"
	"net"
	"sync"
)

// bufSize is the read and write buffer of each connection of netServer:
// 64 KiB, the size FIELD-NOTES measured on par with gnet (4 KiB buffers
// gave a third of the throughput). It also holds the largest frame the
// peers accept, so a whole frame can always be peeked.
const bufSize = 64 << 10

// netServer is the same protocol as rawGnet on the standard library: one
// goroutine per connection, a bufio.Reader and a bufio.Writer of 64 KiB
// each, answers flushed when no further complete frame is buffered (so a
// pipelined batch of requests is answered with one write).
//
// Start, Addr and Stop are safe from any goroutine.
type netServer struct {
	ln net.Listener
	wg sync.WaitGroup

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

// startNet listens on addr ("127.0.0.1:0" picks a port) and serves in the
// background.
func startNet(addr string) (*netServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &netServer{ln: ln, conns: make(map[net.Conn]struct{})}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Addr is the listening address with the real port.
func (s *netServer) Addr() string { return s.ln.Addr().String() }

// Stop closes the listener and every connection and waits for their
// goroutines. Later calls do nothing.
func (s *netServer) Stop() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	err := s.ln.Close()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

func (s *netServer) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue // EMFILE and the like are not timeouts: they end the server
			}
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			serveConn(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// serveConn answers c's frames until it ends or breaks a rule of wire.go.
func serveConn(c net.Conn) {
	defer c.Close()
	r := bufio.NewReaderSize(c, bufSize)
	w := bufio.NewWriterSize(c, bufSize)
	welcomed := false
	for {
		// The length first, then the whole frame: both peeks stay within
		// the buffer, since maxFrame ≤ bufSize.
		b, err := r.Peek(4)
		if err != nil {
			return
		}
		n, err := frameSize(b)
		if err != nil {
			return
		}
		f, err := r.Peek(n)
		if err != nil {
			return
		}
		switch answer(f, welcomed) {
		case sendBack:
			_, err = w.Write(f)
		case sendWelcome:
			_, err = w.Write(welcomeFrame)
			welcomed = true
		case hangUp:
			return
		}
		if err != nil {
			return
		}
		_, _ = r.Discard(n)
		// Flush once nothing more can be answered without reading: the
		// answers to a pipelined batch leave in one write.
		if b, _ := r.Peek(r.Buffered()); !complete(b) {
			if err := w.Flush(); err != nil {
				return
			}
		}
	}
}

// complete reports whether b starts with a whole frame (or a bad length,
// which the next round closes on).
func complete(b []byte) bool {
	n, err := frameLen(b)
	return n > 0 || err != nil
}
