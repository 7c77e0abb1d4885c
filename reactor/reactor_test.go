package reactor

import (
	"bytes"
	"testing"
	"time"
	"unsafe"

	"github.com/ferry-proto/ferry/codec"
	"github.com/ferry-proto/ferry/protocol"
)

func TestEchoHandshake(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng, func(t *testing.T) {
			s, _ := startServer(t, eng, Config{})
			c := dial(t, s.Addr())
			w := c.Hello(codec.Hello{ClientID: []byte("p1"), HeartbeatMs: 1000})
			// SPEC §5.4: the server clamps the proposal to its profile.
			if w.HeartbeatMs != uint32(GameProfile.Min/time.Millisecond) || string(w.ClientID) != "p1" {
				t.Fatalf("WELCOME %+v", w)
			}
			for i := range 100 {
				c.Send(codec.Frame{Type: protocol.FrameData, Lane: 1, Route: echoRoute, Corr: uint32(i + 1), Payload: []byte("ping")})
			}
			for i := range 100 {
				f := c.Next(5 * time.Second)
				if f.Type != protocol.FrameData || f.Corr != uint32(i+1) || !bytes.Equal(f.Payload, []byte("ping")) || !f.Flags.Has(protocol.FlagResponse) {
					t.Fatalf("reply %d: %+v", i, f)
				}
			}
		})
	}
}

// What an idle connection costs is mostly this struct (BenchmarkIdleConns):
// pin its size so growth is a decision, not an accident.
func TestConnSize(t *testing.T) {
	if s := unsafe.Sizeof(Conn{}); s > 320 {
		t.Fatalf("Conn is %d bytes, want <= 320 (the 320-byte size class)", s)
	}
}
