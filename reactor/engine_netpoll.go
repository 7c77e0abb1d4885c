package reactor

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/cloudwego/netpoll"
	"golang.org/x/sys/unix"

	"github.com/ferry-proto/ferry/codec"
	"github.com/ferry-proto/ferry/protocol"
)

// netpollEngine runs the same connection core on cloudwego/netpoll.
//
// netpoll has no event loop a connection belongs to: it reads on its poller
// goroutines and calls OnRequest on a pooled goroutine, any goroutine, one
// at a time per connection. The core wants a loop: one owner of each
// connection's state and of the loop struct (wheel, writev scratch, blocked
// list). So the engine makes Config.Loops pseudo-loops. A pseudo-loop is a
// *loop, a mutex, and one goroutine that ticks the wheel and runs the tasks
// other goroutines post (wake-ups, closes). A connection is given to a
// pseudo-loop round robin at OnConnect, and everything that touches it (its
// input in OnRequest, its wake-ups, its timers, its close) runs holding that
// pseudo-loop's mutex: "on the loop" means "holding the mutex".
//
// Input. netpoll calls OnRequest again at once, in a loop, while any input
// is left unread (connection_onevent.go, onProcess), so OnRequest reads
// everything, always. A trailing partial frame is copied into a pooled
// carry buffer; the next OnRequest completes it with as few bytes as the
// frame still lacks, and decodes the rest in place. netpoll's pollers read
// ahead without limit while OnRequest waits for its loop (there is no way
// to pause reading), so input is handed to the core in slices of at most
// npInputSlice, the loop released in between; the peer meets no TCP
// backpressure on input, unlike on gnet, where the loop reads only when it
// has time.
//
// Output. netpoll's Writer cannot be used without blocking: Flush waits
// until everything is written, a write timeout leaves its poller still
// draining the buffer that a later Flush would send again, and
// WriteBinary keeps our pooled slices. So the engine writes to the socket
// itself, with a non-blocking sendmsg, and copies what the kernel did not
// take into an engine buffer of pooled chunks; netpoll's output buffer
// stays empty and its poller never writes. netpoll exposes no write
// readiness, so the pseudo-loop retries that buffer every blockedPoll (1 ms)
// while it holds anything. Buffered is the size of that buffer: the bytes
// Writev accepted that the kernel has not. Backpressure is then the core's,
// unchanged: lanes 2-3 are held while Buffered passes Config.EngineBuffer,
// MaxOutboundBytes counts our queues plus Buffered, and WriteStallTimeout
// closes a blocked connection whose Buffered does not shrink.
type netpollEngine struct {
	srv    *Server
	loops  []*npLoop
	next   atomic.Uint32
	ln     *npListener
	evl    netpoll.EventLoop
	served chan error
	quit   chan struct{}
	wg     sync.WaitGroup
	once   sync.Once
}

func (e *netpollEngine) start(s *Server) (string, error) {
	e.srv = s
	ln, err := listenTCP(s.cfg.Addr, s.cfg.ReusePort)
	if err != nil {
		return "", err
	}
	e.ln = ln
	e.quit = make(chan struct{})
	e.loops = make([]*npLoop, max(s.cfg.Loops, 1))
	for i := range e.loops {
		p := newNPLoop(s)
		e.loops[i] = p
		e.wg.Go(func() { p.run(e.quit) })
	}
	evl, err := netpoll.NewEventLoop(e.onRequest, netpoll.WithOnConnect(e.onConnect))
	if err != nil {
		e.abort()
		return "", err
	}
	e.evl = evl
	e.served = make(chan error, 1)
	go func() { e.served <- evl.Serve(ln) }()
	// Serve has registered the listener once it asked for its fd; from
	// then on Shutdown finds the server to stop (before, it would return
	// without stopping anything and Serve would run on).
	select {
	case <-ln.registered:
	case err := <-e.served:
		e.abort()
		if err == nil {
			err = errors.New("reactor: netpoll stopped at start")
		}
		return "", err
	}
	return ln.addr.String(), nil
}

