package reactor

import (
	"encoding/binary"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/ferry-proto/ferry/codec"
	"github.com/ferry-proto/ferry/protocol"
)

// openConn starts a server, connects a raw client and returns the server
// side of the connection too.
func openConn(t *testing.T, eng string, cfg Config) (*Server, *testHandler, *rawClient, *Conn) {
	t.Helper()
	s, h := startServer(t, eng, cfg)
	if th, ok := cfg.Handler.(*testHandler); ok {
		h = th
	}
	c := dial(t, s.Addr())
	c.Hello(codec.Hello{MaxFrameSize: protocol.HardMaxFrameSize, MaxMessageSize: protocol.HardMaxMessageSize})
	select {
	case sc := <-h.opened:
		return s, h, c, sc
	case <-time.After(5 * time.Second):
		t.Fatal("OnOpen not called")
	}
	return nil, nil, nil, nil
}

// SPEC §8.2: lanes 1-3 share by weight (4:2:1). Queue the same backlog on
// every lane at once and count what arrives first.
func TestLaneWeightedShares(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng, func(t *testing.T) {
			h := newTestHandler()
			payload := make([]byte, 1000)
			h.onMsg = func(c *Conn, f *codec.Frame) {
				for range 300 {
					for lane := protocol.Lane(1); lane <= 3; lane++ {
						m := codec.Frame{Type: protocol.FrameData, Lane: lane, Route: uint32(lane), Payload: payload}
						if err := c.SendOnLoop(&m); err != nil {
							panic(err)
						}
					}
				}
			}
			_, _, c, _ := openConn(t, eng, Config{Handler: h, MaxOutboundBytes: 8 << 20, HighWatermark: 8 << 20})
			c.Send(codec.Frame{Type: protocol.FrameData, Lane: 1, Route: 99})
			var counts [4]int
			for range 420 {
				f := c.Next(5 * time.Second)
				counts[f.Lane]++
			}
			// 420 messages at 4:2:1 are 240, 120 and 60; allow for the
			// rounding into 4 KB quanta of whole buffers of up to 16 KB
			// (15 of these messages, packed; a fragment's worth).
			if counts[1] < 215 || counts[1] > 265 || counts[2] < 95 || counts[2] > 145 || counts[3] < 40 || counts[3] > 80 {
				t.Fatalf("first 420 messages by lane: %v, want about 240:120:60", counts[1:])
			}
		})
	}
}

// SPEC §8.2, §10: a lane-1 message overtakes a 64 MiB lane-3 message on the
// same connection; it waits for at most one fragment and what the engine
// already holds.
func TestLaneOvertakesBulk(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng, func(t *testing.T) {
			_, _, c, sc := openConn(t, eng, Config{MaxOutboundBytes: 256 << 20, HighWatermark: 256 << 20})
			bulk := make([]byte, 64<<20)
			for i := range bulk {
				bulk[i] = byte(i * 7)
			}
			if err := sc.Send(&codec.Frame{Type: protocol.FrameData, Lane: 3, Route: 3, Payload: bulk}); err != nil {
				t.Fatal(err)
			}
			// Read a little of the bulk so it is streaming, then send the
			// urgent messages.
			r := codec.NewReassembler(codec.ReassemblyLimits{MaxFrameSize: protocol.HardMaxFrameSize,
				MaxMessageSize: 128 << 20, MaxPartial: 3, MaxBytes: 128 << 20, Timeout: time.Minute})
			fragsBefore, urgentSeen, fragsAfterUrgent := 0, 0, 0
			var got []byte
			for fragsBefore < 10 {
				f := c.Next(5 * time.Second)
				if _, _, err := r.Add(&f, 0); err != nil {
					t.Fatal(err)
				}
				fragsBefore++
			}
			const urgent = 20
			go func() {
				for i := range urgent {
					_ = sc.Send(&codec.Frame{Type: protocol.FrameData, Lane: 1, Route: 1, Corr: uint32(i + 1), Payload: []byte("fire")})
					time.Sleep(time.Millisecond)
				}
			}()
			for got == nil {
				f := c.Next(10 * time.Second)
				if f.Lane == 1 {
					urgentSeen++
					continue
				}
				if urgentSeen > 0 && urgentSeen < urgent {
					fragsAfterUrgent++
				}
				msg, done, err := r.Add(&f, 0)
				if err != nil {
					t.Fatal(err)
				}
				if done {
					got = append([]byte(nil), msg...)
				}
			}
			if urgentSeen != urgent {
				t.Fatalf("only %d of %d lane-1 messages arrived before the 64 MiB message completed", urgentSeen, urgent)
			}
			if len(got) != len(bulk) || got[12345] != bulk[12345] || got[len(got)-1] != bulk[len(bulk)-1] {
				t.Fatalf("bulk message arrived as %d bytes", len(got))
			}
			t.Logf("%d bulk fragments arrived between the first and last of %d urgent messages", fragsAfterUrgent, urgent)
		})
	}
}

