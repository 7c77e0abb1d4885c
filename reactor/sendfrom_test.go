package reactor

import (
	"encoding/binary"
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
