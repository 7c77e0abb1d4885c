package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ferry-proto/ferry/codec"
	"github.com/ferry-proto/ferry/protocol"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParse(t *testing.T) {
	o, err := parse(strings.Fields("echo --addr 127.0.0.1:9 --conns 100 --duration 10s --size 1024 --json --rate 5000 --lane 1 --sources 127.0.0.1-127.0.0.4"), os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	c := o.cfg
	if c.Scenario != "echo" || c.Addr != "127.0.0.1:9" || c.Conns != 100 || c.Duration != 10*time.Second || c.Size != 1024 ||
		!o.jsonOut || c.Rate != 5000 || c.Lane != protocol.LaneInteractive || len(c.Sources) != 4 {
		t.Errorf("%+v", o)
	}
	// Flags may come before the scenario too.
	o, err = parse(strings.Fields("--conns 3 --reliable pubsub --size 16"), os.Stderr)
	if err != nil || o.cfg.Scenario != "pubsub" || o.cfg.Conns != 3 || !o.cfg.Reliable || o.cfg.Size != 16 {
		t.Errorf("%+v, %v", o, err)
	}
	o, err = parse(strings.Fields("echo --light --inflight 16 --server-pid 42"), os.Stderr)
	if err != nil || !o.cfg.Light || o.cfg.Inflight != 16 || o.cfg.ServerPID != 42 {
		t.Errorf("%+v, %v", o, err)
	}
	for _, bad := range []string{"", "nope", "echo --lane 4", "echo --lane 0", "direct --conns 3", "echo --sources 1.2.3", "echo extra", "echo --fill lorem",
		"pubsub --light", "idle --light", "echo --light --rate 1000", "echo --light --compression", "echo --light --size 20000", "echo --server-pid -1"} {
		if _, err := parse(strings.Fields(bad), &bytes.Buffer{}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestRunExitCodes(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, &out, &errOut, false); code != 0 {
		t.Errorf("--help: exit %d", code)
	}
	if !strings.Contains(errOut.String(), "reconnect-storm") {
		t.Errorf("usage does not list the scenarios:\n%s", errOut.String())
	}
	if code := run(context.Background(), []string{"nope"}, &out, &errOut, false); code != 2 {
		t.Errorf("unknown scenario: exit %d, want 2", code)
	}
	if code := run(context.Background(), strings.Fields("echo --addr 127.0.0.1:1 --admin= --connect-timeout 200ms --quiet"), &out, &errOut, false); code != 1 {
		t.Errorf("no server: exit %d, want 1", code)
	}
}

// The command end to end against a real ferryd: --json prints one object
// with the fields, --svg writes the plot, progress goes to stderr.
func TestRunAgainstFerryd(t *testing.T) {
	addr, admin := startFerryd(t)
	svg := filepath.Join(t.TempDir(), "echo.svg")
	var out, errOut bytes.Buffer
	args := []string{"echo", "--addr", addr, "--admin", admin, "--conns", "3", "--duration", "600ms", "--size", "100",
		"--json", "--svg", svg, "--progress", "100ms"}
	if code := run(context.Background(), args, &out, &errOut, false); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var m map[string]any
	if err := json.Unmarshal(out.Bytes(), &m); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	for _, k := range []string{"scenario", "connections", "msgs_per_sec", "p50_ms", "p99_ms", "p999_ms", "max_ms", "errors"} {
		if _, ok := m[k]; !ok {
			t.Errorf("no %q in %s", k, out.String())
		}
	}
	if m["scenario"] != "echo" || m["connections"] != 3.0 || m["msgs_per_sec"].(float64) <= 0 {
		t.Errorf("%s", out.String())
	}
	if !strings.Contains(errOut.String(), "[run ") {
		t.Errorf("no progress lines on stderr: %q", errOut.String())
	}
	b, err := os.ReadFile(svg)
	if err != nil || !bytes.HasPrefix(b, []byte("<svg")) {
		t.Errorf("SVG: %v %.40q", err, b)
	}
	// Idle, as a table.
	out.Reset()
	args = []string{"idle", "--addr", addr, "--admin", admin, "--conns", "50", "--duration", "200ms", "--quiet"}
	if code := run(context.Background(), args, &out, &errOut, false); code != 0 {
		t.Fatalf("idle: exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "B/conn") {
		t.Errorf("idle table without memory per connection:\n%s", out.String())
	}
}

// echo --light end to end against a real ferryd, with this process as the
// "server" of --server-pid: one JSON object with the usual fields, no error,
// sane percentiles and a server CPU figure.
func TestRunLight(t *testing.T) {
	addr, _ := startFerryd(t)
	var out, errOut bytes.Buffer
	args := []string{"echo", "--light", "--addr", addr, "--admin=", "--conns", "3", "--inflight", "8", "--size", "100",
		"--duration", "500ms", "--server-pid", strconv.Itoa(os.Getpid()), "--json", "--quiet"}
	if code := run(context.Background(), args, &out, &errOut, false); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var m map[string]any
	if err := json.Unmarshal(out.Bytes(), &m); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	num := func(k string) float64 {
		v, ok := m[k].(float64)
		if !ok {
			t.Errorf("no number %q in %s", k, out.String())
		}
		return v
	}
	if m["scenario"] != "echo" || m["light"] != true || num("inflight") != 8 || num("connections") != 3 || num("errors") != 0 {
		t.Errorf("%s", out.String())
	}
	if num("msgs") <= 0 || num("msgs_per_sec") <= 0 || num("client_cpu_s") <= 0 {
		t.Errorf("%s", out.String())
	}
	if p50, p99, mx := num("p50_ms"), num("p99_ms"), num("max_ms"); p50 <= 0 || p50 > p99 || p99 > mx {
		t.Errorf("p50 %v, p99 %v, max %v", p50, p99, mx)
	}
	// This process did the work, so its CPU time grew.
	if num("server_cpu_s") < 0 {
		t.Errorf("%s", out.String())
	}
}

// Against a server that closes each connection after its WELCOME, --light
// counts one error per connection and returns as soon as none is left; a
// process that is not there is a clear error before anything runs.
func TestRunLightErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			hello := make([]byte, 4+59)
			if _, err := io.ReadFull(c, hello); err == nil {
				_, _ = c.Write(codec.AppendWelcome(nil, &codec.Welcome{Version: protocol.Version, HeartbeatMs: 30_000}))
				// The client's PING, then close: a clean end of stream.
				_, _ = io.ReadFull(c, make([]byte, protocol.HeaderSize+8))
			}
			_ = c.Close()
		}
	}()
	defer func() { _ = ln.Close(); <-done }()
	var out, errOut bytes.Buffer
	start := time.Now()
	args := []string{"echo", "--light", "--addr", ln.Addr().String(), "--admin=", "--conns", "2", "--duration", "30s", "--json", "--quiet"}
	if code := run(context.Background(), args, &out, &errOut, false); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if took := time.Since(start); took > 15*time.Second {
		t.Errorf("took %v", took)
	}
	var m map[string]any
	if err := json.Unmarshal(out.Bytes(), &m); err != nil || m["errors"] != 2.0 || m["msgs"] != 0.0 {
		t.Errorf("%v: %s", err, out.String())
	}

	errOut.Reset()
	args = []string{"echo", "--light", "--addr", ln.Addr().String(), "--admin=", "--server-pid", "1073741824", "--quiet"}
	if code := run(context.Background(), args, &out, &errOut, false); code != 1 || !strings.Contains(errOut.String(), "--server-pid 1073741824: no such process") {
		t.Errorf("exit %d: %s", code, errOut.String())
	}
}

var readyLine = regexp.MustCompile(`msg="ferryd ready" listen=(\S+) admin=(\S+)`)

// startFerryd builds and runs ferryd on free loopback ports until the test
// ends. (bench's tests have the same helper; a main package's tests cannot
// import bench's internal packages.)
func startFerryd(t *testing.T) (addr, admin string) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ferryd")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/ferry-proto/ferry/cmd/ferryd").CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/ferryd: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--drain", "100ms")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan []string, 1)
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := readyLine.FindStringSubmatch(sc.Text()); m != nil {
				ready <- m
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-logDone:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-logDone
		}
		_ = cmd.Wait()
	})
	select {
	case m := <-ready:
		return m[1], m[2]
	case <-logDone:
		t.Fatal("ferryd exited before it was ready")
	case <-time.After(30 * time.Second):
		t.Fatal("ferryd not ready within 30 s")
	}
	return "", ""
}
