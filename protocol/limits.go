package protocol

// Limits and defaults, SPEC §14. "Default" values are what a side announces
// when configured with nothing else; "Min" and "Hard" values bound what may
// be announced at all.
const (
	// DefaultMaxFrameSize is the maximum frame size (length prefix
	// included) each side assumes before the handshake completes, and
	// announces when not configured otherwise.
	DefaultMaxFrameSize = 64 << 10
	// MinMaxFrameSize is the smallest maximum frame size a side may
	// announce; a smaller announcement is treated as this value.
	MinMaxFrameSize = 4 << 10
	// HardMaxFrameSize is the ceiling: no side may announce more.
	HardMaxFrameSize = 16 << 20

	// DefaultFragmentSize is the payload size at which senders cut
	// messages into fragments.
	DefaultFragmentSize = 16 << 10

	// DefaultMaxMessageSize is the largest reassembled message a side
	// accepts unless it announces otherwise.
	DefaultMaxMessageSize = 16 << 20
	// HardMaxMessageSize is the largest message FERRY/1 can describe that
	// an implementation may announce (1 GiB).
	HardMaxMessageSize = 1 << 30

	// MaxBatchFrames is the most inner frames one BATCH may hold.
	MaxBatchFrames = 1024

	// MaxClientIDLen, MaxTokenLen, MaxSessionIDLen and MaxTopicLen bound
	// the variable-length fields of HELLO, WELCOME and the message frames.
	MaxClientIDLen  = 256
	MaxTokenLen     = 4096
	MaxSessionIDLen = 64
	MaxTopicLen     = 1024
	// MaxReasonLen bounds the UTF-8 reason text of ERROR and GOAWAY.
	MaxReasonLen = 1024

	// DefaultHeartbeatMs is the heartbeat interval K a server uses when
	// the client proposes none (SPEC §7).
	DefaultHeartbeatMs = 30_000
	// DefaultReceiveMax is the in-flight window of reliable frames per
	// lane that an announced ReceiveMax of 0 means (SPEC §5.4.5, §12.5).
	DefaultReceiveMax = 256
	// MaxReceiveMax is the largest window ReceiveMax can grant: a larger
	// announcement is read as this value (SPEC §5.4.5).
	MaxReceiveMax = 512
	// DefaultSessionExpirySec is the session expiry a server grants when
	// the client asks for its default (SPEC §5.4.6).
	DefaultSessionExpirySec = 120
	// DefaultMaxSessionExpirySec is the longest session expiry a server
	// grants unless configured otherwise; requests are clamped to it
	// (SPEC §5.4.6).
	DefaultMaxSessionExpirySec = 3600

	// DefaultKeyRetentionSec is how long a server remembers, by default,
	// an idempotency key it accepted from a client id (SPEC §6.5).
	DefaultKeyRetentionSec = 600
	// DefaultKeysPerClient is how many idempotency keys a server remembers
	// per client id by default; past it the oldest are forgotten first
	// (SPEC §6.5).
	DefaultKeysPerClient = 10_000
)

// Delivery timing that peers rely on, SPEC §12.4 and §12.6.
const (
	// MaxAckDelayMs is the longest a receiver holds an ACK after the
	// arrival of the oldest reliable frame it has not acknowledged. Senders
	// add it to their probe timeout.
	MaxAckDelayMs = 25
)

// Heartbeat rules, SPEC §7, as fractions of the negotiated interval K.
const (
	// PingAfterNum/PingAfterDen: a side sends PING after 0.8×K without
	// sending anything.
	PingAfterNum, PingAfterDen = 4, 5
	// IdleAfterNum/IdleAfterDen: a side closes with IDLE_TIMEOUT after
	// 1.5×K without receiving anything.
	IdleAfterNum, IdleAfterDen = 3, 2
)
