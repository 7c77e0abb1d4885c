package offline

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestModel drives queues and the reference model (helpers_test.go) with
// random Push, Pop, Peek, Expire and ResetGap sequences on a fake clock, over
// many shapes of Limits: tiny counts and byte budgets so that every bound,
// the ring's growth and its in-place compaction are exercised constantly,
// ages and per-message expiries in and out of push order, and Enqueued
// times earlier than now. The harness checks the properties after every
// operation.
func TestModel(t *testing.T) {
	seeds := 300
	steps := 2000
	if testing.Short() {
		seeds = 40
	}
	for seed := range uint64(seeds) {
		rng := rand.New(rand.NewPCG(seed, 0x0ff1e))
		l := Limits{MaxCount: 1 + rng.IntN(40), MaxBytes: 1 + rng.IntN(400)}
		switch rng.IntN(4) {
		case 0: // no age limit
		case 1:
			l.MaxAge = time.Duration(1 + rng.IntN(5)) // ties with Expires are likely
		default:
			l.MaxAge = time.Duration(1 + rng.IntN(200))
		}
		if seed%10 == 0 {
			l.MaxBytes = 0 // the default: only the count bounds
		}
		h := newHarness(l, 1_000_000)
		maxTTL := 1 + rng.Int64N(300)
		for step := range steps {
			var err error
			switch op := rng.IntN(100); {
			case op < 45:
				size := rng.IntN(l.MaxBytes/4 + 2)
				if rng.IntN(30) == 0 {
					size = l.MaxBytes + rng.IntN(3) // may be too large on its own
				}
				var enq, exp int64
				switch rng.IntN(3) {
				case 0: // 0: Push stamps now
				case 1:
					enq = h.now
				case 2:
					enq = h.now - rng.Int64N(int64(l.MaxAge)+50) // out of order, maybe already aged
				}
				if rng.IntN(2) == 0 {
					exp = h.now - 3 + rng.Int64N(maxTTL+3) // out of order, maybe already due
				}
				err = h.push(size, uint8(rng.IntN(3)), enq, exp)
			case op < 75:
				err = h.pop()
			case op < 85:
				err = h.expire()
			case op < 86:
				err = h.resetGap()
			default:
				if rng.IntN(50) == 0 {
					h.advance(1000) // everything due
				} else {
					h.advance(rng.Int64N(20))
				}
			}
			if err != nil {
				t.Fatalf("seed %d step %d, limits %+v: %v", seed, step, l, err)
			}
		}
		// Drain: everything pushed is accounted for once the queue is empty.
		for h.q.Len() > 0 {
			if err := h.pop(); err != nil {
				t.Fatalf("seed %d drain: %v", seed, err)
			}
		}
	}
}
