package reactor

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ferry-proto/ferry/codec"
	"github.com/ferry-proto/ferry/protocol"
)

// fakeTransport stands in for the socket: the connection core runs in
// process, with no engine and no goroutine, and everything it writes is
// kept for checking.
type fakeTransport struct {
	out    []byte
	closed bool
}

func (t *fakeTransport) Writev(bs [][]byte) error {
	for _, b := range bs {
		t.out = append(t.out, b...)
	}
	return nil
}
func (t *fakeTransport) Flush() error  { return nil }
func (t *fakeTransport) Buffered() int { return 0 }
func (t *fakeTransport) Wake()         {}
func (t *fakeTransport) Close()        { t.closed = true }

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
