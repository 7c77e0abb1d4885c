package router

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ferry-proto/ferry/codec"
	"github.com/ferry-proto/ferry/internal/wiretest"
	"github.com/ferry-proto/ferry/protocol"
	"github.com/ferry-proto/ferry/reactor"
)

const echoRoute = 1

func start(t *testing.T, opts Options) (*reactor.Server, *Router) {
	t.Helper()
	r := New(opts)
	r.Handle(echoRoute, "echo", func(ctx *Context) { _ = ctx.Reply(ctx.Payload()) })
	r.Handle(2, "fail", func(ctx *Context) { _ = ctx.Fail(protocol.CodeHandlerError) })
	r.Handle(5, "picky", func(ctx *Context) { ctx.Reject() })
	srv, err := reactor.New(reactor.Config{Addr: "127.0.0.1:0", Loops: 2, Handler: r})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv, r
}

func login(t *testing.T, srv *reactor.Server, id string) *wiretest.Client {
	t.Helper()
	c := wiretest.Dial(t, srv.Addr())
	w := c.Hello(codec.Hello{ClientID: []byte(id)})
	if id != "" && string(w.ClientID) != id {
		t.Fatalf("logged in as %q, want %q", w.ClientID, id)
	}
	return c
}

// expectResult reads frames until the RESULT for corr and returns its code.
func expectResult(t *testing.T, c *wiretest.Client, corr uint32) protocol.ErrorCode {
	t.Helper()
	for {
		f := c.Next(5 * time.Second)
		if f.Type == protocol.FrameResult && f.Corr == corr {
			return f.Code
		}
	}
}

func TestRequestResponse(t *testing.T) {
	srv, r := start(t, Options{})
	c := login(t, srv, "p1")
	// A request without a correlation id gets no answer (SPEC §6.1)...
	c.Send(codec.Frame{Type: protocol.FrameData, Lane: 1, Route: echoRoute, Payload: []byte("silent")})
	// ...one with an id gets its response on the same lane.
	c.Send(codec.Frame{Type: protocol.FrameData, Lane: 2, Route: echoRoute, Corr: 7, Payload: []byte("hi")})
	f := c.Next(5 * time.Second)
	if f.Type != protocol.FrameData || !f.Flags.Has(protocol.FlagResponse) || f.Corr != 7 || f.Lane != 2 || string(f.Payload) != "hi" {
		t.Fatalf("response %+v", f)
	}
	c.Send(codec.Frame{Type: protocol.FrameData, Lane: 1, Route: 999, Corr: 8})
	if code := expectResult(t, c, 8); code != protocol.CodeNoSuchRoute {
		t.Fatalf("unknown route: %s", code)
	}
	c.Send(codec.Frame{Type: protocol.FrameData, Lane: 1, Route: 2, Corr: 9})
	if code := expectResult(t, c, 9); code != protocol.CodeHandlerError {
		t.Fatalf("failing handler: %s", code)
	}
	if r.Stats().Requests.Load() != 3 || r.Stats().NoRoute.Load() != 1 || r.RouteName(echoRoute) != "echo" {
		t.Fatalf("stats: requests %d, no route %d", r.Stats().Requests.Load(), r.Stats().NoRoute.Load())
	}
}

func TestMiddlewareWrapsRoutes(t *testing.T) {
	r := New(Options{})
	var order []string
	r.Use(func(next HandlerFunc) HandlerFunc {
		return func(ctx *Context) { order = append(order, "outer"); next(ctx) }
	}, func(next HandlerFunc) HandlerFunc {
		return func(ctx *Context) { order = append(order, "inner"); next(ctx) }
	})
	r.Handle(5, "x", func(*Context) { order = append(order, "handler") })
	r.routes[5].h(&Context{})
	if len(order) != 3 || order[0] != "outer" || order[1] != "inner" || order[2] != "handler" {
		t.Fatalf("order %v", order)
	}
}

