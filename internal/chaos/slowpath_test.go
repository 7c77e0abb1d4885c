package chaos

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-proto/ferry/client"
	"github.com/ferry-proto/ferry/codec"
	"github.com/ferry-proto/ferry/internal/wiretest"
	"github.com/ferry-proto/ferry/protocol"
	"github.com/ferry-proto/ferry/reactor"
)

var flagSlowPath = flag.Bool("chaos.slowpath", false, "also run TestSlowPath through the throttling weather epoch 398 had before minDelayedSlice (about a minute; shows the probes closing a slow path)")

// stalledSeed is the seed of a 1,000,000-message run that stalled at
// epoch 398: its weather, a slicer of one-byte slices with a 43 µs
// pause, carried about 1.3 KB/s upstream (see minDelayedSlice).
const stalledSeed = 1795447411417318643

// TestSlowPath sends what client 0 had to send in epoch 398 of the
// stalled run (83 small messages on each lane both ways, the 46th of lane
// 2 up 27,031 bytes long, so two fragments) through that epoch's weather
// as the schedule draws it now, with a restart of the proxy early on, and
// checks that everything settles soon and no connection is closed as dead.
func TestSlowPath(t *testing.T) {
	s := NewSchedule(stalledSeed)
	var e Epoch
	for range 399 {
		e = s.Next()
	}
	const want = "epoch 398: weather [slicer/upstream{average_size=1 delay=0 size_variation=1} bandwidth/downstream{rate=64}]"
	if !strings.HasPrefix(e.String(), want) {
		t.Fatalf("seed %d drew %v, want %s", stalledSeed, e, want)
	}
	r := runStalledEpoch(t, e.Weather, 50*time.Millisecond, 15*time.Second)
	t.Logf("%v: %s", e.Weather, r)
	if !r.settled || r.dials != 2 || strings.Contains(strings.Join(r.connLines, "\n"), "probes") {
		t.Errorf("not settled, or a connection other than the restarted one ended: %s", r)
	}

	if !*flagSlowPath {
		return
	}
	// The weather as it was drawn before: on a path this slow a fragment
	// holds the ACKs and PONGs behind it past the probe timeouts (SPEC
	// §12.6), so the connection is closed as dead; once a resume has to
	// replay the fragment (the restart after 2 s), every connection is
	// closed before the fragment is through, again and again.
	old := []Toxic{
		{Name: "slicer_upstream", Type: "slicer", Stream: "upstream", Attrs: map[string]int64{"average_size": 1, "delay": 43, "size_variation": 1}},
		{Name: "bandwidth_downstream", Type: "bandwidth", Stream: "downstream", Attrs: map[string]int64{"rate": 64}},
	}
	t.Logf("before minDelayedSlice, %v: %s", old, runStalledEpoch(t, old, 2*time.Second, 60*time.Second))
}

type slowPathResult struct {
	settled   bool
	elapsed   time.Duration
	stillFor  time.Duration // the longest stretch without progress
	dials     uint64
	closes    string
	status    string
	connLines []string // the client's connection events
}

func (r slowPathResult) String() string {
	head := fmt.Sprintf("settled %v after %v (longest stretch without progress %v); dials %d; server closes %s\n%s",
		r.settled, r.elapsed.Round(time.Millisecond), r.stillFor.Round(time.Millisecond), r.dials, r.closes, r.status)
	return strings.Join(append([]string{head}, r.connLines...), "\n")
}

// runStalledEpoch runs client 0's traffic of epoch 398 through weather
// and waits at most bound for it to settle. At restartAfter the proxy
// restarts into the same weather, so that the client resumes and replays
// what was in flight.
func runStalledEpoch(t *testing.T, weather []Toxic, restartAfter, bound time.Duration) slowPathResult {
	t.Helper()
	ck := NewChecker(1)
	h := &handler{ck: ck, names: map[string]int{clientName(0): 0}, notes: &notes{}, sessions: make([]atomic.Pointer[reactor.Session], 1)}
	srv, err := reactor.New(reactor.Config{Addr: "127.0.0.1:0", Handler: h, Sessions: reactor.SessionConfig{OfflineMaxCount: offlineCount}})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	px, err := NewProxy("127.0.0.1:0", srv.Addr(), weather)
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	dl := NewDialer(1)
	var logs wiretest.SyncBuffer
	start := time.Now()
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.String("t", time.Since(start).Round(time.Millisecond).String())
		}
		return a
	}}))
	ctx, cancel := context.WithTimeout(context.Background(), bound+20*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, px.Addr(), client.WithClientID(clientName(0)), client.WithLogger(logger),
		client.WithDialer(func(ctx context.Context, addr string) (net.Conn, error) { return dl.Dial(ctx, 0, addr) }),
		client.WithBackoff(2*time.Millisecond, 50*time.Millisecond),
		client.WithHandler(func(m *client.Message) error {
			ck.Deliver(0, Down, uint8(m.Lane), m.Payload)
			return nil
		}),
		client.WithGapReportHandler(func(g codec.GapReport) { ck.DropReported(0, Down, g.Lost()) }))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	const perLane = 83
	for i := range perLane {
		for lane := uint8(1); lane <= NumLanes; lane++ {
			pad := (i*37 + int(lane)*11) % 64
			if lane == 2 && i == 45 {
				pad = 27031 // message 33211 of lane 2, where the run stalled
			}
			m := ck.Next(0, Up, lane)
			for c.SendAsync(protocol.Lane(lane), route, Encode(nil, m, pad), nil) != nil {
				time.Sleep(time.Millisecond) // the pending store is full
			}
		}
	}
	s := h.session(ctx, 0)
	for i := range perLane {
		for lane := uint8(1); lane <= NumLanes; lane++ {
			m := ck.Next(0, Down, lane)
			f := codec.Frame{Type: protocol.FrameData, Flags: protocol.FlagReliable, Lane: protocol.Lane(lane), Route: route, Payload: Encode(nil, m, (i*13)%64)}
			if err := s.Send(&f); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := uint64(2 * NumLanes * perLane)
	var r slowPathResult
	last, lastAt := ck.Progress(), time.Now()
	restarted := false
	for {
		if !restarted && time.Since(start) >= restartAfter {
			restarted = true
			if err := px.Restart(weather, 0); err != nil {
				t.Fatal(err)
			}
		}
		p := ck.Progress()
		if p != last {
			last, lastAt = p, time.Now()
		}
		r.stillFor = max(r.stillFor, time.Since(lastAt))
		if p >= want || time.Since(start) > bound {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.settled, r.elapsed = ck.Progress() >= want, time.Since(start)
	r.dials, r.closes, r.status = dl.Dials()[0], h.closes(), ck.Status()
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "connect") || strings.Contains(l, "probe") || strings.Contains(l, "closed") {
			r.connLines = append(r.connLines, l)
		}
	}
	return r
}
