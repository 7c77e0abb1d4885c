package router

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-proto/ferry/codec"
	"github.com/ferry-proto/ferry/internal/wiretest"
	"github.com/ferry-proto/ferry/protocol"
	"github.com/ferry-proto/ferry/reactor"
)

// Hostile peers over real loopback sockets. Each attack must end with the
// defined error code and a close, keep the server's heap under a stated
// bound, and leave a well-behaved client connected at the same time
// working (its requests keep succeeding).

type arena struct {
	t    *testing.T
	srv  *reactor.Server
	r    *Router
	good *wiretest.Client
	corr uint32
	heap uint64
}

func newArena(t *testing.T, cfg reactor.Config, opts Options) *arena {
	t.Helper()
	r := New(opts)
	r.Handle(echoRoute, "echo", func(ctx *Context) { _ = ctx.Reply(ctx.Payload()) })
	cfg.Addr, cfg.Loops, cfg.Handler = "127.0.0.1:0", 2, r
	srv, err := reactor.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	a := &arena{t: t, srv: srv, r: r}
	a.good = wiretest.Dial(t, srv.Addr())
	a.good.Hello(codec.Hello{ClientID: []byte("good"), HeartbeatMs: 30_000})
	a.heap = heapNow()
	a.check()
	return a
}

func heapNow() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// check asserts that the well-behaved client still gets answers.
func (a *arena) check() {
	a.t.Helper()
	a.corr++
	a.good.Send(codec.Frame{Type: protocol.FrameData, Lane: 1, Route: echoRoute, Corr: a.corr, Payload: []byte("alive")})
	for {
		f := a.good.Next(5 * time.Second)
		if f.Type == protocol.FrameData && f.Corr == a.corr {
			return
		}
		if f.Type == protocol.FrameError {
			a.t.Fatalf("the well-behaved client was closed with %s", f.Code)
		}
	}
}

// heapBound asserts the heap grew by less than limit since the arena began.
func (a *arena) heapBound(limit uint64) {
	a.t.Helper()
	if now := heapNow(); now > a.heap && now-a.heap > limit {
		a.t.Fatalf("server heap grew by %d bytes, bound %d", now-a.heap, limit)
	}
}

func (a *arena) dial() *wiretest.Client { return wiretest.Dial(a.t, a.srv.Addr()) }

func (a *arena) attacker() *wiretest.Client {
	c := a.dial()
	c.Hello(codec.Hello{HeartbeatMs: 30_000, MaxFrameSize: protocol.HardMaxFrameSize})
	return c
}

func expectCode(t *testing.T, c *wiretest.Client, want protocol.ErrorCode) {
	t.Helper()
	if got := c.ExpectClose(10 * time.Second); got != want {
		t.Fatalf("closed with %s, want %s", got, want)
	}
}

