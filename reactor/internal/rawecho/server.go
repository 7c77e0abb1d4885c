package rawecho

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/panjf2000/gnet/v2"
	gerrors "github.com/panjf2000/gnet/v2/pkg/errors"
	"golang.org/x/sys/unix"
)

// HeaderLen is the size of the length prefix in front of every frame.
const HeaderLen = 4

// Defaults used when a Config field is zero.
const (
	DefaultMaxFrame    = 64 << 10 // payload bytes
	DefaultMaxOutbound = 8 << 20  // bytes queued in gnet past the kernel
)

// stopTimeout bounds Stop: gnet's Engine.Stop waits for every loop to exit.
const stopTimeout = 30 * time.Second

// Errors returned by Start and Stop.
var (
	ErrNotBooted   = errors.New("rawecho: gnet exited before booting")
	ErrStopTimeout = errors.New("rawecho: gnet did not stop in time")
)

// Config configures a server. Zero fields take the defaults.
type Config struct {
	// Addr is host:port; port 0 picks a free port (see Server.Addr).
	Addr string
	// Loops is the number of gnet event loops; ≤ 0 means one per CPU.
	Loops int
	// MaxFrame is the largest payload length accepted; a longer length
	// closes the connection. Default DefaultMaxFrame.
	MaxFrame int
	// MaxOutbound caps what gnet may hold for a connection that does not
	// read its echoes; past it the connection is closed. Default
	// DefaultMaxOutbound.
	MaxOutbound int
}

// Server is a running echo server.
type Server struct {
	eng  gnet.Engine
	lnfd int // a dup of gnet's listener, ours to shut down and close
	addr string
	done chan error // gnet.Run's result, sent once

	stopOnce sync.Once
	stopErr  error
}

// Start starts a server on addr with the given number of event loops and
// the default limits. It returns once the listener is bound.
func Start(addr string, loops int) (*Server, error) {
	return StartConfig(Config{Addr: addr, Loops: loops})
}

// StartConfig starts a server as configured. It returns once the listener
// is bound and accepting into its backlog; the loops may still be starting.
func StartConfig(cfg Config) (*Server, error) {
	if cfg.MaxFrame <= 0 {
		cfg.MaxFrame = DefaultMaxFrame
	}
	if cfg.MaxOutbound <= 0 {
		cfg.MaxOutbound = DefaultMaxOutbound
	}
	h := &handler{
		maxFrame:    uint32(min(cfg.MaxFrame, 1<<31)),
		maxOutbound: cfg.MaxOutbound,
		booted:      make(chan gnet.Engine, 1),
		duped:       make(chan struct{}),
	}
	s := &Server{done: make(chan error, 1)}
	opts := []gnet.Option{
		gnet.WithMulticore(true),
		gnet.WithNumEventLoop(cfg.Loops),
		gnet.WithTCPNoDelay(gnet.TCPNoDelay),
		gnet.WithLogger(nopLogger{}),
	}
	go func() { s.done <- gnet.Run(h, "tcp://"+cfg.Addr, opts...) }()

	// gnet calls OnBoot after binding the listener and before starting the
	// loops; Run returns early only if something failed before that.
	select {
	case s.eng = <-h.booted:
	case err := <-s.done:
		if err == nil {
			err = ErrNotBooted
		}
		return nil, err
	}
	fd, err := s.eng.Dup()
	close(h.duped) // see handler.OnShutdown
	if err != nil {
		s.lnfd = -1
		_ = s.Stop()
		return nil, fmt.Errorf("rawecho: dup listener: %w", err)
	}
	s.lnfd = fd
	if s.addr, err = listenerAddr(fd); err != nil {
		_ = s.Stop()
		return nil, err
	}
	return s, nil
}

// listenerAddr reports the address the listener fd is bound to, with the
// real port when the configured one was 0: gnet keeps only the address it
// was given.
func listenerAddr(fd int) (string, error) {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return "", fmt.Errorf("rawecho: getsockname: %w", err)
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return (&net.TCPAddr{IP: a.Addr[:], Port: a.Port}).String(), nil
	case *unix.SockaddrInet6:
		return (&net.TCPAddr{IP: a.Addr[:], Port: a.Port}).String(), nil
	}
	return "", fmt.Errorf("rawecho: unexpected listener address %T", sa)
}

// Addr returns the listening address as host:port, with the real port.
// Safe from any goroutine.
func (s *Server) Addr() string { return s.addr }

