package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/ferry-proto/ferry/protocol"
)

// A light connection is what idle holds by default instead of a client: a
// socket that sent HELLO, read WELCOME and sent one PING, and no goroutine
// of its own. One keeper goroutine for all of them answers the server's
// PINGs, sends a PING when a connection has been quiet for K/2 (SPEC §7.1)
// and notices connections the server closed. It speaks only the frames it
// needs, encoded here from the SPEC with the names of protocol, because
// bench imports no codec and the client exports no handshake helpers.
type lightConn struct {
	tc        *net.TCPConn
	rc        syscall.RawConn
	k         time.Duration // heartbeat interval from WELCOME
	maxFrame  int           // the server's max frame size from WELCOME (SPEC §5.4.1)
	pend      []byte        // a partial frame from the last sweep
	lastWrite time.Time
	dead      bool
}

// helloBodySize is the size of a HELLO body with every variable-length
// field empty (SPEC §5.2: the fixed part is 48 bytes, then four u16
// lengths).
const helloBodySize = 48 + 4*2

// appendHello appends a HELLO frame (SPEC §5.2) that asks for a new session
// with a server-assigned client id, no token, the heartbeat k and the
// protocol's defaults for everything else.
//
//	+---------+-------+----------+----------+----------+----------+---------+
//	| Length  | Type  | Flags 0  | Lane 0   | Version  | Caps     | Rsvd 16 |
//	+---------+-------+----------+----------+----------+----------+---------+
//	| MaxFrameSize 32 | MaxMessageSize 32 | HeartbeatMs 32 | ReceiveMax 16 |
//	| Rsvd 16 | SessionExpiry 32 | Received1..3 3×64 | four lengths 4×16 = 0 |
func appendHello(b []byte, k time.Duration, compression bool) []byte {
	b = binary.BigEndian.AppendUint32(b, protocol.MinLength+helloBodySize)
	b = append(b, byte(protocol.FrameHello), 0, byte(protocol.LaneControl))
	var caps uint8
	if compression {
		caps = protocol.CapCompression
	}
	b = append(b, protocol.Version, caps, 0, 0)
	b = binary.BigEndian.AppendUint32(b, protocol.DefaultMaxFrameSize)
	b = binary.BigEndian.AppendUint32(b, 0) // MaxMessageSize: the default
	b = binary.BigEndian.AppendUint32(b, uint32(min(k.Milliseconds(), 1<<32-1)))
	b = binary.BigEndian.AppendUint16(b, 0) // ReceiveMax: the default
	b = binary.BigEndian.AppendUint16(b, 0)
	b = binary.BigEndian.AppendUint32(b, 0) // SessionExpiry: the default
	b = append(b, make([]byte, 3*8+4*2)...)
	return b
}

// appendPing appends a PING (or, with typ FramePong, a PONG) with opaque
// (SPEC §7.1): 4 + 3 + 8 bytes.
func appendPing(b []byte, typ protocol.FrameType, opaque uint64) []byte {
	b = binary.BigEndian.AppendUint32(b, protocol.MinLength+8)
	b = append(b, byte(typ), 0, byte(protocol.LaneControl))
	return binary.BigEndian.AppendUint64(b, opaque)
}

var errNoWelcome = errors.New("bench: the server answered HELLO with something other than WELCOME")

// closeError describes an ERROR or GOAWAY body (SPEC §7.3, §7.4: Code u16
// first).
func closeError(t protocol.FrameType, body []byte) error {
	if len(body) < 2 {
		return fmt.Errorf("bench: %s without a code", t)
	}
	return fmt.Errorf("bench: server sent %s %s", t, protocol.ErrorCode(binary.BigEndian.Uint16(body)))
}

// dialLight opens a light connection: HELLO, WELCOME, then a PING, which
// SPEC §5.4.7 asks for soon after WELCOME (it proves the client holds the
// new resume token).
func dialLight(ctx context.Context, nd *net.Dialer, addr string, hello []byte) (*lightConn, error) {
	nc, err := nd.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	tc := nc.(*net.TCPConn)
	fail := func(err error) (*lightConn, error) { _ = tc.Close(); return nil, err }
	if dl, ok := ctx.Deadline(); ok {
		_ = tc.SetDeadline(dl)
	}
	if _, err := tc.Write(hello); err != nil {
		return fail(err)
	}
	var hdr [protocol.HeaderSize]byte
	if _, err := io.ReadFull(tc, hdr[:]); err != nil {
		return fail(err)
	}
	n := binary.BigEndian.Uint32(hdr[:4])
	// SPEC §3.2: the size is checked from the prefix, before the body.
	if n < protocol.MinLength || n > protocol.DefaultMaxFrameSize-protocol.LengthSize {
		return fail(fmt.Errorf("bench: handshake frame length %d", n))
	}
	body := make([]byte, n-protocol.MinLength)
	if _, err := io.ReadFull(tc, body); err != nil {
		return fail(err)
	}
	switch t := protocol.FrameType(hdr[4]); t {
	case protocol.FrameWelcome:
	case protocol.FrameError, protocol.FrameGoAway:
		return fail(closeError(t, body))
	default:
		return fail(fmt.Errorf("%w: %s", errNoWelcome, t))
	}
	// SPEC §5.3: Version at 0, MaxFrameSize at 4, HeartbeatMs at 12.
	if len(body) < 16 || body[0] != protocol.Version {
		return fail(errors.New("bench: malformed WELCOME"))
	}
	maxFrame, ok := maxFrameSize(binary.BigEndian.Uint32(body[4:8]))
	if !ok {
		return fail(errors.New("bench: WELCOME with a max frame size above 16 MiB")) // SPEC §5.4.1
	}
	k := time.Duration(binary.BigEndian.Uint32(body[12:16])) * time.Millisecond
	if k <= 0 {
		return fail(errors.New("bench: WELCOME with heartbeat 0")) // SPEC §5.4.3
	}
	if _, err := tc.Write(appendPing(nil, protocol.FramePing, 1)); err != nil {
		return fail(err)
	}
	_ = tc.SetDeadline(time.Time{})
	rc, err := tc.SyscallConn()
	if err != nil {
		return fail(err)
	}
	return &lightConn{tc: tc, rc: rc, k: k, maxFrame: maxFrame, lastWrite: time.Now()}, nil
}