// Slowloris: connections that never say HELLO are closed at the handshake
// timeout, however they trickle bytes.
func TestAttackSlowloris(t *testing.T) {
	a := newArena(t, reactor.Config{HandshakeTimeout: 500 * time.Millisecond}, Options{})
	var silent []*wiretest.Client
	for range 50 {
		silent = append(silent, a.dial())
	}
	trickle := a.dial()
	hello := codec.AppendHello(nil, &codec.Hello{Version: 1})
	done := make(chan struct{})
	go func() { // one byte every 100 ms, never a whole HELLO in time
		defer close(done)
		for i := 0; i < len(hello)-1; i++ {
			if _, err := trickle.Conn.Write(hello[i : i+1]); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	a.check()
	for _, c := range silent {
		expectCode(t, c, protocol.CodeHandshakeTimeout)
	}
	expectCode(t, trickle, protocol.CodeHandshakeTimeout)
	<-done
	a.check()
	a.heapBound(4 << 20)
}

// Length prefixes: 4 GiB, and one byte over the negotiated maximum, are
// refused from the prefix alone (no allocation).
func TestAttackOversizeFrames(t *testing.T) {
	a := newArena(t, reactor.Config{MaxFrameSize: 64 << 10}, Options{})
	c := a.attacker()
	c.Write([]byte{0xff, 0xff, 0xff, 0xff})
	expectCode(t, c, protocol.CodeFrameTooLarge)
	c = a.attacker()
	var hdr [7]byte
	binary.BigEndian.PutUint32(hdr[:], 64<<10-4+1) // a frame of 64 KiB + 1 byte
	hdr[4], hdr[6] = byte(protocol.FrameData), 1
	c.Write(hdr[:])
	expectCode(t, c, protocol.CodeFrameTooLarge)
	a.check()
	a.heapBound(4 << 20)
}

// A decompression bomb: a few bytes claiming to decode to 1 GiB.
func TestAttackDecompressionBomb(t *testing.T) {
	a := newArena(t, reactor.Config{Compression: true}, Options{})
	c := a.dial()
	if w := c.Hello(codec.Hello{Capabilities: protocol.CapCompression}); w.Capabilities&protocol.CapCompression == 0 {
		t.Fatal("compression not negotiated")
	}
	bomb := binary.AppendUvarint(nil, 1<<30)
	bomb = append(bomb, 0x00, 'a')
	c.Send(codec.Frame{Type: protocol.FrameData, Flags: protocol.FlagCompressed, Lane: 1, Route: echoRoute, Payload: bomb})
	expectCode(t, c, protocol.CodeCompressionError)
	a.check()
	a.heapBound(4 << 20)
}

// Fragments: a second partial message on a lane, a total that lies, and
// partial messages whose declared sizes exceed the reassembly budget.
func TestAttackFragments(t *testing.T) {
	a := newArena(t, reactor.Config{MaxMessageSize: 1 << 20, ReassemblyBytes: 1 << 20}, Options{})
	frag := func(lane protocol.Lane, id, off, total uint32, n int) codec.Frame {
		return codec.Frame{Type: protocol.FrameData, Flags: protocol.FlagFragment, Lane: lane, Route: echoRoute,
			MsgID: id, Offset: off, Total: total, Payload: make([]byte, n)}
	}
	// Thousands of partial messages: the second on a lane is refused.
	c := a.attacker()
	var flood []byte
	for i := range 5000 {
		f := frag(protocol.Lane(1+i%3), uint32(i), 0, 100, 1)
		flood = f.Append(flood)
	}
	c.Write(flood)
	expectCode(t, c, protocol.CodeProtocolError)
	// Totals over the budget (3 × 1 MiB declared, 1 MiB budget).
	c = a.attacker()
	c.Send(frag(1, 1, 0, 1<<20, 1))
	c.Send(frag(2, 1, 0, 1<<20, 1))
	expectCode(t, c, protocol.CodeFragmentLimit)
	// A fragment carrying more than its total leaves room for.
	c = a.attacker()
	c.Send(frag(3, 7, 0, 100, 60))
	c.Send(frag(3, 7, 60, 100, 60))
	expectCode(t, c, protocol.CodeProtocolError)
	a.check()
	a.heapBound(8 << 20)
}

// Malformed headers and handshakes.
func TestAttackMalformed(t *testing.T) {
	a := newArena(t, reactor.Config{}, Options{})
	ping := codec.Frame{Type: protocol.FramePing}
	cases := []struct {
		name  string
		hello bool
		bytes []byte
		want  protocol.ErrorCode
	}{
		{"reserved lane bits", true, func() []byte { b := ping.Append(nil); b[6] = 0x80; return b }(), protocol.CodeProtocolError},
		{"reserved flag", true, func() []byte { b := ping.Append(nil); b[5] = 0x40; return b }(), protocol.CodeProtocolError},
		{"unknown type", true, func() []byte { b := ping.Append(nil); b[4] = 0x7e; return b }(), protocol.CodeProtocolError},
		{"wrong version", false, func() []byte { h := codec.Hello{Version: 9}; return codec.AppendHello(nil, &h) }(), protocol.CodeUnsupportedVersion},
		{"frame before HELLO", false, ping.Append(nil), protocol.CodeProtocolError},
	}
	for _, tc := range cases {
		c := a.dial()
		if tc.hello {
			c.Hello(codec.Hello{})
		}
		c.Write(tc.bytes)
		if got := c.ExpectClose(10 * time.Second); got != tc.want {
			t.Fatalf("%s: closed with %s, want %s", tc.name, got, tc.want)
		}
	}
	a.check()
	a.heapBound(4 << 20)
}

// PING flood: warned, then closed.
func TestAttackPingFlood(t *testing.T) {
	a := newArena(t, reactor.Config{}, Options{})
	c := a.attacker()
	var flood []byte
	for i := range 1000 {
		p := codec.Frame{Type: protocol.FramePing, Opaque: uint64(i)}
		flood = p.Append(flood)
	}
	c.Write(flood)
	expectCode(t, c, protocol.CodeRateLimited)
	a.check()
	a.heapBound(4 << 20)
}

// Subscription flood: refused past the cap, answered with RATE_LIMITED.
func TestAttackSubscriptionFlood(t *testing.T) {
	a := newArena(t, reactor.Config{MaxOutboundBytes: 64 << 20}, Options{MaxSubscriptions: 100})
	c := a.attacker()
	var flood []byte
	const n = 20_000
	for i := range n {
		f := codec.Frame{Type: protocol.FrameSubscribe, Lane: 1, Corr: uint32(i + 1), Name: []byte("flood/" + string(rune('a'+i%26)) + "/" + itoa(i))}
		flood = f.Append(flood)
	}
	c.Write(flood)
	limited := 0
	for range n {
		f := c.Next(10 * time.Second)
		if f.Type == protocol.FrameResult && f.Code == protocol.CodeRateLimited {
			limited++
		}
	}
	if limited != n-100 || a.r.subs.Len() != 100 {
		t.Fatalf("%d refused, %d held; want %d and 100", limited, a.r.subs.Len(), n-100)
	}
	a.check()
	a.heapBound(16 << 20)
}

func itoa(i int) string {
	var b [20]byte
	n := len(b)
	for {
		n--
		b[n] = byte('0' + i%10)
		if i /= 10; i == 0 {
			return string(b[n:])
		}
	}
}

// Connection flood past MaxConns: refused with TOO_MANY_CONNECTIONS.
func TestAttackConnectionFlood(t *testing.T) {
	a := newArena(t, reactor.Config{MaxConns: 20}, Options{})
	var held []*wiretest.Client
	for range 19 { // the good client holds the 20th place
		c := a.dial()
		c.Hello(codec.Hello{})
		held = append(held, c)
	}
	for range 10 {
		expectCode(t, a.dial(), protocol.CodeTooManyConnections)
	}
	a.check()
	if a.srv.Counters().ConnsRefused.Load() != 10 {
		t.Fatalf("refused %d", a.srv.Counters().ConnsRefused.Load())
	}
	_ = held
}

// A subscriber that never reads, under heavy fan-out: its queue is capped,
// it is closed with SLOW_CONSUMER, and memory stays bounded; the publisher
// and the other subscriber carry on.
func TestAttackNeverReadingSubscriber(t *testing.T) {
	a := newArena(t, reactor.Config{MaxOutboundBytes: 1 << 20, HighWatermark: 512 << 10}, Options{})
	lazy := a.attacker()
	lazy.Send(codec.Frame{Type: protocol.FrameSubscribe, Lane: 1, Corr: 1, Name: []byte("firehose")})
	reader := a.attacker()
	reader.Send(codec.Frame{Type: protocol.FrameSubscribe, Lane: 1, Corr: 1, Name: []byte("firehose")})
	for _, c := range []*wiretest.Client{lazy, reader} {
		if f := c.Next(5 * time.Second); f.Type != protocol.FrameResult || f.Code != protocol.CodeOK {
			t.Fatalf("subscribe: %+v", f)
		}
	}
	pub := a.attacker()
	payload := make([]byte, 4096)
	got := make(chan int, 1)
	var read atomic.Int64
	go func() { // the reading subscriber keeps reading
		n := 0
		defer func() { read.Store(1 << 40) }() // unblock the publisher
		for {
			f, err := reader.Read(5 * time.Second)
			if err != nil || f.Type == protocol.FrameError {
				got <- n
				return
			}
			if f.Type == protocol.FramePublish {
				n++
				read.Store(int64(n))
				if n == 4000 {
					got <- n
					return
				}
			}
		}
	}()
	for i := 0; i < 4000; i += 50 {
		var batch []byte
		for range 50 {
			f := codec.Frame{Type: protocol.FramePublish, Lane: 2, Name: []byte("firehose"), Payload: payload}
			batch = f.Append(batch)
		}
		pub.Write(batch)
		// Keep the reading subscriber within 100 messages (400 KB) of the
		// publisher, well under its cap, however slow this machine is: a
		// reader that keeps up must not be mistaken for a slow consumer.
		for read.Load() < int64(i+50-100) {
			time.Sleep(100 * time.Microsecond)
		}
	}
	if n := <-got; n != 4000 {
		t.Fatalf("the reading subscriber got %d of 4000", n)
	}
	// 16 MB went to a peer that reads nothing: more than the kernel's
	// buffers and the 1 MiB cap hold, so it must have been cut off.
	wiretest.WaitUntil(t, "SLOW_CONSUMER", 10*time.Second, func() bool { return a.srv.Counters().ClosesBy(protocol.CodeSlowConsumer) == 1 })
	a.check()
	a.heapBound(16 << 20)
}

// selfReliable has c, logged in as id, send itself n reliable DIRECT
// messages on lane 1 through the router (client Seqs from first), and
// waits until they came back: the server has then sent c reliable frames
// up to Seq first+n−1 on lane 1, which c has not acknowledged.
func selfReliable(t *testing.T, c *wiretest.Client, id string, first uint64, n int) {
	t.Helper()
	for i := range uint64(n) {
		c.Send(codec.Frame{Type: protocol.FrameDirect, Flags: protocol.FlagReliable, Lane: 1, Seq: first + i,
			Corr: uint32(first + i), Name: []byte(id), Payload: []byte("to myself")})
	}
	last := first + uint64(n) - 1
	for got := first - 1; got < last; {
		f := c.Next(5 * time.Second)
		switch {
		case f.Type == protocol.FrameError:
			t.Fatalf("closed with %s", f.Code)
		case f.Type == protocol.FrameResult && f.Code != protocol.CodeOK:
			t.Fatalf("reliable DIRECT answered %s", f.Code)
		case f.Type == protocol.FrameDirect && f.Lane == 1:
			if !f.Flags.Has(protocol.FlagReliable) || f.Seq != got+1 {
				t.Fatalf("got DIRECT seq %d (reliable %v), want %d", f.Seq, f.Flags.Has(protocol.FlagReliable), got+1)
			}
			got = f.Seq
		}
	}
}

func ack(lane protocol.Lane, cumulative, selective uint64) codec.Frame {
	return codec.Frame{Type: protocol.FrameAck, AckLane: lane, Cumulative: cumulative, Selective: selective}
}

// SPEC §7.2, §12.2: "An ACK that acknowledges a Seq its receiver never
// sent on that lane (C, or a selective bit, above the highest Seq sent):
// PROTOCOL_ERROR." The first such ACK closes the connection; what follows
// it in the same write is not looked at.
func TestAttackUnknownAcks(t *testing.T) {
	a := newArena(t, reactor.Config{}, Options{})
	rejected := func() uint64 { return a.srv.Counters().AcksRejected.Load() }

	// Nothing reliable was ever sent to this one: 10,000 ACKs in one write.
	c := a.attacker()
	var flood []byte
	for i := range 10_000 {
		f := ack(1, uint64(i+1), 0)
		flood = f.Append(flood)
	}
	c.Write(flood)
	expectCode(t, c, protocol.CodeProtocolError)
	if n := rejected(); n != 1 {
		t.Fatalf("%d ACKs rejected, want 1: the connection must close at the first", n)
	}

	// Three reliable frames sent on lane 1, then an ACK past them: by
	// Cumulative, by a Selective bit, and on a lane that carried none.
	for i, bad := range []codec.Frame{
		ack(1, 4, 0),
		ack(1, 1, 1<<5), // Seq 1 + 2 + 5 = 8
		ack(2, 1, 0),
	} {
		id := "acker-" + itoa(i)
		c := a.dial()
		c.Hello(codec.Hello{ClientID: []byte(id), HeartbeatMs: 30_000})
		selfReliable(t, c, id, 1, 3)
		c.Send(ack(1, 2, 0)) // a valid one first: it is accepted
		c.Send(bad)
		expectCode(t, c, protocol.CodeProtocolError)
		a.check()
	}
	if n := rejected(); n != 4 {
		t.Fatalf("%d ACKs rejected, want 4", n)
	}
	a.heapBound(4 << 20)
}

// An ACK flood: a client that holds reliable frames from the server sends
// 150,000 valid but redundant ACKs as fast as it can. Each costs the
// server O(1) work and no allocation and produces no output, so it is not
// closed (docs/SECURITY.md explains why): the flood costs its sender's
// connection its own share of the loop, and nothing else. The flooder's
// own requests still work afterwards, the well-behaved client is answered
// during the flood, and the heap does not grow.
func TestAttackAckFlood(t *testing.T) {
	a := newArena(t, reactor.Config{}, Options{})
	c := a.dial()
	c.Hello(codec.Hello{ClientID: []byte("flooder"), HeartbeatMs: 30_000})
	selfReliable(t, c, "flooder", 1, 10)
	const n = 150_000
	flood := make([]byte, 0, n*31)
	for i := range n {
		// The first acknowledges all ten; the rest say nothing new
		// (SPEC §12.2: "A Cumulative below what the sender already knows
		// to be acknowledged changes nothing").
		f := ack(1, 10-uint64(i%11), 0)
		flood = f.Append(flood)
	}
	acksBefore := a.srv.Counters().FramesIn[protocol.FrameAck].Load()
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		var err error
		for b := flood; len(b) > 0 && err == nil; {
			k := min(len(b), 64<<10)
			_, err = c.Conn.Write(b[:k])
			b = b[k:]
		}
		done <- err
	}()
	var worst time.Duration
	for flooding := true; flooding; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("flood write: %v", err)
			}
			flooding = false
		default:
			t0 := time.Now()
			a.check()
			worst = max(worst, time.Since(t0))
		}
	}
	// The flooder's next request is answered after every ACK before it.
	c.Send(codec.Frame{Type: protocol.FrameData, Lane: 1, Route: echoRoute, Corr: 1 << 20, Payload: []byte("still here")})
	for {
		f := c.Next(10 * time.Second)
		if f.Type == protocol.FrameError {
			t.Fatalf("the flooder was closed with %s", f.Code)
		}
		if f.Type == protocol.FrameData && f.Corr == 1<<20 {
			break
		}
	}
	took := time.Since(start)
	ctr := a.srv.Counters()
	if got := ctr.FramesIn[protocol.FrameAck].Load() - acksBefore; got < n {
		t.Fatalf("%d ACKs processed, want %d", got, n)
	}
	if ctr.AcksRejected.Load() != 0 {
		t.Fatalf("%d valid ACKs rejected", ctr.AcksRejected.Load())
	}
	t.Logf("%d ACKs (%d KiB) in %v; the good client's slowest answer meanwhile %v", n, len(flood)>>10, took, worst)
	if worst > 2*time.Second {
		t.Fatalf("the good client waited %v during the flood", worst)
	}
	a.check()
	a.heapBound(4 << 20)
}