func TestPubSubWildcards(t *testing.T) {
	srv, r := start(t, Options{})
	a := login(t, srv, "a")
	b := login(t, srv, "b")
	c := login(t, srv, "c")
	pub := login(t, srv, "pub")
	for i, sub := range []struct {
		c       *wiretest.Client
		pattern string
	}{{a, "game/+/pos"}, {b, "game/#"}, {c, "chat/1"}} {
		sub.c.Send(codec.Frame{Type: protocol.FrameSubscribe, Lane: 1, Corr: uint32(i + 1), Name: []byte(sub.pattern)})
		if code := expectResult(t, sub.c, uint32(i+1)); code != protocol.CodeOK {
			t.Fatalf("subscribe %s: %s", sub.pattern, code)
		}
	}
	pub.Send(codec.Frame{Type: protocol.FramePublish, Lane: 2, Corr: 1, Name: []byte("game/7/pos"), Payload: []byte("x=1")})
	if code := expectResult(t, pub, 1); code != protocol.CodeOK {
		t.Fatalf("publish: %s", code)
	}
	for _, sub := range []*wiretest.Client{a, b} {
		f := sub.Next(5 * time.Second)
		if f.Type != protocol.FramePublish || string(f.Name) != "game/7/pos" || string(f.Payload) != "x=1" || f.Corr != 0 || f.Lane != 2 {
			t.Fatalf("delivery %+v", f)
		}
	}
	pub.Send(codec.Frame{Type: protocol.FramePublish, Lane: 1, Name: []byte("chat/1"), Payload: []byte("hello")})
	if f := c.Next(5 * time.Second); string(f.Name) != "chat/1" || string(f.Payload) != "hello" {
		t.Fatalf("chat delivery %+v", f)
	}
	// Only b's "game/#" matches "game".
	pub.Send(codec.Frame{Type: protocol.FramePublish, Lane: 1, Name: []byte("game"), Payload: []byte("root")})
	if f := b.Next(5 * time.Second); string(f.Name) != "game" {
		t.Fatalf("game/# did not match game: %+v", f)
	}
	if _, err := a.Read(100 * time.Millisecond); err == nil {
		t.Fatal("game/+/pos received a publication it does not match")
	}
	// Invalid pattern and topic.
	a.Send(codec.Frame{Type: protocol.FrameSubscribe, Lane: 1, Corr: 50, Name: []byte("a/#/b")})
	if code := expectResult(t, a, 50); code != protocol.CodeInvalidTopic {
		t.Fatalf("invalid pattern: %s", code)
	}
	pub.Send(codec.Frame{Type: protocol.FramePublish, Lane: 1, Corr: 51, Name: []byte("a/+")})
	if code := expectResult(t, pub, 51); code != protocol.CodeInvalidTopic {
		t.Fatalf("invalid topic: %s", code)
	}
	if r.Stats().Delivered.Load() != 4 {
		t.Fatalf("delivered %d, want 4", r.Stats().Delivered.Load())
	}
}

func TestUnsubscribeAndCleanup(t *testing.T) {
	srv, r := start(t, Options{MaxSubscriptions: 3})
	a := login(t, srv, "a")
	pub := login(t, srv, "pub")
	for i, p := range []string{"t/1", "t/2", "t/3", "t/4"} {
		a.Send(codec.Frame{Type: protocol.FrameSubscribe, Lane: 1, Corr: uint32(i + 1), Name: []byte(p)})
		want := protocol.CodeOK
		if i == 3 {
			want = protocol.CodeRateLimited // over MaxSubscriptions
		}
		if code := expectResult(t, a, uint32(i+1)); code != want {
			t.Fatalf("subscribe %s: %s, want %s", p, code, want)
		}
	}
	a.Send(codec.Frame{Type: protocol.FrameUnsubscribe, Lane: 1, Corr: 10, Name: []byte("t/1")})
	if code := expectResult(t, a, 10); code != protocol.CodeOK {
		t.Fatalf("unsubscribe: %s", code)
	}
	pub.Send(codec.Frame{Type: protocol.FramePublish, Lane: 1, Name: []byte("t/1"), Payload: []byte("gone")})
	pub.Send(codec.Frame{Type: protocol.FramePublish, Lane: 1, Name: []byte("t/2"), Payload: []byte("here")})
	if f := a.Next(5 * time.Second); string(f.Name) != "t/2" {
		t.Fatalf("after unsubscribing t/1 got %q", f.Name)
	}
	if r.subs.Len() != 2 {
		t.Fatalf("%d subscriptions, want 2", r.subs.Len())
	}
	a.Conn.Close()
	deadline := time.Now().Add(5 * time.Second)
	for r.subs.Len() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d subscriptions left after the subscriber left", r.subs.Len())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestDirectMessages(t *testing.T) {
	srv, r := start(t, Options{})
	alice := login(t, srv, "alice")
	bob := login(t, srv, "bob")
	if !r.Online("bob") || r.Online("carol") {
		t.Fatal("presence")
	}
	alice.Send(codec.Frame{Type: protocol.FrameDirect, Lane: 1, Corr: 1, Name: []byte("bob"), Payload: []byte("gg")})
	if code := expectResult(t, alice, 1); code != protocol.CodeOK {
		t.Fatalf("direct: %s", code)
	}
	f := bob.Next(5 * time.Second)
	// SPEC §6.3: the recipient sees the sender's id in Peer.
	if f.Type != protocol.FrameDirect || string(f.Name) != "alice" || string(f.Payload) != "gg" || f.Corr != 0 {
		t.Fatalf("bob got %+v", f)
	}
	alice.Send(codec.Frame{Type: protocol.FrameDirect, Lane: 1, Corr: 2, Name: []byte("carol"), Payload: []byte("?")})
	if code := expectResult(t, alice, 2); code != protocol.CodeNoSuchClient {
		t.Fatalf("direct to nobody: %s", code)
	}
}

