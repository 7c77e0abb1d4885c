package reactor

import (
	"log/slog"
	"runtime"
	"time"

	"github.com/ferry-proto/ferry/codec/seqwin"
	"github.com/ferry-proto/ferry/protocol"
)

// HeartbeatProfile bounds the heartbeat interval K a server grants: the
// client proposes, the server clamps to [Min, Max] and answers with the
// result in WELCOME (SPEC §5.4). Default is used when the client proposes 0.
type HeartbeatProfile struct {
	Default, Min, Max time.Duration
}

// Heartbeat profiles with sensible defaults.
var (
	// GameProfile suits game clients: dead peers are found within seconds.
	GameProfile = HeartbeatProfile{Default: 10 * time.Second, Min: 5 * time.Second, Max: 30 * time.Second}
	// IoTProfile suits battery devices on metered links: few wake-ups.
	IoTProfile = HeartbeatProfile{Default: 60 * time.Second, Min: 30 * time.Second, Max: 20 * time.Minute}
)

// Clamp returns the interval granted for a client's proposal (0 = none).
func (p HeartbeatProfile) Clamp(proposed time.Duration) time.Duration {
	if proposed <= 0 {
		return p.Default
	}
	return min(max(proposed, p.Min), p.Max)
}

// Config holds every limit and default of a Server. The zero value of each
// field means its documented default (see WithDefaults).
type Config struct {
	// Addr is the TCP listen address. Default 127.0.0.1:7100.
	Addr string
	// Engine selects the event-loop implementation: "gnet" (default) or
	// "netpoll".
	Engine string
	// Loops is the number of event loops. Default: GOMAXPROCS.
	Loops int
	// ReusePort sets SO_REUSEPORT on the listener (gnet), one listening
	// socket per loop.
	ReusePort bool

	// MaxConns refuses connections past this many with
	// TOO_MANY_CONNECTIONS. Default 100,000.
	MaxConns int
	// HandshakeTimeout closes a connection that sends no HELLO in time
	// with HANDSHAKE_TIMEOUT. Default 5 s.
	HandshakeTimeout time.Duration
	// Heartbeat is the profile heartbeat proposals are clamped to.
	// Default GameProfile.
	Heartbeat HeartbeatProfile
	// PingWarnings is how many PINGs far faster than K (closer than K/8 to
	// the previous one) a peer gets a RATE_LIMITED warning for before it is
	// closed with RATE_LIMITED. Default 3.
	PingWarnings int

	// MaxFrameSize is the largest frame this server accepts, announced in
	// WELCOME. Default 64 KiB, at most 16 MiB.
	MaxFrameSize int
	// MaxMessageSize is the largest reassembled message accepted.
	// Default 16 MiB.
	MaxMessageSize int
	// FragmentSize is the payload size outbound messages are cut at.
	// Default 16 KiB.
	FragmentSize int
	// MaxPartial is how many inbound messages may be partial at once per
	// connection (at most 3, one per lane). Default 3.
	MaxPartial int
	// ReassemblyBytes bounds the declared sizes of a connection's partial
	// messages together. Default 2 × MaxMessageSize.
	ReassemblyBytes int
	// ReassemblyTimeout closes a connection whose partial message gets no
	// fragment for this long. Default 30 s.
	ReassemblyTimeout time.Duration
	// Compression offers snappy compression in WELCOME when the client
	// offers it too. Default off (set true to offer).
	Compression bool
	// ReceiveMax is the in-flight window announced. Default 256.
	ReceiveMax uint16

	// FIFO turns priority off: every message waits in one queue, in the
	// order it was sent, whatever its lane. It exists as the baseline that
	// BenchmarkLaneLatency compares lanes with; do not use it in production.
	FIFO bool
	// LaneWeights are the deficit-round-robin weights of lanes 1, 2 and 3.
	// Default 4:2:1.
	LaneWeights [3]int
	// MaxOutboundBytes caps what may wait to be sent to one connection:
	// our queues plus the engine's buffer. Past it the connection is closed
	// with SLOW_CONSUMER. Default 4 MiB.
	MaxOutboundBytes int
	// HighWatermark: above it, unreliable lane-3 messages are dropped (and
	// counted) rather than queued, and Conn.Backlogged reports true until
	// the backlog falls below LowWatermark. Defaults 1 MiB and 256 KiB.
	HighWatermark, LowWatermark int
	// WriteStallTimeout closes a connection with SLOW_CONSUMER when data
	// waits and none of it is written for this long. Default 30 s.
	WriteStallTimeout time.Duration
	// EngineBuffer is how many bytes the socket refused may wait in the
	// transport's own buffer before lanes 1-3 are held back in their
	// queues, where priority still applies; an urgent message waits behind
	// at most this much plus the kernel's unsent queue. The socket's
	// writability wakes the loop to refill it. Lane 0 is never held back.
	// Default 32 KiB.
	EngineBuffer int
	// NotSentLowat sets TCP_NOTSENT_LOWAT on each socket so that the
	// kernel's unsent queue stays shallow and priority is decided here.
	// Default 16 KiB; negative leaves the kernel default.
	NotSentLowat int
	// DrainTimeout bounds how long Shutdown waits for connections to close
	// after GOAWAY. Default 5 s.
	DrainTimeout time.Duration
	// ReconnectAfter is the hint GOAWAY carries. Default 1 s.
	ReconnectAfter time.Duration

	// Sessions governs sessions, resume and reliable delivery.
	Sessions SessionConfig

	// Handler receives connections and messages. Required.
	Handler Handler
	// Logger for lifecycle events (never per message). Default: discard.
	Logger *slog.Logger
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	if c.Addr == "" {
		c.Addr = "127.0.0.1:7100"
	}
	if c.Engine == "" {
		c.Engine = "gnet"
	}
	def(&c.Loops, runtime.GOMAXPROCS(0))
	def(&c.MaxConns, 100_000)
	defDur(&c.HandshakeTimeout, 5*time.Second)
	if c.Heartbeat == (HeartbeatProfile{}) {
		c.Heartbeat = GameProfile
	}
	def(&c.PingWarnings, 3)
	def(&c.MaxFrameSize, protocol.DefaultMaxFrameSize)
	c.MaxFrameSize = min(max(c.MaxFrameSize, protocol.MinMaxFrameSize), protocol.HardMaxFrameSize)
	def(&c.MaxMessageSize, protocol.DefaultMaxMessageSize)
	c.MaxMessageSize = min(c.MaxMessageSize, protocol.HardMaxMessageSize)
	def(&c.FragmentSize, protocol.DefaultFragmentSize)
	def(&c.MaxPartial, protocol.NumLanes-1)
	def(&c.ReassemblyBytes, 2*c.MaxMessageSize)
	defDur(&c.ReassemblyTimeout, 30*time.Second)
	if c.ReceiveMax == 0 {
		c.ReceiveMax = protocol.DefaultReceiveMax
	}
	// The dedup window tracks 1,024 Seqs: twice the largest window.
	c.ReceiveMax = min(c.ReceiveMax, seqwin.MaxReceiveMax)
	if c.LaneWeights == [3]int{} {
		c.LaneWeights = [3]int{4, 2, 1}
	}
	for i := range c.LaneWeights {
		c.LaneWeights[i] = max(c.LaneWeights[i], 1)
	}
	def(&c.MaxOutboundBytes, 4<<20)
	def(&c.HighWatermark, 1<<20)
	def(&c.LowWatermark, 256<<10)
	defDur(&c.WriteStallTimeout, 30*time.Second)
	def(&c.EngineBuffer, 32<<10)
	def(&c.NotSentLowat, 16<<10)
	defDur(&c.DrainTimeout, 5*time.Second)
	defDur(&c.ReconnectAfter, time.Second)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}
