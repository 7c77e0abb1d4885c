package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferry-proto/ferry/codec"
	"github.com/ferry-proto/ferry/codec/seqwin"
	"github.com/ferry-proto/ferry/protocol"
)

// Client is a FERRY/1 client: one session with a server, carried over a
// succession of connections. All methods are safe from any goroutine.
type Client struct {
	cfg   config
	addr  string
	log   *slog.Logger
	epoch time.Time
	bo    backoff

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // the manager goroutine
	first  chan error     // the outcome of the first connection, for Dial

	inbox      inbox
	dispatched chan struct{} // closed when the callback goroutine ends
	inCallback atomic.Bool
	stats      counters
	// subsGen changes with every change to subs (under mu); hcache is the
	// callback goroutine's.
	subsGen atomic.Uint64
	hcache  handlerCache

	mu         sync.Mutex
	state      State
	closeErr   error // set once closed
	lastErr    error // why the last connection attempt or connection failed
	cn         *conn // the connection, once its handshake is complete
	connGen    uint64
	goAwayHint uint32
	clientID   string
	sess       session
	calls      map[uint32]*call
	corr       uint32
	subs       map[string]*subscription
	unsubs     map[string]*call
	pendMsgs   int
	pendBytes  int
	unrelBytes int           // unreliable bytes queued
	packFree   [][]byte      // buffers of packs written, for new packs
	space      chan struct{} // closed when the pending store shrinks, then replaced
}

// maxUnreliable bounds the unreliable bytes queued behind the send window;
// past it Send and Publish return ErrQueueFull.
const maxUnreliable = 4 << 20

// Dial connects to the server at addr and completes the handshake (SPEC §5).
// With reconnection on (the default) it retries failed attempts with the
// backoff until ctx ends; a refusal that must not be retried (AUTH_FAILED,
// UNSUPPORTED_VERSION, DUPLICATE_CLIENT, SESSION_TAKEN_OVER, SPEC §13.5) fails
// at once with a *ServerError. ctx bounds only Dial: once it returns, the
// client lives until Close.
func Dial(ctx context.Context, addr string, opts ...Option) (*Client, error) {
	c := newClient(addr, opts...)
	c.wg.Add(1)
	go c.run()
	go c.dispatch()
	select {
	case err := <-c.first:
		if err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	case <-ctx.Done():
		c.mu.Lock()
		last := c.lastErr
		c.mu.Unlock()
		c.Close()
		if last != nil {
			return nil, fmt.Errorf("client: dial %s: %w (last attempt: %v)", addr, ctx.Err(), last)
		}
		return nil, fmt.Errorf("client: dial %s: %w", addr, ctx.Err())
	}
}

func newClient(addr string, opts ...Option) *Client {
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	switch {
	case cfg.receiveMax <= 0:
		cfg.receiveMax = DefaultReceiveMax
	case cfg.receiveMax > seqwin.MaxReceiveMax:
		cfg.receiveMax = seqwin.MaxReceiveMax
	}
	c := &Client{
		cfg: cfg, addr: addr, log: cfg.log, epoch: time.Now(),
		bo:         backoff{initial: cfg.backoffMin, max: cfg.backoffMax, rnd: cfg.rnd},
		first:      make(chan error, 1),
		dispatched: make(chan struct{}),
		calls:      make(map[uint32]*call),
		subs:       make(map[string]*subscription),
		unsubs:     make(map[string]*call),
		space:      make(chan struct{}),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.inbox.init(cfg.inboxMsgs, cfg.inboxBytes)
	c.sess.reasm.Init(cfg.reasm)
	return c
}

// now is the client's monotonic clock in nanoseconds, for seqwin and rtt.
func (c *Client) now() int64 { return int64(time.Since(c.epoch)) }

// Close ends the client: the connection is closed at once (nothing queued
// is written), reconnection stops, and every pending call fails with
// ErrClosed (reliable messages not yet acknowledged included: call Flush
// first to wait for them). Callbacks already queued still run; incoming
// messages not yet handled are dropped. Close waits for the client's
// goroutines to end, except, when called from a callback, the callback
// goroutine, which ends once the callback returns. Close is idempotent and
// returns nil.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.state != StateClosed {
		c.closeLocked(nil)
	}
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	if !c.inCallback.Load() {
		<-c.dispatched
	}
	return nil
}

