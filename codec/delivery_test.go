package codec

import (
	"testing"
	"time"

	"github.com/ferry-proto/ferry/codec/rtt"
	"github.com/ferry-proto/ferry/codec/seqwin"
	"github.com/ferry-proto/ferry/protocol"
)

// The numbers of the delivery revision (SPEC §12, §14) against the packages
// that implement them, so the spec, protocol and codec/seqwin and codec/rtt
// cannot drift apart.
func TestDeliveryConstants(t *testing.T) {
	// SPEC §5.4.5: 0 = 256, at most 512; §12.3: the receiver's window is
	// at least twice the largest ReceiveMax.
	if seqwin.DefaultReceiveMax != protocol.DefaultReceiveMax || seqwin.MaxReceiveMax != protocol.MaxReceiveMax ||
		seqwin.WindowBits < 2*protocol.MaxReceiveMax {
		t.Errorf("seqwin: default %d, max %d, window %d", seqwin.DefaultReceiveMax, seqwin.MaxReceiveMax, seqwin.WindowBits)
	}
	// SPEC §12.4: an ACK at most MaxAckDelay after the oldest unacknowledged
	// reliable frame, and after every second one.
	var rx seqwin.Receiver
	rx.Receive(1, 0)
	if at, ok := rx.AckDeadline(seqwin.AckPolicy{}); !ok || at != int64(protocol.MaxAckDelayMs*time.Millisecond) {
		t.Errorf("default ACK deadline %v, %v; want %d ms", time.Duration(at), ok, protocol.MaxAckDelayMs)
	}
	if rx.AckDue(0, seqwin.AckPolicy{}) {
		t.Error("ACK due after one frame")
	}
	rx.Receive(2, 0)
	if !rx.AckDue(0, seqwin.AckPolicy{}) {
		t.Error("ACK not due after two frames")
	}
	// SPEC §12.6: PTO = SRTT + max(4·RTTVAR, 10 ms) + MaxAckDelay, clamped
	// to [250 ms, 60 s]; 333 ms before any sample; 3 probes.
	if rtt.MinPTO != 250*time.Millisecond || rtt.MaxPTO != 60*time.Second || rtt.Granularity != 10*time.Millisecond ||
		rtt.InitialRTT != 333*time.Millisecond || rtt.MaxProbes != 3 {
		t.Errorf("rtt: MinPTO %v MaxPTO %v Granularity %v InitialRTT %v MaxProbes %d",
			rtt.MinPTO, rtt.MaxPTO, rtt.Granularity, rtt.InitialRTT, rtt.MaxProbes)
	}
	var e rtt.Estimator
	e.Sample(100*time.Millisecond, 0) // SRTT 100 ms, RTTVAR 50 ms
	if got, want := e.PTO(protocol.MaxAckDelayMs*time.Millisecond, 0), 325*time.Millisecond; got != want {
		t.Errorf("PTO after one 100 ms sample = %v, want %v (SPEC §12.6 example)", got, want)
	}
	// SPEC §12.10: redelivery after 1, 5, 15, 30, 60, 60 s; 5 deliveries.
	for i, want := range []time.Duration{time.Second, 5 * time.Second, 15 * time.Second, 30 * time.Second, time.Minute, time.Minute} {
		if got := rtt.Redelivery(i+1, nil); got != want {
			t.Errorf("redelivery %d waits %v, want %v", i+1, got, want)
		}
	}
	if rtt.DefaultMaxDeliveries != 5 || rtt.ShouldDeadLetter(4, 0) || !rtt.ShouldDeadLetter(5, 0) {
		t.Errorf("dead letter after %d deliveries", rtt.DefaultMaxDeliveries)
	}
}
