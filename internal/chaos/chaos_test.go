package chaos

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-proto/ferry/client"
	"github.com/ferry-proto/ferry/codec"
	"github.com/ferry-proto/ferry/protocol"
	"github.com/ferry-proto/ferry/reactor"
)

var (
	flagMsgs    = flag.Int("chaos.msgs", 50_000, "messages in all (both directions, every client, lanes 1-3)")
	flagKills   = flag.Int("chaos.kills", 0, "epochs, each ending in forced disconnects (0: max(120, msgs/1000))")
	flagSeed    = flag.Uint64("chaos.seed", 0, "seed of the schedule and the payload sizes (0: from the clock; printed)")
	flagClients = flag.Int("chaos.clients", 2, "clients")
	flagEngine  = flag.String("chaos.engine", "gnet", "server engine: gnet or netpoll")
	flagBudget  = flag.Duration("chaos.budget", 0, "the run's time limit (0: 2 min + 1 ms per message, within the test's -timeout)")
	flagVerbose = flag.Bool("chaos.v", false, "log every epoch")
	flagLog     = flag.String("chaos.log", "", "append the clients' connection events (slog) to this file")
)

const (
	route = 7
	// window bounds how far a sender runs ahead of its receiver, per
	// stream, within the client's pending store (10,000). The server's
	// offline queue is smaller than what an epoch sends per client, so
	// that an outage makes the server drop (and report) the oldest.
	window       = 256
	offlineCount = 16
)

