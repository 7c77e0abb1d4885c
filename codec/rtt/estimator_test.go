package rtt

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
	"unsafe"
)

const ms = time.Millisecond

// Hot structs: a Prober (with its Estimator) is embedded in every
// connection.
func TestSizes(t *testing.T) {
	if got := unsafe.Sizeof(Estimator{}); got != 32 {
		t.Errorf("sizeof(Estimator) = %d, want 32", got)
	}
	if got := unsafe.Sizeof(Prober{}); got != 72 {
		t.Errorf("sizeof(Prober) = %d, want 72", got)
	}
}

func TestZeroValue(t *testing.T) {
	var e Estimator
	if e.SRTT() != InitialRTT || e.RTTVar() != InitialRTT/2 || e.MinRTT() != 0 || e.Samples() != 0 {
		t.Fatalf("zero Estimator: SRTT %v RTTVAR %v MinRTT %v samples %d, want 333ms 166.5ms 0 0",
			e.SRTT(), e.RTTVar(), e.MinRTT(), e.Samples())
	}
	// RFC 9002 §6.2.2: 333 ms "resulting in a 1 second initial timeout".
	if got, want := e.PTO(0, 0), 999*ms; got != want {
		t.Errorf("initial PTO = %v, want %v", got, want)
	}
}

// RFC 6298 §2.2: "When the first RTT measurement R is made, the host MUST
// set SRTT <- R, RTTVAR <- R/2".
func TestFirstSample(t *testing.T) {
	for _, r := range []time.Duration{0, 1, 3, 100 * ms, 7 * time.Second} {
		var e Estimator
		e.Sample(r, 0)
		if e.SRTT() != r || e.RTTVar() != r/2 || e.MinRTT() != r || e.Samples() != 1 {
			t.Errorf("first sample %v: SRTT %v RTTVAR %v MinRTT %v samples %d", r,
				e.SRTT(), e.RTTVar(), e.MinRTT(), e.Samples())
		}
	}
}

// RFC 6298 §2.3: "RTTVAR <- (1 - beta) * RTTVAR + beta * |SRTT - R'|,
// SRTT <- (1 - alpha) * SRTT + alpha * R'" with alpha 1/8, beta 1/4, RTTVAR
// updated first. Values computed by hand, all exact in nanoseconds.
func TestRFC6298Sequence(t *testing.T) {
	steps := []struct {
		r            time.Duration
		srtt, rttvar time.Duration
	}{
		{100 * ms, 100 * ms, 50 * ms},
		// RTTVAR = 3/4·50 + 1/4·|100−180| = 37.5 + 20; SRTT = 7/8·100 + 180/8 = 87.5 + 22.5
		{180 * ms, 110 * ms, 57500 * time.Microsecond},
		// RTTVAR = 3/4·57.5 + 1/4·|110−30| = 43.125 + 20; SRTT = 7/8·110 + 30/8 = 96.25 + 3.75
		{30 * ms, 100 * ms, 63125 * time.Microsecond},
		// RTTVAR = 3/4·63.125 + 0; SRTT unchanged
		{100 * ms, 100 * ms, 47343750 * time.Nanosecond},
		// RTTVAR = 3/4·47.34375 + 1/4·|100−20| = 35.5078125 + 20 (exact: 55,507,812.5 ns,
		// truncated); SRTT = 7/8·100 + 20/8 = 87.5 + 2.5
		{20 * ms, 90 * ms, 55507812 * time.Nanosecond},
	}
	var e Estimator
	for i, s := range steps {
		e.Sample(s.r, 0)
		if e.SRTT() != s.srtt || e.RTTVar() != s.rttvar {
			t.Fatalf("after sample %d (%v): SRTT %v RTTVAR %v, want %v %v",
				i+1, s.r, e.SRTT(), e.RTTVar(), s.srtt, s.rttvar)
		}
	}
	if e.MinRTT() != 20*ms || e.Samples() != len(steps) {
		t.Errorf("MinRTT %v samples %d, want 20ms %d", e.MinRTT(), e.Samples(), len(steps))
	}
}

