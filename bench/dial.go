package bench

import (
	"context"
	"net"
	"net/netip"
	"sync/atomic"

	"github.com/ferry-proto/ferry/client"
)

// dialers opens the transports of a run: from the source addresses round
// robin by connection index (so a client keeps its address across
// reconnects), each socket bound with IP_BIND_ADDRESS_NO_PORT on Linux so
// that the kernel picks the local port at connect time, per destination,
// instead of reserving one per source address at bind time.
type dialers struct {
	sources []netip.Addr
}

func (d dialers) netDialer(i int) *net.Dialer {
	nd := &net.Dialer{Control: bindNoPort}
	if len(d.sources) > 0 {
		src := d.sources[i%len(d.sources)]
		nd.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
	}
	return nd
}

// forConn returns connection i's client.DialFunc. When slot is not nil it
// holds the connection's current socket, so that reconnect-storm can reset
// it. The socket is returned unwrapped (a *net.TCPConn), so that the client
// still tunes it (TCP_NOTSENT_LOWAT).
func (d dialers) forConn(i int, slot *atomic.Pointer[net.TCPConn]) client.DialFunc {
	nd := d.netDialer(i)
	return func(ctx context.Context, addr string) (net.Conn, error) {
		nc, err := nd.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		if tc, ok := nc.(*net.TCPConn); ok && slot != nil {
			slot.Store(tc)
		}
		return nc, nil
	}
}
