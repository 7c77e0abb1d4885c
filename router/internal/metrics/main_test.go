package metrics

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/ferry-proto/ferry/internal/wiretest"
)

// Tests start real reactor servers, which start gnet's process-wide worker
// pool and netpoll's poller: those goroutines are never stopped, so they are
// ignored as in reactor's own TestMain. Everything else a test starts (the
// server's loops, client sockets, httptest servers) it stops in t.Cleanup.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, wiretest.LeakOptions()...)
}
