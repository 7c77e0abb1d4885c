package seqwin

import (
	"errors"
	"math"
	"slices"
	"testing"
	"time"
	"unsafe"
)

func TestSlotSize(t *testing.T) {
	if got := unsafe.Sizeof(slot{}); got != 16 {
		t.Fatalf("unsafe.Sizeof(slot{}) = %d, want 16", got)
	}
}

// sendN sends n frames of size bytes each at time now, failing the test on
// an error.
func sendN(t testing.TB, s *Sender, n, size int, now int64) {
	t.Helper()
	for range n {
		if err := s.Sent(s.Next(), size, now); err != nil {
			t.Fatalf("Sent(%d, %d): %v", s.Next(), size, err)
		}
	}
}

func TestSenderLimits(t *testing.T) {
	tests := []struct {
		name       string
		receiveMax int
		maxBytes   int
		wantWindow int
	}{
		{"zero value", -1, 0, DefaultReceiveMax},
		{"0 means 256 (SPEC §5.4.5)", 0, 0, DefaultReceiveMax},
		{"one", 1, 0, 1},
		{"odd", 100, 0, 100},
		{"max", MaxReceiveMax, 0, MaxReceiveMax},
		{"clamped", 65535, 0, MaxReceiveMax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s Sender
			if tt.receiveMax >= 0 {
				s.SetLimits(tt.receiveMax, tt.maxBytes)
			}
			sendN(t, &s, tt.wantWindow, 1, 0)
			if s.CanSend(0) {
				t.Fatalf("CanSend with %d in flight", s.InFlight())
			}
			if err := s.Sent(s.Next(), 0, 0); !errors.Is(err, ErrWindowFull) {
				t.Fatalf("Sent beyond the window: %v, want ErrWindowFull", err)
			}
			if s.InFlight() != tt.wantWindow || s.Next() != uint64(tt.wantWindow)+1 {
				t.Fatalf("InFlight %d, Next %d", s.InFlight(), s.Next())
			}
			if len(s.slots)&(len(s.slots)-1) != 0 || len(s.slots) < tt.wantWindow {
				t.Fatalf("ring of %d slots for a window of %d", len(s.slots), tt.wantWindow)
			}
			if _, err := s.OnAck(1, 0, 0, 0, nil); err != nil || !s.CanSend(0) {
				t.Fatalf("after releasing one: err %v, CanSend %v", err, s.CanSend(0))
			}
		})
	}
}

func TestSenderByteLimit(t *testing.T) {
	var s Sender
	s.SetLimits(10, 100)
	for _, tc := range []struct {
		n    int
		want bool
	}{{-1, false}, {0, true}, {100, true}, {101, false}, {math.MaxInt, false}} {
		if got := s.CanSend(tc.n); got != tc.want {
			t.Errorf("CanSend(%d) = %v, want %v", tc.n, got, tc.want)
		}
	}
	sendN(t, &s, 1, 60, 0)
	if s.CanSend(41) || !s.CanSend(40) {
		t.Fatalf("60 in flight of 100: CanSend(41) %v, CanSend(40) %v", s.CanSend(41), s.CanSend(40))
	}
	if err := s.Sent(2, 41, 0); !errors.Is(err, ErrWindowFull) {
		t.Fatalf("Sent over the byte limit: %v", err)
	}
	sendN(t, &s, 1, 40, 0)
	if s.Bytes() != 100 || s.CanSend(1) || !s.CanSend(0) {
		t.Fatalf("Bytes %d, CanSend(1) %v, CanSend(0) %v", s.Bytes(), s.CanSend(1), s.CanSend(0))
	}
	res, err := s.OnAck(1, 0, 0, 0, nil)
	if err != nil || res.Bytes != 60 || s.Bytes() != 40 || !s.CanSend(60) {
		t.Fatalf("OnAck(1): %+v, %v; Bytes %d", res, err, s.Bytes())
	}
	// Lowering the limit below what is in flight keeps it and stops sending.
	s.SetLimits(10, 30)
	if s.CanSend(0) || s.Bytes() != 40 {
		t.Fatalf("after lowering the byte limit: CanSend(0) %v, Bytes %d", s.CanSend(0), s.Bytes())
	}
}

func TestSenderSeqOrder(t *testing.T) {
	var s Sender
	if s.Next() != 1 {
		t.Fatalf("zero Sender: Next %d, want 1 (SPEC §12.1)", s.Next())
	}
	for _, seq := range []uint64{0, 2, math.MaxUint64} {
		if err := s.Sent(seq, 1, 0); !errors.Is(err, ErrSeqOrder) {
			t.Fatalf("Sent(%d) first: %v, want ErrSeqOrder", seq, err)
		}
	}
	sendN(t, &s, 2, 1, 0)
	if err := s.Sent(2, 1, 0); !errors.Is(err, ErrSeqOrder) {
		t.Fatalf("Sent(2) again: %v, want ErrSeqOrder", err)
	}
	if s.InFlight() != 2 || s.Bytes() != 2 {
		t.Fatalf("failed Sent changed state: InFlight %d, Bytes %d", s.InFlight(), s.Bytes())
	}
	// SPEC §12.1: "A sender MUST NOT wrap around".
	s = Sender{sent: math.MaxUint64 - 1, acked: math.MaxUint64 - 1}
	if s.CanSend(0) {
		t.Fatal("CanSend at the top of the Seq space")
	}
}

