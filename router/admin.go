package router

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/ferry-proto/ferry/reactor"
	"github.com/ferry-proto/ferry/router/internal/metrics"
)

// AdminHandler serves a server's admin endpoints: /metrics (Prometheus:
// the reactor's counters, the router's, the Go runtime's and the
// process's), /healthz, /readyz (200 while ready reports true) and
// /debug/pprof/.
func AdminHandler(srv *reactor.Server, r *Router, ready func() bool) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		metrics.NewCollector(srv),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	if r != nil {
		reg.MustRegister(r.collector())
	}
	return metrics.NewAdminMux(reg, ready)
}

// collector exports Stats.
func (r *Router) collector() prometheus.Collector {
	return &statsCollector{r: r}
}

var statsDescs = []struct {
	d   *prometheus.Desc
	get func(*Stats) uint64
}{
	{prometheus.NewDesc("ferry_router_requests_total", "DATA requests dispatched to a handler.", nil, nil), func(s *Stats) uint64 { return s.Requests.Load() }},
	{prometheus.NewDesc("ferry_router_no_route_total", "DATA requests for a route with no handler.", nil, nil), func(s *Stats) uint64 { return s.NoRoute.Load() }},
	{prometheus.NewDesc("ferry_router_published_total", "PUBLISH frames accepted.", nil, nil), func(s *Stats) uint64 { return s.Published.Load() }},
	{prometheus.NewDesc("ferry_router_delivered_total", "Publications queued to subscribers.", nil, nil), func(s *Stats) uint64 { return s.Delivered.Load() }},
	{prometheus.NewDesc("ferry_router_undelivered_total", "Publications a subscriber's queue refused (dropped, slow consumer, closed).", nil, nil), func(s *Stats) uint64 { return s.Undelivered.Load() }},
	{prometheus.NewDesc("ferry_router_directs_total", "DIRECT messages forwarded.", nil, nil), func(s *Stats) uint64 { return s.Directs.Load() }},
	{prometheus.NewDesc("ferry_router_no_such_client_total", "DIRECT messages to a client not connected.", nil, nil), func(s *Stats) uint64 { return s.NoSuchClient.Load() }},
	{prometheus.NewDesc("ferry_router_rate_limited_total", "Messages refused over a connection's rate limit.", nil, nil), func(s *Stats) uint64 { return s.RateLimited.Load() }},
	{prometheus.NewDesc("ferry_router_forbidden_total", "Requests refused by the client's token permissions.", nil, nil), func(s *Stats) uint64 { return s.Forbidden.Load() }},
	{prometheus.NewDesc("ferry_router_takeovers_total", "Logins that replaced a connection with the same client id.", nil, nil), func(s *Stats) uint64 { return s.Takeovers.Load() }},
	{prometheus.NewDesc("ferry_router_auth_failed_total", "HELLOs the authenticator refused with AUTH_FAILED.", nil, nil), func(s *Stats) uint64 { return s.AuthFailed.Load() }},
	{prometheus.NewDesc("ferry_router_auth_rate_limited_total", "HELLOs refused with RATE_LIMITED because their source address failed too many logins.", nil, nil), func(s *Stats) uint64 { return s.AuthRateLimited.Load() }},
	{prometheus.NewDesc("ferry_router_auth_sources_evicted_total", "Source addresses with recent failed logins forgotten early because the table was full.", nil, nil), func(s *Stats) uint64 { return s.AuthSourcesEvicted.Load() }},
}

var descHandlerSeconds = prometheus.NewDesc("ferry_router_handler_seconds",
	"Run time of each route's handler, from a sample: each connection's first request and every 8th after it (when Options.Latency is on).", []string{"route"}, nil)

var descAuthSources = prometheus.NewDesc("ferry_router_auth_sources",
	"Source addresses whose failed logins are tracked now (bounded by AuthLimit.MaxSources).", nil, nil)

type statsCollector struct{ r *Router }

func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range statsDescs {
		ch <- d.d
	}
	ch <- descAuthSources
	ch <- descHandlerSeconds
}

func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	for _, d := range statsDescs {
		ch <- prometheus.MustNewConstMetric(d.d, prometheus.CounterValue, float64(d.get(&c.r.stats)))
	}
	ch <- prometheus.MustNewConstMetric(descAuthSources, prometheus.GaugeValue, float64(c.r.AuthSources()))
	if c.r.opts.Latency {
		for id, rt := range c.r.routes {
			name := rt.name
			if name == "" {
				name = strconv.FormatUint(uint64(id), 10)
			}
			ch <- metrics.ConstHistogram(descHandlerSeconds, &rt.lat, name)
		}
	}
}
