package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// MaxResponse is the largest response Run accepts: its read buffer grows to
// hold one whole response, and no further.
const MaxResponse = 16 << 20

const (
	readBufSize      = 64 << 10
	dialTimeout      = 10 * time.Second
	handshakeTimeout = 10 * time.Second
)

// Errors from Run. A failed connection ends the whole run.
var (
	ErrConfig             = errors.New("loadgen: invalid config")
	ErrResponseTooLarge   = errors.New("loadgen: response too large")
	ErrUnexpectedResponse = errors.New("loadgen: response without a request in flight")
	ErrBadDecode          = errors.New("loadgen: Decode reported a length outside its input")
)

// Config describes one load run.
type Config struct {
	// Addr is the server's host:port.
	Addr string
	// Conns is the number of connections.
	Conns int
	// Depth is the number of requests kept in flight per connection.
	Depth int
	// Size is the payload length of each request in bytes.
	Size int
	// Handshake, if set, runs first on each connection, before the clock
	// starts (e.g. FERRY/1 HELLO/WELCOME). It must not read past the end of
	// the handshake: bytes it buffers are lost to the run. It gets at most
	// 10 s, less if the context ends sooner.
	Handshake func(net.Conn) error
	// Encode appends one request frame carrying payload to dst and returns
	// the extended slice. seq counts the connection's requests from 0.
	// payload is shared by all connections and must not be modified.
	Encode func(dst []byte, seq uint32, payload []byte) []byte
	// Decode reports the length of the first complete response in b, or
	// ok=false if b holds only part of one. b is valid only during the call.
	Decode func(b []byte) (n int, ok bool, err error)
}

// Result is what a run measured. Elapsed runs from the moment every
// connection was open and past its handshake to the last response.
type Result struct {
	Responses     int
	Elapsed       time.Duration
	BytesSent     int64
	BytesReceived int64
}

// MsgsPerSec is responses per second of Elapsed.
func (r Result) MsgsPerSec() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Responses) / r.Elapsed.Seconds()
}

func (cfg *Config) validate(total int) error {
	switch {
	case cfg.Conns < 1:
		return fmt.Errorf("%w: Conns %d < 1", ErrConfig, cfg.Conns)
	case cfg.Depth < 1:
		return fmt.Errorf("%w: Depth %d < 1", ErrConfig, cfg.Depth)
	case cfg.Size < 0:
		return fmt.Errorf("%w: Size %d < 0", ErrConfig, cfg.Size)
	case cfg.Encode == nil || cfg.Decode == nil:
		return fmt.Errorf("%w: Encode and Decode are required", ErrConfig)
	case total < 1:
		return fmt.Errorf("%w: total %d < 1", ErrConfig, total)
	}
	return nil
}

// Run loads cfg.Addr until total responses have arrived, the context ends,
// or a connection fails, and reports what it measured. When it ends early it
// returns the partial Result with the context's error or the first
// connection error. Every connection is closed and every goroutine it
// started has exited when it returns. Safe from any goroutine.
func Run(ctx context.Context, cfg Config, total int) (Result, error) {
	if err := cfg.validate(total); err != nil {
		return Result{}, err
	}
	conns, err := openAll(ctx, &cfg)
	if err != nil {
		return Result{}, err
	}

	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// Closing the sockets is what unblocks a goroutine stuck in Read or
	// Write when the context ends or another connection fails.
	closed := make(chan struct{})
	stopClose := context.AfterFunc(runCtx, func() {
		closeAll(conns)
		close(closed)
	})
	defer func() {
		if !stopClose() {
			<-closed // the AfterFunc started: let it finish
		}
		closeAll(conns)
	}()

	payload := make([]byte, cfg.Size)
	for i := range payload {
		payload[i] = byte(i)
	}
	var left budget
	left.n.Store(int64(total))
	workers := make([]worker, len(conns))
	for i, c := range conns {
		workers[i] = worker{
			conn:    c,
			encode:  cfg.Encode,
			decode:  cfg.Decode,
			depth:   cfg.Depth,
			payload: payload,
			wbuf:    make([]byte, 0, cfg.Depth*(cfg.Size+64)),
			rbuf:    make([]byte, readBufSize),
		}
	}

	// The first connection error ends the run. Errors after the run has
	// ended are those of the closed sockets, not worth reporting.
	var (
		failMu sync.Mutex
		failed error
	)
	fail := func(i int, err error) {
		failMu.Lock()
		defer failMu.Unlock()
		if failed == nil && runCtx.Err() == nil {
			failed = fmt.Errorf("loadgen: connection %d: %w", i, err)
			cancel(failed)
		}
	}

	var wg sync.WaitGroup
	start := time.Now()
	for i := range workers {
		w := &workers[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.run(&left); err != nil {
				fail(i, err)
			}
		}()
	}
	wg.Wait()

	res := Result{Elapsed: time.Since(start)}
	for i := range workers {
		w := &workers[i]
		res.Responses += w.responses
		res.BytesSent += w.sent
		res.BytesReceived += w.recv
	}
	if failed != nil {
		return res, failed
	}
	if res.Responses < total {
		// No connection failed, so the caller's context ended the run.
		return res, context.Cause(runCtx)
	}
	return res, nil
}

