package reactor

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-proto/ferry/codec"
	"github.com/ferry-proto/ferry/protocol"
)

// recorder is a handler that records the reliable messages it receives
// and hands each opened connection to the test.
type recorder struct {
	*testHandler
	mu    sync.Mutex
	got   []string
	open  chan *Session // each opened connection's session, taken on the loop
	conns chan *Conn
}

func newRecorder() *recorder {
	return &recorder{testHandler: newTestHandler(), open: make(chan *Session, 16), conns: make(chan *Conn, 16)}
}

func (r *recorder) OnOpen(c *Conn) { r.open <- c.Session(); r.conns <- c }

func (r *recorder) OnMessage(c *Conn, f *codec.Frame) {
	r.mu.Lock()
	r.got = append(r.got, string(f.Payload))
	r.mu.Unlock()
}

func (r *recorder) messages() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.got...)
}

func reliable(lane protocol.Lane, seq uint64, payload string) codec.Frame {
	return codec.Frame{Type: protocol.FrameData, Flags: protocol.FlagReliable, Lane: lane, Route: 9, Seq: seq, Payload: []byte(payload)}
}

// nextOf reads frames until one of type t, failing on ERROR.
func nextOf(t *testing.T, c *rawClient, typ protocol.FrameType) codec.Frame {
	t.Helper()
	for {
		f := c.Next(5 * time.Second)
		if f.Type == typ {
			return f
		}
		if f.Type == protocol.FrameError {
			t.Fatalf("got ERROR %s %q waiting for %s", f.Code, f.Payload, typ)
		}
	}
}

// SPEC §12.3: each reliable frame reaches the application once, in order;
// a duplicate is re-acknowledged and not delivered again; the ACK
// covers what arrived.
func TestReliableInboundDedupAndAck(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng, func(t *testing.T) {
			r := newRecorder()
			s, _ := startServer(t, eng, Config{Handler: r})
			c := dial(t, s.Addr())
			c.Hello(codec.Hello{ClientID: []byte("a")})
			for i := uint64(1); i <= 10; i++ {
				c.Send(reliable(protocol.LaneNormal, i, fmt.Sprint("m", i)))
			}
			c.Send(reliable(protocol.LaneNormal, 3, "dup"))
			var ack codec.Frame
			for ack.Cumulative < 10 {
				ack = nextOf(t, c, protocol.FrameAck)
				if ack.AckLane != protocol.LaneNormal {
					t.Fatalf("ACK for lane %d", ack.AckLane)
				}
			}
			waitFor(t, "10 messages", 5*time.Second, func() bool { return len(r.messages()) >= 10 })
			want := []string{"m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "m9", "m10"}
			if got := r.messages(); strings.Join(got, ",") != strings.Join(want, ",") {
				t.Fatalf("delivered %v", got)
			}
			waitFor(t, "duplicate counted", 5*time.Second, func() bool { return s.Counters().DuplicatesIn.Load() == 1 })
		})
	}
}

// SPEC §12.3: over one connection a gap in a lane's Seqs is a
// PROTOCOL_ERROR.
func TestReliableGapClosed(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng, func(t *testing.T) {
			s, _ := startServer(t, eng, Config{})
			c := dial(t, s.Addr())
			c.Hello(codec.Hello{})
			c.Send(reliable(protocol.LaneNormal, 1, "a"))
			c.Send(reliable(protocol.LaneNormal, 3, "c"))
			if code := c.ExpectClose(5 * time.Second); code != protocol.CodeProtocolError {
				t.Fatalf("closed with %s", code)
			}
		})
	}
}

// SPEC §7.2: an ACK for a Seq never sent is a PROTOCOL_ERROR.
func TestAckUnknownSeqClosed(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng, func(t *testing.T) {
			s, _ := startServer(t, eng, Config{})
			c := dial(t, s.Addr())
			c.Hello(codec.Hello{})
			c.Send(codec.Frame{Type: protocol.FrameAck, AckLane: 1, Cumulative: 5})
			if code := c.ExpectClose(5 * time.Second); code != protocol.CodeProtocolError {
				t.Fatalf("closed with %s", code)
			}
			waitFor(t, "ack rejected", 5*time.Second, func() bool { return s.Counters().AcksRejected.Load() == 1 })
		})
	}
}

