//go:build !linux

package bench

import (
	"errors"
	"syscall"
	"time"
)

func bindNoPort(network, address string, c syscall.RawConn) error { return nil }

var errNoProc = errors.New("bench: --server-pid reads /proc/PID/stat and /proc/PID/status, which only Linux has")

func procCPU(pid int) (time.Duration, error) { return 0, errNoProc }

func procRSS(pid int) (float64, error) { return 0, errNoProc }

func checkServerPID(pid int) error { return errNoProc }
