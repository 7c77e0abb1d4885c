package bench

import (
	"bytes"
	"errors"
	"strconv"
	"time"
)

// A server's CPU time and resident memory from Linux's /proc, for servers
// without ferryd's admin endpoint (Config.ServerPID). The readers are in
// sys_linux.go; the parsers are here, so that they are tested everywhere.

// clockTick is USER_HZ, the unit of the CPU times in /proc/PID/stat: 100 on
// every Linux architecture (what `getconf CLK_TCK` prints, as
// bench/compare/compare.sh reads it).
const clockTick = 100

var errProcFormat = errors.New("bench: unreadable /proc file")

// parseProcStat reads utime + stime (fields 14 and 15, proc(5)) from the
// text of /proc/PID/stat. The command name, field 2, is in parentheses and
// may itself hold spaces and parentheses, so fields are counted after the
// last ')'.
func parseProcStat(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errProcFormat
	}
	// After ") ": state is field 3, so utime (14) and stime (15) are the
	// 12th and 13th.
	f := bytes.Fields(b[i+1:])
	if len(f) < 13 {
		return 0, errProcFormat
	}
	var ticks uint64
	for _, s := range f[11:13] {
		v, err := strconv.ParseUint(string(s), 10, 64)
		if err != nil {
			return 0, errProcFormat
		}
		ticks += v
	}
	return time.Duration(ticks) * (time.Second / clockTick), nil
}

// parseVmRSS reads the resident set size in bytes from the text of
// /proc/PID/status ("VmRSS:    12345 kB").
func parseVmRSS(b []byte) (float64, error) {
	for line := range bytes.Lines(b) {
		rest, ok := bytes.CutPrefix(line, []byte("VmRSS:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, errProcFormat
		}
		kb, err := strconv.ParseUint(string(f[0]), 10, 64)
		if err != nil {
			return 0, errProcFormat
		}
		return float64(kb) * 1024, nil
	}
	// Kernel threads and zombies have no VmRSS line.
	return 0, errors.New("bench: no VmRSS in /proc/PID/status")
}
