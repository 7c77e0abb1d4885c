package router

import (
	"encoding/binary"
	"runtime"
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
