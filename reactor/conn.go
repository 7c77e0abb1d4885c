package reactor

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferry-proto/ferry/codec"
	"github.com/ferry-proto/ferry/protocol"
	"github.com/ferry-proto/ferry/reactor/internal/wheel"
)

// transport is what an engine gives the connection core. Writev, Buffered
// and Close run on the connection's loop; Wake may be called from any
// goroutine and makes the loop call Conn.onWake soon.
type transport interface {
	// Writev writes the slices in order. It returns once it no longer
	// needs them: what the kernel did not take is copied into the
	// engine's own buffer.
	Writev(bs [][]byte) error
	// Buffered is how many bytes wait in the engine's outbound buffer.
	Buffered() int
	Wake()
	Close()
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

	// Loop-owned.
	state       connState
	dec         codec.Decoder
	reasm       codec.Reassembler
	batchBuf    []byte
	timer       wheel.Timer
	acceptedAt  int64
	lastRecv    int64
	lastSend    int64
	lastPing    int64
	pingStrikes int
	heartbeat   time.Duration
	peerMaxMsg  int
	fragSize    int
	compress    bool
	ctrl        []byte // encoded lane-0 frames waiting for the next flush
	lanes       [protocol.NumLanes]laneQueue
	msgID       uint32
	inBlocked   bool
	stallSince  int64 // when the engine buffer last stopped draining
	lastBuf     int
	closeCode   protocol.ErrorCode
	drainUntil  int64

	// Shared with other goroutines.
	clientID      atomic.Pointer[string]
	ctx           atomic.Value
	mu            sync.Mutex
	pending       []outItem
	spare         []outItem
	wakeQueued    atomic.Bool
	closed        atomic.Bool
	closeReq      atomic.Uint32 // an error code + 1 requested from another goroutine
	queued        atomic.Int64  // bytes in pending and the lane queues
	engineBuf     atomic.Int64  // the engine's outbound buffer, as last seen by the loop
	backlogged    atomic.Bool
	pendingGoAway atomic.Bool
	neg           atomic.Pointer[negotiated]
}

func newConn(srv *Server, l *loop, tr transport, id uint64) *Conn {
	c := &Conn{srv: srv, loop: l, ctr: l.ctr, tr: tr, id: id, dec: codec.NewDecoder()}
	cfg := &srv.cfg
	c.reasm.Init(codec.ReassemblyLimits{
		MaxFrameSize: protocol.DefaultMaxFrameSize, MaxMessageSize: cfg.MaxMessageSize,
		MaxPartial: cfg.MaxPartial, MaxBytes: cfg.ReassemblyBytes, Timeout: cfg.ReassemblyTimeout,
	})
	c.timer.Init(c.onTimer)
	now := l.now()
	c.acceptedAt, c.lastRecv, c.lastSend = now, now, now
	c.schedule()
	return c
}

// ID is the server-unique number of the connection. Safe from any goroutine.
func (c *Conn) ID() uint64 { return c.id }

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
func (c *Conn) onData(b []byte) int {
	now := c.loop.now()
	c.lastRecv = now // SPEC §7.1: any received byte counts as liveness
	c.ctr.BytesIn.Add(uint64(len(b)))
	consumed := 0
	// The frame lives in the loop's scratch: handlers take its address,
	// and a local would escape to the heap once per frame.
	f := &c.loop.frame
	for c.state != stateClosed {
		var n int
		var err error
		*f, n, err = c.dec.Decode(b[consumed:])
		if err == codec.ErrNeedMore {
			break
		}
		if err != nil {
			c.closeWith(codec.CodeOf(err), err.Error())
			return len(b)
		}
		consumed += n
		c.ctr.FramesIn[f.Type].Add(1)
		c.handleFrame(f, now)
	}
	*f = codec.Frame{}
	if c.state == stateClosed {
		return len(b)
	}
	return consumed
}