// maxFrameSize normalizes an announced max frame size (SPEC §5.4.1): 0 is
// 65,536, 1 to 4,095 are 4,096, above 16,777,216 is no size (ok false).
func maxFrameSize(v uint32) (n int, ok bool) {
	switch {
	case v == 0:
		return protocol.DefaultMaxFrameSize, true
	case v < protocol.MinMaxFrameSize:
		return protocol.MinMaxFrameSize, true
	case v > protocol.HardMaxFrameSize:
		return 0, false
	}
	return int(v), true
}

// sweep reads what the connection has received without waiting, answers
// PINGs, and sends a PING when it has been quiet for K/2. It returns an
// error once the connection is over (closed by the server, ERROR or
// GOAWAY, a broken frame); buf is scratch space.
func (lc *lightConn) sweep(now time.Time, buf []byte) error {
	var out []byte
	for {
		n, err := readNow(lc.rc, buf)
		if err != nil {
			return err
		}
		if n == 0 {
			break
		}
		data := buf[:n]
		if len(lc.pend) > 0 {
			data = append(lc.pend, data...)
		}
		rest, o, err := lightFrames(data, out)
		if err != nil {
			return err
		}
		out = o
		lc.pend = append(lc.pend[:0], rest...)
		if len(lc.pend) == 0 {
			lc.pend = nil // most connections hold nothing between sweeps
		}
		if n < len(buf) {
			break
		}
	}
	if len(out) == 0 && now.Sub(lc.lastWrite) >= lc.k/2 {
		out = appendPing(out, protocol.FramePing, uint64(now.UnixNano()))
	}
	if len(out) > 0 {
		_ = lc.tc.SetWriteDeadline(now.Add(5 * time.Second))
		if _, err := lc.tc.Write(out); err != nil {
			return err
		}
		lc.lastWrite = now
	}
	return nil
}

// lightFrames walks the complete frames in b, appending a PONG to out for
// each PING. It returns the bytes of an incomplete last frame.
func lightFrames(b, out []byte) (rest, o []byte, err error) {
	for len(b) >= protocol.HeaderSize {
		n := binary.BigEndian.Uint32(b[:4])
		if n < protocol.MinLength || n > protocol.DefaultMaxFrameSize-protocol.LengthSize {
			return nil, out, fmt.Errorf("bench: frame length %d", n)
		}
		if uint32(len(b)) < protocol.LengthSize+n {
			break
		}
		t, body := protocol.FrameType(b[4]), b[protocol.HeaderSize:protocol.LengthSize+n]
		switch t {
		case protocol.FramePing:
			if len(body) == 8 {
				out = appendPing(out, protocol.FramePong, binary.BigEndian.Uint64(body))
			}
		case protocol.FrameError, protocol.FrameGoAway:
			return nil, out, closeError(t, body)
		}
		b = b[protocol.LengthSize+n:]
	}
	return b, out, nil
}

// keeper keeps light connections alive until stop closes, sweeping them
// every min(K/4, 5 s). Dead connections are closed and counted.
type keeper struct {
	conns []*lightConn
	mu    sync.Mutex
	dead  int64
	errs  map[string]int
}

func (kp *keeper) run(stop <-chan struct{}) {
	every := 5 * time.Second
	for _, lc := range kp.conns {
		every = min(every, lc.k/4)
		break
	}
	t := time.NewTicker(max(every, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			kp.sweepAll(now)
		}
	}
}

func (kp *keeper) sweepAll(now time.Time) {
	buf := make([]byte, 4096)
	kp.mu.Lock()
	defer kp.mu.Unlock()
	for _, lc := range kp.conns {
		if lc.dead {
			continue
		}
		if err := lc.sweep(now, buf); err != nil {
			lc.dead = true
			_ = lc.tc.Close()
			kp.dead++
			if kp.errs == nil {
				kp.errs = map[string]int{}
			}
			kp.errs[err.Error()]++
		}
	}
}

func (kp *keeper) closeAll() {
	kp.mu.Lock()
	defer kp.mu.Unlock()
	for _, lc := range kp.conns {
		if !lc.dead {
			_ = lc.tc.Close()
		}
	}
}
