package chaos

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Checker is the test's oracle, in the spirit of Jepsen's queue checker:
// every message a sender issued must be delivered exactly once, in order
// within its lane, or be dropped with a report that counts it. It knows
// the streams (client × direction × lane), hands out the index of every
// message sent and records every delivery.
//
// All methods are safe from any goroutine; Deliver is cheap enough to call
// on an event loop (one short mutex per stream).
type Checker struct {
	clients int
	streams []stream
	// drops counts the drops reported for (client, dir): a GAP_REPORT's
	// counts for Down, the client library's drop reports for Up.
	drops []atomic.Uint64
	// abandoned counts, per (client, dir), the messages written off when
	// the client's session was lost (WriteOff): lost, but settled, so
	// that the run goes on and finds what else is wrong.
	abandoned []atomic.Uint64

	mu      sync.Mutex
	corrupt uint64
	foreign uint64 // decoded fine but arrived where it does not belong
	samples []string
	// consumed counts, per (client, dir), the reported drops and
	// write-offs that gaps in delivery have used up; a gap no report
	// covers is a loss seen the moment it happens (unexplained).
	consumed    []uint64
	unexplained uint64
	gapSamples  []string
}

type stream struct {
	mu        sync.Mutex
	sent      uint64 // indexes 0..sent-1 were issued
	delivered uint64 // distinct indexes delivered
	next      uint64 // highest index delivered + 1
	dropped   uint64 // drops reported for this stream (DropReportedLane)
	dups      uint64
	reorders  uint64
	unknown   uint64 // index >= sent: never issued
	seen      []uint64
	firstDup  []uint64
	firstReo  []string
	firstUnk  []uint64
	wake      chan struct{}
}

const maxSamples = 8

// NewChecker returns a checker for clients clients, each with NumLanes
// lanes in both directions.
func NewChecker(clients int) *Checker {
	c := &Checker{
		clients:   clients,
		streams:   make([]stream, clients*2*NumLanes),
		drops:     make([]atomic.Uint64, clients*2),
		abandoned: make([]atomic.Uint64, clients*2),
		consumed:  make([]uint64, clients*2),
	}
	for i := range c.streams {
		c.streams[i].wake = make(chan struct{}, 1)
	}
	return c
}

// Clients is the number of clients the checker was made for.
func (c *Checker) Clients() int { return c.clients }

func (c *Checker) stream(client int, dir Dir, lane uint8) *stream {
	if client < 0 || client >= c.clients || dir > Down || lane < 1 || lane > NumLanes {
		return nil
	}
	return &c.streams[(client*2+int(dir))*NumLanes+int(lane-1)]
}

// Next issues the next message of a stream and counts it as sent. Call it
// before handing the message to the sender, so that a delivery never runs
// ahead of its send.
func (c *Checker) Next(client int, dir Dir, lane uint8) Msg {
	s := c.stream(client, dir, lane)
	s.mu.Lock()
	i := s.sent
	s.sent++
	s.mu.Unlock()
	return Msg{Client: uint16(client), Dir: dir, Lane: lane, Index: i}
}

