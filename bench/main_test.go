package bench

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// ferrydBin is ferryd built once for the package's tests; empty when the
// build failed (buildErr says why).
var ferrydBin, buildErr = "", error(nil)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ferry-bench-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ferrydBin, buildErr = buildFerryd(dir)
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		os.RemoveAll(dir)
		os.Exit(code)
	}))
}

// buildFerryd builds cmd/ferryd into dir: bench may not import the
// server's packages, so its tests run the real server as a child process.
func buildFerryd(dir string) (string, error) {
	bin := filepath.Join(dir, "ferryd")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/ferry-proto/ferry/cmd/ferryd")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/ferryd: %v\n%s", err, out)
	}
	return bin, nil
}

// server is a ferryd child process on free loopback ports.
type server struct {
	Addr, Admin string
	PID         int
}

var readyLine = regexp.MustCompile(`msg="ferryd ready" listen=(\S+) admin=(\S+)`)

// startFerryd runs ferryd with args on 127.0.0.1, free ports, and stops it
// (SIGTERM, then SIGKILL) when the test ends.
func startFerryd(t testing.TB, args ...string) server {
	t.Helper()
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	args = append([]string{"--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--drain", "100ms"}, args...)
	cmd := exec.Command(ferrydBin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan server, 1)
	logDone := make(chan struct{})
	var (
		mu  sync.Mutex
		log []string
	)
	go func() {
		defer close(logDone)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := readyLine.FindStringSubmatch(sc.Text()); m != nil {
				ready <- server{Addr: m[1], Admin: m[2], PID: cmd.Process.Pid}
			}
			mu.Lock()
			log = append(log, sc.Text())
			mu.Unlock()
		}
	}()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { <-logDone; _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			mu.Lock()
			for _, l := range log[max(0, len(log)-50):] {
				t.Log("ferryd:", l)
			}
			mu.Unlock()
		}
	}
	select {
	case s := <-ready:
		t.Cleanup(stop)
		return s
	case <-logDone:
		stop()
		t.Fatal("ferryd exited before it was ready")
	case <-time.After(30 * time.Second):
		stop()
		t.Fatal("ferryd not ready within 30 s")
	}
	return server{}
}