func TestOnAckUnknown(t *testing.T) {
	// SPEC §12.2: "An ACK that acknowledges a Seq its receiver never sent on
	// that lane (C, or a selective bit, above the highest Seq sent):
	// PROTOCOL_ERROR."
	tests := []struct {
		name     string
		sent     int
		cum, sel uint64
		wantErr  bool
	}{
		{"nothing sent, nothing acked", 0, 0, 0, false},
		{"nothing sent, cum 1", 0, 1, 0, true},
		{"nothing sent, selective", 0, 0, 1, true},
		{"cum = highest", 10, 10, 0, false},
		{"cum = highest+1", 10, 11, 0, true},
		{"cum huge", 10, math.MaxUint64, 0, true},
		{"selective up to highest", 10, 5, 1 << 3, false},      // 5+2+3 = 10
		{"selective one past", 10, 5, 1 << 4, true},            // 11
		{"selective top bit", 100, 0, 1 << 63, false},          // 65
		{"selective top bit past", 64, 0, 1 << 63, true},       // 65 > 64
		{"selective with cum = highest", 10, 10, 1, true},      // 12
		{"selective with cum = highest-1", 10, 9, 1, true},     // 11
		{"selective with cum = highest-2", 10, 8, 1, false},    // 10
		{"stale cum, fresh selective", 10, 0, 1 << 8, false},   // 10
		{"stale cum, bad selective", 10, 0, 1<<8 | 1<<9, true}, // 11
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s Sender
			sendN(t, &s, tt.sent, 3, 0)
			before := s
			beforeSlots := slices.Clone(s.slots)
			called := false
			_, err := s.OnAck(tt.cum, tt.sel, 0, 1, func(uint64) { called = true })
			if tt.wantErr {
				if !errors.Is(err, ErrAckUnknown) {
					t.Fatalf("OnAck(%d, %#x) = %v, want ErrAckUnknown", tt.cum, tt.sel, err)
				}
				if called || s.acked != before.acked || s.bytes != before.bytes || !slices.Equal(s.slots, beforeSlots) {
					t.Fatal("a refused ACK changed the Sender")
				}
				return
			}
			if err != nil {
				t.Fatalf("OnAck(%d, %#x) = %v", tt.cum, tt.sel, err)
			}
		})
	}
}

func TestOnAck(t *testing.T) {
	ms := int64(time.Millisecond)
	var s Sender
	s.SetLimits(16, 0)
	for i := range 10 {
		sendN(t, &s, 1, 10+i, int64(i)*ms) // Seq i+1 at i ms, 10+i bytes
	}
	var released []uint64
	rel := func(seq uint64) { released = append(released, seq) }

	// Seqs 1..3 and, selectively, 5 and 7. Newest newly acked: 7, sent at 6 ms.
	res, err := s.OnAck(3, 1<<0|1<<2, 1000, 20*ms, rel)
	want := AckResult{Released: 3, Bytes: 10 + 11 + 12, Largest: 7, HasRTT: true,
		RawRTT: 14 * time.Millisecond, RTT: 13 * time.Millisecond}
	if err != nil || res != want || !slices.Equal(released, []uint64{1, 2, 3}) {
		t.Fatalf("OnAck = %+v, %v, released %v; want %+v, [1 2 3]", res, err, released, want)
	}
	if s.Acked() != 3 || s.InFlight() != 7 || s.Bytes() != 13+14+15+16+17+18+19 {
		t.Fatalf("Acked %d, InFlight %d, Bytes %d", s.Acked(), s.InFlight(), s.Bytes())
	}

	// The same ACK again: nothing new, no sample.
	released = nil
	res, err = s.OnAck(3, 1<<0|1<<2, 0, 21*ms, rel)
	if err != nil || res != (AckResult{}) || released != nil {
		t.Fatalf("repeated ACK = %+v, %v, released %v", res, err, released)
	}

	// Cumulative 5: releases 4 and 5; 5 was acknowledged selectively already,
	// so the newest newly acknowledged is 4 (sent at 3 ms). Selective bits
	// now name 7 (bit 0) again and 8 (bit 1): 8 is new and newest.
	res, err = s.OnAck(5, 1<<0|1<<1, 0, 30*ms, rel)
	want = AckResult{Released: 2, Bytes: 13 + 14, Largest: 8, HasRTT: true,
		RawRTT: 23 * time.Millisecond, RTT: 23 * time.Millisecond}
	if err != nil || res != want || !slices.Equal(released, []uint64{4, 5}) {
		t.Fatalf("OnAck(5) = %+v, %v, released %v; want %+v", res, err, released, want)
	}
	res, _ = s.OnAck(6, 0, 0, 30*ms, nil)
	if res.Largest != 6 || res.RawRTT != 25*time.Millisecond {
		t.Fatalf("OnAck(6) = %+v, want Largest 6, RawRTT 25ms", res)
	}

	// A stale ACK changes nothing.
	res, err = s.OnAck(2, 1<<7, 0, 31*ms, nil) // bit 7: Seq 11 > 10 sent
	if !errors.Is(err, ErrAckUnknown) {
		t.Fatalf("stale ACK with bad selective: %v", err)
	}
	res, err = s.OnAck(2, 0, 0, 31*ms, nil)
	if err != nil || res != (AckResult{}) || s.Acked() != 6 {
		t.Fatalf("stale ACK = %+v, %v, Acked %d", res, err, s.Acked())
	}

	// Ack delay not below the raw sample: RTT is the raw sample.
	res, _ = s.OnAck(7, 0, math.MaxUint32, 40*ms, nil)
	if res.Largest != 0 { // 7 was sacked: nothing new
		t.Fatalf("OnAck(7) = %+v, want nothing new", res)
	}
	res, _ = s.OnAck(9, 0, 100_000, 40*ms, nil)
	if !res.HasRTT || res.Largest != 9 || res.RawRTT != 32*time.Millisecond || res.RTT != res.RawRTT {
		t.Fatalf("OnAck(9) with a large delay = %+v", res)
	}
	// An ACK arriving before the send time (a clock that went backwards): no sample.
	res, _ = s.OnAck(10, 0, 0, 0, nil)
	if res.Largest != 10 || res.HasRTT {
		t.Fatalf("OnAck(10) at t=0 = %+v, want Largest 10 and no sample", res)
	}
	if s.InFlight() != 0 || s.Bytes() != 0 {
		t.Fatalf("all acknowledged: InFlight %d, Bytes %d", s.InFlight(), s.Bytes())
	}
}