// Many goroutines send at once; every message arrives once, and each
// sender's messages arrive in order within their lane.
func TestConcurrentSenders(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng, func(t *testing.T) {
			s, _, c, sc := openConn(t, eng, Config{MaxOutboundBytes: 64 << 20, HighWatermark: 64 << 20})
			const senders, each = 8, 2000
			var wg sync.WaitGroup
			for g := range senders {
				wg.Go(func() {
					var p [8]byte
					for i := range each {
						binary.BigEndian.PutUint32(p[:], uint32(g))
						binary.BigEndian.PutUint32(p[4:], uint32(i))
						lane := protocol.Lane(1 + g%3)
						if err := sc.Send(&codec.Frame{Type: protocol.FrameData, Lane: lane, Route: 5, Payload: p[:]}); err != nil {
							t.Error(err)
							return
						}
						if i%100 == 0 {
							runtime.Gosched()
						}
					}
				})
			}
			next := make([]uint32, senders)
			for n := 0; n < senders*each; n++ {
				f := c.Next(10 * time.Second)
				if f.Type != protocol.FrameData || len(f.Payload) != 8 {
					t.Fatalf("message %d: unexpected %s (code %s, %q)", n, f.Type, f.Code, f.Payload)
				}
				g := binary.BigEndian.Uint32(f.Payload)
				i := binary.BigEndian.Uint32(f.Payload[4:])
				if i != next[g] {
					t.Fatalf("sender %d: got message %d, want %d", g, i, next[g])
				}
				next[g]++
			}
			wg.Wait()
			if w := s.Counters().Wakes.Load(); w >= senders*each {
				t.Fatalf("%d wake-ups for %d messages: Wake is not coalesced", w, senders*each)
			}
			t.Logf("%d messages, %d wake-ups", senders*each, s.Counters().Wakes.Load())
		})
	}
}

// SPEC §15: a peer that never reads. Unreliable lane-3 messages are dropped
// past the high watermark and counted; past the cap the connection closes
// with SLOW_CONSUMER; what the server holds stays bounded.
func TestSlowConsumer(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng, func(t *testing.T) {
			const capBytes = 2 << 20
			s, h, c, sc := openConn(t, eng, Config{MaxOutboundBytes: capBytes, HighWatermark: 512 << 10, LowWatermark: 128 << 10, EngineBuffer: 256 << 10})
			payload := make([]byte, 4096)
			dropped, sent := 0, 0
			var err error
			for i := 0; i < 100000; i++ {
				lane := protocol.Lane(2 + i%2)
				err = sc.Send(&codec.Frame{Type: protocol.FrameData, Lane: lane, Route: 1, Payload: payload})
				if err == ErrDropped {
					dropped++
					continue
				}
				if err != nil {
					break
				}
				sent++
				if q := sc.Queued(); q > capBytes+int64(len(payload))+64 {
					t.Fatalf("%d bytes queued, cap %d", q, capBytes)
				}
			}
			if err != ErrSlowConsumer {
				t.Fatalf("after %d sends: %v, want ErrSlowConsumer", sent, err)
			}
			if dropped == 0 || s.Counters().Drops[DropQueueFull].Load() != uint64(dropped) {
				t.Fatalf("dropped %d lane-3 messages, counter says %d", dropped, s.Counters().Drops[DropQueueFull].Load())
			}
			h.expectClosed(t, protocol.CodeSlowConsumer)
			_ = c
			if err := sc.Send(&codec.Frame{Type: protocol.FrameData, Lane: 1, Payload: payload}); err != ErrClosed {
				t.Fatalf("send after close: %v", err)
			}
		})
	}
}

