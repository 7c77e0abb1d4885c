package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/ferry-proto/ferry/codec"
	"github.com/ferry-proto/ferry/protocol"
)

// echoConfig is one echo-load run: a pipelined FERRY/1 echo load on bare
// sockets, the way reactor/internal/loadgen loads the reactor, so that the
// server and not the load generator is what runs out of CPU first.
// ferry-bench's echo drives the full Go client (four goroutines and a
// handful of channel operations per request), which on one core saturates
// well before any of the servers does.
type echoConfig struct {
	Addr     string
	Conns    int
	Depth    int // requests in flight per connection
	Size     int // payload bytes, at least 8 (the send time)
	Duration time.Duration
	Lane     protocol.Lane
}

// echoRoute is ferryd's echo route (the peers answer any route).
const echoRoute = 1

// runEchoLoad opens Conns connections, runs the handshake on each, then
// keeps Depth requests in flight on each for Duration. Each connection's
// goroutine refills its pipeline with one write for all the requests it
// owes and counts the responses in what it reads. Latency runs from the
// send time carried in the payload to the arrival of the response.
func runEchoLoad(ctx context.Context, cfg echoConfig) (*benchResult, error) {
	if cfg.Conns < 1 || cfg.Depth < 1 || cfg.Duration <= 0 {
		return nil, errors.New("echo-load: --conns and --depth must be at least 1, --duration positive")
	}
	cfg.Size = max(cfg.Size, 8)
	if cfg.Lane == 0 {
		cfg.Lane = protocol.LaneNormal
	}
	epoch := time.Now()

	conns := make([]net.Conn, 0, cfg.Conns)
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	connectStart := time.Now()
	d := net.Dialer{Timeout: 10 * time.Second}
	for i := range cfg.Conns {
		c, err := d.DialContext(ctx, "tcp", cfg.Addr)
		if err == nil {
			err = echoHandshake(c)
		}
		if err != nil {
			if c != nil {
				_ = c.Close()
			}
			return nil, fmt.Errorf("echo-load: connection %d: %w", i, err)
		}
		conns = append(conns, c)
	}
	connectS := time.Since(connectStart).Seconds()

	// The request, built once: a DATA request on route 1 whose payload
	// starts with the send time; each send patches Corr and the time.
	tmpl := codec.Frame{Type: protocol.FrameData, Lane: cfg.Lane, Route: echoRoute, Corr: 1, Payload: make([]byte, cfg.Size)}
	req := tmpl.Append(nil)
	corrAt := protocol.HeaderSize + 4
	stampAt := len(req) - cfg.Size

	var (
		msgs, errs atomic.Int64
		refused    atomic.Int64 // requests answered with a RESULT
		stopping   atomic.Bool
		wg         sync.WaitGroup
		hists      = make([]*hdrhistogram.Histogram, len(conns))
		firstErr   error
		errOnce    sync.Once
	)
	tctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	stopClose := context.AfterFunc(tctx, func() {
		stopping.Store(true)
		for _, c := range conns {
			_ = c.SetDeadline(time.Unix(1, 0))
		}
	})
	defer stopClose()
	cpu0 := cpuTime()
	tStart := time.Now()
	for i, c := range conns {
		h := hdrhistogram.New(histMin, histMax, histSigFigs)
		hists[i] = h
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := echoConn(c, cfg.Depth, req, corrAt, stampAt, epoch, h, &msgs, &refused, &stopping)
			if err != nil && !stopping.Load() {
				errs.Add(1)
				errOnce.Do(func() { firstErr = err })
			}
		}()
	}
	<-tctx.Done()
	window := time.Since(tStart)
	msgsEnd := msgs.Load()
	clientCPU := (cpuTime() - cpu0).Seconds()
	wg.Wait()

	merged := hdrhistogram.New(histMin, histMax, histSigFigs)
	for _, h := range hists {
		merged.Merge(h)
	}
	res := &benchResult{
		Scenario: "echo-pipelined", Addr: cfg.Addr, Connections: cfg.Conns, DurationS: window.Seconds(),
		Size: cfg.Size, Loop: "closed",
		Msgs: msgsEnd, MsgsPerSec: float64(msgsEnd) / window.Seconds(),
		MBPerSec: float64(msgsEnd) * float64(cfg.Size) / window.Seconds() / 1e6,
		Errors:   errs.Load() + refused.Load(), ConnectS: connectS, ConnectsPerSec: float64(cfg.Conns) / connectS,
		ClientCPUS: clientCPU,
	}
	p := percentilesOf(merged)
	res.percentiles = p
	res.Series = []series{{Name: "echo", PerSec: float64(p.Count) / window.Seconds(), percentiles: p}}
	if firstErr != nil {
		res.Notes = append(res.Notes, "error seen: "+firstErr.Error())
	}
	return res, nil
}

