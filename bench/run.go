package bench

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/ferry-proto/ferry/client"
)

// Progress is a run's state, as Config.Progress sees it every interval.
type Progress struct {
	// Phase is "connect", "run" (traffic, or holding for idle) or "drain"
	// (waiting for the last deliveries and acknowledgements).
	Phase string
	// Elapsed is the time since the phase began; Total its planned length
	// (0 when open-ended).
	Elapsed, Total time.Duration
	// Conns are the connections up; Target those asked for.
	Conns, Target int
	// Msgs, Errors and Reconnects count from the start of the run; Rate is
	// messages per second over the last interval.
	Msgs, Errors, Reconnects int64
	Rate                     float64
}

// scenarioFuncs maps names to implementations; each file adds its own.
var scenarioFuncs = map[string]func(context.Context, *run) error{}

// Run runs the scenario cfg describes against a server and returns what it
// measured. It returns an error when the scenario could not run (a
// connection refused, a subscription denied); failures of single messages
// are counted in Result.Errors instead. ctx cuts the run short: Run then
// stops its traffic and returns what it measured so far.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.ServerPID != 0 {
		if err := checkServerPID(cfg.ServerPID); err != nil {
			return nil, err
		}
	}
	// One process holds at most the open-file limit of sockets (FIELD-NOTES:
	// 20,000 here, not raisable); leave room for the runtime and the admin
	// scrapes.
	if lim := fileLimit(); lim > 0 && uint64(cfg.Conns)+1+64 > lim {
		return nil, fmt.Errorf("bench: %d connections need more than this process's open-file limit of %d allows (at most %d): run several ferry-bench processes",
			cfg.Conns, lim, lim-65)
	}
	r := newRun(cfg)
	if r.admin != nil {
		defer r.admin.Close()
	}
	var pw sync.WaitGroup
	stop := make(chan struct{})
	if cfg.Progress != nil {
		pw.Add(1)
		go func() { defer pw.Done(); r.progressLoop(stop) }()
	}
	err := scenarioFuncs[cfg.Scenario](ctx, r)
	close(stop)
	pw.Wait()
	if err != nil {
		return nil, err
	}
	r.finish()
	if ctx.Err() != nil {
		r.res.note("interrupted: traffic ran %s of %s", r.window().Round(time.Millisecond), cfg.Duration)
	}
	return r.res, nil
}

// run is the state of one Run shared by the scenario and the progress
// reporter.
type run struct {
	cfg   Config
	res   *Result
	id    string    // unique per run: topics and client ids
	epoch time.Time // payload timestamps are nanoseconds since
	dial  dialers
	admin *Admin

	msgs, bytes, errs atomic.Int64
	conns, target     atomic.Int64 // connections up, and asked for

	mu         sync.Mutex
	phase      string
	phaseStart time.Time
	phaseLen   time.Duration
	clients    []*client.Client // for Stats().Reconnects
	errSeen    map[string]bool

	// The traffic window.
	tStart, tEnd      time.Time
	msgsEnd, bytesEnd int64
	cpuStart          time.Duration
	srvCPUStart       float64
	srvCPUOK          bool

	connectHist *hdrhistogram.Histogram // time to open each connection
}

func newRun(cfg Config) *run {
	var b [4]byte
	_, _ = rand.Read(b[:])
	r := &run{
		cfg: cfg, id: hex.EncodeToString(b[:]), epoch: time.Now(), dial: dialers{sources: cfg.Sources},
		errSeen: map[string]bool{}, phase: "connect", phaseStart: time.Now(),
		res: &Result{Scenario: cfg.Scenario, Addr: cfg.Addr, Connections: cfg.Conns, Size: cfg.Size, Loop: "closed"},
	}
	r.target.Store(int64(cfg.Conns))
	if cfg.Rate > 0 {
		r.res.Loop, r.res.TargetRate = "open", cfg.Rate
	}
	if cfg.Admin != "" {
		r.admin = NewAdmin(cfg.Admin)
	}
	return r
}

// now is the time since the run's epoch, the clock of payload timestamps.
func (r *run) now() int64 { return int64(time.Since(r.epoch)) }