// readReliable reads n reliable DATA frames and checks their Seqs run on
// from first.
func readReliable(t *testing.T, c *rawClient, first uint64, n int) []string {
	t.Helper()
	var out []string
	for len(out) < n {
		f := c.Next(5 * time.Second)
		switch f.Type {
		case protocol.FrameData:
			want := first + uint64(len(out))
			if !f.Flags.Has(protocol.FlagReliable) || f.Seq != want {
				t.Fatalf("got DATA seq %d flags %s, want reliable seq %d", f.Seq, f.Flags, want)
			}
			out = append(out, string(f.Payload))
		case protocol.FrameError:
			t.Fatalf("ERROR %s %q", f.Code, f.Payload)
		}
	}
	return out
}

// SPEC §5.4.5, §12: a sender keeps at most the peer's ReceiveMax
// reliable frames unacknowledged per lane; an ACK opens the window.
func TestReliableWindow(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng, func(t *testing.T) {
			r := newRecorder()
			s, _ := startServer(t, eng, Config{Handler: r})
			c := dial(t, s.Addr())
			c.Hello(codec.Hello{ReceiveMax: 4})
			sess := <-r.open
			sendReliableN(t, sess, protocol.LaneNormal, "s", 1, 10)
			readReliable(t, c, 1, 4)
			if !stillOpenNoData(t, c) {
				t.Fatal("more than ReceiveMax frames in flight")
			}
			c.Send(codec.Frame{Type: protocol.FrameAck, AckLane: protocol.LaneNormal, Cumulative: 4})
			got := readReliable(t, c, 5, 4)
			if got[0] != "s5" || got[3] != "s8" {
				t.Fatalf("after the ACK got %v", got)
			}
		})
	}
}

// sendReliableN sends reliable DATA "prefix<i>" for i in [from, to] on
// lane through the session.
func sendReliableN(t *testing.T, sess *Session, lane protocol.Lane, prefix string, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		f := codec.Frame{Type: protocol.FrameData, Flags: protocol.FlagReliable, Lane: lane, Route: 1, Payload: []byte(fmt.Sprint(prefix, i))}
		if err := sess.Send(&f); err != nil {
			t.Fatal(err)
		}
	}
}

// stillOpenNoData reports whether no message frame arrives for a while.
func stillOpenNoData(t *testing.T, c *rawClient) bool {
	t.Helper()
	for {
		f, err := c.Read(200 * time.Millisecond)
		if err != nil {
			return true
		}
		if f.Type.IsMessage() || f.Type == protocol.FrameError {
			return false
		}
	}
}

// resumeHello is the HELLO that resumes w's session.
func resumeHello(w codec.Welcome, received [3]uint64) codec.Hello {
	return codec.Hello{ClientID: w.ClientID, SessionID: w.SessionID, ResumeToken: w.ResumeToken, Received: received}
}

