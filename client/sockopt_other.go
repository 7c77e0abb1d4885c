//go:build !linux && !darwin

package client

import "net"

// tuneSocket does nothing where TCP_NOTSENT_LOWAT is not available.
func tuneSocket(net.Conn) {}