// State says whether the client is connected.
func (c *Client) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// ClientID is the client id in effect (WELCOME.ClientID, SPEC §5.4.7): the
// one asked for, or the one the server assigned. It can change when a
// reconnect gets a new session.
func (c *Client) ClientID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.clientID
}

// Stats returns the client's counters.
func (c *Client) Stats() Stats { return c.stats.snapshot() }

// ---------------------------------------------------------------- manager

// run is the manager goroutine: it connects, serves the connection until it
// ends, waits the backoff or the GOAWAY hint, and connects again, until the
// client closes.
func (c *Client) run() {
	defer c.wg.Done()
	attempt := 0
	var delay time.Duration
	firstDone := false
	for {
		if delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-c.ctx.Done():
				t.Stop()
				return
			}
		}
		if c.ctx.Err() != nil {
			return
		}
		cn, err := c.connect()
		if err != nil {
			if c.ctx.Err() != nil {
				return
			}
			c.log.Info("ferry client: connect failed", "addr", c.addr, "err", err)
			c.mu.Lock()
			c.lastErr = err
			stop := fatal(err) || !c.cfg.reconnect
			if stop {
				c.closeLocked(err)
			}
			c.mu.Unlock()
			if stop {
				if !firstDone {
					c.first <- err
				}
				return
			}
			attempt++
			delay = c.retryDelay(err, attempt)
			continue
		}
		if !firstDone {
			firstDone = true
			c.first <- nil
		}
		attempt = 0
		err = c.serve(cn)
		if c.ctx.Err() != nil {
			return
		}
		c.log.Info("ferry client: connection ended", "err", err)
		if fatal(err) || !c.cfg.reconnect {
			c.mu.Lock()
			c.closeLocked(err)
			c.mu.Unlock()
			return
		}
		attempt = 1
		delay = c.retryDelay(err, attempt)
	}
}

// retryDelay is the wait before the next attempt after err.
func (c *Client) retryDelay(err error, attempt int) time.Duration {
	var se *ServerError
	if errors.As(err, &se) && !se.Local {
		switch {
		case se.GoAway:
			c.mu.Lock()
			hint := c.goAwayHint
			c.goAwayHint = 0
			c.mu.Unlock()
			return goAwayDelay(hint, c.cfg.rnd) // SPEC §7.4
		case se.Code == protocol.CodeResumeFailed:
			return 0 // SPEC §13.5: reconnect without SessionID
		}
	}
	return c.bo.delay(attempt)
}

// serve runs a connection's reader and writer until both end, then settles
// what the connection took with it.
func (c *Client) serve(cn *conn) error {
	var wg sync.WaitGroup
	wg.Add(2)
	go cn.readLoop(wg.Done)
	go cn.writeLoop(wg.Done)
	wg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	err := cn.err
	if cn.goAway != nil && (err == nil || !isServerError(err)) {
		err = cn.goAway
	}
	if err == nil {
		err = ErrDisconnected
	}
	c.lastErr = err
	c.disconnectLocked(cn, err)
	return err
}

func isServerError(err error) bool {
	var se *ServerError
	return errors.As(err, &se)
}

// ---------------------------------------------------------------- handshake