// abort undoes a start that failed before Serve ran.
func (e *netpollEngine) abort() {
	e.evl = nil
	_ = e.ln.Close()
	close(e.quit)
	e.wg.Wait()
}

// stop closes the listener and every connection through netpoll's
// Shutdown, waits until the core has seen every close, then ends the
// pseudo-loops.
func (e *netpollEngine) stop(ctx context.Context) error {
	var err error
	e.once.Do(func() {
		if e.evl == nil { // Start failed and cleaned up
			return
		}
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		// netpoll's Shutdown closes only the connections idle when it
		// looks and re-polls the busy ones until ctx ends (measured here
		// with -race: 5.7-9.2 s for 50 clients writing), so close ours
		// first. The server is draining: any connection accepted from
		// here on is refused.
		e.closeAll()
		err = e.evl.Shutdown(sctx)
		select {
		case <-e.served:
		case <-sctx.Done():
		}
		// netpoll runs a connection's close callbacks late when its
		// OnConnect or OnRequest was running: wait for the core's
		// onClosed of each, which the pseudo-loops run.
		for e.srv.NumConns() > 0 && sctx.Err() == nil {
			select {
			case <-sctx.Done():
			case <-time.After(time.Millisecond):
			}
		}
		if n := e.srv.NumConns(); n > 0 && err == nil {
			err = errors.New("reactor: netpoll did not close every connection")
		}
		close(e.quit)
		e.wg.Wait()
		_ = e.ln.Close()
	})
	return err
}

// closeAll asks each pseudo-loop to close its connections, without
// sending anything more; each loop closes all of its own in one batch.
func (e *netpollEngine) closeAll() {
	s := e.srv
	s.mu.Lock()
	for _, c := range s.conns {
		if t, ok := c.tr.(*npConn); ok {
			t.pl.post(npTask{t: t, kind: npShutdown})
		}
	}
	s.mu.Unlock()
}

// onConnect runs on a netpoll pool goroutine before any OnRequest of the
// connection. It admits the connection on a pseudo-loop and returns its
// npConn as the context netpoll hands to every OnRequest.
func (e *netpollEngine) onConnect(ctx context.Context, nc netpoll.Connection) context.Context {
	s := e.srv
	fdc, ok := nc.(interface{ Fd() int })
	if !ok {
		_ = nc.Close()
		return ctx
	}
	p := e.loops[int(e.next.Add(1)-1)%len(e.loops)]
	t := &npConn{Context: ctx, nc: nc, fd: fdc.Fd(), pl: p}
	p.mu.Lock()
	c, admitted := s.admit(p.l, t)
	t.c = c
	p.mu.Unlock()
	if !admitted {
		code := protocol.CodeTooManyConnections
		if s.draining.Load() {
			code = protocol.CodeGoingAway
		}
		s.counters.close(code)
		// A fresh socket's send buffer takes the few bytes at once.
		_ = unix.Sendmsg(t.fd, refusal(code, "connection refused"), nil, nil, unix.MSG_NOSIGNAL|unix.MSG_DONTWAIT)
		_ = nc.Close()
		return ctx
	}
	if s.cfg.NotSentLowat > 0 {
		// Keep the kernel's unsent queue shallow so priorities are
		// decided in our lanes, not behind data already in the socket.
		_ = unix.SetsockoptInt(t.fd, unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, s.cfg.NotSentLowat)
	}
	// Added after netpoll's own callbacks, so it runs before them (they
	// run newest first), before netpoll closes the fd.
	_ = nc.AddCloseCallback(t.onNetpollClose)
	return t
}

// npInputSlice is the most input the core is handed under one hold of a
// pseudo-loop. netpoll reads ahead without limit while OnRequest waits, so
// one OnRequest can bring megabytes; slicing lets the loop's other
// connections, its ticks and its wake-ups in between, as gnet's loop does
// by reading at most one buffer per connection per turn.
const npInputSlice = 64 << 10

