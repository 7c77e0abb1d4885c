package client

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any test leaves a goroutine behind: the
// client's, the test server's and the proxy's alike. The client starts no
// process-wide goroutines, so no ignore options are needed (compare
// internal/wiretest.LeakOptions, which the server packages use for gnet's
// and netpoll's).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
