package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-proto/ferry/client"
	"github.com/ferry-proto/ferry/protocol"
)

// defaultAddr is where ferryd listens on its defaults.
const defaultAddr = "127.0.0.1:7100"

// common are the flags every command that talks to a server has.
type common struct {
	addr, clientID, token string
	json, verbose         bool
	timeout               time.Duration
	connectTimeout        time.Duration
	binary                string // receiving commands: hex or base64
}

// flags is the flag set of one command.
type flags struct {
	*flag.FlagSet
	e                     *env
	name, synopsis, about string
}

// newFlags returns the flag set of a command. Errors are reported by run
// (exit 2); --help prints the synopsis, about and the flags on stdout.
func newFlags(e *env, name, synopsis, about string) *flags {
	fs := flag.NewFlagSet("ferry "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &flags{FlagSet: fs, e: e, name: name, synopsis: synopsis, about: about}
}

func (f *flags) printHelp() {
	f.SetOutput(f.e.stdout)
	w := f.e.stdout
	fmt.Fprintf(w, "Usage: ferry %s %s\n\n%s\n\nFlags:\n", f.name, f.synopsis, f.about)
	// As flag.PrintDefaults, with the "--" people type.
	f.VisitAll(func(fl *flag.Flag) {
		dash := "--"
		if len(fl.Name) == 1 {
			dash = "-"
		}
		arg, usage := flag.UnquoteUsage(fl)
		head := "  " + dash + fl.Name
		if arg != "" {
			head += " " + arg
		}
		switch fl.DefValue {
		case "", "0", "0s", "false":
		default:
			usage += " (default " + fl.DefValue + ")"
		}
		fmt.Fprintf(w, "%-30s %s\n", head, usage)
	})
}

// commonFlags registers the flags of every command that talks to a server;
// timeout's default and meaning vary by command.
func commonFlags(fs *flags, co *common, timeout time.Duration, timeoutUsage string) {
	fs.StringVar(&co.addr, "addr", "", "server `address` (default "+defaultAddr+", or $FERRY_ADDR)")
	fs.StringVar(&co.clientID, "client-id", "", "the client `id` to ask for (default: the server assigns one)")
	fs.StringVar(&co.token, "token", "", "authentication `token` (default $FERRY_TOKEN)")
	fs.BoolVar(&co.json, "json", false, "one JSON object per line for each message or result")
	fs.BoolVar(&co.verbose, "v", false, "verbose: connection events on stderr, and round-trip times")
	fs.DurationVar(&co.timeout, "timeout", timeout, timeoutUsage)
	fs.DurationVar(&co.connectTimeout, "connect-timeout", 5*time.Second, "how long to try to connect")
}

// binaryFlag registers --binary, how payloads that are not text are shown.
func binaryFlag(fs *flags, co *common) {
	fs.StringVar(&co.binary, "binary", "hex", "how to show payloads that are not text: `hex|base64`")
}

// parse parses args, flags and arguments in any order (the stdlib flag
// package stops at the first argument; people write flags after them too).
// "--" ends the flags. The environment fills what the flags left empty.
func (f *flags) parse(co *common, args []string) ([]string, error) {
	var pos []string
	for {
		if err := f.Parse(args); err != nil {
			if err == flag.ErrHelp {
				f.printHelp()
				return nil, flag.ErrHelp
			}
			return nil, &usageError{err.Error()}
		}
		rest := f.Args()
		if len(rest) == 0 {
			break
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
	if co != nil {
		if co.addr == "" {
			co.addr = os.Getenv("FERRY_ADDR")
		}
		if co.addr == "" {
			co.addr = defaultAddr
		}
		if co.token == "" {
			// Not a flag default: --help would print it.
			co.token = os.Getenv("FERRY_TOKEN")
		}
		if co.binary != "" && co.binary != "hex" && co.binary != "base64" {
			return nil, usagef("--binary %q: want hex or base64", co.binary)
		}
		if co.timeout < 0 || co.connectTimeout <= 0 {
			return nil, usagef("--timeout must not be negative, --connect-timeout must be positive")
		}
	}
	return pos, nil
}

// laneFlag is --lane: 1, 2, 3 or their names (SPEC §8.1).
type laneFlag protocol.Lane

func (l *laneFlag) String() string { return strconv.Itoa(int(*l)) }

func (l *laneFlag) Set(s string) error {
	switch strings.ToLower(s) {
	case "1", "interactive":
		*l = laneFlag(protocol.LaneInteractive)
	case "2", "normal":
		*l = laneFlag(protocol.LaneNormal)
	case "3", "bulk":
		*l = laneFlag(protocol.LaneBulk)
	default:
		return fmt.Errorf("lane %q: want 1 (interactive), 2 (normal) or 3 (bulk)", s)
	}
	return nil
}

func laneVar(fs *flags, def protocol.Lane) *laneFlag {
	l := laneFlag(def)
	fs.Var(&l, "lane", "`lane`: 1 interactive, 2 normal, 3 bulk (or their names)")
	return &l
}

// dial connects with the common flags and opts, trying for
// --connect-timeout.
func (co *common) dial(ctx context.Context, e *env, opts ...client.Option) (*client.Client, error) {
	var base []client.Option
	if co.clientID != "" {
		base = append(base, client.WithClientID(co.clientID))
	}
	if co.token != "" {
		base = append(base, client.WithToken([]byte(co.token)))
	}
	if co.verbose {
		base = append(base, client.WithLogger(slog.New(slog.NewTextHandler(e.stderr, nil))))
	}
	dctx, cancel := context.WithTimeout(ctx, co.connectTimeout)
	defer cancel()
	c, err := client.Dial(dctx, co.addr, append(base, opts...)...)
	if err != nil {
		if ctx.Err() != nil {
			return nil, errInterrupted
		}
		return nil, fmt.Errorf("connect to %s: %w", co.addr, err)
	}
	return c, nil
}