func (r *run) setPhase(p string, length time.Duration) {
	r.mu.Lock()
	r.phase, r.phaseStart, r.phaseLen = p, time.Now(), length
	r.mu.Unlock()
}

// done counts n completed messages of size bytes each.
func (r *run) done(n int64, size int) {
	r.msgs.Add(n)
	r.bytes.Add(n * int64(size))
}

// fail counts an error, keeping the first few distinct texts as notes.
func (r *run) fail(err error) {
	r.errs.Add(1)
	r.seen(err)
}

// seen keeps err's text as a note, among the first few distinct ones,
// without counting it: for errors counted otherwise.
func (r *run) seen(err error) {
	r.mu.Lock()
	if len(r.errSeen) < 5 && !r.errSeen[err.Error()] {
		r.errSeen[err.Error()] = true
	}
	r.mu.Unlock()
}

func (r *run) reconnects() int64 {
	r.mu.Lock()
	cls := r.clients
	r.mu.Unlock()
	var n int64
	for _, c := range cls {
		n += int64(c.Stats().Reconnects)
	}
	return n
}

// connected counts the connections up now: the clients connected at this
// moment once there are clients (reconnect-storm shows them dropping and
// coming back), else those opened.
func (r *run) connected() int {
	r.mu.Lock()
	cls := r.clients
	r.mu.Unlock()
	if len(cls) == 0 {
		return int(r.conns.Load())
	}
	n := 0
	for _, c := range cls {
		if c.State() == client.StateConnected {
			n++
		}
	}
	return n
}

func (r *run) progressLoop(stop <-chan struct{}) {
	t := time.NewTicker(r.cfg.ProgressEvery)
	defer t.Stop()
	last, lastAt := r.msgs.Load(), time.Now()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			m := r.msgs.Load()
			r.mu.Lock()
			p := Progress{Phase: r.phase, Elapsed: now.Sub(r.phaseStart), Total: r.phaseLen,
				Target: int(r.target.Load())}
			r.mu.Unlock()
			p.Conns = r.connected()
			p.Msgs, p.Errors, p.Reconnects = m, r.errs.Load(), r.reconnects()
			p.Rate = float64(m-last) / now.Sub(lastAt).Seconds()
			last, lastAt = m, now
			r.cfg.Progress(p)
		}
	}
}

// beginTraffic starts the measured window: it returns a context that ends
// with it.
func (r *run) beginTraffic(ctx context.Context) (context.Context, context.CancelFunc) {
	if r.cfg.ServerPID != 0 || r.admin != nil {
		if v, err := r.serverCPU(ctx); err == nil {
			r.srvCPUStart, r.srvCPUOK = v, true
		} else {
			r.res.note("no server CPU figure: %v", err)
		}
	}
	r.cpuStart = cpuTime()
	r.setPhase("run", r.cfg.Duration)
	r.tStart = time.Now()
	return context.WithTimeout(ctx, r.cfg.Duration)
}

// endTraffic closes the measured window: messages counted after it (the
// drain) do not enter the throughput.
func (r *run) endTraffic(ctx context.Context) {
	if !r.tEnd.IsZero() {
		return
	}
	r.tEnd = time.Now()
	r.msgsEnd, r.bytesEnd = r.msgs.Load(), r.bytes.Load()
	r.res.ClientCPUS = (cpuTime() - r.cpuStart).Seconds()
	if r.srvCPUOK {
		if v, err := r.serverCPU(ctx); err == nil {
			r.res.ServerCPUS = v - r.srvCPUStart
		} else {
			r.res.note("no server CPU figure: %v", err)
		}
	}
	r.setPhase("drain", 0)
}

// serverCPU is the server's CPU time so far, in seconds: from
// /proc/PID/stat with ServerPID, else from the admin endpoint's
// process_cpu_seconds_total.
func (r *run) serverCPU(ctx context.Context) (float64, error) {
	if r.cfg.ServerPID != 0 {
		d, err := procCPU(r.cfg.ServerPID)
		return d.Seconds(), err
	}
	m, err := r.scrape(ctx)
	if err != nil {
		return 0, err
	}
	return m[mCPU], nil
}

