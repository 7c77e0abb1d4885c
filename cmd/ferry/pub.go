package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ferry-proto/ferry/client"
	"github.com/ferry-proto/ferry/protocol"
)

const pubAbout = `Publishes MESSAGE on TOPIC (SPEC §6.2): to every client subscribed to a
pattern that matches it. The message is the argument, all of standard input
(--stdin), or each line of it (--lines). Unreliable by default: sent once.
--reliable numbers it and waits for the server's acknowledgement; a message
the session lost on the way is reported (exit 1).

Prints nothing on success (-v: a summary on stderr; --json: a result object).
The server does not answer a publication, so one it refuses (FORBIDDEN,
INVALID_TOPIC) is not reported; ferry checks the topic for wildcards first.`

func cmdPub(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "pub", "TOPIC [MESSAGE] [flags]", pubAbout)
	var co common
	commonFlags(f, &co, 5*time.Second, "how long to wait at the end for the server to take what was published (0: no limit)")
	lane := laneVar(f, protocol.LaneNormal)
	reliable := f.Bool("reliable", false, "reliable: numbered, acknowledged, resent after a reconnect")
	count := f.Int("count", 1, "publish the message `N` times (0: until interrupted); not with --lines")
	interval := f.Duration("interval", 0, "pause between two messages")
	src := sourceFlags(f)
	pos, err := f.parse(&co, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 || len(pos) > 2 {
		return usagef("want TOPIC and MESSAGE (or --stdin, --lines)")
	}
	topic := pos[0]
	if err := checkTopic(topic); err != nil {
		return err
	}
	if len(pos) == 2 {
		src.arg = &pos[1]
	}
	if err := src.check(); err != nil {
		return err
	}
	if *count < 0 || *interval < 0 {
		return usagef("--count and --interval must not be negative")
	}
	if src.lines && *count != 1 {
		return usagef("--count does not combine with --lines")
	}
	var payload []byte
	if !src.lines {
		if payload, err = src.payload(ctx, e.stdin); err != nil {
			return err
		}
	}
	res := &resultJSON{Topic: topic, Lane: uint8(*lane), Reliable: reliable, Published: new(int)}
	p := newPrinter(e, &co)
	fail := func(err error) error { return p.failed(res, err) }
	c, err := co.dial(ctx, e)
	if err != nil {
		return fail(err)
	}
	defer c.Close()

	pub := publisher{c: c, lane: protocol.Lane(*lane), topic: topic, reliable: *reliable}
	publish := func(b []byte) error {
		if *res.Published > 0 && *interval > 0 {
			if err := sleep(ctx, *interval); err != nil {
				return err
			}
		}
		if err := pub.publish(ctx, b); err != nil {
			return err
		}
		*res.Published++
		return nil
	}
	if src.lines {
		err = readLines(ctx, e.stdin, publish)
	} else {
		for i := 0; (*count == 0 || i < *count) && err == nil; i++ {
			err = publish(payload)
		}
	}
	interrupted := ctx.Err() != nil
	if err != nil && !interrupted {
		return fail(err)
	}
	// What was published reaches the server, even after Ctrl-C, for at
	// most --timeout.
	fctx, cancel := withTimeout(context.WithoutCancel(ctx), co.timeout)
	defer cancel()
	if err := pub.finish(fctx); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("the server did not take the messages within %v: %w", co.timeout, err)
		}
		return fail(err)
	}
	if co.json {
		res.OK = true
		p.emit(res)
	}
	if co.verbose {
		mode := "unreliable"
		if *reliable {
			mode = "reliable"
		}
		fmt.Fprintf(e.stderr, "published %d %s messages to %s on lane %d\n", *res.Published, mode, topic, *lane)
	}
	if interrupted && (src.lines || *count != 0) {
		return errInterrupted
	}
	return nil
}

// checkTopic refuses what no server takes as a topic (SPEC §6.2, §7.5): an
// empty one, one too long, and the wildcards, which belong in patterns.
// The server does not answer a publication, so ferry checks first.
func checkTopic(topic string) error {
	switch {
	case topic == "":
		return usagef("empty topic")
	case len(topic) > protocol.MaxTopicLen:
		return usagef("topic longer than %d bytes", protocol.MaxTopicLen)
	case strings.ContainsAny(topic, "+#\x00"):
		return usagef("topic %q holds a wildcard ('+', '#') or NUL: those are for sub patterns", topic)
	}
	return nil
}

// publisher publishes on one topic and lane.
type publisher struct {
	c        *client.Client
	lane     protocol.Lane
	topic    string
	reliable bool
}

func (p *publisher) publish(ctx context.Context, b []byte) error {
	for {
		err := p.c.Publish(p.lane, p.topic, b, p.reliable)
		if !errors.Is(err, client.ErrQueueFull) {
			return err
		}
		// Publishing faster than the connection takes it: wait for room.
		if p.reliable {
			if err := p.c.Flush(ctx); err != nil {
				return err
			}
		} else if err := sleep(ctx, time.Millisecond); err != nil {
			return err
		}
	}
}

// finish returns once the server has what was published: for reliable
// messages their acknowledgements (and none lost with a session), for
// unreliable ones drain.
func (p *publisher) finish(ctx context.Context) error {
	if p.reliable {
		if err := p.c.Flush(ctx); err != nil {
			return err
		}
		if lost := p.c.Stats().Lost; lost > 0 {
			return fmt.Errorf("%d reliable messages lost: the server started a new session before acknowledging them", lost)
		}
		return nil
	}
	if err := drain(ctx, p.c, 1<<p.lane); err != nil {
		return err
	}
	if dropped := p.c.Stats().Dropped; dropped > 0 {
		return fmt.Errorf("%d messages dropped: the connection ended before they were written", dropped)
	}
	return nil
}

// drain returns once the server has read the unreliable frames queued so
// far on the lanes of the mask (bit l: lane l): publications, responses.
// Close drops what is not written yet, and Flush waits for reliable
// messages only, so a direct message to ourselves on each lane, queued
// behind them and answered by the server in order, shows that the server
// has read them. Any answer does (FORBIDDEN too, when the token allows no
// direct messages).
func drain(ctx context.Context, c *client.Client, lanes uint32) error {
	for l := protocol.LaneInteractive; l < protocol.NumLanes; l++ {
		if lanes&(1<<l) == 0 {
			continue
		}
		err := c.Direct(ctx, c.ClientID(), l, nil)
		var re *client.ResultError
		if err != nil && !errors.As(err, &re) {
			return err
		}
	}
	return nil
}

// sleep waits d, or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// withTimeout is context.WithTimeout where 0 means no limit.
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d == 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}
