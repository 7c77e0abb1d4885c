// Command ferry-bench is the load tool of ferry: it runs one scenario
// against a FERRY/1 server and reports throughput, latency percentiles,
// errors and reconnects.
//
//	ferry-bench echo --addr 127.0.0.1:7100 --conns 100 --duration 10s --size 1024
//	ferry-bench echo --light --conns 100 --inflight 16 --size 1024 --server-pid "$(pidof ferryd)"
//	ferry-bench pubsub --conns 1 --size 16 --json
//	ferry-bench idle --conns 18000 --sources 127.0.0.1-127.0.0.4 --admin 127.0.0.1:7101
//
// Progress goes to standard error (a status line on a terminal, plain lines
// otherwise); the result goes to standard output, as a table or, with
// --json, as one JSON object. --svg FILE draws the latency distribution.
// Ctrl-C stops the traffic and prints what was measured so far.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/ferry-proto/ferry/bench"
	"github.com/ferry-proto/ferry/protocol"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr, isTerminal(os.Stderr)))
}

// options are the flags that are not fields of bench.Config as they are.
type options struct {
	cfg              bench.Config
	sources, svg     string
	cpuProfile       string
	lane             uint
	jsonOut, quiet   bool
	progressInterval time.Duration
}

const usage = `usage: ferry-bench SCENARIO [flags]

Scenarios:
  echo             request/response on route 1 (ferryd's echo); --inflight per connection;
                   with --light on bare sockets, --inflight pipelined, to saturate a server
  pubsub           1 publisher -> --conns subscribers of one topic; latency per delivery
  fanout           as pubsub; latency until the last subscriber has the message
  direct           --conns clients in pairs sending DIRECT messages to each other
  idle             open --conns connections and hold them for --duration; server
                   memory per connection: heap+stack from --admin, or else resident
                   memory growth from --server-pid (bytes_per_conn_from says which)
  lanes            bulk requests of --size on lane 3 with --ping-rate lane-1 pings
                   per connection; latency per lane
  reconnect-storm  reset every client's socket at once after --drop-after; time until
                   all resumed, and whether any reliable message was lost

Flags:
`

