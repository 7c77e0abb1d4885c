package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ferry-proto/ferry/codec"
	"github.com/ferry-proto/ferry/internal/wiretest"
	"github.com/ferry-proto/ferry/protocol"
	"github.com/ferry-proto/ferry/reactor"
	"github.com/ferry-proto/ferry/router"
)

func TestMain(m *testing.M) {
	// The tests say where to connect and with what; a developer's
	// environment must not.
	for _, k := range []string{"FERRY_ADDR", "FERRY_TOKEN", "FERRY_AUTH_SECRET", "FERRY_AUTH_SECRET_FILE"} {
		os.Unsetenv(k)
	}
	goleak.VerifyTestMain(m, wiretest.LeakOptions()...)
}

// routeEcho is ferryd's built-in route 1 (cmd/ferryd registerBuiltins).
const routeEcho = 1

// server is a ferry server in the test process, built as cmd/ferryd
// builds it, on a port the kernel picks.
type server struct {
	addr string
	tap  *tap
}

// startServer starts a server; with a secret it takes tokens only.
func startServer(t *testing.T, secret []byte) *server {
	t.Helper()
	var auth router.Authenticator = router.Anonymous{}
	if secret != nil {
		auth = &router.TokenAuth{Secret: secret}
	}
	r := router.New(router.Options{Auth: auth})
	r.Handle(routeEcho, "ferry.echo", func(ctx *router.Context) { _ = ctx.Reply(ctx.Payload()) })
	tp := &tap{Router: r, answers: make(chan codec.Frame, 16)}
	srv, err := reactor.New(reactor.Config{Addr: "127.0.0.1:0", Loops: 2, Handler: tp, DrainTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return &server{addr: srv.Addr(), tap: tp}
}

// tap is the router with two additions the tests need: the connections by
// client id, so that a test can send DATA to one as the server, and the
// answers clients send to those requests, which the router ignores.
type tap struct {
	*router.Router
	conns   sync.Map // client id → *reactor.Conn
	answers chan codec.Frame
}

func (t *tap) OnOpen(c *reactor.Conn) {
	t.conns.Store(c.ClientID(), c)
	t.Router.OnOpen(c)
}

func (t *tap) OnMessage(c *reactor.Conn, f *codec.Frame) {
	if (f.Type == protocol.FrameData && f.Flags.Has(protocol.FlagResponse)) || (f.Type == protocol.FrameResult && f.Corr >= 1000) {
		g := *f
		g.Payload = bytes.Clone(f.Payload)
		select {
		case t.answers <- g:
		default:
		}
		return
	}
	t.Router.OnMessage(c, f)
}

// conn waits for the client id to connect and returns its connection.
func (t *tap) conn(tb testing.TB, id string) *reactor.Conn {
	tb.Helper()
	var c *reactor.Conn
	waitFor(tb, "client "+id+" to connect", func() bool {
		v, ok := t.conns.Load(id)
		if ok {
			c = v.(*reactor.Conn)
		}
		return ok
	})
	return c
}

// result is what one run of the CLI did.
type result struct {
	code           int
	stdout, stderr string
}

// ferry runs the CLI to its end with stdin, bounded in time.
func ferry(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out, errOut wiretest.SyncBuffer
	code := run(ctx, args, strings.NewReader(stdin), &out, &errOut)
	if ctx.Err() != nil {
		t.Fatalf("ferry %s: still running after 20 s", strings.Join(args, " "))
	}
	return result{code, out.String(), errOut.String()}
}

// background is a run of the CLI in its own goroutine: sub and listen.
type background struct {
	out, err wiretest.SyncBuffer
	cancel   context.CancelFunc
	done     chan int
}

func start(t *testing.T, args ...string) *background {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	b := &background{cancel: cancel, done: make(chan int, 1)}
	go func() { b.done <- run(ctx, args, strings.NewReader(""), &b.out, &b.err) }()
	t.Cleanup(func() {
		cancel()
		<-b.done
	})
	return b
}

// waitStderr waits until the run has written s on stderr.
func (b *background) waitStderr(t *testing.T, s string) {
	t.Helper()
	waitFor(t, "stderr to say "+s, func() bool { return strings.Contains(b.err.String(), s) })
}

// wait waits for the run to end by itself and returns what it did.
func (b *background) wait(t *testing.T) result {
	t.Helper()
	select {
	case code := <-b.done:
		b.done <- code // for the cleanup
		return result{code, b.out.String(), b.err.String()}
	case <-time.After(20 * time.Second):
		t.Fatalf("still running after 20 s; stdout:\n%s\nstderr:\n%s", b.out.String(), b.err.String())
		return result{}
	}
}

// stop interrupts the run (Ctrl-C) and returns what it did.
func (b *background) stop(t *testing.T) result {
	t.Helper()
	b.cancel()
	return b.wait(t)
}

func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