// The integer estimator stays within a few nanoseconds of the real-valued
// RFC 6298 filter over long random runs.
func TestMatchesRealFilter(t *testing.T) {
	rng := rand.New(rand.NewPCG(6298, 1))
	for run := range 50 {
		var e Estimator
		var srtt, rttvar float64
		for i := range 1000 {
			r := time.Duration(rng.Int64N(int64(2 * time.Second)))
			e.Sample(r, 0)
			if i == 0 {
				srtt, rttvar = float64(r), float64(r)/2
			} else {
				rttvar = 0.75*rttvar + 0.25*math.Abs(srtt-float64(r))
				srtt = 0.875*srtt + 0.125*float64(r)
			}
			if math.Abs(float64(e.SRTT())-srtt) > 16 || math.Abs(float64(e.RTTVar())-rttvar) > 32 {
				t.Fatalf("run %d sample %d: SRTT %d RTTVAR %d, real filter %.1f %.1f",
					run, i, e.SRTT(), e.RTTVar(), srtt, rttvar)
			}
		}
	}
}

// RFC 9002 §5.3: "MUST NOT subtract the acknowledgment delay from the RTT
// sample if the resulting value is smaller than the min_rtt", i.e.
// "if (latest_rtt >= min_rtt + ack_delay): adjusted_rtt = latest_rtt - ack_delay";
// min_rtt tracks the raw latest_rtt.
func TestAckDelay(t *testing.T) {
	const first = 50 * ms // first sample: SRTT 50, RTTVAR 25, MinRTT 50
	cases := []struct {
		name       string
		rtt, delay time.Duration
		adjusted   time.Duration // the R' the second sample must contribute
		minRTT     time.Duration
	}{
		{"no delay", 90 * ms, 0, 90 * ms, first},
		{"subtracted", 100 * ms, 30 * ms, 70 * ms, first},
		{"equal to min+delay: subtracted", 80 * ms, 30 * ms, 50 * ms, first},
		{"1ns past min: kept", 80 * ms, 30*ms + 1, 80 * ms, first},
		{"lying peer: an hour", 100 * ms, time.Hour, 100 * ms, first},
		{"max u32 microseconds", 100 * ms, math.MaxUint32 * time.Microsecond, 100 * ms, first},
		{"negative delay is 0", 90 * ms, -5 * ms, 90 * ms, first},
		{"new min: raw rtt, kept", 40 * ms, 30 * ms, 40 * ms, 40 * ms},
		{"new min, no delay", 10 * ms, 0, 10 * ms, 10 * ms},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var e, want Estimator
			e.Sample(first, 0)
			e.Sample(c.rtt, c.delay)
			want.Sample(first, 0)
			want.Sample(c.adjusted, 0)
			if e.SRTT() != want.SRTT() || e.RTTVar() != want.RTTVar() {
				t.Errorf("SRTT %v RTTVAR %v, want those of R' = %v: %v %v",
					e.SRTT(), e.RTTVar(), c.adjusted, want.SRTT(), want.RTTVar())
			}
			if e.MinRTT() != c.minRTT {
				t.Errorf("MinRTT %v, want %v", e.MinRTT(), c.minRTT)
			}
		})
	}

	t.Run("first sample keeps its delay", func(t *testing.T) {
		var e Estimator
		e.Sample(100*ms, 20*ms)
		if e.SRTT() != 100*ms || e.RTTVar() != 50*ms || e.MinRTT() != 100*ms {
			t.Errorf("SRTT %v RTTVAR %v MinRTT %v, want 100ms 50ms 100ms", e.SRTT(), e.RTTVar(), e.MinRTT())
		}
	})
}

func TestSampleRejectsNegative(t *testing.T) {
	var e Estimator
	e.Sample(-1, 0)
	if e.Samples() != 0 || e.SRTT() != InitialRTT {
		t.Fatalf("negative first sample accepted: samples %d SRTT %v", e.Samples(), e.SRTT())
	}
	e.Sample(80*ms, 0)
	e.Sample(-time.Second, 0)
	if e.Samples() != 1 || e.SRTT() != 80*ms || e.MinRTT() != 80*ms {
		t.Fatalf("negative sample changed state: samples %d SRTT %v MinRTT %v", e.Samples(), e.SRTT(), e.MinRTT())
	}
}

func TestSampleExtremesDoNotOverflow(t *testing.T) {
	var e Estimator
	for _, r := range []time.Duration{math.MaxInt64, 0, math.MaxInt64, 1, math.MaxInt64} {
		e.Sample(r, math.MaxInt64)
		if e.SRTT() < 0 || e.RTTVar() < 0 {
			t.Fatalf("after %v: SRTT %v RTTVAR %v", r, e.SRTT(), e.RTTVar())
		}
		if got := e.PTO(math.MaxInt64, 100); got != MaxPTO {
			t.Fatalf("after %v: PTO %v, want MaxPTO", r, got)
		}
	}
}

