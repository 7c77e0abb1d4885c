package seqwin

import (
	"math"
	"slices"
	"testing"
	"time"
	"unsafe"
)

func TestReceiverSize(t *testing.T) {
	// Three per direction per session: keep it small and fixed.
	if got := unsafe.Sizeof(Receiver{}); got != 168 {
		t.Fatalf("unsafe.Sizeof(Receiver{}) = %d, want 168", got)
	}
}

func TestVerdictString(t *testing.T) {
	for v, want := range map[Verdict]string{
		Invalid: "Invalid", Deliver: "Deliver", Hold: "Hold", Duplicate: "Duplicate",
		TooFar: "TooFar", 200: "Verdict(?)",
	} {
		if got := v.String(); got != want {
			t.Errorf("Verdict(%d).String() = %q, want %q", v, got, want)
		}
	}
}

// drain pops Ready until empty.
func drain(r *Receiver) []uint64 {
	var out []uint64
	for s, ok := r.Ready(); ok; s, ok = r.Ready() {
		out = append(out, s)
	}
	return out
}

func TestReceiverTable(t *testing.T) {
	type step struct {
		seq   uint64
		want  Verdict
		ready []uint64 // Ready after this step
	}
	tests := []struct {
		name    string
		start   uint64 // Reset(start) first if not 0
		steps   []step
		wantCum uint64
		wantSel uint64
	}{
		{
			name:    "in order",
			steps:   []step{{1, Deliver, nil}, {2, Deliver, nil}, {3, Deliver, nil}},
			wantCum: 3,
		},
		{
			name:  "seq 0 is invalid (SPEC §12.1)",
			steps: []step{{0, Invalid, nil}, {1, Deliver, nil}, {0, Invalid, nil}},
			// nothing recorded for 0
			wantCum: 1,
		},
		{
			name:    "duplicate at or below cumulative",
			steps:   []step{{1, Deliver, nil}, {2, Deliver, nil}, {1, Duplicate, nil}, {2, Duplicate, nil}},
			wantCum: 2,
		},
		{
			name: "gap filled releases held in order",
			steps: []step{
				{1, Deliver, nil}, {3, Hold, nil}, {4, Hold, nil}, {3, Duplicate, nil},
				{2, Deliver, []uint64{3, 4}}, {5, Deliver, nil},
			},
			wantCum: 5,
		},
		{
			name:    "held reversed",
			steps:   []step{{4, Hold, nil}, {3, Hold, nil}, {2, Hold, nil}, {1, Deliver, []uint64{2, 3, 4}}},
			wantCum: 4,
		},
		{
			name:    "selective bits",
			steps:   []step{{1, Deliver, nil}, {3, Hold, nil}, {5, Hold, nil}, {66, Hold, nil}, {67, Hold, nil}},
			wantCum: 1,
			// bit i: seq 1+2+i. 3→0, 5→2, 66→63; 67 is beyond the ACK's reach.
			wantSel: 1<<0 | 1<<2 | 1<<63,
		},
		{
			name: "window edge",
			steps: []step{
				{WindowBits, Hold, nil}, {WindowBits + 1, TooFar, nil},
				{WindowBits, Duplicate, nil},
			},
			wantCum: 0,
		},
		{
			name:  "window edge after advance",
			start: 1000,
			steps: []step{
				{999, Duplicate, nil}, {1, Duplicate, nil},
				{999 + WindowBits, Hold, nil}, {1000 + WindowBits, TooFar, nil},
				{1000, Deliver, nil}, {1000 + WindowBits, Hold, nil},
			},
			wantCum: 1000,
		},
		{
			name:  "whole window filled then advanced in one go",
			start: 60, // start mid-word so the run crosses word and ring boundaries
			steps: func() []step {
				var st []step
				for s := uint64(61); s < 60+WindowBits; s++ {
					st = append(st, step{s, Hold, nil})
				}
				ready := make([]uint64, 0, WindowBits)
				for s := uint64(61); s < 60+WindowBits; s++ {
					ready = append(ready, s)
				}
				st = append(st, step{60, Deliver, ready})
				st = append(st, step{60 + WindowBits, Deliver, nil}, step{61 + WindowBits, Deliver, nil})
				return st
			}(),
			wantCum: 61 + WindowBits,
		},
		{
			name:    "near the top of the Seq space",
			start:   math.MaxUint64 - 2,
			steps:   []step{{math.MaxUint64 - 1, Hold, nil}, {math.MaxUint64 - 2, Deliver, []uint64{math.MaxUint64 - 1}}},
			wantCum: math.MaxUint64 - 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Receiver
			if tt.start != 0 {
				r.Reset(tt.start)
			}
			for i, st := range tt.steps {
				if got := r.Check(st.seq); got != st.want {
					t.Fatalf("step %d: Check(%d) = %v, want %v", i, st.seq, got, st.want)
				}
				if got := r.Receive(st.seq, int64(i)); got != st.want {
					t.Fatalf("step %d: Receive(%d) = %v, want %v", i, st.seq, got, st.want)
				}
				if got := drain(&r); !slices.Equal(got, st.ready) {
					t.Fatalf("step %d: Ready = %v, want %v", i, got, st.ready)
				}
			}
			c, sel, _ := r.Ack(0)
			if c != tt.wantCum || sel != tt.wantSel || r.Cumulative() != c || r.Next() != c+1 {
				t.Fatalf("Ack = (%d, %#x), Cumulative %d, Next %d; want (%d, %#x)",
					c, sel, r.Cumulative(), r.Next(), tt.wantCum, tt.wantSel)
			}
		})
	}
}

