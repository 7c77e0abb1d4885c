package seqwin

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// The property test drives a Sender and a Receiver through a loss-free
// connection that reorders and duplicates frames within the window, with
// ACKs travelling back in order, and random resumes: the connection breaks,
// whatever was in transit is lost, the receiver either keeps its state or
// restores its position with Reset, and the sender applies that position
// and replays (SPEC §12.8). A model of what the receiver has recorded checks
// every verdict, every ACK and the end result.

type ackFrame struct {
	cum, sel uint64
	delay    uint32
}

type sim struct {
	t      *testing.T
	seed   uint64
	rng    *rand.Rand
	now    int64
	policy AckPolicy
	window int
	bytes  int // byte limit, 0: none
	tx     Sender
	rx     Receiver

	wire []uint64   // data frames in transit, in any order
	acks []ackFrame // ACKs in transit, in order (one TCP connection)

	// Model of the receiver.
	got       map[uint64]bool // recorded as received, above cum
	cum       uint64
	delivered uint64 // frames delivered: always 1..delivered, in order
	newSince  int    // new receipts since the last ACK
	dupSince  bool
	firstAt   int64

	// Model of the sender.
	released uint64 // 1..released released, in order
	inflight int    // bytes not yet released
	size     map[uint64]int
	sentAt   map[uint64]int64
	replayed map[uint64]bool

	stats *simStats
}

// simStats shows that the runs exercise what they claim to.
type simStats struct {
	verdicts             [TooFar + 1]int
	resumes, resets      int
	acks, badAcks, rtts  int
	maxHeld, maxInFlight int
}

func (s *sim) fatalf(format string, args ...any) {
	s.t.Helper()
	s.t.Fatalf("seed %d, t=%d: %s", s.seed, s.now, fmt.Sprintf(format, args...))
}

func newSim(t *testing.T, seed uint64, st *simStats) *sim {
	rng := rand.New(rand.NewPCG(seed, 0x5e9))
	s := &sim{
		t: t, seed: seed, rng: rng,
		policy:   AckPolicy{EveryN: rng.IntN(5), MaxDelay: time.Duration(rng.IntN(40)) * time.Millisecond},
		window:   1 + rng.IntN(MaxReceiveMax),
		got:      map[uint64]bool{},
		size:     map[uint64]int{},
		sentAt:   map[uint64]int64{},
		replayed: map[uint64]bool{},
		stats:    st,
	}
	if rng.IntN(2) == 0 {
		s.bytes = 100 + rng.IntN(10_000)
	}
	s.tx.SetLimits(s.window, s.bytes)
	return s
}

func (s *sim) send() {
	n := rng0(s.rng, 100)
	inflight := int(s.tx.Next() - 1 - s.released)
	want := inflight < s.window && (s.bytes == 0 || s.inflight+n <= s.bytes)
	if got := s.tx.CanSend(n); got != want {
		s.fatalf("CanSend(%d) = %v with %d frames / %d bytes in flight (limits %d / %d)",
			n, got, inflight, s.inflight, s.window, s.bytes)
	}
	if !want {
		if err := s.tx.Sent(s.tx.Next(), n, s.now); !errors.Is(err, ErrWindowFull) {
			s.fatalf("Sent beyond the limits: %v", err)
		}
		return
	}
	seq := s.tx.Next()
	if err := s.tx.Sent(seq, n, s.now); err != nil {
		s.fatalf("Sent(%d): %v", seq, err)
	}
	s.size[seq], s.sentAt[seq] = n, s.now
	s.inflight += n
	s.wire = append(s.wire, seq)
}

func rng0(r *rand.Rand, n int) int { return r.IntN(n + 1) }

func (s *sim) arrive() {
	if len(s.wire) == 0 {
		return
	}
	// Half the time the oldest frame, as TCP would; else any (reordering).
	i := 0
	if s.rng.IntN(2) == 0 {
		i = s.rng.IntN(len(s.wire))
	}
	seq := s.wire[i]
	if s.rng.IntN(8) != 0 { // else duplicate it: it stays in transit
		s.wire = append(s.wire[:i], s.wire[i+1:]...)
	}
	var want Verdict
	switch {
	case seq <= s.cum || s.got[seq]:
		want = Duplicate
	case seq == s.cum+1:
		want = Deliver
	default:
		want = Hold
	}
	if got := s.rx.Receive(seq, s.now); got != want {
		s.fatalf("Receive(%d) = %v, want %v (cum %d)", seq, got, want, s.cum)
	}
	s.stats.verdicts[want]++
	if want == Duplicate {
		s.dupSince = true
		if !s.rx.AckDue(s.now, s.policy) {
			s.fatalf("duplicate %d not re-acknowledged at once", seq)
		}
	} else {
		if s.newSince == 0 && !s.dupSince {
			s.firstAt = s.now
		}
		s.newSince++
		s.got[seq] = true
		s.stats.maxHeld = max(s.stats.maxHeld, len(s.got))
		for s.got[s.cum+1] {
			delete(s.got, s.cum+1)
			s.cum++
		}
	}
	if want == Deliver {
		s.deliver(seq)
		for r, ok := s.rx.Ready(); ok; r, ok = s.rx.Ready() {
			s.deliver(r)
		}
	}
	if s.delivered != s.cum || s.rx.Cumulative() != s.cum || s.rx.Next() != s.cum+1 {
		s.fatalf("delivered %d, model cum %d, Receiver cum %d", s.delivered, s.cum, s.rx.Cumulative())
	}
}

