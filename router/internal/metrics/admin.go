package metrics

import (
	"net/http"
	"net/http/pprof"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// NewAdminMux returns the admin HTTP handler of ferryd:
//
//	/metrics       the Prometheus exposition of reg
//	/healthz       200 "ok" for as long as the process serves HTTP (liveness)
//	/readyz        200 "ready" while ready() reports true, else 503 (readiness)
//	/debug/pprof/  the net/http/pprof handlers
//
// A nil ready counts as always ready. ready is called on the request's
// goroutine, concurrently with everything else, so it must be safe for
// that and cheap (an atomic.Bool's Load, say).
//
// The pprof handlers are registered on the returned mux only. Importing
// net/http/pprof also registers them on http.DefaultServeMux (its init
// does so), so a binary must not serve DefaultServeMux on a port it does
// not mean to expose. The mux exposes profiles and the command line:
// serve it on a loopback or otherwise private address.
func NewAdminMux(reg *prometheus.Registry, ready func() bool) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		plain(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if ready == nil || ready() {
			plain(w, http.StatusOK, "ready")
			return
		}
		plain(w, http.StatusServiceUnavailable, "not ready")
	})
	// pprof.Index serves the named runtime profiles (heap, goroutine,
	// allocs, ...) under /debug/pprof/ as well as the index page; the
	// other four are handlers of their own.
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

func plain(w http.ResponseWriter, status int, body string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}
