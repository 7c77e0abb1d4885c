package bench

import (
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	// proc(5): the command name is in parentheses and may hold spaces and
	// parentheses of its own; utime and stime are fields 14 and 15.
	const stat = "4242 (ferry d) (x) S 1 4242 4242 0 -1 4194560 1200 0 0 0 250 75 0 0 20 0 6 0 123 1000 300 18446744073709551615\n"
	d, err := parseProcStat([]byte(stat))
	if err != nil || d != 3250*time.Millisecond {
		t.Errorf("parseProcStat = %v, %v; want 3.25 s", d, err)
	}
	for _, bad := range []string{"", "4242 ferryd S 1", "4242 (ferryd) S 1 2 3", "4242 (ferryd) S 1 4242 4242 0 -1 4194560 1200 0 0 0 x 75 0"} {
		if _, err := parseProcStat([]byte(bad)); err == nil {
			t.Errorf("parseProcStat(%q): no error", bad)
		}
	}
}

func TestParseVmRSS(t *testing.T) {
	const status = "Name:\tferryd\nVmPeak:\t  900000 kB\nVmRSS:\t   12345 kB\nThreads:\t6\n"
	v, err := parseVmRSS([]byte(status))
	if err != nil || v != 12345*1024 {
		t.Errorf("parseVmRSS = %v, %v", v, err)
	}
	for _, bad := range []string{"Name:\tkthreadd\n", "VmRSS:\t12 MB\n", "VmRSS:\tx kB\n"} {
		if _, err := parseVmRSS([]byte(bad)); err == nil {
			t.Errorf("parseVmRSS(%q): no error", bad)
		}
	}
}

// This process's own figures, and a process that is not there.
func TestProc(t *testing.T) {
	pid := os.Getpid()
	if runtime.GOOS != "linux" {
		if err := checkServerPID(pid); err == nil || !strings.Contains(err.Error(), "only Linux") {
			t.Errorf("checkServerPID on %s: %v", runtime.GOOS, err)
		}
		return
	}
	if err := checkServerPID(pid); err != nil {
		t.Fatal(err)
	}
	c0, err := procCPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	// Spin until the CPU time moves on by a tick or more (10 ms), for at
	// most 5 s.
	c1 := c0
	for start := time.Now(); err == nil && c1 == c0 && time.Since(start) < 5*time.Second; {
		c1, err = procCPU(pid)
	}
	if err != nil || c1 <= c0 {
		t.Errorf("CPU time %v after %v (%v) over up to 5 s of spinning", c1, c0, err)
	}
	if rss, err := procRSS(pid); err != nil || rss < 1<<20 {
		t.Errorf("resident memory %v B, %v", rss, err)
	}
	// pid_max is at most 2^22 on Linux.
	if err := checkServerPID(1 << 30); err == nil || !strings.Contains(err.Error(), "--server-pid 1073741824: no such process") {
		t.Errorf("a process that is not there: %v", err)
	}
}