// echoHandshake sends HELLO and reads the answer, which must be WELCOME.
// It reads exactly the WELCOME frame, nothing after it.
func echoHandshake(c net.Conn) error {
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(codec.AppendHello(nil, &codec.Hello{Version: protocol.Version})); err != nil {
		return err
	}
	var hdr [protocol.LengthSize]byte
	if _, err := readFull(c, hdr[:]); err != nil {
		return err
	}
	n, err := frameSize(hdr[:])
	if err != nil {
		return err
	}
	f := make([]byte, n)
	copy(f, hdr[:])
	if _, err := readFull(c, f[protocol.LengthSize:]); err != nil {
		return err
	}
	if protocol.FrameType(f[4]) != protocol.FrameWelcome {
		return fmt.Errorf("got %v instead of WELCOME", protocol.FrameType(f[4]))
	}
	_, err = codec.ParseWelcome(f[protocol.HeaderSize:])
	return err
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		k, err := c.Read(b[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// echoConn keeps depth requests in flight on c until it fails or stopping
// is set (the deadline then fails its Read or Write). Responses count and
// their latencies go into h; a PING from the server is answered in the
// next write; a RESULT counts in refused; anything else the server sends
// is skipped.
func echoConn(c net.Conn, depth int, req []byte, corrAt, stampAt int, epoch time.Time, h *hdrhistogram.Histogram,
	msgs, refused *atomic.Int64, stopping *atomic.Bool) error {
	wbuf := make([]byte, 0, depth*len(req)+64)
	rbuf := make([]byte, 256<<10)
	var corr uint32
	var pongs []byte
	inflight, r, e := 0, 0, 0 // rbuf[r:e] is read but not yet decoded
	for !stopping.Load() {
		b := append(wbuf[:0], pongs...)
		pongs = pongs[:0]
		now := uint64(time.Since(epoch))
		for ; inflight < depth; inflight++ {
			corr++
			if corr == 0 {
				corr = 1
			}
			k := len(b)
			b = append(b, req...)
			binary.BigEndian.PutUint32(b[k+corrAt:], corr)
			binary.BigEndian.PutUint64(b[k+stampAt:], now)
		}
		wbuf = b
		if len(b) > 0 {
			if _, err := c.Write(b); err != nil {
				return err
			}
		}
		// Read until at least one request is answered: by a response
		// (counted) or by a RESULT refusing it (not counted).
		got, done := 0, 0
		for done == 0 {
			if e == len(rbuf) {
				if r == 0 {
					return errors.New("echo-load: frame larger than the read buffer")
				}
				e = copy(rbuf, rbuf[r:e])
				r = 0
			}
			k, err := c.Read(rbuf[e:])
			e += k
			if err != nil {
				return err
			}
			at := int64(time.Since(epoch))
			for {
				n, err := frameLen(rbuf[r:e])
				if err != nil {
					return err
				}
				if n == 0 {
					break
				}
				f := rbuf[r : r+n]
				r += n
				switch protocol.FrameType(f[4]) {
				case protocol.FrameData:
					if protocol.Flags(f[5])&protocol.FlagResponse == 0 || len(f) < stampAt+8 {
						continue
					}
					sent := int64(binary.BigEndian.Uint64(f[stampAt:]))
					_ = h.RecordValue(min(max(at-sent, histMin), histMax))
					got++
					done++
				case protocol.FrameResult:
					refused.Add(1)
					done++
				case protocol.FramePing:
					f[4] = byte(protocol.FramePong)
					pongs = append(pongs, f...)
				}
			}
			if r == e {
				r, e = 0, 0
			}
		}
		inflight -= done
		msgs.Add(int64(got))
	}
	return nil
}
