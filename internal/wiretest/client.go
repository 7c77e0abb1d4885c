// Package wiretest is a bare FERRY/1 client for tests: it speaks the
// protocol with the codec over a real socket and shows exactly what a
// server puts on the wire. It is for tests only.
package wiretest

import (
	"bufio"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/ferry-proto/ferry/codec"
	"github.com/ferry-proto/ferry/protocol"
)

// Client is one connection. Frames it returns stay valid until the next
// read.
type Client struct {
	T    testing.TB
	Conn net.Conn
	r    *bufio.Reader
	dec  codec.Decoder
	buf  []byte
}

// Dial connects to addr and closes the connection when the test ends.
func Dial(t testing.TB, addr string) *Client {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &Client{T: t, Conn: nc, r: bufio.NewReaderSize(nc, 256<<10),
		dec: codec.Decoder{MaxFrameSize: protocol.HardMaxFrameSize, Compression: true}}
}

// Write writes raw bytes.
func (c *Client) Write(b []byte) {
	c.T.Helper()
	if _, err := c.Conn.Write(b); err != nil {
		c.T.Fatalf("write: %v", err)
	}
}

// Send writes one frame.
func (c *Client) Send(f codec.Frame) { c.T.Helper(); c.Write(f.Append(nil)) }

// Hello sends HELLO and returns the WELCOME.
func (c *Client) Hello(h codec.Hello) codec.Welcome {
	c.T.Helper()
	h.Version = protocol.Version
	c.Write(codec.AppendHello(nil, &h))
	f := c.Next(5 * time.Second)
	if f.Type != protocol.FrameWelcome {
		c.T.Fatalf("got %s (code %s %q), want WELCOME", f.Type, f.Code, f.Payload)
	}
	w, err := codec.ParseWelcome(f.Payload)
	if err != nil {
		c.T.Fatal(err)
	}
	return w
}

// Next reads the next frame or fails the test.
func (c *Client) Next(timeout time.Duration) codec.Frame {
	c.T.Helper()
	f, err := c.Read(timeout)
	if err != nil {
		c.T.Fatalf("read: %v", err)
	}
	return f
}

// Read reads the next frame.
func (c *Client) Read(timeout time.Duration) (codec.Frame, error) {
	_ = c.Conn.SetReadDeadline(time.Now().Add(timeout))
	for {
		f, n, err := c.dec.Decode(c.buf)
		if err == nil {
			c.buf = c.buf[n:]
			return f, nil
		}
		if !errors.Is(err, codec.ErrNeedMore) {
			return f, err
		}
		// Copy on read keeps earlier frames' views intact.
		chunk := make([]byte, 64<<10)
		m, rerr := c.r.Read(chunk)
		c.buf = append(append([]byte(nil), c.buf...), chunk[:m]...)
		if rerr != nil && m == 0 {
			return f, rerr
		}
	}
}

// ExpectClose reads until the server's ERROR and the end of the
// connection, and returns the code (0xffff when no ERROR came).
func (c *Client) ExpectClose(timeout time.Duration) protocol.ErrorCode {
	c.T.Helper()
	deadline := time.Now().Add(timeout)
	code := protocol.ErrorCode(0xffff)
	for {
		f, err := c.Read(time.Until(deadline))
		if err != nil {
			var op *net.OpError
			if errors.Is(err, io.EOF) || (errors.As(err, &op) && !op.Timeout()) {
				return code
			}
			c.T.Fatalf("waiting for close: %v (code so far %s)", err, code)
		}
		if f.Type == protocol.FrameError {
			code = f.Code
		}
	}
}
