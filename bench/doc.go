// Package bench is ferry-bench's engine: load scenarios that drive a FERRY/1
// server through the Go client (or, for idle connections and light echo,
// through bare sockets) and measure throughput, latency, errors, reconnects
// and, through the server's admin endpoint or its /proc entries, what a
// connection and a message cost the server.
//
// # Usage
//
//	res, err := bench.Run(ctx, bench.Config{
//		Scenario: "echo",
//		Addr:     "127.0.0.1:7100",
//		Conns:    100,
//		Duration: 10 * time.Second,
//		Size:     1024,
//	})
//	if err != nil { ... }
//	res.WriteTable(os.Stdout)
//	_ = res.WriteSVG(f)
//
// # Scenarios
//
//   - echo: requests on route 1 (ferryd's echo), Inflight at a time per connection.
//     With Light, on bare sockets: Inflight requests pipelined per connection,
//     sent in one write per refill and counted in place as they are read, no
//     allocation per message; light enough to saturate a server, which the
//     Go client (over 10 µs of CPU per request) is not.
//   - pubsub: one publisher, Conns subscribers of one topic; latency per delivery.
//   - fanout: as pubsub, but the latency of a message is the time until the last
//     subscriber has it.
//   - direct: Conns clients in pairs, each sending DIRECT messages to its partner.
//   - lanes: bulk requests on lane 3 with paced lane-1 pings on the same
//     connections; latency per lane, and lane 1 alone as a baseline.
//   - idle: Conns connections held open; the time to connect them and the
//     server's memory per connection (heap and stacks, from its /metrics;
//     without them, given ServerPID, the growth of its resident memory).
//   - reconnect-storm: Conns clients sending reliable DIRECT messages to a
//     partner (or, with StormVia "publish", reliable PUBLISHes to a topic of
//     their own), whose sockets are reset at once; the time until all have
//     resumed and whether anything was lost, duplicated or reordered.
//
// # Measuring
//
// Latencies go into HdrHistograms (1 µs to 1 h, three significant digits).
// In closed loop (Rate 0) each of a connection's Inflight workers sends as soon
// as its previous operation completed, and latency runs from the actual send.
// In open loop (Rate > 0) every worker follows a fixed schedule and latency runs
// from the intended send time, so a stall is charged to every message it
// delayed instead of being hidden by the sender waiting (coordinated
// omission). Timestamps travel in the first 16 bytes of a payload (sequence
// number and send time on this process's monotonic clock), so one-way
// latencies are exact: sender and receiver are the same process. Light echo
// carries the send time alone, in the first 8 bytes, and runs closed loop
// only: a pipeline that waits for answers before it refills cannot follow a
// schedule.
//
// The server's CPU time over the traffic window comes from its admin
// endpoint (process_cpu_seconds_total) or, with ServerPID, from
// /proc/PID/stat, for any server on this machine (Linux only).
//
// # Limits
//
// One process holds at most about 19,900 sockets here (open-file limit
// 20,000); Run refuses more connections than the limit allows. Past about
// 28,000 connections to one server address, spread them over several source
// addresses (Config.Sources). The full client runs four goroutines per
// connection; idle uses bare sockets instead (a HELLO, a WELCOME, then one
// goroutine for all of them that answers PINGs and keeps them alive), unless
// Config.FullClients is set. Light echo runs one goroutine per bare socket;
// it neither compresses nor fragments (Size at most 16 KiB) and reads only
// plain DATA responses, RESULTs, PINGs and PONGs: any other frame ends its
// connection with an error.
//
// # Goroutines
//
// Run blocks until the scenario ends; it may be called from any goroutine,
// and several Runs may proceed at once. Config.Progress is called on a
// goroutine of Run's own, never concurrently with itself. A Result is a
// plain value once Run returns.
package bench
