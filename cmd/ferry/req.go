package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-proto/ferry/protocol"
)

const reqAbout = `Sends PAYLOAD (the argument, all of standard input with --stdin, or
nothing) to ROUTE as a request (SPEC §6.1) and prints the response: as text,
in hex or base64 when it is not (--binary), or as it is with --raw. -v adds
the round-trip time on stderr. A failure prints the server's code (exit 1):

  ferry req: route 99: NO_SUCH_ROUTE

ROUTE is a number (decimal, or 0x... hex); ferryd answers route 1 (echo).
Requests are not reliable: one cut off by a disconnect fails.`

func cmdReq(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "req", "ROUTE [PAYLOAD] [flags]", reqAbout)
	var co common
	commonFlags(f, &co, 5*time.Second, "how long to wait for the response (0: no limit)")
	binaryFlag(f, &co)
	lane := laneVar(f, protocol.LaneInteractive)
	whole := f.Bool("stdin", false, "read the payload from standard input, all of it")
	raw := f.Bool("raw", false, "print the response's bytes as they are, without a newline")
	pos, err := f.parse(&co, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 || len(pos) > 2 {
		return usagef("want ROUTE and an optional PAYLOAD")
	}
	r, err := strconv.ParseUint(pos[0], 0, 32)
	if err != nil {
		return usagef("route %q: want a number from 0 to %d", pos[0], uint32(1<<32-1))
	}
	route := uint32(r)
	var payload []byte
	switch {
	case len(pos) == 2 && *whole:
		return usagef("give PAYLOAD or --stdin, not both")
	case len(pos) == 2:
		payload = []byte(pos[1])
	case *whole:
		if payload, err = readAll(ctx, e.stdin); err != nil {
			return err
		}
	}
	p := newPrinter(e, &co)
	res := &resultJSON{Route: &route, Lane: uint8(*lane)}
	fail := func(err error) error { return p.failed(res, err) }
	c, err := co.dial(ctx, e)
	if err != nil {
		return fail(err)
	}
	defer c.Close()
	rctx, cancel := withTimeout(ctx, co.timeout)
	defer cancel()
	start := time.Now()
	resp, err := c.Request(rctx, protocol.Lane(*lane), route, payload)
	rtt := time.Since(start)
	if err != nil {
		if ctx.Err() != nil {
			return errInterrupted
		}
		return fail(fmt.Errorf("route %d: %w", route, timedOut(err, co.timeout, "no response")))
	}
	switch {
	case co.json:
		res.OK, res.Bytes, res.RTTMillis = true, ptr(len(resp)), millis(rtt)
		pl := p.payload(resp)
		res.payloadJSON = &pl
		p.emit(res)
	case *raw:
		e.stdout.Write(resp)
	case isText(resp):
		if len(resp) > 0 {
			fmt.Fprintln(e.stdout, strings.TrimSuffix(string(resp), "\n"))
		}
	default:
		fmt.Fprintln(e.stdout, p.encode(resp))
	}
	if co.verbose {
		fmt.Fprintf(e.stderr, "route %d: %d bytes in %v\n", route, len(resp), rtt.Round(time.Microsecond))
	}
	return nil
}

const sendAbout = `Sends MESSAGE (the argument, all of standard input with --stdin, or each
line of it with --lines) to the client whose id is PEER (SPEC §6.3), and
prints the server's delivery receipt for each: OK once the message is queued
for the peer (connected, or its session waiting offline), or the code that
refused it (exit 1):

  ferry send: bob: NO_SUCH_CLIENT

The peer sees the message with this client's id as its sender (ferry listen).
Direct messages are reliable: the Go client sends them no other way.`

func cmdSend(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "send", "PEER [MESSAGE] [flags]", sendAbout)
	var co common
	commonFlags(f, &co, 5*time.Second, "how long to wait for each receipt (0: no limit)")
	lane := laneVar(f, protocol.LaneNormal)
	reliable := f.Bool("reliable", true, "reliable delivery (the only kind the client library sends)")
	src := sourceFlags(f)
	pos, err := f.parse(&co, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 || len(pos) > 2 {
		return usagef("want PEER and MESSAGE (or --stdin, --lines)")
	}
	peer := pos[0]
	if peer == "" || len(peer) > protocol.MaxClientIDLen {
		return usagef("PEER must be 1 to %d bytes", protocol.MaxClientIDLen)
	}
	if !*reliable {
		return usagef("--reliable=false: the client library sends direct messages reliably only")
	}
	if len(pos) == 2 {
		src.arg = &pos[1]
	}
	if err := src.check(); err != nil {
		return err
	}
	var payload []byte
	if !src.lines {
		if payload, err = src.payload(ctx, e.stdin); err != nil {
			return err
		}
	}
	p := newPrinter(e, &co)
	newRes := func() *resultJSON { return &resultJSON{Peer: peer, Lane: uint8(*lane), Reliable: reliable} }
	fail := p.failed
	c, err := co.dial(ctx, e)
	if err != nil {
		return fail(newRes(), err)
	}
	defer c.Close()
	send := func(b []byte) error {
		res := newRes()
		res.Bytes = ptr(len(b))
		sctx, cancel := withTimeout(ctx, co.timeout)
		defer cancel()
		start := time.Now()
		err := c.Direct(sctx, peer, protocol.Lane(*lane), b)
		rtt := time.Since(start)
		if err != nil {
			if ctx.Err() != nil {
				return errInterrupted
			}
			return fail(res, fmt.Errorf("%s: %w", peer, timedOut(err, co.timeout, "no receipt")))
		}
		if co.json {
			res.OK, res.Code, res.RTTMillis = true, protocol.CodeOK.String(), millis(rtt)
			p.emit(res)
			return nil
		}
		line := fmt.Sprintf("%s: OK (%d bytes, lane %d)", peer, len(b), *lane)
		if co.verbose {
			line += fmt.Sprintf(" in %v", rtt.Round(time.Microsecond))
		}
		fmt.Fprintln(e.stdout, line)
		return nil
	}
	if src.lines {
		err = readLines(ctx, e.stdin, send)
		if err != nil && ctx.Err() != nil {
			return errInterrupted
		}
		return err
	}
	return send(payload)
}

// timedOut words a deadline that ran out: "no response within 5s".
func timedOut(err error, timeout time.Duration, what string) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s within %v", what, timeout)
	}
	return err
}