// onRequest runs on a netpoll pool goroutine when input has arrived. It
// consumes all of it, always: netpoll calls OnRequest again at once while
// any input is left, so leaving a partial frame unread would spin.
func (e *netpollEngine) onRequest(ctx context.Context, nc netpoll.Connection) error {
	r := nc.Reader()
	n := r.Len()
	if t, ok := ctx.(*npConn); ok && n > 0 {
		if buf, err := r.Peek(n); err == nil {
			for len(buf) > 0 && t.onInput(buf[:min(len(buf), npInputSlice)]) {
				buf = buf[min(len(buf), npInputSlice):]
			}
		}
	}
	_ = r.Skip(n)
	return r.Release()
}

// npLoop is a pseudo-loop: a loop struct and the mutex that makes whoever
// holds it "the loop", plus the goroutine that ticks the wheel and runs
// posted tasks.
type npLoop struct {
	l *loop

	// mu is the loop. Everything below up to qmu is owned by its holder.
	mu       sync.Mutex
	draining []*npConn // connections whose engine buffer holds bytes
	spare    []*npConn
	iovs     []unix.Iovec
	msg      unix.Msghdr
	fast     bool // the goroutine's timer is armed at blockedPoll

	qmu    sync.Mutex
	queue  []npTask
	signal chan struct{}

	// tasks is the batch being run; only the pseudo-loop goroutine uses it.
	tasks []npTask
}

type npTaskKind uint8

const (
	npWake     npTaskKind = iota // run the OnTraffic sequence: onWake, flush
	npClosed                     // netpoll has closed the connection: onClosed
	npFunc                       // run fn (loop.execute)
	npShutdown                   // close without sending anything more
)

type npTask struct {
	t    *npConn
	kind npTaskKind
	fn   func()
}

func newNPLoop(s *Server) *npLoop {
	p := &npLoop{
		l:      newLoop(s),
		iovs:   make([]unix.Iovec, 0, maxIov),
		signal: make(chan struct{}, 1),
	}
	p.l.execute = func(fn func()) error {
		p.post(npTask{kind: npFunc, fn: fn})
		return nil
	}
	return p
}

// post queues a task for the pseudo-loop goroutine. Safe from any
// goroutine, including one holding p.mu; it allocates nothing once the
// queue has grown.
func (p *npLoop) post(task npTask) {
	p.qmu.Lock()
	p.queue = append(p.queue, task)
	p.qmu.Unlock()
	p.poke()
}

func (p *npLoop) poke() {
	select {
	case p.signal <- struct{}{}:
	default:
	}
}

// run is the pseudo-loop goroutine: it runs posted tasks as they come and
// ticks every tickInterval, or every blockedPoll while a connection waits
// for its engine buffer or its lanes to drain.
func (p *npLoop) run(quit <-chan struct{}) {
	timer := time.NewTimer(tickInterval)
	defer timer.Stop()
	cur := tickInterval
	for {
		select {
		case <-p.signal:
			if p.runTasks() && cur != blockedPoll {
				cur = blockedPoll
				timer.Reset(cur)
			}
		case <-timer.C:
			cur = p.tick()
			timer.Reset(cur)
		case <-quit:
			p.runTasks()
			return
		}
	}
}

// runTasks runs the tasks posted so far, holding the loop. It reports
// whether the loop now wants fast ticks.
func (p *npLoop) runTasks() (fast bool) {
	p.qmu.Lock()
	batch := p.queue
	p.queue = p.tasks[:0]
	p.qmu.Unlock()
	p.mu.Lock()
	for i := range batch {
		task := batch[i]
		batch[i] = npTask{}
		switch task.kind {
		case npWake:
			task.t.onWake()
		case npClosed:
			task.t.onClosed()
		case npFunc:
			task.fn()
		case npShutdown:
			if !task.t.gone {
				task.t.c.shutdown()
			}
		}
	}
	fast = p.busy()
	if fast {
		p.fast = true
	}
	p.mu.Unlock()
	p.tasks = batch[:0]
	return fast
}

