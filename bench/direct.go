package bench

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferry-proto/ferry/client"
)

func init() { scenarioFuncs["direct"] = runDirect }

// runDirect: Conns clients in pairs (0 and 1, 2 and 3, …), each sending
// DIRECT messages to its partner through the server, Inflight at a time.
// A Direct call returns with the server's delivery receipt; latency is one
// way, from the send to the partner's handler.
func runDirect(ctx context.Context, r *run) error {
	cfg := r.cfg
	rec := NewRecorder(shards(cfg.Conns))
	orders := make([]Order, cfg.Conns)
	var sent atomic.Int64
	cls, err := r.dialClients(ctx, cfg.Conns, func(i int) []client.Option {
		o := &orders[i]
		if cfg.Inflight > 1 {
			o = nil // several senders per peer may overtake each other: no order check
		}
		return r.clientOpts(i, nil, client.WithHandler(func(m *client.Message) error {
			r.received(m, rec, i, o)
			return nil
		}))
	})
	if err != nil {
		return err
	}
	defer closeAll(cls)
	peers := make([]string, len(cls))
	for i, c := range cls {
		peers[i^1] = c.ClientID()
	}
	workers := cfg.Conns * cfg.Inflight
	tctx, cancel := r.beginTraffic(ctx)
	defer cancel()
	var wg sync.WaitGroup
	seqs := make([]atomic.Uint64, cfg.Conns)
	for w := range workers {
		i := w % cfg.Conns
		c, peer, p := cls[i], peers[i], r.pacer(w, workers, 0)
		buf := r.payload(cfg.Size)
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
				// Not cut short by the window's end, so that every message
				// is counted sent or failed, and a loss cannot hide.
				dctx, dcancel := context.WithTimeout(ctx, time.Minute)
				err := c.Direct(dctx, peer, cfg.Lane, buf)
				dcancel()
				switch {
				case err == nil:
				case tctx.Err() != nil:
					return
				default:
					r.fail(err)
					if isTransient(err) {
						sleepCtx(tctx, 10*time.Millisecond)
					}
					continue
				}
				sent.Add(1)
			}
		}()
	}
	wg.Wait()
	r.endTraffic(ctx)
	// Direct returned once the server queued each message for its peer:
	// wait for those deliveries.
	last, lastAt := r.msgs.Load(), time.Now()
	for r.msgs.Load() < sent.Load() && time.Since(lastAt) < drainTimeout && ctx.Err() == nil {
		sleepCtx(ctx, 10*time.Millisecond)
		if m := r.msgs.Load(); m != last {
			last, lastAt = m, time.Now()
		}
	}
	closeAll(cls)
	var dups, reordered int64
	for _, o := range orders {
		dups += o.Dups
		reordered += o.Reordered
	}
	lost := max(sent.Load()-(r.msgs.Load()-dups), 0)
	r.res.Published, r.res.Lost, r.res.Duplicates = sent.Load(), &lost, &dups
	if cfg.Inflight == 1 {
		r.res.Reordered = &reordered
	}
	r.res.Lane = int(cfg.Lane)
	r.res.addSeries("direct", rec.Merged(), r.window())
	return nil
}
