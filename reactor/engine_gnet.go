package reactor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/panjf2000/gnet/v2"
	gerrors "github.com/panjf2000/gnet/v2/pkg/errors"
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
	// lnfd is a dup of the listening socket, taken at start; duped is
	// closed once it is (see OnShutdown).
	lnfd  int
	duped chan struct{}
	// kick wakes OnTick from its idle wait when a loop gets its first
	// connection (cap 1); idle is that wait's timer (ticker goroutine),
	// idleWait its length (0: idleTick; tests set it).
	kick     chan struct{}
	idle     *time.Timer
	idleWait time.Duration
	quit     chan struct{} // closed by stop: the idle wait ends
}

// gnetTransport writes straight to the socket (see writer_linux.go) and
// leaves reading, waking and closing to gnet.
type gnetTransport struct {
	c    gnet.Conn
	conn *Conn
	d    *directWriter // nil until a write first comes up short
}

func (t *gnetTransport) Writev(bs [][]byte) error {
	if t.d.pending() > 0 {
		if err := t.drain(); err != nil {
			return err
		}
		if t.d.pending() > 0 { // still refused: queue behind, in order
			for _, b := range bs {
				t.d.pend = append(t.d.pend, b...)
			}
			return t.arm()
		}
	}
	l := t.conn.loop
	n, vecs, err := sysWritev(t.c.Fd(), bs, l.vecs)
	l.vecs = vecs
	if err != nil {
		_ = t.c.Close()
		return err
	}
	total := 0
	for _, b := range bs {
		total += len(b)
	}
	if n == total {
		return nil
	}
	if t.d == nil {
		t.d = &directWriter{}
	}
	skip := n
	for _, b := range bs {
		if skip >= len(b) {
			skip -= len(b)
			continue
		}
		t.d.pend = append(t.d.pend, b[skip:]...)
		skip = 0
	}
	return t.arm()
}

// Flush writes what the kernel refused before; the core calls it first in
// every flush.
func (t *gnetTransport) Flush() error {
	if t.d.pending() == 0 {
		return nil
	}
	if err := t.drain(); err != nil {
		return err
	}
	if t.d.pending() > 0 {
		return t.arm()
	}
	return nil
}

func (t *gnetTransport) drain() error {
	d := t.d
	fd := t.c.Fd()
	for d.pending() > 0 {
		n, err := unix.Write(fd, d.pend[d.off:])
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			break
		}
		if err != nil {
			_ = t.c.Close()
			return err
		}
		d.off += n
	}
	if d.pending() == 0 {
		d.pend, d.off = d.pend[:0], 0
		if cap(d.pend) > 256<<10 {
			d.pend = nil
		}
	}
	return nil
}

func (t *gnetTransport) arm() error {
	w := t.conn.srv.watcher
	if w == nil {
		return nil // the loop's tick retries
	}
	err := w.arm(t.c.Fd(), t.conn.id, t.d.registered)
	t.d.registered = err == nil
	return err
}

// bind is called by newConn before the connection is published to other
// goroutines.
func (t *gnetTransport) bind(c *Conn) { t.conn = c }

func (t *gnetTransport) Buffered() int { return t.d.pending() }

func (t *gnetTransport) RemoteAddr() net.Addr { return t.c.RemoteAddr() }

// Wake goes through the loop, not gnet's per-connection Wake: a fan-out
// that wakes ten thousand connections of one loop then costs one trigger
// of that loop, not ten thousand.
func (t *gnetTransport) Wake()  { t.conn.loop.wake(t.conn) }
func (t *gnetTransport) Close() { _ = t.c.Close() }

func (e *gnetEngine) start(s *Server) (string, error) {
	e.srv = s
	w, err := newWriteWatcher(s)
	if err != nil {
		return "", err
	}
	s.watcher = w
	e.loops = make(map[gnet.EventLoop]*loop)
	e.ready = make(chan error, 1)
	e.done = make(chan error, 1)
	e.duped = make(chan struct{})
	e.kick = make(chan struct{}, 1)
	e.quit = make(chan struct{})
	e.lnfd = -1
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
	close(e.duped)
	if err != nil {
		_ = e.stop(context.Background())
		return "", err
	}
	e.lnfd = fd
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return "", err
	}
	switch sa.(type) {
	case *unix.SockaddrInet4, *unix.SockaddrInet6:
		return tcpAddr(sa).String(), nil
	}
	return "", fmt.Errorf("reactor: unexpected listener address %T", sa)
}

