//go:build !race

package seqwin

import "testing"

// Zero-allocation claims: the per-message work on both sides allocates
// nothing once a Sender's ring exists.
func TestAllocs(t *testing.T) {
	policy := AckPolicy{}
	t.Run("Receive+Ack+AckDue", func(t *testing.T) {
		var r Receiver
		seq, now := uint64(0), int64(0)
		allocs := testing.AllocsPerRun(1000, func() {
			now += 1000
			// One gap filled per run: Hold, Deliver, Ready, Duplicate.
			seq += 2
			r.Receive(seq, now)
			r.Receive(seq-1, now)
			for _, ok := r.Ready(); ok; _, ok = r.Ready() {
			}
			r.Receive(seq, now)
			if r.AckDue(now, policy) {
				r.Ack(now)
				r.AckSent()
			}
			r.AckDeadline(policy)
		})
		if allocs != 0 {
			t.Fatalf("%v allocs/op, want 0", allocs)
		}
	})
	t.Run("Sent+OnAck", func(t *testing.T) {
		var s Sender
		s.SetLimits(64, 1<<20)
		released := 0
		release := func(uint64) { released++ }
		now := int64(0)
		allocs := testing.AllocsPerRun(1000, func() {
			now += 1000
			for range 3 {
				if s.CanSend(100) {
					s.Sent(s.Next(), 100, now)
				}
			}
			hi := s.Next() - 1
			s.OnAck(hi-2, 1, 50, now+10, release) // one selective, then cumulative
			s.OnAck(hi, 0, 50, now+20, release)
		})
		if allocs != 0 {
			t.Fatalf("%v allocs/op, want 0", allocs)
		}
		if released == 0 || s.InFlight() != 0 {
			t.Fatalf("released %d, %d in flight", released, s.InFlight())
		}
	})
	t.Run("Replay", func(t *testing.T) {
		var s Sender
		for range 100 {
			s.Sent(s.Next(), 1, 0)
		}
		n := 0
		fn := func(uint64) { n++ }
		if allocs := testing.AllocsPerRun(100, func() { s.Replay(fn) }); allocs != 0 {
			t.Fatalf("%v allocs/op, want 0", allocs)
		}
	})
}
