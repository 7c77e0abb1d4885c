package client

import (
	"context"
	"math/rand/v2"
	"runtime"
	"unsafe"

	"github.com/ferry-proto/ferry/codec"
	"github.com/ferry-proto/ferry/protocol"
)

type callKind uint8

const (
	callRequest callKind = iota + 1
	callReceipt
	callSubscribe
	callUnsubscribe
)

// call is a request waiting for its answer, by Corr (SPEC §6). Guarded by
// Client.mu.
type call struct {
	kind    callKind
	corr    uint32
	ch      chan callResult // cap 1; nil for the client's own resubscriptions
	m       *outMsg         // DIRECT: its message
	pattern string          // SUBSCRIBE, UNSUBSCRIBE
	done    bool
}

type callResult struct {
	payload []byte
	err     error
}

func (cl *call) finish(payload []byte, err error) {
	if cl.done {
		return
	}
	cl.done = true
	if cl.ch != nil {
		cl.ch <- callResult{payload, err}
	}
}

// newCallLocked registers a call under a fresh Corr. SPEC §6: a counter
// that skips 0 and the Corrs still waiting. c.mu held.
func (c *Client) newCallLocked(kind callKind) *call {
	for {
		c.corr++
		if c.corr == 0 {
			continue
		}
		if _, used := c.calls[c.corr]; !used {
			break
		}
	}
	cl := &call{kind: kind, corr: c.corr, ch: make(chan callResult, 1)}
	c.calls[cl.corr] = cl
	return cl
}

func checkLane(l protocol.Lane) error {
	if l < protocol.LaneInteractive || l >= protocol.NumLanes {
		return ErrBadLane
	}
	return nil
}

// usableLocked says whether the client can take a message now. c.mu held.
func (c *Client) usableLocked() error {
	if c.state == StateClosed {
		return c.closeErr
	}
	return nil
}

// ---------------------------------------------------------------- unreliable

// Send sends payload as an unreliable DATA message to route on lane (1 to
// 3): written once if the connection lasts long enough, never sent again
// (SPEC §6.1, §12). The send window does not hold it back (SPEC §12.5), so
// it may overtake reliable messages of its lane that wait for room; it
// waits only for a fragmented message being written on its lane. It fails
// with ErrNotConnected while the client reconnects, and with ErrQueueFull
// when more than 4 MiB of unreliable messages wait to be written. The
// client copies payload.
func (c *Client) Send(lane protocol.Lane, route uint32, payload []byte) error {
	return c.sendUnreliable(protocol.FrameData, lane, route, "", payload)
}

// sendUnreliable queues an unreliable message. When it had to start a new
// pack because the lane's last one is full, the caller yields the
// processor once: the writer, woken by that pack's first message, then
// writes it while the caller goes on, rather than when the caller next
// blocks. A producer that never blocks would otherwise, with one
// processor, hand the socket one large write per burst and leave the
// server idle meanwhile (ferry-bench pubsub 1->1, 16 B, client on one
// core, four pairs of runs: 1.11M-1.46M deliveries/s without the yield,
// 1.65M-2.08M with it).
func (c *Client) sendUnreliable(typ protocol.FrameType, lane protocol.Lane, route uint32, name string, payload []byte) error {
	full, err := c.queueUnreliable(typ, lane, route, name, payload)
	if full {
		runtime.Gosched()
	}
	return err
}

