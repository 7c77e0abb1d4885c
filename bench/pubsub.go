package bench

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferry-proto/ferry/client"
)

func init() {
	scenarioFuncs["pubsub"] = func(ctx context.Context, r *run) error { return runPubSub(ctx, r, false) }
	scenarioFuncs["fanout"] = func(ctx context.Context, r *run) error { return runPubSub(ctx, r, true) }
}

var errShortPayload = errors.New("bench: a message arrived without its timestamp")

const (
	// stallTimeout is how long the publisher waits for the slowest
	// subscriber before it counts a message's missing deliveries as lost
	// and reuses its window slot.
	stallTimeout = 2 * time.Second
	// drainTimeout bounds the wait for the last deliveries after the
	// traffic window, once they stop coming.
	drainTimeout = 2 * time.Second
)

// psSlot tracks one message of the publish window: how many subscribers
// still have to receive it and when it was sent.
type psSlot struct {
	seq       atomic.Uint64
	remaining atomic.Int64
	sent      atomic.Int64 // stamp, nanoseconds since the run's epoch
}

// AwaitSlot waits while remaining, the subscribers a slot's previous
// message has yet to reach, is above zero (a receiver that brings a slot
// to zero signals freed), for at most stall: a subscriber that lost the
// message must not stop the publisher. It reads the clock only when it has
// to wait, and reports false when ctx ended. The nats-pubsub peer
// (cmd/ferry-peers) paces its publisher with it too.
func AwaitSlot(ctx context.Context, remaining *atomic.Int64, freed <-chan struct{}, poll *time.Timer, stall time.Duration) bool {
	if remaining.Load() <= 0 {
		return true
	}
	giveUp := time.Now().Add(stall)
	for remaining.Load() > 0 && time.Now().Before(giveUp) {
		poll.Reset(5 * time.Millisecond)
		select {
		case <-freed:
		case <-poll.C:
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// Order checks the sequence numbers (from 1, rising by 1) one receiver
// sees: a repeat of the last is a duplicate, one below it out of order,
// and a jump above it skips the numbers between. Owned by the receiver's
// goroutine; read after it stopped. The nats-pubsub peer (cmd/ferry-peers)
// counts with it too.
type Order struct {
	last                   uint64
	Dups, Reordered, Skips int64
}

// See counts seq.
func (o *Order) See(seq uint64) {
	switch {
	case seq == o.last:
		o.Dups++
	case seq < o.last:
		o.Reordered++
	default:
		o.Skips += int64(seq - o.last - 1)
		o.last = seq
	}
}

// runPubSub: one publisher, Conns subscribers of one topic. The publisher
// keeps at most Window messages not yet delivered to every subscriber.
// pubsub's main latency is per delivery (publish to one subscriber's
// handler); fanout's is per message, until the last subscriber has it.
func runPubSub(ctx context.Context, r *run, fanout bool) error {
	cfg := r.cfg
	nsub := cfg.Conns
	r.target.Store(int64(nsub + 1))
	topic := "bench/" + r.id + "/pubsub"
	ring := make([]psSlot, cfg.Window)
	freed := make(chan struct{}, 1)
	perDelivery, complete := NewRecorder(shards(nsub)), NewRecorder(shards(nsub))
	subs := make([]Order, nsub)
	handler := func(i int) client.Handler {
		o := &subs[i]
		return func(m *client.Message) error {
			now, seq, ok := r.received(m, perDelivery, i, o)
			if !ok {
				return nil
			}
			sl := &ring[seq%uint64(len(ring))]
			if sl.seq.Load() == seq && sl.remaining.Add(-1) == 0 {
				if fanout { // pubsub reports only per delivery
					complete.Record(i, time.Duration(now-sl.sent.Load()))
				}
				select {
				case freed <- struct{}{}:
				default:
				}
			}
			return nil
		}
	}

	cls, err := r.dialClients(ctx, nsub+1, func(i int) []client.Option { return r.clientOpts(i, nil) })
	if err != nil {
		return err
	}
	defer closeAll(cls)
	if err := subscribeAll(ctx, r, cls[:nsub], func(int) string { return topic }, handler); err != nil {
		return err
	}

	pub := cls[nsub]
	buf := r.payload(cfg.Size)
	var published int64
	tctx, cancel := r.beginTraffic(ctx)
	defer cancel()
	poll := time.NewTimer(time.Hour)
	defer poll.Stop()
	p := r.pacer(0, 1, 0)
	var seq uint64
publishing:
	for {
		var t0 time.Time
		if p.open {
			var ok bool
			if t0, ok = p.wait(tctx); !ok {
				break
			}
		} else if tctx.Err() != nil {
			break // closed loop: no clock read per message for a pacer
		}
		seq++
		sl := &ring[seq%uint64(len(ring))]
		if !AwaitSlot(tctx, &sl.remaining, freed, poll, stallTimeout) {
			break publishing
		}
		stamp := r.now()
		if p.open {
			stamp = int64(t0.Sub(r.epoch))
		}
		sl.seq.Store(0)
		sl.remaining.Store(int64(nsub))
		sl.sent.Store(stamp)
		sl.seq.Store(seq)
		putStamp(buf, seq, stamp)
		for {
			err := pub.Publish(cfg.Lane, topic, buf, cfg.Reliable)
			if err == nil {
				published++
				break
			}
			if tctx.Err() != nil {
				sl.seq.Store(0)
				break publishing
			}
			if !isTransient(err) {
				r.fail(err)
				sl.seq.Store(0)
				seq-- // the next message takes its number: no gap
				break
			}
			sleepCtx(tctx, time.Millisecond)
		}
	}
	r.endTraffic(ctx)

	// Drain: wait for the deliveries still under way.
	want := published * int64(nsub)
	last, lastAt := r.msgs.Load(), time.Now()
	for r.msgs.Load() < want && time.Since(lastAt) < drainTimeout && ctx.Err() == nil {
		sleepCtx(ctx, 10*time.Millisecond)
		if m := r.msgs.Load(); m != last {
			last, lastAt = m, time.Now()
		}
	}
	closeAll(cls) // the handlers are done: subs may be read
	var dups, reordered int64
	for _, o := range subs {
		dups += o.Dups
		reordered += o.Reordered
	}
	lost := max(want-(r.msgs.Load()-dups), 0)
	r.res.Connections = nsub + 1
	r.res.Published, r.res.Lost, r.res.Duplicates, r.res.Reordered = published, &lost, &dups, &reordered
	r.res.Lane = int(cfg.Lane)
	if fanout {
		r.res.addSeries("all delivered", complete.Merged(), r.window())
	}
	r.res.addSeries("delivery", perDelivery.Merged(), r.window())
	if lost > 0 && !cfg.Reliable {
		r.res.note("%d deliveries missing: unreliable messages the server dropped (see its ferry_drops_total)", lost)
	}
	return nil
}

// subscribeAll subscribes client i to pattern(i) with handler(i), at most
// Dialers at a time.
func subscribeAll(ctx context.Context, r *run, cls []*client.Client, pattern func(i int) string, handler func(i int) client.Handler) error {
	sem := make(chan struct{}, r.cfg.Dialers)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for i, c := range cls {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			sctx, cancel := context.WithTimeout(ctx, r.cfg.ConnectTimeout)
			defer cancel()
			if err := c.Subscribe(sctx, pattern(i), handler(i)); err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return firstErr
}

// received handles a stamped message that arrived for receiver i: it
// records its latency from the stamp in rec, counts it and, if o is not
// nil, checks its order. It returns the arrival time and the message's
// sequence number; ok is false for a message without a stamp (counted as
// an error).
func (r *run) received(m *client.Message, rec *Recorder, i int, o *Order) (now int64, seq uint64, ok bool) {
	now = r.now()
	seq, at, ok := readStamp(m.Payload)
	if !ok {
		r.fail(errShortPayload)
		return now, 0, false
	}
	rec.Record(i, time.Duration(now-at))
	r.done(1, len(m.Payload))
	if o != nil {
		o.See(seq)
	}
	return now, seq, true
}
