package reactor

import (
	"github.com/ferry-proto/ferry/codec"
	"github.com/ferry-proto/ferry/protocol"
)

// Handler is what the router (or a test) plugs into the reactor. Every
// method runs on the connection's event loop: it must not block, and the
// slices it is handed are valid only during the call (copy what must
// outlive it).
type Handler interface {
	// OnHello authenticates a client from its HELLO. It returns the client
	// id to report in WELCOME (empty: the reactor assigns one) and
	// protocol.CodeOK to accept, or a code such as AUTH_FAILED to refuse:
	// the reactor then sends ERROR with it and closes.
	OnHello(c *Conn, h *codec.Hello) (clientID string, code protocol.ErrorCode)
	// OnOpen runs once WELCOME is queued.
	OnOpen(c *Conn)
	// OnMessage receives a whole application message (DATA, PUBLISH,
	// DIRECT: fragments joined and decompressed, in f.Payload) or a
	// SUBSCRIBE, UNSUBSCRIBE, RESULT or ACK frame.
	OnMessage(c *Conn, f *codec.Frame)
	// OnClose runs once when the connection is gone, with the code it
	// closed with: the one we sent, the one the peer sent, or CodeOK when
	// the peer closed without one.
	OnClose(c *Conn, code protocol.ErrorCode)
}
