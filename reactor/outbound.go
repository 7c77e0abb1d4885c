package reactor

import (
	"errors"
	"time"

	"github.com/ferry-proto/ferry/codec"
	"github.com/ferry-proto/ferry/protocol"
)

// Errors a sender gets back. Each means the message was not queued, and
// each such drop is counted (Counters.Drops).
var (
	ErrClosed       = errors.New("reactor: connection closed")
	ErrDropped      = errors.New("reactor: unreliable bulk message dropped: queue over high watermark")
	ErrSlowConsumer = errors.New("reactor: outbound cap reached; connection closed as a slow consumer")
	ErrNotSendable  = errors.New("reactor: frame type cannot be sent by an application")
	// ErrAppAckTooLarge: a message sent with APP_ACK must fit in one
	// frame (redelivery resends it whole).
	ErrAppAckTooLarge = errors.New("reactor: APP_ACK message larger than the fragment size")
)

// outItem is one message waiting in a lane: an encoded frame, or the
// payload of a message still to be cut into fragments.
type outItem struct {
	buf  *codec.Buffer
	lane protocol.Lane
	typ  protocol.FrameType
	// bulkDroppable: an unreliable lane-3 message, dropped first.
	bulkDroppable bool
	// msgs is how many frames buf holds: small frames queued on the loop
	// are packed into the buffer of the item before them (see SendOnLoop).
	msgs int32
	// frag is set for a message larger than the fragment size; buf then
	// holds the bare payload and the headers are made as it is sent.
	frag *fragItem
	// shared is set when buf belongs to a Shared frame sent to many
	// connections: it is released, never returned to the pool, nor packed
	// into.
	shared *Shared
	// expires is the message's deadline on the loop clock (EXPIRY), 0
	// for none: it is dropped, not sent late, and its TTL is rewritten to
	// what remains (SPEC §6.4).
	expires int64
	// rel: a reliable frame, numbered when it is written (SPEC §12).
	rel bool
	// replay: a frame resent on resume with the Seq it had; its buffer
	// belongs to the session's retained list.
	replay bool
	// tries is how many times the message was delivered before (APP_ACK
	// redeliveries).
	tries uint8
	// unsettled is how many of its bytes, packed into it on the loop,
	// the connection's backlog (Conn.queued) and the lane gauge
	// (Counters.Queued) do not count yet: they are added when the item
	// stops being its lane's tail or a flush leaves it queued, and a
	// reply packed and written in one callback costs no atomic add (one
	// after the payload's copy waits for the copy's stores to drain: ~3 %
	// of a pipelined echo's server CPU). So within a callback others see
	// the backlog short by at most packLimit per lane.
	unsettled int32
}

// settled is how much of the item the backlog and the lane gauge count.
func (it *outItem) settled() int64 { return int64(it.remaining()) - int64(it.unsettled) }

// settle adds to the backlog and the lane gauge what they lack of the tail
// item of each lane.
func (c *Conn) settle() {
	for l := range c.laneSlice() {
		if q := &c.lanes[l]; !q.empty() {
			c.settleTail(q)
		}
	}
}

// settleTail adds to the backlog and the lane gauge what they lack of the
// tail item of q, which is not empty.
func (c *Conn) settleTail(q *laneQueue) {
	if tail := &q.items[len(q.items)-1]; tail.unsettled != 0 {
		n := int64(tail.unsettled)
		tail.unsettled = 0
		c.queued.Add(n)
		c.ctr.Queued[tail.lane].Add(n)
	}
}

// release gives up the item's hold on its bytes.
func (it *outItem) release() {
	switch {
	case it.replay:
	case it.shared != nil:
		it.shared.Release()
	case it.buf != nil:
		codec.PutBuffer(it.buf)
	}
	it.buf, it.shared = nil, nil
}

type fragItem struct {
	tmpl   codec.Frame // fixed fields; tmpl.Name points into name
	name   []byte
	fr     codec.Fragmenter
	hdrLen int
	init   bool
}

// size is the number of bytes the item adds to the queue.
func (it *outItem) size() int { return len(it.buf.B) }

// remaining is what is still unsent of the item, in queue bytes.
func (it *outItem) remaining() int {
	if it.frag != nil && it.frag.init {
		return it.frag.fr.Remaining()
	}
	return len(it.buf.B)
}