func (c *Conn) handleFrame(f *codec.Frame, now int64) {
	if c.state == stateHandshake {
		if f.Type != protocol.FrameHello {
			// SPEC §5.5: the first frame is HELLO.
			c.closeWith(protocol.CodeProtocolError, "expected HELLO")
			return
		}
		c.handleHello(f)
		return
	}
	switch f.Type {
	case protocol.FramePing:
		c.onPing(f, now)
	case protocol.FramePong:
	case protocol.FrameData, protocol.FramePublish, protocol.FrameDirect:
		msg, done, err := c.reasm.Add(f, now)
		if err != nil {
			c.closeWith(codec.CodeOf(err), err.Error())
			return
		}
		if done {
			c.ctr.MessagesIn[f.Lane].Add(1)
			f.Payload = msg
			c.srv.cfg.Handler.OnMessage(c, f)
		} else if dl, ok := c.reasm.NextDeadline(); ok && dl < c.timerAt() {
			c.schedule()
		}
	case protocol.FrameBatch:
		c.handleBatch(f, now)
	case protocol.FrameAck, protocol.FrameSubscribe, protocol.FrameUnsubscribe, protocol.FrameResult:
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

func (c *Conn) handleBatch(f *codec.Frame, now int64) {
	inner := f.Payload
	if f.Flags.Has(protocol.FlagCompressed) {
		var err error
		c.batchBuf, err = codec.AppendDecompressed(c.batchBuf[:0], f.Payload, c.dec.MaxFrameSize)
		if err != nil {
			c.closeWith(codec.CodeOf(err), err.Error())
			return
		}
		inner = c.batchBuf
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
		c.ctr.FramesIn[g.Type].Add(1)
		c.handleFrame(g, now)
	}
	*g = codec.Frame{}
	if cap(c.batchBuf) > 64<<10 {
		c.batchBuf = nil
	}
}

// handleHello negotiates (SPEC §5.4) and answers with WELCOME.
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
	if id == "" {
		id = "anon-" + strconv.FormatUint(c.id, 10)
	}
	c.clientID.Store(&id)
	c.heartbeat = cfg.Heartbeat.Clamp(time.Duration(h.HeartbeatMs) * time.Millisecond)
	peerMaxFrame := codec.EffectiveMaxFrameSize(h.MaxFrameSize)
	c.peerMaxMsg = codec.EffectiveMaxMessageSize(h.MaxMessageSize)
	c.compress = cfg.Compression && h.Capabilities&protocol.CapCompression != 0
	// A fragment's header is at most 7 + 6 + MaxTopicLen + 24 bytes.
	c.fragSize = min(cfg.FragmentSize, peerMaxFrame-(protocol.HeaderSize+6+protocol.MaxTopicLen+24))
	c.neg.Store(&negotiated{fragSize: c.fragSize, peerMaxMsg: c.peerMaxMsg, compress: c.compress})
	c.dec.MaxFrameSize = cfg.MaxFrameSize
	c.dec.Compression = c.compress
	c.reasm.SetLimits(codec.ReassemblyLimits{
		MaxFrameSize: cfg.MaxFrameSize, MaxMessageSize: cfg.MaxMessageSize,
		MaxPartial: cfg.MaxPartial, MaxBytes: cfg.ReassemblyBytes, Timeout: cfg.ReassemblyTimeout,
	})
	w := codec.Welcome{
		Version:        protocol.Version,
		MaxFrameSize:   uint32(cfg.MaxFrameSize),
		MaxMessageSize: uint32(cfg.MaxMessageSize),
		HeartbeatMs:    uint32(c.heartbeat / time.Millisecond),
		ReceiveMax:     cfg.ReceiveMax,
		SessionExpiry:  protocol.DefaultSessionExpirySec,
		ClientID:       []byte(id),
	}
	if h.SessionExpiry != 0 {
		w.SessionExpiry = min(h.SessionExpiry, protocol.DefaultSessionExpirySec)
	}
	if c.compress {
		w.Capabilities = protocol.CapCompression
	}
	c.ctrl = codec.AppendWelcome(c.ctrl, &w)
	c.ctr.FramesOut[protocol.FrameWelcome].Add(1)
	c.state = stateOpen
	c.ctr.Handshakes.Add(1)
	c.schedule()
	cfg.Handler.OnOpen(c)
}

// onPing answers with PONG; a peer that PINGs far faster than K gets
// RATE_LIMITED warnings and, past Config.PingWarnings, is closed
// (SPEC §7.1).
func (c *Conn) onPing(f *codec.Frame, now int64) {
	if c.lastPing != 0 && now-c.lastPing < int64(c.heartbeat/8) {
		c.pingStrikes++
		c.ctr.PingWarnings.Add(1)
		if c.pingStrikes > c.srv.cfg.PingWarnings {
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
	if dl, ok := c.reasm.NextDeadline(); ok {
		at = min(at, dl)
	}
	if c.state == stateDraining {
		at = min(at, c.drainUntil)
	}
	return at
}

func (c *Conn) schedule() {
	if c.state == stateClosed {
		c.loop.wheel.Stop(&c.timer)
		return
	}
	c.loop.wheel.Schedule(&c.timer, c.loop.at(c.timerAt()))
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
		if err := c.reasm.Expire(now); err != nil {
			c.closeWith(codec.CodeOf(err), err.Error())
			return
		}
		if c.state == stateDraining && now >= c.drainUntil {
			c.closeWith(protocol.CodeGoingAway, "drain deadline")
			return
		}
		if now >= c.lastSend+k*protocol.PingAfterNum/protocol.PingAfterDen {
			ping := codec.Frame{Type: protocol.FramePing, Opaque: uint64(now)}
			c.ctrl = ping.Append(c.ctrl)
			c.ctr.FramesOut[protocol.FramePing].Add(1)
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
	c.ctrl = c.ctrl[:0]
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
	c.mu.Lock()
	pending := c.pending
	c.pending = nil
	c.mu.Unlock()
	for i := range pending {
		c.drop(&pending[i], DropClosed)
	}
	for l := range c.lanes {
		q := &c.lanes[l]
		for !q.empty() {
			it := q.pop()
			c.ctr.Queued[it.lane].Add(-int64(it.remaining()))
			c.drop(it, DropClosed)
		}
	}
	c.reasm.Reset()
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
