package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferry-proto/ferry/protocol"
)

// Echo on bare sockets (Config.Light). The full client spends over 10 µs
// of CPU per request (11–14 µs in the run docs/BENCHMARKS.md records:
// goroutines, channel operations, a request table); a light connection
// spends a share of one write and one read: Inflight requests go out in
// one write, and every response one read brings is counted in place. With
// that, the server and not the load generator is what runs out of CPU
// first.

// maxLightSize is the largest payload --light sends: FERRY/1 senders (ferryd,
// the Go client) cut larger messages into fragments (SPEC §10), which a
// light connection does not reassemble.
const maxLightSize = protocol.DefaultFragmentSize

// A light echo request is a DATA request on route RouteEcho (SPEC §6.1),
// no flags, whose payload starts with its send time:
//
//	+---------+------+-------+------+----------+---------+--------------------+-----------+
//	| Length  | Type | Flags | Lane | Route 32 | Corr 32 | send time 64 (ns)  | fill ...  |
//	+---------+------+-------+------+----------+---------+--------------------+-----------+
//	  0         4      5       6      7          11        15                   23
//
// Each send patches Corr and the send time in place.
const (
	echoCorrAt  = protocol.HeaderSize + 4
	echoStampAt = protocol.HeaderSize + 8
	// lightStampSize is the head of a light echo payload: the send time,
	// nanoseconds since the run's epoch, big-endian.
	lightStampSize = 8
)

// appendEchoRequest appends a light echo request with payload on lane
// (Corr 1, patched by each send).
func appendEchoRequest(b []byte, lane protocol.Lane, payload []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(protocol.MinLength+8+len(payload)))
	b = append(b, byte(protocol.FrameData), 0, byte(lane))
	b = binary.BigEndian.AppendUint32(b, RouteEcho)
	b = binary.BigEndian.AppendUint32(b, 1)
	return append(b, payload...)
}

// runLightEcho: Conns light connections (HELLO, WELCOME, a PING, as idle
// opens them), one goroutine each keeping Inflight requests in flight. A
// connection that fails (closed, an ERROR, a frame that is not an answer)
// counts one error and ends; the others go on, and the traffic window ends
// early when none is left.
func runLightEcho(ctx context.Context, r *run) error {
	cfg := r.cfg
	hello := appendHello(nil, cfg.Heartbeat, false)
	req := appendEchoRequest(nil, cfg.Lane, r.payload(cfg.Size))
	conns := make([]*lightConn, cfg.Conns)
	defer func() {
		for _, lc := range conns {
			if lc != nil {
				_ = lc.tc.Close()
			}
		}
	}()
	_, err := r.connectAll(ctx, cfg.Conns, false, func(ctx context.Context, i int) error {
		lc, err := dialLight(ctx, r.dial.netDialer(i), cfg.Addr, hello)
		if err != nil {
			return err
		}
		conns[i] = lc
		if len(req) > lc.maxFrame {
			return fmt.Errorf("bench: a request of %d bytes exceeds the server's max frame size, %d (--light does not fragment)", len(req), lc.maxFrame)
		}
		return nil
	})
	if err != nil {
		return err
	}

	rec := NewRecorder(shards(cfg.Conns))
	var (
		stopping atomic.Bool
		wg       sync.WaitGroup
		allDone  = make(chan struct{})
	)
	tctx, cancel := r.beginTraffic(ctx)
	defer cancel()
	for i, lc := range conns {
		p := newEchoPipe(lc.tc, req, cfg.Inflight, r.epoch)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.run(r, rec, i, &stopping); err != nil && !stopping.Load() {
				r.fail(err)
				r.conns.Add(-1)
				_ = lc.tc.Close()
			}
		}()
	}
	go func() { wg.Wait(); close(allDone) }()
	early := false
	select {
	case <-tctx.Done():
	case <-allDone:
		early = ctx.Err() == nil
	}
	r.endTraffic(ctx)
	// A deadline in the past ends every Read and Write still waiting.
	stopping.Store(true)
	for _, lc := range conns {
		_ = lc.tc.SetDeadline(time.Unix(1, 0))
	}
	<-allDone
	if early {
		r.res.note("every connection ended after %s of %s", r.window().Round(time.Millisecond), cfg.Duration)
	}
	r.res.Lane = int(cfg.Lane)
	r.res.addSeries("echo", rec.Merged(), r.window())
	return nil
}