// openAll dials every connection and runs the handshake on each. On error
// it closes what it opened.
func openAll(ctx context.Context, cfg *Config) ([]net.Conn, error) {
	d := net.Dialer{Timeout: dialTimeout}
	conns := make([]net.Conn, 0, cfg.Conns)
	for range cfg.Conns {
		c, err := d.DialContext(ctx, "tcp", cfg.Addr)
		if err == nil && cfg.Handshake != nil {
			err = handshake(ctx, c, cfg.Handshake)
		}
		if err != nil {
			if c != nil {
				_ = c.Close()
			}
			closeAll(conns)
			return nil, fmt.Errorf("loadgen: connection %d: %w", len(conns), err)
		}
		conns = append(conns, c)
	}
	return conns, nil
}

// handshake runs hs on c under a deadline that also fires when ctx ends.
func handshake(ctx context.Context, c net.Conn, hs func(net.Conn) error) error {
	deadline := time.Now().Add(handshakeTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := c.SetDeadline(deadline); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	err := hs(c)
	if !stop() && err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return err
	}
	return c.SetDeadline(time.Time{})
}

func closeAll(conns []net.Conn) {
	for _, c := range conns {
		_ = c.Close()
	}
}

// budget hands out the run's requests. It may go negative: a take that
// finds less than it asked for gets what was left, later takes get 0.
type budget struct{ n atomic.Int64 }

func (b *budget) take(want int) int {
	after := b.n.Add(-int64(want))
	if after >= 0 {
		return want
	}
	return int(max(0, int64(want)+after))
}

// worker drives one connection. Only its own goroutine touches it until
// Run's WaitGroup says it is done.
type worker struct {
	conn    net.Conn
	encode  func(dst []byte, seq uint32, payload []byte) []byte
	decode  func(b []byte) (int, bool, error)
	depth   int
	payload []byte
	wbuf    []byte
	rbuf    []byte
	seq     uint32

	responses int
	sent      int64
	recv      int64
}

// run keeps depth requests in flight until the budget is spent and every
// request sent has its response.
func (w *worker) run(left *budget) error {
	inflight := 0
	r, e := 0, 0 // rbuf[r:e] is read but not yet decoded
	for {
		// Refill: one Write for every request owed since the last one.
		if k := left.take(w.depth - inflight); k > 0 {
			b := w.wbuf[:0]
			for range k {
				b = w.encode(b, w.seq, w.payload)
				w.seq++
			}
			w.wbuf = b
			n, err := w.conn.Write(b)
			w.sent += int64(n)
			if err != nil {
				return err
			}
			inflight += k
		}
		if inflight == 0 {
			return nil
		}

		if r > 0 && len(w.rbuf)-e < len(w.rbuf)/2 {
			// Move the partial response to the front so the next Read
			// gets a large window. It is less than one response.
			e = copy(w.rbuf, w.rbuf[r:e])
			r = 0
		} else if r == 0 && e == len(w.rbuf) {
			// One response fills the buffer: grow it.
			if len(w.rbuf) >= MaxResponse {
				return ErrResponseTooLarge
			}
			nb := make([]byte, min(2*len(w.rbuf), MaxResponse))
			copy(nb, w.rbuf[:e])
			w.rbuf = nb
		}
		n, rerr := w.conn.Read(w.rbuf[e:])
		e += n
		w.recv += int64(n)

		for r < e {
			m, ok, err := w.decode(w.rbuf[r:e])
			if err != nil {
				return err
			}
			if !ok {
				break
			}
			if m <= 0 || m > e-r {
				return ErrBadDecode
			}
			if inflight == 0 {
				return ErrUnexpectedResponse
			}
			r += m
			inflight--
			w.responses++
		}
		if r == e {
			r, e = 0, 0
		}
		if rerr != nil {
			if rerr == io.EOF {
				rerr = io.ErrUnexpectedEOF // the server closed with requests in flight
			}
			return rerr
		}
	}
}