// laneQueue is a FIFO of one lane's items, owned by the loop.
type laneQueue struct {
	items   []outItem
	head    int
	deficit int
}

func (q *laneQueue) empty() bool { return q.head == len(q.items) }

// push appends it. A queue that never drains (a consumer always behind)
// would otherwise grow its array forever behind the head: once the
// consumed part is half the array, what is left moves to the front.
func (q *laneQueue) push(it outItem) {
	if q.head > 0 && len(q.items) == cap(q.items) && q.head >= len(q.items)/2 {
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items = q.items[:n]
		q.head = 0
	}
	q.items = append(q.items, it)
}

func (q *laneQueue) peek() *outItem { return &q.items[q.head] }

func (q *laneQueue) pop() *outItem {
	it := &q.items[q.head]
	q.head++
	if q.head == len(q.items) {
		q.head = 0
		q.items = q.items[:0]
	}
	return it
}

// Sendable reports whether a frame of type t may be passed to Send.
func Sendable(t protocol.FrameType) bool {
	return t.IsMessage() || t == protocol.FrameResult
}

// Send queues f for the peer. It is safe from any goroutine and copies
// f's slices, so the caller may reuse them at once. A message larger than
// the fragment size is fragmented as it is sent, so that it delays frames
// of higher-priority lanes by at most one fragment. Order is kept within a
// lane. The error says why a message was not queued: ErrClosed,
// ErrDropped (unreliable lane 3 over the high watermark) or ErrSlowConsumer
// (the outbound cap was reached and the connection is being closed).
func (c *Conn) Send(f *codec.Frame) error {
	if ok, err := c.sendPacked(f); ok {
		return err
	}
	it, err := c.prepare(f)
	if err != nil {
		return err
	}
	if err := c.admit(&it); err != nil {
		return err
	}
	return c.pushPending(it)
}

// pushPending hands an admitted item to the loop: it appends it to the send
// queue and wakes the loop unless a wake-up is already pending. A closed
// connection refuses it (counted as dropped).
func (c *Conn) pushPending(it outItem) error {
	q := c.sendQueue()
	q.mu.Lock()
	if c.closed.Load() {
		q.mu.Unlock()
		c.unqueue(&it)
		c.drop(&it, DropClosed)
		return ErrClosed
	}
	q.pending = append(q.pending, it)
	q.mu.Unlock()
	c.wakeLoop()
	return nil
}

// wakeLoop wakes the loop unless a wake-up is already pending.
func (c *Conn) wakeLoop() {
	if c.wakeQueued.CompareAndSwap(false, true) {
		c.ctr.Wakes.Add(1)
		c.tr.Wake()
	}
}

// SendOnLoop is Send for a handler replying on the connection whose
// callback is running: it queues directly on the loop, with no lock and no
// wake-up, and the frames go out when the callback returns. Calling it from
// any other goroutine, or for another connection, corrupts state.
func (c *Conn) SendOnLoop(f *codec.Frame) error {
	if c.packOnLoop(f, false) {
		return nil
	}
	it, err := c.prepare(f)
	if err != nil {
		return err
	}
	if err := c.admit(&it); err != nil {
		return err
	}
	c.enqueue(it)
	return nil
}

// ReplyOnLoop answers req, the request whose callback is running on this
// connection (DATA with a correlation id), with payload: SendOnLoop of the
// RESPONSE on req's lane, with the same route and correlation id, without
// checking again the fields it takes from req (the decoder did).
func (c *Conn) ReplyOnLoop(req *codec.Frame, payload []byte) error {
	// Field by field: a composite literal is built aside and copied.
	var f codec.Frame
	f.Type, f.Flags, f.Lane = protocol.FrameData, protocol.FlagResponse, req.Lane
	f.Route, f.Corr, f.Payload = req.Route, req.Corr, payload
	if req.Type == protocol.FrameData && req.Corr != 0 && c.packOnLoop(&f, true) {
		return nil
	}
	return c.SendOnLoop(&f)
}