// connect dials and completes the handshake (SPEC §5.5). On success the
// connection is current and its goroutines are not yet started.
func (c *Client) connect() (*conn, error) {
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.handshakeTimeout)
	defer cancel()
	nc, err := c.cfg.dial(ctx, c.addr)
	if err != nil {
		return nil, err
	}
	tuneSocket(nc)
	// The handshake blocks in Read and Write: closing the socket is how ctx
	// interrupts them (SPEC §5.5: the client bounds its wait for WELCOME).
	stop := context.AfterFunc(ctx, func() { _ = nc.Close() })
	fail := func(err error) (*conn, error) {
		stop()
		_ = nc.Close()
		if ctx.Err() != nil && c.ctx.Err() == nil {
			return nil, fmt.Errorf("client: handshake: %w", ctx.Err())
		}
		return nil, err
	}
	c.mu.Lock()
	hello := c.helloLocked()
	c.mu.Unlock()
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	if _, err := nc.Write(codec.AppendHello(nil, &hello)); err != nil {
		return fail(err)
	}
	// SPEC §5.5: the first frame the client receives is WELCOME, ERROR or
	// GOAWAY; until then frames are judged against 65,536 bytes.
	dec := codec.NewDecoder()
	buf := make([]byte, 0, protocol.DefaultMaxFrameSize+4096)
	var f codec.Frame
	var n int
	for {
		f, n, err = dec.Decode(buf)
		if err == nil {
			break
		}
		if err != codec.ErrNeedMore {
			sendError(nc, codec.CodeOf(err), err.Error())
			return fail(&ServerError{Code: codec.CodeOf(err), Reason: err.Error(), Local: true})
		}
		m, rerr := nc.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if rerr != nil && m == 0 {
			return fail(transportError(rerr))
		}
	}
	switch f.Type {
	case protocol.FrameWelcome:
	case protocol.FrameError:
		se := &ServerError{Code: readCode(f.Code), Reason: string(f.Payload)}
		if se.Code == protocol.CodeResumeFailed {
			// SPEC §13.5: reconnect without SessionID: the old session's
			// state is then reported lost by the next WELCOME.
			c.mu.Lock()
			c.sess.id, c.sess.token = nil, nil
			c.mu.Unlock()
		}
		return fail(se)
	case protocol.FrameGoAway:
		c.mu.Lock()
		c.goAwayHint = f.ReconnectAfter
		c.mu.Unlock()
		return fail(&ServerError{Code: readCode(f.Code), Reason: string(f.Payload), GoAway: true})
	default:
		sendError(nc, protocol.CodeProtocolError, "expected WELCOME")
		return fail(&ServerError{Code: protocol.CodeProtocolError, Reason: "expected WELCOME, got " + f.Type.String(), Local: true})
	}
	w, err := codec.ParseWelcome(f.Payload)
	if err == nil {
		err = checkWelcome(&hello, &w)
	}
	if err != nil {
		se, ok := err.(*ServerError)
		if !ok {
			se = &ServerError{Code: codec.CodeOf(err), Reason: err.Error(), Local: true}
		}
		sendError(nc, se.Code, se.Reason)
		return fail(se)
	}
	if !stop() {
		return fail(ctx.Err())
	}
	_ = nc.SetDeadline(time.Time{})
	cn := &conn{
		c: c, nc: nc,
		k:            time.Duration(w.HeartbeatMs) * time.Millisecond,
		compress:     w.Capabilities&protocol.CapCompression != 0,
		peerMaxFrame: codec.EffectiveMaxFrameSize(w.MaxFrameSize),
		peerMaxMsg:   codec.EffectiveMaxMessageSize(w.MaxMessageSize),
		window:       min(codec.EffectiveReceiveMax(w.ReceiveMax), seqwin.MaxReceiveMax),
		leftover:     append([]byte(nil), buf[n:]...),
		wake:         make(chan struct{}, 1),
		stop:         make(chan struct{}),
	}
	cn.fragSize = min(protocol.DefaultFragmentSize, cn.peerMaxFrame-maxFragHeader)
	cn.dec = codec.Decoder{MaxFrameSize: codec.EffectiveMaxFrameSize(hello.MaxFrameSize), Compression: cn.compress}
	cn.probe.MaxAckDelay = maxAckDelay
	cn.probe.MinPingInterval = cn.k / 8 // SPEC §7.1
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == StateClosed {
		_ = nc.Close()
		return nil, ErrClosed
	}
	if err := c.welcomeLocked(cn, &hello, &w); err != nil {
		sendError(nc, protocol.CodeProtocolError, err.Error())
		_ = nc.Close()
		return nil, &ServerError{Code: protocol.CodeProtocolError, Reason: err.Error(), Local: true}
	}
	return cn, nil
}

