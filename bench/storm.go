package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferry-proto/ferry/client"
)

func init() { scenarioFuncs["reconnect-storm"] = runStorm }

// runStorm: Conns clients send reliable, numbered messages (closed loop,
// Inflight at a time per client; or their share of Rate): by default DIRECT
// messages to a partner (0 and 1, 2 and 3, …; an odd last client to
// itself), which the server delivers through the partner's session (SPEC
// §6.3, §12.9); with StormVia "publish", reliable PUBLISHes to a topic of
// the client's own that it subscribes to. DropAfter into the window every
// socket is reset at once (SO_LINGER 0: the server sees an RST), through
// the sockets the clients' dial hook recorded. The clients reconnect after
// their backoff and resume their sessions; the run reports how long until
// the last one was back and, once every message sent was accounted for,
// whether any was lost, duplicated or reordered.
func runStorm(ctx context.Context, r *run) error {
	cfg := r.cfg
	n := cfg.Conns
	ids, topics, peers := make([]string, n), make([]string, n), make([]string, n)
	for i := range n {
		ids[i] = fmt.Sprintf("bench-%s-%d", r.id, i)
		topics[i] = fmt.Sprintf("bench/%s/storm/%d", r.id, i)
	}
	for i := range n {
		p := i ^ 1
		if p >= n {
			p = i // an odd last client sends to itself
		}
		peers[i] = ids[p]
	}
	socks := make([]atomic.Pointer[net.TCPConn], n)
	orders := make([]Order, n)
	back := make([]bool, n) // owned by client i's callback goroutine
	delivery, resume := NewRecorder(shards(n)), NewRecorder(shards(n))
	var dropAt, lastBack, resumed atomic.Int64
	seqs := make([]atomic.Uint64, n)
	recv := func(i int) client.Handler {
		o := &orders[i]
		return func(m *client.Message) error {
			r.received(m, delivery, i, o)
			return nil
		}
	}
	onState := func(i int) func(client.Event) {
		return func(ev client.Event) {
			at := dropAt.Load()
			if at == 0 || back[i] || (ev.Kind != client.EventResumed && ev.Kind != client.EventNewSession) {
				return
			}
			back[i] = true
			now := r.now()
			resume.Record(i, time.Duration(now-at))
			resumed.Add(1)
			for {
				l := lastBack.Load()
				if now <= l || lastBack.CompareAndSwap(l, now) {
					break
				}
			}
		}
	}
	cls, err := r.dialClients(ctx, n, func(i int) []client.Option {
		return r.clientOpts(i, &socks[i],
			client.WithClientID(ids[i]),
			client.WithMaxPending(cfg.Window, 0),
			client.WithHandler(recv(i)),
			client.WithStateHandler(onState(i)))
	})
	if err != nil {
		return err
	}
	defer closeAll(cls)
	if cfg.StormVia == "publish" {
		if err := subscribeAll(ctx, r, cls, func(i int) string { return topics[i] }, recv); err != nil {
			return err
		}
	}

	sent := make([]atomic.Int64, n) // by sender i
	tctx, cancel := r.beginTraffic(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for w := range n * cfg.Inflight {
		i := w % n
		c, p, buf := cls[i], r.pacer(w, n*cfg.Inflight, 0), r.payload(cfg.Size)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				t0, ok := p.wait(tctx)
				if !ok {
					return
				}
				stamp := r.now()
				if p.open {
					stamp = int64(t0.Sub(r.epoch))
				}
				putStamp(buf, seqs[i].Add(1), stamp)
				for {
					var err error
					if cfg.StormVia == "publish" {
						err = c.Publish(cfg.Lane, topics[i], buf, true)
					} else {
						// Not cut short by the window's end: every message
						// sent is either counted or failed.
						dctx, dcancel := context.WithTimeout(ctx, time.Minute)
						err = c.Direct(dctx, peers[i], cfg.Lane, buf)
						dcancel()
						if errors.Is(err, client.ErrNoReceipt) {
							err = nil // the server has it; the receipt was lost with the connection
						}
					}
					if err == nil {
						sent[i].Add(1)
						break
					}
					if tctx.Err() != nil {
						return
					}
					if !isTransient(err) {
						r.fail(err)
						break
					}
					sleepCtx(tctx, time.Millisecond)
				}
			}
		}()
	}
	var dropped int
	if sleepCtx(tctx, cfg.DropAfter) {
		dropAt.Store(r.now())
		for i := range socks {
			if tc := socks[i].Load(); tc != nil {
				_ = tc.SetLinger(0)
				if tc.Close() == nil {
					dropped++
				}
			}
		}
	}
	wg.Wait()
	r.endTraffic(ctx)

	// Drain: every reliable message acknowledged by the server, then every
	// delivery in.
	var total int64
	for i := range sent {
		total += sent[i].Load()
	}
	var fw sync.WaitGroup
	for _, c := range cls {
		fw.Add(1)
		go func() {
			defer fw.Done()
			fctx, fcancel := context.WithTimeout(ctx, 10*time.Second)
			defer fcancel()
			if err := c.Flush(fctx); err != nil {
				r.fail(fmt.Errorf("flush: %w", err))
			}
		}()
	}
	fw.Wait()
	last, lastAt := r.msgs.Load(), time.Now()
	for r.msgs.Load() < total && time.Since(lastAt) < drainTimeout && ctx.Err() == nil {
		sleepCtx(ctx, 10*time.Millisecond)
		if m := r.msgs.Load(); m != last {
			last, lastAt = m, time.Now()
		}
	}
	closeAll(cls)

	var dups, reordered, skips, statLost int64
	var newSessions int64
	for i, o := range orders {
		dups += o.Dups
		reordered += o.Reordered
		skips += o.Skips
		st := cls[i].Stats()
		newSessions += int64(st.NewSessions)
		statLost += int64(st.Lost)
	}
	lost := max(total-(r.msgs.Load()-dups), 0)
	nres := resumed.Load() - newSessions
	r.res.Published, r.res.Lost, r.res.Duplicates = total, &lost, &dups
	if cfg.Inflight == 1 {
		// With several senders per client, messages overtake each other
		// before they are numbered on the wire: order is not checked.
		r.res.Reordered = &reordered
		if skips > 0 {
			r.res.note("%d messages missing between others that arrived", skips)
		}
	}
	r.res.Resumed, r.res.NewSessions = &nres, &newSessions
	r.res.Lane = int(cfg.Lane)
	if at := dropAt.Load(); at != 0 && resumed.Load() > 0 {
		r.res.ResumeAllMs = float64(lastBack.Load()-at) / 1e6
	}
	if dropped < n && dropAt.Load() != 0 {
		r.res.note("only %d of %d sockets were open to reset", dropped, n)
	}
	if back := resumed.Load(); dropAt.Load() != 0 && back < int64(dropped) {
		r.res.note("%d of %d clients were not back by the end of the run", int64(dropped)-back, dropped)
	}
	if statLost > 0 {
		r.res.note("the clients report %d reliable messages lost with their sessions", statLost)
	}
	r.res.addSeries("delivery", delivery.Merged(), r.window())
	r.res.addSeries("resume", resume.Merged(), 0)
	return nil
}
