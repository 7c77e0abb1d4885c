package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferry-proto/ferry/protocol"
	"github.com/ferry-proto/ferry/reactor"
)

// Descriptors of every metric the collector exports. Label values are the
// String() of the enum they name (protocol.FrameType, protocol.Lane,
// protocol.ErrorCode, reactor.DropReason), so they read as docs/SPEC.md
// spells them: type="HELLO", lane="BULK", code="SLOW_CONSUMER",
// reason="queue_full".
var (
	descConnsOpen = prometheus.NewDesc("ferry_connections_open",
		"Connections now open: accepted and not yet closed, handshake done or not.", nil, nil)
	descConnsAccepted = prometheus.NewDesc("ferry_connections_accepted_total",
		"TCP connections accepted by the server.", nil, nil)
	descConnsRefused = prometheus.NewDesc("ferry_connections_refused_total",
		"Connections refused with TOO_MANY_CONNECTIONS because MaxConns were open.", nil, nil)
	descHandshakes = prometheus.NewDesc("ferry_handshakes_total",
		"Handshakes completed: HELLO accepted and WELCOME sent.", nil, nil)
	descFramesIn = prometheus.NewDesc("ferry_frames_in_total",
		"Frames received, by frame type (frames inside a BATCH count one by one).", []string{"type"}, nil)
	descFramesOut = prometheus.NewDesc("ferry_frames_out_total",
		"Frames sent, by frame type.", []string{"type"}, nil)
	descBytesIn = prometheus.NewDesc("ferry_bytes_in_total",
		"Bytes read from client sockets.", nil, nil)
	descBytesOut = prometheus.NewDesc("ferry_bytes_out_total",
		"Bytes written to client sockets.", nil, nil)
	descMessagesIn = prometheus.NewDesc("ferry_messages_in_total",
		"Application messages (DATA, PUBLISH, DIRECT) received, by lane; a fragmented message counts once.", []string{"lane"}, nil)
	descMessagesOut = prometheus.NewDesc("ferry_messages_out_total",
		"Application messages (DATA, PUBLISH, DIRECT) sent, by lane; a fragmented message counts once.", []string{"lane"}, nil)
	descQueued = prometheus.NewDesc("ferry_queued_bytes",
		"Bytes waiting in the outbound lane queues of all connections, by lane.", []string{"lane"}, nil)
	descDrops = prometheus.NewDesc("ferry_drops_total",
		"Outbound messages not delivered, by reason.", []string{"reason"}, nil)
	descCloses = prometheus.NewDesc("ferry_closes_total",
		"Connections closed, by the error code sent or received (OK when the peer closed without one).", []string{"code"}, nil)
	descPingWarnings = prometheus.NewDesc("ferry_ping_warnings_total",
		"RATE_LIMITED warnings sent for PINGs far faster than the heartbeat interval.", nil, nil)
	descWakeups = prometheus.NewDesc("ferry_wakeups_total",
		"Event-loop wake-ups requested by senders on other goroutines.", nil, nil)
)

