package wheel

import (
	"math/rand/v2"
	"runtime"
	"testing"
	"time"
)

func nopTimer(*Timer) {}
func nopFunc()        {}

// benchDelay returns a delay spread uniformly over 1 s to 10 min: the spread
// of idle, heartbeat and session deadlines.
func benchDelay(r *rand.Rand) time.Duration {
	return time.Second + time.Duration(r.Int64N(int64(10*time.Minute-time.Second)))
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkWheel measures one schedule plus one cancel with 1,000,000
// timers already pending, for the wheel and for time.AfterFunc, and the heap
// each pending timer costs (B/timer, including the handle the owner keeps:
// the embedded 32-byte Timer, or a *time.Timer pointer plus what AfterFunc
// allocates).
func BenchmarkWheel(b *testing.B) {
	const pending = 1_000_000
	const mask = 1<<12 - 1
	delays := make([]time.Duration, mask+1)
	r := rand.New(rand.NewPCG(1, 0))
	for i := range delays {
		delays[i] = benchDelay(r)
	}

	b.Run("wheel", func(b *testing.B) {
		r := rand.New(rand.NewPCG(2, 0))
		before := heapInUse()
		w := New(DefaultTick, time.Now())
		timers := make([]Timer, pending)
		for i := range timers {
			timers[i].Init(nopTimer)
			w.ScheduleAfter(&timers[i], benchDelay(r))
		}
		perTimer := float64(heapInUse()-before) / pending

		var t Timer
		t.Init(nopTimer)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			w.ScheduleAfter(&t, delays[i&mask])
			w.Stop(&t)
			i++
		}
		if w.Len() != pending {
			b.Fatalf("Len() = %d, want %d", w.Len(), pending)
		}
		runtime.KeepAlive(timers)
		b.ReportMetric(perTimer, "B/timer") // after the loop: b.Loop's reset drops metrics
	})

	b.Run("afterfunc", func(b *testing.B) {
		r := rand.New(rand.NewPCG(2, 0))
		before := heapInUse()
		timers := make([]*time.Timer, pending)
		for i := range timers {
			timers[i] = time.AfterFunc(benchDelay(r), nopFunc)
		}
		perTimer := float64(heapInUse()-before) / pending

		b.ReportAllocs()
		i := 0
		for b.Loop() {
			t := time.AfterFunc(delays[i&mask], nopFunc)
			t.Stop()
			i++
		}
		b.StopTimer()
		for _, t := range timers {
			t.Stop()
		}
		b.ReportMetric(perTimer, "B/timer")
	})
}