// stop does not start with gnet's Engine.Stop, which loses connections
// accepted just before it: gnet hands an accepted connection to a loop as a
// queued task, and Engine.Stop queues the loops' exit without waiting for
// the acceptor, so such a connection is never registered, never closed, and
// its peer hangs (measured in reactor/internal/rawecho: 2 in 3 connections
// dialled just before Stop). Instead stop shuts the listening socket down
// through a dup: the kernel resets the backlog, the acceptor's next accept
// fails and gnet stops itself after its last hand-off, closing every
// connection. Engine.Stop is the fallback (and the way with ReusePort,
// where each loop has a listener of its own).
func (e *gnetEngine) stop(ctx context.Context) error {
	var err error
	e.once.Do(func() {
		if e.quit != nil {
			close(e.quit)
		}
		if e.srv.watcher != nil {
			defer e.srv.watcher.stop()
		}
		if e.lnfd >= 0 {
			defer unix.Close(e.lnfd)
		}
		select {
		case err = <-e.done: // gnet already gone
			return
		default:
		}
		if e.lnfd >= 0 && !e.srv.cfg.ReusePort && unix.Shutdown(e.lnfd, unix.SHUT_RD) == nil {
			select {
			case err = <-e.done:
				return
			case <-time.After(5 * time.Second):
			}
		}
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		err = e.eng.Stop(sctx)
		if errors.Is(err, gerrors.ErrEngineInShutdown) {
			err = nil
		}
		select {
		case runErr := <-e.done:
			if err == nil {
				err = runErr
			}
		case <-sctx.Done():
			err = errors.New("reactor: gnet did not stop")
		}
	})
	return err
}

// OnShutdown orders start's Dup of the listener (a read of gnet's listener
// field) before gnet's close of it, which the race detector cannot see when
// the shutdown comes through the kernel.
func (e *gnetEngine) OnShutdown(gnet.Engine) { <-e.duped }

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
		l.serial = true
		l.execute = func(fn func()) error {
			return el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error { fn(); l.flushDirty(); return nil }))
		}
		run := gnet.RunnableFunc(func(context.Context) error { l.runWakes(); l.flushDirty(); return nil })
		l.trigger = func() { _ = el.Execute(context.Background(), run) }
		e.loops[el] = l
	}
	return l
}

func (e *gnetEngine) OnOpen(gc gnet.Conn) ([]byte, gnet.Action) {
	s := e.srv
	l := e.loopOf(gc)
	tr := &gnetTransport{c: gc}
	c, ok := s.admit(l, tr)
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
	if l.ctr.ConnsOpen.Load() == 1 {
		select { // the loop's first connection: the ticker may be idle
		case e.kick <- struct{}{}:
		default:
		}
	}
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
	now := c.loop.now() // one clock read for the reads and the writes
	if n := gc.InboundBuffered(); n > 0 && c.state != stateClosed {
		buf, err := gc.Peek(n)
		if err == nil {
			// gnet's Discard(n <= 0) discards everything: a partial
			// frame must stay, so discard only what was consumed.
			if used := c.onDataAt(buf, now); used > 0 {
				_, _ = gc.Discard(used)
			}
		}
	}
	c.flushAt(now)
	c.loop.flushDirty()
	c.loop.yield()
	return gnet.None
}

func (e *gnetEngine) OnClose(gc gnet.Conn, _ error) gnet.Action {
	if c, _ := gc.Context().(*Conn); c != nil {
		gc.SetContext(nil)
		c.onClosed()
		c.loop.flushDirty()
	}
	return gnet.None
}

// OnTick runs on gnet's ticker goroutine: it only asks each loop to run
// its own tick, every millisecond while some connection waits for its
// engine buffer to drain and every wheel tick otherwise.
func (e *gnetEngine) OnTick() (time.Duration, gnet.Action) {
	e.mu.Lock()
	active := false
	for _, l := range e.loops {
		// A loop without connections has nothing to time: waking it
		// every tick would keep an idle server busy (each wake-up is an
		// eventfd write and an epoll return on its thread).
		if l.ctr.ConnsOpen.Load() == 0 {
			continue
		}
		active = true
		_ = l.execute(l.tick)
	}
	e.mu.Unlock()
	if !active {
		// Wait here rather than in gnet's timer, so that a loop's first
		// connection (OnOpen kicks) has its timers run from the next
		// tick, not up to idleTick later: a client's first reliable
		// message would otherwise wait that long for its delayed ACK.
		wait := e.idleWait
		if wait == 0 {
			wait = idleTick
		}
		if e.idle == nil {
			e.idle = time.NewTimer(wait)
		} else {
			e.idle.Reset(wait)
		}
		select {
		case <-e.kick:
			e.idle.Stop()
		case <-e.idle.C:
		case <-e.quit:
			e.idle.Stop()
			return idleTick, gnet.None
		}
		return 0, gnet.None // look again at once
	}
	if e.srv.watcher == nil && e.srv.blockedConns.Load() > 0 {
		return blockedPoll, gnet.None
	}
	// Writability comes from the write watcher: ticks only drive timers,
	// stall detection and the rare connection left with queued frames.
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
