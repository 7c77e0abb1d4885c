package bench

import (
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram range: 1 µs to 1 h in nanoseconds, three significant digits
// (a value is exact to 0.1 %). Values outside are clamped to it, so a
// stall longer than an hour still counts, as an hour.
const (
	histMin     = int64(time.Microsecond)
	histMax     = int64(time.Hour)
	histSigFigs = 3
)

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(histMin, histMax, histSigFigs) }

// Recorder collects latencies from many goroutines into a few shards, each
// an HdrHistogram behind its own mutex, so that recorders rarely wait on
// one another; Merged adds them up. Safe from any goroutine.
type Recorder struct {
	shards []recShard
}

type recShard struct {
	mu sync.Mutex
	h  *hdrhistogram.Histogram
	_  [40]byte // keeps neighbouring shards' mutexes off one cache line
}

// NewRecorder returns a Recorder with n shards (at least 1). A histogram
// costs about 200 KiB, so n should be about the number of cores, not the
// number of goroutines.
func NewRecorder(n int) *Recorder {
	r := &Recorder{shards: make([]recShard, max(n, 1))}
	for i := range r.shards {
		r.shards[i].h = newHist()
	}
	return r
}

// Record adds one latency to the shard for key (any int: a worker's or a
// connection's index). Negative durations count as zero.
func (r *Recorder) Record(key int, d time.Duration) {
	s := &r.shards[uint(key)%uint(len(r.shards))]
	v := min(max(int64(d), histMin), histMax)
	s.mu.Lock()
	_ = s.h.RecordValue(v) // v is in range
	s.mu.Unlock()
}

// recordNs adds latencies in nanoseconds to the shard for key under one
// lock: for a connection that reads many answers at once. Values are
// clamped as in Record.
func (r *Recorder) recordNs(key int, ns []int64) {
	s := &r.shards[uint(key)%uint(len(r.shards))]
	s.mu.Lock()
	for _, v := range ns {
		_ = s.h.RecordValue(min(max(v, histMin), histMax)) // in range
	}
	s.mu.Unlock()
}

// Merged returns a new histogram holding every value recorded so far.
func (r *Recorder) Merged() *hdrhistogram.Histogram {
	out := newHist()
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		out.Merge(s.h)
		s.mu.Unlock()
	}
	return out
}

// Percentiles are the points of a latency distribution that results report.
type Percentiles struct {
	Count  int64   `json:"count"`
	P50ms  float64 `json:"p50_ms"`
	P90ms  float64 `json:"p90_ms"`
	P99ms  float64 `json:"p99_ms"`
	P999ms float64 `json:"p999_ms"`
	MaxMs  float64 `json:"max_ms"`
	MeanMs float64 `json:"mean_ms"`
}

// PercentilesOf reads the reported points from h. An empty histogram gives
// zeros.
func PercentilesOf(h *hdrhistogram.Histogram) Percentiles {
	if h == nil || h.TotalCount() == 0 {
		return Percentiles{}
	}
	ms := func(ns int64) float64 { return float64(ns) / 1e6 }
	v := h.ValueAtPercentilesSlice([]float64{50, 90, 99, 99.9})
	return Percentiles{
		Count: h.TotalCount(),
		P50ms: ms(v[0]), P90ms: ms(v[1]), P99ms: ms(v[2]), P999ms: ms(v[3]),
		// Max is the highest value equivalent to the largest recorded, so
		// it never understates the worst case.
		MaxMs:  ms(h.Max()),
		MeanMs: h.Mean() / 1e6,
	}
}