func TestPTO(t *testing.T) {
	// SRTT 100, RTTVAR 50: base = 100 + 4·50 + 25 = 325 ms.
	var e Estimator
	e.Sample(100*ms, 0)
	want := []time.Duration{325 * ms, 650 * ms, 1300 * ms, 2600 * ms, 5200 * ms, 10400 * ms,
		20800 * ms, 41600 * ms, MaxPTO, MaxPTO}
	for probes, w := range want {
		if got := e.PTO(25*ms, probes); got != w {
			t.Errorf("PTO(25ms, %d) = %v, want %v", probes, got, w)
		}
	}
	if got := e.PTO(25*ms, -3); got != 325*ms {
		t.Errorf("negative probes: PTO %v, want 325ms", got)
	}
	if got := e.PTO(-time.Second, 0); got != 300*ms {
		t.Errorf("negative maxAckDelay: PTO %v, want 300ms", got)
	}
}

// A steady RTT drives RTTVAR toward 0; the variance term is then floored at
// Granularity.
func TestPTOGranularity(t *testing.T) {
	var e Estimator
	for range 40 {
		e.Sample(400*ms, 0)
	}
	if 4*e.RTTVar() >= Granularity {
		t.Fatalf("RTTVAR %v did not settle", e.RTTVar())
	}
	if got, want := e.PTO(0, 0), 400*ms+Granularity; got != want {
		t.Errorf("PTO = %v, want %v", got, want)
	}
}

func TestPTOClamps(t *testing.T) {
	t.Run("tiny RTT", func(t *testing.T) {
		// SRTT 100µs + max(200µs, 10ms) = 10.1 ms: doubling stays under the
		// floor up to ×16, then shows.
		var e Estimator
		e.Sample(100*time.Microsecond, 0)
		for probes := range 5 {
			if got := e.PTO(0, probes); got != MinPTO {
				t.Errorf("PTO(0, %d) = %v, want MinPTO", probes, got)
			}
		}
		if got, want := e.PTO(0, 5), 10100*time.Microsecond*32; got != want {
			t.Errorf("PTO(0, 5) = %v, want %v", got, want)
		}
	})
	t.Run("huge RTT", func(t *testing.T) {
		var e Estimator
		e.Sample(10*time.Minute, 0)
		for probes := range 4 {
			if got := e.PTO(0, probes); got != MaxPTO {
				t.Errorf("PTO(0, %d) = %v, want MaxPTO", probes, got)
			}
		}
	})
	t.Run("huge maxAckDelay", func(t *testing.T) {
		var e Estimator
		if got := e.PTO(time.Duration(math.MaxInt64), 0); got != MaxPTO {
			t.Errorf("PTO = %v, want MaxPTO", got)
		}
	})
	t.Run("exactly the ceiling", func(t *testing.T) {
		var e Estimator // SRTT 20 s, RTTVAR 10 s: 20 + 40 = 60 s exactly
		e.Sample(20*time.Second, 0)
		if got := e.PTO(0, 0); got != MaxPTO {
			t.Errorf("PTO = %v, want MaxPTO", got)
		}
		if got := e.PTO(0, 1); got != MaxPTO {
			t.Errorf("PTO(0, 1) = %v, want MaxPTO", got)
		}
	})
	t.Run("many probes", func(t *testing.T) {
		for _, r := range []time.Duration{0, time.Microsecond, 3 * ms, 100 * ms, 5 * time.Second, time.Hour} {
			var e Estimator
			e.Sample(r, 0)
			prev := time.Duration(0)
			for probes := 0; probes <= 100; probes++ {
				got := e.PTO(200*ms, probes)
				if got < MinPTO || got > MaxPTO || got < prev {
					t.Fatalf("rtt %v: PTO(200ms, %d) = %v after %v", r, probes, got, prev)
				}
				prev = got
			}
			if prev != MaxPTO {
				t.Fatalf("rtt %v: PTO after 100 probes = %v, want MaxPTO", r, prev)
			}
			for _, probes := range []int{31, 32, 63, 64, 1 << 20, math.MaxInt} {
				if got := e.PTO(0, probes); got != MaxPTO {
					t.Fatalf("rtt %v: PTO(0, %d) = %v, want MaxPTO", r, probes, got)
				}
			}
		}
	})
}
