package seqwin

import (
	"strconv"
	"testing"
)

// BenchmarkReceive: one reliable frame through the Receiver and the ACK
// decision, with an ACK built every other frame (the default policy).
func BenchmarkReceive(b *testing.B) {
	policy := AckPolicy{}
	b.Run("in-order", func(b *testing.B) {
		b.ReportAllocs()
		var r Receiver
		seq, now := uint64(0), int64(0)
		for b.Loop() {
			seq++
			now += 1000
			if r.Receive(seq, now) != Deliver {
				b.Fatal("not Deliver")
			}
			if r.AckDue(now, policy) {
				r.Ack(now)
				r.AckSent()
			}
		}
	})
	// Frames arrive in blocks of 64 reversed: each is Hold but the last,
	// which releases the block through Ready.
	b.Run("reversed-64", func(b *testing.B) {
		b.ReportAllocs()
		var r Receiver
		i, base, now := uint64(0), uint64(0), int64(0)
		for b.Loop() {
			now += 1000
			v := r.Receive(base+64-i, now)
			if v == Deliver {
				for _, ok := r.Ready(); ok; _, ok = r.Ready() {
				}
			}
			if r.AckDue(now, policy) {
				r.Ack(now)
				r.AckSent()
			}
			if i++; i == 64 {
				i, base = 0, base+64
			}
		}
	})
	b.Run("duplicate", func(b *testing.B) {
		b.ReportAllocs()
		var r Receiver
		r.Receive(1, 0)
		now := int64(0)
		for b.Loop() {
			now += 1000
			r.Receive(1, now)
			if r.AckDue(now, policy) {
				r.Ack(now)
				r.AckSent()
			}
		}
	})
}

// BenchmarkOnAck: per op, a window of frames is sent and then acknowledged,
// half by a selective ACK and then all by a cumulative one. ns/op is per
// frame (Sent plus its share of the OnAcks), with one ACK per window/2
// frames.
func BenchmarkOnAck(b *testing.B) {
	for _, window := range []int{2, 16, 256, MaxReceiveMax} {
		b.Run("window="+strconv.Itoa(window), func(b *testing.B) {
			b.ReportAllocs()
			var s Sender
			s.SetLimits(window, 0)
			release := func(uint64) {}
			now := int64(0)
			n := 0
			for b.Loop() {
				now += 1000
				s.Sent(s.Next(), 100, now)
				if n++; n == window {
					n = 0
					hi := s.Next() - 1
					cum := hi - uint64(window)/2
					sel := uint64(0xAAAAAAAAAAAAAAAA) // every other Seq above cum+2
					if span := hi - cum - 1; span < 64 {
						sel &= 1<<span - 1 // only Seqs sent
					}
					if _, err := s.OnAck(cum, sel, 25, now, release); err != nil {
						b.Fatal(err)
					}
					if _, err := s.OnAck(hi, 0, 25, now, release); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
