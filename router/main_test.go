package router

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/ferry-proto/ferry/internal/wiretest"
)

// The ignored functions are process-wide goroutines of the libraries:
// gnet's ants worker pool and netpoll's poller.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, wiretest.LeakOptions()...)
}