// refused sends h (the version filled in) on a new connection and
// returns the code the server closed it with.
func refused(t *testing.T, a *arena, h codec.Hello) protocol.ErrorCode {
	t.Helper()
	c := a.dial()
	h.Version = protocol.Version
	c.Write(codec.AppendHello(nil, &h))
	return c.ExpectClose(10 * time.Second)
}

// echo asserts that c is open and answered.
func echo(t *testing.T, c *wiretest.Client, corr uint32) {
	t.Helper()
	c.Send(codec.Frame{Type: protocol.FrameData, Lane: 1, Route: echoRoute, Corr: corr, Payload: []byte("echo")})
	for {
		f := c.Next(5 * time.Second)
		if f.Type == protocol.FrameError {
			t.Fatalf("closed with %s", f.Code)
		}
		if f.Type == protocol.FrameData && f.Corr == corr {
			return
		}
	}
}

func waitDetached(t *testing.T, srv *reactor.Server, id string) {
	t.Helper()
	wiretest.WaitUntil(t, id+" detached", 5*time.Second, func() bool {
		s := srv.SessionByClient(id)
		return s != nil && !s.Attached()
	})
}

func mustMint(t *testing.T, c Claims) []byte {
	t.Helper()
	tok, err := MintToken(secret, c)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(tok)
}