// deliver checks that seq reaches the application exactly once and in order.
func (s *sim) deliver(seq uint64) {
	if seq != s.delivered+1 {
		s.fatalf("delivered %d after %d", seq, s.delivered)
	}
	s.delivered = seq
}

// checkAck checks the Receiver's ACK against the model, bit by bit.
func (s *sim) checkAck() ackFrame {
	c, sel, d := s.rx.Ack(s.now)
	if c != s.cum {
		s.fatalf("ACK Cumulative %d, want %d", c, s.cum)
	}
	for i := range uint64(64) {
		if (sel>>i&1 != 0) != s.got[c+2+i] {
			s.fatalf("ACK Selective %#x: bit %d (Seq %d) wrong; got %v", sel, i, c+2+i, s.got[c+2+i])
		}
	}
	return ackFrame{c, sel, d}
}

// checkAckDue compares AckDue and AckDeadline with the policy applied to the
// model.
func (s *sim) checkAckDue() {
	n := s.policy.EveryN
	if n <= 0 {
		n = 2
	}
	d := int64(s.policy.MaxDelay)
	if d <= 0 {
		d = int64(25 * time.Millisecond)
	}
	want := s.dupSince || s.newSince >= n || (s.newSince > 0 && s.now-s.firstAt >= d)
	if got := s.rx.AckDue(s.now, s.policy); got != want {
		s.fatalf("AckDue = %v, want %v (new %d, dup %v, oldest %d)", got, want, s.newSince, s.dupSince, s.firstAt)
	}
	at, ok := s.rx.AckDeadline(s.policy)
	if ok != (s.newSince > 0 || s.dupSince) || (ok && (at <= s.now) != want) {
		s.fatalf("AckDeadline = %d, %v with AckDue %v", at, ok, want)
	}
}

func (s *sim) sendAck() {
	s.acks = append(s.acks, s.checkAck())
	s.rx.AckSent()
	s.newSince, s.dupSince = 0, false
}

func (s *sim) ackArrives() {
	if len(s.acks) == 0 {
		return
	}
	a := s.acks[0]
	s.acks = s.acks[1:]
	s.applyAck(a.cum, a.sel, a.delay)
}

func (s *sim) applyAck(cum, sel uint64, delay uint32) {
	prevReleased := s.released
	res, err := s.tx.OnAck(cum, sel, delay, s.now, func(seq uint64) {
		if seq != s.released+1 {
			s.fatalf("released %d after %d", seq, s.released)
		}
		s.released = seq
		s.inflight -= s.size[seq]
	})
	if err != nil {
		s.fatalf("OnAck(%d, %#x): %v", cum, sel, err)
	}
	if want := max(prevReleased, cum); s.released != want || s.tx.Acked() != want {
		s.fatalf("after OnAck(%d): released %d, Acked %d, want %d", cum, s.released, s.tx.Acked(), want)
	}
	if res.Released != int(s.released-prevReleased) || s.tx.Bytes() != s.inflight {
		s.fatalf("OnAck result %+v; Bytes %d, want %d", res, s.tx.Bytes(), s.inflight)
	}
	s.stats.acks++
	if res.HasRTT {
		s.stats.rtts++
		if s.replayed[res.Largest] {
			s.fatalf("RTT sample from replayed Seq %d (Karn)", res.Largest)
		}
		if raw := time.Duration(s.now - s.sentAt[res.Largest]); res.RawRTT != raw {
			s.fatalf("RawRTT %v for Seq %d, want %v", res.RawRTT, res.Largest, raw)
		}
	}
}

// badAck sends an ACK that names a Seq never sent: refused, nothing changes.
func (s *sim) badAck() {
	hi := s.tx.Next() - 1 // highest Seq sent
	var cum, sel uint64
	if s.rng.IntN(2) == 0 {
		cum = hi + 1 + s.rng.Uint64N(1000)
	} else {
		// cum ≤ hi (perhaps stale) and a selective bit for a Seq above hi:
		// bit i names cum+2+i, so i ≥ hi-cum-1 is beyond what was sent.
		cum = hi - s.rng.Uint64N(min(hi, 64)+1)
		minBit := max(hi-cum, 1) - 1
		sel = 1<<(minBit+s.rng.Uint64N(64-minBit)) | s.rng.Uint64()&(1<<minBit-1)
	}
	s.stats.badAcks++
	before := s.tx
	if _, err := s.tx.OnAck(cum, sel, 0, s.now, func(uint64) { s.fatalf("release on a refused ACK") }); !errors.Is(err, ErrAckUnknown) {
		s.fatalf("OnAck(%d, %#x) with %d sent: %v, want ErrAckUnknown", cum, sel, hi, err)
	}
	if s.tx.acked != before.acked || s.tx.sent != before.sent || s.tx.bytes != before.bytes {
		s.fatalf("a refused ACK changed the Sender")
	}
}

