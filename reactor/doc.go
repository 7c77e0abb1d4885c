// Package reactor runs FERRY/1 connections on event loops: gnet v2 by
// default (one loop per core, no goroutine per connection). It owns the
// connection state machine (handshake, heartbeats, GOAWAY), the four
// outbound lanes with their scheduler, write coalescing, backpressure, the
// timing wheel that drives every timeout, and the counters.
//
// Usage:
//
//	srv, err := reactor.New(reactor.Config{Addr: "127.0.0.1:7100", Handler: h})
//	if err != nil { ... }
//	if err := srv.Start(); err != nil { ... }
//	defer srv.Shutdown(ctx) // GOAWAY, drain, stop
//
// Goroutines. A connection belongs to one event loop: its Handler callbacks
// run there and must not block, and Conn.SendOnLoop may be called only from
// them, for that connection. Conn.Send, Conn.Close, Conn.Backlogged and the
// accessors are safe from any goroutine: Send copies the frame into a pooled
// buffer, appends it to the connection's queue under a short lock and wakes
// the loop only when no wake-up is already pending, so many sends share one
// wake-up and one writev.
//
// Outbound order. Lane 0 (PONG, ERROR, GOAWAY, WELCOME) is written first;
// lanes 1-3 share by deficit round robin with weights 4:2:1. Messages larger
// than the fragment size are cut as they are sent, so a bulk transfer delays
// an urgent message by at most one fragment plus what the transport already
// holds (Config.EngineBuffer) and the kernel's unsent queue
// (TCP_NOTSENT_LOWAT). Order holds within a lane only.
//
// Limits (see Config for defaults): connections, frame and message sizes,
// partial messages and reassembly bytes, outbound bytes per connection
// (SLOW_CONSUMER past it), the high watermark past which unreliable lane-3
// messages are dropped, and the write-stall timeout. Every drop and close is
// counted in Counters.
package reactor
