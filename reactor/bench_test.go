package reactor

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/ferry-proto/ferry/codec"
	"github.com/ferry-proto/ferry/internal/wiretest"
	"github.com/ferry-proto/ferry/protocol"
	"github.com/ferry-proto/ferry/reactor/internal/loadgen"
	"github.com/ferry-proto/ferry/reactor/internal/rawecho"
)

// echoHandler is the lean handler the benchmarks use: it echoes every DATA
// on the loop and keeps no state.
type echoHandler struct{}

func (echoHandler) OnHello(*Conn, *codec.Hello) (string, protocol.ErrorCode) {
	return "", protocol.CodeOK
}
func (echoHandler) OnOpen(*Conn)                      {}
func (echoHandler) OnClose(*Conn, protocol.ErrorCode) {}
func (echoHandler) OnMessage(c *Conn, f *codec.Frame) {
	switch {
	case f.Type != protocol.FrameData || f.Flags.Has(protocol.FlagResponse):
	case f.Corr != 0:
		_ = c.ReplyOnLoop(f, f.Payload)
	default:
		r := codec.Frame{Type: protocol.FrameData, Lane: f.Lane, Route: f.Route, Payload: f.Payload}
		_ = c.SendOnLoop(&r)
	}
}

// ferryHandshake sends HELLO and waits for WELCOME on a benchmark client.
func ferryHandshake(nc net.Conn) error {
	h := codec.Hello{Version: protocol.Version}
	if _, err := nc.Write(codec.AppendHello(nil, &h)); err != nil {
		return err
	}
	var hdr [4]byte
	if _, err := io.ReadFull(nc, hdr[:]); err != nil {
		return err
	}
	body := make([]byte, binary.BigEndian.Uint32(hdr[:]))
	if _, err := io.ReadFull(nc, body); err != nil {
		return err
	}
	if protocol.FrameType(body[0]) != protocol.FrameWelcome {
		return fmt.Errorf("handshake: got %s", protocol.FrameType(body[0]))
	}
	return nil
}

// ferryEncode appends one DATA request on lane 1.
func ferryEncode(dst []byte, seq uint32, payload []byte) []byte {
	f := codec.Frame{Type: protocol.FrameData, Lane: protocol.LaneInteractive, Route: echoRoute, Corr: seq | 1, Payload: payload}
	return f.Append(dst)
}

// BenchmarkEcho: 1 KiB request/response, 100 connections, 16 requests in
// flight on each, client and server sharing this machine. Compare the
// sub-benchmarks of one run: ferry on gnet, ferry on netpoll, and a bare
// gnet length-prefixed echo with no protocol at all (the ceiling).
func BenchmarkEcho(b *testing.B) {
	const conns, depth, size = 100, 16, 1024
	run := func(b *testing.B, addr string, cfg loadgen.Config) {
		cfg.Addr, cfg.Conns, cfg.Depth, cfg.Size = addr, conns, depth, size
		b.SetBytes(size)
		b.ReportAllocs()
		b.ResetTimer()
		res, err := loadgen.Run(context.Background(), cfg, b.N)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(res.MsgsPerSec(), "msgs/s")
	}
	for _, eng := range benchEngines() {
		b.Run("ferry-"+eng, func(b *testing.B) {
			s := startBenchServer(b, eng, Config{Handler: echoHandler{}})
			run(b, s.Addr(), loadgen.Config{Handshake: ferryHandshake, Encode: ferryEncode, Decode: loadgen.RawDecode})
		})
	}
	b.Run("raw-gnet", func(b *testing.B) {
		s, err := rawecho.Start("127.0.0.1:0", runtime.GOMAXPROCS(0))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = s.Stop() })
		run(b, s.Addr(), loadgen.Config{Encode: loadgen.RawEncode, Decode: loadgen.RawDecode})
	})
}

// benchEngines lists the engines this build offers.
func benchEngines() []string {
	var out []string
	for _, e := range []string{"gnet", "netpoll"} {
		if _, err := New(Config{Engine: e, Handler: echoHandler{}}); err == nil {
			out = append(out, e)
		}
	}
	return out
}

