package rtt

import "time"

// MaxProbes is how many probes in a row may go unanswered: when the
// deadline after the MaxProbes-th probe passes with no ACK or PONG, the
// connection is dead.
const MaxProbes = 3

// Action is what the connection must do when its probe deadline fires.
type Action uint8

const (
	// Nothing: no reliable data is outstanding, the timer is not armed, or
	// the deadline has not come yet (the connection's one timer fired for
	// another of its deadlines).
	Nothing Action = iota
	// SendPing: an ACK is overdue; send a PING now and reschedule.
	SendPing
	// Dead: MaxProbes probes went unanswered; close the connection.
	Dead
)

var actionNames = [...]string{
	Nothing:  "Nothing",
	SendPing: "SendPing",
	Dead:     "Dead",
}

func (a Action) String() string {
	if int(a) < len(actionNames) {
		return actionNames[a]
	}
	return "Action(?)"
}

// Prober is a connection's ACK-timeout state machine, the counterpart of
// TCP's single retransmission timer: while reliable frames are unacked it
// keeps one deadline, PTO after the last send, ACK or PONG; when it passes
// it asks for a PING (never a retransmission: TCP already retransmits) and
// doubles the wait; after MaxProbes unanswered PINGs the connection is dead.
//
// It holds no timer: the caller keeps its connection's one wheel timer at the
// earliest of its deadlines, Deadline among them, and calls OnDeadline when
// it fires. The zero value is ready (nothing outstanding, no spacing, no ack
// delay). A Prober belongs to the connection's event loop; no method
// allocates.
type Prober struct {
	// RTT is the connection's round-trip estimate, which sets the PTO. Feed
	// it with RTT.Sample (see the package documentation for Karn's rule).
	RTT Estimator

	// MaxAckDelay is the longest the peer may hold an ACK; it is added to
	// every PTO.
	MaxAckDelay time.Duration

	// MinPingInterval is the least time between two PINGs this side sends:
	// K/8 for the negotiated heartbeat interval K. SPEC §7.1: "A side MUST
	// NOT send a PING less than K / 8 after its previous PING." A probe due
	// earlier waits until then.
	MinPingInterval time.Duration

	deadline    int64 // when the pending probe is due, if armed
	lastPing    int64 // when this side last sent a PING, if pinged
	probes      uint8 // probes sent since the last ACK or PONG, ≤ MaxProbes
	armed       bool
	outstanding bool
	pinged      bool
}

// Arm reports that a reliable frame was sent at now. It marks data
// outstanding and, if the timer is not running, starts it: the probe is due
// PTO after now. A running timer is left alone (RFC 6298 §5.1), so steady
// sending neither postpones a probe nor resets the backoff; only an ACK or a
// PONG does (OnAckOrPong).
func (p *Prober) Arm(now int64) {
	p.outstanding = true
	if !p.armed {
		p.armed = true
		p.deadline = p.next(now)
	}
}

// Outstanding records whether unacked reliable frames exist, after an ACK
// or when frames are given up (the connection closes, the session moves).
// With false the timer stops and the probe count resets. With true only the
// flag is set: a timer that is not running is started by Arm, which needs
// the time.
func (p *Prober) Outstanding(has bool) {
	p.outstanding = has
	if !has {
		p.armed = false
		p.probes = 0
	}
}

// Deadline is when the connection's timer must fire for the next probe, in
// loop nanoseconds; ok is false when no probe is pending.
func (p *Prober) Deadline() (at int64, ok bool) {
	if !p.armed || !p.outstanding {
		return 0, false
	}
	return p.deadline, true
}

// Probes is how many probes have been sent since the last ACK or PONG.
func (p *Prober) Probes() int { return int(p.probes) }

// OnDeadline is called when the connection's timer fires at now and says
// what to do. Before the deadline, or with nothing outstanding, it is
// Nothing. Past the deadline it is SendPing, with the next deadline a
// doubled PTO away (the caller must send the PING now: OnDeadline has
// recorded it for the PING spacing), or Dead once MaxProbes probes are unanswered, after
// which the timer is stopped.
func (p *Prober) OnDeadline(now int64) Action {
	if !p.armed || !p.outstanding {
		p.armed = false
		return Nothing
	}
	if now < p.deadline {
		return Nothing
	}
	if p.probes >= MaxProbes {
		p.armed = false
		return Dead
	}
	if p.pinged && now-p.lastPing < int64(p.MinPingInterval) {
		// Unreachable while MinPingInterval stays put (next and PingSent
		// keep the deadline past it); checked again in case it was raised.
		p.deadline = p.lastPing + int64(p.MinPingInterval)
		return Nothing
	}
	p.probes++
	p.lastPing, p.pinged = now, true
	p.deadline = p.next(now)
	return SendPing
}

// OnAckOrPong reports an ACK or a PONG received at now: the peer is alive,
// so the probe count resets and a running timer restarts from now (RFC 6298
// §5.3). The RTT sample, if the frame gives one, goes to RTT.Sample
// separately, and after an ACK the caller updates Outstanding.
//
// A peer that answers PINGs but never ACKs stays alive here: it is probed
// every PTO (no closer than MinPingInterval) for as long as it answers: a
// peer that holds our frames unacked is the business of the flow-control
// window (SPEC §12.5), not of the probe.
func (p *Prober) OnAckOrPong(now int64) {
	p.probes = 0
	if p.armed {
		p.deadline = p.next(now)
	}
}

// PingSent reports a PING sent at now for a reason other than a probe (the
// keepalive of SPEC §7.1), so that the next probe keeps MinPingInterval
// from it. Probes asked for by OnDeadline are recorded already.
func (p *Prober) PingSent(now int64) {
	p.lastPing, p.pinged = now, true
	if p.armed {
		p.deadline = max(p.deadline, now+int64(p.MinPingInterval))
	}
}

// next is when a probe is due if the wait starts at now: PTO for the
// current probe count, and no sooner than MinPingInterval after the last
// PING.
func (p *Prober) next(now int64) int64 {
	at := now + int64(p.RTT.PTO(p.MaxAckDelay, int(p.probes)))
	if p.pinged {
		at = max(at, p.lastPing+int64(p.MinPingInterval))
	}
	return at
}