// scrape reads the server's metrics, also when ctx was cancelled (an
// interrupted run still reports the server's CPU time).
func (r *run) scrape(ctx context.Context) (Metrics, error) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	return r.admin.Scrape(sctx, false)
}

func (r *run) window() time.Duration {
	if r.tEnd.IsZero() {
		return 0
	}
	return r.tEnd.Sub(r.tStart)
}

func (r *run) finish() {
	res := r.res
	if w := r.window(); w > 0 {
		res.DurationS = w.Seconds()
		res.Msgs = r.msgsEnd
		res.MsgsPerSec = float64(r.msgsEnd) / w.Seconds()
		res.MBPerSec = float64(r.bytesEnd) / w.Seconds() / 1e6
	}
	if r.connectHist != nil && res.Histogram("connect") == nil {
		res.addSeries("connect", r.connectHist, 0)
	}
	res.Errors = r.errs.Load()
	res.Reconnects = r.reconnects()
	seen := make([]string, 0, len(r.errSeen))
	for e := range r.errSeen {
		seen = append(seen, e)
	}
	sort.Strings(seen)
	for _, e := range seen {
		res.note("error seen: %s", e)
	}
}

// ---------------------------------------------------------------- connecting

// connectAll opens n connections with open, at most Dialers at once, spread
// over Ramp, and records how long it took. With tolerate, failed
// connections are counted as errors and the others kept; otherwise the
// first failure ends the phase with its error.
func (r *run) connectAll(ctx context.Context, n int, tolerate bool, open func(ctx context.Context, i int) error) (failed int, err error) {
	r.setPhase("connect", r.cfg.Ramp)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rec := NewRecorder(runtime.GOMAXPROCS(0))
	sem := make(chan struct{}, r.cfg.Dialers)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		nfail    int
	)
	start := time.Now()
	for i := 0; i < n && ctx.Err() == nil; i++ {
		if r.cfg.Ramp > 0 {
			if d := time.Until(start.Add(r.cfg.Ramp * time.Duration(i) / time.Duration(n))); d > 0 {
				sleepCtx(ctx, d)
			}
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			t0 := time.Now()
			octx, ocancel := context.WithTimeout(ctx, r.cfg.ConnectTimeout)
			err := open(octx, i)
			ocancel()
			if err == nil {
				rec.Record(i, time.Since(t0))
				r.conns.Add(1)
				return
			}
			mu.Lock()
			nfail++
			if firstErr == nil {
				firstErr = fmt.Errorf("bench: connection %d: %w", i, err)
			}
			mu.Unlock()
			if tolerate {
				r.fail(err)
			} else {
				cancel()
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	r.res.ConnectS = took.Seconds()
	if took > 0 {
		r.res.ConnectsPerSec = float64(n-nfail) / took.Seconds()
	}
	if r.connectHist == nil {
		r.connectHist = rec.Merged()
	} else {
		r.connectHist.Merge(rec.Merged())
	}
	if err := ctx.Err(); err != nil && firstErr == nil {
		firstErr = err
	}
	if firstErr != nil && (!tolerate || nfail == n) {
		return nfail, firstErr
	}
	return nfail, nil
}

// clientOpts are the options every scenario's clients share; slot, when
// not nil, receives the client's socket (see dialers.forConn).
func (r *run) clientOpts(i int, slot *atomic.Pointer[net.TCPConn], extra ...client.Option) []client.Option {
	opts := []client.Option{
		client.WithDialer(r.dial.forConn(i, slot)),
		client.WithCompression(r.cfg.Compression),
	}
	if r.cfg.Heartbeat > 0 {
		opts = append(opts, client.WithHeartbeat(r.cfg.Heartbeat))
	}
	if r.cfg.Backoff > 0 {
		opts = append(opts, client.WithBackoff(r.cfg.Backoff, 0))
	}
	return append(opts, extra...)
}

// dialClients connects n clients, client i with the options opts(i) adds
// to the common ones. On error the clients already up are closed.
func (r *run) dialClients(ctx context.Context, n int, opts func(i int) []client.Option) ([]*client.Client, error) {
	cls := make([]*client.Client, n)
	_, err := r.connectAll(ctx, n, false, func(ctx context.Context, i int) error {
		var extra []client.Option
		if opts != nil {
			extra = opts(i)
		}
		c, err := client.Dial(ctx, r.cfg.Addr, extra...)
		cls[i] = c
		return err
	})
	if err != nil {
		closeAll(cls)
		return nil, err
	}
	r.mu.Lock()
	r.clients = append(r.clients, cls...)
	r.mu.Unlock()
	return cls, nil
}

// closeAll closes every client, in parallel: a Close waits for the
// client's goroutines.
func closeAll(cls []*client.Client) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 256)
	for _, c := range cls {
		if c == nil {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() { defer func() { <-sem; wg.Done() }(); _ = c.Close() }()
	}
	wg.Wait()
}

// ---------------------------------------------------------------- pacing

// pacer paces one sender. Closed loop, wait returns at once with the
// current time. Open loop, it returns the sender's next intended send
// time, after sleeping until then if it lies ahead: a sender that fell
// behind sends at once, and the latency it measures from the intended time
// includes the delay (no coordinated omission).
type pacer struct {
	open  bool
	next  time.Time
	every time.Duration
	t     *time.Timer
}

// pacer returns the pacer of sender k of n, who share cfg.Rate (or rate
// when not 0), their phases spread evenly.
func (r *run) pacer(k, n int, rate float64) *pacer {
	if rate == 0 {
		rate = r.cfg.Rate
	}
	if rate <= 0 {
		return &pacer{}
	}
	every := time.Duration(float64(n) / rate * float64(time.Second))
	return &pacer{open: true, every: every, next: time.Now().Add(every * time.Duration(k) / time.Duration(n))}
}

func (p *pacer) wait(ctx context.Context) (time.Time, bool) {
	if ctx.Err() != nil {
		return time.Time{}, false
	}
	if !p.open {
		return time.Now(), true
	}
	at := p.next
	p.next = p.next.Add(p.every)
	if d := time.Until(at); d > 0 {
		if p.t == nil {
			p.t = time.NewTimer(d)
		} else {
			p.t.Reset(d)
		}
		select {
		case <-p.t.C:
		case <-ctx.Done():
			return time.Time{}, false
		}
	}
	return at, true
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// ---------------------------------------------------------------- payloads

// stampSize is the head of a timestamped payload: sequence number and send
// time (nanoseconds since the run's epoch), both big-endian u64.
const stampSize = 16

func putStamp(p []byte, seq uint64, at int64) {
	binary.BigEndian.PutUint64(p[0:8], seq)
	binary.BigEndian.PutUint64(p[8:16], uint64(at))
}

func readStamp(p []byte) (seq uint64, at int64, ok bool) {
	if len(p) < stampSize {
		return 0, 0, false
	}
	return binary.BigEndian.Uint64(p[0:8]), int64(binary.BigEndian.Uint64(p[8:16])), true
}

// payload returns size bytes of the configured fill.
func (r *run) payload(size int) []byte {
	p := make([]byte, size)
	switch r.cfg.Fill {
	case "random":
		rng := mrand.NewChaCha8([32]byte{'f', 'e', 'r', 'r', 'y'})
		_, _ = rng.Read(p)
	case "text":
		const text = "ferry-bench moves bytes over FERRY/1; "
		for i := range p {
			p[i] = text[i%len(text)]
		}
	}
	return p
}

// shards is how many histogram shards a scenario with n recording
// goroutines uses: enough that they rarely wait, few enough to stay small.
func shards(n int) int { return min(n, 4*runtime.GOMAXPROCS(0), 64) }

// isTransient reports errors that a sender waits out instead of spinning:
// the client is between connections or its queues are full.
func isTransient(err error) bool {
	return errors.Is(err, client.ErrNotConnected) || errors.Is(err, client.ErrQueueFull) ||
		errors.Is(err, client.ErrDisconnected)
}
