package reactor

import (
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/ferry-proto/ferry/codec"
	"github.com/ferry-proto/ferry/protocol"
	"github.com/ferry-proto/ferry/reactor/internal/wheel"
)

// sendQueue is where other goroutines leave messages for the loop.
type sendQueue struct {
	mu      sync.Mutex
	pending []outItem
	spare   []outItem
}

// transport is what an engine gives the connection core. Writev, Buffered
// and Close run on the connection's loop; Wake may be called from any
// goroutine and makes the loop call Conn.onWake soon.
type transport interface {
	// Writev writes the slices in order. It returns once it no longer
	// needs them: what the kernel did not take is copied into the
	// engine's own buffer.
	Writev(bs [][]byte) error
	// Flush writes what the socket refused before, if it can take it
	// now; every flush starts with it.
	Flush() error
	// Buffered is how many bytes wait in the engine's outbound buffer.
	Buffered() int
	Wake()
	Close()
	// RemoteAddr is the peer's address.
	RemoteAddr() net.Addr
}

type connState uint8

const (
	stateHandshake connState = iota // waiting for HELLO
	stateOpen                       // WELCOME sent
	stateDraining                   // GOAWAY sent: still serving, closing soon
	stateClosed
)

// Conn is one client connection. Its protocol state belongs to its event
// loop; the methods documented as safe from any goroutine (Send, Close,
// Backlogged, ClientID, ID, Context and SetContext) are the only ones
// another goroutine may call.
type Conn struct {
	srv  *Server
	loop *loop
	ctr  *Counters // the loop's shard
	tr   transport
	id   uint64

	// Loop-owned. Small fields are kept together: this struct is most of
	// what an idle connection costs (TestConnSize).
	dec codec.Decoder
	// reasm exists only while a fragmented message is partial: plain
	// messages go through the loop's shared, stateless reassembler.
	reasm      *codec.Reassembler
	timer      wheel.Timer
	acceptedAt int64
	lastRecv   int64
	lastSend   int64
	lastPing   int64
	heartbeat  time.Duration
	stallSince int64 // when the transport's buffer last stopped draining
	drainUntil int64
	ctrl       []byte // encoded lane-0 frames waiting for the next flush
	// lanes are the queues of lanes 1-3 (lane 0 is ctrl), made on the
	// first message queued: an idle connection does not pay for them.
	lanes       *[protocol.NumLanes - 1]laneQueue
	lastBuf     int32
	msgID       uint32
	pingStrikes int32
	closeCode   protocol.ErrorCode
	peerRecvMax uint16 // the peer's ReceiveMax (SPEC §5.4.5)
	// expirySec is the session expiry granted in WELCOME; > 0 means a
	// SessionID was offered (SPEC §5.4.6).
	expirySec uint32
	state     connState
	compress  bool
	resuming  bool // HELLO resumed a session still attached elsewhere
	resumed   bool // the handshake resumed a session
	// tokenUnproven: this connection's WELCOME rotated the resume token
	// and nothing has arrived since, so the previous token still works.
	tokenUnproven bool
	inBlocked     bool
	inDirty       bool // in loop.dirty: queued to by another connection's callback
	// sessRefused: this connection's session was not kept (past
	// MaxSessions), so a resume naming it gets a new session instead of
	// waiting for a detach that will not hand one over. Guarded by the
	// session store's mutex (set by register, read by beginResumeHeld).
	sessRefused bool
	drrLane     protocol.Lane // the lane the round robin is visiting
	drrGranted  bool          // it has had its quantum for this visit
	// sess is the session the connection is attached to (or, while
	// resuming, waiting for). Loop-owned.
	sess *Session

	// Shared with other goroutines.
	clientID atomic.Pointer[string]
	ctx      atomic.Value
	// sq is created by the first Send from another goroutine; connections
	// that only ever reply on the loop never pay for it.
	sq            atomic.Pointer[sendQueue]
	wakeQueued    atomic.Bool
	closed        atomic.Bool
	closeReq      atomic.Uint32 // an error code + 1 requested from another goroutine
	queued        atomic.Int64  // bytes in pending and the lane queues
	engineBuf     atomic.Int64  // the engine's outbound buffer, as last seen by the loop
	backlogged    atomic.Bool
	pendingGoAway atomic.Bool
	// handoff is set, with the session this connection waits to resume,
	// once the connection that held it has let go.
	handoff atomic.Pointer[Session]
	neg     atomic.Uint64 // packed negotiated values, see packNeg
}

