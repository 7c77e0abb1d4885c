package bench

import (
	"context"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/ferry-proto/ferry/client"
)

func init() { scenarioFuncs["idle"] = runIdle }

// runIdle: open Conns connections (light ones, or clients with
// FullClients), then hold them for Duration. With an admin endpoint it
// measures the server's memory per connection: heap and stacks in use,
// each read after a forced GC, before the first connection and once the
// server counts all of them open. Without one, given ServerPID, it
// measures the growth of the server's resident memory instead. It measures
// this process's cost per connection the same way as the server's heap.
func runIdle(ctx context.Context, r *run) error {
	cfg := r.cfg
	var before Metrics
	if r.admin != nil {
		m, err := r.admin.Scrape(ctx, true)
		if err != nil {
			r.res.note("server memory not measured: %v", err)
			r.admin = nil
		} else {
			before = m
		}
	}
	rssBefore, rssOK := 0.0, false
	if r.admin == nil && cfg.ServerPID != 0 {
		v, err := procRSS(cfg.ServerPID)
		if err != nil {
			r.res.note("server resident memory not measured: %v", err)
		} else {
			rssBefore, rssOK = v, true
		}
	}
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	g0 := runtime.NumGoroutine()

	var (
		kp      keeper
		cls     []*client.Client
		lightMu sync.Mutex
		failed  int
		err     error
	)
	if cfg.FullClients {
		cls = make([]*client.Client, cfg.Conns)
		failed, err = r.connectAll(ctx, cfg.Conns, true, func(ctx context.Context, i int) error {
			c, err := client.Dial(ctx, cfg.Addr, r.clientOpts(i, nil, client.WithReconnect(false))...)
			cls[i] = c
			return err
		})
		defer closeAll(cls)
		r.mu.Lock()
		for _, c := range cls {
			if c != nil {
				r.clients = append(r.clients, c)
			}
		}
		r.mu.Unlock()
	} else {
		hello := appendHello(nil, cfg.Heartbeat, cfg.Compression)
		kp.conns = make([]*lightConn, 0, cfg.Conns)
		failed, err = r.connectAll(ctx, cfg.Conns, true, func(ctx context.Context, i int) error {
			lc, err := dialLight(ctx, r.dial.netDialer(i), cfg.Addr, hello)
			if err == nil {
				lightMu.Lock()
				kp.conns = append(kp.conns, lc)
				lightMu.Unlock()
			}
			return err
		})
		defer kp.closeAll()
	}
	if err != nil {
		return err
	}
	up := cfg.Conns - failed
	r.res.Connections = up
	if failed > 0 {
		r.res.note("%d of %d connections failed to open", failed, cfg.Conns)
	}

	if r.admin != nil {
		r.measureServer(ctx, before, up)
	} else if rssOK {
		r.measureRSS(ctx, rssBefore, up)
	}
	runtime.GC()
	runtime.ReadMemStats(&ms1)
	r.res.ClientBytesPerConn = (float64(ms1.HeapInuse+ms1.StackInuse) - float64(ms0.HeapInuse+ms0.StackInuse)) / float64(up)
	r.res.ClientGoroutinesPerConn = float64(runtime.NumGoroutine()-g0) / float64(up)

	// Hold.
	tctx, cancel := r.beginTraffic(ctx)
	defer cancel()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	if !cfg.FullClients {
		wg.Add(1)
		go func() { defer wg.Done(); kp.run(stop) }()
	}
	<-tctx.Done()
	close(stop)
	wg.Wait()
	var dropped int64
	if cfg.FullClients {
		for _, c := range cls {
			if c != nil && c.State() != client.StateConnected {
				dropped++
			}
		}
	} else {
		kp.sweepAll(time.Now())
		dropped = kp.dead
		for _, e := range sortedKeys(kp.errs) {
			r.res.note("%d connections ended: %s", kp.errs[e], e)
		}
	}
	r.endTraffic(ctx)
	r.res.Dropped = &dropped
	r.res.addSeries("connect", r.connectHist, 0)
	return nil
}

// measureServer waits until the server counts the new connections open
// (at most 10 s), then reads its memory after a GC and sets the per
// connection figures.
func (r *run) measureServer(ctx context.Context, before Metrics, up int) {
	want := before[mConnsOpen] + float64(up)
	var after Metrics
	var err error
	for start := time.Now(); ; {
		after, err = r.admin.Scrape(ctx, false)
		if err != nil || after[mConnsOpen] >= want || time.Since(start) > 10*time.Second {
			break
		}
		sleepCtx(ctx, 100*time.Millisecond)
	}
	if err == nil {
		after, err = r.admin.Scrape(ctx, true)
	}
	if err != nil {
		r.res.note("server memory not measured: %v", err)
		return
	}
	if got := after[mConnsOpen] - before[mConnsOpen]; got < 0.99*float64(up) {
		r.res.note("the admin endpoint counts %.0f new connections, not %d: is --admin the server of --addr?", got, up)
	}
	r.res.BytesPerConn = (after.memory() - before.memory()) / float64(up)
	r.res.BytesPerConnFrom = "heap+stack"
	// Resident memory is not given back promptly: on a server that held
	// more before, the new connections fit in what it kept.
	if rss := after[mRSS] - before[mRSS]; rss > 0 {
		r.res.ServerRSSPerConn = rss / float64(up)
	} else {
		r.res.note("the server's resident memory did not grow (it reuses memory it kept from earlier connections): RSS per connection needs a fresh server")
	}
}

// measureRSS sets the per connection figures from the growth of the
// server's resident memory since before, once it has settled: the server
// may still be setting up the last connections (their first PING) when
// the handshakes are done. It reads /proc/PID/status every 100 ms until
// two readings agree, for at most 2 s.
func (r *run) measureRSS(ctx context.Context, before float64, up int) {
	after, err := procRSS(r.cfg.ServerPID)
	for i := 0; err == nil && i < 20 && sleepCtx(ctx, 100*time.Millisecond); i++ {
		var v float64
		if v, err = procRSS(r.cfg.ServerPID); err != nil || v == after {
			break
		}
		after = v
	}
	switch {
	case err != nil:
		r.res.note("server resident memory not measured: %v", err)
	case after <= before:
		r.res.note("the server's resident memory did not grow (it reuses memory it kept from earlier connections): RSS per connection needs a fresh server")
	default:
		r.res.BytesPerConn = (after - before) / float64(up)
		r.res.ServerRSSPerConn = r.res.BytesPerConn
		r.res.BytesPerConnFrom = "rss"
	}
}

// sortedKeys is for stable notes.
func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
