package chaos

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/ferry-proto/ferry/internal/wiretest"
)

// Every test stops what it starts: the proxy, servers and clients. Besides
// the libraries' process-wide goroutines (wiretest.LeakOptions), the
// options ignore one leak of toxiproxy v2.12.0 itself: when a connection's
// destination dies while bytes are still in its chain of toxics, the link's
// writer exits and the toxics (and the link's reader) block for ever on a
// channel send nobody receives (the "dead sink" of upstream pull request
// #760). Nothing outside the toxics' goroutines is ignored, so a proxy left
// running (its accept loop) or a client or server goroutine still counts.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, append(wiretest.LeakOptions(),
		goleak.IgnoreAnyFunction("github.com/Shopify/toxiproxy/v2/toxics.(*ToxicStub).Run"),
		goleak.IgnoreAnyFunction("github.com/Shopify/toxiproxy/v2.(*ToxicLink).read"),
	)...)
}
