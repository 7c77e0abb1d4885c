package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ferry-proto/ferry/codec"
	"github.com/ferry-proto/ferry/internal/wiretest"
	"github.com/ferry-proto/ferry/protocol"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, wiretest.LeakOptions()...)
}

// ferryd on its defaults (ports chosen by the kernel): a client echoes
// through the built-in route, the admin endpoints answer, and cancelling
// (SIGTERM in main) sends GOAWAY and returns nil.
func TestFerrydServesAndShutsDown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan [2]string, 1)
	done := make(chan error, 1)
	var logs wiretest.SyncBuffer
	go func() {
		done <- run(ctx, []string{"--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--drain", "2s", "--log-format", "json"}, &logs, ready)
	}()
	var addrs [2]string
	select {
	case addrs = <-ready:
	case err := <-done:
		t.Fatalf("ferryd exited: %v\n%s", err, logs.String())
	case <-time.After(10 * time.Second):
		t.Fatal("ferryd did not start")
	}
	c := wiretest.Dial(t, addrs[0])
	c.Hello(codec.Hello{ClientID: []byte("probe")})
	c.Send(codec.Frame{Type: protocol.FrameData, Lane: 1, Route: RouteEcho, Corr: 1, Payload: []byte("ping")})
	if f := c.Next(5 * time.Second); string(f.Payload) != "ping" || f.Corr != 1 {
		t.Fatalf("echo: %+v", f)
	}
	for path, want := range map[string]string{"/healthz": "ok", "/readyz": "ready", "/metrics": "ferry_handshakes_total 1"} {
		resp, err := http.Get("http://" + addrs[1] + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Fatalf("%s: %d, body lacks %q", path, resp.StatusCode, want)
		}
	}
	cancel()
	if f := c.Next(5 * time.Second); f.Type != protocol.FrameGoAway {
		t.Fatalf("got %s, want GOAWAY", f.Type)
	}
	c.Conn.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("ferryd did not stop")
	}
	if !strings.Contains(logs.String(), `"msg":"ferryd ready"`) {
		t.Fatalf("logs: %s", logs.String())
	}
}

// Like Redis's protected mode: no anonymous clients from the network
// unless the operator says so.
func TestFerrydRefusesAnonymousOnNetwork(t *testing.T) {
	err := run(context.Background(), []string{"--listen", "0.0.0.0:0", "--admin", ""}, io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "--allow-anonymous") {
		t.Fatalf("got %v", err)
	}
}

func TestFerrydEnvironment(t *testing.T) {
	t.Setenv("FERRY_HEARTBEAT_PROFILE", "nonsense")
	if err := run(context.Background(), []string{"--admin", ""}, io.Discard, nil); err == nil || !strings.Contains(err.Error(), "nonsense") {
		t.Fatalf("FERRY_HEARTBEAT_PROFILE not read: %v", err)
	}
}

