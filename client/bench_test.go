package client

import (
	"context"
	"strconv"
	"testing"
)

// Client throughput against the test server on loopback: what one client
// goroutine gets, allocations per message included. The test server is
// simple (one mutex, a write per read), so absolute rates say more about
// it than about the client; compare runs with benchstat.
func BenchmarkSendAsync(b *testing.B) {
	for _, size := range []int{64, 1024, 32 << 10} {
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			p := newPeer(b, peerOpts{quiet: true})
			c := dial(b, p.addr())
			payload := make([]byte, size)
			ctx := context.Background()
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				for c.SendAsync(2, routeRecord, payload, nil) == ErrQueueFull {
					if err := c.Flush(ctx); err != nil {
						b.Fatal(err)
					}
				}
			}
			if err := c.Flush(ctx); err != nil {
				b.Fatal(err)
			}
		})
	}
}

func BenchmarkRequest(b *testing.B) {
	p := newPeer(b, peerOpts{quiet: true})
	c := dial(b, p.addr())
	payload := make([]byte, 64)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Request(ctx, 1, routeEcho, payload); err != nil {
			b.Fatal(err)
		}
	}
}
