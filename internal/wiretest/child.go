package wiretest

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Child is this test binary re-executed to run one test function as a
// separate process: benchmarks put their clients there, since one process
// may hold at most 20,000 sockets here. It reports progress as lines on
// its standard output and runs until its standard input is closed.
type Child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
}

// StartChild runs the test named test (a TestX that acts only when its
// environment says so) with the extra environment variables env.
func StartChild(tb testing.TB, test string, env ...string) *Child {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.v")
	cmd.Env = append(os.Environ(), env...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	c := &Child{cmd: cmd, stdin: stdin, lines: make(chan string, 64)}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
	}()
	return c
}

// WaitLine waits up to five minutes for a line starting with prefix.
func (c *Child) WaitLine(tb testing.TB, prefix string) {
	tb.Helper()
	timeout := time.After(5 * time.Minute)
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				tb.Fatalf("child process ended before %s", prefix)
			}
			if strings.HasPrefix(l, prefix) {
				return
			}
		case <-timeout:
			tb.Fatalf("no %s from the child process", prefix)
		}
	}
}

// Stop closes the child's standard input and waits for it to exit.
func (c *Child) Stop() {
	c.stdin.Close()
	_ = c.cmd.Wait()
}

// AwaitParent blocks a child until its parent closes its standard input.
func AwaitParent() { _, _ = io.Copy(io.Discard, os.Stdin) }

// ChildSpec reads the "addr,count" a parent passed to its child in the
// environment variable name; ok is false when this process is no child.
func ChildSpec(name string) (addr string, n int, ok bool) {
	spec := os.Getenv(name)
	if spec == "" {
		return "", 0, false
	}
	addr, ns, _ := strings.Cut(spec, ",")
	n, err := strconv.Atoi(ns)
	return addr, n, err == nil
}

// WaitUntil polls cond every 10 ms until it holds, failing the test after
// timeout.
func WaitUntil(tb testing.TB, what string, timeout time.Duration, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// SyncBuffer is a bytes.Buffer one goroutine writes while another reads
// it (a child process's or a command's output).
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
