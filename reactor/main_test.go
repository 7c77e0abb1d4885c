package reactor

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test stops what it starts: servers close in t.Cleanup, clients
// close their sockets. gnet's engine goroutines end with Engine.Stop; the
// two ignored functions belong to gnet's process-wide ants worker pool,
// started at package init and never stopped.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/panjf2000/ants/v2.(*poolCommon).purgeStaleWorkers"),
		goleak.IgnoreTopFunction("github.com/panjf2000/ants/v2.(*poolCommon).ticktock"),
	)
}
