package loadgen

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/ferry-proto/ferry/reactor/internal/rawecho"
)

// BenchmarkRawEcho loads an in-process rawecho with 100 connections 16
// deep. b.N counts messages (one Run of b.N responses), not Runs, so it
// uses b.N rather than b.Loop; ns/op includes dialling the connections,
// msgs/s does not. Client and server share this machine's cores: compare
// runs with benchstat, do not read the absolute figure as ferry's.
func BenchmarkRawEcho(b *testing.B) {
	s := startEcho(b, rawecho.Config{Loops: 2})
	for _, size := range []int{64, 1024, 16 << 10} {
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			b.ReportAllocs()
			b.SetBytes(int64(2 * (RawHeaderLen + size))) // both ways
			res, err := Run(ctx, rawConfig(s.Addr(), 100, 16, size), b.N)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(res.MsgsPerSec(), "msgs/s")
		})
	}
}
