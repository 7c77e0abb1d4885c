// Package rtt holds the timing logic of reliable delivery: a round-trip time
// estimator, the probe timeout (PTO) that decides when an overdue ACK calls
// for a PING, the per-connection probe state machine that declares a
// connection dead, and the backoff schedule of application-level
// redelivery. It is pure logic: no timers, no goroutines, no I/O, no
// allocation. Times are int64 nanoseconds on the reactor loop's monotonic
// clock (loop.now); durations are time.Duration.
//
// # Why probes, not retransmission
//
// TCP already retransmits. On a live connection a sender never resends a
// frame (MQTT 5 §4.4 makes the same choice); a missing ACK means a dead path
// or a stuck peer, not a lost frame. So when an ACK is overdue the connection
// sends a PING, and if MaxProbes PINGs in a row go unanswered it is dead.
// Frames are sent again only on a new connection that resumes the session,
// or by the application after a NACK or a missed confirmation (Redelivery).
//
// # RTT estimation
//
// Estimator follows RFC 6298 §2 (SRTT, RTTVAR, alpha = 1/8, beta = 1/4; the
// first sample R sets SRTT = R, RTTVAR = R/2) and takes from RFC 9002 §5 the
// initial RTT of 333 ms before any sample, MinRTT, and the subtraction of the
// peer's ACK delay (§5.3). Samples come from two places:
//
//   - PONG: the time from sending a PING to receiving the PONG with the same
//     Opaque. Pass an ackDelay of 0 (the peer answers at once, SPEC §7.1).
//     Sample only a PONG whose Opaque matches a PING this side sent: an
//     unmatched or forged Opaque is no measurement.
//   - ACK: the time from sending the newest reliable frame that an ACK newly
//     acknowledges to the ACK's arrival, with the ACK's AckDelay (SPEC §7.2).
//
// Karn's rule: the caller never feeds a sample from a frame that was sent
// more than once (replayed on session resume): its ACK cannot tell which
// copy it answers. The estimator cannot check this; the caller must.
//
// # Usage
//
// One Prober per connection, embedded in it; its RTT field is the
// connection's estimator. The connection's single wheel timer is scheduled
// at the earliest of its deadlines, Prober.Deadline among them:
//
//	// sending a reliable frame
//	c.probe.Arm(now)
//	// an ACK arrives (after validating it, SPEC §12.2)
//	if newest, ok := newlyAcked(ack); ok && !newest.replayed { // Karn
//		c.probe.RTT.Sample(time.Duration(now-newest.sentAt), ackDelay)
//	}
//	c.probe.OnAckOrPong(now)
//	c.probe.Outstanding(unacked > 0)
//	// the connection's timer fires
//	switch c.probe.OnDeadline(now) {
//	case rtt.SendPing:
//		sendPing(now) // Opaque = now, to sample the PONG
//	case rtt.Dead:
//		closeConn()
//	}
//	reschedule() // at the earliest deadline, c.probe.Deadline() included
//
// A PING sent for another reason (the keepalive of SPEC §7.1) is reported
// with Prober.PingSent, so that probes keep the spec's minimum PING spacing.
//
// Application-level redelivery waits Redelivery(n, rand.Float64) before the
// (n+1)th delivery, and stops when ShouldDeadLetter says so.
//
// # Limits
//
//   - PTO is clamped to [MinPTO, MaxPTO] after doubling, so with a small RTT
//     the first probes all wait MinPTO: on loopback with no PING spacing
//     (MinPingInterval 0) a silent peer is declared dead 4 × 250 ms = 1 s
//     after the unacked frame was sent. The spacing of SPEC §7.1 stretches
//     this: with the default K = 30 s (spacing 3.75 s) it is about 11.5 s.
//   - ACK delay is trusted only as far as RFC 9002 §5.3 trusts it: it never
//     brings a sample below MinRTT. Capping it at the peer's max ack delay
//     (RFC 9002 does so once the handshake is confirmed) is the caller's job.
//   - Negative RTT samples (a clock or caller bug) are ignored.
//
// # Goroutines
//
// Estimator and Prober are plain values with no locks: they belong to the
// connection's event loop and every method must be called there. Redelivery
// and ShouldDeadLetter are pure functions, safe from any goroutine (the rnd
// passed to Redelivery must be safe where it is called; math/rand/v2's
// top-level Float64 is).
package rtt