// SPEC §5.4.7, §12: a resumed session replays what the peer did not
// receive, in order and with the same Seqs, then what waited in the
// offline queue, after a GAP_REPORT; both sides' positions carry over.
func TestResumeReplaysAndDrainsOffline(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng, func(t *testing.T) {
			r := newRecorder()
			s, _ := startServer(t, eng, Config{Handler: r})
			c := dial(t, s.Addr())
			w := c.Hello(codec.Hello{ClientID: []byte("dev1")})
			if len(w.SessionID) == 0 || len(w.ResumeToken) == 0 || w.SessionPresent {
				t.Fatalf("WELCOME session fields %+v", w)
			}
			sess := <-r.open
			sendReliableN(t, sess, protocol.LaneNormal, "s", 1, 5)
			readReliable(t, c, 1, 5)
			c.Send(codec.Frame{Type: protocol.FrameAck, AckLane: protocol.LaneNormal, Cumulative: 2})
			for i := uint64(1); i <= 3; i++ {
				c.Send(reliable(protocol.LaneBulk, i, fmt.Sprint("c", i)))
			}
			waitFor(t, "3 client messages", 5*time.Second, func() bool { return len(r.messages()) == 3 })
			c.Conn.Close()
			waitFor(t, "detach", 5*time.Second, func() bool { return !sess.Attached() })
			sendReliableN(t, sess, protocol.LaneNormal, "s", 6, 7)

			c2 := dial(t, s.Addr())
			// The client got s1..s3 in order before the drop.
			w2 := c2.Hello(resumeHello(w, [3]uint64{0, 3, 0}))
			if !w2.SessionPresent || !bytes.Equal(w2.SessionID, w.SessionID) {
				t.Fatalf("not resumed: %+v", w2)
			}
			if w2.Received != [3]uint64{0, 0, 3} {
				t.Fatalf("WELCOME Received %v, want [0 0 3]", w2.Received)
			}
			if bytes.Equal(w2.ResumeToken, w.ResumeToken) {
				t.Fatal("resume token not rotated")
			}
			g := nextOf(t, c2, protocol.FrameGapReport)
			gap, err := codec.ParseGapReport(g.Payload)
			if err != nil || gap.Delivered != 2 || gap.Lost() != 0 {
				t.Fatalf("gap report %+v %v", gap, err)
			}
			got := readReliable(t, c2, 4, 4)
			if strings.Join(got, ",") != "s4,s5,s6,s7" {
				t.Fatalf("after resume got %v", got)
			}
			// The client's Seqs continue too: 3 is a duplicate, 4 is new.
			c2.Send(reliable(protocol.LaneBulk, 3, "dup"))
			c2.Send(reliable(protocol.LaneBulk, 4, "c4"))
			waitFor(t, "c4", 5*time.Second, func() bool { return len(r.messages()) == 4 })
			if got := r.messages(); got[3] != "c4" {
				t.Fatalf("delivered %v", got)
			}
			if s.Counters().Resumes.Load() != 1 {
				t.Fatal("resume not counted")
			}
		})
	}
}

// SPEC §5.4.7: a token that is not the session's current one (forged, or
// an earlier one replayed) is RESUME_FAILED; an unknown session is a new
// one.
func TestResumeFailed(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng, func(t *testing.T) {
			s, _ := startServer(t, eng, Config{})
			c := dial(t, s.Addr())
			w := c.Hello(codec.Hello{ClientID: []byte("x")})
			c.Conn.Close()

			forged := resumeHello(w, [3]uint64{})
			forged.ResumeToken = append([]byte(nil), w.ResumeToken...)
			forged.ResumeToken[0] ^= 1
			c1 := dial(t, s.Addr())
			c1.Write(codec.AppendHello(nil, withVersion(forged)))
			if code := c1.ExpectClose(5 * time.Second); code != protocol.CodeResumeFailed {
				t.Fatalf("forged token: closed with %s", code)
			}

			c2 := dial(t, s.Addr())
			w2 := c2.Hello(resumeHello(w, [3]uint64{}))
			if !w2.SessionPresent {
				t.Fatal("valid token not resumed")
			}
			sendProof(t, s, c2, 1)
			c2.Conn.Close()
			// The first token was rotated away: replaying it fails.
			expectResumeFailed(t, s, w, "replayed token")

			c4 := dial(t, s.Addr())
			unknown := resumeHello(w2, [3]uint64{})
			unknown.SessionID = []byte("no-such-session")
			if w4 := c4.Hello(unknown); w4.SessionPresent {
				t.Fatal("unknown session reported present")
			}
			waitFor(t, "failures counted", 5*time.Second, func() bool { return s.Counters().ResumesFailed.Load() == 2 })
		})
	}
}

func withVersion(h codec.Hello) *codec.Hello { h.Version = protocol.Version; return &h }

// sendProof sends a frame after WELCOME, which shows the server the client
// holds the new resume token (SPEC §5.4.7), and waits until the server has
// read it: n PONGs in all.
func sendProof(t *testing.T, s *Server, c *rawClient, n uint64) {
	t.Helper()
	c.Send(codec.Frame{Type: protocol.FramePong})
	waitFor(t, "PONG", 5*time.Second, func() bool { return s.Counters().FramesIn[protocol.FramePong].Load() == n })
}

