package bench

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/ferry-proto/ferry/protocol"
)

// Scenarios lists the scenario names Run accepts, in the order the usage
// text shows them.
var Scenarios = []string{"echo", "pubsub", "fanout", "direct", "idle", "lanes", "reconnect-storm"}

// Config describes one run. Zero fields take the defaults WithDefaults
// documents.
type Config struct {
	Scenario string
	// Addr is the server's FERRY/1 address. Default 127.0.0.1:7100.
	Addr string
	// Admin is the server's admin HTTP address, for /metrics: server memory
	// per connection (idle) and server CPU time (all scenarios). Empty: none.
	Admin string
	// ServerPID is the server's process id on this machine (Linux only).
	// With it, server CPU time comes from /proc/PID/stat instead of Admin,
	// and idle without a readable Admin reports the growth of the server's
	// resident memory (/proc/PID/status VmRSS) per connection. 0: none.
	ServerPID int

	// Conns is the number of connections: clients for echo, direct, lanes
	// and reconnect-storm, subscribers for pubsub and fanout (the publisher
	// is one more), held sockets for idle. Default 1 (pubsub, fanout, lanes),
	// 2 (direct), 10 (others).
	Conns int
	// Duration is how long traffic runs (idle: how long connections are held
	// once all are up). Default 10 s.
	Duration time.Duration
	// Size is the payload size in bytes. Default 64; pubsub and fanout 16;
	// lanes 1 MiB (the bulk messages; pings are 16 bytes). Scenarios that
	// carry a timestamp need at least 16 and raise smaller sizes.
	Size int
	// Rate is the total target of messages per second over all senders;
	// 0 is closed loop, as fast as the server answers. See the package doc.
	Rate float64
	// Inflight is how many operations each connection keeps outstanding
	// (echo, direct; lanes: bulk requests). Default 1.
	Inflight int
	// Light runs echo on bare sockets instead of the Go client: Inflight
	// requests pipelined per connection, one write per refill, so that the
	// load generator can saturate a server. Closed loop only (no Rate), no
	// compression, Size at most 16 KiB (one unfragmented frame); the
	// payload carries its send time in its first 8 bytes.
	Light bool
	// Window bounds the messages published but not yet delivered to every
	// subscriber (pubsub, fanout), or the reliable messages each client holds
	// unacknowledged (reconnect-storm). Default 1,000 (pubsub, fanout), 256.
	Window int
	// Lane carries the messages (1 to 3). Default 2 (NORMAL).
	Lane protocol.Lane
	// Reliable sends pubsub and fanout messages as reliable (SPEC §12).
	// direct and reconnect-storm are always reliable; requests never are.
	Reliable bool
	// Compression offers snappy compression (SPEC §11).
	Compression bool
	// Fill is the payload content past the timestamp: "random"
	// (incompressible, the default), "text" or "zero".
	Fill string

	// Ramp spreads the opening of connections evenly over this long.
	// 0: as fast as Dialers allow.
	Ramp time.Duration
	// Dialers bounds the connections being opened at once. Default 64.
	Dialers int
	// ConnectTimeout bounds each connection's dial and handshake. Default 10 s.
	ConnectTimeout time.Duration
	// Sources are local addresses to dial from, round robin per connection
	// (a client keeps its address when it reconnects). Empty: the kernel
	// chooses.
	Sources []netip.Addr
	// Heartbeat is the heartbeat interval K proposed in HELLO; the server
	// decides (SPEC §5.4.3). 0: the server's default, except idle, which
	// asks for 1 h and so gets the server's maximum.
	Heartbeat time.Duration
	// Backoff is the clients' first reconnect delay. 0: the client's
	// default (0.5 s).
	Backoff time.Duration

	// PingRate is the lane-1 pings per second per connection (lanes).
	// Default 100.
	PingRate float64
	// DropAfter is when reconnect-storm resets every socket, from the start
	// of traffic. Default Duration/3.
	DropAfter time.Duration
	// FullClients makes idle hold full clients instead of bare sockets.
	FullClients bool
	// StormVia is what reconnect-storm sends: "direct" (the default),
	// reliable end to end, or "publish", reliable PUBLISHes to the sender's
	// own topic.
	StormVia string

	// Progress, if not nil, is called every ProgressEvery (default 1 s)
	// with the run's counters.
	Progress      func(Progress)
	ProgressEvery time.Duration
}

