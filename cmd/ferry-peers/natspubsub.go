package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/nats-io/nats.go"

	"github.com/ferry-proto/ferry/bench"
)

// natsConfig is one nats-pubsub run: ferry-bench's pubsub scenario, with
// the same meaning for every field, against a NATS server.
type natsConfig struct {
	URL      string
	Conns    int // subscribers; the publisher is one more connection
	Duration time.Duration
	Size     int // payload bytes, at least stampSize
	Window   int // messages published and not yet delivered to every subscriber
	Subject  string
}

// The measurement is ferry-bench's (bench/pubsub.go, bench/recorder.go),
// kept in step by hand: a stamp of sequence number and send time at the
// head of each payload, a histogram of 1 µs to 1 h at three significant
// digits, a publish window, the same stall and drain bounds.
const (
	stampSize    = 16
	histMin      = int64(time.Microsecond)
	histMax      = int64(time.Hour)
	histSigFigs  = 3
	stallTimeout = 2 * time.Second
	drainTimeout = 2 * time.Second
)

// natsSub is one subscriber's state. nats.go runs a subscription's handler
// on one goroutine of its own; mu guards the histogram and the order
// counts for the final read.
type natsSub struct {
	mu   sync.Mutex
	hist *hdrhistogram.Histogram
	bench.Order
}

// psSlot is one message of the publish window.
type psSlot struct {
	seq       atomic.Uint64
	remaining atomic.Int64
}

// runNATSPubSub is ferry-bench's pubsub against a NATS server through
// nats.go: Conns subscriber connections and one publisher connection, a
// closed loop that keeps at most Window messages not yet delivered to every
// subscriber, latency per delivery from the stamp in the payload, and
// msgs_per_sec counting deliveries within Duration.
func runNATSPubSub(ctx context.Context, cfg natsConfig) (*bench.Result, error) {
	if cfg.Conns < 1 || cfg.Window < 1 || cfg.Duration <= 0 {
		return nil, errors.New("nats-pubsub: --conns and --window must be at least 1, --duration positive")
	}
	cfg.Size = max(cfg.Size, stampSize)
	epoch := time.Now()
	now := func() int64 { return int64(time.Since(epoch)) }

	var msgs, errs atomic.Int64
	ring := make([]psSlot, cfg.Window)
	freed := make(chan struct{}, 1)
	subs := make([]*natsSub, cfg.Conns)
	opts := []nats.Option{
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) { errs.Add(1) }),
		nats.Timeout(10 * time.Second),
	}
	var conns []*nats.Conn
	defer func() {
		for _, nc := range conns {
			nc.Close()
		}
	}()

	connectStart := time.Now()
	for i := range subs {
		s := &natsSub{hist: hdrhistogram.New(histMin, histMax, histSigFigs)}
		subs[i] = s
		nc, err := nats.Connect(cfg.URL, append(opts, nats.Name(fmt.Sprintf("ferry-peers-sub-%d", i)))...)
		if err != nil {
			return nil, fmt.Errorf("nats-pubsub: subscriber %d: %w", i, err)
		}
		conns = append(conns, nc)
		sub, err := nc.Subscribe(cfg.Subject, func(m *nats.Msg) {
			at := now()
			if len(m.Data) < stampSize {
				errs.Add(1)
				return
			}
			seq := binary.BigEndian.Uint64(m.Data[0:8])
			sent := int64(binary.BigEndian.Uint64(m.Data[8:16]))
			s.mu.Lock()
			_ = s.hist.RecordValue(min(max(at-sent, histMin), histMax))
			s.See(seq)
			s.mu.Unlock()
			msgs.Add(1)
			sl := &ring[seq%uint64(len(ring))]
			if sl.seq.Load() == seq && sl.remaining.Add(-1) == 0 {
				select {
				case freed <- struct{}{}:
				default:
				}
			}
		})
		if err != nil {
			return nil, fmt.Errorf("nats-pubsub: subscribe: %w", err)
		}
		// The window bounds what is pending; no client-side limit on top,
		// as ferry's client stops reading instead of dropping.
		if err := sub.SetPendingLimits(-1, -1); err != nil {
			return nil, err
		}
		// The server has the subscription once it answered this PING.
		if err := nc.Flush(); err != nil {
			return nil, fmt.Errorf("nats-pubsub: subscriber %d: %w", i, err)
		}
	}
	pub, err := nats.Connect(cfg.URL, append(opts, nats.Name("ferry-peers-pub"))...)
	if err != nil {
		return nil, fmt.Errorf("nats-pubsub: publisher: %w", err)
	}
	conns = append(conns, pub)
	connectS := time.Since(connectStart).Seconds()

	buf := make([]byte, cfg.Size)
	cpu0 := cpuTime()
	tctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	poll := time.NewTimer(time.Hour)
	defer poll.Stop()
	tStart := time.Now()
	var published int64
	var seq uint64
