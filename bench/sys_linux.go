package bench

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// bindNoPort sets IP_BIND_ADDRESS_NO_PORT before a dialer binds its source
// address: the local port is then chosen at connect time for the 4-tuple,
// so each source address reaches about 28,000 connections per server
// address instead of per machine.
func bindNoPort(network, address string, c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
	}); err != nil {
		return err
	}
	_ = serr // an old kernel without the option still works, with fewer ports
	return nil
}

// procCPU is the user + system CPU time process pid has used so far.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	return parseProcStat(b)
}

// procRSS is the resident memory of process pid now, in bytes.
func procRSS(pid int) (float64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	return parseVmRSS(b)
}

// checkServerPID reports why Config.ServerPID cannot be measured, if it
// cannot.
func checkServerPID(pid int) error {
	_, err := procCPU(pid)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("bench: --server-pid %d: no such process", pid)
	case err != nil:
		return fmt.Errorf("bench: --server-pid %d: %w", pid, err)
	}
	return nil
}
