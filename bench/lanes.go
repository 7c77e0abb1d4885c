package bench

import (
	"context"
	"sync"
	"time"

	"github.com/ferry-proto/ferry/client"
	"github.com/ferry-proto/ferry/protocol"
)

func init() { scenarioFuncs["lanes"] = runLanes }

// pingSize is the payload of the lane-1 pings of the lanes scenario.
const pingSize = 16

// runLanes: on each of Conns clients, Inflight bulk requests of Size bytes
// at a time on lane 3 (echoed, so bulk flows both ways) and PingRate
// 16-byte requests per second on lane 1, paced (latency from the intended
// send time). For the first fifth of the window (at most 2 s) the pings run
// alone, as a baseline: SPEC §8 promises that lane 1 does not wait behind
// lane 3, and the two lane-1 series show whether it does.
func runLanes(ctx context.Context, r *run) error {
	cfg := r.cfg
	cls, err := r.dialClients(ctx, cfg.Conns, func(i int) []client.Option { return r.clientOpts(i, nil) })
	if err != nil {
		return err
	}
	defer closeAll(cls)
	bulk, ping := r.payload(cfg.Size), r.payload(pingSize)
	recAlone, recBusy, recBulk := NewRecorder(shards(cfg.Conns)), NewRecorder(shards(cfg.Conns)), NewRecorder(shards(cfg.Conns*cfg.Inflight))
	baseline := min(cfg.Duration/5, 2*time.Second)
	tctx, cancel := r.beginTraffic(ctx)
	defer cancel()
	bulkStart := time.Now().Add(baseline)
	var wg sync.WaitGroup
	for i, c := range cls {
		p := r.pacer(0, 1, cfg.PingRate)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				t0, ok := p.wait(tctx)
				if !ok {
					return
				}
				ok, stop := r.echoOnce(tctx, c, protocol.LaneInteractive, ping)
				if stop {
					return
				}
				if !ok {
					continue
				}
				if t0.Before(bulkStart) {
					recAlone.Record(i, time.Since(t0))
				} else {
					recBusy.Record(i, time.Since(t0))
				}
				r.done(1, len(ping))
			}
		}()
		for k := range cfg.Inflight {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if !sleepCtx(tctx, time.Until(bulkStart)) {
					return
				}
				for tctx.Err() == nil {
					t0 := time.Now()
					ok, stop := r.echoOnce(tctx, c, protocol.LaneBulk, bulk)
					if stop {
						return
					}
					if !ok {
						continue
					}
					recBulk.Record(i*cfg.Inflight+k, time.Since(t0))
					r.done(1, len(bulk))
				}
			}()
		}
	}
	wg.Wait()
	r.endTraffic(ctx)
	r.res.Lane = int(protocol.LaneInteractive)
	busy := r.window() - baseline
	r.res.addSeries("lane 1, with bulk", recBusy.Merged(), busy)
	r.res.addSeries("lane 3 bulk", recBulk.Merged(), busy)
	r.res.addSeries("lane 1 alone", recAlone.Merged(), baseline)
	return nil
}