// queueUnreliable is sendUnreliable under the lock; full reports that the
// lane has a full pack waiting for the writer.
func (c *Client) queueUnreliable(typ protocol.FrameType, lane protocol.Lane, route uint32, name string, payload []byte) (full bool, err error) {
	if err := checkLane(lane); err != nil {
		return false, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usableLocked(); err != nil {
		return false, err
	}
	cn := c.cn
	if cn == nil || cn.draining {
		return false, ErrNotConnected
	}
	if len(payload) > cn.peerMaxMsg {
		return false, ErrTooLarge
	}
	if c.unrelBytes+len(payload) > maxUnreliable {
		return false, ErrQueueFull
	}
	held := len(payload) + 1 // + 1: an empty message is waited for too
	c.unrelBytes += held
	if len(payload) <= packSmall && len(payload) <= cn.fragSize && (!cn.compress || len(payload) < codec.MinCompressSize) {
		// Encoded now, into the lane's last pack: no copy of its own, no
		// entry in the queue (see outMsg.packed).
		f := codec.Frame{Type: typ, Lane: lane, Route: route, Name: readOnly(name), Payload: payload}
		ls := &c.sess.lanes[lane]
		m := ls.packTail(f.Len())
		if m == nil {
			if n := len(ls.queue); n > 0 && ls.queue[n-1].packed > 0 {
				full = true // the tail is a pack with no room left
			}
			m = &outMsg{typ: typ, lane: lane, store: -1, payload: c.packBuf()}
			ls.queue = append(ls.queue, m)
		}
		m.payload = f.Append(m.payload)
		m.packed++
		m.held += held
		cn.wakeUp()
		return full, nil
	}
	m := &outMsg{typ: typ, lane: lane, route: route, name: []byte(name), store: -1, held: held}
	m.payload = append([]byte(nil), payload...)
	c.queueLocked(m)
	return false, nil
}

// packSmall is the largest payload Send and Publish encode into a pack;
// packLimit the most bytes of frames one pack holds.
const (
	packSmall = 1 << 10
	packLimit = 8 << 10
)

// packBuf returns an empty buffer for a pack: one the writer gave back, or
// a new one. c.mu held.
func (c *Client) packBuf() []byte {
	if n := len(c.packFree); n > 0 {
		b := c.packFree[n-1]
		c.packFree = c.packFree[:n-1]
		return b
	}
	return make([]byte, 0, packLimit)
}

// freePack keeps the buffer of a pack that was written, for the next one;
// a few are kept. c.mu held.
func (c *Client) freePack(b []byte) {
	if cap(b) == packLimit && len(c.packFree) < 4 {
		c.packFree = append(c.packFree, b[:0])
	}
}

// readOnly is s as a byte slice, without a copy, for the encoder, which only
// reads it.
func readOnly(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// queueLocked appends m to its lane and wakes the writer. c.mu held.
func (c *Client) queueLocked(m *outMsg) {
	ls := &c.sess.lanes[m.lane]
	ls.queue = append(ls.queue, m)
	if c.cn != nil {
		c.cn.wakeUp()
	}
}

// ---------------------------------------------------------------- reliable

// SendReliable sends payload as a reliable DATA message to route on lane
// and returns once the server has acknowledged it (SPEC §12): delivered to
// the server exactly once, in order with the other reliable messages of the
// lane, across reconnects for as long as the session resumes. It fails
// with ErrSessionLost when the server loses the session first (see
// WithResendOnNewSession), ErrTooLarge, or the client's close error.
//
// When the pending store is full it waits for room. If ctx ends first, or
// while the message waits for its acknowledgement, SendReliable returns
// ctx.Err(): a message not yet written is then withdrawn; one already
// written (in part) stays, and is still delivered.
func (c *Client) SendReliable(ctx context.Context, lane protocol.Lane, route uint32, payload []byte) error {
	m := &outMsg{typ: protocol.FrameData, lane: lane, route: route, waitCh: make(chan error, 1)}
	if err := c.enqueue(ctx, m, payload, true); err != nil {
		return err
	}
	select {
	case err := <-m.waitCh:
		return err
	case <-ctx.Done():
		c.withdraw(m)
		return ctx.Err()
	}
}

// SendAsync is SendReliable without the wait: it queues the message and
// returns at once, or fails with ErrQueueFull when the pending store is
// full (WithMaxPending). done, if not nil, receives the outcome (nil once
// acknowledged) on the callback goroutine (see Handler); it must not block
// for long.
func (c *Client) SendAsync(lane protocol.Lane, route uint32, payload []byte, done func(error)) error {
	m := &outMsg{typ: protocol.FrameData, lane: lane, route: route, done: done}
	return c.enqueue(context.Background(), m, payload, false)
}

// Publish publishes payload on topic (SPEC §6.2). Unreliable, it is like
// Send. Reliable, it is like SendAsync without a callback: queued (or
// ErrQueueFull), acknowledged by the server, never lost silently — a loss
// is counted in Stats.Lost and reported by an EventNewSession. The server
// delivers it to every subscription that matches topic.
func (c *Client) Publish(lane protocol.Lane, topic string, payload []byte, reliable bool) error {
	if len(topic) == 0 || len(topic) > protocol.MaxTopicLen {
		return ErrBadArgument
	}
	if !reliable {
		return c.sendUnreliable(protocol.FramePublish, lane, 0, topic, payload)
	}
	m := &outMsg{typ: protocol.FramePublish, lane: lane, name: []byte(topic)}
	return c.enqueue(context.Background(), m, payload, false)
}

// Direct sends payload to the client whose id is peer, through the server
// (SPEC §6.3), as a reliable message that asks for a delivery receipt. It
// returns nil once the server reports it queued the message for the peer,
// a *ResultError with the server's code (NO_SUCH_CLIENT, QUEUE_FULL, ...)
// when it could not, ErrNoReceipt when the server has the message but the
// connection ended before its receipt arrived, and otherwise as
// SendReliable.
func (c *Client) Direct(ctx context.Context, peer string, lane protocol.Lane, payload []byte) error {
	if len(peer) == 0 || len(peer) > protocol.MaxClientIDLen {
		return ErrBadArgument
	}
	return c.sendWithReceipt(ctx, &outMsg{typ: protocol.FrameDirect, lane: lane, name: []byte(peer)}, payload)
}

// PublishReceipt publishes payload on topic as a reliable message that
// asks for a receipt (SPEC §6.2): it returns nil once the server has
// accepted it for delivery (whatever the number of subscribers), a
// *ResultError with the server's code (INVALID_TOPIC, FORBIDDEN,
// RATE_LIMITED, ...) when it refused it, and otherwise as Direct. Publish
// sends without a receipt, so a refusal there goes unreported.
func (c *Client) PublishReceipt(ctx context.Context, lane protocol.Lane, topic string, payload []byte) error {
	if len(topic) == 0 || len(topic) > protocol.MaxTopicLen {
		return ErrBadArgument
	}
	return c.sendWithReceipt(ctx, &outMsg{typ: protocol.FramePublish, lane: lane, name: []byte(topic)}, payload)
}

// sendWithReceipt sends m reliably with a correlation id and waits for
// the server's RESULT.
func (c *Client) sendWithReceipt(ctx context.Context, m *outMsg, payload []byte) error {
	var cl *call
	if err := c.enqueueWith(ctx, m, payload, true, func() {
		cl = c.newCallLocked(callReceipt)
		cl.m = m
		m.corr, m.call = cl.corr, cl
	}); err != nil {
		return err
	}
	select {
	case r := <-cl.ch:
		return r.err
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.calls, cl.corr)
		cl.done = true
		c.mu.Unlock()
		c.withdraw(m)
		return ctx.Err()
	}
}

func (c *Client) enqueue(ctx context.Context, m *outMsg, payload []byte, wait bool) error {
	return c.enqueueWith(ctx, m, payload, wait, nil)
}

// enqueueWith takes a reliable message into the pending store and its
// lane's queue; setup, if not nil, runs under c.mu once room is found.
func (c *Client) enqueueWith(ctx context.Context, m *outMsg, payload []byte, wait bool, setup func()) error {
	if err := checkLane(m.lane); err != nil {
		return err
	}
	m.flags = protocol.FlagReliable
	c.mu.Lock()
	for {
		if err := c.usableLocked(); err != nil {
			c.mu.Unlock()
			return err
		}
		if c.cn != nil && len(payload) > c.cn.peerMaxMsg {
			c.mu.Unlock()
			return ErrTooLarge
		}
		if c.pendMsgs == 0 || (c.pendMsgs < c.cfg.pendingMsgs && c.pendBytes+len(payload) <= c.cfg.pendingBytes) {
			break
		}
		if !wait {
			c.mu.Unlock()
			return ErrQueueFull
		}
		space := c.space
		c.mu.Unlock()
		select {
		case <-space:
		case <-ctx.Done():
			return ctx.Err()
		}
		c.mu.Lock()
	}
	m.payload = append([]byte(nil), payload...)
	m.store = len(payload)
	if c.cfg.resend && m.typ.IsMessage() {
		m.key = newKey()
	}
	c.pendMsgs++
	c.pendBytes += len(payload)
	if setup != nil {
		setup()
	}
	c.queueLocked(m)
	c.mu.Unlock()
	return nil
}

// withdraw takes a message that no frame of was written out of its queue,
// after its caller gave up.
func (c *Client) withdraw(m *outMsg) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m.started || m.finished {
		return
	}
	m.dropped = true
	c.releaseStoreLocked(m)
	m.finished = true
}