func newConn(srv *Server, l *loop, tr transport, id uint64) *Conn {
	c := &Conn{srv: srv, loop: l, ctr: l.ctr, tr: tr, id: id, dec: codec.NewDecoder(), drrLane: protocol.LaneInteractive}
	c.timer.Init(connTimer)
	if b, ok := tr.(interface{ bind(*Conn) }); ok {
		b.bind(c) // before the server's map publishes c
	}
	now := l.now()
	c.acceptedAt, c.lastRecv, c.lastSend = now, now, now
	c.schedule()
	return c
}

// wakeForWrite asks the loop to flush: the socket can take more. Safe from
// any goroutine.
func (c *Conn) wakeForWrite() {
	if c.wakeQueued.CompareAndSwap(false, true) {
		c.tr.Wake()
	}
}

// ID is the server-unique number of the connection. Safe from any goroutine.
func (c *Conn) ID() uint64 { return c.id }

// RemoteAddr is the peer's address (for limits per source, and logs).
// Call it on the loop, in a handler callback.
func (c *Conn) RemoteAddr() net.Addr { return c.tr.RemoteAddr() }

// ClientID is the id the client authenticated as (empty before the
// handshake). Safe from any goroutine.
func (c *Conn) ClientID() string {
	if p := c.clientID.Load(); p != nil {
		return *p
	}
	return ""
}

// Context returns the value stored with SetContext. Safe from any goroutine.
func (c *Conn) Context() any { return c.ctx.Load() }

// SetContext stores a value with the connection (the router keeps its
// session there). Safe from any goroutine; always store the same type.
func (c *Conn) SetContext(v any) { c.ctx.Store(v) }

// Heartbeat is the negotiated heartbeat interval K (zero before the
// handshake). Call it on the loop.
func (c *Conn) Heartbeat() time.Duration { return c.heartbeat }

// Compression reports whether compression was negotiated. Call it on the loop.
func (c *Conn) Compression() bool { return c.compress }

// onData handles the bytes that arrived: it decodes every complete frame,
// leaves a partial one, and returns how many bytes it consumed. Runs on the
// loop; b is valid only during the call.
func (c *Conn) onData(b []byte) int { return c.onDataAt(b, c.loop.now()) }

// onDataAt is onData at time now on the loop clock.
func (c *Conn) onDataAt(b []byte, now int64) int {
	c.loop.seen = now
	c.lastRecv = now // SPEC §7.1: any received byte counts as liveness
	c.ctr.BytesIn.Add(uint64(len(b)))
	consumed := 0
	// The frame lives in the loop's scratch: handlers take its address,
	// and a local would escape to the heap once per frame.
	f := &c.loop.frame
	var t inTally
	for c.state != stateClosed {
		var n int
		var err error
		n, err = c.dec.DecodeInto(f, b[consumed:])
		if err == codec.ErrNeedMore {
			break
		}
		if err != nil {
			t.settle(c.ctr)
			c.closeWith(codec.CodeOf(err), err.Error())
			return len(b)
		}
		consumed += n
		t.frame(c.ctr, f.Type)
		c.handleFrame(f, now, &t)
	}
	t.settle(c.ctr)
	*f = codec.Frame{}
	if c.state == stateClosed {
		return len(b)
	}
	// A connection still waiting to resume its session (c.resuming) does
	// not own it yet: the connection it takes over may be using it.
	if c.sess != nil && !c.resuming && c.sess.d != nil {
		c.schedule() // an ACK may be owed
	}
	return consumed
}

