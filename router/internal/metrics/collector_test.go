package metrics

import (
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ferry-proto/ferry/protocol"
	"github.com/ferry-proto/ferry/reactor"
)

// newRegistry registers a collector of srv in a pedantic registry, which
// also checks that every collected metric matches a described Desc.
func newRegistry(t *testing.T, srv *reactor.Server) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(NewCollector(srv)); err != nil {
		t.Fatal(err)
	}
	return reg
}

func TestCollectorAfterHandshake(t *testing.T) {
	srv := startServer(t)
	handshake(t, srv)
	reg := newRegistry(t, srv)

	const want = `
# HELP ferry_connections_open Connections now open: accepted and not yet closed, handshake done or not.
# TYPE ferry_connections_open gauge
ferry_connections_open 1
# HELP ferry_connections_accepted_total TCP connections accepted by the server.
# TYPE ferry_connections_accepted_total counter
ferry_connections_accepted_total 1
# HELP ferry_handshakes_total Handshakes completed: HELLO accepted and WELCOME sent.
# TYPE ferry_handshakes_total counter
ferry_handshakes_total 1
# HELP ferry_frames_in_total Frames received, by frame type (frames inside a BATCH count one by one).
# TYPE ferry_frames_in_total counter
ferry_frames_in_total{type="HELLO"} 1
# HELP ferry_drops_total Outbound messages not delivered, by reason.
# TYPE ferry_drops_total counter
ferry_drops_total{reason="closed"} 0
ferry_drops_total{reason="expired"} 0
ferry_drops_total{reason="offline_full"} 0
ferry_drops_total{reason="queue_full"} 0
ferry_drops_total{reason="session_expired"} 0
ferry_drops_total{reason="slow_consumer"} 0
`
	err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"ferry_connections_open", "ferry_connections_accepted_total", "ferry_handshakes_total",
		"ferry_frames_in_total", "ferry_drops_total")
	if err != nil {
		t.Fatal(err)
	}

	if v, ok := value(t, reg, "ferry_frames_out_total", "type", "WELCOME"); !ok || v != 1 {
		t.Errorf(`ferry_frames_out_total{type="WELCOME"} = %v (exported %v), want 1`, v, ok)
	}
	if v, _ := value(t, reg, "ferry_bytes_in_total", "", ""); v == 0 {
		t.Error("ferry_bytes_in_total = 0 after a HELLO")
	}
	if v, _ := value(t, reg, "ferry_bytes_out_total", "", ""); v == 0 {
		t.Error("ferry_bytes_out_total = 0 after a WELCOME")
	}
	// Every drop reason is exported, zero or not, so dashboards see 0.
	if n, err := testutil.GatherAndCount(reg, "ferry_drops_total"); err != nil || n != len(reactor.DropReasons()) {
		t.Errorf("ferry_drops_total has %d series (%v), want %d", n, err, len(reactor.DropReasons()))
	}
	// Every lane likewise, labelled with protocol.Lane.String().
	for _, name := range []string{"ferry_messages_in_total", "ferry_messages_out_total", "ferry_queued_bytes"} {
		for l := range protocol.NumLanes {
			if _, ok := value(t, reg, name, "lane", protocol.Lane(l).String()); !ok {
				t.Errorf("%s{lane=%q} not exported", name, protocol.Lane(l).String())
			}
		}
	}
	// Frame types and close codes not seen are not exported.
	if n, err := testutil.GatherAndCount(reg, "ferry_frames_in_total"); err != nil || n != 1 {
		t.Errorf("ferry_frames_in_total has %d series (%v), want 1 (HELLO only)", n, err)
	}
	if n, err := testutil.GatherAndCount(reg, "ferry_closes_total"); err != nil || n != 0 {
		t.Errorf("ferry_closes_total has %d series (%v) before any close, want 0", n, err)
	}
}

// TestCollectorNames pins the exported metric families: a rename breaks
// dashboards and alerts, so it must be deliberate.
func TestCollectorNames(t *testing.T) {
	srv := startServer(t)
	nc := handshake(t, srv)
	_ = nc.Close()
	reg := newRegistry(t, srv)
	waitFor(t, "the close to be counted", func() bool {
		v, ok := value(t, reg, "ferry_closes_total", "code", protocol.CodeOK.String())
		return ok && v == 1
	})

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, mf := range mfs {
		got = append(got, mf.GetName())
	}
	want := []string{
		"ferry_acks_rejected_total", "ferry_bytes_in_total", "ferry_bytes_out_total", "ferry_closes_total",
		"ferry_confirm_timeouts_total", "ferry_confirmed_total",
		"ferry_connections_accepted_total", "ferry_connections_open", "ferry_connections_refused_total",
		"ferry_dead_lettered_total", "ferry_drops_total", "ferry_duplicate_keys_total", "ferry_duplicates_in_total", "ferry_expired_in_total",
		"ferry_frames_in_total", "ferry_frames_out_total", "ferry_handshakes_total",
		"ferry_messages_in_total", "ferry_messages_out_total", "ferry_ping_warnings_total", "ferry_probes_total",
		"ferry_queued_bytes", "ferry_redelivered_total", "ferry_rejected_total", "ferry_reliable_in_total",
		"ferry_reliable_out_total", "ferry_replayed_total", "ferry_resumes_failed_total", "ferry_resumes_total", "ferry_rtt_seconds",
		"ferry_session_takeovers_total", "ferry_sessions", "ferry_sessions_expired_total", "ferry_wakeups_total",
	}
	if !slices.Equal(got, want) {
		t.Errorf("metric families:\n got %q\nwant %q", got, want)
	}
	if n := testutil.CollectAndCount(NewCollector(srv)); n == 0 {
		t.Error("CollectAndCount = 0")
	}
}

// TestCollectorClose checks that a closed connection leaves the gauge and
// shows in closes_total under the code it closed with: a client that just
// hangs up closes with OK.
func TestCollectorClose(t *testing.T) {
	srv := startServer(t)
	nc := handshake(t, srv)
	reg := newRegistry(t, srv)
	if v, _ := value(t, reg, "ferry_connections_open", "", ""); v != 1 {
		t.Fatalf("ferry_connections_open = %v, want 1", v)
	}
	_ = nc.Close()
	waitFor(t, "ferry_connections_open to reach 0", func() bool {
		v, ok := value(t, reg, "ferry_connections_open", "", "")
		return ok && v == 0
	})
	waitFor(t, `ferry_closes_total{code="OK"} to reach 1`, func() bool {
		v, ok := value(t, reg, "ferry_closes_total", "code", "OK")
		return ok && v == 1
	})
}

// TestCollectorLint runs the Prometheus metric linter (naming, units,
// HELP) over a live scrape.
func TestCollectorLint(t *testing.T) {
	srv := startServer(t)
	handshake(t, srv)
	problems, err := testutil.CollectAndLint(NewCollector(srv))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// TestCollectorBeforeStart: a server that is not started yet (ferryd
// registers the collector before Start) scrapes as all zeroes.
func TestCollectorBeforeStart(t *testing.T) {
	srv, err := reactor.New(reactor.Config{Addr: "127.0.0.1:0", Handler: nopHandler{}})
	if err != nil {
		t.Fatal(err)
	}
	reg := newRegistry(t, srv)
	if v, ok := value(t, reg, "ferry_connections_open", "", ""); !ok || v != 0 {
		t.Errorf("ferry_connections_open = %v (exported %v), want 0", v, ok)
	}
}

func TestNewCollectorNilPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("NewCollector(nil) did not panic")
		}
	}()
	NewCollector(nil)
}