// deliveryCounters are the counters of reliable delivery, sessions and
// application-level confirmation (SPEC §12), one metric each.
var deliveryCounters = [...]struct {
	desc *prometheus.Desc
	get  func(*reactor.Counters) uint64
}{
	{prometheus.NewDesc("ferry_reliable_in_total", "Reliable frames accepted (new sequence numbers).", nil, nil), func(c *reactor.Counters) uint64 { return c.ReliableIn.Load() }},
	{prometheus.NewDesc("ferry_reliable_out_total", "Reliable frames numbered and sent, replays not included.", nil, nil), func(c *reactor.Counters) uint64 { return c.ReliableOut.Load() }},
	{prometheus.NewDesc("ferry_duplicates_in_total", "Reliable frames received again: acknowledged again, not delivered.", nil, nil), func(c *reactor.Counters) uint64 { return c.DuplicatesIn.Load() }},
	{prometheus.NewDesc("ferry_expired_in_total", "Messages received already expired (TTL 0), dropped.", nil, nil), func(c *reactor.Counters) uint64 { return c.ExpiredIn.Load() }},
	{prometheus.NewDesc("ferry_duplicate_keys_total", "Keyed messages whose idempotency key was already used, not delivered again.", nil, nil), func(c *reactor.Counters) uint64 { return c.DuplicateKeys.Load() }},
	{prometheus.NewDesc("ferry_acks_rejected_total", "ACKs for sequence numbers never sent (PROTOCOL_ERROR).", nil, nil), func(c *reactor.Counters) uint64 { return c.AcksRejected.Load() }},
	{prometheus.NewDesc("ferry_probes_total", "PINGs sent because an ACK was overdue.", nil, nil), func(c *reactor.Counters) uint64 { return c.Probes.Load() }},
	{prometheus.NewDesc("ferry_replayed_total", "Frames sent again when a session resumed.", nil, nil), func(c *reactor.Counters) uint64 { return c.Replayed.Load() }},
	{prometheus.NewDesc("ferry_resumes_total", "Sessions resumed.", nil, nil), func(c *reactor.Counters) uint64 { return c.Resumes.Load() }},
	{prometheus.NewDesc("ferry_resumes_failed_total", "Resumes refused with RESUME_FAILED (token not valid).", nil, nil), func(c *reactor.Counters) uint64 { return c.ResumesFailed.Load() }},
	{prometheus.NewDesc("ferry_session_takeovers_total", "Sessions resumed while attached to another connection.", nil, nil), func(c *reactor.Counters) uint64 { return c.Takeovers.Load() }},
	{prometheus.NewDesc("ferry_sessions_expired_total", "Detached sessions discarded at expiry.", nil, nil), func(c *reactor.Counters) uint64 { return c.SessionsExpired.Load() }},
	{prometheus.NewDesc("ferry_confirmed_total", "CONFIRM PROCESSED received for APP_ACK messages.", nil, nil), func(c *reactor.Counters) uint64 { return c.Confirmed.Load() }},
	{prometheus.NewDesc("ferry_rejected_total", "CONFIRM REJECTED received for APP_ACK messages.", nil, nil), func(c *reactor.Counters) uint64 { return c.Rejected.Load() }},
	{prometheus.NewDesc("ferry_confirm_timeouts_total", "APP_ACK messages not confirmed within the confirm timeout.", nil, nil), func(c *reactor.Counters) uint64 { return c.ConfirmTimeouts.Load() }},
	{prometheus.NewDesc("ferry_redelivered_total", "APP_ACK messages delivered again after a failed delivery.", nil, nil), func(c *reactor.Counters) uint64 { return c.Redelivered.Load() }},
	{prometheus.NewDesc("ferry_dead_lettered_total", "APP_ACK messages given up after the maximum number of deliveries.", nil, nil), func(c *reactor.Counters) uint64 { return c.DeadLettered.Load() }},
}

var descRTT = prometheus.NewDesc("ferry_rtt_seconds",
	"Round-trip times measured from ACKs (less the peer's ACK delay) and PONGs, all connections.", nil, nil)

var descSessions = prometheus.NewDesc("ferry_sessions", "Sessions kept (attached or waiting for a resume) that hold state.", nil, nil)

var allDescs = [...]*prometheus.Desc{
	descConnsOpen, descConnsAccepted, descConnsRefused, descHandshakes,
	descFramesIn, descFramesOut, descBytesIn, descBytesOut,
	descMessagesIn, descMessagesOut, descQueued,
	descDrops, descCloses, descPingWarnings, descWakeups, descSessions, descRTT,
}

// Label values that do not change: computed once rather than per scrape.
var (
	laneLabels  [protocol.NumLanes]string
	dropReasons = reactor.DropReasons()
	dropLabels  = make([]string, len(dropReasons))
	frameLabels [256]string
)