// resume breaks the connection and resumes the session on a new one.
func (s *sim) resume() {
	s.wire, s.acks = s.wire[:0], s.acks[:0]
	s.stats.resumes++
	if s.rng.IntN(2) == 0 {
		s.stats.resets++
		// The receiver restores its lane from its position: held Seqs go.
		s.rx.Reset(s.rx.Next())
		clear(s.got)
		s.newSince, s.dupSince = 0, false
	}
	// HELLO/WELCOME ReceivedN, applied as a cumulative ACK; then the replay.
	s.applyAck(s.rx.Cumulative(), 0, 0)
	s.tx.Replay(func(seq uint64) {
		s.replayed[seq] = true
		s.wire = append(s.wire, seq)
	})
}

func runSim(t *testing.T, seed uint64, steps int, st *simStats) {
	s := newSim(t, seed, st)
	for range steps {
		s.now += s.rng.Int64N(int64(3 * time.Millisecond))
		switch k := s.rng.IntN(100); {
		case k < 40:
			s.send()
		case k < 80:
			s.arrive()
		case k < 90:
			s.ackArrives()
		case k < 92:
			s.sendAck() // unprompted
		case k < 94:
			s.badAck()
		case k < 95:
			s.resume()
		}
		s.checkAckDue()
		if s.rx.AckDue(s.now, s.policy) && s.rng.IntN(4) != 0 {
			s.sendAck()
		}
		s.stats.maxInFlight = max(s.stats.maxInFlight, s.tx.InFlight())
		if s.tx.InFlight() > s.window || (s.bytes != 0 && s.tx.Bytes() > s.bytes) {
			s.fatalf("in flight %d frames / %d bytes; limits %d / %d", s.tx.InFlight(), s.tx.Bytes(), s.window, s.bytes)
		}
	}
	// Settle: resume and let everything through until all is released.
	for round := 0; s.tx.InFlight() > 0; round++ {
		if round > 3 {
			s.fatalf("not settled: %d in flight", s.tx.InFlight())
		}
		s.resume()
		for len(s.wire) > 0 {
			s.arrive()
		}
		s.sendAck()
		s.ackArrives()
	}
	if sent := s.tx.Next() - 1; s.delivered != sent || s.released != sent || s.tx.Bytes() != 0 {
		s.fatalf("sent %d, delivered %d, released %d, bytes %d", sent, s.delivered, s.released, s.tx.Bytes())
	}
}

func TestSenderReceiverProperty(t *testing.T) {
	seeds, steps := uint64(300), 3000
	if testing.Short() {
		seeds = 30
	}
	var st simStats
	for seed := range seeds {
		runSim(t, seed, steps, &st)
	}
	t.Logf("%d runs of %d steps: verdicts %v (Invalid, Deliver, Hold, Duplicate, TooFar); "+
		"%d resumes (%d with Reset), %d ACKs applied (%d RTT samples), %d bad ACKs refused; "+
		"at most %d held, %d in flight", seeds, steps, st.verdicts, st.resumes, st.resets,
		st.acks, st.rtts, st.badAcks, st.maxHeld, st.maxInFlight)
	if st.verdicts[Hold] == 0 || st.verdicts[Duplicate] == 0 || st.resets == 0 || st.rtts == 0 {
		t.Fatal("the runs did not exercise holds, duplicates, resets and RTT samples")
	}
}

// With a resume at every step nothing can be lost either.
func TestResumeStorm(t *testing.T) {
	for seed := range uint64(20) {
		s := newSim(t, seed, &simStats{})
		for range 500 {
			s.now += int64(time.Millisecond)
			s.send()
			s.send()
			s.arrive()
			if s.rng.IntN(3) == 0 {
				s.sendAck()
				s.ackArrives()
			}
			s.resume()
		}
		for round := 0; s.tx.InFlight() > 0; round++ {
			if round > 3 {
				s.fatalf("not settled: %d in flight", s.tx.InFlight())
			}
			s.resume()
			for len(s.wire) > 0 {
				s.arrive()
			}
			s.sendAck()
			s.ackArrives()
		}
		if sent := s.tx.Next() - 1; s.delivered != sent {
			s.fatalf("sent %d, delivered %d", sent, s.delivered)
		}
	}
}
