package client

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/ferry-proto/ferry/protocol"
)

// A reliable message cut into fragments continues across a reconnect, in
// both directions: the receiver's partial reassembly belongs to the session
// and the sender replays from the receiver's Received+1 with the same MsgID
// (notes/delivery.md).
func TestFragmentsAcrossReconnect(t *testing.T) {
	big := make([]byte, 100_000)
	for i := range big {
		big[i] = byte(i * 7)
	}
	t.Run("up", func(t *testing.T) {
		p := newPeer(t, peerOpts{})
		px := newCutProxy(t, p.addr(), func(n int) (int64, int64) {
			if n == 0 {
				return 40_000, -1 // mid-way through the third fragment
			}
			return -1, -1
		})
		c := dial(t, "ferry", WithDialer(px.dial))
		if err := c.SendReliable(testCtx(t), 3, routeRecord, big); err != nil {
			t.Fatal(err)
		}
		got := p.received(3)
		if len(got) != 1 || !bytes.Equal(got[0], big) {
			t.Fatalf("server got %d messages", len(got))
		}
		if px.cutCount() != 1 || c.Stats().Resumes != 1 {
			t.Fatalf("cuts %d, stats %+v", px.cutCount(), c.Stats())
		}
	})
	t.Run("down", func(t *testing.T) {
		p := newPeer(t, peerOpts{})
		px := newCutProxy(t, p.addr(), cutFirst(-1, 40_000))
		var g got
		c := dial(t, "ferry", WithDialer(px.dial), WithHandler(g.handler))
		p.sendTo(c.ClientID(), 3, big, true)
		p.sendTo(c.ClientID(), 3, []byte("after"), true)
		waitFor(t, "2 messages", func() bool { return g.len() == 2 })
		g.mu.Lock()
		defer g.mu.Unlock()
		if !bytes.Equal(g.msgs[0].Payload, big) || string(g.msgs[1].Payload) != "after" {
			t.Fatalf("client got %d and %q", len(g.msgs[0].Payload), g.msgs[1].Payload)
		}
		if px.cutCount() != 1 || c.Stats().Resumes != 1 {
			t.Fatalf("cuts %d, stats %+v", px.cutCount(), c.Stats())
		}
	})
	t.Run("unreliable dies", func(t *testing.T) {
		p := newPeer(t, peerOpts{})
		px := newCutProxy(t, p.addr(), cutFirst(-1, 40_000))
		var g got
		c := dial(t, "ferry", WithDialer(px.dial), WithHandler(g.handler))
		p.sendTo(c.ClientID(), 3, big, false)
		waitFor(t, "reconnect", func() bool { return c.Stats().Resumes == 1 })
		p.sendTo(c.ClientID(), 3, []byte("after"), true)
		waitFor(t, "1 message", func() bool { return g.len() == 1 })
		if got := g.payloads(); got[0] != "after" || c.Stats().Dropped != 1 {
			t.Fatalf("client got %q, stats %+v", got, c.Stats())
		}
	})
}

