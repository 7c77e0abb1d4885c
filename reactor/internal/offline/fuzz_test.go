package offline

import (
	"testing"
	"time"
)

// FuzzQueue drives a queue and the reference model from bytes and checks,
// after every operation, what the harness checks: agreement with the model,
// the internal invariants, the bounds, FIFO, nothing due returned,
// conservation (pushed = delivered + lost + queued) and the gap report's
// round trip.
//
// The first three bytes choose the limits (MaxCount 1..32, MaxBytes 1..256,
// MaxAge 0 or 1..63); then each operation is one byte, its low 3 bits the
// operation and the rest its argument, with pushes taking one more byte for
// the message's expiry and Enqueued.
func FuzzQueue(f *testing.F) {
	f.Add([]byte{4, 16, 0, 0x20, 0, 0x08, 0, 0x01, 0x02, 0x03})
	f.Add([]byte{2, 3, 5, 0xf8, 0x81, 0x40, 0xff, 0x05, 0x01, 0x01, 0x03, 0x02})
	f.Add([]byte{31, 255, 200, 0, 1, 0, 2, 0, 3, 0, 0x84, 0x04, 0x01, 0x06, 0x05})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 3 {
			return
		}
		l := Limits{
			MaxCount: 1 + int(data[0]%32),
			MaxBytes: 1 + int(data[1]),
			MaxAge:   time.Duration(data[2] % 64),
		}
		h := newHarness(l, 1000)
		data = data[3:]
		for len(data) > 0 {
			b := data[0]
			data = data[1:]
			arg := int64(b >> 3) // 0..31
			var err error
			switch b & 7 {
			case 0, 1, 2: // push arg bytes
				var x byte
				if len(data) > 0 {
					x, data = data[0], data[1:]
				}
				var enq, exp int64
				if x&0x80 != 0 {
					enq = h.now - int64(x>>4&7) // earlier than now
				}
				if ttl := int64(x & 0xf); ttl != 0 {
					exp = h.now - 2 + ttl // may already be due
				}
				err = h.push(int(arg)*int(b&3+1), b&3, enq, exp)
			case 3, 4:
				err = h.pop()
			case 5:
				err = h.expire()
			case 6:
				h.advance(arg)
			case 7:
				if arg == 0 {
					err = h.resetGap()
				} else {
					h.advance(arg * 8)
				}
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		for h.q.Len() > 0 {
			if err := h.pop(); err != nil {
				t.Fatal(err)
			}
		}
	})
}
