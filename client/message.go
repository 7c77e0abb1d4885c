package client

import (
	"sync/atomic"

	"github.com/ferry-proto/ferry/protocol"
)

// Handler handles one incoming message. Handlers and the other callbacks
// (WithGapReportHandler, WithStateHandler, SendAsync's done) run one at a
// time on the client's callback goroutine, in the order the messages
// arrived, so messages of one lane are handled in order. A handler may call
// any method of the Client, including the blocking ones: responses and
// ACKs are read by another goroutine. While it runs, no other message is
// handled; incoming messages queue up (to a bound, after which the client
// stops reading the connection).
//
// The return value answers for the message where the protocol needs an
// answer:
//
//   - a DATA request (Message.IsRequest) not answered with Reply gets an
//     empty response for nil, a RESULT HANDLER_ERROR with the error's text
//     otherwise (NO_SUCH_ROUTE when there is no handler);
//   - a message sent with APP_ACK (Message.NeedsConfirm) not confirmed with
//     Confirm gets a CONFIRM: PROCESSED for nil, REJECTED otherwise, except
//     that ErrConfirmLater leaves it unconfirmed for a later Confirm call.
type Handler func(m *Message) error

// Kind is the frame type a message came in.
type Kind uint8

const (
	KindData    Kind = Kind(protocol.FrameData)
	KindPublish Kind = Kind(protocol.FramePublish)
	KindDirect  Kind = Kind(protocol.FrameDirect)
)

func (k Kind) String() string { return protocol.FrameType(k).String() }

// Message is one incoming message, whole (reassembled and decompressed).
// It belongs to the handler, Payload included, and may be kept.
type Message struct {
	Kind     Kind
	Lane     protocol.Lane
	Route    uint32 // DATA
	Topic    string // PUBLISH
	Peer     string // DIRECT: the sender's client id, set by the server
	Payload  []byte
	Reliable bool

	c       *Client
	corr    uint32 // DATA request
	connGen uint64 // the connection a request came on
	sessGen uint64 // the session an APP_ACK message belongs to
	seq     uint64 // Seq of the frame that completed it (CONFIRM)
	arrived int64  // client clock, for TTL
	ttl     uint32 // 0: none
	expiry  bool
	// answered is set by Reply, Confirm or the automatic answer: bit 0
	// the request, bit 1 the confirmation.
	answered atomic.Uint32
	appAck   bool
}

// IsRequest reports whether the message is a DATA request (SPEC §6.1): it
// must be answered exactly once, with Reply or by the handler's return.
func (m *Message) IsRequest() bool { return m.Kind == KindData && m.corr != 0 }

// NeedsConfirm reports whether the sender asked for a CONFIRM (APP_ACK).
func (m *Message) NeedsConfirm() bool { return m.appAck }

// Reply answers a DATA request with a response carrying payload, on the
// request's lane (SPEC §6.1). It fails with ErrNotRequest for a message
// that is not a request or was answered already, and with ErrDisconnected
// when the connection the request came on has ended (the server has failed
// the request itself). Safe from any goroutine.
func (m *Message) Reply(payload []byte) error {
	if !m.IsRequest() || m.answered.Or(1)&1 != 0 {
		return ErrNotRequest
	}
	return m.c.reply(m, payload, false, protocol.CodeOK, "")
}

// Confirm sends the CONFIRM of a message received with APP_ACK (SPEC §7.7):
// protocol.ConfirmProcessed, or protocol.ConfirmRejected for a NACK, after
// which the sender redelivers the message later or dead-letters it. It fails
// with ErrNoConfirm when the message needs none or was confirmed already,
// and with ErrSessionLost when the session it came in has ended. A CONFIRM
// that cannot be written now (no connection) is kept and sent after the
// session resumes. Safe from any goroutine.
func (m *Message) Confirm(v protocol.Verdict) error {
	if !m.appAck || m.answered.Or(2)&2 != 0 {
		return ErrNoConfirm
	}
	return m.c.confirm(m, v)
}

// State is where a Client is in its life.
type State uint8