// pongRoom is the space kept in front of the requests in echoPipe.wbuf, so
// that PONGs owed go out in the same write: four PONGs.
const pongRoom = 4 * (protocol.HeaderSize + 8)

// echoPipe is one light connection's request pipeline. Only the goroutine
// that runs it touches it.
type echoPipe struct {
	c      net.Conn
	epoch  time.Time
	depth  int
	reqLen int
	lane   byte

	wbuf  []byte // pongRoom bytes, then depth copies of the request
	pongs []byte // PONGs owed to the server's PINGs (SPEC §7.1)

	rbuf     []byte // rbuf[r:e] is read and not yet parsed
	r, e     int
	corr     uint32
	inflight int

	// What the last await found: the latency of each response, the
	// requests refused with a RESULT and the last refusal's code.
	lat     []int64
	refused int
	code    protocol.ErrorCode
}

// newEchoPipe prepares c to keep depth copies of req in flight; send times
// count from epoch.
func newEchoPipe(c net.Conn, req []byte, depth int, epoch time.Time) *echoPipe {
	p := &echoPipe{c: c, epoch: epoch, depth: depth, reqLen: len(req), lane: req[6]}
	p.wbuf = make([]byte, pongRoom, pongRoom+depth*len(req))
	for range depth {
		p.wbuf = append(p.wbuf, req...)
	}
	// Room for every answer that can be outstanding, up to 256 KiB, and
	// for the largest control frame besides: every frame the pipe accepts
	// fits (SPEC §3.2: a RESULT is at most 1,039 bytes).
	p.rbuf = make([]byte, min(depth*len(req), 256<<10)+4096)
	p.lat = make([]int64, 0, depth)
	return p
}

// run keeps the pipeline full until stopping is set or the connection
// fails; it counts answers into r and their latencies into rec.
func (p *echoPipe) run(r *run, rec *Recorder, key int, stopping *atomic.Bool) error {
	size := p.reqLen - echoStampAt
	noted := protocol.ErrorCode(0xFFFF)
	for !stopping.Load() {
		if err := p.step(); err != nil {
			return err
		}
		if n := len(p.lat); n > 0 {
			rec.recordNs(key, p.lat)
			r.done(int64(n), size)
		}
		if p.refused > 0 {
			r.errs.Add(int64(p.refused))
			if p.code != noted {
				noted = p.code
				r.seen(fmt.Errorf("bench: echo refused with RESULT %s", p.code))
			}
		}
	}
	return nil
}

// step sends the requests the pipeline lacks, in one write with the PONGs
// owed, then reads until at least one request is answered. The answers
// are in p.lat and p.refused.
func (p *echoPipe) step() error {
	if err := p.refill(int64(time.Since(p.epoch))); err != nil {
		return err
	}
	if err := p.await(); err != nil {
		return err
	}
	p.inflight -= len(p.lat) + p.refused
	return nil
}

// refill writes the PONGs owed and depth - inflight requests stamped now.
func (p *echoPipe) refill(now int64) error {
	start := pongRoom
	if n := len(p.pongs); n > 0 {
		if n <= pongRoom {
			start -= copy(p.wbuf[pongRoom-n:pongRoom], p.pongs)
		} else if _, err := p.c.Write(p.pongs); err != nil {
			return err
		}
		p.pongs = p.pongs[:0]
	}
	k := p.depth - p.inflight
	for j := range k {
		f := p.wbuf[pongRoom+j*p.reqLen:]
		p.corr++
		if p.corr == 0 {
			p.corr = 1 // SPEC §6.1: a request's Corr is not 0
		}
		binary.BigEndian.PutUint32(f[echoCorrAt:], p.corr)
		binary.BigEndian.PutUint64(f[echoStampAt:], uint64(now))
	}
	end := pongRoom + k*p.reqLen
	if end == start {
		return nil
	}
	p.inflight = p.depth
	_, err := p.c.Write(p.wbuf[start:end])
	return err
}