// tick retries engine buffers, then advances the wheel and re-examines
// the core's blocked connections. It returns the next tick's interval.
func (p *npLoop) tick() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.draining) > 0 {
		p.drainAll()
	}
	p.l.tick()
	p.fast = p.busy()
	if p.fast {
		return blockedPoll
	}
	return tickInterval
}

// busy reports whether some connection waits for bytes to leave: its
// engine buffer, or lanes the core holds back. Call it holding mu.
func (p *npLoop) busy() bool { return len(p.draining) > 0 || len(p.l.blocked) > 0 }

// wantFast makes sure the goroutine ticks at blockedPoll when the loop is
// busy after work done on another goroutine (OnRequest). Call it holding mu.
func (p *npLoop) wantFast() {
	if !p.fast && p.busy() {
		p.fast = true
		p.poke()
	}
}

// drainAll writes out what it can of every engine buffer. A connection
// that made progress is flushed, so the core's view of its buffer
// (Conn.engineBuf, Backlogged) follows, unless the core's own tick will
// flush it as blocked anyway. Call it holding mu.
func (p *npLoop) drainAll() {
	list := p.draining
	p.draining = p.spare[:0]
	for i, t := range list {
		list[i] = nil
		t.inDraining = false
		if t.closed.Load() {
			t.out.reset()
			continue
		}
		before := t.out.n
		if err := t.drain(); err != nil {
			t.fail()
			continue
		}
		if t.out.n > 0 {
			p.markDraining(t)
		}
		if t.out.n < before && !t.c.inBlocked {
			t.c.flush()
		}
	}
	p.spare = list[:0]
}

func (p *npLoop) markDraining(t *npConn) {
	if !t.inDraining {
		t.inDraining = true
		p.draining = append(p.draining, t)
	}
}

// npConn is one connection's engine side and the core's transport. It is
// also the context netpoll passes to OnRequest. Fields below mu-owned are
// used only holding pl.mu.
type npConn struct {
	context.Context
	nc netpoll.Connection
	fd int
	pl *npLoop
	c  *Conn // nil for a refused connection

	// closed: the fd must not be written any more. It is set holding
	// pl.mu by Close, or first of all by netpoll's close callback, which
	// then takes pl.mu before netpoll closes the fd, so no write is in
	// flight when the fd number can be reused.
	closed atomic.Bool

	// Owned by the holder of pl.mu.
	out        outQueue
	carry      *codec.Buffer // a partial inbound frame, nil when none
	inDraining bool
	gone       bool // onClosed has run
}

// Writev writes bs in order without blocking: straight to the socket when
// the engine buffer is empty, and what the kernel does not take is copied
// into the engine buffer. Holding pl.mu.
func (t *npConn) Writev(bs [][]byte) error {
	if t.closed.Load() {
		return net.ErrClosed
	}
	if t.out.n > 0 {
		if err := t.drain(); err != nil {
			t.fail()
			return err
		}
		if t.out.n > 0 {
			t.out.write(bs, 0)
			t.pl.markDraining(t)
			return nil
		}
	}
	iov := t.pl.iovs[:0]
	for _, b := range bs {
		if len(b) > 0 && len(iov) < maxIov {
			iov = appendIovec(iov, b)
		}
	}
	n, err := t.pl.sendmsg(t.fd, iov)
	if err != nil {
		t.fail()
		return err
	}
	if t.out.write(bs, n) {
		t.pl.markDraining(t)
	}
	return nil
}

// Buffered is the number of bytes Writev accepted that the kernel has not
// taken yet. Holding pl.mu.
func (t *npConn) Buffered() int { return t.out.n }

func (t *npConn) RemoteAddr() net.Addr { return t.nc.RemoteAddr() }

