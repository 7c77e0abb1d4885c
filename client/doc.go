// Package client is the Go client of FERRY/1 (docs/SPEC.md): one session
// with a server, carried over as many TCP connections as it takes. It
// imports only protocol, codec, codec/seqwin and codec/rtt, which shows that
// the spec can be implemented without the server's insides.
//
// # Usage
//
//	c, err := client.Dial(ctx, "127.0.0.1:7100",
//		client.WithClientID("sensor-7"),
//		client.WithHandler(func(m *client.Message) error {
//			log.Printf("%s on lane %d: %q", m.Kind, m.Lane, m.Payload)
//			return nil
//		}))
//	if err != nil { ... }
//	defer c.Close()
//
//	// Exactly once, in order per lane, across reconnects:
//	err = c.SendReliable(ctx, protocol.LaneNormal, route, payload)
//	// Request/response (SPEC §6.1):
//	resp, err := c.Request(ctx, protocol.LaneInteractive, route, payload)
//	// Publish/subscribe (SPEC §6.2, §7.5):
//	err = c.Subscribe(ctx, "game/+/score", handler)
//	err = c.Publish(protocol.LaneNormal, "game/7/score", payload, true)
//
// # What it guarantees
//
// Reliable messages (SendReliable, SendAsync, Direct, a reliable Publish)
// are numbered per lane and kept until the server acknowledges them. When a
// connection ends, the client reconnects with exponential backoff (0.5 s,
// ×1.6, ±20 %, at most 30 s; a GOAWAY's hint instead) and resumes the
// session: HELLO names it with its ResumeToken and the last Seq received in
// order on each lane; the server's WELCOME says what it received, and the
// client replays the rest with the same Seqs, before anything new. Messages
// from the server are deduplicated and delivered in order; a fragmented
// reliable message continues across the reconnect. So while the session
// resumes, each reliable message is delivered exactly once, in order within
// its lane, whatever byte the connection breaks at.
//
// Nothing is lost silently. When the server starts a new session instead
// (it expired, restarted, refused the token), every reliable message sent
// and not acknowledged fails with ErrSessionLost, or is sent again with
// WithResendOnNewSession (at least once, then), and the loss is counted
// (Stats.Lost, Stats.Resent) and reported (EventNewSession with
// Event.Lost). What the server dropped from its offline queue while the
// client was away comes in a GAP_REPORT (WithGapReportHandler, Stats.Gap*).
// Unreliable messages are sent once if the connection lasts; requests fail
// with ErrDisconnected when their connection ends (SPEC §6).
//
// On a live connection nothing is sent twice (TCP retransmits): an overdue
// ACK brings PING probes, and three unanswered probes drop the connection,
// which resumes on a new one. ACKs go out after every second reliable frame
// of a lane or 25 ms after the first, at once for a duplicate, in the same
// write as outgoing data; all frames ready at one moment leave in one
// write, lane 0 first, then lanes 1 to 3 by weighted round robin (SPEC §8),
// and TCP_NOTSENT_LOWAT (16 KiB, Linux and macOS) keeps the kernel from
// queueing megabytes of bulk data ahead of them (§8.4; it costs bulk
// throughput some 15 % here). The client keeps at most the server's
// ReceiveMax frames and 1 MiB in flight per lane; unreliable messages are
// not held by that window (§12.5).
//
// # Goroutines
//
// Every method of Client is safe from any goroutine. A Client runs one
// manager goroutine (connects, waits the backoff), one callback goroutine
// (handlers and callbacks, one at a time, in arrival order: see Handler)
// and, while connected, a reader and a writer goroutine; the writer holds
// the connection's only timer (heartbeat, ACK delay, probes, reassembly
// timeout). Close ends them all.
//
// Send and Publish encode a small unreliable message (up to 1 KiB) at
// once into the lane's current pack (8 KiB of frames), which the writer
// writes as it is; when they fill a pack they yield the processor once, so
// that the writer sends it while the caller goes on. The reader hands the
// messages of one read to the callback goroutine together, and wakes the
// writer only for frames that need it (anything but complete unreliable
// messages).
//
// # Limits
//
//   - Frames this client accepts: 64 KiB; messages: 16 MiB; messages it
//     sends are cut into 16 KiB fragments.
//   - Pending reliable messages: 10,000 and 16 MiB (WithMaxPending).
//     Unreliable ones waiting to be written: 4 MiB (then ErrQueueFull).
//   - Incoming messages waiting for the callback goroutine: 8,192 or 32 MiB;
//     past that the client stops reading the connection (and pauses its
//     probes) until the handlers catch up.
//   - The client does not send messages with APP_ACK or a TTL; it answers
//     the APP_ACK of incoming messages with CONFIRM (Message.Confirm) and
//     drops incoming messages whose TTL ran out (SPEC §6.4).
//   - A replayed frame keeps its size (SPEC §12.8): if the server lowered
//     its max frame size below it between two connections of one session,
//     the client closes with PROTOCOL_ERROR and starts a new session,
//     reporting the loss.
//   - Requests are unreliable: they fail when their connection ends. Use
//     SendReliable and a reply message of your own when an exchange must
//     survive a reconnect.
package client