// Resume tokens that were never issued (SPEC §5.4.7: "The session exists
// and ResumeToken is not valid for it: close with RESUME_FAILED. The
// server MUST NOT attach the connection to the session, which stays as it
// was."), tried while the session is attached and while it is detached.
// Among them the owner's current token presented by another authenticated
// client: a token is bound to its session's client id. Each attempt costs
// its source a failed login (AuthLimit).
func TestAttackForgedResumeToken(t *testing.T) {
	a := newArena(t, reactor.Config{}, Options{Auth: &TokenAuth{Secret: secret, AllowAnonymous: true}, AuthLimit: AuthLimit{Burst: 100}})
	ownerTok := mustMint(t, Claims{ClientID: "owner"})
	owner := a.dial()
	w := owner.Hello(codec.Hello{AuthToken: ownerTok, SessionExpiry: 60})
	if len(w.SessionID) == 0 || len(w.ResumeToken) == 0 {
		t.Fatal("no resumable session offered")
	}
	other := a.dial()
	wo := other.Hello(codec.Hello{AuthToken: mustMint(t, Claims{ClientID: "bystander", Direct: []string{"owner"}}), SessionExpiry: 60})
	mallory := mustMint(t, Claims{ClientID: "mallory"})

	flipped := append([]byte(nil), w.ResumeToken...)
	flipped[len(flipped)-1] ^= 1
	random := make([]byte, len(w.ResumeToken))
	for i := range random {
		random[i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[(i*37+11)%64]
	}
	forgeries := []struct {
		name string
		h    codec.Hello
	}{
		{"made up", codec.Hello{SessionID: w.SessionID, ResumeToken: random}},
		{"one bit flipped", codec.Hello{SessionID: w.SessionID, ResumeToken: flipped}},
		{"truncated", codec.Hello{SessionID: w.SessionID, ResumeToken: w.ResumeToken[:len(w.ResumeToken)-1]}},
		{"empty", codec.Hello{SessionID: w.SessionID}},
		{"another session's token", codec.Hello{SessionID: w.SessionID, ResumeToken: wo.ResumeToken}},
		{"current token, other identity", codec.Hello{AuthToken: mallory, SessionID: w.SessionID, ResumeToken: w.ResumeToken}},
	}
	attempt := func() {
		t.Helper()
		for _, f := range forgeries {
			if code := refused(t, a, f.h); code != protocol.CodeResumeFailed {
				t.Fatalf("%s: closed with %s, want RESUME_FAILED", f.name, code)
			}
		}
	}
	attempt() // attached: the owner is not taken over
	echo(t, owner, 1)
	if a.srv.Counters().Takeovers.Load() != 0 {
		t.Fatal("a forged resume took the session over")
	}
	a.check()

	// Detached, with a message waiting for the owner.
	owner.Conn.Close()
	waitDetached(t, a.srv, "owner")
	other.Send(codec.Frame{Type: protocol.FrameDirect, Flags: protocol.FlagReliable, Seq: 1, Lane: 2, Corr: 9, Name: []byte("owner"), Payload: []byte("kept")})
	if code := expectResult(t, other, 9); code != protocol.CodeOK {
		t.Fatalf("reliable DIRECT to the detached owner: %s", code)
	}
	attempt()
	if s := a.srv.SessionByClient("owner"); s == nil || s.Attached() {
		t.Fatal("the session did not stay as it was")
	}
	if n := a.srv.Counters().ResumesFailed.Load(); n != uint64(2*len(forgeries)) {
		t.Fatalf("%d failed resumes counted, want %d", n, 2*len(forgeries))
	}
	if a.r.AuthSources() != 1 {
		t.Fatalf("%d sources charged for the failed resumes, want 1 (127.0.0.1)", a.r.AuthSources())
	}

	// The owner resumes with its current token and gets what waited.
	back := a.dial()
	w2 := back.Hello(codec.Hello{AuthToken: ownerTok, SessionID: w.SessionID, ResumeToken: w.ResumeToken})
	if !w2.SessionPresent || string(w2.ClientID) != "owner" {
		t.Fatalf("the owner's resume: present %v, id %q", w2.SessionPresent, w2.ClientID)
	}
	for {
		f := back.Next(5 * time.Second)
		if f.Type == protocol.FrameDirect {
			if string(f.Payload) != "kept" {
				t.Fatalf("the owner got %+v", f)
			}
			break
		}
	}
	a.check()
	a.heapBound(4 << 20)
}

// Replayed resume tokens. Every WELCOME rotates the token, and the token
// it replaced stays valid "only until the server receives a first frame
// (any frame) on the connection that WELCOME was sent on ... From then on
// the server MUST treat every earlier token of the session as invalid"
// (SPEC §5.4.7). A superseded token fails while the session is attached
// (no takeover) and while it is detached, even with the owner's
// credentials; the session stays resumable with its current token.
//
// The window the SPEC leaves is pinned too: before the owner's new
// connection has sent anything, the token its HELLO carried (readable on
// the path without TLS) still resumes, and takes the session over. The
// owner learns it when its own resume fails, and gets its id back by
// starting a new session, which ends the stolen one.
func TestAttackReplayedResumeToken(t *testing.T) {
	a := newArena(t, reactor.Config{}, Options{Auth: &TokenAuth{Secret: secret, AllowAnonymous: true}})
	ownerTok := mustMint(t, Claims{ClientID: "owner"})
	resume := func(sid, tok []byte) (*wiretest.Client, codec.Welcome) {
		t.Helper()
		c := a.dial()
		w := c.Hello(codec.Hello{AuthToken: ownerTok, SessionID: sid, ResumeToken: tok, SessionExpiry: 60})
		if !w.SessionPresent || string(w.ResumeToken) == string(tok) {
			t.Fatalf("resume: present %v, token rotated %v", w.SessionPresent, string(w.ResumeToken) != string(tok))
		}
		return c, w
	}
	failed := func() uint64 { return a.srv.Counters().ResumesFailed.Load() }
	c1 := a.dial()
	w1 := c1.Hello(codec.Hello{AuthToken: ownerTok, SessionExpiry: 60})
	sid := w1.SessionID
	c1.Conn.Close()
	waitDetached(t, a.srv, "owner")
	c2, w2 := resume(sid, w1.ResumeToken)
	echo(t, c2, 1) // c2 has w2: w1 is retired
	replay := codec.Hello{SessionID: sid, ResumeToken: w1.ResumeToken}
	// Attached: refused, and the owner keeps its connection.
	for range 3 {
		if code := refused(t, a, replay); code != protocol.CodeResumeFailed {
			t.Fatalf("replay while attached: %s", code)
		}
	}
	echo(t, c2, 2)
	// Detached: refused, even with the owner's credentials.
	c2.Conn.Close()
	waitDetached(t, a.srv, "owner")
	withCreds := replay
	withCreds.AuthToken = ownerTok
	for _, h := range []codec.Hello{replay, withCreds} {
		if code := refused(t, a, h); code != protocol.CodeResumeFailed {
			t.Fatalf("replay while detached: %s", code)
		}
	}
	a.check()
	c3, w3 := resume(sid, w2.ResumeToken)
	echo(t, c3, 3)
	replay.ResumeToken = w2.ResumeToken // the token just used, now retired
	if code := refused(t, a, replay); code != protocol.CodeResumeFailed {
		t.Fatalf("replay of the token just used: %s", code)
	}
	echo(t, c3, 4)
	if n := failed(); n != 6 {
		t.Fatalf("%d failed resumes counted, want 6", n)
	}

	// The window: the owner resumes with w3 and has sent nothing yet when
	// a thief replays w3. SPEC §5.4.7: a resume with the previous token
	// gets the current one again, so the thief gets the owner's w4.
	c3.Conn.Close()
	waitDetached(t, a.srv, "owner")
	c4, w4 := resume(sid, w3.ResumeToken)
	thief := a.dial()
	wt := thief.Hello(codec.Hello{SessionID: sid, ResumeToken: w3.ResumeToken})
	if !wt.SessionPresent || string(wt.ClientID) != "owner" || !bytes.Equal(wt.ResumeToken, w4.ResumeToken) {
		t.Fatalf("a replay inside the window: %+v", wt)
	}
	if code := c4.ExpectClose(5 * time.Second); code != protocol.CodeSessionTakenOver {
		t.Fatalf("the owner was closed with %s", code)
	}
	echo(t, thief, 5) // retires w3
	// The owner holds w4 as well: it takes the session back, and its
	// next token leaves the thief's behind.
	c5, w5 := resume(sid, w4.ResumeToken)
	if code := thief.ExpectClose(5 * time.Second); code != protocol.CodeSessionTakenOver {
		t.Fatalf("the thief was closed with %s", code)
	}
	echo(t, c5, 7)
	if bytes.Equal(w5.ResumeToken, w4.ResumeToken) {
		t.Fatal("the owner's resume with the current token did not rotate it")
	}
	thief2 := a.dial()
	thief2.Write(codec.AppendHello(nil, &codec.Hello{Version: protocol.Version, SessionID: sid, ResumeToken: w4.ResumeToken}))
	if code := thief2.ExpectClose(5 * time.Second); code != protocol.CodeResumeFailed {
		t.Fatalf("the thief's token after the owner moved on: %s", code)
	}
	c5.Conn.Close()
	waitDetached(t, a.srv, "owner")
	// The owner then starts a new session under its id (SPEC §13.5): the
	// old session ends.
	fresh := a.dial()
	if w := fresh.Hello(codec.Hello{AuthToken: ownerTok, SessionExpiry: 60}); w.SessionPresent || string(w.ClientID) != "owner" {
		t.Fatalf("the owner's new session: %+v", w)
	}
	if s := a.srv.SessionByClient("owner"); s != nil && s.ID() == string(sid) {
		t.Fatal("the stolen session outlived the owner's new one")
	}
	echo(t, fresh, 6)
	a.check()
	a.heapBound(4 << 20)
}

// rawPeer is a connection from a chosen loopback source address, which
// wiretest.Dial cannot make: enough of a client to log in and ask.
type rawPeer struct {
	t   *testing.T
	nc  net.Conn
	dec codec.Decoder
	buf []byte
}

func dialFrom(t *testing.T, addr, local string) *rawPeer {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawPeer{t: t, nc: nc, dec: codec.Decoder{MaxFrameSize: protocol.HardMaxFrameSize, Compression: true}}
}

func (p *rawPeer) send(f codec.Frame) {
	p.t.Helper()
	if _, err := p.nc.Write(f.Append(nil)); err != nil {
		p.t.Fatal(err)
	}
}

func (p *rawPeer) hello(h codec.Hello) {
	p.t.Helper()
	h.Version = protocol.Version
	if _, err := p.nc.Write(codec.AppendHello(nil, &h)); err != nil {
		p.t.Fatal(err)
	}
}

func (p *rawPeer) next() codec.Frame {
	p.t.Helper()
	_ = p.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		f, n, err := p.dec.Decode(p.buf)
		if err == nil {
			p.buf = p.buf[n:]
			return f
		}
		if !errors.Is(err, codec.ErrNeedMore) {
			p.t.Fatal(err)
		}
		chunk := make([]byte, 4096)
		m, err := p.nc.Read(chunk)
		if m == 0 && err != nil {
			p.t.Fatalf("read: %v", err)
		}
		p.buf = append(append([]byte(nil), p.buf...), chunk[:m]...)
	}
}