// Flush waits until every reliable message handed to the client so far has
// been acknowledged or has failed, and every unreliable one (and every
// reply) has been written to the socket or dropped, or until ctx ends. Call
// it before Close, which drops what is not written yet.
func (c *Client) Flush(ctx context.Context) error {
	for {
		c.mu.Lock()
		if c.pendMsgs == 0 && c.unrelBytes == 0 {
			c.mu.Unlock()
			return nil
		}
		if err := c.usableLocked(); err != nil {
			c.mu.Unlock()
			return err
		}
		space := c.space
		c.mu.Unlock()
		select {
		case <-space:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// ---------------------------------------------------------------- requests

// Request sends payload to route on lane as a request (SPEC §6.1) and
// returns the response's payload. A RESULT with a code other than OK gives
// a *ResultError carrying the code; a RESULT OK gives an empty payload.
// The request is unreliable: it fails with ErrNotConnected when no
// connection is up and with ErrDisconnected when the connection ends before
// the answer (it may then have been processed). If ctx ends first,
// Request returns ctx.Err() and a late answer is discarded.
func (c *Client) Request(ctx context.Context, lane protocol.Lane, route uint32, payload []byte) ([]byte, error) {
	if err := checkLane(lane); err != nil {
		return nil, err
	}
	m := &outMsg{typ: protocol.FrameData, lane: lane, route: route, store: -1}
	c.mu.Lock()
	if err := c.usableLocked(); err != nil {
		c.mu.Unlock()
		return nil, err
	}
	cn := c.cn
	if cn == nil || cn.draining {
		c.mu.Unlock()
		return nil, ErrNotConnected // SPEC §7.4: no new request after GOAWAY
	}
	if len(payload) > cn.peerMaxMsg {
		c.mu.Unlock()
		return nil, ErrTooLarge
	}
	cl := c.newCallLocked(callRequest)
	m.corr, m.call = cl.corr, cl
	m.payload = append([]byte(nil), payload...)
	m.held = len(payload) + 1 // + 1: an empty message is waited for too
	c.unrelBytes += m.held
	c.queueLocked(m)
	c.mu.Unlock()
	select {
	case r := <-cl.ch:
		return r.payload, r.err
	case <-ctx.Done():
		c.mu.Lock()
		if !cl.done {
			delete(c.calls, cl.corr)
			cl.done = true
		}
		if !m.started {
			m.dropped = true
		}
		c.mu.Unlock()
		return nil, ctx.Err()
	}
}

// onResultLocked matches a RESULT to its request (SPEC §7.6). c.mu held.
func (c *Client) onResultLocked(f *codec.Frame) {
	if f.Corr == 0 {
		// A notice (SPEC §7.6): logged, never an answer.
		c.log.Info("ferry client: notice from the server", "code", readCode(f.Code).String(), "detail", string(f.Payload))
		return
	}
	cl, ok := c.calls[f.Corr]
	if !ok {
		return // SPEC §6: an answer nobody waits for is discarded
	}
	delete(c.calls, f.Corr)
	var err error
	if f.Code != protocol.CodeOK {
		err = &ResultError{Code: readCode(f.Code), Detail: string(f.Payload)}
	}
	switch cl.kind {
	case callSubscribe:
		c.subscribedLocked(cl, err)
	case callUnsubscribe:
		if c.unsubs[cl.pattern] == cl {
			delete(c.unsubs, cl.pattern)
		}
	case callReceipt:
		if m := cl.m; m != nil {
			// The receipt can pass the ACK; the message completes with the
			// ACK, and a lost session has not lost it.
			m.receipt, m.call = true, nil
		}
	}
	cl.finish(nil, err)
}

// onResponseLocked completes a request with its DATA response (SPEC §6.1).
// c.mu held.
func (c *Client) onResponseLocked(corr uint32, msg []byte) {
	cl, ok := c.calls[corr]
	if !ok || cl.kind != callRequest {
		return
	}
	delete(c.calls, corr)
	c.stats.received.Add(1)
	cl.finish(append([]byte(nil), msg...), nil)
}

// reply queues the answer to a request the server sent (SPEC §6.1): a DATA
// response carrying payload, or, with result, a RESULT with code.
func (c *Client) reply(m *Message, payload []byte, result bool, code protocol.ErrorCode, detail string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.replyLocked(m.Lane, m.Route, m.corr, m.connGen, payload, result, code, detail)
}

// replyLocked is reply for the request (lane, route, corr) that came on
// connection connGen. c.mu held.
func (c *Client) replyLocked(lane protocol.Lane, route, corr uint32, connGen uint64, payload []byte, result bool,
	code protocol.ErrorCode, detail string) error {
	if err := c.usableLocked(); err != nil {
		return err
	}
	cn := c.cn
	if cn == nil || cn.id != connGen {
		return ErrDisconnected // the server failed the request itself
	}
	om := &outMsg{lane: lane, route: route, corr: corr, store: -1}
	var err error
	if !result && len(payload) > cn.peerMaxMsg {
		result, code, detail, err = true, protocol.CodeHandlerError, "response too large", ErrTooLarge
	}
	if result {
		if len(detail) > protocol.MaxReasonLen {
			detail = detail[:protocol.MaxReasonLen]
		}
		om.typ, om.code, om.payload = protocol.FrameResult, code, []byte(detail)
	} else {
		om.typ, om.flags = protocol.FrameData, protocol.FlagResponse
		om.payload = append([]byte(nil), payload...)
		om.held = len(payload) + 1 // + 1: an empty message is waited for too
		c.unrelBytes += om.held
	}
	c.queueLocked(om)
	return err
}

// confirm queues the CONFIRM of m (notes/delivery.md); it waits with the
// session when no connection is up.
func (c *Client) confirm(m *Message, v protocol.Verdict) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usableLocked(); err != nil {
		return err
	}
	if m.sessGen != c.sess.gen {
		return ErrSessionLost // SPEC §12.10: discarded with the session
	}
	c.confirmLocked(m.Lane, m.seq, v)
	return nil
}

func (c *Client) confirmLocked(lane protocol.Lane, seq uint64, v protocol.Verdict) {
	c.sess.confirms = append(c.sess.confirms, confirmReq{lane: lane, verdict: v, seq: seq})
	if c.cn != nil {
		c.cn.wakeUp()
	}
}

// newKey returns a random, non-zero idempotency key (SPEC §6.5).
func newKey() uint64 {
	for {
		if k := rand.Uint64(); k != 0 {
			return k
		}
	}
}