// SPEC §6.3, §12: a reliable DIRECT to a client that is disconnected but
// whose session lives waits in its offline queue and reaches it when it
// resumes; the sender's receipt is OK at once.
func TestReliableDirectToOfflineClient(t *testing.T) {
	srv, _ := start(t, Options{})
	alice := login(t, srv, "alice")
	bob := wiretest.Dial(t, srv.Addr())
	w := bob.Hello(codec.Hello{ClientID: []byte("bob")})
	bob.Conn.Close()
	wiretest.WaitUntil(t, "bob detached", 5*time.Second, func() bool {
		s := srv.SessionByClient("bob")
		return s != nil && !s.Attached()
	})
	alice.Send(codec.Frame{Type: protocol.FrameDirect, Flags: protocol.FlagReliable, Seq: 1, Lane: 2, Corr: 7, Name: []byte("bob"), Payload: []byte("later")})
	if code := expectResult(t, alice, 7); code != protocol.CodeOK {
		t.Fatalf("reliable direct to an offline client: %s", code)
	}
	bob2 := wiretest.Dial(t, srv.Addr())
	w2 := bob2.Hello(codec.Hello{ClientID: []byte("bob"), SessionID: w.SessionID, ResumeToken: w.ResumeToken})
	if !w2.SessionPresent {
		t.Fatal("bob's session not resumed")
	}
	for {
		f := bob2.Next(5 * time.Second)
		if f.Type != protocol.FrameDirect {
			continue
		}
		if string(f.Name) != "alice" || string(f.Payload) != "later" || !f.Flags.Has(protocol.FlagReliable) || f.Seq != 1 {
			t.Fatalf("bob got %+v", f)
		}
		break
	}
}

func TestLoginTakeover(t *testing.T) {
	srv, r := start(t, Options{})
	first := login(t, srv, "p1")
	second := login(t, srv, "p1")
	if code := first.ExpectClose(5 * time.Second); code != protocol.CodeSessionTakenOver {
		t.Fatalf("first connection closed with %s", code)
	}
	second.Send(codec.Frame{Type: protocol.FrameData, Lane: 1, Route: echoRoute, Corr: 1, Payload: []byte("still")})
	if f := second.Next(5 * time.Second); string(f.Payload) != "still" {
		t.Fatalf("second connection: %+v", f)
	}
	if r.Stats().Takeovers.Load() != 1 {
		t.Fatalf("takeovers %d", r.Stats().Takeovers.Load())
	}
}

func TestLoginRefusedDuplicate(t *testing.T) {
	srv, _ := start(t, Options{RefuseDuplicates: true})
	login(t, srv, "p1")
	dup := wiretest.Dial(t, srv.Addr())
	h := codec.Hello{Version: 1, ClientID: []byte("p1")}
	dup.Write(codec.AppendHello(nil, &h))
	if code := dup.ExpectClose(5 * time.Second); code != protocol.CodeDuplicateClient {
		t.Fatalf("duplicate login closed with %s", code)
	}
}