// Token guessing from one source (SPEC §15.7): the first Burst wrong
// tokens are AUTH_FAILED; after them the source's HELLOs are
// RATE_LIMITED before any token is checked, a right one included, so a
// good guess is not confirmed. A client from another source logs in
// meanwhile, and the guessing source gets in again after the refill.
func TestAttackAuthBruteForce(t *testing.T) {
	const burst, refill = 5, time.Second
	a := newArena(t, reactor.Config{}, Options{
		Auth:      &TokenAuth{Secret: secret, AllowAnonymous: true},
		AuthLimit: AuthLimit{Burst: burst, Refill: refill},
	})
	good := mustMint(t, Claims{ClientID: "victim"})
	start := time.Now() // the first failure is after this
	for i := range burst {
		wrong := mustMint(t, Claims{ClientID: "victim"})
		wrong[len(wrong)-1-i%4] ^= 1
		if code := refused(t, a, codec.Hello{AuthToken: wrong}); code != protocol.CodeAuthFailed {
			t.Fatalf("guess %d: closed with %s, want AUTH_FAILED", i, code)
		}
	}
	// The bucket refills one failure a second after the first: until
	// then, everything from 127.0.0.1 is refused, the right token first.
	limited := 0
	for i := 0; i < 50 && time.Since(start) < refill-300*time.Millisecond; i++ {
		h := codec.Hello{AuthToken: good}
		if i > 0 {
			h.AuthToken = []byte("ferry1.guess." + itoa(i))
		}
		if code := refused(t, a, h); code != protocol.CodeRateLimited {
			t.Fatalf("HELLO %d after the burst: closed with %s, want RATE_LIMITED", i, code)
		}
		limited++
		if i == 0 {
			// Meanwhile, from another source, the right token works.
			p := dialFrom(t, a.srv.Addr(), "127.0.0.2")
			p.hello(codec.Hello{AuthToken: good})
			if f := p.next(); f.Type != protocol.FrameWelcome {
				t.Fatalf("127.0.0.2 got %s %s, want WELCOME", f.Type, f.Code)
			}
			p.send(codec.Frame{Type: protocol.FrameData, Lane: 1, Route: echoRoute, Corr: 1, Payload: []byte("hi")})
			if f := p.next(); f.Type != protocol.FrameData || f.Corr != 1 {
				t.Fatalf("127.0.0.2 got %+v", f)
			}
			a.check()
		}
	}
	if limited == 0 {
		t.Fatal("too slow to see the lockout (the machine stalled for a second)")
	}
	st := a.r.Stats()
	if st.AuthFailed.Load() != burst || st.AuthRateLimited.Load() != uint64(limited) {
		t.Fatalf("stats: %d failed, %d rate limited; want %d and %d", st.AuthFailed.Load(), st.AuthRateLimited.Load(), burst, limited)
	}
	if a.srv.Counters().ClosesBy(protocol.CodeRateLimited) != uint64(limited) {
		t.Fatalf("%d closes with RATE_LIMITED", a.srv.Counters().ClosesBy(protocol.CodeRateLimited))
	}
	// /metrics says so.
	rec := httptest.NewRecorder()
	AdminHandler(a.srv, a.r, func() bool { return true }).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{
		"ferry_router_auth_failed_total " + itoa(burst),
		"ferry_router_auth_rate_limited_total " + itoa(limited),
		"ferry_router_auth_sources 1",
	} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Fatalf("/metrics lacks %q", want)
		}
	}
	// One refill after the first failure, 127.0.0.1 gets a try again.
	time.Sleep(time.Until(start.Add(refill + 50*time.Millisecond)))
	back := a.dial()
	if w := back.Hello(codec.Hello{AuthToken: good}); string(w.ClientID) != "victim" {
		t.Fatalf("logged in as %q", w.ClientID)
	}
	echo(t, back, 7)
	a.check()
	a.heapBound(4 << 20)
}
