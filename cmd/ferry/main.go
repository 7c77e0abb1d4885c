// Command ferry is the command-line client of ferry servers, for people, in
// the manner of mosquitto_pub/mosquitto_sub and the nats CLI: publish and
// subscribe, send requests and direct messages, listen for what comes to a
// client id, and mint tokens.
//
//	ferry sub 'game/+/score'                 # prints what is published there
//	ferry pub game/7/score 42 --reliable     # publishes, waits for the ACK
//	ferry req 1 hello -v                     # route 1 of ferryd echoes
//	ferry listen --client-id bob --echo      # prints direct messages to bob
//	ferry send bob 'hi bob'                  # prints the delivery receipt
//	ferry token --client-id bob --subscribe 'game/#' --auth-secret-file s
//
// It speaks FERRY/1 through the Go client library (package client), so it
// reconnects and resumes like any client; run is the whole program as a
// function, which the tests call against a server in the test process.
//
// Exit status: 0 ok, 1 an error (its protocol error code, if any, named on
// stderr), 2 a usage error, 130 interrupted before a one-shot command (pub,
// req, send) finished. Ctrl-C is the normal way to end sub and listen, and
// pub --count 0: they exit 0.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	go func() {
		// The first Ctrl-C stops the command cleanly (it may still flush
		// for up to --timeout); a second one kills the process.
		<-ctx.Done()
		stop()
	}()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// Exit codes.
const (
	exitOK          = 0
	exitError       = 1
	exitUsage       = 2
	exitInterrupted = 130 // as shells report SIGINT
)

// usageError is a mistake on the command line: exit 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

// errInterrupted: ctx ended (Ctrl-C) before a one-shot command finished.
var errInterrupted = errors.New("interrupted")

// env is what a command works with: its streams, safe for the client's
// callback goroutine and the command's own to write at once.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

type command struct {
	name, args, summary string
	run                 func(ctx context.Context, e *env, args []string) error
}

var commands = []command{
	{"pub", "TOPIC [MESSAGE]", "publish a message on a topic", cmdPub},
	{"sub", "PATTERN...", "print the messages published on topics matching the patterns", cmdSub},
	{"req", "ROUTE [PAYLOAD]", "send a request to a route and print the response", cmdReq},
	{"send", "PEER [MESSAGE]", "send a direct message to a client id and print the delivery receipt", cmdSend},
	{"listen", "", "print the direct messages and DATA sent to this client", cmdListen},
	{"token", "--client-id ID", "mint a client token, as ferryd mint-token does", cmdToken},
}

const usageTail = `
Common flags (every command but token):
  --addr HOST:PORT        server address (default 127.0.0.1:7100, or $FERRY_ADDR)
  --client-id ID          the client id to ask for (default: the server assigns one)
  --token TOKEN           authentication token (default $FERRY_TOKEN; see ferry token)
  --json                  one JSON object per line for each message or result
  --timeout D             how long to wait (the default depends on the command)
  --connect-timeout D     how long to try to connect (default 5s)
  -v                      connection events on stderr; round-trip times

Flags may come before or after the arguments; "--" ends them (ferry pub t -- -1).

Exit status: 0 ok, 1 error (the protocol error code is named on stderr),
2 usage error, 130 interrupted.
`

func printUsage(w io.Writer) {
	fmt.Fprintf(w, "ferry: a command-line client of ferry servers (FERRY/1).\n\nUsage:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  ferry %-22s %s\n", strings.TrimSpace(c.name+" "+c.args), c.summary)
	}
	fmt.Fprintf(w, "\nRun 'ferry COMMAND --help' for the flags of a command.\n%s", usageTail)
}

// run is the whole program: it parses args, runs the command until it is
// done or ctx ends, and returns the exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: &lockedWriter{w: stdout}, stderr: &lockedWriter{w: stderr}}
	if len(args) == 0 {
		printUsage(e.stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		printUsage(e.stdout)
		return exitOK
	}
	var cmd *command
	for i := range commands {
		if commands[i].name == name {
			cmd = &commands[i]
		}
	}
	if cmd == nil {
		fmt.Fprintf(e.stderr, "ferry: unknown command %q\n\n", name)
		printUsage(e.stderr)
		return exitUsage
	}
	err := cmd.run(ctx, e, args[1:])
	var ue *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(e.stderr, "ferry %s: %s\nRun 'ferry %s --help' for usage.\n", name, ue.msg, name)
		return exitUsage
	case errors.Is(err, errInterrupted):
		fmt.Fprintf(e.stderr, "ferry %s: interrupted\n", name)
		return exitInterrupted
	}
	fmt.Fprintf(e.stderr, "ferry %s: %s\n", name, describe(err))
	return exitError
}

// lockedWriter serialises writes: the client's callback goroutine prints
// messages while the command's goroutine may print results and notices.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
