package seqwin

import (
	"encoding/binary"
	"testing"
	"time"
)

// FuzzReceiver feeds a Receiver arbitrary Seqs (near its window, far from
// it, 0), clock steps, ACKs and Resets, and checks it against a model after
// every step: each verdict, that Check agrees with Receive, that Seqs reach
// the application exactly once and in order, the ACK bit by bit, that a
// duplicate is re-acknowledged at once and AckDue under a fixed fuzzPolicy.
//
// Each operation is 3 bytes: a kind and a 16-bit argument.
func FuzzReceiver(f *testing.F) {
	f.Add(uint64(0), []byte{0, 0, 65, 0, 0, 66, 0, 0, 64})
	f.Add(uint64(1000), []byte{1, 3, 0, 0, 2, 0, 6, 100, 0, 5, 0, 0, 7, 10, 0})
	f.Add(uint64(40), []byte{4, 0xff, 0xff, 0, 0x04, 0xb0, 0, 0x04, 0xaf, 0, 0, 64})
	seq := []byte{}
	for i := range 300 {
		seq = append(seq, 0, byte(64+(i*7)%40), 0)
	}
	f.Add(uint64(5), seq)

	f.Fuzz(fuzzBody)
}

var fuzzPolicy = AckPolicy{EveryN: 3, MaxDelay: 10 * time.Millisecond}

func fuzzBody(t *testing.T, start uint64, ops []byte) {
	start %= 1 << 62 // far from the end of the Seq space (SPEC §12.1: never reached)
	if len(ops) > 3*2000 {
		// Longer inputs add nothing the window (1024) does not already allow,
		// and would make each run, and minimizing, slow.
		ops = ops[:3*2000]
	}
	var r Receiver
	r.Reset(start)
	cum := max(start, 1) - 1
	delivered := cum
	got := map[uint64]bool{} // model: received, above cum
	var now, firstAt int64
	newSince, dup := 0, false

	for len(ops) >= 3 {
		kind, arg := ops[0]%8, uint64(binary.LittleEndian.Uint16(ops[1:3]))
		ops = ops[3:]
		switch kind {
		case 0, 1, 2, 3, 4, 5:
			var seq uint64
			switch kind {
			case 5:
				seq = arg // absolute: 0, and far below
			case 4:
				seq = cum + arg // up to 64 K above: TooFar
			default:
				seq = max(cum+arg%1100, 64) - 64 // around the window
			}
			var want Verdict
			switch {
			case seq == 0:
				want = Invalid
			case seq <= cum || got[seq]:
				want = Duplicate
			case seq > cum+WindowBits:
				want = TooFar
			case seq == cum+1 && delivered == cum:
				want = Deliver
			default:
				want = Hold
			}
			if c := r.Check(seq); c != want {
				t.Fatalf("Check(%d) = %v, want %v (cum %d)", seq, c, want, cum)
			}
			if v := r.Receive(seq, now); v != want {
				t.Fatalf("Receive(%d) = %v, want %v (cum %d)", seq, v, want, cum)
			}
			switch want {
			case Duplicate:
				if !newSinceOrDup(newSince, dup) {
					firstAt = now
				}
				dup = true
				if !r.AckDue(now, fuzzPolicy) {
					t.Fatalf("duplicate %d: no ACK due", seq)
				}
			case Deliver, Hold:
				if !newSinceOrDup(newSince, dup) {
					firstAt = now
				}
				newSince++
				got[seq] = true
				for got[cum+1] {
					delete(got, cum+1)
					cum++
				}
			}
			if want == Deliver {
				if seq != delivered+1 {
					t.Fatalf("Deliver %d after %d", seq, delivered)
				}
				delivered = seq
			}
			// Ready drained only now and then: a Seq that arrives in order
			// while others wait in Ready must be Hold, and they still come
			// out in order.
			if want != Deliver || arg%3 != 0 {
				for s, ok := r.Ready(); ok; s, ok = r.Ready() {
					if s != delivered+1 {
						t.Fatalf("Ready %d after %d", s, delivered)
					}
					delivered = s
				}
				if delivered != cum {
					t.Fatalf("Ready stopped at %d, cum %d", delivered, cum)
				}
			}
		case 6:
			now += int64(arg) * int64(time.Microsecond)
		case 7:
			if arg%2 == 0 {
				if !r.AckDue(now, fuzzPolicy) && arg%4 == 0 {
					break
				}
				r.AckSent()
				newSince, dup = 0, false
			} else {
				next := max(cum+arg, 1024) - 1024 // back or forth
				r.Reset(next)
				cum = max(next, 1) - 1
				delivered = cum
				clear(got)
				newSince, dup = 0, false
			}
		}

		if r.Cumulative() != cum || r.Next() != cum+1 {
			t.Fatalf("Cumulative %d, Next %d; model cum %d", r.Cumulative(), r.Next(), cum)
		}
		c, sel, _ := r.Ack(now)
		if c != cum {
			t.Fatalf("ACK Cumulative %d, want %d", c, cum)
		}
		var wantSel uint64
		for s := range got { // got holds Seqs above cum+1 only
			if s-cum-2 < 64 {
				wantSel |= 1 << (s - cum - 2)
			}
		}
		if sel != wantSel {
			t.Fatalf("ACK Selective %#x, want %#x (cum %d)", sel, wantSel, cum)
		}
		due := dup || newSince >= fuzzPolicy.EveryN ||
			(newSince > 0 && now-firstAt >= int64(fuzzPolicy.MaxDelay))
		if r.AckDue(now, fuzzPolicy) != due {
			t.Fatalf("AckDue = %v, want %v", !due, due)
		}
		if at, ok := r.AckDeadline(fuzzPolicy); ok != newSinceOrDup(newSince, dup) || (ok && (at <= now) != due) {
			t.Fatalf("AckDeadline = %d, %v; due %v at %d", at, ok, due, now)
		}
	}
}

func newSinceOrDup(n int, dup bool) bool { return n > 0 || dup }
