package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/ferry-proto/ferry/codec"
	"github.com/ferry-proto/ferry/protocol"
)

// SPEC §7.8: a GAP_REPORT after WELCOME reaches the callback and the
// counters.
func TestGapReport(t *testing.T) {
	rep := codec.GapReport{Delivered: 5, DroppedCount: 2, DroppedBytes: 1, DroppedAge: 3, Expired: 4}
	p := newPeer(t, peerOpts{afterWelcome: func(pc *peerConn) {
		pc.writeFrame(&codec.Frame{Type: protocol.FrameGapReport, Payload: rep.Append(nil)})
	}})
	reports := make(chan codec.GapReport, 1)
	c := dial(t, p.addr(), WithGapReportHandler(func(g codec.GapReport) { reports <- g }))
	if got := <-reports; got != rep {
		t.Fatalf("report %+v", got)
	}
	st := c.Stats()
	if st.GapReports != 1 || st.GapDelivered != 5 || st.GapDropped != 2 || st.GapDroppedBytes != 1 || st.GapExpired != 4 {
		t.Fatalf("stats %+v", st)
	}
}

// SPEC §7.7: a message sent with APP_ACK gets a CONFIRM naming the Seq of
// its last frame: PROCESSED when the handler returns nil, REJECTED when it
// fails, and whatever Confirm says when the handler defers.
func TestAppAckConfirm(t *testing.T) {
	p := newPeer(t, peerOpts{})
	later := make(chan *Message, 1)
	c := dial(t, p.addr(), WithHandler(func(m *Message) error {
		if !m.NeedsConfirm() {
			return nil
		}
		switch string(m.Payload) {
		case "fail":
			return errors.New("no")
		case "later":
			later <- m
			return ErrConfirmLater
		}
		return nil
	}))
	id := c.ClientID()
	send := func(lane protocol.Lane, payload []byte) {
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, s := range p.sessions {
			if s.clientID == id {
				tmpl := codec.Frame{Type: protocol.FrameData, Flags: protocol.FlagReliable | protocol.FlagAppAck,
					Lane: lane, Route: routeRecord}
				s.sendFrames(&tmpl, payload)
			}
		}
	}
	send(1, []byte("ok"))
	send(1, []byte("fail"))
	send(2, bytes.Repeat([]byte("f"), 40_000)) // three fragments: Seq 3 completes it
	send(3, []byte("later"))
	m := <-later
	if err := m.Confirm(protocol.ConfirmRejected); err != nil {
		t.Fatal(err)
	}
	if err := m.Confirm(protocol.ConfirmProcessed); !errors.Is(err, ErrNoConfirm) {
		t.Fatalf("second Confirm: %v", err)
	}
	type key struct {
		lane protocol.Lane
		seq  uint64
	}
	want := map[key]protocol.Verdict{
		{1, 1}: protocol.ConfirmProcessed,
		{1, 2}: protocol.ConfirmRejected,
		{2, 3}: protocol.ConfirmProcessed,
		{3, 1}: protocol.ConfirmRejected,
	}
	waitFor(t, "4 CONFIRMs", func() bool { return len(p.framesOf(0, protocol.FrameConfirm)) == 4 })
	for _, f := range p.framesOf(0, protocol.FrameConfirm) {
		v, ok := want[key{f.AckLane, f.Seq}]
		if !ok || v != f.Verdict {
			t.Errorf("CONFIRM lane %d Seq %d %v", f.AckLane, f.Seq, f.Verdict)
		}
	}
}