// WithDefaults returns c with every zero field set to its default for
// c.Scenario.
func (c Config) WithDefaults() Config {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	if c.Addr == "" {
		c.Addr = "127.0.0.1:7100"
	}
	switch c.Scenario {
	case "pubsub", "fanout", "lanes":
		def(&c.Conns, 1)
	case "direct":
		def(&c.Conns, 2)
	default:
		def(&c.Conns, 10)
	}
	if c.Duration == 0 {
		c.Duration = 10 * time.Second
	}
	switch c.Scenario {
	case "pubsub", "fanout":
		def(&c.Size, 16)
		def(&c.Window, 1000)
	case "lanes":
		def(&c.Size, 1<<20)
	default:
		def(&c.Size, 64)
	}
	def(&c.Window, 256)
	switch c.Scenario {
	case "pubsub", "fanout", "direct", "reconnect-storm":
		c.Size = max(c.Size, stampSize)
	case "echo":
		if c.Light {
			c.Size = max(c.Size, lightStampSize)
		}
	}
	def(&c.Inflight, 1)
	if c.Lane == 0 {
		c.Lane = protocol.LaneNormal
	}
	if c.Fill == "" {
		c.Fill = "random"
	}
	def(&c.Dialers, 64)
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = 10 * time.Second
	}
	if c.Heartbeat == 0 && c.Scenario == "idle" {
		c.Heartbeat = time.Hour
	}
	if c.StormVia == "" {
		c.StormVia = "direct"
	}
	if c.PingRate == 0 {
		c.PingRate = 100
	}
	if c.DropAfter == 0 {
		c.DropAfter = c.Duration / 3
	}
	if c.ProgressEvery == 0 {
		c.ProgressEvery = time.Second
	}
	return c
}

// Validate reports the first setting Run cannot work with.
func (c Config) Validate() error {
	known := false
	for _, s := range Scenarios {
		known = known || s == c.Scenario
	}
	switch {
	case !known:
		return fmt.Errorf("bench: unknown scenario %q (want one of %s)", c.Scenario, strings.Join(Scenarios, ", "))
	case c.Conns < 1:
		return errors.New("bench: --conns must be at least 1")
	case c.Scenario == "direct" && (c.Conns < 2 || c.Conns%2 != 0):
		return errors.New("bench: direct pairs its clients: --conns must be even and at least 2")
	case c.Duration <= 0:
		return errors.New("bench: --duration must be positive")
	case c.Size < 0 || c.Size > protocol.DefaultMaxMessageSize:
		return fmt.Errorf("bench: --size must be 0 to %d", protocol.DefaultMaxMessageSize)
	case c.Rate < 0:
		return errors.New("bench: --rate must not be negative")
	case c.Inflight < 1 || c.Window < 1 || c.Dialers < 1:
		return errors.New("bench: --inflight, --window and --dialers must be at least 1")
	case c.Lane < protocol.LaneInteractive || c.Lane > protocol.LaneBulk:
		return errors.New("bench: --lane must be 1, 2 or 3")
	case c.Fill != "random" && c.Fill != "text" && c.Fill != "zero":
		return fmt.Errorf("bench: --fill %q: want random, text or zero", c.Fill)
	case c.StormVia != "direct" && c.StormVia != "publish":
		return fmt.Errorf("bench: --via %q: want direct or publish", c.StormVia)
	case c.PingRate <= 0:
		return errors.New("bench: --ping-rate must be positive")
	case c.Scenario == "reconnect-storm" && c.DropAfter >= c.Duration:
		return errors.New("bench: --drop-after must be shorter than --duration")
	case c.ServerPID < 0:
		return errors.New("bench: --server-pid must be a process id")
	}
	if c.Light {
		return c.validateLight()
	}
	return nil
}

// validateLight refuses what bare sockets do not do.
func (c Config) validateLight() error {
	switch {
	case c.Scenario != "echo":
		return fmt.Errorf("bench: --light is for echo only, not %s (idle holds bare sockets already, unless --full-clients)", c.Scenario)
	case c.Rate > 0:
		return errors.New("bench: --light keeps --inflight requests in flight per connection as fast as they are answered (closed loop) and cannot pace them: drop --rate, or --light for an open-loop echo through the Go client")
	case c.Compression:
		return errors.New("bench: --light sends uncompressed frames: drop --compression")
	case c.Size > maxLightSize:
		return fmt.Errorf("bench: --light sends each request as one frame: --size must be at most %d (larger messages are fragmented, SPEC §10)", maxLightSize)
	}
	return nil
}

// ParseSources reads a list of local addresses: comma-separated addresses
// and IPv4 ranges, as in "127.0.0.1-127.0.0.8,127.0.1.1". A range may give
// the last address in full or only its last octet ("127.0.0.1-8").
func ParseSources(s string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		first, err := netip.ParseAddr(lo)
		if err != nil {
			return nil, fmt.Errorf("bench: source %q: %w", part, err)
		}
		if !isRange {
			out = append(out, first)
			continue
		}
		if !first.Is4() {
			return nil, fmt.Errorf("bench: source range %q: only IPv4 ranges", part)
		}
		last, err := netip.ParseAddr(hi)
		if err != nil {
			b := first.As4()
			var n int
			if _, err2 := fmt.Sscanf(hi, "%d", &n); err2 != nil || n < 0 || n > 255 || fmt.Sprint(n) != hi {
				return nil, fmt.Errorf("bench: source range %q: %w", part, err)
			}
			b[3] = byte(n)
			last = netip.AddrFrom4(b)
		}
		if !last.Is4() || last.Less(first) {
			return nil, fmt.Errorf("bench: source range %q runs backwards", part)
		}
		for a := first; ; a = a.Next() {
			out = append(out, a)
			if len(out) > 1<<16 {
				return nil, fmt.Errorf("bench: source range %q: more than 65,536 addresses", part)
			}
			if a == last {
				break
			}
		}
	}
	return out, nil
}