// TestChaos sends reliable messages both ways on lanes 1, 2 and 3 between
// clients and a server that talk through toxiproxy, while the schedule
// changes the weather (latency with jitter, slicing, bandwidth) and forces
// disconnects (resets, dead paths, outages), and checks that every message
// was delivered exactly once and in order within its lane, or dropped with
// a report that counts it.
func TestChaos(t *testing.T) {
	msgs, clients := *flagMsgs, *flagClients
	kills := *flagKills
	if kills == 0 {
		kills = max(120, msgs/1000)
	}
	seed := *flagSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	perStream := uint64(max(1, msgs/(clients*2*NumLanes)))
	budget := *flagBudget
	if budget == 0 {
		budget = 2*time.Minute + time.Duration(msgs)*time.Millisecond
	}
	if dl, ok := t.Deadline(); ok {
		budget = min(budget, time.Until(dl)-15*time.Second)
	}
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	t.Logf("seed %d (repeat with -chaos.seed=%d), %d clients, %d messages per stream, %d kills, budget %v, engine %s",
		seed, seed, clients, perStream, kills, budget, *flagEngine)

	ck := NewChecker(clients)
	var notes notes
	logger := slog.New(slog.DiscardHandler)
	if *flagLog != "" {
		f, err := os.OpenFile(*flagLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		logger = slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug})).With("seed", seed)
	}
	names := map[string]int{}
	for i := range clients {
		names[clientName(i)] = i
	}

	// The server: every reliable DATA from a client goes to the checker.
	h := &handler{ck: ck, names: names, notes: &notes, sessions: make([]atomic.Pointer[reactor.Session], clients)}
	srv, err := reactor.New(reactor.Config{
		Addr:     "127.0.0.1:0",
		Engine:   *flagEngine,
		Handler:  h,
		Sessions: reactor.SessionConfig{OfflineMaxCount: offlineCount},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	if err := CheckLoopback(srv.Addr()); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	px, err := NewProxy("127.0.0.1:0", srv.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	dialer := NewDialer(clients)

	// The clients: every reliable DATA from the server goes to the checker,
	// and every GAP_REPORT's drops are counted as reported.
	cs := make([]*client.Client, clients)
	for i := range clients {
		c, err := client.Dial(ctx, px.Addr(),
			client.WithClientID(clientName(i)),
			client.WithLogger(logger.With("client", i)),
			client.WithDialer(func(ctx context.Context, addr string) (net.Conn, error) { return dialer.Dial(ctx, i, addr) }),
			client.WithBackoff(2*time.Millisecond, 50*time.Millisecond),
			client.WithHandler(func(m *client.Message) error {
				if m.Kind != client.KindData || !m.Reliable || m.Route != route {
					notes.add("client %d got an unexpected %s message (reliable %v, route %d) on lane %d", i, m.Kind, m.Reliable, m.Route, m.Lane)
					return nil
				}
				ck.Deliver(i, Down, uint8(m.Lane), m.Payload)
				return nil
			}),
			client.WithGapReportHandler(func(g codec.GapReport) {
				ck.DropReported(i, Down, g.Lost())
			}),
			client.WithStateHandler(func(e client.Event) {
				if e.Kind == client.EventNewSession {
					// What the old session held is lost: write it off so
					// that the run goes on (the Result still counts it).
					n := ck.WriteOff(i, Down)
					notes.add("client %d got a new session: the server lost the old one (%d reliable messages of ours failed, %d of the server's written off)", i, e.Lost, n)
				}
			}),
		)
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		cs[i] = c
		defer c.Close()
	}

	gate := NewGate()
	sctx, stopSenders := context.WithCancel(ctx)
	var senders sync.WaitGroup
	for i := range clients {
		for lane := uint8(1); lane <= NumLanes; lane++ {
			rng := rand.New(rand.NewPCG(seed, uint64(i*8+int(lane))))
			senders.Go(func() { sendUp(sctx, ck, gate, cs[i], i, lane, perStream, rng, &notes) })
			rng2 := rand.New(rand.NewPCG(seed, uint64(i*8+int(lane))+1000))
			senders.Go(func() { sendDown(sctx, ck, gate, h, i, lane, perStream, rng2, &notes) })
		}
	}

	d := &Driver{
		Proxy: px, Schedule: NewSchedule(seed), Checker: ck, Gate: gate, Dialer: dialer,
		Epochs: kills, PerStream: perStream,
		Ready: func() bool {
			for _, c := range cs {
				if c.State() != client.StateConnected {
					return false
				}
			}
			return true
		},
	}
	var epochs []string
	d.Logf = func(format string, args ...any) {
		s := fmt.Sprintf(format, args...)
		if *flagVerbose {
			t.Log(s)
		}
		epochs = append(epochs, s)
	}
	start := time.Now()
	runErr := d.Run(ctx)
	elapsed := time.Since(start)
	if errors.Is(runErr, ErrStalled) {
		// Where everything stood: the clients' and the server's goroutines.
		if f, err := os.CreateTemp("", "chaos-stall-*.txt"); err == nil {
			for i, c := range cs {
				fmt.Fprintf(f, "client %d: state %v, stats %+v\n", i, c.State(), c.Stats())
			}
			fmt.Fprintf(f, "server: %d conns, %d sessions, counters %+v\n\n", srv.NumConns(), srv.NumSessions(), srv.Counters())
			pprof.Lookup("goroutine").WriteTo(f, 2)
			f.Close()
			t.Logf("stalled: goroutines dumped to %s", f.Name())
		}
	}
	stopSenders()
	senders.Wait()

	stats := make([]client.Stats, clients)
	for i, c := range cs {
		stats[i] = c.Stats()
		c.Close()
	}
	srv.Close()
	px.Close()

	r := ck.Result()
	fmt.Println(r.Line(dialer.Disconnects()))
	t.Logf("%v, %.0f msgs/s; server drops reported %d, proxy restarts %d, failed dials %d; server closes %s",
		elapsed.Round(time.Millisecond), float64(r.Sent)/elapsed.Seconds(), r.DroppedReported, px.Restarts(), dialer.Failed(), h.closes())
	for i, s := range stats {
		t.Logf("client %d: %+v", i, s)
	}
	if runErr != nil {
		t.Errorf("run: %v", runErr)
	}
	for _, n := range notes.all() { // causes first: lost sessions, errors
		t.Errorf("%s", n)
	}
	for _, p := range r.Problems {
		t.Errorf("%s", p)
	}
	if runErr == nil && r.Sent != perStream*uint64(clients*2*NumLanes) {
		t.Errorf("sent %d messages, want %d", r.Sent, perStream*uint64(clients*2*NumLanes))
	}
	if dis := dialer.Disconnects(); dis < 100 && kills >= 100 {
		t.Errorf("only %d disconnects", dis)
	}
	if t.Failed() {
		last := epochs[max(0, len(epochs)-5):]
		t.Logf("seed %d; the last epochs:\n%s", seed, strings.Join(last, "\n"))
	}
}

func clientName(i int) string { return fmt.Sprintf("chaos-%d", i) }

// padding draws a payload size: mostly small, now and then larger than a
// fragment (16 KiB), so that reliable messages are cut into fragments and
// continue across reconnects.
func padding(rng *rand.Rand) int {
	if rng.IntN(1000) == 0 {
		return 17<<10 + rng.IntN(24<<10)
	}
	return rng.IntN(64)
}

// waitWindow blocks while the stream's sender is window messages ahead of
// its receiver.
func waitWindow(ctx context.Context, ck *Checker, client int, dir Dir, lane uint8) error {
	for ck.Outstanding(client, dir, lane) >= window {
		select {
		case <-ck.Wake(client, dir, lane):
		case <-time.After(10 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// sendUp sends one stream from a client to the server with SendAsync.
func sendUp(ctx context.Context, ck *Checker, gate *Gate, c *client.Client, i int, lane uint8, n uint64, rng *rand.Rand, notes *notes) {
	var buf []byte
	for idx := uint64(0); idx < n; idx++ {
		if gate.Wait(ctx, idx) != nil || waitWindow(ctx, ck, i, Up, lane) != nil {
			return
		}
		m := ck.Next(i, Up, lane)
		buf = Encode(buf[:0], m, padding(rng))
		for {
			err := c.SendAsync(protocol.Lane(lane), route, buf, func(err error) {
				if err != nil && !errors.Is(err, client.ErrClosed) {
					// The client reports the message lost: a drop, counted.
					ck.DropReportedLane(i, Up, lane, 1)
					notes.add("client %d lane %d: message %d failed: %v", i, lane, m.Index, err)
				}
			})
			if err == nil {
				break
			}
			if !errors.Is(err, client.ErrQueueFull) {
				ck.DropReportedLane(i, Up, lane, 1)
				notes.add("client %d lane %d: SendAsync of message %d: %v", i, lane, m.Index, err)
				break
			}
			select { // the pending store is full: try again
			case <-time.After(time.Millisecond):
			case <-ctx.Done():
				return
			}
		}
	}
}

// sendDown sends one stream from the server to a client through its
// session, which queues while the client is away.
func sendDown(ctx context.Context, ck *Checker, gate *Gate, h *handler, i int, lane uint8, n uint64, rng *rand.Rand, notes *notes) {
	var buf []byte
	for idx := uint64(0); idx < n; idx++ {
		if gate.Wait(ctx, idx) != nil || waitWindow(ctx, ck, i, Down, lane) != nil {
			return
		}
		m := ck.Next(i, Down, lane)
		buf = Encode(buf[:0], m, padding(rng))
		s := h.session(ctx, i)
		if s == nil {
			return
		}
		f := codec.Frame{Type: protocol.FrameData, Flags: protocol.FlagReliable, Lane: protocol.Lane(lane), Route: route, Payload: buf}
		if err := s.Send(&f); err != nil {
			// Refused at once: the sender knows, so it is a reported drop.
			ck.DropReportedLane(i, Down, lane, 1)
			notes.add("server: Session.Send of client %d lane %d message %d: %v", i, lane, m.Index, err)
		}
	}
}

// handler is the server's side of the test.
type handler struct {
	ck    *Checker
	names map[string]int
	notes *notes
	// sessions holds each client's session, taken in OnOpen: a session
	// that holds nothing yet is not found by Server.SessionByClient.
	sessions []atomic.Pointer[reactor.Session]
	mu       sync.Mutex
	codes    map[protocol.ErrorCode]int
}

func (h *handler) OnHello(c *reactor.Conn, hello *codec.Hello) (string, protocol.ErrorCode) {
	if _, ok := h.names[string(hello.ClientID)]; !ok {
		return "", protocol.CodeAuthFailed
	}
	return string(hello.ClientID), protocol.CodeOK
}

func (h *handler) OnOpen(c *reactor.Conn) {
	h.sessions[h.names[c.ClientID()]].Store(c.Session())
}

// session waits for client i's session.
func (h *handler) session(ctx context.Context, i int) *reactor.Session {
	for {
		if s := h.sessions[i].Load(); s != nil {
			return s
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Millisecond):
		}
	}
}

func (h *handler) OnMessage(c *reactor.Conn, f *codec.Frame) {
	if f.Type != protocol.FrameData {
		return // ACKs and the like
	}
	i := h.names[c.ClientID()]
	if !f.Flags.Has(protocol.FlagReliable) || f.Route != route {
		h.notes.add("server got DATA with flags %v route %d from client %d", f.Flags, f.Route, i)
		return
	}
	h.ck.Deliver(i, Up, uint8(f.Lane), f.Payload)
}

func (h *handler) OnClose(c *reactor.Conn, code protocol.ErrorCode) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.codes == nil {
		h.codes = map[protocol.ErrorCode]int{}
	}
	h.codes[code]++
}

func (h *handler) closes() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var parts []string
	for code, n := range h.codes {
		parts = append(parts, fmt.Sprintf("%v=%d", code, n))
	}
	return strings.Join(parts, " ")
}

// notes collects what went wrong outside the checker's view (errors,
// unexpected messages, lost sessions): per kind of note (its format), the
// first few and how many in all.
type notes struct {
	mu    sync.Mutex
	kinds []string // formats, in order of first appearance
	count map[string]int
	first map[string][]string
}

const notesPerKind = 3

func (n *notes) add(format string, args ...any) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.count == nil {
		n.count, n.first = map[string]int{}, map[string][]string{}
	}
	if n.count[format] == 0 {
		n.kinds = append(n.kinds, format)
	}
	n.count[format]++
	if len(n.first[format]) < notesPerKind {
		n.first[format] = append(n.first[format], fmt.Sprintf(format, args...))
	}
}

func (n *notes) all() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for _, k := range n.kinds {
		out = append(out, n.first[k]...)
		if c := n.count[k]; c > len(n.first[k]) {
			out = append(out, fmt.Sprintf("... %d notes like the last in all", c))
		}
	}
	return out
}
