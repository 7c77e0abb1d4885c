package reactor

import (
	"testing"
	"time"
)

func TestHistogramBuckets(t *testing.T) {
	var h Histogram
	for _, d := range []time.Duration{0, 64 * time.Microsecond, 65 * time.Microsecond, 128 * time.Microsecond,
		time.Millisecond, time.Hour} {
		h.Observe(d)
	}
	b, n, sum := h.Snapshot()
	if n != 6 || sum != 0+64*time.Microsecond+65*time.Microsecond+128*time.Microsecond+time.Millisecond+time.Hour {
		t.Fatalf("count %d sum %v", n, sum)
	}
	// 0 and 64 µs in bucket 0 (≤ 64 µs); 65 and 128 µs in bucket 1
	// (≤ 128 µs); 1 ms in bucket 4 (≤ 1,024 µs); an hour in +Inf.
	want := map[int]uint64{0: 2, 1: 2, 4: 1, histBuckets - 1: 1}
	for i, c := range b {
		if c != want[i] {
			t.Fatalf("bucket %d (≤ %v) = %d, want %d", i, bound(i), c, want[i])
		}
	}
	for i := 1; i < len(HistogramBuckets); i++ {
		if HistogramBuckets[i] != 2*HistogramBuckets[i-1] {
			t.Fatal("bounds are not powers of two")
		}
	}
}

func bound(i int) time.Duration {
	if i < len(HistogramBuckets) {
		return HistogramBuckets[i]
	}
	return -1
}
