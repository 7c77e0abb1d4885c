package client

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/ferry-proto/ferry/internal/wiretest"
)

// TestMain fails the package if any test leaves a goroutine behind: the
// client's, the test servers' and the proxy's alike. The client starts no
// process-wide goroutines; the ignored functions are those of the real
// server the examples start (exampleserver_test.go): gnet's ants worker
// pool, started when gnet is loaded and never stopped, and netpoll's poller
// (see internal/wiretest.LeakOptions).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, wiretest.LeakOptions()...)
}