// expectResumeFailed resumes w's session on a new connection and expects
// RESUME_FAILED.
func expectResumeFailed(t *testing.T, s *Server, w codec.Welcome, what string) {
	t.Helper()
	c := dial(t, s.Addr())
	c.Write(codec.AppendHello(nil, withVersion(resumeHello(w, [3]uint64{}))))
	if code := c.ExpectClose(5 * time.Second); code != protocol.CodeResumeFailed {
		t.Fatalf("%s: closed with %s", what, code)
	}
}

// SPEC §5.4.7: resuming a session still attached elsewhere closes the
// other connection with SESSION_TAKEN_OVER; the new one resumes.
func TestResumeTakeover(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng, func(t *testing.T) {
			s, _ := startServer(t, eng, Config{})
			c := dial(t, s.Addr())
			w := c.Hello(codec.Hello{ClientID: []byte("t")})
			c2 := dial(t, s.Addr())
			w2 := c2.Hello(resumeHello(w, [3]uint64{}))
			if !w2.SessionPresent {
				t.Fatal("takeover did not resume")
			}
			if code := c.ExpectClose(5 * time.Second); code != protocol.CodeSessionTakenOver {
				t.Fatalf("old connection closed with %s", code)
			}
		})
	}
}

// SPEC §5.4.6: a session not resumed within its expiry is gone, and what
// it held is counted as dropped.
func TestSessionExpiry(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng, func(t *testing.T) {
			r := newRecorder()
			s, _, fc := startFake(t, eng, Config{Handler: r})
			c := dial(t, s.Addr())
			w := c.Hello(codec.Hello{ClientID: []byte("e"), SessionExpiry: 30})
			if w.SessionExpiry != 30 {
				t.Fatalf("granted %d s", w.SessionExpiry)
			}
			sess := (<-r.open)
			c.Conn.Close()
			waitFor(t, "detach", 5*time.Second, func() bool { return !sess.Attached() })
			f := codec.Frame{Type: protocol.FrameData, Flags: protocol.FlagReliable, Lane: 1, Route: 1, Payload: []byte("x")}
			if err := sess.Send(&f); err != nil {
				t.Fatal(err)
			}
			fc.advance(29 * time.Second)
			time.Sleep(1500 * time.Millisecond) // a janitor pass
			if s.NumSessions() != 1 {
				t.Fatal("expired early")
			}
			fc.advance(2 * time.Second)
			waitFor(t, "expiry", 5*time.Second, func() bool { return s.NumSessions() == 0 })
			if n := s.Counters().Drops[DropSessionExpired].Load(); n != 1 {
				t.Fatalf("%d messages counted as dropped with the session", n)
			}
			c2 := dial(t, s.Addr())
			if w2 := c2.Hello(resumeHello(w, [3]uint64{})); w2.SessionPresent {
				t.Fatal("expired session resumed")
			}
		})
	}
}

// SPEC §12: the offline queue is bounded; what it dropped is reported in
// the GAP_REPORT on resume.
func TestOfflineQueueGapReport(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng, func(t *testing.T) {
			r := newRecorder()
			s, _ := startServer(t, eng, Config{Handler: r, Sessions: SessionConfig{OfflineMaxCount: 3}})
			c := dial(t, s.Addr())
			w := c.Hello(codec.Hello{ClientID: []byte("q")})
			sess := (<-r.open)
			c.Conn.Close()
			waitFor(t, "detach", 5*time.Second, func() bool { return !sess.Attached() })
			sendReliableN(t, sess, 2, "o", 1, 5)
			c2 := dial(t, s.Addr())
			c2.Hello(resumeHello(w, [3]uint64{}))
			gap, err := codec.ParseGapReport(nextOf(t, c2, protocol.FrameGapReport).Payload)
			if err != nil || gap.Delivered != 3 || gap.DroppedCount != 2 {
				t.Fatalf("gap report %+v %v", gap, err)
			}
			if got := readReliable(t, c2, 1, 3); strings.Join(got, ",") != "o3,o4,o5" {
				t.Fatalf("got %v", got)
			}
			if n := s.Counters().Drops[DropOfflineFull].Load(); n != 2 {
				t.Fatalf("offline drops counted %d", n)
			}
		})
	}
}