publishing:
	for tctx.Err() == nil {
		seq++
		sl := &ring[seq%uint64(len(ring))]
		// Wait for the slot's previous message to reach every subscriber,
		// as ferry-bench does.
		if !bench.AwaitSlot(tctx, &sl.remaining, freed, poll, stallTimeout) {
			break publishing
		}
		sl.seq.Store(0)
		sl.remaining.Store(int64(cfg.Conns))
		sl.seq.Store(seq)
		binary.BigEndian.PutUint64(buf[0:8], seq)
		binary.BigEndian.PutUint64(buf[8:16], uint64(now()))
		if err := pub.Publish(cfg.Subject, buf); err != nil {
			errs.Add(1)
			sl.seq.Store(0)
			seq--
			if pub.IsClosed() {
				break
			}
			continue
		}
		published++
	}
	window := time.Since(tStart)
	msgsEnd := msgs.Load()
	clientCPU := (cpuTime() - cpu0).Seconds()
	_ = pub.Flush()

	// Drain: wait for the deliveries still under way, as ferry-bench does.
	want := published * int64(cfg.Conns)
	last, lastAt := msgs.Load(), time.Now()
	for msgs.Load() < want && time.Since(lastAt) < drainTimeout && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
		if m := msgs.Load(); m != last {
			last, lastAt = m, time.Now()
		}
	}
	var reconnects uint64
	for _, nc := range conns {
		reconnects += nc.Stats().Reconnects
		nc.Close()
	}
	conns = nil

	merged := hdrhistogram.New(histMin, histMax, histSigFigs)
	var dups, reordered int64
	for _, s := range subs {
		s.mu.Lock()
		merged.Merge(s.hist)
		dups += s.Dups
		reordered += s.Reordered
		s.mu.Unlock()
	}
	lost := max(want-(msgs.Load()-dups), 0)
	res := &bench.Result{
		Scenario: "pubsub", Addr: cfg.URL, Connections: cfg.Conns + 1, DurationS: window.Seconds(),
		Size: cfg.Size, Loop: "closed",
		Msgs: msgsEnd, MsgsPerSec: float64(msgsEnd) / window.Seconds(),
		MBPerSec: float64(msgsEnd) * float64(cfg.Size) / window.Seconds() / 1e6,
		Errors:   errs.Load(), Reconnects: int64(reconnects),
		ConnectS: connectS, ConnectsPerSec: float64(cfg.Conns+1) / connectS,
		ClientCPUS: clientCPU,
		Published:  published, Lost: &lost, Duplicates: &dups, Reordered: &reordered,
	}
	p := bench.PercentilesOf(merged)
	res.Percentiles = p
	res.Series = []bench.Series{{Name: "delivery", PerSec: float64(p.Count) / window.Seconds(), Percentiles: p}}
	if lost > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("%d deliveries missing", lost))
	}
	return res, nil
}

// cpuTime is this process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func writeJSON(w io.Writer, r *bench.Result) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