// Deliver records a payload that arrived at the receiving side of
// (client, dir) on lane. It reports whether the payload was a new, valid
// message of that stream.
func (c *Checker) Deliver(client int, dir Dir, lane uint8, payload []byte) bool {
	m, err := Decode(payload)
	if err != nil {
		c.problem(&c.corrupt, fmt.Sprintf("client %d %s lane %d: corrupt payload of %d bytes: % x",
			client, dir, lane, len(payload), payload[:min(len(payload), 24)]))
		return false
	}
	s := c.stream(client, dir, lane)
	if s == nil || int(m.Client) != client || m.Dir != dir || m.Lane != lane {
		c.problem(&c.foreign, fmt.Sprintf("client %d %s lane %d: got a message of client %d %s lane %d (index %d)",
			client, dir, lane, m.Client, m.Dir, m.Lane, m.Index))
		return false
	}
	s.mu.Lock()
	ok, from := s.deliver(m.Index)
	s.mu.Unlock()
	if ok && from < m.Index {
		c.gap(client, dir, lane, from, m.Index)
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return ok
}

// gap accounts for indexes from..to-1 of a stream skipped by a delivery:
// drops reported before it (a GAP_REPORT comes before the messages after
// the drop) or a write-off must cover them, else they are lost now.
func (c *Checker) gap(client int, dir Dir, lane uint8, from, to uint64) {
	k := client*2 + int(dir)
	n := to - from
	c.mu.Lock()
	defer c.mu.Unlock()
	credit := c.drops[k].Load() + c.abandoned[k].Load() - c.consumed[k]
	if n <= credit {
		c.consumed[k] += n
		return
	}
	c.consumed[k] += credit
	c.unexplained += n - credit
	if len(c.gapSamples) < maxSamples {
		c.gapSamples = append(c.gapSamples, fmt.Sprintf("client %d %s lane %d: %d..%d skipped (%d messages, %d of them covered by drop reports)",
			client, dir, lane, from, to-1, n, credit))
	}
}

// deliver records index i and returns whether it is new and, for a new
// index past the highest so far, the first index it skipped (i when none).
func (s *stream) deliver(i uint64) (bool, uint64) {
	if i >= s.sent {
		s.unknown++
		if len(s.firstUnk) < maxSamples {
			s.firstUnk = append(s.firstUnk, i)
		}
		return false, i
	}
	w, b := i/64, i%64
	for uint64(len(s.seen)) <= w {
		s.seen = append(s.seen, 0)
	}
	if s.seen[w]&(1<<b) != 0 {
		s.dups++
		if len(s.firstDup) < maxSamples {
			s.firstDup = append(s.firstDup, i)
		}
		return false, i
	}
	s.seen[w] |= 1 << b
	s.delivered++
	if i+1 < s.next {
		s.reorders++
		if len(s.firstReo) < maxSamples {
			s.firstReo = append(s.firstReo, strconv.FormatUint(i, 10)+" after "+strconv.FormatUint(s.next-1, 10))
		}
		return true, i
	}
	from := s.next
	s.next = i + 1
	return true, from
}

func (c *Checker) problem(n *uint64, sample string) {
	c.mu.Lock()
	*n++
	if len(c.samples) < maxSamples {
		c.samples = append(c.samples, sample)
	}
	c.mu.Unlock()
}

// DropReported counts n messages of (client, dir) that the delivery layer
// reported as dropped.
func (c *Checker) DropReported(client int, dir Dir, n uint64) {
	c.drops[client*2+int(dir)].Add(n)
}

// WriteOff gives up on the messages of (client, dir) not delivered nor
// reported dropped so far, for a session that was lost: they stay lost in
// the Result, but count as settled for Settled and Progress, so that the
// run does not stall on them. It returns how many it wrote off.
func (c *Checker) WriteOff(client int, dir Dir) uint64 {
	var sent, got uint64
	for lane := uint8(1); lane <= NumLanes; lane++ {
		s := c.stream(client, dir, lane)
		s.mu.Lock()
		sent += s.sent
		got += s.delivered
		s.mu.Unlock()
	}
	k := client*2 + int(dir)
	settled := got + c.drops[k].Load() + c.abandoned[k].Load()
	if settled >= sent {
		return 0
	}
	c.abandoned[k].Add(sent - settled)
	return sent - settled
}

// DropReportedLane is DropReported for drops whose lane is known (a
// message the sender was told failed): they also free the stream's window.
func (c *Checker) DropReportedLane(client int, dir Dir, lane uint8, n uint64) {
	s := c.stream(client, dir, lane)
	s.mu.Lock()
	s.dropped += n
	s.mu.Unlock()
	c.DropReported(client, dir, n)
}

// Outstanding is how far the sender of a stream is ahead of its receiver:
// sent minus the highest index delivered + 1, minus the drops reported
// with the stream's lane. Drops of the oldest messages move the receiver
// forward, drops of the newest (a sender told its messages failed) are
// counted, so both free the window. (A lane drop below the highest index
// delivered is counted too: the window is then a little wider.)
func (c *Checker) Outstanding(client int, dir Dir, lane uint8) uint64 {
	s := c.stream(client, dir, lane)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent - min(s.sent, s.next+s.dropped)
}

// Wake returns a channel that receives after deliveries on a stream; one
// waiter per stream (its sender).
func (c *Checker) Wake(client int, dir Dir, lane uint8) <-chan struct{} {
	return c.stream(client, dir, lane).wake
}

// Settled reports whether every message sent so far is delivered or
// reported dropped.
func (c *Checker) Settled() bool {
	for client := range c.clients {
		for dir := Up; dir <= Down; dir++ {
			var sent, got uint64
			for lane := uint8(1); lane <= NumLanes; lane++ {
				s := c.stream(client, dir, lane)
				s.mu.Lock()
				sent += s.sent
				got += s.delivered
				s.mu.Unlock()
			}
			k := client*2 + int(dir)
			if got+c.drops[k].Load()+c.abandoned[k].Load() < sent {
				return false
			}
		}
	}
	return true
}

// Progress is the number of messages delivered or reported dropped, over
// all streams.
func (c *Checker) Progress() uint64 {
	var n uint64
	for i := range c.streams {
		s := &c.streams[i]
		s.mu.Lock()
		n += s.delivered
		s.mu.Unlock()
	}
	for i := range c.drops {
		n += c.drops[i].Load() + c.abandoned[i].Load()
	}
	return n
}

// Result is the checker's verdict.
type Result struct {
	Sent, Delivered, Duplicated, Reordered, DroppedReported uint64
	// Lost is sent − delivered − dropped_reported, summed over
	// (client, direction): negative when more drops were reported than
	// messages are missing.
	Lost int64
	// Corrupt, Foreign and Unknown are deliveries that are not messages
	// of the stream they arrived on: payloads that fail their checksum,
	// messages of another stream, indexes never sent.
	Corrupt, Foreign, Unknown uint64
	// Unexplained counts messages a receiver skipped with no drop report
	// (or lost session) to cover them at that moment.
	Unexplained uint64
	// Problems names each failure with the first message ids involved;
	// empty when the run passed.
	Problems []string
}

// OK reports whether the run passed: nothing lost, duplicated, reordered,
// corrupt or unexpected, and every drop accounted for exactly.
func (r *Result) OK() bool { return len(r.Problems) == 0 }

// Line is the one summary line the chaos test prints.
func (r *Result) Line(disconnects int) string {
	return fmt.Sprintf("chaos: sent=%d delivered=%d lost=%d duplicated=%d reordered=%d dropped_reported=%d disconnects=%d",
		r.Sent, r.Delivered, r.Lost, r.Duplicated, r.Reordered, r.DroppedReported, disconnects)
}

// Result computes the verdict over everything recorded so far.
func (c *Checker) Result() Result {
	var r Result
	for client := range c.clients {
		for dir := Up; dir <= Down; dir++ {
			var sent, got uint64
			var missing []string
			for lane := uint8(1); lane <= NumLanes; lane++ {
				s := c.stream(client, dir, lane)
				s.mu.Lock()
				sent += s.sent
				got += s.delivered
				r.Duplicated += s.dups
				r.Reordered += s.reorders
				r.Unknown += s.unknown
				where := fmt.Sprintf("client %d %s lane %d", client, dir, lane)
				if s.dups > 0 {
					r.Problems = append(r.Problems, fmt.Sprintf("%s: %d delivered twice, first %v", where, s.dups, s.firstDup))
				}
				if s.reorders > 0 {
					r.Problems = append(r.Problems, fmt.Sprintf("%s: %d out of order, first %s", where, s.reorders, strings.Join(s.firstReo, ", ")))
				}
				if s.unknown > 0 {
					r.Problems = append(r.Problems, fmt.Sprintf("%s: %d deliveries of indexes never sent, first %v", where, s.unknown, s.firstUnk))
				}
				if ids, n := s.missing(); n > 0 {
					missing = append(missing, fmt.Sprintf("lane %d: %d missing, first %v", lane, n, ids))
				}
				s.mu.Unlock()
			}
			dropped := c.drops[client*2+int(dir)].Load()
			r.Sent += sent
			r.Delivered += got
			r.DroppedReported += dropped
			lost := int64(sent) - int64(got) - int64(dropped)
			r.Lost += lost
			switch {
			case lost > 0:
				var off string
				if a := c.abandoned[client*2+int(dir)].Load(); a > 0 {
					off = fmt.Sprintf(" (%d written off with a lost session)", a)
				}
				r.Problems = append(r.Problems, fmt.Sprintf("client %d %s: lost %d%s = sent %d - delivered %d - dropped_reported %d; %s",
					client, dir, lost, off, sent, got, dropped, strings.Join(missing, "; ")))
			case lost < 0:
				r.Problems = append(r.Problems, fmt.Sprintf("client %d %s: %d more drops reported than messages missing (sent %d, delivered %d, dropped_reported %d)",
					client, dir, -lost, sent, got, dropped))
			}
		}
	}
	c.mu.Lock()
	r.Unexplained = c.unexplained
	if c.unexplained > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("%d messages skipped by their receiver with no drop reported: %s",
			c.unexplained, strings.Join(c.gapSamples, "; ")))
	}
	r.Corrupt, r.Foreign = c.corrupt, c.foreign
	if c.corrupt+c.foreign > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("%d corrupt and %d misplaced payloads: %s",
			c.corrupt, c.foreign, strings.Join(c.samples, "; ")))
	}
	c.mu.Unlock()
	return r
}