// sendError writes an ERROR and half-closes during the handshake, when no
// writer goroutine exists yet (SPEC §13.3; the linger is skipped: the
// socket closes right after).
func sendError(nc interface{ Write([]byte) (int, error) }, code protocol.ErrorCode, reason string) {
	if len(reason) > protocol.MaxReasonLen {
		reason = reason[:protocol.MaxReasonLen]
	}
	e := codec.Frame{Type: protocol.FrameError, Code: code, Payload: []byte(reason)}
	_, _ = nc.Write(e.Append(nil))
	if hc, ok := nc.(interface{ CloseWrite() error }); ok {
		_ = hc.CloseWrite()
	}
}

// helloLocked builds the HELLO: our limits, proposals and, when a session
// exists, what resumes it (SPEC §5.2, §5.4.7). c.mu held.
func (c *Client) helloLocked() codec.Hello {
	h := codec.Hello{
		Version:        protocol.Version,
		MaxFrameSize:   protocol.DefaultMaxFrameSize,
		MaxMessageSize: uint32(c.cfg.reasm.MaxMessageSize),
		HeartbeatMs:    uint32(min(c.cfg.heartbeat.Milliseconds(), 1<<32-1)),
		ReceiveMax:     uint16(c.cfg.receiveMax),
		ClientID:       []byte(c.cfg.clientID),
		AuthToken:      c.cfg.token,
	}
	if c.cfg.sessionExpiry > 0 {
		h.SessionExpiry = uint32(min((c.cfg.sessionExpiry+time.Second-1)/time.Second, 1<<32-1))
	}
	if c.cfg.compression {
		h.Capabilities = protocol.CapCompression
	}
	if len(c.sess.id) > 0 {
		h.SessionID = bytes.Clone(c.sess.id)
		h.ResumeToken = bytes.Clone(c.sess.token)
		for i := range h.Received {
			h.Received[i] = c.sess.lanes[i+1].rx.Cumulative()
		}
	}
	return h
}

// checkWelcome applies the processing checks of a WELCOME that need only
// the HELLO (SPEC §5.3, §5.4.3, §5.4.4, §5.4.7).
func checkWelcome(h *codec.Hello, w *codec.Welcome) error {
	bad := func(why string) error {
		return &ServerError{Code: protocol.CodeProtocolError, Reason: why, Local: true}
	}
	switch {
	case w.Capabilities&^h.Capabilities != 0:
		return bad("WELCOME grants a capability HELLO did not offer")
	case w.HeartbeatMs == 0:
		return bad("WELCOME HeartbeatMs is 0")
	case len(w.ClientID) == 0:
		return bad("WELCOME ClientID is empty")
	case w.SessionPresent && (len(h.SessionID) == 0 || !bytes.Equal(w.SessionID, h.SessionID)):
		return bad("WELCOME resumes a session HELLO did not name")
	case !w.SessionPresent && w.Received != [3]uint64{}:
		return bad("WELCOME of a new session with Received positions")
	case len(w.SessionID) == 0 && (w.SessionPresent || len(w.ResumeToken) != 0):
		return bad("WELCOME without SessionID resumes or carries a token")
	}
	return nil
}

