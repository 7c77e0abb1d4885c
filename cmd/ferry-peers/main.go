// Command ferry-peers holds what ferry is compared with in one run
// (`make bench-compare`, bench/compare/compare.sh, docs/BENCHMARKS.md):
// two minimal FERRY/1 servers that ferry-bench's echo scenario can drive
// unchanged, a NATS load driver that does what ferry-bench's pubsub does, a
// pipelined echo load light enough to saturate a server, and the table that
// puts the results side by side.
//
//	ferry-peers rawgnet [--listen 127.0.0.1:0] [--loops N]
//	ferry-peers net [--listen 127.0.0.1:0]
//	ferry-peers nats-pubsub --url nats://127.0.0.1:4222 [--conns 1] [--duration 10s] [--size 16] [--json]
//	ferry-peers echo-load --addr 127.0.0.1:7100 [--conns 100] [--depth 16] [--size 1024] [--duration 10s] [--json]
//	ferry-peers report [--baseline ferry-gnet] [--target pubsub:ferry-gnet/nats-server>=1.5] MANIFEST
//
// rawgnet is FERRY/1's echo written straight on gnet, the floor of what
// gnet costs for this protocol; net is the same on the standard library
// with one goroutine per connection and 64 KiB bufio buffers. Both answer
// HELLO with a fixed WELCOME, turn each DATA request into its response by
// setting the RESPONSE flag in place, and answer PING with PONG: no lanes,
// sessions, acknowledgements or heartbeats of their own; a frame that would
// need them closes the connection. Each prints "listening ADDR" on standard
// output once it accepts connections and serves until SIGTERM or SIGINT.
//
// nats-pubsub is ferry-bench's pubsub scenario through nats.go: the same
// publish window, payload stamp, histogram and --json fields.
//
// echo-load is a pipelined echo load on bare sockets (HELLO, WELCOME, then
// --depth DATA requests in flight per connection, one write per refill):
// ferry-bench echo --light under the flags the comparison script has always
// used, kept so that the script and its recorded runs read the same. Its
// --json is ferry-bench's, with scenario "echo-pipelined".
//
// Exit status: 0 ok, 1 error, 2 usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/ferry-proto/ferry/bench"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/ferry-proto/ferry/protocol"
)

