package reactor

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-proto/ferry/codec"
	"github.com/ferry-proto/ferry/protocol"
)

// A handler forwarding what one connection sends to another with
// SendFrom: every message arrives, in order, also when SendFrom and Send
// alternate; on gnet, where both connections share the one loop, SendFrom
// wakes nothing (the frames are queued straight into the recipient and
// flushed when the callback returns).
const viaSendFrom, viaSend = 7, 8

// forwarder forwards every DATA to the connection in to, with SendFrom
// (route viaSendFrom) or Send.
type forwarder struct {
	*testHandler
	to atomic.Pointer[Conn]
}

func (h *forwarder) OnMessage(c *Conn, f *codec.Frame) {
	to := h.to.Load()
	out := codec.Frame{Type: protocol.FrameData, Lane: f.Lane, Route: f.Route, Payload: f.Payload}
	var err error
	if f.Route == viaSendFrom {
		err = to.SendFrom(c, &out)
	} else {
		err = to.Send(&out)
	}
	if err != nil {
		panic(err)
	}
}

func TestSendFrom(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng, func(t *testing.T) {
			h := &forwarder{testHandler: newTestHandler()}
			s, _ := startServer(t, eng, Config{Loops: 1, Handler: h})
			a := dial(t, s.Addr())
			a.Hello(codec.Hello{ClientID: []byte("a")})
			<-h.opened
			b := dial(t, s.Addr())
			b.Hello(codec.Hello{ClientID: []byte("b")})
			h.to.Store(<-h.opened)
			send := func(n int, route func(i int) uint32) {
				var batch []byte
				for i := range n {
					f := codec.Frame{Type: protocol.FrameData, Lane: protocol.LaneNormal, Route: route(i), Payload: binary.BigEndian.AppendUint32(nil, uint32(i))}
					batch = f.Append(batch)
				}
				a.Write(batch)
				for i := range n {
					f := b.Next(5 * time.Second)
					if f.Type != protocol.FrameData || f.Route != route(i) || binary.BigEndian.Uint32(f.Payload) != uint32(i) {
						t.Fatalf("message %d: got %s route %d payload %x", i, f.Type, f.Route, f.Payload)
					}
				}
			}
			wakes := s.Counters().Wakes.Load()
			send(300, func(int) uint32 { return viaSendFrom })
			if eng == "gnet" {
				if w := s.Counters().Wakes.Load() - wakes; w != 0 {
					t.Errorf("SendFrom on the same loop woke the loop %d times", w)
				}
			}
			// Send queues through the send queue and wakes the loop;
			// SendFrom must not overtake what waits there.
			send(300, func(i int) uint32 {
				if i%3 == 0 {
					return viaSend
				}
				return viaSendFrom
			})
		})
	}
}

// mixer answers each request with a reliable message and then a plain one
// on the same lane, both on the loop (route viaSendFrom) or both with Send.
type mixer struct{ *testHandler }

func (h mixer) OnMessage(c *Conn, f *codec.Frame) {
	send := c.SendOnLoop
	if f.Route == viaSend {
		send = c.Send
	}
	for _, out := range []codec.Frame{
		{Type: protocol.FrameData, Flags: protocol.FlagReliable, Lane: protocol.LaneNormal, Route: 1, Payload: []byte("R")},
		{Type: protocol.FrameData, Lane: protocol.LaneNormal, Route: 1, Payload: []byte("U")},
	} {
		if err := send(&out); err != nil {
			panic(err)
		}
	}
}

// A plain message is never packed into the buffer of a reliable one: that
// buffer is kept until acknowledged and sent again whole on resume, which
// would deliver the plain message twice.
func TestPlainNotPackedIntoReliable(t *testing.T) {
	for _, eng := range engines {
		for _, route := range []uint32{viaSendFrom, viaSend} {
			t.Run(fmt.Sprint(eng, "/route", route), func(t *testing.T) {
				s, _ := startServer(t, eng, Config{Handler: mixer{newTestHandler()}})
				c := dial(t, s.Addr())
				w := c.Hello(codec.Hello{ClientID: []byte("mix")})
				c.Send(codec.Frame{Type: protocol.FrameData, Lane: protocol.LaneNormal, Route: route})
				for _, want := range []string{"R", "U"} {
					f := nextOf(t, c, protocol.FrameData)
					if string(f.Payload) != want || f.Flags.Has(protocol.FlagReliable) != (want == "R") {
						t.Fatalf("got %q flags %s, want %s", f.Payload, f.Flags, want)
					}
				}
				c.Conn.Close() // R unacknowledged: the session keeps it
				c2 := dial(t, s.Addr())
				if w2 := c2.Hello(resumeHello(w, [3]uint64{})); !w2.SessionPresent {
					t.Fatal("not resumed")
				}
				f := nextOf(t, c2, protocol.FrameData)
				if string(f.Payload) != "R" || f.Seq != 1 {
					t.Fatalf("replayed %q seq %d, want R seq 1", f.Payload, f.Seq)
				}
				if !stillOpenNoData(t, c2) {
					t.Fatal("the plain message came again with the replay")
				}
			})
		}
	}
}
