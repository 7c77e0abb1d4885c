package bench

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/ferry-proto/ferry/client"
	"github.com/ferry-proto/ferry/protocol"
)

func init() { scenarioFuncs["echo"] = runEcho }

// RouteEcho is the route ferryd answers with the request's payload.
const RouteEcho = 1

var errEchoMismatch = errors.New("bench: echo answered with a payload of another length")

// runEcho: Conns clients, Inflight workers each, request/response on
// route 1. Latency is the request's round trip. With Light, bare sockets
// instead (lightecho.go).
func runEcho(ctx context.Context, r *run) error {
	cfg := r.cfg
	r.res.Inflight, r.res.Light = cfg.Inflight, cfg.Light
	if cfg.Light {
		return runLightEcho(ctx, r)
	}
	cls, err := r.dialClients(ctx, cfg.Conns, func(i int) []client.Option { return r.clientOpts(i, nil) })
	if err != nil {
		return err
	}
	defer closeAll(cls)
	payload := r.payload(cfg.Size)
	workers := cfg.Conns * cfg.Inflight
	rec := NewRecorder(shards(workers))
	tctx, cancel := r.beginTraffic(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for w := range workers {
		c, p := cls[w%cfg.Conns], r.pacer(w, workers, 0)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				t0, ok := p.wait(tctx)
				if !ok {
					return
				}
				ok, stop := r.echoOnce(tctx, c, cfg.Lane, payload)
				if stop {
					return
				}
				if !ok {
					continue
				}
				rec.Record(w, time.Since(t0))
				r.done(1, len(payload))
			}
		}()
	}
	wg.Wait()
	r.endTraffic(ctx)
	r.res.Lane = int(cfg.Lane)
	r.res.addSeries("echo", rec.Merged(), r.window())
	return nil
}

// echoOnce makes one request on route 1 and checks the answer. ok: it
// succeeded; stop: the traffic window is over. A failure is counted, and
// after a transient one (no connection) the caller's next request waits a
// little, so a reconnect is not met by a spin.
func (r *run) echoOnce(ctx context.Context, c *client.Client, lane protocol.Lane, payload []byte) (ok, stop bool) {
	resp, err := c.Request(ctx, lane, RouteEcho, payload)
	switch {
	case ctx.Err() != nil:
		return false, true
	case err != nil:
		r.fail(err)
		if isTransient(err) {
			sleepCtx(ctx, 10*time.Millisecond)
		}
		return false, false
	case len(resp) != len(payload):
		r.fail(errEchoMismatch)
		return false, false
	}
	return true, false
}