// SPEC §7.5, §6.2: subscriptions, local pattern matching, and the
// subscriptions made again in a new session.
func TestSubscribePublish(t *testing.T) {
	p := newPeer(t, peerOpts{})
	var ev events
	var all, scores got
	c := dial(t, p.addr(), WithHandler(all.handler), WithStateHandler(ev.add))
	ctx := testCtx(t)
	if err := c.Subscribe(ctx, "game/+/score", scores.handler); err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(ctx, "game/#", nil); err != nil { // to the WithHandler handler
		t.Fatal(err)
	}
	if err := c.Publish(2, "game/7/score", []byte("s1"), true); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(2, "game/7/pos", []byte("p1"), false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "publications", func() bool { return scores.len() == 1 && all.len() == 2 })
	if got := scores.payloads(); got[0] != "s1" {
		t.Fatalf("scores %q", got)
	}
	if err := c.Unsubscribe(ctx, "game/#"); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(2, "game/8/pos", []byte("p2"), true); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	// The server loses the session: the remaining subscription is made again.
	p.forget()
	p.kill()
	waitFor(t, "new session", func() bool { return ev.has(EventNewSession) })
	p.waitUntil("resubscribed", func() bool { s := p.only(); return s != nil && s.subs["game/+/score"] && len(s.subs) == 1 })
	if err := c.Publish(1, "game/9/score", []byte("s2"), true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "s2", func() bool { return scores.len() == 2 })
	if all.len() != 2 {
		t.Fatalf("unsubscribed handler got %q", all.payloads())
	}
	if err := c.Subscribe(ctx, "", nil); !errors.Is(err, ErrBadArgument) {
		t.Fatalf("empty pattern: %v", err)
	}
}

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, topic string
		want           bool
	}{
		{"a/b", "a/b", true},
		{"a/b", "a/c", false},
		{"a/+", "a/b", true},
		{"a/+", "a/", true},
		{"a/+", "a", false},
		{"a/+", "a/b/c", false},
		{"a/#", "a", true},
		{"a/#", "a/", true},
		{"a/#", "a/b/c", true},
		{"#", "x/y", true},
		{"#", "$SYS/x", false},
		{"+/x", "$SYS/x", false},
		{"$SYS/#", "$SYS/x", true},
		{"a//b", "a//b", true},
		{"a/+/b", "a//b", true},
		{"+", "a/b", false},
		{"a/b/c", "a/b", false},
	} {
		if got := match(tc.pattern, tc.topic); got != tc.want {
			t.Errorf("match(%q, %q) = %v", tc.pattern, tc.topic, got)
		}
	}
}

// SPEC §6.3: DIRECT with a delivery receipt.
func TestDirect(t *testing.T) {
	p := newPeer(t, peerOpts{})
	var gb got
	a := dial(t, p.addr(), WithClientID("a"))
	dial(t, p.addr(), WithClientID("b"), WithHandler(gb.handler))
	ctx := testCtx(t)
	if err := a.Direct(ctx, "b", 1, []byte("hi b")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "direct", func() bool { return gb.len() == 1 })
	gb.mu.Lock()
	m := gb.msgs[0]
	gb.mu.Unlock()
	if m.Kind != KindDirect || m.Peer != "a" || string(m.Payload) != "hi b" || !m.Reliable {
		t.Fatalf("message %+v", m)
	}
	err := a.Direct(ctx, "nobody", 1, []byte("x"))
	var re *ResultError
	if !errors.As(err, &re) || re.Code != protocol.CodeNoSuchClient {
		t.Fatalf("to nobody: %v", err)
	}
}

// SPEC §6.2: a publication with a receipt reports the server's refusal.
func TestPublishReceipt(t *testing.T) {
	p := newPeer(t, peerOpts{})
	a := dial(t, p.addr(), WithClientID("pr"))
	ctx := testCtx(t)
	if err := a.PublishReceipt(ctx, 2, "ok/x", []byte("1")); err != nil {
		t.Fatal(err)
	}
	err := a.PublishReceipt(ctx, 2, "forbidden/x", []byte("2"))
	var re *ResultError
	if !errors.As(err, &re) || re.Code != protocol.CodeForbidden {
		t.Fatalf("refused publication: %v", err)
	}
}