func startBenchServer(b *testing.B, eng string, cfg Config) *Server {
	cfg.Engine = eng
	cfg.Addr = "127.0.0.1:0"
	s, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

// BenchmarkIdleConns: what the server holds per connection once it has
// answered HELLO, at 10,000 idle connections. The clients run in a child
// process (the per-process file limit here is 20,000), and the server's
// heap and stacks are read from this one after a GC. Run with -benchtime=1x.
func BenchmarkIdleConns(b *testing.B) {
	n := 10_000
	if v, err := strconv.Atoi(os.Getenv("FERRY_IDLE_CONNS")); err == nil && v > 0 {
		n = v
	}
	for _, eng := range benchEngines() {
		b.Run(eng, func(b *testing.B) {
			s := startBenchServer(b, eng, Config{Handler: echoHandler{}, MaxConns: n + 100, HandshakeTimeout: time.Minute,
				Heartbeat: HeartbeatProfile{Default: 10 * time.Minute, Min: time.Second, Max: 20 * time.Minute}})
			before := serverMem()
			child := wiretest.StartChild(b, "TestIdleClientProcess", "FERRY_IDLE_CLIENT="+s.Addr()+","+strconv.Itoa(n))
			defer child.Stop()
			child.WaitLine(b, "READY")
			wiretest.WaitUntil(b, "handshakes", 2*time.Minute, func() bool { return s.Counters().Handshakes.Load() >= uint64(n) })
			after := serverMem()
			perConn := float64(after-before) / float64(n)
			for b.Loop() {
			}
			b.ReportMetric(perConn, "B/conn")
			b.ReportMetric(float64(n), "conns")
		})
	}
}

func serverMem() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc + m.StackInuse
}

// TestIdleClientProcess is the child of BenchmarkIdleConns; it does
// nothing unless FERRY_IDLE_CLIENT is set.
func TestIdleClientProcess(t *testing.T) {
	addr, n, ok := wiretest.ChildSpec("FERRY_IDLE_CLIENT")
	if !ok {
		t.Skip("child process of BenchmarkIdleConns")
	}
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range n {
		// Several source addresses keep clear of the ephemeral port range.
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i%8))}, Timeout: 10 * time.Second}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		if err := ferryHandshake(c); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
	}
	fmt.Println("READY")
	wiretest.AwaitParent()
}

// BenchmarkLaneLatency: the delay of 64-byte lane-1 messages sent every
// 500 µs while a 64 MiB lane-3 message streams to the same client, with
// lanes (this design) and with one FIFO queue (the baseline). Reported as
// percentiles over all iterations, from the server's Send to the client's
// read; the client reads as fast as it can.
func BenchmarkLaneLatency(b *testing.B) {
	bulk := make([]byte, 64<<20)
	for _, mode := range []string{"lanes", "fifo"} {
		b.Run(mode, func(b *testing.B) {
			h := newTestHandler()
			cfg := Config{Handler: h, FIFO: mode == "fifo", MaxOutboundBytes: 256 << 20, HighWatermark: 256 << 20}
			s := startBenchServer(b, "gnet", cfg)
			hist := hdrhistogram.New(1, int64(time.Minute/time.Microsecond), 3)
			for b.Loop() {
				laneLatencyRound(b, s, h, bulk, hist)
			}
			b.ReportMetric(float64(hist.ValueAtQuantile(99))/1000, "p99-ms")
			b.ReportMetric(float64(hist.ValueAtQuantile(50))/1000, "p50-ms")
			b.ReportMetric(float64(hist.Max())/1000, "max-ms")
			b.ReportMetric(float64(hist.TotalCount())/float64(b.N), "pings/op")
		})
	}
}

func laneLatencyRound(b *testing.B, s *Server, h *testHandler, bulk []byte, hist *hdrhistogram.Histogram) {
	nc, err := net.Dial("tcp", s.Addr())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	hello := codec.Hello{Version: 1, MaxMessageSize: protocol.HardMaxMessageSize}
	if _, err := nc.Write(codec.AppendHello(nil, &hello)); err != nil {
		b.Fatal(err)
	}
	var sc *Conn
	select {
	case sc = <-h.opened:
	case <-time.After(10 * time.Second):
		b.Fatal("no OnOpen")
	}
	var pings atomic.Int64 // lane-1 messages sent
	bulkDone := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- readLanes(nc, s.epoch, len(bulk), &pings, bulkDone, hist) }()
	if err := sc.Send(&codec.Frame{Type: protocol.FrameData, Lane: 3, Route: 3, Payload: bulk}); err != nil {
		b.Fatal(err)
	}
	var p [64]byte
	tick := time.NewTicker(500 * time.Microsecond)
	defer tick.Stop()
	for {
		select {
		case <-bulkDone:
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			return
		case <-tick.C:
			binary.BigEndian.PutUint64(p[:], uint64(time.Since(s.epoch)))
			if sc.Send(&codec.Frame{Type: protocol.FrameData, Lane: 1, Route: 1, Payload: p[:]}) == nil {
				pings.Add(1)
			}
		}
	}
}