// SPEC §12: an overdue ACK is probed with PINGs (PTO doubling from the
// initial 1 s), never answered by a resend; a peer that answers nothing
// is closed after three probes, long before the idle timeout (1.5 K =
// 24 s here; probes keep K/8 = 2 s apart). On a fake clock.
func TestProbeClosesDeadPeer(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng, func(t *testing.T) {
			r := newRecorder()
			s, _, fc := startFake(t, eng, Config{Handler: r, Heartbeat: HeartbeatProfile{Default: 16 * time.Second, Min: time.Second, Max: time.Minute}})
			c := dial(t, s.Addr())
			c.Hello(codec.Hello{HeartbeatMs: 16_000})
			f := codec.Frame{Type: protocol.FrameData, Flags: protocol.FlagReliable, Lane: 1, Route: 1, Payload: []byte("p")}
			if err := (<-r.open).Send(&f); err != nil {
				t.Fatal(err)
			}
			if g := c.Next(5 * time.Second); g.Type != protocol.FrameData {
				t.Fatalf("got %s", g.Type)
			}
			for i, wait := range []time.Duration{1200 * time.Millisecond, 2200 * time.Millisecond, 4300 * time.Millisecond} {
				if !stillOpen(t, c) {
					t.Fatalf("probe %d came early", i+1)
				}
				fc.advance(wait)
				if g := c.Next(5 * time.Second); g.Type != protocol.FramePing {
					t.Fatalf("probe %d: got %s", i+1, g.Type)
				}
			}
			fc.advance(8300 * time.Millisecond)
			g := c.Next(5 * time.Second)
			if g.Type != protocol.FrameError || g.Code != protocol.CodeIdleTimeout || !strings.Contains(string(g.Payload), "probes") {
				t.Fatalf("got %s %s %q", g.Type, g.Code, g.Payload)
			}
			if n := s.Counters().Probes.Load(); n != 3 {
				t.Fatalf("%d probes counted", n)
			}
		})
	}
}

// SPEC §12 (application-level confirmation): a REJECTED or unconfirmed
// APP_ACK message comes back as a new reliable frame after the backoff
// (1 s, then 5 s, ±20 %); after MaxDeliveries it is dead-lettered; a
// PROCESSED one is done. On a fake clock.
func TestConfirmRedeliveryAndDeadLetter(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng, func(t *testing.T) {
			r := newRecorder()
			dead := make(chan string, 4)
			s, _, fc := startFake(t, eng, Config{Handler: r, Sessions: SessionConfig{
				ConfirmTimeout: time.Second, MaxDeliveries: 3,
				DeadLetter: func(_ *Session, f *codec.Frame) { dead <- string(f.Payload) },
			}})
			c := dial(t, s.Addr())
			c.Hello(codec.Hello{})
			sess := <-r.open
			for _, p := range []string{"keep", "done"} {
				f := codec.Frame{Type: protocol.FrameData, Flags: protocol.FlagReliable | protocol.FlagAppAck, Lane: 1, Route: 1, Payload: []byte(p)}
				if err := sess.Send(&f); err != nil {
					t.Fatal(err)
				}
			}
			// recv reads the next DATA, ACKs it at the transport level and
			// returns it.
			acks := uint64(0)
			recv := func() codec.Frame {
				t.Helper()
				f := nextOf(t, c, protocol.FrameData)
				if !f.Flags.Has(protocol.FlagAppAck) || !f.Flags.Has(protocol.FlagReliable) {
					t.Fatalf("flags %s", f.Flags)
				}
				c.Send(codec.Frame{Type: protocol.FrameAck, AckLane: 1, Cumulative: f.Seq})
				// The confirm timeout runs from the ACK: let the server
				// see it before the clock moves.
				acks++
				waitFor(t, "ACK processed", 5*time.Second, func() bool { return s.Counters().FramesIn[protocol.FrameAck].Load() == acks })
				return f
			}
			confirm := func(f codec.Frame, v protocol.Verdict) {
				c.Send(codec.Frame{Type: protocol.FrameConfirm, AckLane: 1, Verdict: v, Seq: f.Seq})
			}
			first, second := recv(), recv()
			if string(first.Payload) != "keep" || string(second.Payload) != "done" {
				t.Fatalf("got %q %q", first.Payload, second.Payload)
			}
			confirm(second, protocol.ConfirmProcessed)
			confirm(first, protocol.ConfirmRejected)
			waitFor(t, "verdicts", 5*time.Second, func() bool {
				return s.Counters().Rejected.Load() == 1 && s.Counters().Confirmed.Load() == 1
			})
			fc.advance(1300 * time.Millisecond) // backoff 1 s ±20 %
			again := recv()
			if string(again.Payload) != "keep" || again.Seq != 3 {
				t.Fatalf("redelivery %q seq %d", again.Payload, again.Seq)
			}
			fc.advance(1100 * time.Millisecond) // no CONFIRM: failed
			waitFor(t, "timeout", 5*time.Second, func() bool { return s.Counters().ConfirmTimeouts.Load() == 1 })
			fc.advance(6100 * time.Millisecond) // backoff 5 s ±20 %
			third := recv()
			if string(third.Payload) != "keep" || third.Seq != 4 {
				t.Fatalf("third delivery %q seq %d", third.Payload, third.Seq)
			}
			confirm(third, protocol.ConfirmRejected)
			select {
			case p := <-dead:
				if p != "keep" {
					t.Fatalf("dead letter %q", p)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no dead letter")
			}
			if n := s.Counters().DeadLettered.Load(); n != 1 {
				t.Fatalf("dead-lettered %d", n)
			}
			fc.advance(12 * time.Second) // under the 15 s idle timeout
			if !stillOpenNoData(t, c) {
				t.Fatal("a delivery after the dead letter or the PROCESSED confirm")
			}
		})
	}
}