func init() {
	for l := range laneLabels {
		laneLabels[l] = protocol.Lane(l).String()
	}
	for i, r := range dropReasons {
		dropLabels[i] = r.String()
	}
	for t := range frameLabels {
		frameLabels[t] = protocol.FrameType(t).String()
	}
}

// collector exports a reactor.Server's Counters. It keeps no state of its
// own: every scrape reads one fresh snapshot.
type collector struct {
	srv *reactor.Server
}

// NewCollector returns a collector of srv's counters, to register once per
// server in a prometheus.Registry. Each scrape calls srv.Counters() once
// (a snapshot summed over the event loops' shards) and emits constant
// metrics from it, so the cost is per scrape, never per message or per
// connection. Collect is safe from any goroutine, concurrently with the
// server's loops; srv may be scraped before Start and after Close.
func NewCollector(srv *reactor.Server) prometheus.Collector {
	if srv == nil {
		panic("metrics: NewCollector with a nil server")
	}
	return &collector{srv: srv}
}

// Describe sends the descriptor of every metric Collect may emit.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range deliveryCounters {
		ch <- d.desc
	}
	for _, d := range allDescs {
		ch <- d
	}
}

// Collect sends one snapshot of the server's counters. Per-frame-type and
// per-code series are sent only once non-zero (256 types and 512 codes
// would be mostly empty); lanes and drop reasons are sent always, so that
// a dashboard sees zero rather than nothing.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.srv.Counters()

	gauge(ch, descConnsOpen, float64(s.ConnsOpen.Load()))
	counter(ch, descConnsAccepted, s.ConnsAccepted.Load())
	counter(ch, descConnsRefused, s.ConnsRefused.Load())
	counter(ch, descHandshakes, s.Handshakes.Load())

	for t := range s.FramesIn {
		if n := s.FramesIn[t].Load(); n != 0 {
			counter(ch, descFramesIn, n, frameLabels[t])
		}
		if n := s.FramesOut[t].Load(); n != 0 {
			counter(ch, descFramesOut, n, frameLabels[t])
		}
	}
	counter(ch, descBytesIn, s.BytesIn.Load())
	counter(ch, descBytesOut, s.BytesOut.Load())

	for l := range laneLabels {
		counter(ch, descMessagesIn, s.MessagesIn[l].Load(), laneLabels[l])
		counter(ch, descMessagesOut, s.MessagesOut[l].Load(), laneLabels[l])
		gauge(ch, descQueued, float64(s.Queued[l].Load()), laneLabels[l])
	}

	for i, r := range dropReasons {
		counter(ch, descDrops, s.Drops[r].Load(), dropLabels[i])
	}
	for code := range s.Closes {
		if n := s.Closes[code].Load(); n != 0 {
			counter(ch, descCloses, n, protocol.ErrorCode(code).String())
		}
	}

	counter(ch, descPingWarnings, s.PingWarnings.Load())
	counter(ch, descWakeups, s.Wakes.Load())
	for _, d := range deliveryCounters {
		counter(ch, d.desc, d.get(s))
	}
	gauge(ch, descSessions, float64(c.srv.NumSessions()))
	ch <- ConstHistogram(descRTT, &s.RTT)
}

// ConstHistogram turns a reactor.Histogram into a Prometheus histogram in
// seconds, with cumulative buckets.
func ConstHistogram(d *prometheus.Desc, h *reactor.Histogram, labels ...string) prometheus.Metric {
	b, n, sum := h.Snapshot()
	cum := make(map[float64]uint64, len(reactor.HistogramBuckets))
	var acc uint64
	for i, ub := range reactor.HistogramBuckets {
		acc += b[i]
		cum[ub.Seconds()] = acc
	}
	return prometheus.MustNewConstHistogram(d, n, sum.Seconds(), cum, labels...)
}

func counter(ch chan<- prometheus.Metric, d *prometheus.Desc, v uint64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}