// SPEC §12: a DATA sent with APP_ACK is confirmed once its handler has
// run: PROCESSED, or REJECTED when the handler rejects it or no handler
// exists.
func TestAppAckConfirmed(t *testing.T) {
	srv, _ := start(t, Options{})
	c := login(t, srv, "")
	send := func(seq uint64, route uint32) codec.Frame {
		c.Send(codec.Frame{Type: protocol.FrameData, Flags: protocol.FlagReliable | protocol.FlagAppAck, Lane: 1, Route: route, Seq: seq, Payload: []byte("x")})
		for {
			f := c.Next(5 * time.Second)
			if f.Type == protocol.FrameConfirm {
				return f
			}
		}
	}
	for _, tc := range []struct {
		seq   uint64
		route uint32
		want  protocol.Verdict
	}{{1, echoRoute, protocol.ConfirmProcessed}, {2, 5, protocol.ConfirmRejected}, {3, 99, protocol.ConfirmRejected}} {
		f := send(tc.seq, tc.route)
		if f.Seq != tc.seq || f.AckLane != 1 || f.Verdict != tc.want {
			t.Fatalf("route %d: CONFIRM seq %d lane %d %s", tc.route, f.Seq, f.AckLane, f.Verdict)
		}
	}
}

// SPEC §6.5: a keyed request refused by its handler leaves no key behind,
// so the same key is accepted again; one that was handled is a duplicate.
func TestKeyForgottenOnRefusal(t *testing.T) {
	srv, _ := start(t, Options{})
	c := login(t, srv, "kk")
	keyed := func(seq uint64, route, corr uint32) codec.Frame {
		return codec.Frame{Type: protocol.FrameData, Flags: protocol.FlagReliable | protocol.FlagKeyed, Lane: 1, Route: route, Corr: corr, Seq: seq, Opaque: 42, Payload: []byte("k")}
	}
	c.Send(keyed(1, 2, 1)) // route 2 fails with HANDLER_ERROR
	if code := expectResult(t, c, 1); code != protocol.CodeHandlerError {
		t.Fatalf("failing route: %s", code)
	}
	c.Send(keyed(2, echoRoute, 2)) // the same key again: handled this time
	for {
		f := c.Next(5 * time.Second)
		if f.Corr == 2 {
			if f.Type != protocol.FrameData || string(f.Payload) != "k" {
				t.Fatalf("the retry was not handled: %s %s %q", f.Type, f.Code, f.Payload)
			}
			break
		}
	}
	c.Send(keyed(3, echoRoute, 3)) // and now it is a duplicate
	for {
		f := c.Next(5 * time.Second)
		if f.Corr == 3 {
			if f.Type != protocol.FrameResult || f.Code != protocol.CodeOK || string(f.Payload) != "duplicate" {
				t.Fatalf("the duplicate got %s %s %q", f.Type, f.Code, f.Payload)
			}
			break
		}
	}
}

// SPEC §6.2: a reliable publication reaches each subscriber as a reliable
// PUBLISH numbered on the subscriber's own session.
func TestReliablePublishForwardedReliably(t *testing.T) {
	srv, _ := start(t, Options{})
	sub := login(t, srv, "sub")
	sub.Send(codec.Frame{Type: protocol.FrameSubscribe, Lane: 1, Corr: 1, Name: []byte("t/#")})
	if code := expectResult(t, sub, 1); code != protocol.CodeOK {
		t.Fatalf("subscribe: %s", code)
	}
	pub := login(t, srv, "pub")
	for i := uint64(1); i <= 3; i++ {
		pub.Send(codec.Frame{Type: protocol.FramePublish, Flags: protocol.FlagReliable, Seq: i, Lane: 2, Name: []byte("t/x"), Payload: []byte("p")})
	}
	for want := uint64(1); want <= 3; {
		f := sub.Next(5 * time.Second)
		if f.Type != protocol.FramePublish {
			continue
		}
		if !f.Flags.Has(protocol.FlagReliable) || f.Seq != want || f.Lane != 2 {
			t.Fatalf("copy %d: flags %s seq %d lane %d", want, f.Flags, f.Seq, f.Lane)
		}
		want++
	}
}

