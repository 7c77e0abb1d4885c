package reactor

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// HistogramBuckets are the upper bounds of a Histogram's buckets: powers
// of two from 64 µs to about 8.4 s (18 buckets), plus +Inf.
var HistogramBuckets = func() [histBuckets - 1]time.Duration {
	var b [histBuckets - 1]time.Duration
	for i := range b {
		b[i] = histMin << i
	}
	return b
}()

const (
	histMin     = 64 * time.Microsecond
	histBuckets = 19 // 18 finite bounds and +Inf
)

// Histogram is a latency histogram that any goroutine may observe into
// without a lock or an allocation: fixed buckets of atomics. Exporters
// read it with Snapshot (the router turns it into a Prometheus histogram).
type Histogram struct {
	buckets [histBuckets]atomic.Uint64
	sum     atomic.Int64 // nanoseconds
}

// Observe records one duration. Safe from any goroutine; no allocation.
func (h *Histogram) Observe(d time.Duration) {
	d = max(d, 0)
	i := 0
	if d > histMin {
		// the first bound ≥ d: bucket i holds (histMin<<(i-1), histMin<<i].
		i = min(bits.Len64(uint64((d-1)/histMin)), histBuckets-1)
	}
	h.buckets[i].Add(1)
	h.sum.Add(int64(d))
}

// Snapshot returns the count of each bucket (not cumulative; the last is
// +Inf), the total count and the sum of the observed durations.
func (h *Histogram) Snapshot() (buckets [histBuckets]uint64, count uint64, sum time.Duration) {
	for i := range h.buckets {
		buckets[i] = h.buckets[i].Load()
		count += buckets[i]
	}
	return buckets, count, time.Duration(h.sum.Load())
}

func (h *Histogram) add(o *Histogram) {
	for i := range h.buckets {
		h.buckets[i].Add(o.buckets[i].Load())
	}
	h.sum.Add(o.sum.Load())
}