// missing returns the first indexes below sent never delivered, and how
// many there are. The caller holds s.mu.
func (s *stream) missing() ([]uint64, uint64) {
	var ids []uint64
	n := s.sent - s.delivered
	if n == 0 {
		return nil, 0
	}
	for w := uint64(0); w*64 < s.sent && len(ids) < maxSamples; w++ {
		var word uint64
		if w < uint64(len(s.seen)) {
			word = s.seen[w]
		}
		free := ^word
		if rem := s.sent - w*64; rem < 64 {
			free &= 1<<rem - 1
		}
		for free != 0 && len(ids) < maxSamples {
			b := uint64(bits.TrailingZeros64(free))
			ids = append(ids, w*64+b)
			free &= free - 1
		}
	}
	return ids, n
}

// Status describes every stream for a stalled run: sent, delivered, the
// next index the receiver expects, and the drops reported.
func (c *Checker) Status() string {
	var b strings.Builder
	for client := range c.clients {
		for dir := Up; dir <= Down; dir++ {
			fmt.Fprintf(&b, "[client %d %s dropped_reported=%d:", client, dir, c.drops[client*2+int(dir)].Load())
			for lane := uint8(1); lane <= NumLanes; lane++ {
				s := c.stream(client, dir, lane)
				s.mu.Lock()
				fmt.Fprintf(&b, " lane %d sent=%d delivered=%d next=%d", lane, s.sent, s.delivered, s.next)
				s.mu.Unlock()
			}
			b.WriteString("] ")
		}
	}
	return b.String()
}
