// Package router is what an application plugs into ferry: handlers by
// route for request/response, topic pub/sub with MQTT-style wildcards, and
// client-to-client messages through a registry of connected clients. A
// Router is the reactor.Handler of a server.
//
//	r := router.New(router.Options{})
//	r.Handle(1, "echo", func(ctx *router.Context) { ctx.Reply(ctx.Payload()) })
//	srv, _ := reactor.New(reactor.Config{Handler: r})
//
// Goroutines. Handlers run on the requesting connection's event loop: they
// must not block, and the Context and its Payload are valid only during the
// call (copy what must outlive it). Register routes and middleware before
// the server starts; the table is read without a lock afterwards.
//
// Topics. SUBSCRIBE adds a pattern ("game/+/pos", "alerts/#") to a shared
// subscription trie; PUBLISH encodes the frame once and queues the same
// bytes on every matching connection (reactor.Shared), so fan-out costs no
// copy per subscriber, and a slow subscriber meets the reactor's
// backpressure (its bulk dropped, or it is closed) without slowing the
// publisher. Publications larger than a subscriber's fragment size are sent
// to it with a copy, fragmented.
//
// Direct messages. DIRECT to a connected client id is forwarded with the
// sender's id in place of the recipient's; the sender gets RESULT OK (handed
// to the recipient's connection) or NO_SUCH_CLIENT. A reliable DIRECT to a
// client that is disconnected but whose session lives waits in the
// session's offline queue until it resumes.
//
// Logins. Options.Auth decides who a client is (TokenAuth: HMAC-signed
// tokens with permissions). Failed logins are limited per source address
// (Options.AuthLimit: 10 at once, then one per 6 s, IPv4 by address and
// IPv6 by /64, at most 65,536 sources tracked): a source that is out of
// failures gets ERROR RATE_LIMITED to its HELLO before its token is
// looked at. OnHello may run on every loop at once; the limiter is
// sharded under short locks.
//
// Limits: see Options (subscriptions per connection, message rate limits,
// failed logins) and docs/SECURITY.md for the attack each one answers.
package router
