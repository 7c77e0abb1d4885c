// Package loadgen is a pipelined request/response load generator for the
// reactor's benchmarks. It knows nothing of any framing: the caller supplies
// an encoder for requests and a decoder that finds where a response ends, so
// the same driver loads rawecho's length-prefixed echo and ferry's own
// protocol (with Config.Handshake for FERRY/1 HELLO/WELCOME).
//
// # How it drives the server
//
// Run opens Config.Conns connections, runs the optional handshake on each,
// then starts the clock and gives each connection one goroutine that keeps
// Config.Depth requests in flight. The goroutine reads into a buffer of its
// own, counts every complete response in what it read, and refills the
// pipeline with one Write for all the requests it now owes. Requests are
// handed out from a shared budget of `total`, so exactly `total` requests
// are sent and `total` responses counted, unless the context ends first or
// a connection fails.
//
// In steady state nothing is allocated per message: the request buffer, the
// read buffer and the payload are reused, and counts are kept per goroutine
// and summed at the end.
//
// # Usage
//
//	res, err := loadgen.Run(ctx, loadgen.Config{
//		Addr: srv.Addr(), Conns: 100, Depth: 16, Size: 1024,
//		Encode: loadgen.RawEncode, Decode: loadgen.RawDecode,
//	}, 1_000_000)
//	fmt.Printf("%.0f msgs/s\n", res.MsgsPerSec())
//
// # Limits
//
//   - One goroutine per connection writes and reads in turn, so a request
//     batch (Depth requests) must fit in the socket buffers on the way to a
//     server that stops reading while its replies go unread; on loopback that
//     is hundreds of KiB. Past that, only the context ends a stalled run.
//   - A response larger than 16 MiB is an error (the read buffer grows to
//     hold one response, up to that size).
//   - One process holds at most ~19,900 sockets here and one source address
//     ~28k ports per destination: for more connections, run several processes.
//
// Run may be called from any goroutine, and several Runs may go at once.
// Encode and Decode are called from Run's connection goroutines, one
// connection per goroutine, so they must be safe for concurrent use
// (RawEncode and RawDecode are).
package loadgen