// Counters.Queued, the bytes waiting in the lanes, agrees with the
// connection's own count while a peer does not read (replies packed on the
// loop included), and comes back to zero once it has read everything.
func TestQueuedGauge(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng, func(t *testing.T) {
			const each, size = 6000, 1000
			h := newTestHandler()
			payload := make([]byte, size)
			h.onMsg = func(c *Conn, f *codec.Frame) {
				for i := range each {
					// Lanes alternate in runs, so packs are cut by lane
					// changes as well as by size.
					lane := protocol.Lane(2 + i/7%2)
					m := codec.Frame{Type: protocol.FrameData, Lane: lane, Route: 1, Payload: payload}
					if err := c.SendOnLoop(&m); err != nil {
						panic(err)
					}
				}
			}
			s, _, c, sc := openConn(t, eng, Config{Handler: h, MaxOutboundBytes: 64 << 20, HighWatermark: 64 << 20})
			gauge := func() int64 {
				ctr := s.Counters()
				return ctr.Queued[1].Load() + ctr.Queued[2].Load() + ctr.Queued[3].Load()
			}
			c.Send(codec.Frame{Type: protocol.FrameData, Lane: 1, Route: 99})
			// Nothing read: the kernel and the engine buffer fill, the
			// rest waits in the lanes.
			var last int64
			waitFor(t, "the gauge to agree with the lanes", 5*time.Second, func() bool {
				last = gauge()
				return last > 0 && last == sc.queued.Load()
			})
			if int(last) > each*(size+20) {
				t.Fatalf("gauge %d bytes, more than was sent", last)
			}
			for range each {
				c.Next(5 * time.Second)
			}
			waitFor(t, "the gauge back to zero", 5*time.Second, func() bool { return gauge() == 0 && sc.queued.Load() == 0 })
		})
	}
}

// A handler sending on the loop to a peer that does not read: replies are
// packed up to the high watermark, the ordinary path takes over there, and
// the cap closes the connection with SLOW_CONSUMER; what was queued never
// passes the cap by more than the bytes packed in the callback and not yet
// counted (at most packLimit per lane).
func TestSlowConsumerOnLoop(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng, func(t *testing.T) {
			const capBytes = 2 << 20
			h := newTestHandler()
			payload := make([]byte, 1000)
			type outcome struct {
				sent      int
				err       error
				maxQueued int64
			}
			done := make(chan outcome, 1)
			h.onMsg = func(c *Conn, f *codec.Frame) {
				var o outcome
				for o.sent = 0; o.sent < 10*capBytes/len(payload); o.sent++ {
					m := codec.Frame{Type: protocol.FrameData, Lane: protocol.Lane(1 + o.sent%2), Route: 1, Payload: payload}
					if o.err = c.SendOnLoop(&m); o.err != nil {
						break
					}
					// What is queued: what others see, and what the
					// loop has packed and not yet counted.
					q := c.Queued()
					for l := range c.laneSlice() {
						if lq := &c.lanes[l]; !lq.empty() {
							q += int64(lq.items[len(lq.items)-1].unsettled)
						}
					}
					o.maxQueued = max(o.maxQueued, q)
				}
				done <- o
			}
			_, _, c, _ := openConn(t, eng, Config{Handler: h, MaxOutboundBytes: capBytes, HighWatermark: 512 << 10, LowWatermark: 128 << 10})
			c.Send(codec.Frame{Type: protocol.FrameData, Lane: 1, Route: 99})
			o := <-done
			if o.err != ErrSlowConsumer {
				t.Fatalf("after %d sends: %v, want ErrSlowConsumer", o.sent, o.err)
			}
			if limit := int64(capBytes + 3*packLimit); o.maxQueued > limit {
				t.Fatalf("%d bytes queued, cap %d (+ %d not yet counted)", o.maxQueued, capBytes, 3*packLimit)
			}
			h.expectClosed(t, protocol.CodeSlowConsumer)
		})
	}
}
