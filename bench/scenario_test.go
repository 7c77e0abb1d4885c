package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ferry-proto/ferry/protocol"
)

// Every scenario, briefly, against a real ferryd: small connection counts
// and at most 2 s each, so that the package's tests stay within seconds
// under -race.
func TestScenarios(t *testing.T) {
	srv := startFerryd(t)
	cases := []struct {
		name  string
		cfg   Config
		check func(t *testing.T, r *Result)
	}{
		{"echo", Config{Scenario: "echo", Conns: 4, Inflight: 2, Size: 1024}, func(t *testing.T, r *Result) {
			wantSeries(t, r, "echo", "connect")
		}},
		{"echo open loop", Config{Scenario: "echo", Conns: 2, Rate: 1000, Duration: time.Second}, func(t *testing.T, r *Result) {
			if r.Loop != "open" || r.TargetRate != 1000 {
				t.Errorf("loop %q at %v, want open at 1000", r.Loop, r.TargetRate)
			}
			// A paced sender neither races ahead nor, on an idle server,
			// falls far behind.
			if r.Msgs < 500 || r.Msgs > 1100 {
				t.Errorf("%d messages in 1 s at 1000/s", r.Msgs)
			}
		}},
		{"pubsub", Config{Scenario: "pubsub", Conns: 3, Lane: protocol.LaneInteractive}, func(t *testing.T, r *Result) {
			wantSeries(t, r, "delivery")
			if r.Connections != 4 {
				t.Errorf("connections %d, want 3 subscribers + 1 publisher", r.Connections)
			}
			if r.Msgs < 3*r.Published*9/10 {
				t.Errorf("%d deliveries of %d messages to 3 subscribers", r.Msgs, r.Published)
			}
			wantZero(t, "duplicates", r.Duplicates)
			wantZero(t, "reordered", r.Reordered)
		}},
		{"pubsub reliable", Config{Scenario: "pubsub", Conns: 1, Reliable: true, Compression: true, Fill: "text"}, func(t *testing.T, r *Result) {
			wantZero(t, "lost", r.Lost)
			wantZero(t, "duplicates", r.Duplicates)
		}},
		{"fanout", Config{Scenario: "fanout", Conns: 8}, func(t *testing.T, r *Result) {
			wantSeries(t, r, "all delivered", "delivery")
			// Every message complete means one "all delivered" sample each.
			if h := r.Histogram("all delivered"); h.TotalCount() < r.Published*9/10 {
				t.Errorf("%d messages complete of %d", h.TotalCount(), r.Published)
			}
		}},
		{"direct", Config{Scenario: "direct", Conns: 4}, func(t *testing.T, r *Result) {
			wantSeries(t, r, "direct")
			wantZero(t, "lost", r.Lost)
			wantZero(t, "duplicates", r.Duplicates)
			wantZero(t, "reordered", r.Reordered)
		}},
		{"lanes", Config{Scenario: "lanes", Conns: 1, Size: 256 << 10, PingRate: 200, Duration: 2 * time.Second}, func(t *testing.T, r *Result) {
			wantSeries(t, r, "lane 1, with bulk", "lane 3 bulk", "lane 1 alone")
			for _, s := range r.Series[:3] {
				if s.Count == 0 {
					t.Errorf("series %q is empty", s.Name)
				}
			}
		}},
		{"idle", Config{Scenario: "idle", Conns: 150, Sources: mustSources(t, "127.0.0.1-3")}, func(t *testing.T, r *Result) {
			wantSeries(t, r, "connect")
			if r.Connections != 150 || r.Series[0].Count != 150 {
				t.Errorf("%d connections, %d connect samples, want 150", r.Connections, r.Series[0].Count)
			}
			if r.BytesPerConn <= 0 {
				t.Errorf("bytes per connection %v, want > 0 (notes %q)", r.BytesPerConn, r.Notes)
			}
			if r.ClientGoroutinesPerConn >= 0.5 {
				t.Errorf("%.2f goroutines per light connection", r.ClientGoroutinesPerConn)
			}
			wantZero(t, "dropped", r.Dropped)
		}},
		{"idle full clients", Config{Scenario: "idle", Conns: 20, FullClients: true, Duration: 500 * time.Millisecond}, func(t *testing.T, r *Result) {
			if r.Connections != 20 {
				t.Errorf("%d connections, want 20", r.Connections)
			}
			wantZero(t, "dropped", r.Dropped)
		}},
		{"reconnect-storm", Config{Scenario: "reconnect-storm", Conns: 21, Duration: 2 * time.Second,
			DropAfter: 500 * time.Millisecond, Backoff: 20 * time.Millisecond}, func(t *testing.T, r *Result) {
			wantSeries(t, r, "delivery", "resume")
			if r.Resumed == nil || *r.Resumed != 21 {
				t.Errorf("resumed %v, want 21 (notes %q)", r.Resumed, r.Notes)
			}
			if r.ResumeAllMs <= 0 || r.ResumeAllMs > 1500 {
				t.Errorf("all resumed after %.1f ms", r.ResumeAllMs)
			}
			if r.Reconnects < 21 {
				t.Errorf("%d reconnects, want at least 21", r.Reconnects)
			}
			wantZero(t, "lost", r.Lost)
			wantZero(t, "duplicates", r.Duplicates)
			wantZero(t, "reordered", r.Reordered)
			wantZero(t, "new sessions", r.NewSessions)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Addr, cfg.Admin = srv.Addr, srv.Admin
			if cfg.Scenario == "idle" && !cfg.FullClients {
				// A server of its own: idle measures its memory.
				own := startFerryd(t)
				cfg.Addr, cfg.Admin = own.Addr, own.Admin
			}
			if cfg.Duration == 0 {
				cfg.Duration = 700 * time.Millisecond
			}
			var reports int
			cfg.Progress = func(Progress) { reports++ }
			cfg.ProgressEvery = 100 * time.Millisecond
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			r, err := Run(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if r.Scenario != cfg.Scenario || r.Errors != 0 {
				t.Errorf("scenario %q, %d errors (notes %q)", r.Scenario, r.Errors, r.Notes)
			}
			if cfg.Scenario != "idle" && (r.Msgs == 0 || r.MsgsPerSec <= 0 || r.P50ms <= 0 || r.MaxMs < r.P99ms) {
				t.Errorf("msgs %d at %.0f/s, p50 %v ms, p99 %v, max %v", r.Msgs, r.MsgsPerSec, r.P50ms, r.P99ms, r.MaxMs)
			}
			if r.ServerCPUS <= 0 {
				t.Errorf("server CPU %v s: the admin endpoint was not read", r.ServerCPUS)
			}
			if reports == 0 {
				t.Error("no progress reports")
			}
			tc.check(t, r)
			// The outputs of every scenario are well-formed.
			var js, svg, table bytes.Buffer
			if err := r.WriteJSON(&js); err != nil || !json.Valid(js.Bytes()) {
				t.Errorf("JSON: %v %s", err, js.Bytes())
			}
			if err := r.WriteSVG(&svg); err != nil {
				t.Error(err)
			}
			checkSVG(t, svg.Bytes())
			if err := r.WriteTable(&table); err != nil {
				t.Error(err)
			}
			if testing.Verbose() {
				t.Log("\n" + table.String())
			}
		})
	}
}

// --server-pid: the server's CPU time from /proc/PID/stat, and for idle
// without an admin endpoint the growth of its resident memory; with one,
// idle still reports heap+stack from it.
func TestServerPID(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc is Linux's")
	}
	for _, c := range []struct {
		name  string
		admin bool
		from  string
	}{{"no admin endpoint", false, "rss"}, {"admin endpoint preferred", true, "heap+stack"}} {
		t.Run(c.name, func(t *testing.T) {
			srv := startFerryd(t) // a fresh server: its memory grows
			cfg := Config{Scenario: "idle", Addr: srv.Addr, Conns: 300, ServerPID: srv.PID, Duration: 200 * time.Millisecond}
			if c.admin {
				cfg.Admin = srv.Admin
			}
			r, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if r.BytesPerConnFrom != c.from || r.BytesPerConn <= 0 || r.BytesPerConn > 1<<20 || r.ServerRSSPerConn <= 0 {
				t.Errorf("%.0f B per connection from %q (want %q), RSS %.0f; notes %q", r.BytesPerConn, r.BytesPerConnFrom, c.from,
					r.ServerRSSPerConn, r.Notes)
			}
			var table strings.Builder
			_ = r.WriteTable(&table)
			if want := map[string]string{"rss": "(resident, /proc/PID/status)", "heap+stack": "(heap+stack in use"}[c.from]; !strings.Contains(table.String(), want) {
				t.Errorf("table does not say %q:\n%s", want, table.String())
			}
		})
	}
	// The server's CPU time over the traffic window of an echo.
	srv := startFerryd(t)
	r, err := Run(context.Background(), Config{Scenario: "echo", Addr: srv.Addr, Conns: 2, ServerPID: srv.PID, Duration: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if r.ServerCPUS <= 0 || r.ServerCPUS > 10 {
		t.Errorf("server CPU %v s over 0.3 s (notes %q)", r.ServerCPUS, r.Notes)
	}
}

// With the file limit known, asking for more connections than it allows
// fails at once instead of halfway.
func TestRunRefusesMoreConnectionsThanFiles(t *testing.T) {
	lim := fileLimit()
	if lim == 0 || lim > 1<<24 {
		t.Skip("no file limit to test against")
	}
	_, err := Run(context.Background(), Config{Scenario: "idle", Addr: "127.0.0.1:1", Conns: int(lim)})
	if err == nil {
		t.Fatal("no error")
	}
}

// A server that is not there: the connect phase fails with the dial error.
func TestRunNoServer(t *testing.T) {
	_, err := Run(context.Background(), Config{Scenario: "echo", Addr: "127.0.0.1:1", Conns: 2,
		Duration: 100 * time.Millisecond, ConnectTimeout: 300 * time.Millisecond})
	if err == nil {
		t.Fatal("no error")
	}
}

func wantSeries(t *testing.T, r *Result, names ...string) {
	t.Helper()
	for i, n := range names {
		if i >= len(r.Series) || r.Series[i].Name != n {
			t.Fatalf("series %v, want %q first", seriesNames(r), names)
		}
	}
	if r.Percentiles != r.Series[0].Percentiles {
		t.Errorf("top-level percentiles are not the main series'")
	}
}

func seriesNames(r *Result) []string {
	var out []string
	for _, s := range r.Series {
		out = append(out, s.Name)
	}
	return out
}

func wantZero(t *testing.T, what string, v *int64) {
	t.Helper()
	if v == nil || *v != 0 {
		t.Errorf("%s = %v, want 0", what, deref(v))
	}
}

func deref(v *int64) any {
	if v == nil {
		return "absent"
	}
	return *v
}

func mustSources(t *testing.T, s string) []netip.Addr {
	t.Helper()
	a, err := ParseSources(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
