package metrics

import (
	"testing"

	"go.uber.org/goleak"
)

// Tests start real reactor servers, which start gnet's process-wide worker
// pool and netpoll's poller: those goroutines are never stopped, so they are
// ignored as in reactor's own TestMain. Everything else a test starts (the
// server's loops, client sockets, httptest servers) it stops in t.Cleanup.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/panjf2000/ants/v2.(*poolCommon).purgeStaleWorkers"),
		goleak.IgnoreTopFunction("github.com/panjf2000/ants/v2.(*poolCommon).ticktock"),
		goleak.IgnoreAnyFunction("github.com/cloudwego/netpoll.(*defaultPoll).Wait"),
	)
}
