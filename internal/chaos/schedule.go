package chaos

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Kill is how an epoch of the schedule ends: the way the connections
// through the proxy are forced down.
type Kill uint8

const (
	// KillReset: reset_peer with timeout 0 on both directions of the live
	// connections: they die at their next byte (with FIN, since toxiproxy
	// sets SO_LINGER 0 only on connections that start with the toxic in
	// place); a connection made while it is in place dies in its
	// handshake.
	KillReset Kill = iota
	// KillResetLater: reset_peer on one direction whose timeout is a few
	// to a few hundred milliseconds after the next byte, so that frames
	// are cut mid-way at a random point.
	KillResetLater
	// KillTimeout: timeout on one or both directions. The bytes vanish (a
	// dead path: the peers must find out with their probes) until the
	// toxic's own timeout, or Hold, runs out.
	KillTimeout
	// KillDown: the proxy goes down for Outage: its connections are
	// closed and reconnects refused until it listens again.
	KillDown
	numKills
)

func (k Kill) String() string {
	return [...]string{"reset", "reset-later", "timeout", "down"}[k]
}

// Epoch is one stretch of the run: some weather (latency with jitter,
// slicing, a bandwidth cap) while its share of the messages flows, then a
// kill once KillAt of that share has settled. Every kill ends with a
// restart of the proxy into the next epoch's weather (see Proxy for why
// toxics never leave a live connection).
type Epoch struct {
	N       int
	Weather []Toxic
	KillAt  float64 // 0..1 of the epoch's messages settled before the kill
	Kill    Kill
	// KillToxics are the toxics KillReset, KillResetLater and KillTimeout
	// add to the live connections.
	KillToxics []Toxic
	// Hold bounds how long kill toxics stay in place waiting for the
	// clients to notice before the proxy restarts; Outage is how long
	// KillDown keeps the proxy down.
	Hold, Outage time.Duration
}

func (e Epoch) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "epoch %d: weather [", e.N)
	for i, t := range e.Weather {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(t.String())
	}
	fmt.Fprintf(&b, "] kill %s at %.2f", e.Kill, e.KillAt)
	for _, t := range e.KillToxics {
		b.WriteByte(' ')
		b.WriteString(t.String())
	}
	switch e.Kill {
	case KillDown:
		fmt.Fprintf(&b, " outage %v", e.Outage)
	default:
		fmt.Fprintf(&b, " hold %v", e.Hold)
	}
	return b.String()
}

// Schedule is the chaos plan: a sequence of epochs drawn from a seed, so
// that a failing run is repeated by giving its seed again.
type Schedule struct {
	rng *rand.Rand
	n   int
	// MaxHold caps Epoch.Hold and Epoch.Outage.
	MaxHold time.Duration
}

// NewSchedule returns the schedule of seed.
func NewSchedule(seed uint64) *Schedule {
	return &Schedule{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), MaxHold: 600 * time.Millisecond}
}

var streams = [...]string{"upstream", "downstream"}

// minDelayedSlice is the smallest average slice a slicer toxic may pause
// after; below it the slicer only cuts, with delay 0. The slicer sleeps
// delay µs after every slice, and so short a sleep lasts up to about a
// millisecond when the process has little else to do (Go's poller waits
// in whole milliseconds), so the pause, not the drawn delay, sets the
// rate: slices of a byte or three with a pause carried from 1.3 KB/s
// (average 1, delay 43, idle) to a few tens of KB/s. At the low end a
// 16 KiB fragment holds the ACKs and PONGs behind it longer than the
// probes wait (SPEC §12.6: about 5 s with K = 10 s), each side closes
// the connection as dead, every resume replays the fragment from its
// first byte, and nothing settles (seed 1795447411417318643, epoch 398;
// TestSlowPath). With slices of 64 bytes or more, a slice a millisecond
// is 64 KB/s, the slowest bandwidth toxic.
const minDelayedSlice = 64

// Next draws the next epoch.
func (s *Schedule) Next() Epoch {
	r := s.rng
	e := Epoch{N: s.n, KillAt: r.Float64()}
	s.n++
	for _, st := range streams {
		if r.IntN(2) == 0 {
			lat := int64(r.IntN(40))
			e.Weather = append(e.Weather, Toxic{Name: "latency_" + st, Type: "latency", Stream: st,
				Attrs: map[string]int64{"latency": lat, "jitter": int64(r.IntN(int(lat) + 1))}})
		}
		if r.IntN(2) == 0 {
			avg := int64(1 + r.IntN(96))
			if r.IntN(8) == 0 {
				avg = int64(1 + r.IntN(3)) // a byte or three at a time
			}
			variation := int64(r.IntN(int(avg) + 1))
			delay := int64(r.IntN(50))
			if avg < minDelayedSlice {
				delay = 0 // drawn all the same, so that a seed's later epochs do not change
			}
			e.Weather = append(e.Weather, Toxic{Name: "slicer_" + st, Type: "slicer", Stream: st,
				Attrs: map[string]int64{"average_size": avg, "size_variation": variation, "delay": delay}})
		}
		if r.IntN(3) == 0 {
			e.Weather = append(e.Weather, Toxic{Name: "bandwidth_" + st, Type: "bandwidth", Stream: st,
				Attrs: map[string]int64{"rate": int64(64 << r.IntN(6))}}) // 64 KB/s .. 2 MB/s
		}
	}
	e.Kill = Kill(r.IntN(int(numKills)))
	hold := func() time.Duration {
		return time.Duration(1+r.Int64N(int64(s.MaxHold/time.Millisecond))) * time.Millisecond
	}
	switch e.Kill {
	case KillReset:
		e.Hold = hold()
		for _, st := range streams {
			e.KillToxics = append(e.KillToxics, Toxic{Name: "reset_" + st, Type: "reset_peer", Stream: st,
				Attrs: map[string]int64{"timeout": 0}})
		}
	case KillResetLater:
		st := streams[r.IntN(2)]
		t := int64(1 + r.IntN(200))
		e.KillToxics = append(e.KillToxics, Toxic{Name: "reset_" + st, Type: "reset_peer", Stream: st,
			Attrs: map[string]int64{"timeout": t}})
		e.Hold = time.Duration(t)*time.Millisecond + hold()
	case KillTimeout:
		which := r.IntN(3) // upstream, downstream, both
		for i, st := range streams {
			if which == i || which == 2 {
				t := int64(0)
				if r.IntN(2) == 0 {
					t = int64(20 + r.IntN(300))
				}
				e.KillToxics = append(e.KillToxics, Toxic{Name: "timeout_" + st, Type: "timeout", Stream: st,
					Attrs: map[string]int64{"timeout": t}})
			}
		}
		e.Hold = hold()
	case KillDown:
		e.Outage = hold() / 2
	}
	return e
}