// welcomeLocked makes cn the connection of the session the WELCOME names:
// resumed (acknowledge what the server's Received covers, replay the rest)
// or new (the old state is lost). c.mu held.
func (c *Client) welcomeLocked(cn *conn, h *codec.Hello, w *codec.Welcome) error {
	now := c.now()
	s := &c.sess
	ev := Event{Kind: EventConnected}
	if w.SessionPresent {
		// notes/delivery.md: a Received above the highest Seq sent is a
		// PROTOCOL_ERROR; checked on every lane before anything changes.
		for l := protocol.LaneInteractive; l < protocol.NumLanes; l++ {
			if w.Received[l-1] >= s.lanes[l].tx.Next() {
				return errors.New("WELCOME Received above the highest Seq sent")
			}
		}
		ev.Kind = EventResumed
		for l := protocol.LaneInteractive; l < protocol.NumLanes; l++ {
			ls := &s.lanes[l]
			// The peer's Received is a cumulative ACK; what is above it is
			// replayed, in Seq order, before anything new (and is then no
			// source of RTT samples: Karn).
			_, _ = ls.tx.OnAck(w.Received[l-1], 0, 0, now, func(uint64) { c.releaseFront(ls) })
			ls.tx.Replay(nil)
			ls.replayNext, ls.replayEnd = ls.tx.Acked()+1, ls.tx.Next()-1
		}
		s.reasm.Touch(now)
		c.stats.resumes.Add(1)
	} else if s.granted {
		ev.Kind = EventNewSession
		ev.Lost = c.newSessionLocked()
		c.stats.newSessions.Add(1)
	}
	// A DIRECT the server acknowledged on an earlier connection had its
	// receipt there: it is gone.
	for corr, cl := range c.calls {
		if cl.kind == callReceipt && cl.m != nil && cl.m.acked {
			delete(c.calls, corr)
			cl.finish(nil, ErrNoReceipt)
		}
	}
	if s.granted {
		c.stats.reconnects.Add(1)
	}
	c.stats.connects.Add(1)
	s.granted = true
	s.id, s.token = bytes.Clone(w.SessionID), bytes.Clone(w.ResumeToken)
	for l := protocol.LaneInteractive; l < protocol.NumLanes; l++ {
		s.lanes[l].tx.SetLimits(cn.window, c.cfg.inflightBytes)
	}
	c.clientID = string(w.ClientID)
	c.connGen++
	cn.id = c.connGen
	c.cn = cn
	c.state = StateConnected
	now = c.now()
	cn.lastSent = now
	// A first PING gives the RTT estimate a sample before any probe needs
	// it (otherwise the PTO starts from rtt.InitialRTT).
	cn.appendPing(now)
	cn.probe.PingSent(now)
	cn.probe.Outstanding(s.outstanding())
	if s.outstanding() {
		cn.probe.Arm(now)
	}
	c.resubscribeLocked(cn)
	c.log.Info("ferry client: connected", "addr", c.addr, "event", ev.Kind.String(), "client_id", c.clientID,
		"heartbeat", cn.k, "compression", cn.compress, "lost", ev.Lost)
	c.pushEvent(ev)
	return nil
}

// newSessionLocked settles the loss of the old session (SPEC §5.4.7: "The
// client MUST treat all state of the old session as lost"): reliable
// messages sent in part or whole and not acknowledged fail with
// ErrSessionLost or, with WithResendOnNewSession, go again as new messages;
// messages never sent wait for the new session. Sequence numbers and
// reassembly start afresh. It returns how many messages were lost. c.mu
// held.
func (c *Client) newSessionLocked() int {
	s := &c.sess
	lost := 0
	for l := protocol.LaneInteractive; l < protocol.NumLanes; l++ {
		ls := &s.lanes[l]
		hit := ls.startedMsgs()
		ls.cur = nil
		for _, m := range hit {
			if m.finished {
				continue
			}
			if m.receipt {
				c.ackedMsgLocked(m) // the server's receipt proved it arrived
				continue
			}
			lost++
			if c.cfg.resend {
				m.off, m.started, m.frag, m.msgID, m.acked = 0, false, false, 0, false
				c.stats.resent.Add(1)
			} else {
				c.stats.lost.Add(1)
				c.failMsgLocked(m, ErrSessionLost)
			}
		}
		if c.cfg.resend {
			q := make([]*outMsg, 0, len(hit)+len(ls.queue))
			for _, m := range hit {
				if !m.finished && !m.receipt {
					q = append(q, m)
				}
			}
			ls.queue = append(q, ls.queue...)
		}
		ls.inflight = nil
		ls.tx = seqwin.Sender{}
		ls.rx.Reset(1)
		ls.replayNext, ls.replayEnd = 1, 0
		ls.partial, ls.partialReliable = false, false
	}
	s.reasm.Reset()
	s.confirms = nil
	s.gen++
	// Calls waiting on the old session: SUBSCRIBE is made again; an
	// UNSUBSCRIBE has nothing left to remove.
	for pattern, cl := range c.unsubs {
		delete(c.unsubs, pattern)
		delete(c.calls, cl.corr)
		cl.finish(nil, nil)
	}
	return lost
}

