package rtt

import (
	"math/rand/v2"
	"testing"
	"time"
)

const sec = int64(time.Second)

// newProber returns a Prober whose PTO is 300 ms before any backoff
// (SRTT 100 ms, RTTVAR 50 ms, no ack delay).
func newProber() *Prober {
	p := &Prober{}
	p.RTT.Sample(100*ms, 0)
	return p
}

func mustDeadline(t *testing.T, p *Prober, want int64) {
	t.Helper()
	at, ok := p.Deadline()
	if !ok || at != want {
		t.Fatalf("Deadline() = %d, %v; want %d, true", at, ok, want)
	}
}

func mustNoDeadline(t *testing.T, p *Prober) {
	t.Helper()
	if at, ok := p.Deadline(); ok {
		t.Fatalf("Deadline() = %d, true; want none", at)
	}
}

func TestProberZeroValue(t *testing.T) {
	var p Prober
	mustNoDeadline(t, &p)
	if a := p.OnDeadline(1 << 62); a != Nothing {
		t.Fatalf("OnDeadline on a zero Prober = %v, want Nothing", a)
	}
	p.Arm(0) // no samples: PTO 999 ms
	mustDeadline(t, &p, int64(999*ms))
}

func TestProberPingPingPingDead(t *testing.T) {
	p := newProber()
	now := 5 * sec
	p.Arm(now)
	mustDeadline(t, p, now+int64(300*ms))

	if a := p.OnDeadline(now + int64(300*ms) - 1); a != Nothing {
		t.Fatalf("1 ns early: %v, want Nothing", a)
	}
	waits := []time.Duration{600 * ms, 1200 * ms, 2400 * ms} // PTO doubling per probe
	for i, w := range waits {
		now, _ = p.Deadline()
		if a := p.OnDeadline(now); a != SendPing {
			t.Fatalf("probe %d: %v, want SendPing", i+1, a)
		}
		if p.Probes() != i+1 {
			t.Fatalf("probe %d: Probes() = %d", i+1, p.Probes())
		}
		mustDeadline(t, p, now+int64(w))
	}
	now, _ = p.Deadline()
	if a := p.OnDeadline(now); a != Dead {
		t.Fatalf("after %d unanswered probes: %v, want Dead", MaxProbes, a)
	}
	mustNoDeadline(t, p)
	if a := p.OnDeadline(now + 100*sec); a != Nothing {
		t.Fatalf("after Dead: %v, want Nothing", a)
	}
}

func TestProberAckResets(t *testing.T) {
	p := newProber()
	now := int64(0)
	p.Arm(now)
	for range 2 {
		now, _ = p.Deadline()
		if a := p.OnDeadline(now); a != SendPing {
			t.Fatalf("%v, want SendPing", a)
		}
	}
	// An ACK (or PONG) 50 ms after the second probe: count back to 0, timer
	// restarted from now at the undoubled PTO.
	now += int64(50 * ms)
	p.OnAckOrPong(now)
	if p.Probes() != 0 {
		t.Fatalf("Probes() = %d after ACK, want 0", p.Probes())
	}
	mustDeadline(t, p, now+int64(300*ms))
	// A full sequence again: ping, ping, ping, dead.
	for i, want := range []Action{SendPing, SendPing, SendPing, Dead} {
		now, _ = p.Deadline()
		if a := p.OnDeadline(now); a != want {
			t.Fatalf("step %d after the ACK: %v, want %v", i, a, want)
		}
	}
}

func TestProberNothingOutstanding(t *testing.T) {
	p := newProber()
	p.Arm(0)
	p.Outstanding(false) // everything acked
	mustNoDeadline(t, p)
	if a := p.OnDeadline(100 * sec); a != Nothing {
		t.Fatalf("nothing outstanding: %v, want Nothing", a)
	}

	// Outstanding(true) alone does not start the timer; Arm does.
	p.Outstanding(true)
	mustNoDeadline(t, p)
	p.Arm(200 * sec)
	mustDeadline(t, p, 200*sec+int64(300*ms))

	// Acked in full during a probe sequence: the count resets too.
	now, _ := p.Deadline()
	if a := p.OnDeadline(now); a != SendPing {
		t.Fatalf("%v, want SendPing", a)
	}
	p.Outstanding(false)
	if p.Probes() != 0 {
		t.Fatalf("Probes() = %d after Outstanding(false)", p.Probes())
	}
	// A PONG with nothing outstanding arms nothing.
	p.OnAckOrPong(now + 1)
	mustNoDeadline(t, p)
}

// Sending more reliable frames neither postpones a probe nor resets the
// backoff: only ACKs and PONGs do.
func TestProberArmKeepsRunningTimer(t *testing.T) {
	p := newProber()
	p.Arm(0)
	p.Arm(int64(200 * ms))
	mustDeadline(t, p, int64(300*ms))
	if a := p.OnDeadline(int64(300 * ms)); a != SendPing {
		t.Fatalf("%v, want SendPing", a)
	}
	p.Arm(int64(400 * ms))
	if p.Probes() != 1 {
		t.Fatalf("Arm reset the probe count to %d", p.Probes())
	}
	mustDeadline(t, p, int64(900*ms))
}

// A timer that fires late measures the next wait from when it fired, which
// is when the PING went out.
func TestProberLateFire(t *testing.T) {
	p := newProber()
	p.Arm(0)
	late := int64(2 * time.Second)
	if a := p.OnDeadline(late); a != SendPing {
		t.Fatalf("%v, want SendPing", a)
	}
	mustDeadline(t, p, late+int64(600*ms))
}

