//go:build linux || darwin

package client

import (
	"net"

	"golang.org/x/sys/unix"
)

// notSentLowat is the TCP_NOTSENT_LOWAT the client sets: the kernel keeps at
// most this much unsent data queued, so that a PING, an ACK or an
// interactive frame written after bulk data does not wait behind megabytes
// of it (SPEC §8.4; the reference server uses the same value).
const notSentLowat = 16 << 10

// tuneSocket sets TCP_NOTSENT_LOWAT on a TCP connection; other transports
// (a test's pipe, a TLS wrapper) are left alone.
func tuneSocket(nc net.Conn) {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, notSentLowat)
	})
}
