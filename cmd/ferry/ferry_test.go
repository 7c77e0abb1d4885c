package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-proto/ferry/codec"
	"github.com/ferry-proto/ferry/protocol"
	"github.com/ferry-proto/ferry/router"
)

// jsonLines parses every line of out as one JSON object.
func jsonLines[T any](t *testing.T, out string) []T {
	t.Helper()
	var vs []T
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		var v T
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("not a JSON object per line: %q: %v\n%s", line, err, out)
		}
		vs = append(vs, v)
	}
	return vs
}

type msgOut struct {
	Kind     string  `json:"kind"`
	Topic    string  `json:"topic"`
	Peer     string  `json:"peer"`
	Route    *uint32 `json:"route"`
	Request  bool    `json:"request"`
	Lane     int     `json:"lane"`
	Reliable bool    `json:"reliable"`
	Bytes    int     `json:"bytes"`
	Encoding string  `json:"encoding"`
	Payload  string  `json:"payload"`
}

type resultOut struct {
	OK        bool     `json:"ok"`
	Code      string   `json:"code"`
	Error     string   `json:"error"`
	Route     *uint32  `json:"route"`
	Published int      `json:"published"`
	Bytes     int      `json:"bytes"`
	RTTMillis *float64 `json:"rtt_ms"`
	Encoding  string   `json:"encoding"`
	Payload   string   `json:"payload"`
}

// pub → sub: text, binary, reliable lines and flags after the arguments
// arrive once each under --json, although two patterns match them all.
func TestPubSubJSON(t *testing.T) {
	s := startServer(t, nil)
	sub := start(t, "sub", "--addr", s.addr, "--json", "--count", "5", "--binary", "base64", "a/#", "a/+")
	sub.waitStderr(t, "subscribed to a/#, a/+")

	if r := ferry(t, "", "pub", "--addr", s.addr, "a/b", "hello"); r.code != 0 {
		t.Fatalf("pub: exit %d: %s", r.code, r.stderr)
	}
	if r := ferry(t, "\x00\x01\xff", "pub", "a/c", "--stdin", "--addr", s.addr, "--lane", "bulk"); r.code != 0 {
		t.Fatalf("pub --stdin: exit %d: %s", r.code, r.stderr)
	}
	r := ferry(t, "one\r\ntwo\n-3\n", "pub", "a/d", "--lines", "--reliable", "--json", "--addr", s.addr)
	if r.code != 0 {
		t.Fatalf("pub --lines: exit %d: %s", r.code, r.stderr)
	}
	if res := jsonLines[resultOut](t, r.stdout); len(res) != 1 || !res[0].OK || res[0].Published != 3 {
		t.Fatalf("pub --json: %s", r.stdout)
	}

	got := sub.wait(t)
	if got.code != 0 {
		t.Fatalf("sub: exit %d: %s", got.code, got.stderr)
	}
	msgs := jsonLines[msgOut](t, got.stdout)
	want := []msgOut{
		{Kind: "PUBLISH", Topic: "a/b", Lane: 2, Bytes: 5, Encoding: "text", Payload: "hello"},
		{Kind: "PUBLISH", Topic: "a/c", Lane: 3, Bytes: 3, Encoding: "base64", Payload: "AAH/"},
		{Kind: "PUBLISH", Topic: "a/d", Lane: 2, Reliable: true, Bytes: 3, Encoding: "text", Payload: "one"},
		{Kind: "PUBLISH", Topic: "a/d", Lane: 2, Reliable: true, Bytes: 3, Encoding: "text", Payload: "two"},
		{Kind: "PUBLISH", Topic: "a/d", Lane: 2, Reliable: true, Bytes: 2, Encoding: "text", Payload: "-3"},
	}
	if len(msgs) != len(want) {
		t.Fatalf("got %d messages, want %d:\n%s", len(msgs), len(want), got.stdout)
	}
	for i := range want {
		// The server forwards a reliable publication reliably only to
		// sessions that asked for it; compare what the publisher chose.
		msgs[i].Reliable = want[i].Reliable
		if msgs[i] != want[i] {
			t.Errorf("message %d: got %+v, want %+v", i, msgs[i], want[i])
		}
	}
}

// The readable format of sub, and "--" before a message that looks like a
// flag.
func TestPubSubText(t *testing.T) {
	s := startServer(t, nil)
	sub := start(t, "sub", "--addr", s.addr, "--count", "3", "game/+/score")
	sub.waitStderr(t, "subscribed to game/+/score as ")
	for _, args := range [][]string{
		{"pub", "game/7/score", "--addr", s.addr, "--", "-42"},
		{"pub", "game/8/score", "--addr", s.addr, "--reliable", "two\nlines\n"},
		{"pub", "game/9/score", "--addr", s.addr, "--stdin"},
	} {
		if r := ferry(t, "\xfe\x01", args...); r.code != 0 {
			t.Fatalf("%v: exit %d: %s", args, r.code, r.stderr)
		}
	}
	got := sub.wait(t)
	want := "game/7/score (lane 2): -42\n" +
		"game/8/score (lane 2): two\nlines\n" +
		"game/9/score (lane 2, 2 bytes hex): fe01\n"
	if got.code != 0 || got.stdout != want {
		t.Fatalf("exit %d, stdout:\n%s\nwant:\n%s\nstderr: %s", got.code, got.stdout, want, got.stderr)
	}
}