// SendFrom is Send for a handler running in the callback of from (the
// publisher of a topic, the sender of a DIRECT) that sends to c. When c
// belongs to the same event loop, the frame is queued straight into c's
// lanes, packed with the frames before it, with no lock and no wake-up,
// and c is flushed once the callback returns; otherwise, or while other
// goroutines' messages wait for c's loop to move them (their order is
// kept), it is Send. Call it only from from's callback.
func (c *Conn) SendFrom(from *Conn, f *codec.Frame) error {
	if !c.near(from) {
		return c.Send(f)
	}
	if err := c.SendOnLoop(f); err != nil {
		return err
	}
	c.loop.markDirty(c)
	return nil
}

// near reports whether the callback of from, running now, may queue
// straight into c: same loop, one goroutine per loop (gnet), c open, no
// resume hand-off and nothing waiting in c's send queue. c's loop-owned
// state is read only once the loops are known to be the same.
func (c *Conn) near(from *Conn) bool {
	return from != nil && from.loop == c.loop && c.loop.serial && c.state != stateClosed &&
		!c.wakeQueued.Load() && c.handoff.Load() == nil
}

// lane returns the queue of lane l (1-3).
func (c *Conn) lane(l protocol.Lane) *laneQueue {
	if c.lanes == nil {
		c.lanes = new([protocol.NumLanes - 1]laneQueue)
	}
	return &c.lanes[l-1]
}

// laneSlice is the lane queues to range over: none before the first
// message was queued.
func (c *Conn) laneSlice() []laneQueue {
	if c.lanes == nil {
		return nil
	}
	return c.lanes[:]
}

// enqueue puts an admitted item in its lane on the loop. A RESULT on lane
// 0 joins the control frames, which go out first.
func (c *Conn) enqueue(it outItem) {
	if it.lane == protocol.LaneControl {
		c.ctrl = append(c.ctrl, it.buf.B...)
		c.queued.Add(-int64(it.size()))
		c.ctr.FramesOut[it.typ].Add(1)
		it.release()
		return
	}
	c.lane(c.queueOf(it.lane)).push(it)
	c.ctr.Queued[it.lane].Add(int64(it.size()))
}

// packLimit is the most bytes of small frames packed into one queued
// buffer: a default fragment's worth, so packing never coarsens the lanes'
// round robin by more than fragmenting does.
const packLimit = protocol.DefaultFragmentSize

// packOnLoop queues f when it is a small plain message (no reliability,
// expiry, compression or fragmentation) and the backlog is under the high
// watermark, encoding it into the buffer of the last item of its lane when
// that item holds small frames of the same kind and has room, and into a
// new pooled buffer otherwise: a burst of replies costs one buffer and one
// iovec per packLimit bytes, and none of the ordinary path's steps. It
// reports false when f must take the ordinary path, which also gives any
// error. checked says f's fields are known good (ReplyOnLoop).
func (c *Conn) packOnLoop(f *codec.Frame, checked bool) bool {
	if c.state == stateClosed || f.Lane < protocol.LaneInteractive || !f.Lane.Valid() || (f.Type != protocol.FrameData && f.Type != protocol.FramePublish && f.Type != protocol.FrameDirect) ||
		f.Flags&(protocol.FlagReliable|protocol.FlagExpiry|protocol.FlagFragment) != 0 ||
		(c.compress && len(f.Payload) >= codec.MinCompressSize) {
		return false
	}
	if len(f.Payload) > c.fragSizeShared() || len(f.Payload) > c.peerMaxMsgShared() {
		return false // to be fragmented, or over the peer's maximum
	}
	// checkFrame's other checks: f is plain, and its payload is at most a
	// fragment, far under the hard frame limit.
	if !checked && f.Check(protocol.HardMaxFrameSize) != nil {
		return false
	}
	n := f.Len()
	q := c.lane(c.queueOf(f.Lane))
	var tail *outItem
	backlog := c.queued.Load() + c.engineBuf.Load() + int64(n)
	if k := len(q.items); k > q.head {
		tail = &q.items[k-1]
		backlog += int64(tail.unsettled)
	}
	if backlog > int64(c.srv.cfg.HighWatermark) {
		return false // the ordinary path applies the watermarks and the cap
	}
	droppable := f.Lane == protocol.LaneBulk
	if tail != nil {
		if packable(tail, f, droppable) && len(tail.buf.B)+n <= packLimit {
			tail.buf.B = f.Append(tail.buf.B)
			tail.msgs++
			tail.unsettled += int32(n)
			return true
		}
		c.settleTail(q)
	}
	c.queued.Add(int64(n))
	c.ctr.Queued[f.Lane].Add(int64(n))
	b := codec.GetBuffer()
	b.B = f.Append(b.B[:0])
	q.push(outItem{buf: b, lane: f.Lane, typ: f.Type, msgs: 1, bulkDroppable: droppable})
	return true
}

