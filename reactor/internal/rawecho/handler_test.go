package rawecho

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/panjf2000/gnet/v2"
)

// fakeConn stands in for gnet's connection in handler tests: in is what
// gnet holds unread (its loop buffer plus inbound ring), out collects the
// echoes. Methods the handler must not call panic through the nil Conn.
type fakeConn struct {
	gnet.Conn
	in       []byte
	out      []byte
	writes   int
	outbound int // what OutboundBuffered reports
}

func (c *fakeConn) Peek(n int) ([]byte, error) {
	if n <= 0 {
		n = len(c.in)
	}
	return c.in[:n], nil
}

func (c *fakeConn) Discard(n int) (int, error) {
	c.in = c.in[n:]
	return n, nil
}

func (c *fakeConn) Write(p []byte) (int, error) {
	c.writes++
	c.out = append(c.out, p...)
	return len(p), nil
}

func (c *fakeConn) OutboundBuffered() int { return c.outbound }

func newHandler(maxFrame, maxOutbound int) *handler {
	return &handler{maxFrame: uint32(maxFrame), maxOutbound: maxOutbound}
}

// TestOnTrafficEverySplit feeds a stream split in two at every byte
// boundary: each OnTraffic must echo exactly the complete frames seen so far,
// with at most one Write, and keep the partial rest unread.
func TestOnTrafficEverySplit(t *testing.T) {
	var stream []byte
	var ends []int // offsets at which a frame ends
	for _, n := range []int{0, 1, 5, 300, 0, 17} {
		stream = append(stream, frame(n)...)
		ends = append(ends, len(stream))
	}
	complete := func(k int) int { // bytes of complete frames in stream[:k]
		c := 0
		for _, e := range ends {
			if e <= k {
				c = e
			}
		}
		return c
	}
	h := newHandler(DefaultMaxFrame, DefaultMaxOutbound)
	for cut := 0; cut <= len(stream); cut++ {
		c := &fakeConn{in: append([]byte(nil), stream[:cut]...)}
		if a := h.OnTraffic(c); a != gnet.None {
			t.Fatalf("cut %d: first OnTraffic = %v", cut, a)
		}
		if want := complete(cut); !bytes.Equal(c.out, stream[:want]) || c.writes > 1 {
			t.Fatalf("cut %d: echoed %d bytes in %d writes, want %d in ≤ 1", cut, len(c.out), c.writes, want)
		}
		if !bytes.Equal(c.in, stream[complete(cut):cut]) {
			t.Fatalf("cut %d: kept %d bytes unread, want the partial frame", cut, len(c.in))
		}
		c.in = append(c.in, stream[cut:]...)
		c.writes = 0
		if a := h.OnTraffic(c); a != gnet.None {
			t.Fatalf("cut %d: second OnTraffic = %v", cut, a)
		}
		if !bytes.Equal(c.out, stream) || c.writes > 1 || len(c.in) != 0 {
			t.Fatalf("cut %d: echo differs after the rest arrived", cut)
		}
	}
}

func TestOnTrafficLimits(t *testing.T) {
	h := newHandler(100, 1000)
	over := binary.BigEndian.AppendUint32(nil, 101)
	tests := []struct {
		name     string
		in       []byte
		outbound int
		want     gnet.Action
		echoed   int
	}{
		{"max frame", frame(100), 0, gnet.None, 104},
		{"length over max, header only", over, 0, gnet.Close, 0},
		{"length over max after a good frame", append(frame(3), over...), 0, gnet.Close, 0},
		{"length 2^32-1", []byte{0xff, 0xff, 0xff, 0xff}, 0, gnet.Close, 0},
		{"outbound at cap", frame(96), 900, gnet.None, 100},
		{"outbound over cap", frame(97), 900, gnet.Close, 0},
		{"partial header", []byte{0, 0}, 0, gnet.None, 0},
	}
	for _, tt := range tests {
		c := &fakeConn{in: tt.in, outbound: tt.outbound}
		if a := h.OnTraffic(c); a != tt.want || len(c.out) != tt.echoed {
			t.Errorf("%s: action %v, echoed %d; want %v, %d", tt.name, a, len(c.out), tt.want, tt.echoed)
		}
	}
}