// Unreliable publications are sent once; ferry pub still makes sure the
// server has read them before it closes (the client library drops what is
// not written at Close).
func TestPubUnreliableArrives(t *testing.T) {
	s := startServer(t, nil)
	const n = 200
	sub := start(t, "sub", "--addr", s.addr, "--count", fmt.Sprint(n), "t")
	sub.waitStderr(t, "subscribed to t")
	for i := 0; i < n/20; i++ {
		if r := ferry(t, "", "pub", "--addr", s.addr, "--count", "20", "t", "x"); r.code != 0 {
			t.Fatalf("pub: exit %d: %s", r.code, r.stderr)
		}
	}
	got := sub.wait(t)
	if got.code != 0 || strings.Count(got.stdout, "\n") != n {
		t.Fatalf("exit %d, %d messages of %d; stderr: %s", got.code, strings.Count(got.stdout, "\n"), n, got.stderr)
	}
}

func TestReqEcho(t *testing.T) {
	s := startServer(t, nil)
	r := ferry(t, "", "req", "1", "hello", "--addr", s.addr, "-v")
	if r.code != 0 || r.stdout != "hello\n" || !strings.Contains(r.stderr, "route 1: 5 bytes in ") {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	// Binary, from stdin, in hex; and as it is with --raw.
	r = ferry(t, "\x00\x01\xff", "req", "0x1", "--stdin", "--lane", "3", "--addr", s.addr)
	if r.code != 0 || r.stdout != "0001ff\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = ferry(t, "\x00\x01\xff", "req", "1", "--stdin", "--raw", "--addr", s.addr)
	if r.code != 0 || r.stdout != "\x00\x01\xff" {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = ferry(t, "", "req", "1", "héllo <&>", "--json", "--addr", s.addr)
	res := jsonLines[resultOut](t, r.stdout)
	if r.code != 0 || len(res) != 1 || !res[0].OK || res[0].Payload != "héllo <&>" || res[0].Encoding != "text" ||
		res[0].Route == nil || *res[0].Route != 1 || res[0].RTTMillis == nil || res[0].Bytes != 10 {
		t.Fatalf("exit %d, stdout %s", r.code, r.stdout)
	}
}

// send → listen: direct messages with their sender, DATA from the server
// one-way and as a request, answered by --echo.
func TestSendListen(t *testing.T) {
	s := startServer(t, nil)
	listen := start(t, "listen", "--addr", s.addr, "--client-id", "bob", "--echo", "--count", "4", "--json")
	listen.waitStderr(t, "listening as bob")
	bob := s.tap.conn(t, "bob")

	r := ferry(t, "", "send", "bob", "hi bob", "--addr", s.addr, "--client-id", "alice")
	if r.code != 0 || r.stdout != "bob: OK (6 bytes, lane 2)\n" {
		t.Fatalf("send: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = ferry(t, "two\nthree\n", "send", "bob", "--lines", "--json", "--lane", "1", "--addr", s.addr, "--client-id", "alice")
	if res := jsonLines[resultOut](t, r.stdout); r.code != 0 || len(res) != 2 || !res[0].OK || res[1].Code != "OK" {
		t.Fatalf("send --lines: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if err := bob.Send(&codec.Frame{Type: protocol.FrameData, Lane: protocol.LaneInteractive, Route: 7, Corr: 1000, Payload: []byte("ping")}); err != nil {
		t.Fatal(err)
	}
	select {
	case f := <-s.tap.answers:
		if f.Type != protocol.FrameData || f.Corr != 1000 || string(f.Payload) != "ping" {
			t.Fatalf("answer to the server's request: %+v", f)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("listen --echo did not answer the request")
	}

	got := listen.wait(t)
	if got.code != 0 {
		t.Fatalf("listen: exit %d: %s", got.code, got.stderr)
	}
	msgs := jsonLines[msgOut](t, got.stdout)
	if len(msgs) != 4 {
		t.Fatalf("listen: %s", got.stdout)
	}
	for i, want := range []string{"hi bob", "two", "three"} {
		if m := msgs[i]; m.Kind != "DIRECT" || m.Peer != "alice" || m.Payload != want {
			t.Errorf("message %d: %+v", i, m)
		}
	}
	if m := msgs[3]; m.Kind != "DATA" || m.Route == nil || *m.Route != 7 || !m.Request || m.Payload != "ping" || m.Lane != 1 {
		t.Errorf("request: %+v", m)
	}
}

// Without --echo, listen refuses requests with HANDLER_ERROR, and prints
// them and one-way DATA readably.
func TestListenText(t *testing.T) {
	s := startServer(t, nil)
	listen := start(t, "listen", "--addr", s.addr, "--client-id", "carol", "--count", "2", "-v")
	listen.waitStderr(t, "listening as carol")
	carol := s.tap.conn(t, "carol")
	for _, f := range []codec.Frame{
		{Type: protocol.FrameData, Lane: protocol.LaneNormal, Route: 9, Payload: []byte("one-way")},
		{Type: protocol.FrameData, Lane: protocol.LaneNormal, Route: 8, Corr: 1001, Payload: []byte{0xff}},
	} {
		if err := carol.Send(&f); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case f := <-s.tap.answers:
		if f.Type != protocol.FrameResult || f.Corr != 1001 || f.Code != protocol.CodeHandlerError {
			t.Fatalf("answer to the server's request: %+v", f)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("listen did not answer the request: %s\nstdout: %s", listen.err.String(), listen.out.String())
	}
	got := listen.wait(t)
	want := "data to route 9 (lane 2): one-way\nrequest to route 8 (lane 2, 1 bytes hex): ff\n"
	if got.code != 0 || got.stdout != want {
		t.Fatalf("exit %d, stdout:\n%s\nwant:\n%s", got.code, got.stdout, want)
	}
}

// A token minted by ferry token opens a connection to a server with that
// secret and carries its permissions; one from another secret, or none,
// is refused with AUTH_FAILED.
func TestToken(t *testing.T) {
	secret := "a secret of thirty-two bytes...."
	file := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(file, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := ferry(t, "", "token", "--auth-secret-file", file, "--client-id", "dave", "--ttl", "1h",
		"--publish", "d/#", "--subscribe", "d/#", "--direct", "dave", "--json")
	if r.code != 0 {
		t.Fatalf("token: exit %d: %s", r.code, r.stderr)
	}
	var tok struct {
		Token    string `json:"token"`
		ClientID string `json:"client_id"`
		Expires  int64  `json:"expires"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &tok); err != nil || tok.ClientID != "dave" {
		t.Fatalf("token --json: %q: %v", r.stdout, err)
	}
	c, err := router.VerifyToken([]byte(secret), []byte(tok.Token), time.Now())
	if err != nil || c.ClientID != "dave" || c.Expires != tok.Expires || c.Expires-time.Now().Unix() > 3600 ||
		len(c.Publish) != 1 || len(c.Subscribe) != 1 || c.Direct[0] != "dave" {
		t.Fatalf("claims %+v: %v", c, err)
	}
	// The same from $FERRY_AUTH_SECRET, plain.
	t.Setenv("FERRY_AUTH_SECRET", secret)
	r = ferry(t, "", "token", "--client-id", "dave")
	if _, err := router.VerifyToken([]byte(secret), []byte(strings.TrimSpace(r.stdout)), time.Now()); r.code != 0 || err != nil {
		t.Fatalf("token from the environment: exit %d, %q: %v", r.code, r.stdout, err)
	}

	s := startServer(t, []byte(secret))
	if r := ferry(t, "", "req", "1", "with a token", "--addr", s.addr, "--token", tok.Token); r.code != 0 || r.stdout != "with a token\n" {
		t.Fatalf("req with --token: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	sub := start(t, "sub", "d/#", "--addr", s.addr, "--token", tok.Token, "--count", "1")
	sub.waitStderr(t, "subscribed to d/# as dave")
	r = ferry(t, "", "token", "--client-id", "erin", "--publish", "d/erin")
	t.Setenv("FERRY_TOKEN", strings.TrimSpace(r.stdout))
	if r := ferry(t, "", "pub", "d/erin", "from erin", "--addr", s.addr, "--reliable"); r.code != 0 {
		t.Fatalf("pub with $FERRY_TOKEN: exit %d, stderr %q", r.code, r.stderr)
	}
	t.Setenv("FERRY_TOKEN", "")
	if got := sub.wait(t); got.code != 0 || got.stdout != "d/erin (lane 2): from erin\n" {
		t.Fatalf("sub with a token: exit %d, stdout %q, stderr %q", got.code, got.stdout, got.stderr)
	}

	other := ferry(t, "", "token", "--auth-secret", "another secret, also long enough", "--client-id", "dave")
	for name, args := range map[string][]string{
		"no token":    {"req", "1", "x", "--addr", s.addr},
		"wrong token": {"req", "1", "x", "--addr", s.addr, "--token", strings.TrimSpace(other.stdout)},
	} {
		r := ferry(t, "", args...)
		if r.code != 1 || !strings.Contains(r.stderr, "AUTH_FAILED") {
			t.Errorf("%s: exit %d, stderr %q", name, r.code, r.stderr)
		}
	}
	r = ferry(t, "", "sub", "e/#", "--addr", s.addr, "--token", tok.Token, "--json")
	if r.code != 1 || !strings.Contains(r.stderr, "subscribe e/#: FORBIDDEN") {
		t.Errorf("forbidden subscription: exit %d, stderr %q", r.code, r.stderr)
	}
}

// Failures name the protocol's error code on stderr and exit 1; mistakes
// on the command line exit 2.
func TestErrors(t *testing.T) {
	s := startServer(t, nil)
	for _, tc := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"req", "99", "x", "--addr", s.addr}, 1, "ferry req: route 99: NO_SUCH_ROUTE\n"},
		{[]string{"send", "nobody", "x", "--addr", s.addr}, 1, "ferry send: nobody: NO_SUCH_CLIENT\n"},
		{[]string{"req", "1", "--addr", "127.0.0.1:1", "--connect-timeout", "300ms"}, 1, "connect to 127.0.0.1:1"},
		{[]string{"sub", "t", "--addr", s.addr, "--count", "1", "--timeout", "200ms"}, 1, "timed out after 200ms with 0 of 1 messages"},
		{[]string{"sub", "a/#/b", "--addr", s.addr}, 1, "subscribe a/#/b: INVALID_TOPIC"},
		{nil, 2, "Usage:"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"pub", "t"}, 2, "no message"},
		{[]string{"pub", "t", "x", "--stdin"}, 2, "give one of"},
		{[]string{"pub", "a/+", "x"}, 2, "wildcard"},
		{[]string{"pub", "t", "x", "--lane", "0"}, 2, "want 1 (interactive), 2 (normal) or 3 (bulk)"},
		{[]string{"pub", "t", "--lines", "--count", "2"}, 2, "--count does not combine with --lines"},
		{[]string{"req", "route", "x"}, 2, `route "route"`},
		{[]string{"req", "1", "--nope"}, 2, "flag provided but not defined: -nope"},
		{[]string{"send", "bob", "x", "--reliable=false"}, 2, "reliably only"},
		{[]string{"sub"}, 2, "want at least one PATTERN"},
		{[]string{"sub", "t", "--binary", "octal"}, 2, "want hex or base64"},
		{[]string{"listen", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"token"}, 2, "--client-id is required"},
		{[]string{"token", "--client-id", "x"}, 2, "no secret"},
		{[]string{"token", "--client-id", "x", "--auth-secret", "short"}, 1, "at least 16 bytes"},
	} {
		r := ferry(t, "", tc.args...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.stderr) {
			t.Errorf("ferry %s: exit %d, stderr %q; want exit %d and %q", strings.Join(tc.args, " "), r.code, r.stderr, tc.code, tc.stderr)
		}
	}
	// Under --json the failure is also a result object with the code.
	r := ferry(t, "", "req", "99", "--json", "--addr", s.addr)
	if res := jsonLines[resultOut](t, r.stdout); r.code != 1 || len(res) != 1 || res[0].OK || res[0].Code != "NO_SUCH_ROUTE" {
		t.Fatalf("req --json: exit %d, stdout %q", r.code, r.stdout)
	}
}

// Ctrl-C ends sub, listen and an endless pub cleanly (exit 0); it
// interrupts a pub that had more to do (exit 130).
func TestInterrupt(t *testing.T) {
	s := startServer(t, nil)
	for _, tc := range []struct {
		args  []string
		ready string
		code  int
	}{
		{[]string{"sub", "t", "--addr", s.addr}, "subscribed to t", 0},
		{[]string{"listen", "--addr", s.addr}, "listening as", 0},
		{[]string{"pub", "t", "x", "--count", "0", "--interval", "5ms", "-v", "--addr", s.addr}, "connected", 0},
		{[]string{"pub", "t", "x", "--count", "1000", "--interval", "5ms", "-v", "--addr", s.addr}, "connected", 130},
	} {
		b := start(t, tc.args...)
		b.waitStderr(t, tc.ready)
		if r := b.stop(t); r.code != tc.code {
			t.Errorf("ferry %s: exit %d, want %d; stderr %q", strings.Join(tc.args, " "), r.code, tc.code, r.stderr)
		}
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"--help"}, {"pub", "--help"}, {"sub", "-h"}, {"req", "--help"},
		{"send", "--help"}, {"listen", "--help"}, {"token", "--help"}} {
		r := ferry(t, "", args...)
		if r.code != 0 || !strings.Contains(r.stdout, "Usage") || r.stderr != "" {
			t.Errorf("ferry %s: exit %d, stdout %q, stderr %q", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
	}
}