// SPEC §12: after the server closes a connection, a resume delivers what
// the window held back (queued, never numbered) and replays what was in
// flight, in order, with nothing lost or repeated.
func TestResumeAfterServerClose(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng, func(t *testing.T) {
			r := newRecorder()
			s, _ := startServer(t, eng, Config{Handler: r})
			c := dial(t, s.Addr())
			w := c.Hello(codec.Hello{ClientID: []byte("sc"), ReceiveMax: 2})
			sess, conn := <-r.open, <-r.conns
			sendReliableN(t, sess, 3, "s", 1, 6)
			readReliable(t, c, 1, 2) // the window: 2 in flight, 4 queued
			c.Send(codec.Frame{Type: protocol.FrameAck, AckLane: 3, Cumulative: 1})
			readReliable(t, c, 3, 1)
			conn.Close(protocol.CodeGoingAway)
			if code := c.ExpectClose(5 * time.Second); code != protocol.CodeGoingAway {
				t.Fatalf("closed with %s", code)
			}
			waitFor(t, "detach", 5*time.Second, func() bool { return !sess.Attached() })
			c2 := dial(t, s.Addr())
			// The client received s1..s3 in order.
			w2 := c2.Hello(codec.Hello{ClientID: []byte("sc"), SessionID: w.SessionID, ResumeToken: w.ResumeToken, Received: [3]uint64{0, 0, 3}, ReceiveMax: 8})
			if !w2.SessionPresent {
				t.Fatal("not resumed")
			}
			if got := readReliable(t, c2, 4, 3); strings.Join(got, ",") != "s4,s5,s6" {
				t.Fatalf("after resume got %v", got)
			}
			if !stillOpenNoData(t, c2) {
				t.Fatal("more than was sent")
			}
		})
	}
}

