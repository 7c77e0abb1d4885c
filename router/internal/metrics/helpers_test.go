package metrics

import (
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/ferry-proto/ferry/codec"
	"github.com/ferry-proto/ferry/protocol"
	"github.com/ferry-proto/ferry/reactor"
)

// nopHandler accepts every HELLO and ignores everything else.
type nopHandler struct{}

func (nopHandler) OnHello(*reactor.Conn, *codec.Hello) (string, protocol.ErrorCode) {
	return "", protocol.CodeOK
}
func (nopHandler) OnOpen(*reactor.Conn)                      {}
func (nopHandler) OnMessage(*reactor.Conn, *codec.Frame)     {}
func (nopHandler) OnClose(*reactor.Conn, protocol.ErrorCode) {}

// startServer starts a real server on a loopback port, closed at cleanup.
func startServer(t *testing.T) *reactor.Server {
	t.Helper()
	srv, err := reactor.New(reactor.Config{Addr: "127.0.0.1:0", Handler: nopHandler{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

// handshake dials srv, sends HELLO and reads the WELCOME. The connection is
// closed at cleanup (or earlier by the test).
func handshake(t *testing.T, srv *reactor.Server) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	if err := nc.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Write(codec.AppendHello(nil, &codec.Hello{Version: protocol.Version})); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, protocol.LengthSize, 256)
	if _, err := io.ReadFull(nc, buf); err != nil {
		t.Fatalf("reading WELCOME length: %v", err)
	}
	n := int(binary.BigEndian.Uint32(buf))
	if n < protocol.MinLength || n > 4096 {
		t.Fatalf("WELCOME length %d", n)
	}
	buf = append(buf, make([]byte, n)...)
	if _, err := io.ReadFull(nc, buf[protocol.LengthSize:]); err != nil {
		t.Fatalf("reading WELCOME body: %v", err)
	}
	d := codec.NewDecoder()
	f, used, err := d.Decode(buf)
	if err != nil || used != len(buf) {
		t.Fatalf("decoding WELCOME: used %d of %d, %v", used, len(buf), err)
	}
	if f.Type != protocol.FrameWelcome {
		t.Fatalf("got %v, want WELCOME", f.Type)
	}
	if err := nc.SetDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	return nc
}

// value returns the value of the series name{label=lv} (no label: pass
// label ""), and whether it was exported.
func value(t *testing.T, g prometheus.Gatherer, name, label, lv string) (float64, bool) {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label != "" && !hasLabel(m, label, lv) {
				continue
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue(), true
			case m.Gauge != nil:
				return m.Gauge.GetValue(), true
			}
		}
	}
	return 0, false
}

func hasLabel(m *dto.Metric, name, v string) bool {
	for _, lp := range m.GetLabel() {
		if lp.GetName() == name && lp.GetValue() == v {
			return true
		}
	}
	return false
}

// waitFor polls cond until it holds or 5 s pass: the reactor counts a close
// on its event loop, some time after the client's socket is closed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