// parse reads the scenario (first argument, or the first one after the
// flags) and the flags.
func parse(args []string, stderr io.Writer) (options, error) {
	var o options
	c := &o.cfg
	fs := flag.NewFlagSet("ferry-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	fs.StringVar(&c.Addr, "addr", "127.0.0.1:7100", "server's FERRY/1 address")
	fs.StringVar(&c.Admin, "admin", "127.0.0.1:7101", "server's admin HTTP address, for /metrics: memory per connection (idle), server CPU unless --server-pid (empty: none)")
	fs.IntVar(&c.ServerPID, "server-pid", 0, "server's process id (Linux): server CPU from /proc/PID/stat over the traffic window, for any server; idle without a reachable --admin reports the growth of its resident memory (VmRSS) per connection instead of heap+stack")
	fs.IntVar(&c.Conns, "conns", 0, "connections: clients, or subscribers (pubsub, fanout); 0: the scenario's default")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "how long traffic runs (idle: how long connections are held)")
	fs.IntVar(&c.Size, "size", 0, "payload bytes (0: 64; pubsub, fanout 16; lanes 1 MiB bulk)")
	fs.Float64Var(&c.Rate, "rate", 0, "open loop: total messages per second, latency from the intended send time (0: closed loop, as fast as answered)")
	fs.IntVar(&c.Inflight, "inflight", 1, "operations outstanding per connection (echo, direct; lanes: bulk requests); with --light the pipeline depth")
	fs.BoolVar(&c.Light, "light", false, "echo on bare sockets instead of the Go client: --inflight requests pipelined per connection, one write per refill; closed loop (no --rate), no --compression, --size 8 to 16384")
	fs.IntVar(&c.Window, "window", 0, "messages not yet delivered to every subscriber (pubsub, fanout; default 1000) or unacknowledged per client (reconnect-storm; default 256)")
	fs.UintVar(&o.lane, "lane", uint(protocol.LaneNormal), "lane of the messages: 1 interactive, 2 normal, 3 bulk")
	fs.BoolVar(&c.Reliable, "reliable", false, "reliable publishes (pubsub, fanout; direct and reconnect-storm always are)")
	fs.BoolVar(&c.Compression, "compression", false, "offer snappy compression (use with --fill text)")
	fs.StringVar(&c.Fill, "fill", "random", "payload content: random (incompressible), text or zero")
	fs.DurationVar(&c.Ramp, "ramp", 0, "spread the opening of connections over this long (0: as fast as --dialers allow)")
	fs.IntVar(&c.Dialers, "dialers", 64, "connections opened at once")
	fs.DurationVar(&c.ConnectTimeout, "connect-timeout", 10*time.Second, "bound on each connection's dial and handshake")
	fs.StringVar(&o.sources, "sources", "", "local addresses to dial from, round robin per connection: 127.0.0.1-127.0.0.8 or a,b,c")
	fs.DurationVar(&c.Heartbeat, "heartbeat", 0, "heartbeat interval to propose; the server decides (0: its default; idle asks for 1h, so the server's maximum)")
	fs.DurationVar(&c.Backoff, "backoff", 0, "clients' first reconnect delay (0: the client's default, 500ms)")
	fs.Float64Var(&c.PingRate, "ping-rate", 100, "lane-1 pings per second per connection (lanes)")
	fs.DurationVar(&c.DropAfter, "drop-after", 0, "when reconnect-storm resets the sockets, from the start of traffic (0: a third of --duration)")
	fs.StringVar(&c.StormVia, "via", "direct", "what reconnect-storm sends: direct (reliable end to end) or publish (reliable PUBLISH to a topic of its own)")
	fs.BoolVar(&c.FullClients, "full-clients", false, "idle: hold full clients (4 goroutines each) instead of bare sockets")
	fs.BoolVar(&o.jsonOut, "json", false, "print the result as one JSON object")
	fs.StringVar(&o.svg, "svg", "", "write the latency distribution plot to this SVG file")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress reports")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write the load generator's own CPU profile to this file (what limits it, when cli CPU s is near the duration)")
	fs.DurationVar(&o.progressInterval, "progress", time.Second, "interval of progress reports")

	if err := fs.Parse(args); err != nil {
		return o, err
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fs.Usage()
		return o, errors.New("no scenario given")
	}
	c.Scenario = rest[0]
	if err := fs.Parse(rest[1:]); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if o.lane < uint(protocol.LaneInteractive) || o.lane > uint(protocol.LaneBulk) {
		return o, fmt.Errorf("--lane %d: want 1, 2 or 3", o.lane)
	}
	c.Lane = protocol.Lane(o.lane)
	c.ProgressEvery = o.progressInterval
	if o.sources != "" {
		src, err := bench.ParseSources(o.sources)
		if err != nil {
			return o, err
		}
		c.Sources = src
	}
	return o, c.WithDefaults().Validate()
}

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, tty bool) int {
	o, err := parse(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "ferry-bench:", err)
		return 2
	}
	var pp *bench.ProgressPrinter
	if !o.quiet {
		pp = bench.NewProgressPrinter(stderr, tty)
		o.cfg.Progress = pp.Report
	}
	if o.cpuProfile != "" {
		stopProfile, err := startCPUProfile(o.cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "ferry-bench:", err)
			return 1
		}
		defer stopProfile()
	}
	res, err := bench.Run(ctx, o.cfg)
	if pp != nil {
		pp.Done()
	}
	if err != nil {
		fmt.Fprintln(stderr, "ferry-bench:", err)
		return 1
	}
	if o.jsonOut {
		err = res.WriteJSON(stdout)
	} else {
		err = res.WriteTable(stdout)
	}
	if err == nil && o.svg != "" {
		err = writeSVG(o.svg, res)
	}
	if err != nil {
		fmt.Fprintln(stderr, "ferry-bench:", err)
		return 1
	}
	return 0
}

func writeSVG(path string, res *bench.Result) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := res.WriteSVG(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// startCPUProfile starts the CPU profile into path; the returned function
// stops it and closes the file.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// isTerminal reports whether f is a character device: a terminal, for a
// status line rewritten in place.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
