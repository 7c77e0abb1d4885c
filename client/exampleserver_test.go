package client_test

import (
	"log"

	"github.com/ferry-proto/ferry/codec"
	"github.com/ferry-proto/ferry/protocol"
	"github.com/ferry-proto/ferry/reactor"
	"github.com/ferry-proto/ferry/router"
)

// Routes of the example server.
const (
	// exampleRouteEcho answers a request with its payload, as ferryd's
	// built-in ferry.echo does.
	exampleRouteEcho = 1
	// exampleRouteJob sends the payload back to its sender as a job: a
	// reliable DATA with APP_ACK on the same lane and route, which the
	// server redelivers until the client confirms it (SPEC §7.7).
	exampleRouteJob = 2
)

// exampleServer starts a real ferry server (reactor and router, one event
// loop) on a free loopback port for the examples to dial: anonymous
// clients, with the routes above. It returns the server's address and a
// function that stops it, closing every connection still open. The
// examples are not tests, so a server that cannot start ends the program.
func exampleServer() (addr string, stop func()) {
	r := router.New(router.Options{})
	r.Handle(exampleRouteEcho, "ferry.echo", func(ctx *router.Context) { _ = ctx.Reply(ctx.Payload()) })
	r.Handle(exampleRouteJob, "example.job", func(ctx *router.Context) {
		job := codec.Frame{Type: protocol.FrameData, Flags: protocol.FlagReliable | protocol.FlagAppAck,
			Lane: ctx.Lane(), Route: ctx.Route(), Payload: ctx.Payload()}
		if err := ctx.Conn().SendOnLoop(&job); err != nil {
			_ = ctx.Fail(protocol.CodeQueueFull)
		}
	})
	srv, err := reactor.New(reactor.Config{Addr: "127.0.0.1:0", Loops: 1, Handler: r})
	if err != nil {
		log.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		log.Fatal(err)
	}
	return srv.Addr(), func() { _ = srv.Close() }
}
