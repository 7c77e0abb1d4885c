//go:build !race

package loadgen

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/ferry-proto/ferry/reactor/internal/rawecho"
)

// mallocsOf runs one load run and returns the heap allocations it made,
// server included (it runs in this process).
func mallocsOf(t *testing.T, cfg Config, total int) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	res, err := Run(ctx, cfg, total)
	runtime.ReadMemStats(&after)
	if err != nil || res.Responses != total {
		t.Fatalf("Run: %+v, %v", res, err)
	}
	return after.Mallocs - before.Mallocs
}

// TestZeroAllocsPerMessage: the cost of a run is per connection, not per
// message. Two runs that differ only in message count must allocate about
// the same; one allocation per message would add 100,000.
func TestZeroAllocsPerMessage(t *testing.T) {
	s := startEcho(t, rawecho.Config{Loops: 2})
	cfg := rawConfig(s.Addr(), 4, 16, 1024)
	mallocsOf(t, cfg, 1000) // warm up pools and the runtime
	small := mallocsOf(t, cfg, 5_000)
	large := mallocsOf(t, cfg, 105_000)
	perMsg := (float64(large) - float64(small)) / 100_000
	t.Logf("allocations: %d for 5k messages, %d for 105k: %.4f per message", small, large, perMsg)
	if perMsg > 0.01 {
		t.Fatalf("%.4f allocations per message, want 0", perMsg)
	}
}