// Karn's rule: no RTT sample from a replayed Seq.
func TestReplay(t *testing.T) {
	var s Sender
	sendN(t, &s, 6, 1, 0)
	if _, err := s.OnAck(2, 1<<1, 0, 1, nil); err != nil { // releases 1, 2; sacks 5
		t.Fatal(err)
	}
	var replayed []uint64
	s.Replay(func(seq uint64) { replayed = append(replayed, seq) })
	// Selectively acknowledged 5 is replayed too: the resumed peer may have
	// forgotten it.
	if !slices.Equal(replayed, []uint64{3, 4, 5, 6}) {
		t.Fatalf("Replay = %v, want [3 4 5 6]", replayed)
	}
	if s.InFlight() != 4 || s.Next() != 7 {
		t.Fatalf("Replay changed InFlight %d / Next %d", s.InFlight(), s.Next())
	}
	sendN(t, &s, 1, 1, 5) // Seq 7, fresh
	res, _ := s.OnAck(4, 0, 0, 10, nil)
	if res.Largest != 4 || res.HasRTT || res.Released != 2 {
		t.Fatalf("ACK of replayed Seqs = %+v, want Largest 4, no sample", res)
	}
	res, _ = s.OnAck(7, 0, 0, 10, nil)
	if res.Largest != 7 || !res.HasRTT || res.RawRTT != 5 {
		t.Fatalf("ACK of a fresh Seq after replay = %+v, want a sample of 5ns", res)
	}
	s.Replay(nil) // nothing in flight: no-op
}

// SetLimits raising the window past the ring moves the in-flight slots.
func TestSenderGrow(t *testing.T) {
	var s Sender
	s.SetLimits(3, 0) // ring of 4
	sendN(t, &s, 3, 1, 0)
	s.OnAck(1, 0, 0, 0, nil)
	sendN(t, &s, 1, 1, 0) // Seqs 2..4 in flight; 4 wrapped onto slot 0
	for i := 2; i <= 4; i++ {
		s.slots[uint64(i)&3].at = int64(i) // tag them
	}
	s.OnAck(1, 1<<1, 0, 100, nil) // sack 4
	s.SetLimits(100, 0)
	if len(s.slots) != 128 {
		t.Fatalf("ring of %d slots, want 128", len(s.slots))
	}
	for i := uint64(2); i <= 4; i++ {
		if sl := s.slots[i&127]; sl.at != int64(i) || sl.size != 1 || (sl.flags&slotSacked != 0) != (i == 4) {
			t.Fatalf("slot of Seq %d after grow: %+v", i, sl)
		}
	}
	sendN(t, &s, 97, 1, 0)
	if s.CanSend(0) || s.InFlight() != 100 {
		t.Fatalf("InFlight %d after filling the grown window", s.InFlight())
	}
}
