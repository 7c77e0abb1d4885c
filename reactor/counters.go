package reactor

import (
	"sync/atomic"

	"github.com/ferry-proto/ferry/protocol"
)

// DropReason says why an outbound message was not delivered.
type DropReason uint8

// Drop reasons. Every drop is counted (Counters.Drops) and, where the
// sender is known, reported to it by the returned error.
const (
	DropQueueFull      DropReason = iota // lane-3 unreliable message over the high watermark
	DropClosed                           // the connection closed with the message still queued
	DropSlowConsumer                     // the message would have passed MaxOutboundBytes
	DropExpired                          // the message's TTL ran out before it was sent
	DropOfflineFull                      // an offline queue dropped its oldest (reported in GAP_REPORT)
	DropSessionExpired                   // a session expired (or was replaced) with messages still held
	numDropReasons
)

var dropNames = [numDropReasons]string{"queue_full", "closed", "slow_consumer", "expired", "offline_full", "session_expired"}

func (r DropReason) String() string {
	if r < numDropReasons {
		return dropNames[r]
	}
	return "unknown"
}

// DropReasons lists every reason, for exporters.
func DropReasons() []DropReason {
	return []DropReason{DropQueueFull, DropClosed, DropSlowConsumer, DropExpired, DropOfflineFull, DropSessionExpired}
}

// Counters are the server's cheap running totals: plain atomics that any
// goroutine may read at any time (the router exports them to Prometheus).
// The server keeps one set per event loop and sums them on demand
// (Server.Counters).
// Per-lane arrays are indexed by protocol.Lane.
type Counters struct {
	ConnsOpen     atomic.Int64 // connections now open (accepted, not yet closed)
	ConnsAccepted atomic.Uint64
	ConnsRefused  atomic.Uint64 // refused at MaxConns
	Handshakes    atomic.Uint64 // HELLO accepted, WELCOME sent

	FramesIn  [256]atomic.Uint64 // by frame type
	FramesOut [256]atomic.Uint64
	BytesIn   atomic.Uint64
	BytesOut  atomic.Uint64
	// MessagesIn and MessagesOut count application messages by lane (a
	// fragmented message counts once).
	MessagesIn  [protocol.NumLanes]atomic.Uint64
	MessagesOut [protocol.NumLanes]atomic.Uint64
	// Queued is the number of bytes waiting in our outbound lane queues,
	// by lane, over all connections.
	Queued [protocol.NumLanes]atomic.Int64

	Drops  [numDropReasons]atomic.Uint64
	Closes [0x200]atomic.Uint64 // by error code sent or received (codes < 0x200)
	// PingWarnings counts RATE_LIMITED warnings for PINGs far faster than K.
	PingWarnings atomic.Uint64
	// Wakes counts loop wake-ups requested by senders on other goroutines.
	Wakes atomic.Uint64

	// Reliable delivery (SPEC §12).
	ReliableIn    atomic.Uint64 // reliable frames accepted (new Seqs)
	ReliableOut   atomic.Uint64 // reliable frames numbered and sent (not replays)
	DuplicatesIn  atomic.Uint64 // reliable frames received again: re-ACKed, not delivered
	ExpiredIn     atomic.Uint64 // messages received with TTL 0, dropped
	DuplicateKeys atomic.Uint64 // keyed messages whose key was already used (SPEC §6.5), not delivered
	AcksRejected  atomic.Uint64 // ACKs for Seqs never sent (PROTOCOL_ERROR)
	Probes        atomic.Uint64 // PINGs sent because an ACK was overdue
	Replayed      atomic.Uint64 // frames sent again on resume

	// Application-level confirmation (APP_ACK, CONFIRM).
	Confirmed       atomic.Uint64 // CONFIRM PROCESSED received
	Rejected        atomic.Uint64 // CONFIRM REJECTED received
	ConfirmTimeouts atomic.Uint64 // no CONFIRM within the confirm timeout
	Redelivered     atomic.Uint64 // messages sent again after a failed delivery
	DeadLettered    atomic.Uint64 // messages given up after MaxDeliveries

	// Sessions.
	Resumes         atomic.Uint64 // sessions resumed
	ResumesFailed   atomic.Uint64 // HELLOs with a resume token not valid (RESUME_FAILED)
	Takeovers       atomic.Uint64 // sessions resumed while attached elsewhere
	SessionsExpired atomic.Uint64 // detached sessions discarded at expiry
	SessionsRefused atomic.Uint64 // sessions not kept because the store held MaxSessions

	// RTT holds the round-trip samples taken from ACKs (less the peer's
	// ACK delay) and from PONGs, over all connections.
	RTT Histogram
}

func (c *Counters) close(code protocol.ErrorCode) {
	if int(code) < len(c.Closes) {
		c.Closes[code].Add(1)
	}
}

// ClosesBy returns how many connections closed with code.
func (c *Counters) ClosesBy(code protocol.ErrorCode) uint64 {
	if int(code) < len(c.Closes) {
		return c.Closes[code].Load()
	}
	return 0
}

// add adds every counter of o to c.
func (c *Counters) add(o *Counters) {
	c.ConnsOpen.Add(o.ConnsOpen.Load())
	c.ConnsAccepted.Add(o.ConnsAccepted.Load())
	c.ConnsRefused.Add(o.ConnsRefused.Load())
	c.Handshakes.Add(o.Handshakes.Load())
	for i := range c.FramesIn {
		c.FramesIn[i].Add(o.FramesIn[i].Load())
		c.FramesOut[i].Add(o.FramesOut[i].Load())
	}
	c.BytesIn.Add(o.BytesIn.Load())
	c.BytesOut.Add(o.BytesOut.Load())
	for i := range c.MessagesIn {
		c.MessagesIn[i].Add(o.MessagesIn[i].Load())
		c.MessagesOut[i].Add(o.MessagesOut[i].Load())
		c.Queued[i].Add(o.Queued[i].Load())
	}
	for i := range c.Drops {
		c.Drops[i].Add(o.Drops[i].Load())
	}
	for i := range c.Closes {
		c.Closes[i].Add(o.Closes[i].Load())
	}
	c.PingWarnings.Add(o.PingWarnings.Load())
	c.Wakes.Add(o.Wakes.Load())
	for _, p := range [...][2]*atomic.Uint64{
		{&c.ReliableIn, &o.ReliableIn}, {&c.ReliableOut, &o.ReliableOut}, {&c.DuplicatesIn, &o.DuplicatesIn},
		{&c.ExpiredIn, &o.ExpiredIn}, {&c.DuplicateKeys, &o.DuplicateKeys}, {&c.AcksRejected, &o.AcksRejected}, {&c.Probes, &o.Probes},
		{&c.Replayed, &o.Replayed}, {&c.Resumes, &o.Resumes}, {&c.ResumesFailed, &o.ResumesFailed},
		{&c.Takeovers, &o.Takeovers}, {&c.SessionsExpired, &o.SessionsExpired}, {&c.SessionsRefused, &o.SessionsRefused},
		{&c.Confirmed, &o.Confirmed}, {&c.Rejected, &o.Rejected}, {&c.ConfirmTimeouts, &o.ConfirmTimeouts},
		{&c.Redelivered, &o.Redelivered}, {&c.DeadLettered, &o.DeadLettered},
	} {
		p[0].Add(p[1].Load())
	}
	c.RTT.add(&o.RTT)
}