// inTally counts the frames and messages one onData receives, added to
// the counters in runs (of one frame type, of one lane) rather than once
// per frame: a read of many requests costs one atomic add for each.
type inTally struct {
	frames, msgs tallyRun // by frame type, by lane
}

func (t *inTally) frame(ctr *Counters, typ protocol.FrameType) {
	t.frames.add(ctr.FramesIn[:], uint8(typ))
}

func (t *inTally) message(ctr *Counters, lane protocol.Lane) {
	t.msgs.add(ctr.MessagesIn[:], uint8(lane))
}

func (t *inTally) settle(ctr *Counters) {
	t.frames.settle(ctr.FramesIn[:])
	t.msgs.settle(ctr.MessagesIn[:])
}

// tallyRun counts a run of events with one key, added to counts[key] when
// the key changes and when the run is settled.
type tallyRun struct {
	key uint8
	n   uint64
}

func (r *tallyRun) add(counts []atomic.Uint64, key uint8) {
	if key != r.key && r.n > 0 {
		counts[r.key].Add(r.n)
		r.n = 0
	}
	r.key = key
	r.n++
}

func (r *tallyRun) settle(counts []atomic.Uint64) {
	if r.n > 0 {
		counts[r.key].Add(r.n)
		r.n = 0
	}
}

func (c *Conn) handleFrame(f *codec.Frame, now int64, t *inTally) {
	if c.state == stateHandshake {
		if f.Type != protocol.FrameHello {
			// SPEC §5.5: the first frame is HELLO.
			c.closeWith(protocol.CodeProtocolError, "expected HELLO")
			return
		}
		c.handleHello(f)
		return
	}
	if c.tokenUnproven {
		c.proveToken()
	}
	switch f.Type {
	case protocol.FramePing:
		c.onPing(f, now)
	case protocol.FramePong:
		c.onPong(f, now)
	case protocol.FrameData, protocol.FramePublish, protocol.FrameDirect:
		if f.Flags.Has(protocol.FlagReliable) {
			if !c.receiveReliable(f, now) {
				return
			}
			if f.Flags.Has(protocol.FlagFragment) && f.Offset == 0 {
				c.sess.d.relPart[f.Lane-1] = true
			}
		} else if f.Flags.Has(protocol.FlagFragment) && f.Offset == 0 && c.sess != nil && c.sess.d != nil {
			c.sess.d.relPart[f.Lane-1] = false
		}
		r := c.reasm
		if r == nil {
			if f.Flags&protocol.FlagFragment == 0 {
				r = &c.loop.plain // stateless for a plain message
			} else {
				r = codec.NewReassembler(c.srv.reasmLimits)
				c.reasm = r
			}
		}
		msg, done, err := r.Add(f, now)
		if err != nil {
			c.closeWith(codec.CodeOf(err), err.Error())
			return
		}
		if c.reasm != nil && c.reasm.Partial() == 0 {
			// msg stays valid: nothing reuses it before the handler runs.
			c.reasm = nil
		}
		if done && f.Flags.Has(protocol.FlagExpiry) && f.TTL == 0 {
			// SPEC §6.4: TTL 0 reads as already expired (an expired
			// placeholder, §12.8); a request gets RESULT EXPIRED.
			c.ctr.ExpiredIn.Add(1)
			done = false
			if f.Corr != 0 && !f.Flags.Has(protocol.FlagResponse) {
				r := codec.Frame{Type: protocol.FrameResult, Lane: f.Lane, Corr: f.Corr, Code: protocol.CodeExpired}
				_ = c.SendOnLoop(&r)
			}
		}
		if done && f.Flags.Has(protocol.FlagKeyed) && !c.acceptKey(f, now) {
			done = false
		}
		if done {
			t.message(c.ctr, f.Lane)
			f.Payload = msg
			c.srv.cfg.Handler.OnMessage(c, f)
		} else if c.reasm != nil {
			if dl, ok := c.reasm.NextDeadline(); ok && dl < c.timerAt() {
				c.schedule()
			}
		}
	case protocol.FrameBatch:
		c.handleBatch(f, now, t)
	case protocol.FrameAck:
		c.onAck(f, now)
	case protocol.FrameConfirm:
		c.onConfirm(f, now)
	case protocol.FrameSubscribe, protocol.FrameUnsubscribe, protocol.FrameResult:
		c.srv.cfg.Handler.OnMessage(c, f)
	case protocol.FrameError:
		// SPEC §7.3: the peer closes after ERROR; so do we.
		c.closeCode = f.Code
		c.shutdown()
	case protocol.FrameGoAway:
		c.closeCode = protocol.CodeGoingAway
		c.shutdown()
	default: // HELLO again, WELCOME
		c.closeWith(protocol.CodeProtocolError, "unexpected "+f.Type.String())
	}
}

