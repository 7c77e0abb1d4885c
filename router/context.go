package router

import (
	"github.com/ferry-proto/ferry/codec"
	"github.com/ferry-proto/ferry/protocol"
	"github.com/ferry-proto/ferry/reactor"
)

// Context is one request as a handler sees it. It is reused for the next
// request of the same connection: valid only during the handler's call.
type Context struct {
	router   *Router
	conn     *reactor.Conn
	frame    *codec.Frame
	replied  bool
	rejected bool
}

// Reject answers a message sent with APP_ACK with CONFIRM REJECTED instead
// of PROCESSED: the sender redelivers it later (SPEC §12). Without APP_ACK
// it does nothing.
func (c *Context) Reject() { c.rejected = true }

// Conn is the requesting connection.
func (c *Context) Conn() *reactor.Conn { return c.conn }

// ClientID is the id the client authenticated as.
func (c *Context) ClientID() string { return c.conn.ClientID() }

// Route is the request's route.
func (c *Context) Route() uint32 { return c.frame.Route }

// Lane is the lane the request came on; the response goes back on it.
func (c *Context) Lane() protocol.Lane { return c.frame.Lane }

// Corr is the request's correlation id (0: the sender wants no response).
func (c *Context) Corr() uint32 { return c.frame.Corr }

// Payload is the request's payload: a view valid during the call.
func (c *Context) Payload() []byte { return c.frame.Payload }

// Reply sends the response (a DATA with RESPONSE and the request's
// correlation id, on the request's lane). A request without a correlation
// id wants no response: Reply then does nothing. Reply copies payload.
func (c *Context) Reply(payload []byte) error {
	if c.frame.Corr == 0 || c.replied {
		return nil
	}
	c.replied = true
	return c.conn.ReplyOnLoop(c.frame, payload)
}

// Fail answers the request with a RESULT carrying code (a request-scope
// code such as HANDLER_ERROR or FORBIDDEN, SPEC §13).
func (c *Context) Fail(code protocol.ErrorCode) error {
	if code != protocol.CodeOK && c.frame.Flags.Has(protocol.FlagKeyed) {
		c.conn.ForgetKey(c.frame.Key()) // SPEC §6.5: refused, so not accepted
	}
	if c.frame.Corr == 0 || c.replied {
		return nil
	}
	c.replied = true
	f := codec.Frame{Type: protocol.FrameResult, Lane: c.frame.Lane, Corr: c.frame.Corr, Code: code}
	return c.conn.SendOnLoop(&f)
}
