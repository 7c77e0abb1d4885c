package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferry-proto/ferry/client"
	"github.com/ferry-proto/ferry/protocol"
)

const subAbout = `Subscribes to each PATTERN (SPEC §7.5: '+' matches one level, '#' the rest)
and prints every message published on a matching topic, once even when
several patterns match it:

  game/7/score (lane 2): 42
  sensor/1/raw (lane 3, 4 bytes hex): 00ff10a0

Payloads that are not text are shown in hex or base64 (--binary). Runs until
Ctrl-C (exit 0), --count messages (exit 0) or --timeout: exit 1 if --count
messages had not come by then, 0 otherwise. Subscriptions are made again
after a reconnect.`

func cmdSub(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "sub", "PATTERN... [flags]", subAbout)
	var co common
	commonFlags(f, &co, 0, "stop after this long (0: no limit)")
	binaryFlag(f, &co)
	count := f.Int("count", 0, "stop after `N` messages (0: no limit)")
	pos, err := f.parse(&co, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef("want at least one PATTERN")
	}
	if *count < 0 {
		return usagef("--count must not be negative")
	}
	rc := newReceiver(e, &co, *count)
	// SPEC §7.5 via the client: a PUBLISH reaches the handler of every
	// pattern that matches its topic, each with the same *Message; print
	// it once.
	var last *client.Message
	h := func(m *client.Message) error {
		if m == last {
			return nil
		}
		last = m
		rc.handle(m)
		return nil
	}
	c, err := co.dial(ctx, e, client.WithStateHandler(rc.onEvent))
	if err != nil {
		return err
	}
	defer c.Close()
	sctx, cancel := context.WithTimeout(ctx, co.connectTimeout)
	defer cancel()
	for _, pat := range pos {
		if err := c.Subscribe(sctx, pat, h); err != nil {
			if ctx.Err() != nil {
				return nil // Ctrl-C: the normal end of sub
			}
			if errors.Is(err, context.DeadlineExceeded) {
				return fmt.Errorf("subscribe %s: no answer within %v", pat, co.connectTimeout)
			}
			return fmt.Errorf("subscribe %s: %w", pat, err)
		}
	}
	fmt.Fprintf(e.stderr, "subscribed to %s as %s\n", strings.Join(pos, ", "), c.ClientID())
	return rc.wait(ctx, co.timeout)
}

const listenAbout = `Prints what is sent to this client: direct messages from other clients
(ferry send) and DATA from the server, one-way or requests:

  direct from alice (lane 2): hello
  request to route 7 (lane 1): ping

Give --client-id so that others can reach it; ferry prints the id in effect
on stderr. Requests are answered with their own payload under --echo, and
with HANDLER_ERROR otherwise. Runs until Ctrl-C (exit 0), --count messages
(exit 0) or --timeout: exit 1 if --count messages had not come by then.`

func cmdListen(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "listen", "[flags]", listenAbout)
	var co common
	commonFlags(f, &co, 0, "stop after this long (0: no limit)")
	binaryFlag(f, &co)
	count := f.Int("count", 0, "stop after `N` messages (0: no limit)")
	echo := f.Bool("echo", false, "answer requests with their payload")
	pos, err := f.parse(&co, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	if *count < 0 {
		return usagef("--count must not be negative")
	}
	rc := newReceiver(e, &co, *count)
	var marker [16]byte
	rand.Read(marker[:])
	var (
		closing  atomic.Bool
		answered atomic.Uint32 // lanes that requests were answered on
		settled  = make(chan struct{})
		settle   sync.Once
	)
	h := func(m *client.Message) error {
		if closing.Load() {
			if m.Kind == client.KindDirect && bytes.Equal(m.Payload, marker[:]) {
				settle.Do(func() { close(settled) })
			}
			if m.IsRequest() {
				answered.Or(1 << m.Lane)
				return errors.New("ferry listen: closing")
			}
			return nil
		}
		if !m.IsRequest() {
			rc.handle(m)
			return nil
		}
		answered.Or(1 << m.Lane) // before handle may end the wait
		rc.handle(m)
		if *echo {
			if err := m.Reply(m.Payload); err != nil && co.verbose {
				fmt.Fprintf(e.stderr, "ferry listen: reply to route %d: %s\n", m.Route, describe(err))
			}
			return nil
		}
		return errors.New("ferry listen answers requests only with --echo")
	}
	c, err := co.dial(ctx, e, client.WithHandler(h), client.WithStateHandler(rc.onEvent))
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Fprintf(e.stderr, "listening as %s\n", c.ClientID())
	err = rc.wait(ctx, co.timeout)

	// The answers to requests must reach the server before Close, which
	// drops what is not written. The handler answers some of them after it
	// returns, so first our own marker, coming back through the callback
	// goroutine after every message before it, shows that they are all
	// queued; then drain sees them read. At most --connect-timeout.
	closing.Store(true)
	if answered.Load() != 0 {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), co.connectTimeout)
		defer cancel()
		if c.Direct(sctx, c.ClientID(), protocol.LaneInteractive, marker[:]) == nil {
			select {
			case <-settled:
			case <-sctx.Done():
			}
		}
		_ = drain(sctx, c, answered.Load())
	}
	return err
}

// receiver prints the messages of sub and listen and says when to stop.
type receiver struct {
	e      *env
	p      *printer
	count  int64 // 0: no limit
	n      atomic.Int64
	done   chan struct{} // closed at count messages
	closed chan error    // the client closed for good (cap 1)
}

func newReceiver(e *env, co *common, count int) *receiver {
	return &receiver{e: e, p: newPrinter(e, co), count: int64(count),
		done: make(chan struct{}), closed: make(chan error, 1)}
}

// handle prints m, up to count messages. On the client's callback
// goroutine.
func (r *receiver) handle(m *client.Message) {
	if r.count > 0 && r.n.Load() >= r.count {
		return
	}
	r.p.message(m)
	if n := r.n.Add(1); n == r.count {
		close(r.done)
	}
}

// onEvent reports what the user must know of the connection: a new
// session (the server lost the old one, and what it queued), and the
// client closing for good (AUTH_FAILED, SESSION_TAKEN_OVER, ...).
func (r *receiver) onEvent(ev client.Event) {
	switch ev.Kind {
	case client.EventNewSession:
		fmt.Fprintln(r.e.stderr, "ferry: reconnected with a new session: messages sent meanwhile may be lost")
	case client.EventClosed:
		if ev.Err != nil {
			select {
			case r.closed <- ev.Err:
			default:
			}
		}
	}
}

// wait returns when count messages have come (nil), ctx ends (Ctrl-C:
// nil), the timeout passes (an error if count messages were expected), or
// the client closes for good (its error).
func (r *receiver) wait(ctx context.Context, timeout time.Duration) error {
	var expire <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expire = t.C
	}
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return nil
	case err := <-r.closed:
		return err
	case <-expire:
		if n := r.n.Load(); r.count > 0 && n < r.count {
			return fmt.Errorf("timed out after %v with %d of %d messages", timeout, n, r.count)
		}
		return nil
	}
}
