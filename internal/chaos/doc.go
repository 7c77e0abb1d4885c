// Package chaos is the chaos test of reliable delivery (notes/delivery.md,
// SPEC §12): Go clients and a reactor server talk through toxiproxy, run in
// this process, while a schedule drawn from a seed changes the faults
// between them, and a checker in the spirit of Jepsen's queue checker says
// whether every reliable message arrived exactly once and in order within
// its lane, or was dropped with a report that counts it.
//
// The parts, each usable and tested alone:
//
//   - Proxy: a toxiproxy proxy on one loopback address. Weather (latency
//     with jitter, slicer, bandwidth) is built into a fresh proxy at each
//     Restart; kills (reset_peer, timeout) are added to live connections.
//     It never removes a toxic from a live connection: see Proxy for why.
//   - Schedule: the epochs of a run, drawn from a seed (repeat a failing run
//     with its seed).
//   - Checker: hands out the index of every message sent, records every
//     delivery and every drop reported, and names the first lost,
//     duplicated or reordered message ids of each stream.
//   - Encode/Decode: the payload, which carries (client, direction, lane,
//     index) and a CRC, so that a damaged payload is never counted.
//   - Gate, Dialer, Driver: spread the messages over the epochs, count the
//     clients' connections (every redial is a disconnect lived through),
//     and run the epochs with bounded waits.
//
// Usage, as TestChaos does:
//
//	ck := chaos.NewChecker(clients)
//	px, _ := chaos.NewProxy("127.0.0.1:0", srv.Addr(), nil)
//	dl := chaos.NewDialer(clients)
//	// clients dial px.Addr() with dl.Dial; senders call ck.Next, then send
//	// chaos.Encode(nil, m, pad); receivers call ck.Deliver; drop reports
//	// go to ck.DropReported.
//	d := &chaos.Driver{Proxy: px, Schedule: chaos.NewSchedule(seed), Checker: ck,
//		Gate: gate, Dialer: dl, Epochs: 120, PerStream: n}
//	err := d.Run(ctx)
//	r := ck.Result()
//	fmt.Println(r.Line(dl.Disconnects()))
//	// chaos: sent=N delivered=N lost=N duplicated=N reordered=N dropped_reported=N disconnects=N
//
// Running it: `make test` runs TestChaos with 50,000 messages under -race;
// `make chaos` runs 1,000,000 (flags -chaos.msgs, -chaos.seed, -chaos.kills,
// -chaos.clients, -chaos.engine, -chaos.budget, -chaos.v).
//
// Limits: loopback only (every address is checked); one process, so the
// proxy, the server and the clients share the machine's cores; toxiproxy
// has no packet loss or reordering (TCP hides those anyway), and its
// timeout toxic is the only dead path it can fake.
//
// Goroutines: Checker, Gate, Dialer and Proxy are safe from any
// goroutine; a Driver runs on the goroutine that calls Run.
package chaos
