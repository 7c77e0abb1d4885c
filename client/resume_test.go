package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/ferry-proto/ferry/codec"
	"github.com/ferry-proto/ferry/protocol"
)

// A frame lost in transit (here: ignored by the server on the live
// connection) is sent again only after a reconnect, from the server's
// Received+1, with its Seq, before anything new (notes/delivery.md); and
// what the server had queued for the client while it was away is replayed
// to it the same way.
func TestResumeReplaysBothWays(t *testing.T) {
	ignore := true
	p := newPeer(t, peerOpts{
		frame: func(pc *peerConn, f *codec.Frame) bool {
			// Frames Seq ≥ 4 on lane 1 vanish while ignore holds.
			return ignore && f.Type == protocol.FrameData && f.Seq >= 4
		},
	})
	var ev events
	var g got
	c := dial(t, p.addr(), WithStateHandler(ev.add), WithHandler(g.handler))
	for i := 1; i <= 5; i++ {
		if err := c.SendAsync(1, routeRecord, []byte(fmt.Sprint(i)), nil); err != nil {
			t.Fatal(err)
		}
	}
	p.waitUntil("3 messages", func() bool { s := p.only(); return s != nil && len(s.got[1]) == 3 })
	waitFor(t, "5 frames written", func() bool { return len(p.framesOf(0, protocol.FrameData)) == 5 })

	// While the client is away, the server queues two messages for it.
	p.mu.Lock()
	ignore = false
	s := p.only()
	_ = s.conn.nc.Close()
	p.mu.Unlock()
	p.waitUntil("detached", func() bool { return s.conn == nil })
	p.mu.Lock()
	s.send(2, protocol.FrameData, "", []byte("a"), true)
	s.send(2, protocol.FrameData, "", []byte("b"), true)
	p.mu.Unlock()

	ctx := testCtx(t)
	if err := c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := p.received(1); len(got) != 5 || string(got[3]) != "4" || string(got[4]) != "5" {
		t.Fatalf("server got %q", got)
	}
	waitFor(t, "2 messages", func() bool { return g.len() == 2 })
	if got := g.payloads(); got[0] != "a" || got[1] != "b" {
		t.Fatalf("client got %q", got)
	}
	// The HELLO of the second connection resumed: SessionID, token and
	// Received2 = 0 (nothing had come on lane 2); the replayed frames
	// carried their Seqs 4 and 5.
	p.mu.Lock()
	h := p.hellos[1]
	p.mu.Unlock()
	if string(h.SessionID) != s.id || len(h.ResumeToken) == 0 || h.Received != [3]uint64{} {
		t.Fatalf("resume HELLO: %+v", h)
	}
	replayed := p.framesOf(1, protocol.FrameData)
	if len(replayed) < 2 || replayed[0].Seq != 4 || replayed[1].Seq != 5 {
		t.Fatalf("replayed frames: %+v", replayed)
	}
	st := c.Stats()
	if st.Replayed != 2 || st.Resumes != 1 || st.Reconnects != 1 || st.NewSessions != 0 {
		t.Fatalf("stats: %+v", st)
	}
	waitFor(t, "resumed event", func() bool { return ev.has(EventResumed) })
}

// SPEC §12.3: a reliable frame received again is not delivered again and is
// acknowledged again at once. The server here replays everything it holds
// unacknowledged, its Received notwithstanding, and also repeats a frame
// on the live connection.
func TestDuplicatesDropped(t *testing.T) {
	var acks []codec.Frame
	p := newPeer(t, peerOpts{
		frame: func(pc *peerConn, f *codec.Frame) bool {
			if f.Type == protocol.FrameAck {
				acks = append(acks, *f)
				return true // unacknowledged: kept for replay
			}
			return false
		},
	})
	var g got
	c := dial(t, p.addr(), WithHandler(g.handler))
	id := c.ClientID()
	p.sendTo(id, 1, []byte("one"), true)
	p.sendTo(id, 1, []byte("two"), true)
	waitFor(t, "2 messages", func() bool { return g.len() == 2 })
	p.waitUntil("ACK of 2", func() bool { return len(acks) > 0 && acks[len(acks)-1].Cumulative == 2 })

	// The same frame again on the live connection.
	p.mu.Lock()
	s := p.only()
	s.conn.write(s.lanes[1].frames[2])
	n := len(acks)
	p.mu.Unlock()
	p.waitUntil("re-ACK", func() bool { return len(acks) > n && acks[len(acks)-1].Cumulative == 2 })
	waitFor(t, "duplicate counted", func() bool { return c.Stats().Duplicates == 1 })

	// A reconnect whose server replays Seq 1 and 2 although the client's
	// Received says 2: both dropped.
	p.mu.Lock()
	again := append(bytes.Clone(s.lanes[1].frames[1]), s.lanes[1].frames[2]...)
	_ = s.conn.nc.Close()
	p.mu.Unlock()
	p.waitUntil("resumed", func() bool { return len(p.conns) == 2 && s.conn != nil })
	p.mu.Lock()
	s.conn.write(again)
	p.mu.Unlock()
	p.sendTo(id, 1, []byte("three"), true)
	waitFor(t, "3 messages", func() bool { return g.len() == 3 })
	if got := g.payloads(); got[2] != "three" {
		t.Fatalf("client got %q", got)
	}
	if d := c.Stats().Duplicates; d != 3 {
		t.Fatalf("Duplicates = %d", d)
	}
}

