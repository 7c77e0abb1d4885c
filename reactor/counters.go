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
	DropQueueFull    DropReason = iota // lane-3 unreliable message over the high watermark
	DropClosed                         // the connection closed with the message still queued
	DropSlowConsumer                   // the message would have passed MaxOutboundBytes
	DropExpired                        // the message's TTL ran out before it was sent
	numDropReasons
)

var dropNames = [numDropReasons]string{"queue_full", "closed", "slow_consumer", "expired"}

func (r DropReason) String() string {
	if r < numDropReasons {
		return dropNames[r]
	}
	return "unknown"
}

// DropReasons lists every reason, for exporters.
func DropReasons() []DropReason {
	return []DropReason{DropQueueFull, DropClosed, DropSlowConsumer, DropExpired}
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
}