// readLanes reads until the bulk message is complete and every lane-1
// message sent before then has arrived, recording each one's delay.
func readLanes(nc net.Conn, epoch time.Time, bulk int, pings *atomic.Int64, bulkDone chan struct{}, hist *hdrhistogram.Histogram) error {
	_ = nc.SetReadDeadline(time.Now().Add(2 * time.Minute))
	d := codec.Decoder{MaxFrameSize: protocol.HardMaxFrameSize}
	buf := make([]byte, 4<<20)
	start, end := 0, 0
	got, seen := 0, int64(0)
	for got < bulk || seen < pings.Load() {
		f, n, err := d.Decode(buf[start:end])
		if errors.Is(err, codec.ErrNeedMore) {
			if start > 0 { // compact, then read into the free tail
				end = copy(buf, buf[start:end])
				start = 0
			}
			m, rerr := nc.Read(buf[end:])
			if rerr != nil {
				return rerr
			}
			end += m
			continue
		}
		if err != nil {
			return err
		}
		start += n
		switch {
		case f.Type == protocol.FrameData && f.Lane == 1:
			sent := time.Duration(binary.BigEndian.Uint64(f.Payload))
			_ = hist.RecordValue(int64((time.Since(epoch) - sent) / time.Microsecond))
			seen++
		case f.Type == protocol.FrameData && f.Lane == 3:
			got += len(f.Payload)
			if got == bulk {
				close(bulkDone) // the sender stops; pings already sent are still read
			}
		}
	}
	return nil
}

// BenchmarkSendMany: 8 goroutines push 64-byte messages to 100 connections
// with Conn.Send (the path of a fan-out or a game tick from outside the
// loops); 100 client goroutines read and count. Sends share wake-ups, so
// most cost a lock and an append.
func BenchmarkSendMany(b *testing.B) {
	for _, eng := range benchEngines() {
		b.Run(eng, func(b *testing.B) {
			h := newTestHandler()
			s := startBenchServer(b, eng, Config{Handler: h, MaxOutboundBytes: 64 << 20, HighWatermark: 64 << 20})
			const conns, producers = 100, 8
			servers := make([]*Conn, 0, conns)
			readers := make(chan int64, conns)
			var clients []net.Conn
			for range conns {
				nc, err := net.Dial("tcp", s.Addr())
				if err != nil {
					b.Fatal(err)
				}
				clients = append(clients, nc)
				if err := ferryHandshake(nc); err != nil {
					b.Fatal(err)
				}
				servers = append(servers, <-h.opened)
			}
			per := b.N/(conns) + 1
			for _, nc := range clients {
				go func() { readers <- countFrames(nc, per) }()
			}
			payload := make([]byte, 64)
			b.ReportAllocs()
			b.ResetTimer()
			done := make(chan struct{})
			for p := range producers {
				go func() {
					defer func() { done <- struct{}{} }()
					f := codec.Frame{Type: protocol.FrameData, Lane: 1, Route: 1, Payload: payload}
					for i := p; i < conns; i += producers {
						for range per {
							if err := servers[i].Send(&f); err != nil {
								panic(err)
							}
						}
					}
				}()
			}
			for range producers {
				<-done
			}
			for range conns {
				<-readers
			}
			b.StopTimer()
			b.ReportMetric(float64(per*conns)/b.Elapsed().Seconds(), "msgs/s")
			for _, nc := range clients {
				nc.Close()
			}
		})
	}
}

// countFrames reads n frames from nc and returns how many bytes it read.
func countFrames(nc net.Conn, n int) int64 {
	r := bufio.NewReaderSize(nc, 64<<10)
	var hdr [4]byte
	var total int64
	buf := make([]byte, 64<<10)
	for range n {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return total
		}
		l := int(binary.BigEndian.Uint32(hdr[:]))
		if _, err := io.ReadFull(r, buf[:l]); err != nil {
			return total
		}
		total += int64(4 + l)
	}
	return total
}

// BenchmarkConnCore is the server's own work per message, without the
// kernel: 16 pipelined 1 KiB requests handed to the connection core at a
// time, as one read would, echoed and flushed with one writev, as under
// ferry-peers echo-load. An op is one message.
func BenchmarkConnCore(b *testing.B) {
	s, err := New(Config{Handler: echoHandler{}})
	if err != nil {
		b.Fatal(err)
	}
	l := newLoop(s)
	tr := &fakeTransport{discard: true}
	c, ok := s.admit(l, tr)
	if !ok {
		b.Fatal("not admitted")
	}
	c.onData(codec.AppendHello(nil, &codec.Hello{Version: protocol.Version}))
	c.flush()
	const depth = 16
	var batch []byte
	payload := make([]byte, 1024)
	for i := range depth {
		batch = ferryEncode(batch, uint32(i), payload)
	}
	b.SetBytes(1024)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += depth {
		if c.onData(batch) != len(batch) {
			b.Fatal("partial batch")
		}
		c.flush()
	}
	b.StopTimer()
	if c.state != stateOpen || tr.written == 0 {
		b.Fatalf("state %d, %d bytes written", c.state, tr.written)
	}
}