const (
	// StateConnecting: no connection yet, or between connections.
	StateConnecting State = iota
	// StateConnected: a connection is up and its handshake complete.
	StateConnected
	// StateClosed: the client is closed.
	StateClosed
)

var stateNames = [...]string{"connecting", "connected", "closed"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "State(?)"
}

// EventKind says what happened to the connection.
type EventKind uint8

const (
	// EventConnected: the first connection of the client is up (a new
	// session).
	EventConnected EventKind = iota + 1
	// EventResumed: a reconnect resumed the session; nothing was lost.
	EventResumed
	// EventNewSession: a reconnect got a new session: the server lost the
	// old one (expired, restarted, RESUME_FAILED, or no resumption offered).
	// Event.Lost reliable messages were failed with ErrSessionLost, or sent
	// again (WithResendOnNewSession); subscriptions are made again.
	EventNewSession
	// EventDisconnected: the connection ended (Event.Err says why); the
	// client reconnects.
	EventDisconnected
	// EventClosed: the client closed, for good. Event.Err is nil after
	// Close and the reason otherwise.
	EventClosed
)

var eventNames = [...]string{"", "connected", "resumed", "new-session", "disconnected", "closed"}

func (k EventKind) String() string {
	if int(k) < len(eventNames) && k != 0 {
		return eventNames[k]
	}
	return "EventKind(?)"
}

// Event is one connection event, for WithStateHandler.
type Event struct {
	Kind EventKind
	Err  error // EventDisconnected, EventClosed: why
	// Lost counts the reliable messages the old session lost
	// (EventNewSession): failed, or resent with WithResendOnNewSession.
	Lost int
}

// Stats are the client's counters since Dial.
type Stats struct {
	Connects    uint64 // handshakes completed
	Reconnects  uint64 // handshakes completed after the first
	Resumes     uint64 // reconnects that resumed the session
	NewSessions uint64 // reconnects that got a new session (state lost)
	// Replayed counts reliable frames sent again on a resumed session
	// (from the server's Received+1).
	Replayed uint64
	// Duplicates counts reliable frames received again and dropped.
	Duplicates uint64
	// Lost counts reliable messages failed with ErrSessionLost; Resent,
	// those sent again instead (WithResendOnNewSession).
	Lost   uint64
	Resent uint64
	// Dropped counts unreliable messages (sent or received) dropped because
	// a connection ended before they were written or completed, and
	// received messages that expired (TTL, SPEC §6.4) before delivery,
	// expired placeholders of a replay included (SPEC §12.8).
	Dropped uint64
	// GapReports counts GAP_REPORT frames; the Gap fields add up their
	// counts.
	GapReports      uint64
	GapDelivered    uint64
	GapDropped      uint64
	GapDroppedBytes uint64
	GapExpired      uint64
	// Messages sent (every frame of a message written counts once, when its
	// last frame is written the first time) and received (delivered to a
	// handler or a waiting request).
	MessagesSent     uint64
	MessagesReceived uint64
}

type counters struct {
	connects, reconnects, resumes, newSessions atomic.Uint64
	replayed, duplicates, lost, resent         atomic.Uint64
	dropped                                    atomic.Uint64
	gapReports, gapDelivered, gapDropped       atomic.Uint64
	gapDroppedBytes, gapExpired                atomic.Uint64
	sent, received                             atomic.Uint64
}

func (k *counters) snapshot() Stats {
	return Stats{
		Connects: k.connects.Load(), Reconnects: k.reconnects.Load(), Resumes: k.resumes.Load(),
		NewSessions: k.newSessions.Load(), Replayed: k.replayed.Load(), Duplicates: k.duplicates.Load(),
		Lost: k.lost.Load(), Resent: k.resent.Load(), Dropped: k.dropped.Load(),
		GapReports: k.gapReports.Load(), GapDelivered: k.gapDelivered.Load(), GapDropped: k.gapDropped.Load(),
		GapDroppedBytes: k.gapDroppedBytes.Load(), GapExpired: k.gapExpired.Load(),
		MessagesSent: k.sent.Load(), MessagesReceived: k.received.Load(),
	}
}
