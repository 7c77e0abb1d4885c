package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"time"

	"github.com/panjf2000/gnet/v2"
	gerrors "github.com/panjf2000/gnet/v2/pkg/errors"
	"golang.org/x/sys/unix"
)

// rawGnet is FERRY/1's echo written straight on gnet: the floor of what
// gnet costs for this protocol. It does what reactor/internal/rawecho does
// for bare length-prefixed frames, with the handshake and the in-place
// rewrite of wire.go on top: OnTraffic walks every complete frame buffered,
// rewrites the answers in place, packs them to the front of gnet's buffer
// and sends them with one Write. A trailing partial frame stays unread.
//
// Start, Addr and Stop are safe from any goroutine; the handler runs on
// gnet's loops only.
type rawGnet struct {
	eng  gnet.Engine
	lnfd int // a dup of gnet's listener, ours to shut down and close
	addr string
	done chan error // gnet.Run's result

	stopOnce sync.Once
	stopErr  error
}

// maxOutbound caps what gnet may hold for a connection that does not read
// its answers (gnet has no backpressure of its own, FIELD-NOTES).
const maxOutbound = 8 << 20

// startRawGnet starts the server on addr ("127.0.0.1:0" picks a port) with
// loops event loops (≤ 0: GOMAXPROCS, as ferryd's reactor). It returns once
// the listener is bound.
func startRawGnet(addr string, loops int) (*rawGnet, error) {
	if loops <= 0 {
		loops = runtime.GOMAXPROCS(0)
	}
	h := &gnetHandler{booted: make(chan gnet.Engine, 1), duped: make(chan struct{})}
	s := &rawGnet{done: make(chan error, 1), lnfd: -1}
	go func() {
		s.done <- gnet.Run(h, "tcp://"+addr,
			gnet.WithMulticore(loops > 1),
			gnet.WithNumEventLoop(loops),
			gnet.WithTCPNoDelay(gnet.TCPNoDelay),
			gnet.WithLogger(nopLogger{}))
	}()
	select {
	case s.eng = <-h.booted:
	case err := <-s.done:
		if err == nil {
			err = errors.New("ferry-peers: gnet exited before booting")
		}
		return nil, err
	}
	fd, err := s.eng.Dup()
	close(h.duped)
	if err != nil {
		_ = s.Stop()
		return nil, fmt.Errorf("ferry-peers: dup listener: %w", err)
	}
	s.lnfd = fd
	sa, err := unix.Getsockname(fd)
	if err != nil {
		_ = s.Stop()
		return nil, fmt.Errorf("ferry-peers: getsockname: %w", err)
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		s.addr = (&net.TCPAddr{IP: a.Addr[:], Port: a.Port}).String()
	case *unix.SockaddrInet6:
		s.addr = (&net.TCPAddr{IP: a.Addr[:], Port: a.Port}).String()
	default:
		_ = s.Stop()
		return nil, fmt.Errorf("ferry-peers: unexpected listener address %T", sa)
	}
	return s, nil
}

// Addr is the listening address with the real port.
func (s *rawGnet) Addr() string { return s.addr }

// Stop closes the listener and every connection and waits for gnet to
// exit. As rawecho's Stop, it shuts the listening socket down rather than
// starting with Engine.Stop, which loses connections accepted just before
// it and takes 0.5 s or more; Engine.Stop is the fallback.
func (s *rawGnet) Stop() error {
	s.stopOnce.Do(func() { s.stopErr = s.stop() })
	return s.stopErr
}

func (s *rawGnet) stop() error {
	if s.lnfd >= 0 {
		defer unix.Close(s.lnfd)
	}
	select {
	case err := <-s.done:
		return err
	default:
	}
	if s.lnfd >= 0 && unix.Shutdown(s.lnfd, unix.SHUT_RD) == nil {
		select {
		case err := <-s.done:
			return err
		case <-time.After(5 * time.Second):
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := s.eng.Stop(ctx)
	if errors.Is(err, gerrors.ErrEngineInShutdown) {
		err = nil
	}
	select {
	case runErr := <-s.done:
		if err == nil {
			err = runErr
		}
	case <-ctx.Done():
		err = errors.New("ferry-peers: gnet did not stop in time")
	}
	return err
}

// gnetHandler is rawGnet's event handler. A connection's context is nil
// until WELCOME was sent, welcomed{} after.
type gnetHandler struct {
	gnet.BuiltinEventEngine
	booted chan gnet.Engine
	duped  chan struct{} // closed once startRawGnet has dup'ed the listener
}

type welcomed struct{}

func (h *gnetHandler) OnBoot(eng gnet.Engine) gnet.Action {
	h.booted <- eng
	return gnet.None
}

// OnShutdown orders startRawGnet's Dup (a read of gnet's listener fd)
// before gnet closes the listener, for the race detector: Stop's shutdown
// through the kernel is an edge it cannot see.
func (h *gnetHandler) OnShutdown(gnet.Engine) { <-h.duped }

// OnTraffic answers every complete frame buffered for c. Runs on c's loop.
func (h *gnetHandler) OnTraffic(c gnet.Conn) gnet.Action {
	// Peek(0) returns all that is buffered: gnet's loop buffer or a pooled
	// copy, ours to rewrite until Discard or the end of the callback.
	in, err := c.Peek(0)
	if err != nil {
		return gnet.Close
	}
	hello := c.Context() == nil
	off, out := 0, 0 // in[:out] holds the answers packed so far
	for {
		n, err := frameLen(in[off:])
		if err != nil {
			return gnet.Close
		}
		if n == 0 {
			break
		}
		f := in[off : off+n]
		switch answer(f, !hello) {
		case sendBack:
			if out != off {
				copy(in[out:], f)
			}
			out += n
		case sendWelcome:
			// Nothing is packed yet: only a HELLO comes before WELCOME.
			if _, err := c.Write(welcomeFrame); err != nil {
				return gnet.Close
			}
			c.SetContext(welcomed{})
			hello = false
		case hangUp:
			return gnet.Close
		}
		off += n
	}
	if out > 0 {
		if c.OutboundBuffered()+out > maxOutbound {
			return gnet.Close // the peer is not reading its answers
		}
		// Write before Discard: the slice may be a pooled copy that
		// Discard gives back. Write copies what the kernel does not take.
		if _, err := c.Write(in[:out]); err != nil {
			return gnet.Close
		}
	}
	if off > 0 {
		_, _ = c.Discard(off)
	}
	return gnet.None
}

// nopLogger silences gnet (process-wide: gnet keeps one default logger).
type nopLogger struct{}

func (nopLogger) Debugf(string, ...any) {}
func (nopLogger) Infof(string, ...any)  {}
func (nopLogger) Warnf(string, ...any)  {}
func (nopLogger) Errorf(string, ...any) {}
func (nopLogger) Fatalf(string, ...any) {}