func (c *Conn) handleBatch(f *codec.Frame, now int64, t *inTally) {
	inner := f.Payload
	if f.Flags.Has(protocol.FlagCompressed) {
		var err error
		l := c.loop
		l.batchBuf, err = codec.AppendDecompressed(l.batchBuf[:0], f.Payload, c.dec.MaxFrameSize)
		if err != nil {
			c.closeWith(codec.CodeOf(err), err.Error())
			return
		}
		inner = l.batchBuf
	}
	it := c.dec.Batch(f, inner)
	g := &c.loop.inner // see onData
	for c.state != stateClosed {
		var ok bool
		var err error
		*g, ok, err = it.Next()
		if err != nil {
			c.closeWith(codec.CodeOf(err), err.Error())
			return
		}
		if !ok {
			break
		}
		t.frame(c.ctr, g.Type)
		c.handleFrame(g, now, t)
	}
	*g = codec.Frame{}
	if cap(c.loop.batchBuf) > 256<<10 {
		c.loop.batchBuf = nil
	}
}

// handleHello negotiates (SPEC §5.4), resolves the session (§5.4.7) and
// answers with WELCOME.
func (c *Conn) handleHello(f *codec.Frame) {
	h, err := codec.ParseHello(f.Payload)
	if err != nil {
		c.closeWith(codec.CodeOf(err), err.Error())
		return
	}
	cfg := &c.srv.cfg
	id, code := cfg.Handler.OnHello(c, &h)
	if code != protocol.CodeOK {
		c.closeWith(code, "refused")
		return
	}
	c.heartbeat = cfg.Heartbeat.Clamp(time.Duration(h.HeartbeatMs) * time.Millisecond)
	peerMaxFrame := codec.EffectiveMaxFrameSize(h.MaxFrameSize)
	peerMaxMsg := codec.EffectiveMaxMessageSize(h.MaxMessageSize)
	c.peerRecvMax = h.ReceiveMax
	c.compress = cfg.Compression && h.Capabilities&protocol.CapCompression != 0
	// A fragment's header is at most 7 + 6 + MaxTopicLen + 24 bytes.
	fragSize := min(cfg.FragmentSize, peerMaxFrame-(protocol.HeaderSize+6+protocol.MaxTopicLen+24))
	// The fragment size and the peer's max message size live only in
	// neg, which any goroutine may read (fragSizeShared, peerMaxMsgShared).
	c.neg.Store(packNeg(fragSize, peerMaxMsg, c.compress))
	c.dec.MaxFrameSize = cfg.MaxFrameSize
	c.dec.Compression = c.compress
	if len(h.SessionID) > 0 {
		sess, holder, outcome := c.srv.lookupResume(h.SessionID, h.ResumeToken, id)
		switch outcome {
		case resumeFailed:
			c.closeWith(protocol.CodeResumeFailed, "resume token not valid for the session")
			return
		case resumeOK, resumePrev:
			if id == "" {
				if sess != nil {
					id = sess.clientID
				} else {
					id = holder.ClientID()
				}
			}
			c.clientID.Store(&id)
			if sess == nil {
				c.beginResumeHeld(holder, h.SessionID, &h)
				return
			}
			c.beginResume(sess, &h, outcome == resumePrev)
			return
		}
	}
	if id == "" {
		id = "anon-" + strconv.FormatUint(c.id, 10)
	}
	c.sendWelcome(id, &h)
}