// SPEC §12.2, worked example: "Side A received Seq 1 to 41, 43, 44 and 46;
// 42 and 45 are missing. [...] Cumulative 41, Selective 0x000000000000000B
// [...] AckDelay 1,500 [...] When Seq 42 then arrives, A's next ACK has
// Cumulative 44 (1 to 44 received) and Selective 0x1".
func TestReceiverSpecExample(t *testing.T) {
	var r Receiver
	now := int64(0)
	for s := uint64(1); s <= 46; s++ {
		if s == 42 || s == 45 {
			continue
		}
		now += int64(time.Millisecond)
		r.Receive(s, now)
	}
	c, sel, delay := r.Ack(now + 1500*int64(time.Microsecond))
	if c != 41 || sel != 0xB || delay != 1500 {
		t.Fatalf("Ack = (%d, %#x, %d), want (41, 0xb, 1500)", c, sel, delay)
	}
	if v := r.Receive(42, now); v != Deliver {
		t.Fatalf("Receive(42) = %v, want Deliver", v)
	}
	if got := drain(&r); !slices.Equal(got, []uint64{43, 44}) {
		t.Fatalf("Ready after 42 = %v, want [43 44]", got)
	}
	if c, sel, _ := r.Ack(now); c != 44 || sel != 0x1 {
		t.Fatalf("Ack after 42 = (%d, %#x), want (44, 0x1)", c, sel)
	}
}

// A Seq that becomes in order while earlier ones still wait in Ready must not
// overtake them.
func TestReceiverHoldBehindReady(t *testing.T) {
	var r Receiver
	r.Receive(2, 0)
	r.Receive(3, 0)
	if v := r.Receive(1, 0); v != Deliver {
		t.Fatalf("Receive(1) = %v, want Deliver", v)
	}
	// 2 and 3 not yet popped: 4 is next to arrive but not next to deliver.
	if v := r.Receive(4, 0); v != Hold {
		t.Fatalf("Receive(4) before draining Ready = %v, want Hold", v)
	}
	if got := drain(&r); !slices.Equal(got, []uint64{2, 3, 4}) {
		t.Fatalf("Ready = %v, want [2 3 4]", got)
	}
	if v := r.Receive(5, 0); v != Deliver {
		t.Fatalf("Receive(5) = %v, want Deliver", v)
	}
}

func TestReceiverReset(t *testing.T) {
	var r Receiver
	r.Receive(1, 0)
	r.Receive(3, 0)
	r.Reset(100)
	if r.Next() != 100 || r.Cumulative() != 99 {
		t.Fatalf("after Reset(100): Next %d, Cumulative %d", r.Next(), r.Cumulative())
	}
	if _, ok := r.AckDeadline(AckPolicy{}); ok || r.AckDue(1<<40, AckPolicy{}) {
		t.Fatal("ACK owed after Reset")
	}
	if c, sel, d := r.Ack(1 << 40); c != 99 || sel != 0 || d != 0 {
		t.Fatalf("Ack after Reset = (%d, %#x, %d), want (99, 0, 0)", c, sel, d)
	}
	for _, tc := range []struct {
		seq  uint64
		want Verdict
	}{{3, Duplicate}, {99, Duplicate}, {101, Hold}, {100, Deliver}} {
		if v := r.Receive(tc.seq, 0); v != tc.want {
			t.Fatalf("Receive(%d) after Reset(100) = %v, want %v", tc.seq, v, tc.want)
		}
	}
	r.Reset(0)
	if r != (Receiver{}) {
		t.Fatal("Reset(0) is not the zero Receiver")
	}
}