// disconnectLocked settles what a connection that ended takes with it:
// unreliable messages not yet written, requests not yet answered (SPEC
// §6), unreliable partial messages (notes/delivery.md). Reliable state
// stays with the session. c.mu held.
func (c *Client) disconnectLocked(cn *conn, err error) {
	if c.cn == cn {
		c.cn = nil
	}
	// What was in its write buffers and not written is lost with it.
	c.writtenLocked(cn.inBuf)
	cn.inBuf = 0
	if c.state == StateClosed {
		return
	}
	c.state = StateConnecting
	s := &c.sess
	for l := protocol.LaneInteractive; l < protocol.NumLanes; l++ {
		ls := &s.lanes[l]
		q := ls.queue[:0]
		for _, m := range ls.queue {
			if m.reliable() {
				q = append(q, m)
				continue
			}
			c.dropUnreliableLocked(m)
		}
		clear(ls.queue[len(q):])
		ls.queue = q
		if m := ls.cur; m != nil && !m.reliable() {
			// SPEC §12.7: the rest of an unreliable fragmented message is
			// not sent.
			ls.cur = nil
			c.dropUnreliableLocked(m)
		}
		ls.replayNext, ls.replayEnd = 1, 0
		if ls.partial && !ls.partialReliable {
			s.reasm.Discard(l)
			ls.partial = false
			c.stats.dropped.Add(1)
		}
	}
	for corr, cl := range c.calls {
		if cl.kind == callRequest {
			delete(c.calls, corr)
			cl.finish(nil, ErrDisconnected)
		}
	}
	c.pushEvent(Event{Kind: EventDisconnected, Err: err})
}

func (c *Client) dropUnreliableLocked(m *outMsg) {
	if m.typ.IsMessage() && m.flags&protocol.FlagResponse == 0 && m.call == nil && !m.dropped {
		c.stats.dropped.Add(uint64(max(m.packed, 1)))
	}
	m.dropped = true
	c.unheldLocked(m)
}

// unheldLocked returns an unreliable message's bytes to the bound of
// Send. c.mu held.
func (c *Client) unheldLocked(m *outMsg) {
	if m.held == 0 {
		return
	}
	c.unrelBytes -= m.held
	m.held = 0
	if c.unrelBytes == 0 && c.state != StateClosed {
		close(c.space) // Flush waits for this too
		c.space = make(chan struct{})
	}
}

// writtenLocked returns n held bytes, now written (or lost with the
// connection), to the bound of Send, and wakes Flush. c.mu held.
func (c *Client) writtenLocked(n int) {
	if n == 0 {
		return
	}
	c.unrelBytes -= n
	if c.unrelBytes == 0 && c.state != StateClosed {
		close(c.space)
		c.space = make(chan struct{})
	}
}