// Issue: latency histograms on /metrics. With Options.Latency, each route's
// handler run time is exported as ferry_router_handler_seconds{route}, from
// a sample (a connection's requests 1, 9, 17, ...), and round trips
// measured from PONGs as ferry_rtt_seconds.
func TestLatencyHistogramsExported(t *testing.T) {
	srv, r := start(t, Options{Latency: true})
	c := login(t, srv, "lat")
	for i := uint32(1); i <= 17; i++ {
		c.Send(codec.Frame{Type: protocol.FrameData, Lane: 1, Route: echoRoute, Corr: i, Payload: []byte("x")})
		for f := c.Next(5 * time.Second); f.Corr != i; f = c.Next(5 * time.Second) {
		}
	}
	h := AdminHandler(srv, r, func() bool { return true })
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{`ferry_router_handler_seconds_count{route="echo"} 3`, "ferry_rtt_seconds_bucket"} {
		if !strings.Contains(body, want) {
			t.Fatalf("/metrics lacks %q", want)
		}
	}
}

// A publisher remembers its last topic's subscribers between PUBLISHes;
// a subscription added or removed, or a subscriber gone, in between is
// seen by the next PUBLISH, and an invalid or forbidden topic is never
// remembered as valid.
func TestPublishFollowsSubscriptionChanges(t *testing.T) {
	srv, r := start(t, Options{})
	pub := login(t, srv, "pub")
	a := login(t, srv, "a")
	b := login(t, srv, "b")
	corr := uint32(0)
	subscribe := func(c *wiretest.Client, typ protocol.FrameType, pattern string) {
		t.Helper()
		corr++
		c.Send(codec.Frame{Type: typ, Lane: 1, Corr: corr, Name: []byte(pattern)})
		if code := expectResult(t, c, corr); code != protocol.CodeOK {
			t.Fatalf("%s %s: %s", typ, pattern, code)
		}
	}
	publish := func(payload string) {
		t.Helper()
		corr++
		pub.Send(codec.Frame{Type: protocol.FramePublish, Lane: 2, Corr: corr, Name: []byte("room/1"), Payload: []byte(payload)})
		if code := expectResult(t, pub, corr); code != protocol.CodeOK {
			t.Fatalf("publish %s: %s", payload, code)
		}
	}
	expect := func(c *wiretest.Client, payload string) {
		t.Helper()
		if f := c.Next(5 * time.Second); f.Type != protocol.FramePublish || string(f.Payload) != payload {
			t.Fatalf("got %s %q, want PUBLISH %q", f.Type, f.Payload, payload)
		}
	}
	silent := func(c *wiretest.Client) {
		t.Helper()
		if f, err := c.Read(100 * time.Millisecond); err == nil {
			t.Fatalf("unexpected %s %q", f.Type, f.Payload)
		}
	}

	subscribe(a, protocol.FrameSubscribe, "room/1")
	publish("1")
	expect(a, "1")
	subscribe(b, protocol.FrameSubscribe, "room/+")
	publish("2")
	expect(a, "2")
	expect(b, "2")
	subscribe(a, protocol.FrameUnsubscribe, "room/1")
	publish("3")
	expect(b, "3")
	silent(a)
	b.Conn.Close()
	for deadline := time.Now().Add(5 * time.Second); srv.Counters().ConnsOpen.Load() != 2; {
		if time.Now().After(deadline) {
			t.Fatal("b's close not seen")
		}
		time.Sleep(5 * time.Millisecond)
	}
	delivered := r.Stats().Delivered.Load()
	publish("4") // to nobody: b's subscription went with it
	if d, u := r.Stats().Delivered.Load()-delivered, r.Stats().Undelivered.Load(); d != 0 || u != 0 {
		t.Fatalf("after b left: %d delivered, %d undelivered", d, u)
	}
	subscribe(a, protocol.FrameSubscribe, "#")
	publish("5")
	expect(a, "5")
	// The same bytes as a valid topic first, then an invalid one.
	corr++
	pub.Send(codec.Frame{Type: protocol.FramePublish, Lane: 2, Corr: corr, Name: []byte("room/+")})
	if code := expectResult(t, pub, corr); code != protocol.CodeInvalidTopic {
		t.Fatalf("invalid topic after a valid one: %s", code)
	}
}
