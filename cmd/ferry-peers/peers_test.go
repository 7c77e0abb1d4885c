package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ferry-proto/ferry/bench"
	"github.com/ferry-proto/ferry/client"
	"github.com/ferry-proto/ferry/codec"
	"github.com/ferry-proto/ferry/protocol"
)

func TestMain(m *testing.M) {
	// gnet's global worker pool (an ants pool built when gnet is imported)
	// lives for the whole process by design; anything a server starts must
	// be gone after Stop.
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/panjf2000/ants/v2.(*poolCommon).purgeStaleWorkers"),
		goleak.IgnoreTopFunction("github.com/panjf2000/ants/v2.(*poolCommon).ticktock"),
	)
}

// peers starts each FERRY/1 peer on a free loopback port, stopped when the
// test ends.
func peers(t *testing.T) map[string]server {
	t.Helper()
	g, err := startRawGnet("127.0.0.1:0", 2)
	if err != nil {
		t.Fatalf("rawgnet: %v", err)
	}
	n, err := startNet("127.0.0.1:0")
	if err != nil {
		_ = g.Stop()
		t.Fatalf("net: %v", err)
	}
	t.Cleanup(func() {
		if err := g.Stop(); err != nil {
			t.Errorf("rawgnet Stop: %v", err)
		}
		if err := n.Stop(); err != nil {
			t.Errorf("net Stop: %v", err)
		}
	})
	return map[string]server{"rawgnet": g, "net": n}
}

func hello() []byte {
	return codec.AppendHello(nil, &codec.Hello{Version: protocol.Version, Capabilities: protocol.CapCompression})
}

func request(lane protocol.Lane, corr uint32, payload []byte) []byte {
	f := codec.Frame{Type: protocol.FrameData, Lane: lane, Route: 1, Corr: corr, Payload: payload}
	return f.Append(nil)
}

// conn is a raw FERRY/1 connection that reads whole frames.
type conn struct {
	t   *testing.T
	c   net.Conn
	buf []byte
	dec codec.Decoder
}

func dial(t *testing.T, addr string) *conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	return &conn{t: t, c: c, dec: codec.NewDecoder()}
}

func (c *conn) write(b ...[]byte) {
	c.t.Helper()
	if _, err := c.c.Write(bytes.Join(b, nil)); err != nil {
		c.t.Fatal(err)
	}
}

// next returns the next frame, its payload copied.
func (c *conn) next() codec.Frame {
	c.t.Helper()
	for {
		f, n, err := c.dec.Decode(c.buf)
		if err == nil {
			f.Payload = bytes.Clone(f.Payload)
			c.buf = c.buf[n:]
			return f
		}
		if err != codec.ErrNeedMore {
			c.t.Fatalf("decode: %v", err)
		}
		var b [4096]byte
		k, err := c.c.Read(b[:])
		if err != nil {
			c.t.Fatalf("read: %v", err)
		}
		c.buf = append(c.buf, b[:k]...)
	}
}

// closed checks that the peer ends the connection without answering.
func (c *conn) closed() {
	c.t.Helper()
	b, err := io.ReadAll(c.c)
	if err != nil && !errors.Is(err, net.ErrClosed) && !isReset(err) {
		c.t.Fatalf("want the connection closed, got %v", err)
	}
	if len(b) != 0 {
		c.t.Fatalf("want no answer before the close, got %d bytes", len(b))
	}
}

func isReset(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && !oe.Timeout()
}