// Flush does nothing: Writev retries the engine buffer first, and the
// pseudo-loop's tick retries it while it holds anything.
func (t *npConn) Flush() error { return nil }

// Wake asks the pseudo-loop to run onWake and flush. Safe from any
// goroutine; the core calls it at most once per pending wake-up.
func (t *npConn) Wake() { t.pl.post(npTask{t: t, kind: npWake}) }

// Close writes what it can of the engine buffer, without waiting, and
// closes; netpoll's close callback then reports the close to the core.
// Holding pl.mu.
func (t *npConn) Close() {
	if t.closed.Load() {
		return
	}
	if t.out.n > 0 {
		_ = t.drain()
	}
	if !t.closed.CompareAndSwap(false, true) {
		return
	}
	t.out.reset()
	_ = t.nc.Close()
}

// fail closes after a write error (the peer reset, the pipe broke), as
// gnet does inside a failed Write. Holding pl.mu.
func (t *npConn) fail() {
	t.out.reset()
	t.Close()
}

// drain writes the engine buffer's head. Holding pl.mu.
func (t *npConn) drain() error {
	iov := t.out.iovecs(t.pl.iovs[:0])
	n, err := t.pl.sendmsg(t.fd, iov)
	if err != nil {
		return err
	}
	t.out.consume(n)
	return nil
}

// onNetpollClose is netpoll's close callback. It runs once, on whichever
// goroutine closes: a netpoll poller (the peer hung up), a pool goroutine
// after OnRequest, Shutdown's, or ours inside Close (holding pl.mu).
func (t *npConn) onNetpollClose(netpoll.Connection) error {
	if t.closed.CompareAndSwap(false, true) {
		// Not closed by us, so not holding pl.mu here: taking it waits
		// out any write in flight on the fd before netpoll closes it.
		t.pl.mu.Lock()
		t.out.reset()
		t.pl.mu.Unlock()
	}
	t.pl.post(npTask{t: t, kind: npClosed})
	return nil
}

// onWake is the OnTraffic sequence for a wake-up: there is no input to
// feed (OnRequest takes it all), so it is onWake, then flush. Holding pl.mu.
func (t *npConn) onWake() {
	c := t.c
	if t.gone {
		return
	}
	if c.wakeQueued.Load() || c.closeReq.Load() != 0 || c.pendingGoAway.Load() {
		c.onWake()
	}
	c.flush()
}

// onClosed tells the core, once. Holding pl.mu.
func (t *npConn) onClosed() {
	if t.gone {
		return
	}
	t.gone = true
	t.out.reset()
	if t.carry != nil {
		codec.PutBuffer(t.carry)
		t.carry = nil
	}
	t.c.onClosed()
}

// onInput runs the OnTraffic sequence for input that arrived: onWake if
// requested, decode, flush. buf is valid only during the call. It reports
// whether the connection still wants input.
func (t *npConn) onInput(buf []byte) bool {
	p := t.pl
	p.mu.Lock()
	// A handler that panics is recovered by netpoll's pool; the loop must
	// not stay locked.
	defer p.mu.Unlock()
	if t.gone {
		return false
	}
	c := t.c
	if c.wakeQueued.Load() || c.closeReq.Load() != 0 || c.pendingGoAway.Load() {
		c.onWake()
	}
	if c.state != stateClosed {
		t.feed(c, buf)
	}
	c.flush()
	p.wantFast()
	return c.state != stateClosed
}