// Stop closes the listener and every connection and waits for gnet's
// goroutines to exit. Safe from any goroutine; later calls return the first
// call's result.
//
// It does not start with gnet's Engine.Stop, which loses connections. gnet's
// main reactor accepts a connection and hands it to a loop as a task queued
// on that loop, and Engine.Stop queues the loops' exit tasks without waiting
// for the main reactor: a connection accepted just before is queued behind
// a loop's exit, never registered and never closed, its descriptor leaked
// and its peer left hanging. Here that was 2 in 3 connections dialled just
// before Stop, and still 1 in 48 with the listener shut in OnShutdown (the
// main reactor may have accepted and not yet queued). Instead, Stop shuts
// the listening socket down (shutdown(2) on a dup acts on the socket): the
// kernel resets the connections still in the backlog, the main reactor's
// next accept fails, and gnet shuts the engine down from the main reactor's
// own exit, after its last hand-off is queued. The loops register what they
// were handed and close it with the rest. This takes milliseconds.
// Engine.Stop, which takes at least 0.5 s, is the fallback should the engine
// not stop that way.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() { s.stopErr = s.stop() })
	return s.stopErr
}

// selfStopWait is how long Stop waits for gnet to shut itself down after
// the listener is shut before falling back to Engine.Stop.
const selfStopWait = 5 * time.Second

func (s *Server) stop() error {
	if s.lnfd >= 0 {
		// Closed last: until then the dup holds the (shut) socket and port.
		defer unix.Close(s.lnfd)
	}
	select {
	case err := <-s.done: // gnet failed after OnBoot and is gone already
		return err
	default:
	}
	if s.lnfd >= 0 && unix.Shutdown(s.lnfd, unix.SHUT_RD) == nil {
		t := time.NewTimer(selfStopWait)
		defer t.Stop()
		select {
		case err := <-s.done:
			return err
		case <-t.C:
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	err := s.eng.Stop(ctx)
	if errors.Is(err, gerrors.ErrEngineInShutdown) {
		err = nil // it stopped by itself meanwhile
	}
	select {
	case runErr := <-s.done:
		if err == nil {
			err = runErr
		}
	case <-ctx.Done():
		err = ErrStopTimeout
	}
	return err
}

// handler is the gnet event handler. Its methods run on gnet's goroutines:
// OnBoot on Run's, OnTraffic on the connection's event loop.
type handler struct {
	gnet.BuiltinEventEngine
	maxFrame    uint32
	maxOutbound int
	booted      chan gnet.Engine
	duped       chan struct{} // closed by Start once it has dup'ed the listener
}

func (h *handler) OnBoot(eng gnet.Engine) gnet.Action {
	h.booted <- eng
	return gnet.None
}

// OnShutdown orders Start's read of the listener (Engine.Dup reads gnet's
// listener fd field) before gnet's close of it, which writes that field.
// Stop shuts the engine down through the kernel (a shutdown(2) that fails
// the main reactor's accept), which the race detector cannot see; this
// channel is the happens-before edge it can.
func (h *handler) OnShutdown(gnet.Engine) { <-h.duped }

// OnTraffic echoes every complete frame buffered for c with one Write and
// leaves a trailing partial frame in gnet's inbound buffer.
func (h *handler) OnTraffic(c gnet.Conn) gnet.Action {
	// Peek(0) returns everything buffered. The slice is gnet's loop buffer
	// (or a pooled copy when earlier bytes were held back) and dies at
	// Discard or when this callback returns.
	in, err := c.Peek(0)
	if err != nil {
		return gnet.Close
	}
	off := 0
	for len(in)-off >= HeaderLen {
		n := binary.BigEndian.Uint32(in[off:])
		if n > h.maxFrame {
			return gnet.Close // checked before the frame is buffered
		}
		end := off + HeaderLen + int(n)
		if end > len(in) {
			break
		}
		off = end
	}
	if off == 0 {
		return gnet.None // not one complete frame yet: keep it all
	}
	if c.OutboundBuffered()+off > h.maxOutbound {
		return gnet.Close // the peer is not reading its echoes
	}
	// The complete frames are a contiguous prefix of the input, so their
	// coalesced echo is that prefix as it stands. Write before Discard: the
	// slice may be a pooled copy that Discard returns to the pool. Write
	// copies into the outbound buffer whatever the kernel does not take.
	if _, err := c.Write(in[:off]); err != nil {
		// gnet closed the connection inside Write; returning Close on a
		// closed connection is a no-op in gnet.
		return gnet.Close
	}
	_, _ = c.Discard(off)
	return gnet.None
}

// nopLogger silences gnet (gnet.WithLogger installs it as gnet's
// process-wide default logger).
type nopLogger struct{}

func (nopLogger) Debugf(string, ...any) {}
func (nopLogger) Infof(string, ...any)  {}
func (nopLogger) Warnf(string, ...any)  {}
func (nopLogger) Errorf(string, ...any) {}
func (nopLogger) Fatalf(string, ...any) {}
