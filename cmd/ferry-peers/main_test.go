package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/ferry-proto/ferry/bench"
	"github.com/ferry-proto/ferry/client"
)

// startNATS runs a real NATS server in this process on a free port.
func startNATS(t *testing.T) string {
	t.Helper()
	s, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s.ClientURL()
}

func TestNATSPubSub(t *testing.T) {
	url := startNATS(t)
	res, err := runNATSPubSub(context.Background(), natsConfig{
		URL: url, Conns: 2, Duration: 300 * time.Millisecond, Size: 8, Window: 100, Subject: "t.ps",
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Size != stampSize || res.Connections != 3 || res.Msgs == 0 || res.MsgsPerSec <= 0 || res.Published == 0 {
		t.Fatalf("result %+v", res)
	}
	if *res.Lost != 0 || *res.Duplicates != 0 || *res.Reordered != 0 || res.Errors != 0 {
		t.Fatalf("lost %d, dups %d, reordered %d, errors %d", *res.Lost, *res.Duplicates, *res.Reordered, res.Errors)
	}
	// Every message published reached both subscribers; the latency
	// histogram holds each delivery once.
	if res.Count != 2*res.Published || res.P50ms <= 0 || res.MaxMs < res.P99ms {
		t.Fatalf("count %d for %d published; p50 %v p99 %v max %v", res.Count, res.Published, res.P50ms, res.P99ms, res.MaxMs)
	}
}

// TestServeCommand runs "ferry-peers rawgnet" and "net" as the compare
// script does: "listening ADDR" on stdout, then serve until the signal
// (here, the context).
func TestServeCommand(t *testing.T) {
	for _, cmd := range []string{"rawgnet", "net"} {
		t.Run(cmd, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			pr, pw := io.Pipe()
			code := make(chan int, 1)
			go func() {
				code <- run(ctx, []string{cmd, "--listen", "127.0.0.1:0"}, pw, io.Discard)
				_ = pw.Close()
			}()
			line, err := bufio.NewReader(pr).ReadString('\n')
			addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
			if err != nil || !ok {
				cancel()
				t.Fatalf("first line %q, %v", line, err)
			}
			go func() { _, _ = io.Copy(io.Discard, pr) }()
			dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
			c, err := client.Dial(dctx, addr, client.WithReconnect(false))
			dcancel()
			if err != nil {
				cancel()
				t.Fatal(err)
			}
			_ = c.Close()
			cancel()
			if got := <-code; got != 0 {
				t.Fatalf("exit status %d", got)
			}
		})
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"bogus"}, {"net", "--bogus"}, {"report"}, {"report", "--target", "x", "m"}} {
		if got := run(context.Background(), args, io.Discard, io.Discard); got != 2 {
			t.Errorf("%q: exit status %d, want 2", args, got)
		}
	}
	if got := run(context.Background(), []string{"net", "--help"}, io.Discard, io.Discard); got != 0 {
		t.Errorf("--help: exit status %d", got)
	}
}

func TestReport(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, r bench.Result) string {
		p := filepath.Join(dir, name)
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ferry := write("f.json", bench.Result{Scenario: "pubsub", Connections: 2, Size: 16, DurationS: 10, Loop: "closed",
		Msgs: 3_000_000, MsgsPerSec: 300_000, Percentiles: bench.Percentiles{P50ms: 1.5, P99ms: 4, P999ms: 9, MaxMs: 12}})
	nats := write("n.json", bench.Result{Scenario: "pubsub", Msgs: 4_000_000, MsgsPerSec: 400_000})
	idle := write("i.json", bench.Result{Scenario: "idle", Connections: 18000, ConnectS: 2, ConnectsPerSec: 9000, BytesPerConn: 900})
	manifest := filepath.Join(dir, "manifest")
	m := strings.Join([]string{
		"pubsub ferry-gnet " + ferry + " 10",
		"pubsub nats-server " + nats + " 8",
		"pubsub broken " + filepath.Join(dir, "missing.json") + " -",
		"idle ferry-gnet " + idle + " -",
	}, "\n")
	// Three rounds of echo: the table shows the median run and the range.
	for i, rate := range []float64{50, 70, 60} {
		p := write("e"+strconv.Itoa(i)+".json", bench.Result{Scenario: "echo", MsgsPerSec: rate, Percentiles: bench.Percentiles{P50ms: rate / 10}})
		raw := write("r"+strconv.Itoa(i)+".json", bench.Result{Scenario: "echo", MsgsPerSec: []float64{100, 70, 60}[i]})
		m += "\necho ferry-gnet " + p + " -\necho rawgnet " + raw + " -"
	}
	if err := os.WriteFile(manifest, []byte(m), 0o644); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if code := run(context.Background(), []string{"report", "--target", "pubsub:ferry-gnet/nats-server>=1.5",
		"--target", "echo:ferry-gnet/rawgnet>=0.9", manifest}, &out, io.Discard); code != 0 {
		t.Fatalf("exit status %d", code)
	}
	got := out.String()
	for _, want := range []string{
		"pubsub: 2 connections, 16 B payloads, 10.0 s, closed loop",
		"300,000", "400,000", "1.33", // nats / ferry in msgs/s
		"1.67", // nats per server CPU-second: (4M/8) / (3M/10)
		"broken failed: open ",
		"pubsub: ferry-gnet / nats-server = 0.75 (target ≥ 1.50): NOT met",
		"18,000", "900", "yes",
		"median msgs/s of 3 rounds", "60 [50–70]", "70 [60–100]", "6.00",
		"echo: ferry-gnet / rawgnet = 0.86 (target ≥ 0.90): NOT met; round by round 0.50, 1.00, 1.00",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
}
