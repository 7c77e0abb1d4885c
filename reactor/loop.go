package reactor

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ferry-proto/ferry/codec"
	"github.com/ferry-proto/ferry/reactor/internal/wheel"
)

// maxIov is the most slices handed to one writev: Linux refuses more than
// 1,024 (and gnet closes the connection when it does).
const maxIov = 1024

// arenaSize is the per-loop scratch that fragment headers are encoded into
// for one flush; iovecs point into it, so it never grows mid-flush.
const arenaSize = 256 << 10

// tickInterval is the timing wheel's resolution.
const tickInterval = 10 * time.Millisecond

// blockedPoll is how often connections held back by a full engine buffer
// are re-examined: the engines tell us nothing when their buffer drains.
const blockedPoll = time.Millisecond

// idleTick is how often the ticker looks again when no loop has a
// connection: a new connection does not need the tick to be served, only
// its timers do, and the first of those (the handshake timeout) is
// seconds away.
const idleTick = 100 * time.Millisecond

// loop is the state of one event loop: its timing wheel and the scratch
// every flush on it shares. Only that loop's goroutine touches it.
type loop struct {
	srv *Server
	// ctr is this loop's shard of the counters: its connections update
	// it without sharing cache lines with other loops.
	ctr     *Counters
	wheel   *wheel.Wheel
	iov     [][]byte
	vecs    []unix.Iovec // writev's iovec array, for the gnet transport
	arena   []byte
	release []outItem // written this flush: released after the writev
	blocked []*Conn
	spare   []*Conn
	// dirty holds the connections a callback queued to directly
	// (Conn.SendFrom), flushed when the callback returns.
	dirty []*Conn
	// serial: the engine runs each loop on one goroutine, and every
	// callback on its loop's (gnet): connections of a loop may queue to
	// each other directly.
	serial bool
	// frame and inner hold the frame being handled and, inside a BATCH,
	// the inner frame being handled.
	frame, inner codec.Frame
	// plain checks and decompresses the messages of connections with no
	// partial message; it keeps nothing between calls but its scratch.
	plain    codec.Reassembler
	batchBuf []byte
	// seen is the time onData last read; yielded when yield last let the
	// scheduler run.
	seen, yielded int64
	// execute runs fn on this loop's goroutine (engine specific).
	execute func(fn func()) error
	// trigger makes the loop call runWakes soon (engines that wake
	// connections through the loop set it).
	trigger func()

	// Connections other goroutines asked the loop to serve (wake).
	wakeMu      sync.Mutex
	wakeList    []*Conn
	wakeSpare   []*Conn
	wakePending atomic.Bool
}

func newLoop(srv *Server) *loop {
	return &loop{
		srv:     srv,
		ctr:     srv.newShard(),
		wheel:   wheel.New(tickInterval, srv.epoch),
		iov:     make([][]byte, 0, maxIov),
		vecs:    make([]unix.Iovec, 0, maxIov),
		arena:   make([]byte, 0, arenaSize),
		release: make([]outItem, 0, 64),
		plain:   *codec.NewReassembler(srv.reasmLimits),
	}
}

// now returns nanoseconds since the server's epoch on the monotonic clock.
func (l *loop) now() int64 { return l.srv.now() }

// yieldEvery is how long a busy loop goes without passing through the Go
// scheduler. A goroutine seen on the same scheduling tick for 10 ms is
// preempted by the runtime's monitor thread; if it is in a system call
// then, its P is taken from it, and the monitor, having found work, polls
// every 20 µs for a while, each time taking the CPU from the loop. A
// saturated loop (reads and writes back to back, never idle in epoll)
// met that about every 10 ms: under a pipelined echo the monitor woke
// ~1,300 times a second and the loop was switched out as often; yielding
// every 2 ms brought both down ~10× and the messages per second up ~13 %
// (ferry-peers echo-load, GOMAXPROCS 1).
const yieldEvery = 2 * time.Millisecond

// yield lets other goroutines run, and resets the runtime's count, when
// the loop has worked for yieldEvery since it last did. Runs on the loop,
// between events.
func (l *loop) yield() {
	if l.seen-l.yielded > int64(yieldEvery) {
		l.yielded = l.seen
		runtime.Gosched()
	}
}

func (l *loop) at(ns int64) time.Time { return l.srv.epoch.Add(time.Duration(ns)) }

// tick advances the wheel and retries the connections waiting for their
// engine buffer to drain. It runs on the loop.
func (l *loop) tick() {
	l.wheel.Advance(l.at(l.now()))
	if len(l.blocked) == 0 {
		return
	}
	now := l.now()
	list := l.blocked
	l.blocked = l.spare[:0]
	for i, c := range list {
		list[i] = nil
		c.inBlocked = false
		l.srv.blockedConns.Add(-1)
		if c.state == stateClosed {
			continue
		}
		c.checkProgress(now)
		c.flush() // blocks c again if it still waits
	}
	l.spare = list[:0]
}

// wake asks the loop to serve c: move what other goroutines queued for it
// and flush. Safe from any goroutine; many wake-ups between two turns of
// the loop cost one trigger.
func (l *loop) wake(c *Conn) {
	l.wakeMu.Lock()
	l.wakeList = append(l.wakeList, c)
	l.wakeMu.Unlock()
	if l.wakePending.CompareAndSwap(false, true) {
		l.trigger()
	}
}

// runWakes serves the connections woken since the last turn. On the loop.
func (l *loop) runWakes() {
	l.wakePending.Store(false)
	l.wakeMu.Lock()
	list := l.wakeList
	l.wakeList = l.wakeSpare[:0]
	l.wakeMu.Unlock()
	for i, c := range list {
		list[i] = nil
		if c.state == stateClosed {
			continue
		}
		c.onWake()
		c.flush()
	}
	l.wakeSpare = list[:0]
}

// markDirty has c flushed once the running callback returns. On the loop.
func (l *loop) markDirty(c *Conn) {
	if !c.inDirty {
		c.inDirty = true
		l.dirty = append(l.dirty, c)
	}
}

// flushDirty flushes what callbacks queued to other connections of the
// loop. Every engine entry point that runs callbacks ends with it.
func (l *loop) flushDirty() {
	for i := 0; i < len(l.dirty); i++ {
		c := l.dirty[i]
		l.dirty[i] = nil
		c.inDirty = false
		if c.state != stateClosed {
			c.flush()
		}
	}
	l.dirty = l.dirty[:0]
}

func (l *loop) block(c *Conn) {
	if !c.inBlocked {
		c.inBlocked = true
		l.blocked = append(l.blocked, c)
		l.srv.blockedConns.Add(1)
	}
}