const usage = `usage: ferry-peers COMMAND [flags]

Commands:
  rawgnet      FERRY/1 echo on bare gnet (HELLO/WELCOME, DATA request -> response, PING -> PONG)
  net          the same with net.Listener, one goroutine per connection, 64 KiB bufio
  nats-pubsub  ferry-bench's pubsub scenario against a NATS server, through nats.go
  echo-load    a pipelined echo load on bare sockets (any FERRY/1 server that echoes route 1)
  report       the comparison table of a manifest of results (bench/compare/compare.sh)

ferry-peers COMMAND --help lists a command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "rawgnet", "net":
		err = serve(ctx, cmd, rest, stdout, stderr)
	case "nats-pubsub":
		err = natsPubSub(ctx, rest, stdout, stderr)
	case "echo-load":
		err = echoLoad(ctx, rest, stdout, stderr)
	case "report":
		err = report(rest, stdout, stderr)
	default:
		fmt.Fprintf(stderr, "ferry-peers: unknown command %q\n%s", cmd, usage)
		return 2
	}
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, new(usageError)):
		fmt.Fprintln(stderr, "ferry-peers:", err)
		return 2
	case err != nil:
		fmt.Fprintln(stderr, "ferry-peers:", err)
		return 1
	}
	return 0
}

// usageError is a command line that could not be parsed.
type usageError struct{ error }

func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) error {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	return nil
}

// server is what rawgnet and net have in common.
type server interface {
	Addr() string
	Stop() error
}

func serve(ctx context.Context, cmd string, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ferry-peers "+cmd, flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "listen address (port 0: any free port)")
	loops := 0
	if cmd == "rawgnet" {
		fs.IntVar(&loops, "loops", 0, "gnet event loops (0: GOMAXPROCS, as ferryd)")
	}
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))}
	}
	var s server
	var err error
	if cmd == "rawgnet" {
		s, err = startRawGnet(*listen, loops)
	} else {
		s, err = startNet(*listen)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, "listening", s.Addr())
	<-ctx.Done()
	return s.Stop()
}

func natsPubSub(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ferry-peers nats-pubsub", flag.ContinueOnError)
	var cfg natsConfig
	fs.StringVar(&cfg.URL, "url", "nats://127.0.0.1:4222", "NATS server URL")
	fs.IntVar(&cfg.Conns, "conns", 1, "subscribers, one connection each (the publisher is one more), as ferry-bench pubsub --conns")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long traffic runs")
	fs.IntVar(&cfg.Size, "size", 16, "payload bytes (at least 16: the stamp)")
	fs.IntVar(&cfg.Window, "window", 1000, "messages published and not yet delivered to every subscriber")
	fs.StringVar(&cfg.Subject, "subject", "bench.pubsub", "subject published to")
	jsonOut := fs.Bool("json", false, "print the result as one JSON object, with ferry-bench's field names")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))}
	}
	res, err := runNATSPubSub(ctx, cfg)
	if err != nil {
		return err
	}
	if *jsonOut {
		return writeJSON(stdout, res)
	}
	_, err = fmt.Fprintf(stdout, "nats-pubsub → %s: %d subscribers, %.1f s, %d B\n"+
		"  deliveries  %s msgs/s (%d)\n  published   %d\n  lost        %d\n  errors      %d\n"+
		"  latency ms  p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n",
		res.Addr, res.Connections-1, res.DurationS, res.Size, bench.FormatCount(res.MsgsPerSec), res.Msgs, res.Published,
		*res.Lost, res.Errors, bench.FormatMs(res.P50ms), bench.FormatMs(res.P90ms), bench.FormatMs(res.P99ms), bench.FormatMs(res.P999ms), bench.FormatMs(res.MaxMs))
	return err
}

func report(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ferry-peers report", flag.ContinueOnError)
	var o reportOptions
	fs.StringVar(&o.baseline, "baseline", "ferry-gnet", "contender the ratios are to")
	fs.Float64Var(&o.idleLimit, "idle-limit", 1024, "server bytes per idle connection the idle figure is held to")
	fs.BoolVar(&o.markdown, "markdown", false, "Markdown tables")
	fs.Func("target", "a ratio to check, SCENARIO:A/B>=MIN (repeatable)", func(s string) error {
		t, err := parseTarget(s)
		if err == nil {
			o.targets = append(o.targets, t)
		}
		return err
	})
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{errors.New("report takes one manifest file")}
	}
	entries, err := readManifest(fs.Arg(0))
	if err != nil {
		return err
	}
	return writeReport(stdout, entries, o)
}

func echoLoad(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ferry-peers echo-load", flag.ContinueOnError)
	var cfg echoConfig
	lane := fs.Uint("lane", uint(protocol.LaneNormal), "lane of the requests: 1, 2 or 3")
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:7100", "server's FERRY/1 address")
	fs.IntVar(&cfg.Conns, "conns", 100, "connections")
	fs.IntVar(&cfg.Depth, "depth", 16, "requests in flight per connection")
	fs.IntVar(&cfg.Size, "size", 1024, "payload bytes (8 to 16384: the send time, one unfragmented frame)")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long traffic runs")
	jsonOut := fs.Bool("json", false, "print the result as one JSON object, with ferry-bench's field names")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))}
	}
	if *lane < 1 || *lane > 3 {
		return usageError{fmt.Errorf("--lane %d: want 1, 2 or 3", *lane)}
	}
	cfg.Lane = protocol.Lane(*lane)
	res, err := runEchoLoad(ctx, cfg)
	if err != nil {
		return err
	}
	if *jsonOut {
		return res.WriteJSON(stdout)
	}
	_, err = fmt.Fprintf(stdout, "echo-load → %s: %d connections × %d in flight, %.1f s, %d B\n"+
		"  responses   %s msgs/s (%d)\n  errors      %d\n"+
		"  latency ms  p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n",
		res.Addr, res.Connections, cfg.Depth, res.DurationS, res.Size, bench.FormatCount(res.MsgsPerSec), res.Msgs, res.Errors,
		bench.FormatMs(res.P50ms), bench.FormatMs(res.P90ms), bench.FormatMs(res.P99ms), bench.FormatMs(res.P999ms), bench.FormatMs(res.MaxMs))
	return err
}