// packSmall is the largest payload Send packs into a shared buffer under the
// send queue's lock; larger ones are encoded outside it.
const packSmall = 1 << 10

// packable reports whether f, a plain message, may join the frames packed
// in tail: tail must be plain too (a reliable buffer is numbered, kept and
// replayed whole, an expiring one dropped whole, and a shared one is not
// ours to write to).
func packable(tail *outItem, f *codec.Frame, droppable bool) bool {
	return tail.frag == nil && tail.shared == nil && !tail.rel && !tail.replay && tail.expires == 0 &&
		tail.typ == f.Type && tail.lane == f.Lane && tail.bulkDroppable == droppable
}

// sendPacked is Send for a small message: it encodes f straight into the
// buffer of the last message queued for the loop when that one is of the
// same kind and has room, so a burst of sends between two wake-ups costs
// one pooled buffer. It reports false when f must take the ordinary path.
func (c *Conn) sendPacked(f *codec.Frame) (bool, error) {
	if len(f.Payload) > packSmall || f.Lane < protocol.LaneInteractive || !f.Lane.Valid() || f.Flags&(protocol.FlagReliable|protocol.FlagExpiry) != 0 ||
		(f.Type != protocol.FrameData && f.Type != protocol.FramePublish && f.Type != protocol.FrameDirect) ||
		(c.compressShared() && len(f.Payload) >= codec.MinCompressSize) || len(f.Payload) > c.fragSizeShared() {
		return false, nil
	}
	if c.closed.Load() {
		c.ctr.Drops[DropClosed].Add(1)
		return true, ErrClosed
	}
	if err := c.checkFrame(f); err != nil {
		return true, err
	}
	n := f.Len()
	droppable := f.Lane == protocol.LaneBulk && !f.Flags.Has(protocol.FlagReliable)
	if err := c.admitN(int64(n), droppable); err != nil {
		return true, err
	}
	q := c.sendQueue()
	q.mu.Lock()
	if c.closed.Load() {
		q.mu.Unlock()
		c.queued.Add(-int64(n))
		c.ctr.Drops[DropClosed].Add(1)
		return true, ErrClosed
	}
	if k := len(q.pending); k > 0 && packable(&q.pending[k-1], f, droppable) && len(q.pending[k-1].buf.B)+n <= packLimit {
		tail := &q.pending[k-1]
		tail.buf.B = f.Append(tail.buf.B)
		tail.msgs++
	} else {
		b := codec.GetBuffer()
		b.B = f.Append(b.B[:0])
		q.pending = append(q.pending, outItem{buf: b, lane: f.Lane, typ: f.Type, msgs: 1, bulkDroppable: droppable})
	}
	q.mu.Unlock()
	c.wakeLoop()
	return true, nil
}

// queueOf is the lane queue a message of lane waits in: its own, or the
// single FIFO queue when priority is off.
func (c *Conn) queueOf(lane protocol.Lane) protocol.Lane {
	if c.srv.cfg.FIFO {
		return protocol.LaneNormal
	}
	return lane
}