// SPEC §12.8: a frame in flight whose message expired before the resume
// is replayed as an expired placeholder: same Seq, TTL 0, no payload.
func TestResumeReplaysExpiredAsPlaceholder(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng, func(t *testing.T) {
			r := newRecorder()
			s, _, fc := startFake(t, eng, Config{Handler: r})
			c := dial(t, s.Addr())
			w := c.Hello(codec.Hello{ClientID: []byte("ttl")})
			sess := <-r.open
			for i, ttl := range []uint32{500, 0} {
				f := codec.Frame{Type: protocol.FrameData, Flags: protocol.FlagReliable, Lane: 1, Route: 4, Corr: uint32(i + 1), Payload: []byte("fresh")}
				if ttl != 0 {
					f.Flags |= protocol.FlagExpiry
					f.TTL = ttl
				}
				if err := sess.Send(&f); err != nil {
					t.Fatal(err)
				}
			}
			readReliable(t, c, 1, 2)
			c.Conn.Close()
			waitFor(t, "detach", 5*time.Second, func() bool { return !sess.Attached() })
			fc.advance(time.Second)
			c2 := dial(t, s.Addr())
			c2.Hello(resumeHello(w, [3]uint64{}))
			p := nextOf(t, c2, protocol.FrameData)
			if !p.IsExpiredPlaceholder() || p.Seq != 1 || p.Route != 4 || p.Corr != 1 {
				t.Fatalf("replayed %+v, want the expired placeholder of Seq 1", p)
			}
			q := nextOf(t, c2, protocol.FrameData)
			if q.Seq != 2 || string(q.Payload) != "fresh" {
				t.Fatalf("second replay %+v", q)
			}
		})
	}
}

// SPEC §6.5: a keyed message is delivered once per client id, even when
// it comes again in a new session; the duplicate request is answered
// RESULT OK "duplicate".
func TestIdempotencyKeyAcrossSessions(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng, func(t *testing.T) {
			r := newRecorder()
			s, _ := startServer(t, eng, Config{Handler: r})
			keyed := func(seq, key uint64, corr uint32, p string) codec.Frame {
				return codec.Frame{Type: protocol.FrameData, Flags: protocol.FlagReliable | protocol.FlagKeyed, Lane: 1, Route: 9, Corr: corr, Seq: seq, Opaque: key, Payload: []byte(p)}
			}
			c := dial(t, s.Addr())
			c.Hello(codec.Hello{ClientID: []byte("k")})
			c.Send(keyed(1, 77, 0, "first"))
			waitFor(t, "first", 5*time.Second, func() bool { return len(r.messages()) == 1 })
			c.Conn.Close()

			c2 := dial(t, s.Addr())
			if w := c2.Hello(codec.Hello{ClientID: []byte("k")}); w.SessionPresent {
				t.Fatal("not a new session")
			}
			c2.Send(keyed(1, 77, 6, "again"))
			res := nextOf(t, c2, protocol.FrameResult)
			if res.Corr != 6 || res.Code != protocol.CodeOK || string(res.Payload) != "duplicate" {
				t.Fatalf("duplicate answered %+v", res)
			}
			c2.Send(keyed(2, 78, 0, "new"))
			waitFor(t, "new", 5*time.Second, func() bool { return len(r.messages()) == 2 })
			if got := r.messages(); got[0] != "first" || got[1] != "new" {
				t.Fatalf("delivered %v", got)
			}
			if n := s.Counters().DuplicateKeys.Load(); n != 1 {
				t.Fatalf("%d duplicate keys counted", n)
			}
		})
	}
}

// SPEC §5.4.7: when the connection that was given a new token is cut
// before anything arrives on it (its WELCOME may never have reached the
// client), the previous token still resumes; once a frame has arrived on
// a connection, only its token does.
func TestResumeTokenSurvivesLostWelcome(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng, func(t *testing.T) {
			s, _ := startServer(t, eng, Config{})
			c := dial(t, s.Addr())
			w := c.Hello(codec.Hello{ClientID: []byte("lw")})
			c.Conn.Close()
			c2 := dial(t, s.Addr())
			w2 := c2.Hello(resumeHello(w, [3]uint64{}))
			c2.Conn.Close() // as if the WELCOME were lost: nothing sent
			// Any number of lost WELCOMEs in a row: the client still holds
			// w's token, and each resume with it gets w2's token again.
			for i := range 3 {
				cx := dial(t, s.Addr())
				wx := cx.Hello(resumeHello(w, [3]uint64{}))
				if !wx.SessionPresent || !bytes.Equal(wx.ResumeToken, w2.ResumeToken) {
					t.Fatalf("lost WELCOME %d: present %v, token reissued %v", i+2, wx.SessionPresent, bytes.Equal(wx.ResumeToken, w2.ResumeToken))
				}
				cx.Conn.Close()
			}
			c3 := dial(t, s.Addr())
			if w3 := c3.Hello(resumeHello(w, [3]uint64{})); !w3.SessionPresent {
				t.Fatal("the previous token did not resume after silent connections")
			}
			sendProof(t, s, c3, 1)
			c3.Conn.Close()
			// The client proved it holds w2's token: w's is dead now.
			expectResumeFailed(t, s, w, "an outdated token")
			c4 := dial(t, s.Addr())
			if w4 := c4.Hello(resumeHello(w2, [3]uint64{})); !w4.SessionPresent || bytes.Equal(w4.ResumeToken, w2.ResumeToken) {
				t.Fatal("the proven token did not resume, or was not rotated")
			}
		})
	}
}