func TestAckDelay(t *testing.T) {
	var r Receiver
	if _, _, d := r.Ack(1 << 50); d != 0 {
		t.Fatalf("AckDelay before any receipt = %d, want 0", d)
	}
	ms := int64(time.Millisecond)
	r.Receive(1, 10*ms)
	r.Receive(2, 12*ms)
	// Newest acknowledged frame arrived at 12 ms.
	if _, _, d := r.Ack(15 * ms); d != 3000 {
		t.Fatalf("AckDelay = %d µs, want 3000", d)
	}
	// A duplicate is the newest frame the re-ACK acknowledges.
	r.Receive(1, 20*ms)
	if _, _, d := r.Ack(20*ms + 7000); d != 7 {
		t.Fatalf("AckDelay after duplicate = %d µs, want 7", d)
	}
	// Refused frames are not acknowledged and do not move it.
	r.Receive(0, 30*ms)
	r.Receive(5000, 30*ms)
	if _, _, d := r.Ack(21 * ms); d != 1000 {
		t.Fatalf("AckDelay = %d µs, want 1000", d)
	}
	// A clock read before the receipt: 0, not a wrapped value.
	if _, _, d := r.Ack(19 * ms); d != 0 {
		t.Fatalf("AckDelay with now before receipt = %d, want 0", d)
	}
	// Capped at 2^32−1 µs.
	if _, _, d := r.Ack(20*ms + int64(2*time.Hour)); d != math.MaxUint32 {
		t.Fatalf("AckDelay after 2h = %d, want %d", d, uint32(math.MaxUint32))
	}
}

func TestAckDue(t *testing.T) {
	ms := int64(time.Millisecond)
	t.Run("every N", func(t *testing.T) {
		for _, n := range []int{0, 1, 2, 5} {
			p := AckPolicy{EveryN: n, MaxDelay: time.Hour}
			want := n
			if n == 0 {
				want = 2 // the default
			}
			var r Receiver
			seq := uint64(0)
			for round := 0; round < 3; round++ {
				for i := 1; i <= want; i++ {
					seq++
					r.Receive(seq, int64(seq))
					if got := r.AckDue(int64(seq), p); got != (i == want) {
						t.Fatalf("N=%d round %d: AckDue after %d new = %v", n, round, i, got)
					}
					at, ok := r.AckDeadline(p)
					if !ok || (i == want) != (at <= int64(seq)) {
						t.Fatalf("N=%d: AckDeadline after %d new = %d, %v (now %d)", n, i, at, ok, seq)
					}
				}
				r.AckSent()
				if r.AckDue(int64(seq), p) {
					t.Fatalf("N=%d: AckDue right after AckSent", n)
				}
			}
		}
	})
	t.Run("max delay", func(t *testing.T) {
		for _, d := range []time.Duration{0, time.Millisecond, 40 * time.Millisecond} {
			p := AckPolicy{EveryN: 1000, MaxDelay: d}
			want := int64(d)
			if d == 0 {
				want = int64(25 * time.Millisecond) // the default
			}
			var r Receiver
			start := 100 * ms
			r.Receive(1, start)
			r.Receive(2, start+want/2) // a later receipt does not push the deadline
			if at, ok := r.AckDeadline(p); !ok || at != start+want {
				t.Fatalf("MaxDelay %v: AckDeadline = %d, %v; want %d", d, at, ok, start+want)
			}
			if r.AckDue(start+want-1, p) {
				t.Fatalf("MaxDelay %v: due 1 ns early", d)
			}
			if !r.AckDue(start+want, p) {
				t.Fatalf("MaxDelay %v: not due at the deadline", d)
			}
			r.AckSent()
			if r.AckDue(start+10*want, p) {
				t.Fatalf("MaxDelay %v: due with nothing to acknowledge", d)
			}
			if _, ok := r.AckDeadline(p); ok {
				t.Fatalf("MaxDelay %v: deadline with nothing to acknowledge", d)
			}
			// The clock starts again at the next receipt.
			r.Receive(3, start+20*want)
			if at, _ := r.AckDeadline(p); at != start+21*want {
				t.Fatalf("MaxDelay %v: second deadline %d, want %d", d, at, start+21*want)
			}
		}
	})
	t.Run("duplicate is due at once", func(t *testing.T) {
		p := AckPolicy{EveryN: 100, MaxDelay: time.Hour}
		var r Receiver
		r.Receive(1, 0)
		r.AckSent()
		if v := r.Receive(1, 5*ms); v != Duplicate || !r.AckDue(5*ms, p) {
			t.Fatalf("Receive(1) again = %v, AckDue %v; want Duplicate, true", v, r.AckDue(5*ms, p))
		}
		if at, ok := r.AckDeadline(p); !ok || at > 5*ms {
			t.Fatalf("AckDeadline after duplicate = %d, %v; want ≤ now", at, ok)
		}
		r.AckSent()
		if r.AckDue(5*ms, p) {
			t.Fatal("due after AckSent")
		}
	})
	t.Run("refused frames owe nothing", func(t *testing.T) {
		var r Receiver
		r.Receive(0, 0)
		r.Receive(WindowBits+5, 0)
		if r.AckDue(int64(time.Hour), AckPolicy{EveryN: 1}) {
			t.Fatal("ACK due for Invalid/TooFar")
		}
	})
}
