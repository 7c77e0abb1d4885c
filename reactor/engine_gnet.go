package reactor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"

	"github.com/ferry-proto/ferry/protocol"
)

// gnetEngine runs connections on gnet's event loops (one per core, no
// goroutine per connection). gnet calls OnOpen, OnTraffic and OnClose on
// the connection's loop and OnTick on a goroutine of its own, so OnTick
// only asks each loop to advance its own timing wheel.
type gnetEngine struct {
	gnet.BuiltinEventEngine
	srv *Server

	mu    sync.Mutex
	loops map[gnet.EventLoop]*loop
	eng   gnet.Engine
	ready chan error
	done  chan error
	once  sync.Once
}

type gnetTransport struct{ c gnet.Conn }

func (t gnetTransport) Writev(bs [][]byte) error {
	var err error
	if len(bs) == 1 {
		_, err = t.c.Write(bs[0])
	} else {
		_, err = t.c.Writev(bs)
	}
	return err
}
func (t gnetTransport) Buffered() int { return t.c.OutboundBuffered() }
func (t gnetTransport) Wake()         { _ = t.c.Wake(nil) }
func (t gnetTransport) Close()        { _ = t.c.Close() }

func (e *gnetEngine) start(s *Server) (string, error) {
	e.srv = s
	e.loops = make(map[gnet.EventLoop]*loop)
	e.ready = make(chan error, 1)
	e.done = make(chan error, 1)
	cfg := &s.cfg
	go func() {
		err := gnet.Run(e, "tcp://"+cfg.Addr,
			gnet.WithMulticore(cfg.Loops > 1),
			gnet.WithNumEventLoop(cfg.Loops),
			gnet.WithReusePort(cfg.ReusePort),
			gnet.WithTicker(true),
			gnet.WithTCPNoDelay(gnet.TCPNoDelay),
			gnet.WithLogger(gnetLogger{}),
		)
		select {
		case e.ready <- err: // failed before OnBoot
		default:
		}
		e.done <- err
	}()
	if err := <-e.ready; err != nil {
		return "", err
	}
	fd, err := e.eng.Dup()
	if err != nil {
		return "", err
	}
	defer unix.Close(fd)
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return "", err
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return (&net.TCPAddr{IP: a.Addr[:], Port: a.Port}).String(), nil
	case *unix.SockaddrInet6:
		return (&net.TCPAddr{IP: a.Addr[:], Port: a.Port}).String(), nil
	}
	return "", fmt.Errorf("reactor: unexpected listener address %T", sa)
}

func (e *gnetEngine) stop(ctx context.Context) error {
	var err error
	e.once.Do(func() {
		err = e.eng.Stop(ctx)
		select {
		case runErr := <-e.done:
			if err == nil && runErr != nil && !errors.Is(runErr, context.Canceled) {
				err = runErr
			}
		case <-time.After(10 * time.Second):
			err = errors.New("reactor: gnet did not stop")
		}
	})
	return err
}

func (e *gnetEngine) OnBoot(eng gnet.Engine) gnet.Action {
	e.eng = eng
	e.ready <- nil
	return gnet.None
}

// loopOf returns the state of the event loop a connection belongs to,
// creating it on the loop's first connection.
func (e *gnetEngine) loopOf(c gnet.Conn) *loop {
	el := c.EventLoop()
	e.mu.Lock()
	defer e.mu.Unlock()
	l := e.loops[el]
	if l == nil {
		l = newLoop(e.srv)
		l.execute = func(fn func()) error {
			return el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error { fn(); return nil }))
		}
		e.loops[el] = l
	}
	return l
}

func (e *gnetEngine) OnOpen(gc gnet.Conn) ([]byte, gnet.Action) {
	s := e.srv
	l := e.loopOf(gc)
	c, ok := s.admit(l, gnetTransport{gc})
	if !ok {
		code := protocol.CodeTooManyConnections
		if s.draining.Load() {
			code = protocol.CodeGoingAway
		}
		s.counters.close(code)
		return refusal(code, "connection refused"), gnet.Close
	}
	if s.cfg.NotSentLowat > 0 {
		// Keep the kernel's unsent queue shallow so priorities are
		// decided in our lanes, not behind data already in the socket.
		_ = unix.SetsockoptInt(gc.Fd(), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, s.cfg.NotSentLowat)
	}
	gc.SetContext(c)
	return nil, gnet.None
}

func (e *gnetEngine) OnTraffic(gc gnet.Conn) gnet.Action {
	c, _ := gc.Context().(*Conn)
	if c == nil {
		return gnet.Close
	}
	if c.wakeQueued.Load() || c.closeReq.Load() != 0 || c.pendingGoAway.Load() {
		c.onWake()
	}
	if n := gc.InboundBuffered(); n > 0 && c.state != stateClosed {
		buf, err := gc.Peek(n)
		if err == nil {
			used := c.onData(buf)
			_, _ = gc.Discard(used)
		}
	}
	c.flush()
	return gnet.None
}

func (e *gnetEngine) OnClose(gc gnet.Conn, _ error) gnet.Action {
	if c, _ := gc.Context().(*Conn); c != nil {
		gc.SetContext(nil)
		c.onClosed()
	}
	return gnet.None
}

// OnTick runs on gnet's ticker goroutine: it only asks each loop to run
// its own tick, every millisecond while some connection waits for its
// engine buffer to drain and every wheel tick otherwise.
func (e *gnetEngine) OnTick() (time.Duration, gnet.Action) {
	e.mu.Lock()
	for _, l := range e.loops {
		_ = l.execute(l.tick)
	}
	e.mu.Unlock()
	if e.srv.blockedConns.Load() > 0 {
		return blockedPoll, gnet.None
	}
	return tickInterval, gnet.None
}

// gnetLogger keeps gnet quiet: lifecycle events are ours to log.
type gnetLogger struct{}

func (gnetLogger) Debugf(string, ...any) {}
func (gnetLogger) Infof(string, ...any)  {}
func (gnetLogger) Warnf(string, ...any)  {}
func (gnetLogger) Errorf(string, ...any) {}
func (gnetLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}