// The chaos test: connections cut at random bytes in both directions while
// reliable messages of all sizes flow both ways on the three lanes. Every
// message arrives exactly once, in order within its lane, and every
// reconnect resumes the session. (The server keeps its resume token: a cut
// inside a WELCOME would otherwise cost the session, as SPEC §5.4.7 says
// and TestWelcomeLostCostsSession checks.)
func TestChaosExactlyOnce(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	var rmu sync.Mutex
	const cuts = 60
	p := newPeer(t, peerOpts{compression: true, keepToken: true})
	px := newCutProxy(t, p.addr(), func(n int) (int64, int64) {
		rmu.Lock()
		defer rmu.Unlock()
		if n >= cuts {
			return -1, -1
		}
		// One direction or both, anywhere from inside the HELLO to a few
		// fragments in.
		up, down := int64(-1), int64(-1)
		switch rng.IntN(3) {
		case 0:
			up = 1 + rng.Int64N(40_000)
		case 1:
			down = 1 + rng.Int64N(40_000)
		default:
			up, down = 1+rng.Int64N(40_000), 1+rng.Int64N(40_000)
		}
		return up, down
	})
	var mu sync.Mutex
	next := [protocol.NumLanes]uint32{}
	var bad []string
	c := dial(t, "ferry", WithDialer(px.dial), WithCompression(true), WithHandler(func(m *Message) error {
		mu.Lock()
		defer mu.Unlock()
		i, ok := checkPayload(m.Payload)
		if !ok || i != next[m.Lane] {
			bad = append(bad, fmt.Sprintf("lane %d: got %d (ok %v), want %d", m.Lane, i, ok, next[m.Lane]))
		}
		next[m.Lane] = i + 1
		return nil
	}))
	const n = 900
	sizes := func(i int) int {
		rmu.Lock()
		defer rmu.Unlock()
		switch rng.IntN(10) {
		case 0:
			return 16_000 + rng.IntN(50_000) // fragmented
		case 1:
			return 500 + rng.IntN(3000)
		}
		return 8 + rng.IntN(100)
	}
	errs := make(chan error, 3*n)
	var sentDown [protocol.NumLanes]uint32
	for i := range n {
		lane := protocol.Lane(1 + i%3)
		idx := uint32(i / 3)
		if err := c.SendAsync(lane, routeRecord, makePayload(idx, sizes(i)), func(err error) {
			if err != nil {
				errs <- err
			}
		}); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			p.mu.Lock()
			s := p.only()
			s.send(lane, protocol.FrameData, "", makePayload(sentDown[lane], sizes(i)), true)
			sentDown[lane]++
			p.mu.Unlock()
		}
	}
	if err := c.Flush(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	close(errs)
	for err := range errs {
		t.Errorf("send: %v", err)
	}
	for lane := protocol.LaneInteractive; lane <= protocol.LaneBulk; lane++ {
		got := p.received(lane)
		if len(got) != n/3 {
			t.Errorf("lane %d: server got %d messages, want %d", lane, len(got), n/3)
		}
		for i, b := range got {
			if j, ok := checkPayload(b); !ok || j != uint32(i) {
				t.Errorf("lane %d: server's message %d is %d (ok %v)", lane, i, j, ok)
				break
			}
		}
	}
	waitFor(t, "client's messages", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return next[1] == sentDown[1] && next[2] == sentDown[2] && next[3] == sentDown[3]
	})
	mu.Lock()
	for _, b := range bad {
		t.Error(b)
	}
	mu.Unlock()
	st := c.Stats()
	t.Logf("cuts %d, stats %+v", px.cutCount(), st)
	if st.NewSessions != 0 || st.Lost != 0 {
		t.Fatalf("a session was lost: %+v", st)
	}
	if st.Reconnects == 0 {
		t.Fatal("no reconnect happened")
	}
}

// makePayload is size bytes (at least 8) that carry index i and a check.
func makePayload(i uint32, size int) []byte {
	b := make([]byte, max(size, 8))
	binary.BigEndian.PutUint32(b, i)
	for j := 8; j < len(b); j++ {
		b[j] = byte(i) + byte(j)
	}
	binary.BigEndian.PutUint32(b[4:], uint32(len(b)))
	return b
}

func checkPayload(b []byte) (uint32, bool) {
	if len(b) < 8 || binary.BigEndian.Uint32(b[4:]) != uint32(len(b)) {
		return 0, false
	}
	i := binary.BigEndian.Uint32(b)
	for j := 8; j < len(b); j++ {
		if b[j] != byte(i)+byte(j) {
			return i, false
		}
	}
	return i, true
}

// SPEC §5.4.7: a client whose connection fails after the server sent a
// WELCOME and before the client read it still holds the superseded token;
// its next resume fails with RESUME_FAILED and it starts a new session,
// reporting what the old one lost.
func TestWelcomeLostCostsSession(t *testing.T) {
	p := newPeer(t, peerOpts{noAck: true})
	px := newCutProxy(t, p.addr(), func(n int) (int64, int64) {
		if n == 1 {
			return -1, 20 // the resume's WELCOME is cut short
		}
		return -1, -1
	})
	var ev events
	c := dial(t, "ferry", WithDialer(px.dial), WithStateHandler(ev.add))
	done := make(chan error, 1)
	go func() { done <- c.SendReliable(testCtx(t), 1, routeRecord, []byte("x")) }()
	p.waitUntil("message", func() bool { s := p.only(); return s != nil && len(s.got[1]) == 1 })
	p.kill()
	if err := <-done; !errors.Is(err, ErrSessionLost) {
		t.Fatalf("SendReliable: %v", err)
	}
	waitFor(t, "new session", func() bool { return ev.has(EventNewSession) })
	if e, _ := ev.last(EventNewSession); e.Lost != 1 {
		t.Fatalf("event %+v", e)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	// HELLO 2 resumed and got its WELCOME cut; HELLO 3 presented the old
	// token (RESUME_FAILED); HELLO 4 started afresh.
	if len(p.hellos) != 4 || len(p.hellos[2].SessionID) == 0 || len(p.hellos[3].SessionID) != 0 {
		t.Fatalf("%d HELLOs", len(p.hellos))
	}
	if st := c.Stats(); st.Lost != 1 || st.NewSessions != 1 {
		t.Fatalf("stats %+v", st)
	}
}
