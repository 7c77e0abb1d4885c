// Package rawecho is a bare gnet v2 echo server for length-prefixed frames:
// the baseline that ferry's reactor is measured against. It does what an
// efficient gnet server does and nothing else (no handshake, no lanes, no
// timers), so the gap between it and the reactor is the cost of ferry's
// features, not of the event-loop library.
//
// # Wire format
//
//	+---------------------------+----------------------+
//	| length (uint32, big end.) | payload (length B)   |
//	+---------------------------+----------------------+
//
// Each complete frame is echoed back byte for byte, header included.
//
// # How it uses gnet
//
//   - Multicore: Config.Loops event loops behind gnet's main acceptor
//     reactor (no SO_REUSEPORT, so "127.0.0.1:0" gets one port, not one per loop).
//   - OnTraffic peeks everything buffered, walks every complete frame, and
//     echoes them all with one Write: the complete frames are a contiguous
//     prefix of the input, so the coalesced echo is that prefix, unchanged and
//     uncopied. A trailing partial frame stays in gnet's inbound buffer for
//     the next OnTraffic.
//   - A length above Config.MaxFrame closes the connection as soon as the
//     header is seen, without waiting for the payload; so does a backlog past
//     Config.MaxOutbound (gnet has no backpressure of its own: a peer that
//     never reads would otherwise grow the server's memory without bound).
//   - gnet's logger is replaced by a no-op one. gnet keeps its logger in a
//     process-wide default, so this silences gnet for the whole process.
//
// # Usage
//
//	s, err := rawecho.Start("127.0.0.1:0", 2)
//	if err != nil { ... }
//	defer s.Stop()
//	conn, err := net.Dial("tcp", s.Addr())
//
// # Limits and goroutines
//
// Start, Addr and Stop are safe from any goroutine; Stop is idempotent. Stop
// shuts the listening socket down rather than calling gnet's Engine.Stop
// first, which would leak connections accepted just before it (see
// Server.Stop); it takes milliseconds, not Engine.Stop's 0.5 s or more.
// The event handler runs only on gnet's loops. One process holds at most
// ~19,900 sockets here, so a server and a load generator that want more
// connections than that between them must run in separate processes.
package rawecho