// feed hands the input to the core: first it completes a carried partial
// frame with the bytes that frame still lacks, then it decodes the rest in
// place and carries a new trailing partial frame, if any. Holding pl.mu.
func (t *npConn) feed(c *Conn, buf []byte) {
	for t.carry != nil && c.state != stateClosed {
		b := t.carry.B
		need := carryNeed(b, c.dec.MaxFrameSize)
		if len(b) < need {
			if len(buf) == 0 {
				return
			}
			take := min(need-len(b), len(buf))
			t.carry.B = append(b, buf[:take]...)
			buf = buf[take:]
			continue
		}
		used := c.onData(b)
		if used == 0 {
			// Cannot happen: b holds a whole frame or a bad prefix.
			// Keep order anyway.
			t.carry.B = append(b, buf...)
			return
		}
		if used < len(b) {
			t.carry.B = b[:copy(b, b[used:])]
			continue
		}
		codec.PutBuffer(t.carry)
		t.carry = nil
	}
	if len(buf) == 0 || c.state == stateClosed {
		return
	}
	used := c.onData(buf)
	if used < len(buf) && c.state != stateClosed {
		t.carry = codec.GetBuffer()
		t.carry.B = append(t.carry.B[:0], buf[used:]...)
	}
}

// carryNeed is how many bytes a carried partial frame b must hold before
// the decoder can make progress: the length prefix, then the whole frame.
// A prefix the decoder will refuse needs nothing more.
func carryNeed(b []byte, maxFrame int) int {
	if len(b) < protocol.LengthSize {
		return protocol.LengthSize
	}
	total := uint64(binary.BigEndian.Uint32(b)) + protocol.LengthSize
	if total > uint64(maxFrame) || total < protocol.HeaderSize {
		return len(b)
	}
	return int(total)
}

// sendmsg writes iov to fd without blocking and without SIGPIPE. A full
// socket is not an error: it returns 0. Holding p.mu (p.msg is scratch).
func (p *npLoop) sendmsg(fd int, iov []unix.Iovec) (int, error) {
	if len(iov) == 0 {
		return 0, nil
	}
	p.msg.Iov = &iov[0]
	p.msg.SetIovlen(len(iov))
	var n uintptr
	var errno syscall.Errno
	for {
		n, _, errno = unix.Syscall(unix.SYS_SENDMSG, uintptr(fd), uintptr(unsafe.Pointer(&p.msg)),
			unix.MSG_NOSIGNAL|unix.MSG_DONTWAIT)
		if errno != unix.EINTR {
			break
		}
	}
	p.msg.Iov = nil
	clear(iov) // drop the references to the buffers
	switch errno {
	case 0:
		return int(n), nil
	case unix.EAGAIN:
		return 0, nil
	}
	return 0, errno
}

func appendIovec(iov []unix.Iovec, b []byte) []unix.Iovec {
	v := unix.Iovec{Base: &b[0]}
	v.SetLen(len(b))
	return append(iov, v)
}

// outChunkSize is the size of the pooled chunks an engine buffer is made of.
const outChunkSize = 16 << 10

type outChunk struct {
	b [outChunkSize]byte
	n int
}

var outChunks = sync.Pool{New: func() any { return new(outChunk) }}

// outQueue is a connection's engine buffer: the bytes the kernel did not
// take, in pooled chunks that go back to the pool as soon as they are
// written. An idle connection holds none.
type outQueue struct {
	chunks []*outChunk
	head   int // bytes of chunks[0] already written
	n      int // bytes waiting
}

// write copies bs, less its first skip bytes, to the end of the queue. It
// reports whether the queue holds anything.
func (q *outQueue) write(bs [][]byte, skip int) bool {
	for _, b := range bs {
		if skip >= len(b) {
			skip -= len(b)
			continue
		}
		q.append(b[skip:])
		skip = 0
	}
	return q.n > 0
}

func (q *outQueue) append(b []byte) {
	for len(b) > 0 {
		var ch *outChunk
		if k := len(q.chunks); k > 0 && q.chunks[k-1].n < outChunkSize {
			ch = q.chunks[k-1]
		} else {
			ch = outChunks.Get().(*outChunk)
			ch.n = 0
			q.chunks = append(q.chunks, ch)
		}
		m := copy(ch.b[ch.n:], b)
		ch.n += m
		q.n += m
		b = b[m:]
	}
}

