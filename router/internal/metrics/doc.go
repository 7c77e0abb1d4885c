// Package metrics exports a running reactor.Server to Prometheus and builds
// the admin HTTP mux of ferryd.
//
// NewCollector wraps a *reactor.Server in a prometheus.Collector. Each
// scrape takes one snapshot (Server.Counters sums the per-loop shards) and
// emits constant metrics from it: nothing is registered per connection and
// nothing runs per message, so the event loops pay only for their own
// atomic counters. The metrics, all prefixed ferry_:
//
//	connections_open             gauge    connections accepted and not yet closed
//	connections_accepted_total   counter
//	connections_refused_total    counter  refused at MaxConns
//	handshakes_total             counter  HELLO accepted, WELCOME sent
//	frames_in_total{type}        counter  by frame type, only types seen
//	frames_out_total{type}       counter
//	bytes_in_total               counter
//	bytes_out_total              counter
//	messages_in_total{lane}      counter  application messages, every lane
//	messages_out_total{lane}     counter
//	queued_bytes{lane}           gauge    outbound bytes waiting in lane queues
//	drops_total{reason}          counter  every reactor.DropReason, zero or not
//	closes_total{code}           counter  by close code, only codes seen
//	ping_warnings_total          counter  RATE_LIMITED warnings for PING floods
//	wakeups_total                counter  loop wake-ups from other goroutines
//
// Label values are the String() of the enum they name, unchanged:
// type="HELLO", lane="INTERACTIVE", code="SLOW_CONSUMER" (the names of
// docs/SPEC.md) and reason="queue_full" (reactor's names).
//
// Usage (in cmd/ferryd):
//
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(metrics.NewCollector(srv),
//		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
//	var ready atomic.Bool // set once the router is wired and srv started
//	admin := &http.Server{Addr: "127.0.0.1:7101", Handler: metrics.NewAdminMux(reg, ready.Load)}
//	go admin.ListenAndServe()
//
// NewAdminMux serves /metrics, /healthz (liveness: 200 while the process
// serves), /readyz (readiness: 200 while ready() is true, else 503) and the
// net/http/pprof handlers under /debug/pprof/, registered on its own mux.
//
// Limits. Counters are read one by one without a lock, so a snapshot is
// not a single instant: two related series (frames and bytes, say) may be
// a few events apart. Counters are process totals and restart from zero
// with the process, as Prometheus counters may. Register one collector
// per server: two for the same server in one registry are rejected as
// duplicates.
//
// Goroutines. Collect and the mux's handlers run on whatever goroutine
// the Prometheus registry or net/http calls them from; they only read the
// server's atomics and never touch an event loop.
package metrics