// notes/delivery.md: a Seq above C+1 is a gap: the client closes with
// PROTOCOL_ERROR, and reconnects.
func TestSequenceGapIsProtocolError(t *testing.T) {
	p := newPeer(t, peerOpts{})
	c := dial(t, p.addr())
	p.mu.Lock()
	s := p.only()
	f := codec.Frame{Type: protocol.FrameData, Flags: protocol.FlagReliable, Lane: 2, Route: 1, Seq: 3}
	s.conn.write(f.Append(nil))
	p.mu.Unlock()
	waitFor(t, "ERROR", func() bool {
		errs := p.framesOf(0, protocol.FrameError)
		return len(errs) == 1 && errs[0].Code == protocol.CodeProtocolError
	})
	waitFor(t, "reconnect", func() bool { return c.Stats().Reconnects == 1 })
}

// SPEC §5.4.7: a WELCOME with SessionPresent = 0 after a resume attempt
// means the old state is lost. Messages sent and unacknowledged fail with
// ErrSessionLost (or are resent, with the option); messages never sent go
// out in the new session; the loss is an event and a counter.
func TestNewSessionLosesUnacked(t *testing.T) {
	for _, resend := range []bool{false, true} {
		t.Run(fmt.Sprint("resend=", resend), func(t *testing.T) {
			p := newPeer(t, peerOpts{noAck: true})
			var ev events
			c := dial(t, p.addr(), WithStateHandler(ev.add), WithResendOnNewSession(resend))
			errs := make(chan error, 3)
			for i := range 3 {
				go func() { errs <- c.SendReliable(context.Background(), 1, routeRecord, []byte(fmt.Sprint(i))) }()
			}
			p.waitUntil("3 messages", func() bool { s := p.only(); return s != nil && len(s.got[1]) == 3 })
			p.mu.Lock()
			p.opts.noAck = false
			p.mu.Unlock()
			p.forget()
			p.kill()
			for range 3 {
				err := <-errs
				if resend && err != nil || !resend && !errors.Is(err, ErrSessionLost) {
					t.Fatalf("SendReliable: %v", err)
				}
			}
			waitFor(t, "new session event", func() bool { return ev.has(EventNewSession) })
			if e, _ := ev.last(EventNewSession); e.Lost != 3 {
				t.Fatalf("event: %+v", e)
			}
			st := c.Stats()
			if st.NewSessions != 1 || (resend && st.Resent != 3) || (!resend && st.Lost != 3) {
				t.Fatalf("stats: %+v", st)
			}
			p.mu.Lock()
			n := len(p.sessions)
			p.mu.Unlock()
			if n != 1 {
				t.Fatalf("%d sessions", n)
			}
			if resend {
				if got := p.received(1); len(got) != 3 {
					t.Fatalf("new session got %q", got)
				}
			}
			// A new session starts its Seqs at 1 again (SPEC §12.1).
			if err := c.SendReliable(testCtx(t), 1, routeRecord, []byte("new")); err != nil {
				t.Fatal(err)
			}
			data := p.framesOf(1, protocol.FrameData)
			if last := data[len(data)-1]; last.Seq != uint64(len(data)) {
				t.Fatalf("Seq %d for the %dth frame of the new session", last.Seq, len(data))
			}
		})
	}
}

// SPEC §13.5: after RESUME_FAILED the client reconnects without SessionID.
func TestResumeFailedStartsNewSession(t *testing.T) {
	p := newPeer(t, peerOpts{})
	var ev events
	c := dial(t, p.addr(), WithStateHandler(ev.add))
	p.mu.Lock()
	s := p.only()
	s.token = "rotated elsewhere"
	p.mu.Unlock()
	p.kill()
	waitFor(t, "new session", func() bool { return ev.has(EventNewSession) })
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.hellos) != 3 || len(p.hellos[1].SessionID) == 0 || len(p.hellos[2].SessionID) != 0 {
		t.Fatalf("HELLOs: %d, second %q, third %q", len(p.hellos), p.hellos[1].SessionID, p.hellos[2].SessionID)
	}
	if c.Stats().NewSessions != 1 {
		t.Fatalf("stats: %+v", c.Stats())
	}
}

// SPEC §13.5: SESSION_TAKEN_OVER is not retried: the client closes and its
// calls fail with ErrClosed wrapping the server's error.
func TestTakeoverClosesClient(t *testing.T) {
	p := newPeer(t, peerOpts{})
	var ev events
	c := dial(t, p.addr(), WithStateHandler(ev.add))
	p.mu.Lock()
	p.only().conn.closeWith(protocol.CodeSessionTakenOver, "taken over")
	p.mu.Unlock()
	waitFor(t, "closed", func() bool { return c.State() == StateClosed })
	err := c.SendAsync(1, 1, nil, nil)
	var se *ServerError
	if !errors.Is(err, ErrClosed) || !errors.As(err, &se) || se.Code != protocol.CodeSessionTakenOver {
		t.Fatalf("after takeover: %v", err)
	}
	waitFor(t, "closed event", func() bool { return ev.has(EventClosed) })
	if p.connCount() != 1 {
		t.Fatalf("%d connections: the client reconnected", p.connCount())
	}
}