// prepare encodes f into a pooled buffer, compressed when negotiated and
// worthwhile; a large message keeps only its payload, fragmented later.
func (c *Conn) prepare(f *codec.Frame) (outItem, error) {
	if c.closed.Load() {
		c.ctr.Drops[DropClosed].Add(1)
		return outItem{}, ErrClosed
	}
	if !Sendable(f.Type) {
		return outItem{}, ErrNotSendable
	}
	if err := c.checkFrame(f); err != nil {
		return outItem{}, err
	}
	it := outItem{lane: f.Lane, typ: f.Type, msgs: 1, bulkDroppable: f.Lane == protocol.LaneBulk && !f.Flags.Has(protocol.FlagReliable),
		rel: f.Type.IsMessage() && f.Flags.Has(protocol.FlagReliable)}
	if f.Flags.Has(protocol.FlagExpiry) {
		it.expires = c.srv.now() + int64(f.TTL)*int64(time.Millisecond)
	}
	b := codec.GetBuffer()
	if f.Type.IsMessage() && codec.NeedsFragments(len(f.Payload), c.fragSizeShared()) {
		if f.Flags.Has(protocol.FlagAppAck) {
			codec.PutBuffer(b)
			return outItem{}, ErrAppAckTooLarge
		}
		b.B = append(b.B[:0], f.Payload...)
		fi := &fragItem{tmpl: *f, name: append([]byte(nil), f.Name...)}
		fi.tmpl.Name = fi.name
		fi.tmpl.Payload = nil
		it.buf, it.frag = b, fi
		return it, nil
	}
	g := *f
	g.Flags &^= protocol.FlagCompressed
	if c.compressShared() && f.Type.IsMessage() && len(f.Payload) >= codec.MinCompressSize {
		// Compress into the tail of the buffer, then encode the header
		// in front of whichever payload is smaller.
		b.B = b.B[:0]
		z, ok := codec.AppendMaybeCompressed(b.B, f.Payload)
		if ok {
			g.Flags |= protocol.FlagCompressed
			zb := codec.GetBuffer()
			g.Payload = z
			zb.B = g.Append(zb.B[:0])
			b.B = z
			codec.PutBuffer(b)
			it.buf = zb
			return it, nil
		}
	}
	b.B = g.Append(b.B[:0])
	it.buf = b
	return it, nil
}

// checkFrame checks the fields an application gave against the spec.
func (c *Conn) checkFrame(f *codec.Frame) error {
	g := *f
	g.Payload = nil
	if g.Flags.Has(protocol.FlagReliable) {
		g.Seq = 1 // numbered when sent
	}
	if f.Flags.Has(protocol.FlagFragment) {
		return ErrNotSendable // fragmentation is the reactor's job
	}
	if err := g.Check(protocol.HardMaxFrameSize); err != nil {
		return err
	}
	if f.Type.IsMessage() && len(f.Payload) > c.peerMaxMsgShared() {
		return codec.ErrMessageTooLarge
	}
	return nil
}

// admit applies backpressure (Config.HighWatermark, MaxOutboundBytes)
// before a message is queued, and accounts for it.
func (c *Conn) admit(it *outItem) error {
	err := c.admitN(int64(it.size()), it.bulkDroppable)
	if err != nil && it.buf != nil {
		codec.PutBuffer(it.buf)
		it.buf = nil
	}
	return err
}

// admitN applies backpressure to n more bytes and accounts for them; a
// refusal is counted as a drop.
func (c *Conn) admitN(n int64, bulkDroppable bool) error {
	cfg := &c.srv.cfg
	backlog := c.queued.Load() + c.engineBuf.Load()
	if bulkDroppable && backlog > int64(cfg.HighWatermark) {
		c.ctr.Drops[DropQueueFull].Add(1)
		return ErrDropped
	}
	if backlog+n > int64(cfg.MaxOutboundBytes) {
		c.ctr.Drops[DropSlowConsumer].Add(1)
		c.requestClose(protocol.CodeSlowConsumer)
		return ErrSlowConsumer
	}
	if c.queued.Add(n)+c.engineBuf.Load() > int64(cfg.HighWatermark) {
		c.backlogged.Store(true)
	}
	return nil
}

func (c *Conn) unqueue(it *outItem) { c.queued.Add(-int64(it.remaining())) }

// drop releases an item that will not be sent and counts it.
func (c *Conn) drop(it *outItem, why DropReason) {
	c.ctr.Drops[why].Add(uint64(max(it.msgs, 1)))
	it.release()
}

// Backlogged reports whether more than Config.HighWatermark bytes wait for
// this peer; it stays true until the backlog falls below LowWatermark.
// Producers that can hold back (fan-out of bulk data) should. Safe from any
// goroutine.
func (c *Conn) Backlogged() bool { return c.backlogged.Load() }

// Queued is the number of bytes waiting for this peer in our queues and the
// engine's buffer. Safe from any goroutine.
func (c *Conn) Queued() int64 { return c.queued.Load() + c.engineBuf.Load() }