// welcome returns the negotiated WELCOME for client id, without its
// session fields.
func (c *Conn) welcome(id string) codec.Welcome {
	cfg := &c.srv.cfg
	w := codec.Welcome{
		Version:        protocol.Version,
		MaxFrameSize:   uint32(cfg.MaxFrameSize),
		MaxMessageSize: uint32(cfg.MaxMessageSize),
		HeartbeatMs:    uint32(c.heartbeat / time.Millisecond),
		ReceiveMax:     cfg.ReceiveMax,
		ClientID:       []byte(id),
	}
	if c.compress {
		w.Capabilities = protocol.CapCompression
	}
	return w
}

// sendWelcome starts a new session for id and answers WELCOME
// (SessionPresent = 0).
func (c *Conn) sendWelcome(id string, h *codec.Hello) {
	c.clientID.Store(&id)
	w := c.welcome(id)
	c.startSession(id, h, &w)
	c.ctrl = codec.AppendWelcome(c.ctrl, &w)
	c.ctr.FramesOut[protocol.FrameWelcome].Add(1)
	c.open()
}

// open ends the handshake: WELCOME is queued.
func (c *Conn) open() {
	c.state = stateOpen
	c.ctr.Handshakes.Add(1)
	c.schedule()
	c.srv.cfg.Handler.OnOpen(c)
}

// onPing answers with PONG; a peer that PINGs far faster than K gets
// RATE_LIMITED warnings and, past Config.PingWarnings, is closed
// (SPEC §7.1).
func (c *Conn) onPing(f *codec.Frame, now int64) {
	if c.lastPing != 0 && now-c.lastPing < int64(c.heartbeat/8) {
		c.pingStrikes++
		c.ctr.PingWarnings.Add(1)
		if int(c.pingStrikes) > c.srv.cfg.PingWarnings {
			c.closeWith(protocol.CodeRateLimited, "PING flood")
			return
		}
		r := codec.Frame{Type: protocol.FrameResult, Code: protocol.CodeRateLimited, Payload: pingWarning}
		c.ctrl = r.Append(c.ctrl)
		c.ctr.FramesOut[protocol.FrameResult].Add(1)
	} else if c.pingStrikes > 0 && now-c.lastPing >= int64(c.heartbeat/2) {
		c.pingStrikes = 0
	}
	c.lastPing = now
	pong := codec.Frame{Type: protocol.FramePong, Opaque: f.Opaque}
	c.ctrl = pong.Append(c.ctrl)
	c.ctr.FramesOut[protocol.FramePong].Add(1)
}

var pingWarning = []byte("PING far faster than the heartbeat interval")

// timerAt is when the connection's one timer is due next.
func (c *Conn) timerAt() int64 {
	switch c.state {
	case stateHandshake:
		return c.acceptedAt + int64(c.srv.cfg.HandshakeTimeout)
	case stateClosed:
		return 1<<63 - 1
	}
	k := int64(c.heartbeat)
	at := min(c.lastRecv+k*protocol.IdleAfterNum/protocol.IdleAfterDen,
		c.lastSend+k*protocol.PingAfterNum/protocol.PingAfterDen)
	if c.reasm != nil {
		if dl, ok := c.reasm.NextDeadline(); ok {
			at = min(at, dl)
		}
	}
	if c.state == stateDraining {
		at = min(at, c.drainUntil)
	}
	return c.deliveryDeadline(at)
}

func (c *Conn) schedule() {
	if c.state == stateClosed {
		c.loop.wheel.Stop(&c.timer)
		return
	}
	c.loop.wheel.Schedule(&c.timer, c.loop.at(c.timerAt()))
}

// connTimer dispatches the wheel's callback to the connection that embeds
// the timer, without a closure per connection.
func connTimer(t *wheel.Timer) {
	(*Conn)(unsafe.Add(unsafe.Pointer(t), -int(unsafe.Offsetof(Conn{}.timer)))).onTimer(t)
}

