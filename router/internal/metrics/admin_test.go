package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func get(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestAdminMux(t *testing.T) {
	srv := startServer(t)
	handshake(t, srv)
	reg := newRegistry(t, srv)
	var ready atomic.Bool
	ts := httptest.NewServer(NewAdminMux(reg, ready.Load))
	t.Cleanup(ts.Close)
	c := ts.Client()

	code, body := get(t, c, ts.URL+"/metrics")
	if code != http.StatusOK || !strings.Contains(body, "\nferry_connections_open 1\n") {
		t.Errorf("/metrics: %d, body lacks ferry_connections_open 1:\n%s", code, body)
	}
	if code, body := get(t, c, ts.URL+"/healthz"); code != http.StatusOK || body != "ok" {
		t.Errorf("/healthz: %d %q, want 200 \"ok\"", code, body)
	}
	if code, _ := get(t, c, ts.URL+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz before ready: %d, want 503", code)
	}
	ready.Store(true)
	if code, _ := get(t, c, ts.URL+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz once ready: %d, want 200", code)
	}
	ready.Store(false) // draining: readiness goes first, liveness stays
	if code, _ := get(t, c, ts.URL+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz after ready fell: %d, want 503", code)
	}
	if code, _ := get(t, c, ts.URL+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz while not ready: %d, want 200", code)
	}
	code, body = get(t, c, ts.URL+"/debug/pprof/")
	if code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Errorf("/debug/pprof/: %d, index lacks goroutine profile", code)
	}
	if code, _ := get(t, c, ts.URL+"/debug/pprof/goroutine?debug=1"); code != http.StatusOK {
		t.Errorf("/debug/pprof/goroutine: %d, want 200", code)
	}
	if code, _ := get(t, c, ts.URL+"/debug/pprof/cmdline"); code != http.StatusOK {
		t.Errorf("/debug/pprof/cmdline: %d, want 200", code)
	}
	if code, _ := get(t, c, ts.URL+"/nope"); code != http.StatusNotFound {
		t.Errorf("/nope: %d, want 404", code)
	}
}

// A nil ready func means always ready.
func TestAdminMuxNilReady(t *testing.T) {
	ts := httptest.NewServer(NewAdminMux(prometheus.NewRegistry(), nil))
	t.Cleanup(ts.Close)
	if code, _ := get(t, ts.Client(), ts.URL+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz with nil ready: %d, want 200", code)
	}
}
