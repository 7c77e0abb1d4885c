package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ferry-proto/ferry/codec"
	"github.com/ferry-proto/ferry/protocol"
)

// SPEC §12.5: the window holds a lane's reliable frames; unreliable ones
// are not held behind them.
func TestWindowHoldsOnlyReliable(t *testing.T) {
	p := newPeer(t, peerOpts{receiveMax: 2, noAck: true})
	c := dial(t, p.addr())
	for i := range 3 {
		if err := c.SendAsync(2, routeRecord, []byte(fmt.Sprint("r", i)), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Send(2, routeRecord, []byte("u")); err != nil {
		t.Fatal(err)
	}
	p.waitUntil("r0 r1 u", func() bool { s := p.only(); return s != nil && len(s.got[2]) == 3 })
	if got := p.received(2); string(got[2]) != "u" {
		t.Fatalf("got %q", got)
	}
	p.mu.Lock()
	p.opts.noAck = false
	p.only().conn.sendAcks()
	p.mu.Unlock()
	if err := c.Flush(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if got := p.received(2); len(got) != 4 || string(got[3]) != "r2" {
		t.Fatalf("got %q", got)
	}
	// The window is the one of the connection: never more than 2 in flight.
	data := p.framesOf(0, protocol.FrameData)
	if len(data) != 4 || data[2].Flags.Has(protocol.FlagReliable) || data[3].Seq != 3 {
		t.Fatalf("frames %+v", data)
	}
}

// SPEC §10.2 with §12.5: a reliable fragmented message held by the window
// holds its whole lane, unreliable frames included, until its last
// fragment.
func TestWindowHoldsFragmentedLane(t *testing.T) {
	p := newPeer(t, peerOpts{receiveMax: 1, noAck: true})
	c := dial(t, p.addr())
	big := bytes.Repeat([]byte("x"), 40_000) // 3 fragments
	if err := c.SendAsync(3, routeRecord, big, nil); err != nil {
		t.Fatal(err)
	}
	p.waitUntil("first fragment", func() bool { return len(p.conns[0].frames) > 0 && len(p.framesOfLocked(0, protocol.FrameData)) == 1 })
	if err := c.Send(3, routeRecord, []byte("u")); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		p.mu.Lock()
		s := p.only()
		n := len(p.framesOfLocked(0, protocol.FrameData))
		p.opts.noAck = false
		s.conn.sendAcks()
		p.opts.noAck = true
		p.mu.Unlock()
		p.waitUntil("next fragment", func() bool { return len(p.framesOfLocked(0, protocol.FrameData)) > n })
	}
	p.waitUntil("u", func() bool { return len(p.framesOfLocked(0, protocol.FrameData)) == 4 })
	got := p.received(3)
	if len(got) != 2 || !bytes.Equal(got[0], big) || string(got[1]) != "u" {
		t.Fatalf("got %d messages", len(got))
	}
	for i, f := range p.framesOf(0, protocol.FrameData) {
		if f.Flags.Has(protocol.FlagFragment) != (i < 3) {
			t.Fatalf("frame %d: %v", i, f.Flags)
		}
	}
}

// SPEC §12.8: expired placeholders advance the Seq, are acknowledged and
// dropped; one ends the reliable partial message of its lane; a request's
// is answered EXPIRED and a response's fails its request.
func TestExpiredPlaceholders(t *testing.T) {
	p := newPeer(t, peerOpts{})
	var g got
	c := dial(t, p.addr(), WithHandler(g.handler))
	big := bytes.Repeat([]byte("y"), 40_000)
	p.mu.Lock()
	s := p.only()
	pc := s.conn
	ln := &s.lanes[1]
	var out []byte
	emit := func(f codec.Frame) {
		f.Seq = ln.tx.Next()
		_ = ln.tx.Sent(f.Seq, 10, 0)
		out = f.Append(out)
	}
	// The first fragment of a reliable message, then placeholders for the
	// other two.
	fr := codec.NewFragmenter(&codec.Frame{Type: protocol.FrameData, Flags: protocol.FlagReliable, Lane: 1, Route: 7}, big, 1, protocol.DefaultFragmentSize)
	f, _ := fr.Next()
	emit(f)
	ph := codec.Frame{Type: protocol.FrameData, Flags: protocol.FlagReliable | protocol.FlagExpiry, Lane: 1, Route: 7}
	emit(ph)
	emit(ph)
	// A request's placeholder.
	req := ph
	req.Corr = 99
	emit(req)
	emit(codec.Frame{Type: protocol.FrameData, Flags: protocol.FlagReliable, Lane: 1, Route: 7, Payload: []byte("live")})
	pc.write(out)
	p.mu.Unlock()
	waitFor(t, "live", func() bool { return g.len() == 1 })
	if got := g.payloads(); got[0] != "live" {
		t.Fatalf("got %q", got)
	}
	p.waitUntil("RESULT EXPIRED", func() bool {
		for _, f := range pc.frames {
			if f.Type == protocol.FrameResult && f.Corr == 99 && f.Code == protocol.CodeExpired {
				return true
			}
		}
		return false
	})
	if st := c.Stats(); st.Dropped != 3 {
		t.Fatalf("stats %+v", st)
	}

	// A response's placeholder fails the request.
	done := make(chan error, 1)
	go func() {
		_, err := c.Request(context.Background(), 2, routeSilent, []byte("q"))
		done <- err
	}()
	var corr uint32
	p.waitUntil("request", func() bool {
		for _, f := range pc.frames {
			if f.Type == protocol.FrameData && f.Route == routeSilent {
				corr = f.Corr
				return true
			}
		}
		return false
	})
	p.mu.Lock()
	s.sendFrames(&codec.Frame{Type: protocol.FrameData, Flags: protocol.FlagReliable | protocol.FlagExpiry | protocol.FlagResponse,
		Lane: 2, Route: routeSilent, Corr: corr}, nil)
	p.mu.Unlock()
	var re *ResultError
	if err := <-done; !errors.As(err, &re) || re.Code != protocol.CodeExpired {
		t.Fatalf("Request: %v", err)
	}
}

// SPEC §12.10: a message with APP_ACK that cannot be delivered (here: no
// handler) is REJECTED; a duplicate is not confirmed again.
func TestAppAckWithoutHandlerRejected(t *testing.T) {
	p := newPeer(t, peerOpts{})
	dial(t, p.addr())
	p.mu.Lock()
	s := p.only()
	s.sendFrames(&codec.Frame{Type: protocol.FrameDirect, Flags: protocol.FlagReliable | protocol.FlagAppAck, Lane: 2,
		Name: []byte("peer")}, []byte("x"))
	s.conn.write(s.lanes[2].frames[1]) // a duplicate
	p.mu.Unlock()
	waitFor(t, "CONFIRM", func() bool { return len(p.framesOf(0, protocol.FrameConfirm)) == 1 })
	f := p.framesOf(0, protocol.FrameConfirm)[0]
	if f.Verdict != protocol.ConfirmRejected || f.AckLane != 2 || f.Seq != 1 {
		t.Fatalf("CONFIRM %+v", f)
	}
}

// SPEC §12.8: a frame that must be replayed keeps its size; a server that
// no longer takes it gets PROTOCOL_ERROR, and the client starts a new
// session, reporting the loss.
func TestReplayTooLargeStartsNewSession(t *testing.T) {
	shrink := false
	p := newPeer(t, peerOpts{noAck: true, welcome: func(w *codec.Welcome) {
		if shrink {
			w.MaxFrameSize = protocol.MinMaxFrameSize
		}
	}})
	var ev events
	c := dial(t, p.addr(), WithStateHandler(ev.add))
	done := make(chan error, 1)
	go func() {
		done <- c.SendReliable(context.Background(), 1, routeRecord, bytes.Repeat([]byte("z"), 10_000))
	}()
	p.waitUntil("message", func() bool { s := p.only(); return s != nil && len(s.got[1]) == 1 })
	p.mu.Lock()
	shrink = true
	s := p.only()
	s.lanes[1].rx.Reset(1) // the server "lost" the frame: it must be replayed
	s.got[1] = nil
	p.mu.Unlock()
	p.kill()
	if err := <-done; !errors.Is(err, ErrSessionLost) {
		t.Fatalf("SendReliable: %v", err)
	}
	waitFor(t, "new session", func() bool { return ev.has(EventNewSession) })
	errs := p.framesOf(1, protocol.FrameError)
	if len(errs) != 1 || errs[0].Code != protocol.CodeProtocolError {
		t.Fatalf("ERRORs %+v", errs)
	}
}

// SPEC §12.4: a lone reliable frame is acknowledged MaxAckDelay (25 ms)
// after it arrived, not sooner; a burst is acknowledged at least every
// second frame, and by one ACK when it arrives in one read.
func TestAckTiming(t *testing.T) {
	var acks []codec.Frame
	var ackAt []time.Time
	p := newPeer(t, peerOpts{frame: func(pc *peerConn, f *codec.Frame) bool {
		if f.Type == protocol.FrameAck {
			acks = append(acks, *f)
			ackAt = append(ackAt, time.Now())
		}
		return false
	}})
	var g got
	dial(t, p.addr(), WithHandler(g.handler))
	p.mu.Lock()
	s := p.only()
	sent := time.Now()
	s.send(1, protocol.FrameData, "", []byte("lone"), true)
	p.mu.Unlock()
	p.waitUntil("ACK", func() bool { return len(acks) == 1 })
	if d := ackAt[0].Sub(sent); d < 20*time.Millisecond || acks[0].Cumulative != 1 || acks[0].AckLane != 1 {
		t.Fatalf("ACK %+v after %v", acks[0], d)
	}
	p.mu.Lock()
	for i := range 10 {
		s.send(2, protocol.FrameData, "", []byte(fmt.Sprint(i)), true)
	}
	p.mu.Unlock()
	p.waitUntil("ACK of 10", func() bool { return len(acks) > 1 && acks[len(acks)-1].Cumulative == 10 })
	if n := len(acks) - 1; n > 5 {
		t.Fatalf("%d ACKs for 10 frames", n)
	}
	for _, a := range acks {
		if a.Selective != 0 {
			t.Fatalf("ACK with Selective %x", a.Selective)
		}
	}
	waitFor(t, "11 messages", func() bool { return g.len() == 11 })
}