var (
	errTooManyAnswers = errors.New("bench: the server answered more requests than were sent")
	errReadBuffer     = errors.New("bench: a frame larger than the read buffer")
)

// await reads until at least one request is answered.
func (p *echoPipe) await() error {
	p.lat, p.refused = p.lat[:0], 0
	for len(p.lat)+p.refused == 0 {
		if p.e == len(p.rbuf) {
			if p.r == 0 {
				return errReadBuffer // parse lets no such frame through
			}
			p.e = copy(p.rbuf, p.rbuf[p.r:p.e])
			p.r = 0
		}
		n, err := p.c.Read(p.rbuf[p.e:])
		if n > 0 {
			p.e += n
			if perr := p.parse(int64(time.Since(p.epoch))); perr != nil {
				return perr
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// parse takes every complete frame in rbuf[r:e], read at time at. A
// response adds its latency, a RESULT counts a refused request, a PING
// owes a PONG, a PONG is dropped; anything else ends the connection, as
// does a frame of the wrong size (checked from the header, before the body
// is waited for, SPEC §3.2).
func (p *echoPipe) parse(at int64) error {
	for {
		b := p.rbuf[p.r:p.e]
		if len(b) < protocol.HeaderSize {
			break
		}
		l := binary.BigEndian.Uint32(b)
		// Our HELLO announced the default max frame size.
		if l < protocol.MinLength || l > protocol.DefaultMaxFrameSize-protocol.LengthSize {
			return fmt.Errorf("bench: frame length %d", l)
		}
		size := protocol.LengthSize + int(l)
		t, flags := protocol.FrameType(b[4]), protocol.Flags(b[5])
		switch t {
		case protocol.FrameData:
			switch {
			case flags != protocol.FlagResponse:
				return fmt.Errorf("bench: DATA with flags %s where a plain response was due (--light reads no other)", flags)
			case b[6] != p.lane:
				return fmt.Errorf("bench: response on lane %d to a request on lane %d", b[6], p.lane) // SPEC §6.1
			case size != p.reqLen:
				return errEchoMismatch
			}
		case protocol.FramePing, protocol.FramePong:
			if size != protocol.HeaderSize+8 {
				return fmt.Errorf("bench: %s of %d bytes", t, size) // SPEC §7.1: the body is 8 bytes
			}
		case protocol.FrameResult:
			// SPEC §7.6: Corr, Code, Reserved, then at most 1,024 bytes of
			// Detail.
			if size < protocol.HeaderSize+8 || size > protocol.HeaderSize+8+1024 {
				return fmt.Errorf("bench: RESULT of %d bytes", size)
			}
		case protocol.FrameError, protocol.FrameGoAway:
			if len(b) < protocol.HeaderSize+2 {
				return nil // the code is still to come
			}
			return closeError(t, b[protocol.HeaderSize:min(len(b), size)])
		default:
			return fmt.Errorf("bench: %s frame where an echo response was due", t)
		}
		if len(b) < size {
			break
		}
		f := b[:size]
		p.r += size
		switch t {
		case protocol.FrameData:
			if binary.BigEndian.Uint32(f[echoCorrAt:]) == 0 {
				return errors.New("bench: response with Corr 0") // SPEC §6.1
			}
			if len(p.lat)+p.refused == p.inflight {
				return errTooManyAnswers
			}
			p.lat = append(p.lat, at-int64(binary.BigEndian.Uint64(f[echoStampAt:])))
		case protocol.FramePing:
			f[4] = byte(protocol.FramePong) // the Opaque stays
			p.pongs = append(p.pongs, f...)
		case protocol.FrameResult:
			// A RESULT with Corr 0 is a notice and answers nothing.
			if binary.BigEndian.Uint32(f[protocol.HeaderSize:]) == 0 {
				continue
			}
			if len(p.lat)+p.refused == p.inflight {
				return errTooManyAnswers
			}
			p.refused++
			p.code = protocol.ErrorCode(binary.BigEndian.Uint16(f[protocol.HeaderSize+4:]))
		}
	}
	if p.r == p.e {
		p.r, p.e = 0, 0
	}
	return nil
}