// Close closes the connection with code (an ERROR frame first). Safe from
// any goroutine.
func (c *Conn) Close(code protocol.ErrorCode) { c.requestClose(code) }

func (c *Conn) requestClose(code protocol.ErrorCode) {
	if c.closeReq.CompareAndSwap(0, uint32(code)+1) && c.wakeQueued.CompareAndSwap(false, true) {
		c.tr.Wake()
	}
}

// goAway asks the loop to send GOAWAY and start draining. Safe from any
// goroutine.
func (c *Conn) goAway() {
	if c.pendingGoAway.CompareAndSwap(false, true) && c.wakeQueued.CompareAndSwap(false, true) {
		c.tr.Wake()
	}
}

// onWake runs on the loop after Wake: it moves what other goroutines
// queued into the lanes, then acts on close and GOAWAY requests.
func (c *Conn) onWake() {
	c.wakeQueued.Store(false)
	if c.state == stateClosed {
		return
	}
	if c.handoff.Load() != nil {
		c.finishResume()
	}
	if q := c.sq.Load(); q != nil {
		q.mu.Lock()
		pending := q.pending
		q.pending = q.spare[:0]
		q.mu.Unlock()
		for i := range pending {
			c.enqueue(pending[i])
			pending[i] = outItem{}
		}
		q.spare = pending[:0]
	}
	if code := c.closeReq.Load(); code != 0 {
		c.flush()
		c.closeWith(protocol.ErrorCode(code-1), "closed by server")
		return
	}
	if c.pendingGoAway.Load() && c.state != stateDraining {
		c.sendGoAway()
	}
}

func (c *Conn) sendGoAway() {
	g := codec.Frame{Type: protocol.FrameGoAway, Code: protocol.CodeGoingAway,
		ReconnectAfter: uint32(c.srv.cfg.ReconnectAfter.Milliseconds()), Payload: goAwayReason}
	c.ctrl = g.Append(c.ctrl)
	c.ctr.FramesOut[protocol.FrameGoAway].Add(1)
	c.state = stateDraining
	c.drainUntil = c.loop.now() + int64(c.srv.cfg.DrainTimeout)
	c.schedule()
}

var goAwayReason = []byte("server shutting down")

// maxFlushRounds bounds the writevs one flush makes for one connection
// before it yields the loop to the others; what is left is retried from the
// loop's blocked list.
const maxFlushRounds = 8

// flush writes what is ready: lane 0 first, then lanes 1-3 by deficit round
// robin, in as few writevs as the 1,024-slice limit allows. Lanes 1-3 are
// held back while the transport holds more than Config.EngineBuffer that
// the socket refused, so that priority is decided here: an urgent message
// waits behind at most that much plus the kernel's shallow unsent queue,
// and, the budget being shared by weight, no lane starves. Runs on the loop.
func (c *Conn) flush() { c.flushAt(c.loop.now()) }

// flushAt is flush at time now on the loop clock, read before: at the end
// of a callback, the time the callback began (what it handled took no
// longer than a handler on the loop may).
func (c *Conn) flushAt(now int64) {
	if c.state == stateClosed || c.tr.Flush() != nil {
		return
	}
	for range maxFlushRounds {
		wrote, held := c.flushOnce(now)
		if !wrote || held || c.state == stateClosed || !c.hasQueued() {
			break
		}
	}
	if c.state == stateClosed {
		return
	}
	buffered := c.tr.Buffered()
	c.engineBuf.Store(int64(buffered))
	c.settle() // what stays queued, held back by the window too
	if c.hasQueued() {
		// Retried at the loop's tick, which also watches for stalls.
		c.loop.block(c)
		if buffered == 0 {
			// The socket took everything: only the per-flush limits
			// stopped us. Go again once the loop has served the others.
			c.wakeForWrite()
		}
	}
	if c.backlogged.Load() && c.queued.Load()+int64(buffered) < int64(c.srv.cfg.LowWatermark) {
		c.backlogged.Store(false)
	}
}

// hasLaneData reports whether a lane has something it may send now.
func (c *Conn) hasLaneData() bool {
	if c.lanes == nil {
		return false
	}
	return c.laneReady(&c.lanes[0]) || c.laneReady(&c.lanes[1]) || c.laneReady(&c.lanes[2])
}