func TestProberMaxAckDelay(t *testing.T) {
	p := newProber()
	p.MaxAckDelay = 25 * ms
	p.Arm(0)
	mustDeadline(t, p, int64(325*ms))
}

// SPEC §7.1: "A side MUST NOT send a PING less than K / 8 after its previous
// PING." With the default K = 30 s, probes are at least 3.75 s apart.
func TestProberPingSpacing(t *testing.T) {
	p := newProber()
	p.MinPingInterval = 30 * time.Second / 8
	// A keepalive PING at t = 1 s, a reliable frame at 1.1 s: the first probe
	// waits for the spacing (4.75 s), not the PTO (1.4 s).
	p.PingSent(1 * sec)
	p.Arm(1*sec + int64(100*ms))
	mustDeadline(t, p, 1*sec+int64(3750*ms))
	if a := p.OnDeadline(1*sec + int64(400*ms)); a != Nothing {
		t.Fatalf("at the PTO but inside the spacing: %v, want Nothing", a)
	}
	now, _ := p.Deadline()
	if a := p.OnDeadline(now); a != SendPing {
		t.Fatalf("%v, want SendPing", a)
	}
	mustDeadline(t, p, now+int64(3750*ms)) // PTO(1) = 600 ms < spacing

	// A keepalive PING while armed pushes a due-sooner probe back.
	p.MinPingInterval = 500 * ms
	p.OnAckOrPong(now + int64(10*ms)) // deadline now+310ms (PTO 300 ms)
	p.PingSent(now + int64(200*ms))
	mustDeadline(t, p, now+int64(700*ms))

	// Raising MinPingInterval after the deadline was set is still honoured.
	p.MinPingInterval = time.Second
	if a := p.OnDeadline(now + int64(700*ms)); a != Nothing {
		t.Fatalf("inside the raised spacing: %v, want Nothing", a)
	}
	mustDeadline(t, p, now+int64(1200*ms))
}

// A random model check: whatever the order of sends, ACKs, PONGs, keepalive
// PINGs and timer firings, PINGs keep MinPingInterval apart, Dead comes only
// after exactly MaxProbes unanswered probes, no deadline is in the past of
// the event that set it, and nothing fires with nothing outstanding.
func TestProberModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 7))
	for run := range 200 {
		p := &Prober{MinPingInterval: time.Duration(rng.Int64N(int64(4 * time.Second)))}
		if rng.IntN(2) == 0 {
			p.RTT.Sample(time.Duration(rng.Int64N(int64(time.Second))), 0)
		}
		now := int64(0)
		lastPing, pinged := int64(0), false
		unanswered, outstanding := 0, false
		for step := range 500 {
			now += rng.Int64N(int64(2 * time.Second))
			switch rng.IntN(6) {
			case 0:
				p.Arm(now)
				outstanding = true
			case 1:
				p.OnAckOrPong(now)
				unanswered = 0
				if at, ok := p.Deadline(); ok && at < now+int64(MinPTO) {
					t.Fatalf("run %d step %d: deadline %d under MinPTO after an ACK at %d", run, step, at, now)
				}
			case 2:
				outstanding = rng.IntN(2) == 0
				p.Outstanding(outstanding)
				if !outstanding {
					unanswered = 0
				}
			case 3:
				if !pinged || now-lastPing >= int64(p.MinPingInterval) {
					p.PingSent(now)
					lastPing, pinged = now, true
				}
			default: // the timer fires at the deadline, or now if later
				at, ok := p.Deadline()
				if !ok {
					if a := p.OnDeadline(now); a != Nothing {
						t.Fatalf("run %d step %d: %v with no deadline", run, step, a)
					}
					continue
				}
				now = max(now, at)
				switch a := p.OnDeadline(now); a {
				case SendPing:
					if !outstanding {
						t.Fatalf("run %d step %d: probe with nothing outstanding", run, step)
					}
					if pinged && now-lastPing < int64(p.MinPingInterval) {
						t.Fatalf("run %d step %d: PING %v after the last, spacing %v",
							run, step, time.Duration(now-lastPing), p.MinPingInterval)
					}
					lastPing, pinged = now, true
					unanswered++
					if at, ok := p.Deadline(); !ok || at < now+int64(MinPTO) {
						t.Fatalf("run %d step %d: next deadline %d %v after a probe at %d", run, step, at, ok, now)
					}
					if unanswered > MaxProbes {
						t.Fatalf("run %d step %d: probe %d", run, step, unanswered)
					}
				case Dead:
					if unanswered != MaxProbes {
						t.Fatalf("run %d step %d: Dead after %d probes", run, step, unanswered)
					}
					// Start over as a new connection would.
					p = &Prober{MinPingInterval: p.MinPingInterval, RTT: p.RTT}
					unanswered, outstanding, pinged = 0, false, false
				case Nothing:
					if outstanding {
						// Only the PING spacing may hold a due probe back.
						at2, ok2 := p.Deadline()
						if !ok2 || at2 <= now {
							t.Fatalf("run %d step %d: Nothing at the deadline, next %d %v", run, step, at2, ok2)
						}
					}
				}
			}
			if p.Probes() != unanswered {
				t.Fatalf("run %d step %d: Probes() = %d, model %d", run, step, p.Probes(), unanswered)
			}
		}
	}
}

func TestActionString(t *testing.T) {
	for a, want := range map[Action]string{Nothing: "Nothing", SendPing: "SendPing", Dead: "Dead", 9: "Action(?)"} {
		if got := a.String(); got != want {
			t.Errorf("Action(%d).String() = %q, want %q", a, got, want)
		}
	}
}
