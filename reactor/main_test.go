package reactor

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/ferry-proto/ferry/internal/wiretest"
)

// Every test stops what it starts: servers close in t.Cleanup, clients
// close their sockets, engines end their goroutines when stopped. The
// ignored functions are process-wide goroutines of the libraries, started
// once and never stopped: gnet's ants worker pool (purgeStaleWorkers,
// ticktock) and netpoll's poller (defaultPoll.Wait).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, wiretest.LeakOptions()...)
}
