package client

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"net"
	"time"

	"github.com/ferry-proto/ferry/codec"
	"github.com/ferry-proto/ferry/codec/seqwin"
)

// Option configures a Client at Dial.
type Option func(*config)

// DialFunc opens the transport to addr. The default is a net.Dialer with
// TCP_NODELAY (Go's default for TCP). Tests use it to go through a
// fault-injection proxy.
type DialFunc func(ctx context.Context, addr string) (net.Conn, error)

type config struct {
	clientID      string
	token         []byte
	heartbeat     time.Duration
	compression   bool
	receiveMax    int
	sessionExpiry time.Duration
	reconnect     bool
	backoffMin    time.Duration
	backoffMax    time.Duration
	pendingMsgs   int
	pendingBytes  int
	resend        bool
	dial          DialFunc
	log           *slog.Logger
	handler       Handler
	onGap         func(codec.GapReport)
	onState       func(Event)

	// Not options: constants that tests shorten.
	handshakeTimeout time.Duration
	inflightBytes    int
	ackPolicy        seqwin.AckPolicy
	rnd              func() float64
	reasm            codec.ReassemblyLimits
	inboxMsgs        int
	inboxBytes       int
}

func defaultConfig() config {
	return config{
		receiveMax:       DefaultReceiveMax,
		reconnect:        true,
		backoffMin:       500 * time.Millisecond,
		backoffMax:       30 * time.Second,
		pendingMsgs:      10_000,
		pendingBytes:     16 << 20,
		dial:             defaultDial,
		log:              slog.New(slog.DiscardHandler),
		handshakeTimeout: 10 * time.Second,
		inflightBytes:    1 << 20,
		ackPolicy:        seqwin.AckPolicy{EveryN: 2, MaxDelay: 25 * time.Millisecond},
		rnd:              rand.Float64,
		reasm:            codec.DefaultReassemblyLimits(),
		inboxMsgs:        8192,
		inboxBytes:       32 << 20,
	}
}

// DefaultReceiveMax is the window of unacknowledged reliable frames per lane
// the client announces unless WithReceiveMax says otherwise (SPEC §5.4.5).
const DefaultReceiveMax = 256

func defaultDial(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

// WithClientID asks for a client id (SPEC §5.4.7); without it the server
// assigns one. Client.ClientID returns the id in effect.
func WithClientID(id string) Option { return func(c *config) { c.clientID = id } }

// WithToken sets the AuthToken sent in HELLO; the client keeps its own copy.
func WithToken(token []byte) Option {
	return func(c *config) { c.token = append([]byte(nil), token...) }
}

// WithHeartbeat proposes the heartbeat interval K (SPEC §5.4.3); the server
// decides. 0, the default, asks for the server's default.
func WithHeartbeat(k time.Duration) Option { return func(c *config) { c.heartbeat = k } }

// WithCompression offers snappy compression (SPEC §11); it is used when the
// server agrees. Off by default.
func WithCompression(on bool) Option { return func(c *config) { c.compression = on } }

// WithReceiveMax sets how many reliable frames per lane the server may send
// before it waits for our ACK (SPEC §5.4.5). 0 means DefaultReceiveMax
// (256); values are clamped to 1..512, the most this client deduplicates
// exactly.
func WithReceiveMax(n int) Option { return func(c *config) { c.receiveMax = n } }

// WithSessionExpiry asks the server to keep the session this long after a
// connection ends, so that a reconnect resumes it (SPEC §5.4.6). 0, the
// default, asks for the server's default; the server may grant another
// value.
func WithSessionExpiry(d time.Duration) Option { return func(c *config) { c.sessionExpiry = d } }

// WithReconnect turns automatic reconnection on (the default) or off. Off,
// the first connection that ends closes the client.
func WithReconnect(on bool) Option { return func(c *config) { c.reconnect = on } }

// WithBackoff sets the reconnect backoff: the first retry waits initial,
// each further one 1.6 times more, at most max, each ±20 % at random.
// Defaults 0.5 s and 30 s. A GOAWAY's reconnect hint replaces the backoff
// for the retry that follows it (SPEC §7.4).
func WithBackoff(initial, max time.Duration) Option {
	return func(c *config) {
		if initial > 0 {
			c.backoffMin = initial
		}
		if max > 0 {
			c.backoffMax = max
		}
	}
}

// WithMaxPending bounds the reliable messages the client holds (queued,
// in flight or waiting for a reconnect): count and payload bytes. Defaults
// 10,000 and 16 MiB. At the bound SendReliable and Direct wait (until their
// context ends) and SendAsync and a reliable Publish return ErrQueueFull.
// One message larger than the byte bound is accepted when nothing else is
// pending.
func WithMaxPending(msgs, bytes int) Option {
	return func(c *config) {
		if msgs > 0 {
			c.pendingMsgs = msgs
		}
		if bytes > 0 {
			c.pendingBytes = bytes
		}
	}
}

// WithResendOnNewSession chooses what happens to reliable messages that
// were sent but not acknowledged when the server starts a new session
// (state lost, SPEC §5.4.7). Off (the default) they fail with
// ErrSessionLost: at most once. On, they are sent again as new messages
// in the new session, and every reliable message carries an idempotency
// key (SPEC §6.5, KEYED) so that a server that had accepted one before
// the session was lost drops the copy: exactly once for the server's
// application, within its key retention (at least once with a server
// that keeps no keys). Either way Stats and the NewSession Event count
// them.
func WithResendOnNewSession(on bool) Option { return func(c *config) { c.resend = on } }

// WithDialer replaces how the transport is opened.
func WithDialer(dial DialFunc) Option {
	return func(c *config) {
		if dial != nil {
			c.dial = dial
		}
	}
}

// WithLogger sets the logger for connection events (connects, drops,
// protocol errors, notices). The default discards. Tokens are never logged.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.log = l
		}
	}
}

// WithHandler sets the handler of incoming DATA and DIRECT messages, and of
// PUBLISH messages that match a subscription made with a nil handler. See
// Handler for the goroutine it runs on.
func WithHandler(h Handler) Option { return func(c *config) { c.handler = h } }

// WithGapReportHandler sets the callback for GAP_REPORT frames (SPEC §7.8):
// what became of the reliable messages the server queued for this client
// while it was away, the dropped ones included, so that no loss is silent.
// It runs on the callback goroutine (see Handler), before the messages the
// report announces. Stats adds the counts up either way.
func WithGapReportHandler(fn func(codec.GapReport)) Option { return func(c *config) { c.onGap = fn } }

// WithStateHandler sets the callback for connection events: connected,
// resumed, new session (state lost), disconnected, closed. It runs on the
// callback goroutine (see Handler), in order with the messages.
func WithStateHandler(fn func(Event)) Option { return func(c *config) { c.onState = fn } }
