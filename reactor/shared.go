package reactor

import (
	"errors"
	"sync/atomic"

	"github.com/ferry-proto/ferry/codec"
	"github.com/ferry-proto/ferry/protocol"
)

// Shared is a frame encoded once and sent to many connections without a
// copy per connection: topic fan-out. Each connection that queues it holds
// a reference and drops it once the bytes are written (or dropped); the
// pooled buffer returns to the pool with the last reference.
//
// A Shared frame is sent as it was encoded: never compressed, never
// fragmented. A payload larger than a connection's fragment size is refused
// by SendShared with ErrSharedTooLarge; send it with Send instead.
type Shared struct {
	buf        *codec.Buffer
	refs       atomic.Int32
	lane       protocol.Lane
	typ        protocol.FrameType
	droppable  bool
	payloadLen int
	reliable   bool
}

// ErrSharedTooLarge: the shared frame's payload exceeds this connection's
// fragment size.
var ErrSharedTooLarge = errors.New("reactor: shared frame larger than the fragment size")

// NewShared encodes f (a DATA, PUBLISH, DIRECT or RESULT without FRAGMENT or
// COMPRESSED) into a pooled buffer. The caller holds one reference and
// calls Release when it has sent it to everyone. Safe from any goroutine.
func NewShared(f *codec.Frame) (*Shared, error) {
	if !Sendable(f.Type) {
		return nil, ErrNotSendable
	}
	if f.Flags&(protocol.FlagFragment|protocol.FlagCompressed) != 0 {
		return nil, ErrNotSendable
	}
	g := *f
	if g.Flags.Has(protocol.FlagReliable) {
		g.Seq = 1 // each connection numbers its copy as it sends it
	}
	if err := g.Check(protocol.HardMaxFrameSize); err != nil {
		return nil, err
	}
	b := codec.GetBuffer()
	b.B = f.Append(b.B[:0])
	s := &Shared{buf: b, lane: f.Lane, typ: f.Type, payloadLen: len(f.Payload),
		droppable: f.Lane == protocol.LaneBulk && !f.Flags.Has(protocol.FlagReliable),
		reliable:  f.Type.IsMessage() && f.Flags.Has(protocol.FlagReliable)}
	s.refs.Store(1)
	return s, nil
}

// Len is the encoded size of the frame.
func (s *Shared) Len() int { return len(s.buf.B) }

// Release drops one reference. Safe from any goroutine.
func (s *Shared) Release() {
	if n := s.refs.Add(-1); n == 0 {
		codec.PutBuffer(s.buf)
		s.buf = nil
	} else if n < 0 {
		panic("reactor: Shared released too often")
	}
}

// SendShared queues s for the peer without copying it. Safe from any
// goroutine; the same backpressure rules as Send apply (a slow subscriber
// never blocks the publisher: it is dropped from, or closed).
func (c *Conn) SendShared(s *Shared) error { return c.SendSharedFrom(nil, s) }

// SendSharedFrom is SendShared from the callback of from, queuing straight
// into c when SendFrom would. Call it only from from's callback (or with
// from nil).
func (c *Conn) SendSharedFrom(from *Conn, s *Shared) error {
	if c.closed.Load() {
		c.ctr.Drops[DropClosed].Add(1)
		return ErrClosed
	}
	if s.lane == protocol.LaneControl || s.payloadLen > c.fragSizeShared() {
		return ErrSharedTooLarge
	}
	if s.reliable {
		// Each subscriber numbers its own copy (SPEC §12).
		b := codec.GetBuffer()
		b.B = append(b.B[:0], s.buf.B...)
		it := outItem{buf: b, lane: s.lane, typ: s.typ, msgs: 1, rel: true}
		if err := c.admit(&it); err != nil {
			return err
		}
		return c.handOver(from, it)
	}
	if err := c.admitN(int64(len(s.buf.B)), s.droppable); err != nil {
		return err
	}
	s.refs.Add(1)
	return c.handOver(from, outItem{buf: s.buf, shared: s, lane: s.lane, typ: s.typ, msgs: 1, bulkDroppable: s.droppable})
}

// handOver queues an admitted item: straight into the lanes when from's
// callback may (see near), through the send queue otherwise.
func (c *Conn) handOver(from *Conn, it outItem) error {
	if !c.near(from) {
		return c.pushPending(it)
	}
	c.enqueue(it)
	c.loop.markDirty(c)
	return nil
}