// Flush waits for unreliable messages to be written, so that Close after
// it loses none.
func TestFlushWaitsForUnreliable(t *testing.T) {
	p := newPeer(t, peerOpts{})
	var gb got
	sub := dial(t, p.addr(), WithClientID("sub"))
	if err := sub.Subscribe(testCtx(t), "fl/#", gb.handler); err != nil {
		t.Fatal(err)
	}
	a := dial(t, p.addr(), WithClientID("fl"))
	for i := 0; i < 200; i++ {
		if err := a.Publish(1, "fl/x", []byte("u"), false); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Flush(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	a.Close()
	waitFor(t, "200 publications", func() bool { return gb.len() == 200 })
}

// DATA requests from the server are answered exactly once: by Reply, or by
// the handler's return.
func TestServerRequests(t *testing.T) {
	p := newPeer(t, peerOpts{})
	dial(t, p.addr(), WithHandler(func(m *Message) error {
		switch string(m.Payload) {
		case "reply":
			return m.Reply([]byte("answer"))
		case "fail":
			return errors.New("bad")
		}
		return nil
	}))
	p.mu.Lock()
	pc := p.only().conn
	for i, body := range []string{"reply", "fail", "plain"} {
		pc.writeFrame(&codec.Frame{Type: protocol.FrameData, Lane: 2, Route: 7, Corr: uint32(10 + i), Payload: []byte(body)})
	}
	p.mu.Unlock()
	waitFor(t, "answers", func() bool {
		return len(p.framesOf(0, protocol.FrameResult)) == 1 && len(p.framesOf(0, protocol.FrameData)) == 2
	})
	data := p.framesOf(0, protocol.FrameData)
	if r := data[0]; !r.Flags.Has(protocol.FlagResponse) || r.Corr != 10 || r.Lane != 2 || string(r.Payload) != "answer" {
		t.Fatalf("response %+v", r)
	}
	// A handler that returns nil without Reply answers with an empty
	// response.
	if r := data[1]; !r.Flags.Has(protocol.FlagResponse) || r.Corr != 12 || r.Lane != 2 || len(r.Payload) != 0 {
		t.Fatalf("response %+v", r)
	}
	res := p.framesOf(0, protocol.FrameResult)[0]
	if res.Corr != 11 || res.Code != protocol.CodeHandlerError || res.Lane != 2 || string(res.Payload) != "bad" {
		t.Fatalf("result %+v", res)
	}
}

// SPEC §11: compression when negotiated, in both directions.
func TestCompression(t *testing.T) {
	p := newPeer(t, peerOpts{compression: true})
	c := dial(t, p.addr(), WithCompression(true))
	big := bytes.Repeat([]byte("compress me "), 5000)
	out, err := c.Request(testCtx(t), 1, routeEcho, big)
	if err != nil || !bytes.Equal(out, big) {
		t.Fatalf("echo: %d bytes, %v", len(out), err)
	}
	compressed := 0
	for _, f := range p.framesOf(0, protocol.FrameData) {
		if f.Flags.Has(protocol.FlagCompressed) {
			compressed++
		}
	}
	if compressed == 0 {
		t.Fatal("nothing was compressed")
	}
	// Without the server's agreement nothing is.
	p2 := newPeer(t, peerOpts{})
	c2 := dial(t, p2.addr(), WithCompression(true))
	if _, err := c2.Request(testCtx(t), 1, routeEcho, big); err != nil {
		t.Fatal(err)
	}
	for _, f := range p2.framesOf(0, protocol.FrameData) {
		if f.Flags.Has(protocol.FlagCompressed) {
			t.Fatal("compressed without negotiation")
		}
	}
}

// SPEC §9: the frames of a BATCH count as if they had arrived alone,
// reliable ones and ACKs included.
func TestIncomingBatch(t *testing.T) {
	p := newPeer(t, peerOpts{})
	var g got
	c := dial(t, p.addr(), WithHandler(g.handler))
	if err := c.SendReliable(testCtx(t), 1, routeRecord, []byte("x")); err != nil {
		t.Fatal(err)
	}
	var w codec.BatchWriter
	w.Begin(nil, 0, protocol.DefaultMaxFrameSize)
	for i := range 3 {
		w.Add(&codec.Frame{Type: protocol.FrameData, Flags: protocol.FlagReliable, Lane: 3, Route: 1,
			Seq: uint64(i + 1), Payload: []byte(fmt.Sprint(i))})
	}
	w.Add(&codec.Frame{Type: protocol.FrameAck, AckLane: 1, Cumulative: 1})
	w.Add(&codec.Frame{Type: protocol.FramePing, Opaque: 77})
	buf, _ := w.Finish(false, nil)
	p.mu.Lock()
	s := p.only()
	s.lanes[3].rx.Reset(1)
	s.conn.write(buf)
	p.mu.Unlock()
	waitFor(t, "3 messages", func() bool { return g.len() == 3 })
	waitFor(t, "PONG", func() bool {
		for _, f := range p.framesOf(0, protocol.FramePong) {
			if f.Opaque == 77 {
				return true
			}
		}
		return false
	})
}

// The pending store: SendAsync fails with ErrQueueFull at its bound,
// SendReliable waits for room until its context ends.
func TestPendingStoreBound(t *testing.T) {
	p := newPeer(t, peerOpts{noAck: true})
	c := dial(t, p.addr(), WithMaxPending(2, 1<<20))
	for range 2 {
		if err := c.SendAsync(1, routeRecord, []byte("x"), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.SendAsync(1, routeRecord, []byte("x"), nil); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("third: %v", err)
	}
	if err := c.Publish(1, "t", []byte("x"), true); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("publish: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- c.SendReliable(ctx, 1, routeRecord, []byte("y")) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("blocked SendReliable: %v", err)
	}
	// Acknowledging frees the store.
	p.mu.Lock()
	p.opts.noAck = false
	p.only().conn.sendAcks()
	p.mu.Unlock()
	if err := c.SendReliable(testCtx(t), 1, routeRecord, []byte("z")); err != nil {
		t.Fatal(err)
	}
	if got := p.received(1); len(got) != 3 || string(got[2]) != "z" {
		t.Fatalf("server got %q", got)
	}
}

// Many goroutines, one client: reliable sends, requests and publishes
// interleave; per goroutine and lane the order holds.
func TestConcurrentUse(t *testing.T) {
	p := newPeer(t, peerOpts{})
	c := dial(t, p.addr())
	ctx := testCtx(t)
	const workers, each = 8, 50
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lane := protocol.Lane(1 + w%3)
			for i := range each {
				if err := c.SendReliable(ctx, lane, routeRecord, []byte(fmt.Sprintf("%d/%d", w, i))); err != nil {
					errs <- err
					return
				}
				if i%10 == 0 {
					if _, err := c.Request(ctx, lane, routeEcho, []byte("r")); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	next := make(map[int]int)
	for lane := protocol.LaneInteractive; lane <= protocol.LaneBulk; lane++ {
		for _, b := range p.received(lane) {
			var w, i int
			if _, err := fmt.Sscanf(string(b), "%d/%d", &w, &i); err != nil {
				continue // a request
			}
			if i != next[w] {
				t.Fatalf("worker %d: got %d, want %d", w, i, next[w])
			}
			next[w]++
		}
	}
	for w := range workers {
		if next[w] != each {
			t.Fatalf("worker %d: %d messages", w, next[w])
		}
	}
}

// A slow handler stops the client from reading once the callback queue is
// full; that must not pass for a dead path: probing pauses meanwhile.
func TestSlowHandlerIsNotDeadPath(t *testing.T) {
	p := newPeer(t, peerOpts{heartbeatMs: 500, noAck: true})
	release := make(chan struct{})
	var g got
	c := dial(t, p.addr(), func(c *config) { c.inboxMsgs = 2 }, WithHandler(func(m *Message) error {
		<-release
		return g.handler(m)
	}))
	waitFor(t, "an RTT sample", func() bool { // so that probes come 250 ms apart
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.cn != nil && c.cn.probe.RTT.Samples() > 0
	})
	if err := c.SendAsync(1, routeRecord, []byte("unacked"), nil); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		p.sendTo(c.ClientID(), 2, []byte(fmt.Sprint(i)), true)
	}
	// Four PINGs on the connection after the reader paused: keepalives,
	// 0.8 K apart. Were probing not paused, three probes would have come
	// and the connection would have been dropped before a fourth.
	waitFor(t, "paused", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.cn != nil && c.cn.paused
	})
	n := len(p.framesOf(0, protocol.FramePing))
	waitFor(t, "keepalives", func() bool { return len(p.framesOf(0, protocol.FramePing)) >= n+4 })
	close(release)
	waitFor(t, "10 messages", func() bool { return g.len() == 10 })
	if st := c.Stats(); st.Reconnects != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// The callback goroutine remembers which handlers a topic goes to; every
// change of the subscriptions (a new pattern, a replaced handler, an
// unsubscription) applies to the next publication on the same topic.
func TestHandlersFollowSubscriptions(t *testing.T) {
	p := newPeer(t, peerOpts{})
	c := dial(t, p.addr())
	ctx := testCtx(t)
	var wide, narrow, other got
	step := func(payload string, wantWide, wantNarrow, wantOther int) {
		t.Helper()
		if err := c.Publish(2, "t/x", []byte(payload), true); err != nil {
			t.Fatal(err)
		}
		waitFor(t, payload, func() bool {
			return wide.len() == wantWide && narrow.len() == wantNarrow && other.len() == wantOther
		})
	}
	if err := c.Subscribe(ctx, "t/#", wide.handler); err != nil {
		t.Fatal(err)
	}
	step("1", 1, 0, 0)
	if err := c.Subscribe(ctx, "t/x", narrow.handler); err != nil {
		t.Fatal(err)
	}
	step("2", 2, 1, 0)
	if err := c.Unsubscribe(ctx, "t/#"); err != nil {
		t.Fatal(err)
	}
	step("3", 2, 2, 0)
	if err := c.Subscribe(ctx, "t/x", other.handler); err != nil { // replaces narrow
		t.Fatal(err)
	}
	step("4", 2, 2, 1)
	if got := other.payloads(); got[0] != "4" {
		t.Fatalf("replaced handler got %q", got)
	}
}

// Small unreliable messages are encoded into packs as they are sent; with
// larger ones (their own queue entries), publications and a reliable
// message between them, a lane still goes out in the order of the calls.
func TestSmallSendsKeepOrder(t *testing.T) {
	p := newPeer(t, peerOpts{})
	c := dial(t, p.addr())
	const n = 600
	var want []string
	for i := range n {
		payload := []byte(strconv.Itoa(i))
		var err error
		switch {
		case i%97 == 0:
			payload = append(payload, bytes.Repeat([]byte{'.'}, 3000)...) // past the pack size
			err = c.Send(2, 1, payload)
		case i%50 == 0:
			err = c.SendReliable(testCtx(t), 2, 1, payload)
		default:
			err = c.Send(2, 1, payload)
		}
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, string(payload))
	}
	if err := c.Flush(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every message", func() bool { return len(p.received(2)) == n })
	for i, b := range p.received(2) {
		if string(b) != want[i] {
			t.Fatalf("message %d: got %.10q, want %.10q", i, b, want[i])
		}
	}
	if s := c.Stats(); s.MessagesSent != n {
		t.Fatalf("MessagesSent = %d, want %d", s.MessagesSent, n)
	}
}