// recordingStore is a SessionStore that wraps the in-memory one and
// records what the server asked of it.
type recordingStore struct {
	*MemoryStore
	mu   sync.Mutex
	puts []string
}

func (r *recordingStore) Put(s *Session) {
	r.mu.Lock()
	r.puts = append(r.puts, s.ClientID())
	r.mu.Unlock()
	r.MemoryStore.Put(s)
}

// The server keeps sessions in the SessionStore it is given; past
// MaxSessions a session serves its connection but is not kept.
func TestSessionStorePluggableAndBounded(t *testing.T) {
	store := &recordingStore{MemoryStore: NewMemoryStore()}
	r := newRecorder()
	s, _ := startServer(t, "gnet", Config{Handler: r, Sessions: SessionConfig{Store: store, MaxSessions: 1}})
	var ws []codec.Welcome
	for _, id := range []string{"one", "two"} {
		c := dial(t, s.Addr())
		ws = append(ws, c.Hello(codec.Hello{ClientID: []byte(id)}))
		<-r.open // materialized by the recorder's OnOpen
		c.Conn.Close()
	}
	waitFor(t, "both detached", 5*time.Second, func() bool { return s.Counters().SessionsRefused.Load() == 1 })
	store.mu.Lock()
	puts := strings.Join(store.puts, ",")
	store.mu.Unlock()
	if puts != "one,two" {
		t.Fatalf("store got %q", puts)
	}
	if store.Get(string(ws[0].SessionID)) == nil || s.NumSessions() != 1 {
		t.Fatal("the first session is not in the store")
	}
	c := dial(t, s.Addr())
	if w := c.Hello(resumeHello(ws[1], [3]uint64{})); w.SessionPresent {
		t.Fatal("a session past MaxSessions was resumed")
	}
	c2 := dial(t, s.Addr())
	if w := c2.Hello(resumeHello(ws[0], [3]uint64{})); !w.SessionPresent {
		t.Fatal("the kept session was not resumed")
	}
}

// A server with no connection lets its ticker wait (idleTick); its first
// connection wakes it, so that the connection's timers run from the next
// tick: here a single reliable frame's delayed ACK (SPEC §12.3) arrives
// although the idle wait is an hour.
func TestFirstConnectionWakesIdleTicker(t *testing.T) {
	r := newRecorder()
	s, err := New(Config{Engine: "gnet", Addr: "127.0.0.1:0", Loops: 1, Handler: r})
	if err != nil {
		t.Fatal(err)
	}
	s.eng.(*gnetEngine).idleWait = time.Hour
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	for round := range 2 { // the second after the server went idle again
		c := dial(t, s.Addr())
		c.Hello(codec.Hello{ClientID: []byte(fmt.Sprint("first-", round))})
		c.Send(reliable(protocol.LaneNormal, 1, "one"))
		if ack := nextOf(t, c, protocol.FrameAck); ack.AckLane != protocol.LaneNormal || ack.Cumulative != 1 {
			t.Fatalf("round %d: ACK lane %d cumulative %d", round, ack.AckLane, ack.Cumulative)
		}
		c.Conn.Close()
		waitFor(t, "idle", 5*time.Second, func() bool { return s.Counters().ConnsOpen.Load() == 0 })
	}
}
