package reactor

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/ferry-proto/ferry/codec"
	"github.com/ferry-proto/ferry/protocol"
)

// fakeTransport stands in for the socket: the connection core runs in
// process, with no engine and no goroutine, and everything it writes is
// kept for checking (or, with discard, only counted: a benchmark's).
type fakeTransport struct {
	out     []byte
	written int
	discard bool
	closed  bool
}

func (t *fakeTransport) Writev(bs [][]byte) error {
	for _, b := range bs {
		t.written += len(b)
		if !t.discard {
			t.out = append(t.out, b...)
		}
	}
	return nil
}
func (t *fakeTransport) Flush() error  { return nil }
func (t *fakeTransport) Buffered() int { return 0 }
func (t *fakeTransport) Wake()         {}
func (t *fakeTransport) Close()        { t.closed = true }

func (t *fakeTransport) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}
}

// FuzzConnCore feeds arbitrary bytes, split at arbitrary points, to a
// server connection's core, and checks: no panic; memory within the
// configured limits; everything the server wrote is valid FERRY/1; and the
// connection either goes on or was closed with an ERROR of a defined
// connection-scope code (or because the peer sent ERROR or GOAWAY).
func FuzzConnCore(f *testing.F) {
	hello := codec.AppendHello(nil, &codec.Hello{Version: 1, Capabilities: protocol.CapCompression})
	echo := codec.Frame{Type: protocol.FrameData, Lane: 1, Route: 1, Corr: 1, Payload: []byte("hi")}
	f.Add(append(hello, echo.Append(nil)...), []byte{3, 9, 1})
	if b, err := os.ReadFile(filepath.Join("..", "docs", "vectors", "frames.json")); err == nil {
		var file struct {
			Vectors []struct {
				Hex string `json:"hex"`
			} `json:"vectors"`
		}
		if json.Unmarshal(b, &file) == nil {
			for _, v := range file.Vectors {
				raw, _ := hex.DecodeString(v.Hex)
				f.Add(append(bytes.Clone(hello), raw...), []byte{7})
			}
		}
	}
	f.Fuzz(func(t *testing.T, stream, splits []byte) {
		const budget = 1 << 20
		s, err := New(Config{Handler: echoHandler{}, Compression: true, MaxMessageSize: budget / 2,
			ReassemblyBytes: budget, MaxOutboundBytes: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		l := newLoop(s)
		tr := &fakeTransport{}
		c, ok := s.admit(l, tr)
		if !ok {
			t.Fatal("not admitted")
		}
		var pending []byte
		for i := 0; len(stream) > 0 && !tr.closed; i++ {
			n := len(stream)
			if len(splits) > 0 {
				n = min(n, 1+int(splits[i%len(splits)]))
			}
			pending = append(pending, stream[:n]...)
			stream = stream[n:]
			used := c.onData(pending)
			pending = pending[used:]
			c.flush()
			if c.reasm != nil && c.reasm.Reserved() > budget {
				t.Fatalf("reassembly reserves %d bytes, budget %d", c.reasm.Reserved(), budget)
			}
			if len(pending) > s.cfg.MaxFrameSize {
				t.Fatalf("%d bytes of a partial frame kept, max frame %d", len(pending), s.cfg.MaxFrameSize)
			}
		}
		// What the server wrote decodes, and ends with the reason it closed.
		d := codec.Decoder{MaxFrameSize: protocol.HardMaxFrameSize, Compression: true}
		var last codec.Frame
		for out := tr.out; len(out) > 0; {
			fr, n, err := d.Decode(out)
			if err != nil {
				t.Fatalf("server wrote an invalid frame: %v", err)
			}
			last, out = fr, out[n:]
		}
		if tr.closed && last.Type == protocol.FrameError {
			if !last.Code.Known() || last.Code.Scope() == protocol.ScopeRequest {
				t.Fatalf("closed with %s", last.Code)
			}
		}
		c.onClosed()
		if c.Queued() != 0 && !errors.Is(c.Send(&echoFrame), ErrClosed) {
			t.Fatal("a closed connection accepted a message")
		}
	})
}

var echoFrame = codec.Frame{Type: protocol.FrameData, Lane: 1, Payload: []byte("x")}

// FuzzResume is stateful: a first connection handshakes, receives reliable
// messages from its session, and then gets arbitrary bytes (ACKs, reliable
// frames, anything); it ends, the session sends more while detached, and a
// second connection resumes with the first one's SessionID, a token that
// may be damaged, and arbitrary Received positions, then gets more bytes.
// It checks: no panic; everything written is valid FERRY/1; closes carry
// defined connection-scope codes; and on a resume the server's reliable
// frames on each lane run on, one by one, from above what the peer said
// it received, with no Seq written twice on that connection.
func FuzzResume(f *testing.F) {
	ack := codec.Frame{Type: protocol.FrameAck, AckLane: 1, Cumulative: 2}
	rel := codec.Frame{Type: protocol.FrameData, Flags: protocol.FlagReliable, Lane: 2, Route: 1, Seq: 1, Payload: []byte("c")}
	f.Add(ack.Append(rel.Append(nil)), []byte{}, uint8(4), uint64(2), uint64(0), false)
	f.Add([]byte{}, rel.Append(nil), uint8(9), uint64(9), uint64(1), true)
	f.Add(ack.Append(nil), ack.Append(nil), uint8(0), uint64(1), uint64(3), false)
	f.Fuzz(func(t *testing.T, first, second []byte, n uint8, recv1, recv2 uint64, damage bool) {
		s, err := New(Config{Handler: echoHandler{}, Compression: true, MaxOutboundBytes: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		l := newLoop(s)
		tr1 := &fakeTransport{}
		c1, _ := s.admit(l, tr1)
		c1.onData(codec.AppendHello(nil, &codec.Hello{Version: 1, ClientID: []byte("f"), ReceiveMax: 8}))
		c1.flush()
		sess := c1.Session()
		send := func(k int) {
			for i := range k {
				m := codec.Frame{Type: protocol.FrameData, Flags: protocol.FlagReliable, Lane: protocol.Lane(1 + i%3), Route: 1, Payload: []byte("s")}
				_ = sess.Send(&m)
			}
		}
		send(int(n % 32))
		c1.onWake()
		c1.flush()
		c1.onData(first)
		c1.flush()
		w := welcomeOf(t, tr1.out)
		c1.shutdown()
		c1.onClosed()
		send(int(n / 32))
		if len(w.SessionID) == 0 {
			return
		}
		token := append([]byte(nil), w.ResumeToken...)
		if damage {
			token[0] ^= 1
		}
		h := codec.Hello{Version: 1, ClientID: []byte("f"), SessionID: w.SessionID, ResumeToken: token, Received: [3]uint64{recv1 % 64, recv2 % 64, 0}}
		tr2 := &fakeTransport{}
		c2, _ := s.admit(l, tr2)
		c2.onData(codec.AppendHello(nil, &h))
		c2.flush()
		if !tr2.closed {
			c2.onData(second)
			c2.flush()
		}
		checkResumeOutput(t, tr2.out, h.Received)
		c2.onClosed()
	})
}

// welcomeOf returns the WELCOME at the start of what the server wrote.
func welcomeOf(t *testing.T, out []byte) codec.Welcome {
	d := codec.Decoder{MaxFrameSize: protocol.HardMaxFrameSize, Compression: true}
	fr, _, err := d.Decode(out)
	if err != nil || fr.Type != protocol.FrameWelcome {
		t.Fatalf("first frame %s %v", fr.Type, err)
	}
	w, err := codec.ParseWelcome(fr.Payload)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// checkResumeOutput decodes what the server wrote on the resuming
// connection and checks the SPEC §12.8 invariants.
func checkResumeOutput(t *testing.T, out []byte, received [3]uint64) {
	d := codec.Decoder{MaxFrameSize: protocol.HardMaxFrameSize, Compression: true}
	var next [3]uint64
	resumed := false
	for len(out) > 0 {
		fr, n, err := d.Decode(out)
		if err != nil {
			t.Fatalf("server wrote an invalid frame: %v", err)
		}
		out = out[n:]
		switch {
		case fr.Type == protocol.FrameWelcome:
			w, err := codec.ParseWelcome(fr.Payload)
			if err != nil {
				t.Fatal(err)
			}
			resumed = w.SessionPresent
		case fr.Type == protocol.FrameError:
			if !fr.Code.Known() || fr.Code.Scope() == protocol.ScopeRequest {
				t.Fatalf("closed with %s", fr.Code)
			}
		case fr.Type.IsMessage() && fr.Flags.Has(protocol.FlagReliable):
			i := fr.Lane - 1
			if next[i] == 0 {
				next[i] = fr.Seq
				// (A peer that says it received less than it had
				// acknowledged gets the replay from its ACK on: what it
				// acknowledged was released.)
				if resumed && fr.Seq <= received[i] {
					t.Fatalf("lane %d: Seq %d replayed though the peer received %d", fr.Lane, fr.Seq, received[i])
				}
			} else if fr.Seq != next[i] {
				t.Fatalf("lane %d: Seq %d, want %d", fr.Lane, fr.Seq, next[i])
			}
			next[i]++
		}
	}
}