// TestHandshakeEcho runs the handshake and a pipelined batch of requests
// and pings, split at odd places, against each peer.
func TestHandshakeEcho(t *testing.T) {
	for name, s := range peers(t) {
		t.Run(name, func(t *testing.T) {
			c := dial(t, s.Addr())
			c.write(hello())
			f := c.next()
			if f.Type != protocol.FrameWelcome {
				t.Fatalf("got %v, want WELCOME", f.Type)
			}
			w, err := codec.ParseWelcome(f.Payload)
			if err != nil {
				t.Fatal(err)
			}
			if w.Capabilities != 0 || w.HeartbeatMs == 0 || len(w.ClientID) == 0 || len(w.SessionID) != 0 {
				t.Fatalf("WELCOME %+v: want no capabilities, a heartbeat, a client id, no session", w)
			}

			// 50 requests of growing size, a PING, a PONG and an ACK the
			// peer must ignore, and a one-way message, in one stream sent
			// in uneven pieces.
			var stream []byte
			for i := range 50 {
				stream = append(stream, request(protocol.Lane(1+i%3), uint32(i+1), bytes.Repeat([]byte{byte(i)}, i*100))...)
			}
			ping := codec.Frame{Type: protocol.FramePing, Opaque: 0x0102030405060708}
			pong := codec.Frame{Type: protocol.FramePong, Opaque: 9}
			stream = append(stream, ping.Append(nil)...)
			stream = append(stream, pong.Append(nil)...)
			stream = append(stream, request(protocol.LaneNormal, 0, []byte("one-way"))...)
			stream = append(stream, request(protocol.LaneNormal, 51, nil)...)
			for len(stream) > 0 {
				k := min(len(stream), 777)
				c.write(stream[:k])
				stream = stream[k:]
			}
			for i := range 50 {
				f := c.next()
				want := bytes.Repeat([]byte{byte(i)}, i*100)
				if f.Type != protocol.FrameData || !f.Flags.Has(protocol.FlagResponse) || f.Corr != uint32(i+1) ||
					f.Route != 1 || f.Lane != protocol.Lane(1+i%3) || !bytes.Equal(f.Payload, want) {
					t.Fatalf("answer %d: %v flags %v lane %d corr %d, %d bytes", i, f.Type, f.Flags, f.Lane, f.Corr, len(f.Payload))
				}
			}
			if f := c.next(); f.Type != protocol.FramePong || f.Opaque != ping.Opaque {
				t.Fatalf("got %v %x, want PONG %x", f.Type, f.Opaque, ping.Opaque)
			}
			if f := c.next(); f.Corr != 51 || !f.Flags.Has(protocol.FlagResponse) {
				t.Fatalf("got %v corr %d, want the response to 51 (the one-way message and the PONG unanswered)", f.Type, f.Corr)
			}
		})
	}
}

// TestClient drives each peer with ferry's Go client, as ferry-bench does.
func TestClient(t *testing.T) {
	for name, s := range peers(t) {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			c, err := client.Dial(ctx, s.Addr(), client.WithReconnect(false))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			for _, size := range []int{0, 16, 1024, 40 << 10} { // 40 KiB goes in fragments
				p := bytes.Repeat([]byte{'x'}, size)
				got, err := c.Request(ctx, protocol.LaneInteractive, 1, p)
				if err != nil || !bytes.Equal(got, p) {
					t.Fatalf("size %d: %d bytes, %v", size, len(got), err)
				}
			}
			if st := c.Stats(); st.Reconnects != 0 {
				t.Fatalf("%d reconnects", st.Reconnects)
			}
		})
	}
}

// TestHangUp: what the peers do not serve closes the connection.
func TestHangUp(t *testing.T) {
	reliable := codec.Frame{Type: protocol.FrameData, Flags: protocol.FlagReliable, Lane: 1, Corr: 1, Seq: 1}
	publish := codec.Frame{Type: protocol.FramePublish, Lane: 1, Name: []byte("t"), Payload: []byte("x")}
	tooLarge := binary.BigEndian.AppendUint32(nil, maxFrame-3) // header only
	tests := []struct {
		name   string
		frames [][]byte
	}{
		{"first frame not HELLO", [][]byte{request(1, 1, nil)}},
		{"second HELLO", [][]byte{hello(), hello()}},
		{"length over the max frame size", [][]byte{hello(), tooLarge}},
		{"length under the header", [][]byte{hello(), {0, 0, 0, 2, 5, 0}}},
		{"reliable DATA", [][]byte{hello(), reliable.Append(nil)}},
		{"PUBLISH", [][]byte{hello(), publish.Append(nil)}},
		{"reserved lane bits", [][]byte{hello(), func() []byte { b := request(1, 1, nil); b[6] |= 0x10; return b }()}},
	}
	for name, s := range peers(t) {
		for _, tt := range tests {
			t.Run(name+"/"+tt.name, func(t *testing.T) {
				c := dial(t, s.Addr())
				c.write(tt.frames[0])
				if len(tt.frames) > 1 {
					if f := c.next(); f.Type != protocol.FrameWelcome {
						t.Fatalf("got %v, want WELCOME", f.Type)
					}
					c.write(tt.frames[1:]...)
				}
				c.closed()
			})
		}
	}
}

