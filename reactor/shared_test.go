package reactor

import (
	"testing"
	"time"

	"github.com/ferry-proto/ferry/codec"
	"github.com/ferry-proto/ferry/protocol"
)

// One Shared frame reaches every connection, and its buffer is released
// once all have written it.
func TestSharedFanout(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng, func(t *testing.T) {
			s, h := startServer(t, eng, Config{})
			const n = 5
			var clients []*rawClient
			var conns []*Conn
			for range n {
				c := dial(t, s.Addr())
				c.Hello(codec.Hello{})
				clients = append(clients, c)
				conns = append(conns, <-h.opened)
			}
			sh, err := NewShared(&codec.Frame{Type: protocol.FramePublish, Lane: 2, Name: []byte("news"), Payload: []byte("hello all")})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range conns {
				if err := c.SendShared(sh); err != nil {
					t.Fatal(err)
				}
			}
			sh.Release()
			for i, c := range clients {
				f := c.Next(5 * time.Second)
				if f.Type != protocol.FramePublish || string(f.Name) != "news" || string(f.Payload) != "hello all" {
					t.Fatalf("client %d got %+v", i, f)
				}
			}
			waitFor(t, "last reference released", 5*time.Second, func() bool { return sh.refs.Load() == 0 })
		})
	}
}