// laneReady reports whether q's head may be sent now: a reliable head
// waits while the peer's window is full (SPEC §12).
func (c *Conn) laneReady(q *laneQueue) bool {
	return !q.empty() && !c.windowShut(q.peek())
}

// expire drops the head of q, whose TTL ran out before it was sent.
func (c *Conn) expire(q *laneQueue, it *outItem) {
	n := it.settled()
	c.queued.Add(-n)
	c.ctr.Queued[it.lane].Add(-n)
	c.drop(it, DropExpired)
	*it = outItem{}
	q.pop()
}

// nextLane moves the round robin to the next of lanes 1-3.
func (c *Conn) nextLane() {
	c.drrLane = c.drrLane%3 + 1
	c.drrGranted = false
}

// hasQueued reports whether anything may be written now (a lane held
// back by the peer's window waits for an ACK, not for the socket).
func (c *Conn) hasQueued() bool {
	return len(c.ctrl) > 0 || c.hasLaneData()
}

// flushOnce builds one writev and writes it. It reports whether it wrote
// anything and whether lanes 2-3 were held back by the engine buffer.
func (c *Conn) flushOnce(now int64) (wrote, held bool) {
	if c.state == stateClosed {
		return false, false
	}
	l := c.loop
	iov := l.iov[:0]
	l.arena = l.arena[:0]
	l.release = l.release[:0]
	if len(c.ctrl) > 0 {
		iov = append(iov, c.ctrl)
	}
	// Deficit round robin (Shreedhar and Varghese): each visit to a lane
	// grants it its quantum, and it sends while its head fits. A visit cut
	// short by the budget resumes in the next flush, so that the shares
	// hold across flushes whatever the budget.
	budget := c.srv.cfg.EngineBuffer - c.tr.Buffered()
	for c.hasLaneData() && len(iov) < maxIov-2 {
		if budget <= 0 {
			held = true
			break
		}
		lane := c.drrLane
		q := c.lane(lane)
		if !c.laneReady(q) {
			q.deficit = 0
			c.nextLane()
			continue
		}
		if !c.drrGranted {
			q.deficit += c.srv.quantum[lane]
			c.drrGranted = true
		}
		stop := false
		for c.laneReady(q) && budget > 0 && len(iov) < maxIov-2 {
			it := q.peek()
			n := c.nextSize(it)
			if n > q.deficit {
				break
			}
			if expired(it.expires, now) && !it.replay && (it.frag == nil || !it.frag.init) {
				c.expire(q, it)
				continue
			}
			var ok bool
			if iov, ok = c.appendNext(iov, it, lane, now); !ok {
				stop = true // arena full: the visit resumes in the next flush
				break
			}
			q.deficit -= n
			budget -= n
		}
		if stop || budget <= 0 || len(iov) >= maxIov-2 {
			held = budget <= 0
			break
		}
		if !c.laneReady(q) {
			q.deficit = 0
		}
		c.nextLane()
	}
	if len(iov) > 0 {
		written := 0
		for _, b := range iov {
			written += len(b)
		}
		err := c.tr.Writev(iov)
		// Control frames are rare (handshake, heartbeats): an idle
		// connection keeps no buffer for them.
		c.ctrl = nil
		for i := range l.release {
			l.release[i].release()
		}
		clear(l.release)
		clear(iov)
		l.release = l.release[:0]
		if err != nil {
			return false, held
		}
		// A time read before the write: read after it, a fake clock moved
		// by a test that has already seen these bytes would be read
		// instead.
		c.lastSend = now
		c.ctr.BytesOut.Add(uint64(written))
		return true, held
	}
	return false, held
}

// nextSize is the wire size of what appendNext would write for it.
func (c *Conn) nextSize(it *outItem) int {
	if it.frag == nil {
		return len(it.buf.B)
	}
	return min(c.fragSizeShared(), it.frag.remainingOr(len(it.buf.B))) + 64
}

func (fi *fragItem) remainingOr(n int) int {
	if fi.init {
		return fi.fr.Remaining()
	}
	return n
}