// closeLocked closes the client for good: cause nil for Close. c.mu held.
func (c *Client) closeLocked(cause error) {
	if c.state == StateClosed {
		return
	}
	c.state = StateClosed
	if cause == nil {
		c.closeErr = ErrClosed
	} else {
		c.closeErr = &closedError{cause: cause}
	}
	if cn := c.cn; cn != nil {
		cn.failLocked(ErrClosed, 0, false)
	}
	s := &c.sess
	for l := protocol.LaneInteractive; l < protocol.NumLanes; l++ {
		ls := &s.lanes[l]
		for _, m := range ls.startedMsgs() {
			c.failMsgLocked(m, c.closeErr)
		}
		for _, m := range append(ls.queue, ls.cur) {
			switch {
			case m == nil:
			case m.reliable():
				c.failMsgLocked(m, c.closeErr)
			default:
				c.dropUnreliableLocked(m)
			}
		}
		ls.queue, ls.inflight, ls.cur = nil, nil, nil
	}
	for corr, cl := range c.calls {
		delete(c.calls, corr)
		cl.finish(nil, c.closeErr)
	}
	clear(c.unsubs)
	close(c.space)
	c.pushEvent(Event{Kind: EventClosed, Err: cause})
	c.inbox.close()
}

func (c *Client) pushEvent(ev Event) {
	if fn := c.cfg.onState; fn != nil {
		c.inbox.pushFn(func() { fn(ev) })
	}
}

// ---------------------------------------------------------------- completion

// outstanding reports whether reliable frames are in flight on any lane.
func (s *session) outstanding() bool {
	for l := protocol.LaneInteractive; l < protocol.NumLanes; l++ {
		if len(s.lanes[l].inflight) > 0 {
			return true
		}
	}
	return false
}

// releaseFront drops the oldest in-flight frame of ls, which the peer's
// Cumulative point has passed; its message is acknowledged when it was its
// last frame. Called by seqwin.Sender.OnAck, in Seq order. c.mu held.
func (c *Client) releaseFront(ls *lane) {
	fr := ls.inflight[0]
	ls.inflight[0] = sentFrame{}
	ls.inflight = ls.inflight[1:]
	if len(ls.inflight) == 0 {
		ls.inflight = nil
	}
	if fr.m.last(fr.off, fr.n) {
		c.ackedMsgLocked(fr.m)
	}
}

// ackedMsgLocked completes a reliable message the server acknowledged
// whole. c.mu held.
func (c *Client) ackedMsgLocked(m *outMsg) {
	m.acked = true
	c.releaseStoreLocked(m)
	if m.call != nil {
		return // a DIRECT completes with its receipt
	}
	c.finishMsgLocked(m, nil)
}

// failMsgLocked fails a message that will not be delivered. c.mu held.
func (c *Client) failMsgLocked(m *outMsg, err error) {
	m.dropped = true
	c.releaseStoreLocked(m)
	c.unheldLocked(m)
	if m.call != nil && !m.finished {
		delete(c.calls, m.call.corr)
		m.call.finish(nil, err)
	}
	c.finishMsgLocked(m, err)
}

func (c *Client) finishMsgLocked(m *outMsg, err error) {
	if m.finished {
		return
	}
	m.finished = true
	if m.waitCh != nil {
		m.waitCh <- err
	}
	if fn := m.done; fn != nil {
		c.inbox.pushFn(func() { fn(err) })
	}
}

// releaseStoreLocked returns a reliable message's share of the pending
// store and wakes those waiting for room. c.mu held.
func (c *Client) releaseStoreLocked(m *outMsg) {
	if m.store < 0 {
		return
	}
	c.pendMsgs--
	c.pendBytes -= m.store
	m.store = -1
	if c.state != StateClosed {
		close(c.space)
		c.space = make(chan struct{})
	}
}

// appendConfirms appends the CONFIRM frames waiting to be written (lane 0).
func (s *session) appendConfirms(b []byte) []byte {
	for _, cf := range s.confirms {
		b = appendConfirm(b, cf)
	}
	clear(s.confirms)
	s.confirms = s.confirms[:0]
	return b
}

// appendConfirm encodes a CONFIRM (SPEC §7.7).
func appendConfirm(b []byte, cf confirmReq) []byte {
	f := codec.Frame{Type: protocol.FrameConfirm, AckLane: cf.lane, Verdict: cf.verdict, Seq: cf.seq}
	return f.Append(b)
}
