//go:build !race

package bench

import (
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/ferry-proto/ferry/protocol"
)

// A light connection allocates nothing per message in steady state
// (STYLE: zero allocations per message on hot paths): a full round of the
// pipeline, refill and the reads that bring its answers, over loopback to
// an echo that allocates nothing either, and the parsing of a read that
// holds responses, a PING to answer and a refusal.
func TestLightEchoAllocs(t *testing.T) {
	const depth = 16
	req := appendEchoRequest(nil, protocol.LaneNormal, make([]byte, 1024))

	t.Run("round trip", func(t *testing.T) {
		addr := startListener(t, func(c net.Conn) {
			f := make([]byte, len(req))
			for {
				if _, err := io.ReadFull(c, f); err != nil {
					return
				}
				f[5] = byte(protocol.FlagResponse)
				if _, err := c.Write(f); err != nil {
					return
				}
			}
		})
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		p := newEchoPipe(c, req, depth, time.Now())
		answered := 0
		step := func() {
			if err := p.step(); err != nil {
				t.Fatal(err)
			}
			answered += len(p.lat)
		}
		for range 100 {
			step()
		}
		if n := testing.AllocsPerRun(1000, step); n != 0 {
			t.Errorf("%.2f allocations per round", n)
		}
		if answered < 1100 || p.refused != 0 {
			t.Errorf("%d answers in 1,100 rounds, %d refused", answered, p.refused)
		}
	})

	t.Run("parse", func(t *testing.T) {
		resp := append([]byte(nil), req...)
		resp[5] = byte(protocol.FlagResponse)
		var in []byte
		for range depth - 1 {
			in = append(in, resp...)
		}
		in = appendPing(in, protocol.FramePing, 7)
		in = binary.BigEndian.AppendUint32(in, protocol.MinLength+8)
		in = append(in, byte(protocol.FrameResult), 0, byte(protocol.LaneNormal), 0, 0, 0, 9)
		in = binary.BigEndian.AppendUint16(in, uint16(protocol.CodeQueueFull))
		in = append(in, 0, 0)
		p := newEchoPipe(nil, req, depth, time.Now())
		parse := func() {
			copy(p.rbuf, in)
			p.r, p.e, p.inflight = 0, len(in), depth
			p.lat, p.refused, p.pongs = p.lat[:0], 0, p.pongs[:0]
			if err := p.parse(1); err != nil {
				t.Fatal(err)
			}
		}
		if n := testing.AllocsPerRun(1000, parse); n != 0 {
			t.Errorf("%.2f allocations per parse", n)
		}
		if len(p.lat) != depth-1 || p.refused != 1 || p.code != protocol.CodeQueueFull || len(p.pongs) != protocol.HeaderSize+8 || p.e != 0 {
			t.Errorf("%d responses, %d refused (%s), %d bytes of PONG, %d left", len(p.lat), p.refused, p.code, len(p.pongs), p.e)
		}
	})
}