// A token minted by the subcommand opens a connection to a server with the
// same secret; a connection without one is refused.
func TestFerrydTokens(t *testing.T) {
	dir := t.TempDir()
	secretFile := dir + "/secret"
	if err := os.WriteFile(secretFile, []byte("a secret of thirty-two bytes...."), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := mintToken([]string{"--auth-secret-file", secretFile, "--client-id", "dev-1", "--publish", "game/#"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan [2]string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--listen", "127.0.0.1:0", "--admin", "", "--auth-secret-file", secretFile}, io.Discard, ready)
	}()
	addrs := <-ready
	c := wiretest.Dial(t, addrs[0])
	if w := c.Hello(codec.Hello{AuthToken: bytes.TrimSpace(out.Bytes())}); string(w.ClientID) != "dev-1" {
		t.Fatalf("logged in as %q", w.ClientID)
	}
	anon := wiretest.Dial(t, addrs[0])
	h := codec.Hello{Version: 1}
	anon.Write(codec.AppendHello(nil, &h))
	if code := anon.ExpectClose(5 * time.Second); code != protocol.CodeAuthFailed {
		t.Fatalf("anonymous client closed with %s", code)
	}
	c.Conn.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// Settings come from defaults, then the config file, then FERRY_*
// variables, then flags.
func TestFerrydConfigPrecedence(t *testing.T) {
	path := t.TempDir() + "/ferryd.toml"
	if err := os.WriteFile(path, []byte("engine = \"netpoll\"\nloops = 3\nrate-messages = 50.5\ncompression = false\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FERRY_LOOPS", "4")
	o, err := parse([]string{"--config", path, "--rate-messages", "7"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.engine != "netpoll" || o.loops != 4 || o.rateMessages != 7 || o.compression {
		t.Fatalf("options %+v", o)
	}
	bad := t.TempDir() + "/bad.toml"
	_ = os.WriteFile(bad, []byte("lsiten = \"x\"\n"), 0o600)
	if _, err := parse([]string{"--config", bad}, io.Discard); err == nil || !strings.Contains(err.Error(), "lsiten") {
		t.Fatalf("unknown key: %v", err)
	}
}

// Failed logins per source address: set like the other limits (config
// file, FERRY_* variable, flag); past the burst a source's HELLOs are
// RATE_LIMITED, counted on /metrics.
func TestFerrydAuthFailLimit(t *testing.T) {
	path := t.TempDir() + "/ferryd.toml"
	if err := os.WriteFile(path, []byte("auth-fail-burst = 3\nauth-fail-ipv6-prefix = 56\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FERRY_AUTH_FAIL_REFILL", "1m")
	o, err := parse([]string{"--config", path, "--auth-fail-sources", "1000"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	l, err := o.authLimit()
	if err != nil || l.Burst != 3 || l.Refill != time.Minute || l.MaxSources != 1000 || l.IPv4Prefix != 32 || l.IPv6Prefix != 56 {
		t.Fatalf("limit %+v, %v", l, err)
	}
	o, _ = parse([]string{"--auth-fail-burst", "0"}, io.Discard)
	if l, _ := o.authLimit(); l.Burst >= 0 {
		t.Fatal("--auth-fail-burst 0 does not turn the limit off")
	}
	o, _ = parse([]string{"--auth-fail-ipv6-prefix", "129"}, io.Discard)
	if _, err := o.authLimit(); err == nil {
		t.Fatal("an IPv6 prefix of 129 accepted")
	}

	secretFile := t.TempDir() + "/secret"
	if err := os.WriteFile(secretFile, []byte("a secret of thirty-two bytes...."), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan [2]string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--auth-secret-file", secretFile,
			"--auth-fail-burst", "2", "--drain", "1s"}, io.Discard, ready)
	}()
	addrs := <-ready
	for i, want := range []protocol.ErrorCode{protocol.CodeAuthFailed, protocol.CodeAuthFailed, protocol.CodeRateLimited} {
		c := wiretest.Dial(t, addrs[0])
		h := codec.Hello{Version: 1, AuthToken: []byte("ferry1.e30.AAAA")}
		c.Write(codec.AppendHello(nil, &h))
		if code := c.ExpectClose(5 * time.Second); code != want {
			t.Fatalf("HELLO %d: closed with %s, want %s", i, code, want)
		}
	}
	resp, err := http.Get("http://" + addrs[1] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"ferry_router_auth_failed_total 2", "ferry_router_auth_rate_limited_total 1"} {
		if !strings.Contains(string(body), want) {
			t.Fatalf("/metrics lacks %q", want)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// The secret from the environment never shows in mint-token's help.
func TestMintTokenHelpHidesSecret(t *testing.T) {
	t.Setenv("FERRY_AUTH_SECRET", "do-not-print-this-secret-0123456789")
	var out, errb bytes.Buffer
	_ = mintToken([]string{"--help"}, &out, &errb)
	if strings.Contains(out.String()+errb.String(), "do-not-print-this-secret") {
		t.Fatal("mint-token --help printed the secret")
	}
}