// appendNext adds the item (or its next fragment) to iov. It reports false
// when the arena has no room for a fragment header.
func (c *Conn) appendNext(iov [][]byte, it *outItem, lane protocol.Lane, now int64) ([][]byte, bool) {
	l := c.loop
	q := c.lane(lane)
	ctr := c.ctr
	if it.replay {
		iov = append(iov, it.buf.B)
		*it = outItem{}
		q.pop()
		return iov, true
	}
	if it.frag == nil {
		n := len(it.buf.B)
		patchTTL(it, now)
		if it.rel {
			iov = c.sendReliable(iov, it, now)
		} else {
			iov = append(iov, it.buf.B)
			l.release = append(l.release, *it)
		}
		s := int64(n) - int64(it.unsettled)
		c.queued.Add(-s)
		ctr.Queued[it.lane].Add(-s)
		ctr.MessagesOut[it.lane].Add(uint64(it.msgs))
		ctr.FramesOut[it.typ].Add(uint64(it.msgs))
		*it = outItem{}
		q.pop()
		return iov, true
	}
	fi := it.frag
	if !fi.init {
		c.msgID++
		if it.expires != 0 {
			// SPEC §6.4: every fragment carries what remained when the
			// first was sent.
			fi.tmpl.TTL = uint32(max((it.expires-now)/int64(time.Millisecond), 1))
		}
		fi.fr = codec.NewFragmenter(&fi.tmpl, it.buf.B, c.msgID, c.fragSizeShared())
		h := fi.tmpl
		h.Flags |= protocol.FlagFragment
		fi.hdrLen = h.HeaderLen()
		fi.init = true
	}
	// Every fragment's header has the same length: check for room first.
	if cap(l.arena)-len(l.arena) < fi.hdrLen {
		return iov, false
	}
	f, _ := fi.fr.Next()
	if it.rel {
		iov = c.sendReliableFragment(iov, &f, it.lane, it.expires, now)
	} else {
		start := len(l.arena)
		l.arena = f.AppendHeader(l.arena)
		iov = append(iov, l.arena[start:len(l.arena):len(l.arena)], f.Payload)
	}
	n := len(f.Payload)
	c.queued.Add(-int64(n))
	ctr.Queued[it.lane].Add(-int64(n))
	ctr.FramesOut[f.Type].Add(1)
	if fi.fr.Remaining() == 0 {
		ctr.MessagesOut[it.lane].Add(1)
		l.release = append(l.release, *it)
		*it = outItem{}
		q.pop()
	}
	return iov, true
}

// checkProgress closes a connection whose engine buffer has not drained at
// all for Config.WriteStallTimeout while data waits (SLOW_CONSUMER).
func (c *Conn) checkProgress(now int64) {
	buffered := c.tr.Buffered()
	switch {
	case buffered == 0 || buffered < int(c.lastBuf):
		c.stallSince = now
	case c.stallSince == 0:
		c.stallSince = now
	case now-c.stallSince > int64(c.srv.cfg.WriteStallTimeout):
		c.closeWith(protocol.CodeSlowConsumer, "no write progress")
	}
	c.lastBuf = int32(min(buffered, 1<<31-1))
}

func (c *Conn) sendQueue() *sendQueue {
	if q := c.sq.Load(); q != nil {
		return q
	}
	c.sq.CompareAndSwap(nil, &sendQueue{})
	return c.sq.Load()
}

// packNeg packs the values other goroutines need when they encode for this
// peer into one word, which the loop publishes once, before OnOpen:
// fragment size (bits 0-24), the peer's max message size (bits 25-55),
// compression (bit 56) and a set bit 57 so that the word is never 0.
func packNeg(fragSize, peerMaxMsg int, compress bool) uint64 {
	v := uint64(fragSize)&(1<<25-1) | (uint64(peerMaxMsg)&(1<<31-1))<<25 | 1<<57
	if compress {
		v |= 1 << 56
	}
	return v
}

func (c *Conn) fragSizeShared() int {
	if v := c.neg.Load(); v != 0 {
		return int(v & (1<<25 - 1))
	}
	return c.srv.cfg.FragmentSize
}

func (c *Conn) compressShared() bool { return c.neg.Load()&(1<<56) != 0 }

func (c *Conn) peerMaxMsgShared() int {
	if v := c.neg.Load(); v != 0 {
		return int(v >> 25 & (1<<31 - 1))
	}
	return protocol.DefaultMaxMessageSize
}