// iovecs appends the queue's contents to iov, at most maxIov slices.
func (q *outQueue) iovecs(iov []unix.Iovec) []unix.Iovec {
	for i, ch := range q.chunks {
		if len(iov) == maxIov {
			break
		}
		b := ch.b[:ch.n]
		if i == 0 {
			b = b[q.head:]
		}
		if len(b) > 0 {
			iov = appendIovec(iov, b)
		}
	}
	return iov
}

// consume drops the first n bytes, which the kernel took.
func (q *outQueue) consume(n int) {
	q.n -= n
	for n > 0 {
		ch := q.chunks[0]
		if avail := ch.n - q.head; n < avail {
			q.head += n
			return
		} else {
			n -= avail
		}
		q.head = 0
		outChunks.Put(ch)
		k := copy(q.chunks, q.chunks[1:])
		q.chunks[k] = nil
		q.chunks = q.chunks[:k]
	}
}

func (q *outQueue) reset() {
	for i, ch := range q.chunks {
		outChunks.Put(ch)
		q.chunks[i] = nil
	}
	q.chunks = q.chunks[:0]
	q.head, q.n = 0, 0
}

// npListener is the listening socket handed to netpoll. netpoll's own
// (ConvertListener) closes the listener's fd twice, once with
// syscall.Close and again through the *os.File it came from, which can
// close whatever socket took that fd number in between; this one owns a
// plain fd, closes it once, and never accepts on it once closed.
type npListener struct {
	mu         sync.RWMutex
	fd         int // -1 once closed
	addr       net.Addr
	registered chan struct{}
	regOnce    sync.Once
}

func listenTCP(addr string, reusePort bool) (*npListener, error) {
	var lc net.ListenConfig
	if reusePort {
		lc.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			if err := rc.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			}); err != nil {
				return err
			}
			return serr
		}
	}
	nl, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer nl.Close() // the dup keeps the socket listening
	rc, err := nl.(*net.TCPListener).SyscallConn()
	if err != nil {
		return nil, err
	}
	fd := -1
	var derr error
	if err := rc.Control(func(s uintptr) { fd, derr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, derr
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		_ = unix.Close(fd)
		return nil, err
	}
	return &npListener{fd: fd, addr: nl.Addr(), registered: make(chan struct{})}, nil
}

// Accept accepts one connection. Nothing to accept, or a closed listener,
// is (nil, nil), which netpoll takes for EAGAIN.
func (l *npListener) Accept() (net.Conn, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.fd < 0 {
		return nil, nil
	}
	for {
		fd, sa, err := unix.Accept4(l.fd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		switch err {
		case nil:
			_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
			return &npAccepted{fd: fd, laddr: l.addr, raddr: tcpAddr(sa)}, nil
		case unix.EINTR, unix.ECONNABORTED:
			continue
		case unix.EAGAIN:
			return nil, nil
		}
		return nil, err
	}
}

func (l *npListener) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fd < 0 {
		return nil
	}
	err := unix.Close(l.fd)
	l.fd = -1
	return err
}

func (l *npListener) Addr() net.Addr { return l.addr }

// Fd is called by netpoll's Serve as it registers the listener.
func (l *npListener) Fd() int {
	l.regOnce.Do(func() { close(l.registered) })
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.fd
}

// npAccepted carries an accepted socket to netpoll, which uses only its
// Fd, LocalAddr and RemoteAddr to build its own connection; the embedded
// nil net.Conn stands for the methods it never calls.
type npAccepted struct {
	net.Conn
	fd           int
	laddr, raddr net.Addr
}

func (a *npAccepted) Fd() int              { return a.fd }
func (a *npAccepted) LocalAddr() net.Addr  { return a.laddr }
func (a *npAccepted) RemoteAddr() net.Addr { return a.raddr }

func tcpAddr(sa unix.Sockaddr) net.Addr {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(a.Addr[:]).To16(), Port: a.Port}
	case *unix.SockaddrInet6:
		return &net.TCPAddr{IP: append(net.IP(nil), a.Addr[:]...), Port: a.Port}
	}
	return &net.TCPAddr{}
}
