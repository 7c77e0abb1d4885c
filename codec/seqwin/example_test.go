package seqwin_test

import (
	"fmt"
	"time"

	"github.com/ferry-proto/ferry/codec/seqwin"
)

// One lane, end to end, with the gap of SPEC §12.2's worked example.
func Example() {
	var tx seqwin.Sender
	var rx seqwin.Receiver
	tx.SetLimits(256, 1<<20)
	ms := int64(time.Millisecond)

	for range 5 {
		tx.Sent(tx.Next(), 100, 0)
	}
	// Seq 2 is late (after a resume, say): 1, 3, 4, 5, then 2.
	for _, seq := range []uint64{1, 3, 4, 5, 2} {
		v := rx.Receive(seq, 10*ms)
		fmt.Print(seq, ":", v)
		for s, ok := rx.Ready(); ok; s, ok = rx.Ready() {
			fmt.Print(" then ", s)
		}
		fmt.Println()
		if seq == 4 {
			c, sel, _ := rx.Ack(10 * ms)
			fmt.Printf("ACK while 2 is missing: Cumulative %d, Selective %#b\n", c, sel)
		}
	}
	fmt.Println("again 3:", rx.Receive(3, 11*ms), "ACK due:", rx.AckDue(11*ms, seqwin.AckPolicy{}))

	c, sel, delay := rx.Ack(12 * ms)
	rx.AckSent()
	fmt.Printf("ACK: Cumulative %d, Selective %#x, AckDelay %d µs\n", c, sel, delay)

	res, err := tx.OnAck(c, sel, delay, 20*ms, func(seq uint64) { /* free message seq */ })
	fmt.Println("released", res.Released, "freeing", res.Bytes, "bytes; RTT", res.RTT, err)
	// Output:
	// 1:Deliver
	// 3:Hold
	// 4:Hold
	// ACK while 2 is missing: Cumulative 1, Selective 0b11
	// 5:Hold
	// 2:Deliver then 3 then 4 then 5
	// again 3: Duplicate ACK due: true
	// ACK: Cumulative 5, Selective 0x0, AckDelay 1000 µs
	// released 5 freeing 500 bytes; RTT 19ms <nil>
}