func TestAnswer(t *testing.T) {
	ping := codec.Frame{Type: protocol.FramePing, Opaque: 7}
	ack := codec.Frame{Type: protocol.FrameAck, AckLane: 1, Cumulative: 1}
	resp := codec.Frame{Type: protocol.FrameData, Flags: protocol.FlagResponse, Lane: 1, Corr: 3}
	tests := []struct {
		name     string
		frame    []byte
		welcomed bool
		want     verdict
	}{
		{"HELLO", hello(), false, sendWelcome},
		{"HELLO of version 2", func() []byte { b := hello(); b[protocol.HeaderSize] = 2; return b }(), false, hangUp},
		{"DATA before WELCOME", request(1, 1, nil), false, hangUp},
		{"request", request(2, 1, []byte("x")), true, sendBack},
		{"one-way", request(2, 0, []byte("x")), true, ignore},
		{"response", resp.Append(nil), true, ignore},
		{"DATA on lane 0", request(0, 1, nil), true, hangUp},
		{"PING", ping.Append(nil), true, sendBack},
		{"ACK", ack.Append(nil), true, ignore},
		{"HELLO again", hello(), true, hangUp},
	}
	for _, tt := range tests {
		if got := answer(tt.frame, tt.welcomed); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
	b := request(3, 9, []byte("abc"))
	if answer(b, true) != sendBack {
		t.Fatal("request not answered")
	}
	f, _, err := func() (codec.Frame, int, error) { d := codec.NewDecoder(); return d.Decode(b) }()
	if err != nil || f.Flags != protocol.FlagResponse || f.Corr != 9 || f.Lane != 3 || string(f.Payload) != "abc" {
		t.Fatalf("rewritten request: %+v, %v", f, err)
	}
}

// TestFrameLen: every proper prefix of a frame is "need more", never an
// error; a bad length is an error from its 4 bytes alone.
func TestFrameLen(t *testing.T) {
	b := request(1, 1, []byte("payload"))
	for k := range len(b) {
		if n, err := frameLen(b[:k]); n != 0 || err != nil {
			t.Fatalf("prefix %d: %d, %v", k, n, err)
		}
	}
	if n, err := frameLen(append(b, 1, 2)); n != len(b) || err != nil {
		t.Fatalf("whole frame: %d, %v", n, err)
	}
	for _, l := range []uint32{0, 2, maxFrame - 3, 1<<32 - 1} {
		if _, err := frameLen(binary.BigEndian.AppendUint32(nil, l)); err == nil {
			t.Errorf("length %d accepted", l)
		}
	}
	if n, err := frameLen(binary.BigEndian.AppendUint32(nil, maxFrame-4)); n != 0 || err != nil {
		t.Errorf("largest length: %d, %v", n, err)
	}
}

// TestEchoLoad drives each peer with the pipelined bare-socket load.
func TestEchoLoad(t *testing.T) {
	for name, s := range peers(t) {
		t.Run(name, func(t *testing.T) {
			res, err := runEchoLoad(context.Background(), echoConfig{
				Addr: s.Addr(), Conns: 4, Depth: 8, Size: 100, Duration: 200 * time.Millisecond,
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.Msgs == 0 || res.Errors != 0 || res.Count < res.Msgs || res.P50ms <= 0 || res.Connections != 4 {
				t.Fatalf("result %+v", res)
			}
			// The command, as bench/compare/compare.sh runs it: the JSON
			// the report reads, under the comparison's scenario name.
			var out strings.Builder
			args := []string{"echo-load", "--addr", s.Addr(), "--conns", "2", "--depth", "4", "--size", "100", "--duration", "200ms", "--json"}
			if code := run(context.Background(), args, &out, io.Discard); code != 0 {
				t.Fatalf("echo-load: exit %d", code)
			}
			var r bench.Result
			if err := json.Unmarshal([]byte(out.String()), &r); err != nil || r.Scenario != "echo-pipelined" || r.Msgs == 0 ||
				r.Errors != 0 || r.Size != 100 || r.Connections != 2 || r.P50ms <= 0 || r.ClientCPUS <= 0 {
				t.Fatalf("%v: %s", err, out.String())
			}
		})
	}
}
