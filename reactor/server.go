package reactor

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferry-proto/ferry/codec"
	"github.com/ferry-proto/ferry/protocol"
)

// engine is an event-loop implementation the connection core runs on.
type engine interface {
	// start listens and serves in the background; it returns once the
	// listener is bound, with its address.
	start(s *Server) (addr string, err error)
	// stop closes the listener and every connection still open.
	stop(ctx context.Context) error
}

// Server accepts FERRY/1 connections and runs them on event loops.
type Server struct {
	cfg Config
	// clock is a test's fake clock (set before Start), or nil: every
	// deadline is then measured on the monotonic clock, one vDSO read
	// (time.Now makes two). The wheels advance to it on every tick.
	clock    func() time.Time
	epoch    time.Time
	counters Counters
	quantum  [protocol.NumLanes]int
	nextID   atomic.Uint64

	sessions     sessionStore
	keys         keyStore
	blockedConns atomic.Int64
	watcher      *writeWatcher // gnet only
	reasmLimits  codec.ReassemblyLimits

	mu       sync.Mutex
	shards   []*Counters
	conns    map[uint64]*Conn
	eng      engine
	addr     string
	draining atomic.Bool
	stopped  chan struct{}
}

// quantumUnit is the deficit-round-robin quantum of weight 1, in bytes.
const quantumUnit = 4 << 10

// ErrServerClosed is returned by Start on a server already stopped.
var ErrServerClosed = errors.New("reactor: server closed")

// New checks cfg and returns a server ready to Start.
func New(cfg Config) (*Server, error) {
	cfg = cfg.WithDefaults()
	if cfg.Handler == nil {
		return nil, errors.New("reactor: Config.Handler is required")
	}
	s := &Server{cfg: cfg, conns: make(map[uint64]*Conn), stopped: make(chan struct{})}
	s.epoch = time.Now()
	s.cfg.Sessions.withDefaults(cfg.MaxConns)
	s.sessions.init(s.cfg.Sessions.Store)
	s.keys.init()
	s.reasmLimits = codec.ReassemblyLimits{
		MaxFrameSize: cfg.MaxFrameSize, MaxMessageSize: cfg.MaxMessageSize,
		MaxPartial: cfg.MaxPartial, MaxBytes: cfg.ReassemblyBytes, Timeout: cfg.ReassemblyTimeout,
	}
	for i, w := range cfg.LaneWeights {
		s.quantum[i+1] = w * quantumUnit
	}
	switch cfg.Engine {
	case "gnet":
		s.eng = &gnetEngine{}
	case "netpoll":
		s.eng = &netpollEngine{}
	default:
		return nil, errors.New("reactor: unknown engine " + cfg.Engine)
	}
	return s, nil
}

// Start binds the listener and serves in the background.
func (s *Server) Start() error {
	addr, err := s.eng.start(s)
	if err != nil {
		return err
	}
	s.addr = addr
	go s.janitor()
	s.cfg.Logger.Info("ferry listening", "addr", addr, "engine", s.cfg.Engine, "loops", s.cfg.Loops)
	return nil
}

// now is the server clock in nanoseconds since the epoch, the time every
// loop measures deadlines on.
func (s *Server) now() int64 {
	if s.clock == nil {
		return int64(time.Since(s.epoch))
	}
	return int64(s.clock().Sub(s.epoch))
}

// Addr is the address the server listens on (with the port chosen when
// Config.Addr asked for port 0).
func (s *Server) Addr() string { return s.addr }

// Config returns the configuration in effect, defaults filled in.
func (s *Server) Config() Config { return s.cfg }

// Counters returns the server's live counters.
//
// Each loop counts into a shard of its own so that loops never contend on
// a cache line; Counters returns a new snapshot that sums the shards (and
// the server's own, for events outside any loop). Call it as often as an
// exporter scrapes, not per message.
func (s *Server) Counters() *Counters {
	out := &Counters{}
	s.mu.Lock()
	shards := append([]*Counters{&s.counters}, s.shards...)
	s.mu.Unlock()
	for _, c := range shards {
		out.add(c)
	}
	return out
}

// newShard registers a loop's counter shard.
func (s *Server) newShard() *Counters {
	c := &Counters{}
	s.mu.Lock()
	s.shards = append(s.shards, c)
	s.mu.Unlock()
	return c
}

// NumConns is the number of connections now open.
func (s *Server) NumConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Shutdown sends GOAWAY to every connection, waits until they have closed
// or Config.DrainTimeout (or ctx) runs out, then stops the engine, closing
// whatever is left.
func (s *Server) Shutdown(ctx context.Context) error {
	if !s.draining.CompareAndSwap(false, true) {
		<-s.stopped
		return nil
	}
	s.mu.Lock()
	for _, c := range s.conns {
		c.goAway()
	}
	s.mu.Unlock()
	deadline := time.NewTimer(s.cfg.DrainTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
wait:
	for s.NumConns() > 0 {
		select {
		case <-ctx.Done():
			break wait
		case <-deadline.C:
			break wait
		case <-tick.C:
		}
	}
	err := s.eng.stop(context.WithoutCancel(ctx))
	close(s.stopped)
	return err
}

// Close stops the server at once: no GOAWAY, connections are closed.
func (s *Server) Close() error {
	if !s.draining.CompareAndSwap(false, true) {
		<-s.stopped
		return nil
	}
	err := s.eng.stop(context.Background())
	close(s.stopped)
	return err
}

// admit registers a new connection, or reports false past MaxConns.
func (s *Server) admit(l *loop, tr transport) (*Conn, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.conns) >= s.cfg.MaxConns || s.draining.Load() {
		l.ctr.ConnsRefused.Add(1)
		return nil, false
	}
	c := newConn(s, l, tr, s.nextID.Add(1))
	s.conns[c.id] = c
	l.ctr.ConnsAccepted.Add(1)
	l.ctr.ConnsOpen.Add(1)
	return c, true
}

// lookup returns the open connection with id, or nil.
func (s *Server) lookup(id uint64) *Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns[id]
}

func (s *Server) forget(c *Conn) {
	s.mu.Lock()
	delete(s.conns, c.id)
	s.mu.Unlock()
}

// refusal is the ERROR frame a connection past MaxConns gets.
func refusal(code protocol.ErrorCode, reason string) []byte {
	e := errorFrame(code, reason)
	return e.Append(nil)
}