// onTimer is the connection's one timer: handshake timeout, idle timeout,
// heartbeat PING, reassembly timeout and drain deadline (SPEC §5.5, §7.1,
// §10.4). It runs on the loop.
func (c *Conn) onTimer(*wheel.Timer) {
	now := c.loop.now()
	switch c.state {
	case stateClosed:
		return
	case stateHandshake:
		if now >= c.acceptedAt+int64(c.srv.cfg.HandshakeTimeout) {
			c.closeWith(protocol.CodeHandshakeTimeout, "no HELLO in time")
			return
		}
	default:
		k := int64(c.heartbeat)
		if now >= c.lastRecv+k*protocol.IdleAfterNum/protocol.IdleAfterDen {
			c.closeWith(protocol.CodeIdleTimeout, "silent for 1.5 heartbeat intervals")
			return
		}
		if c.reasm != nil {
			if err := c.reasm.Expire(now); err != nil {
				c.closeWith(codec.CodeOf(err), err.Error())
				return
			}
		}
		if c.state == stateDraining && now >= c.drainUntil {
			c.closeWith(protocol.CodeGoingAway, "drain deadline")
			return
		}
		if !c.onDeliveryTimer(now) {
			return
		}
		if now >= c.lastSend+k*protocol.PingAfterNum/protocol.PingAfterDen {
			c.sendPing(now)
			c.flush()
		}
	}
	c.schedule()
}

// closeWith sends ERROR with code and closes (SPEC §13). Runs on the loop.
func (c *Conn) closeWith(code protocol.ErrorCode, reason string) {
	if c.state == stateClosed {
		return
	}
	if len(reason) > protocol.MaxReasonLen {
		reason = reason[:protocol.MaxReasonLen]
	}
	e := codec.Frame{Type: protocol.FrameError, Code: code, Payload: []byte(reason)}
	// The ERROR goes out after any control frames already due, ahead of
	// every queued message.
	c.ctrl = e.Append(c.ctrl)
	c.ctr.FramesOut[protocol.FrameError].Add(1)
	c.closeCode = code
	_ = c.tr.Writev(append(c.loop.iov[:0], c.ctrl))
	c.ctrl = nil
	c.shutdown()
}

// shutdown closes without sending anything more.
func (c *Conn) shutdown() {
	if c.state == stateClosed {
		return
	}
	c.state = stateClosed
	c.closed.Store(true)
	c.loop.wheel.Stop(&c.timer)
	c.tr.Close()
}

// onClosed runs once when the engine has closed the connection, whoever
// started it. Queued messages are released and counted as dropped.
func (c *Conn) onClosed() {
	c.state = stateClosed
	c.closed.Store(true)
	c.loop.wheel.Stop(&c.timer)
	var pending []outItem
	if q := c.sq.Load(); q != nil {
		q.mu.Lock()
		pending = q.pending
		q.pending = nil
		q.mu.Unlock()
	}
	if c.sess != nil || c.expirySec > 0 || c.resuming {
		c.detach(pending)
		pending = nil
	}
	for i := range pending {
		c.drop(&pending[i], DropClosed)
	}
	for l := range c.laneSlice() {
		q := &c.lanes[l]
		for !q.empty() {
			it := q.pop()
			c.ctr.Queued[it.lane].Add(-it.settled())
			c.drop(it, DropClosed)
		}
	}
	c.reasm = nil
	c.ctr.close(c.closeCode)
	c.ctr.ConnsOpen.Add(-1)
	c.srv.forget(c)
	c.srv.cfg.Handler.OnClose(c, c.closeCode)
}

func errorFrame(code protocol.ErrorCode, reason string) codec.Frame {
	if len(reason) > protocol.MaxReasonLen {
		reason = reason[:protocol.MaxReasonLen]
	}
	return codec.Frame{Type: protocol.FrameError, Code: code, Payload: []byte(reason)}
}
