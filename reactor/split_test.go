package reactor

import (
	"bytes"
	"net"
	"testing"
	"time"

	"github.com/ferry-proto/ferry/codec"
	"github.com/ferry-proto/ferry/protocol"
)

// Frames reach the server in pieces of every small size, and a frame of
// 60 KB in 1,500-byte pieces: every frame is decoded whole, nothing is
// lost or doubled. (A regression test: gnet's Discard(0) discards
// everything, which once dropped partial frames.)
func TestInputSplitAcrossReads(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng, func(t *testing.T) {
			s, _ := startServer(t, eng, Config{})
			c := dial(t, s.Addr())
			_ = c.Conn.(*net.TCPConn).SetNoDelay(true)
			h := codec.Hello{Version: protocol.Version, MaxFrameSize: protocol.HardMaxFrameSize}
			stream := codec.AppendHello(nil, &h)
			for i := range 20 {
				f := codec.Frame{Type: protocol.FrameData, Lane: 1, Route: echoRoute, Corr: uint32(i + 1), Payload: bytes.Repeat([]byte{byte(i)}, i*7)}
				stream = f.Append(stream)
			}
			big := codec.Frame{Type: protocol.FrameData, Lane: 2, Route: echoRoute, Corr: 99, Payload: bytes.Repeat([]byte("x"), 60000)}
			stream = big.Append(stream)
			for i := 0; i < len(stream); {
				n := 1 + i%5
				if i > len(stream)-61000 {
					n = 1500
				}
				n = min(n, len(stream)-i)
				c.Write(stream[i : i+n])
				i += n
				time.Sleep(200 * time.Microsecond)
			}
			if f := c.Next(5 * time.Second); f.Type != protocol.FrameWelcome {
				t.Fatalf("got %s (code %s), want WELCOME", f.Type, f.Code)
			}
			for i := range 20 {
				f := c.Next(5 * time.Second)
				if f.Corr != uint32(i+1) || len(f.Payload) != i*7 {
					t.Fatalf("reply %d: corr %d, %d bytes", i, f.Corr, len(f.Payload))
				}
			}
			for got := 0; got < 60000; {
				f := c.Next(5 * time.Second)
				if f.Corr != 99 {
					t.Fatalf("big reply: corr %d, %d bytes", f.Corr, len(f.Payload))
				}
				got += len(f.Payload)
			}
		})
	}
}

// SPEC §3.2: a length prefix over the limit is refused even when it comes
// in two reads.
func TestOversizePrefixSplit(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng, func(t *testing.T) {
			s, _ := startServer(t, eng, Config{})
			c := dial(t, s.Addr())
			_ = c.Conn.(*net.TCPConn).SetNoDelay(true)
			c.Hello(codec.Hello{})
			c.Write([]byte{0xff, 0xff})
			time.Sleep(20 * time.Millisecond)
			c.Write([]byte{0xff, 0xff, 1, 2, 3})
			if code := c.ExpectClose(5 * time.Second); code != protocol.CodeFrameTooLarge {
				t.Fatalf("closed with %s", code)
			}
		})
	}
}
