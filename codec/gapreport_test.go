package codec

import (
	"bytes"
	"math"
	"testing"

	"github.com/ferry-proto/ferry/protocol"
)

// SPEC §7.8: "Body exactly 40 bytes: five u64 ... in this order".
func TestGapReport(t *testing.T) {
	g := GapReport{Delivered: 1, DroppedCount: 2, DroppedBytes: 3, DroppedAge: 4, Expired: 0x0102030405060708}
	if g.Lost() != 2+3+4+0x0102030405060708 {
		t.Fatalf("Lost = %d", g.Lost())
	}
	want := []byte{
		0, 0, 0, 0, 0, 0, 0, 1,
		0, 0, 0, 0, 0, 0, 0, 2,
		0, 0, 0, 0, 0, 0, 0, 3,
		0, 0, 0, 0, 0, 0, 0, 4,
		1, 2, 3, 4, 5, 6, 7, 8,
	}
	b := g.Append([]byte{0xff})
	if !bytes.Equal(b[1:], want) || b[0] != 0xff || g.Len() != len(want) || GapReportLen != len(want) {
		t.Fatalf("Append = %x\nwant     ff%x", b, want)
	}
	back, err := ParseGapReport(b[1:])
	if err != nil || back != g {
		t.Fatalf("ParseGapReport = %+v, %v", back, err)
	}
	for n := range GapReportLen + 2 {
		if n == GapReportLen {
			continue
		}
		if _, err := ParseGapReport(make([]byte, n)); err != ErrGapReportSize || CodeOf(err) != protocol.CodeProtocolError {
			t.Fatalf("ParseGapReport(%d bytes) err = %v, want ErrGapReportSize", n, err)
		}
	}
	ones := GapReport{math.MaxUint64, math.MaxUint64, math.MaxUint64, math.MaxUint64, math.MaxUint64}
	if back, err := ParseGapReport(ones.Append(nil)); err != nil || back != ones {
		t.Fatalf("all-ones round trip: %+v, %v", back, err)
	}
}

// AppendGapReport writes a whole frame that decodes back to the report, and
// is what encoding the equivalent Frame writes.
func TestAppendGapReport(t *testing.T) {
	g := GapReport{Delivered: 9, Expired: 1}
	b := AppendGapReport([]byte{0xee}, g)
	if b[0] != 0xee {
		t.Fatal("AppendGapReport overwrote its destination")
	}
	b = b[1:]
	if want := (&Frame{Type: protocol.FrameGapReport, Payload: g.Append(nil)}).Append(nil); !bytes.Equal(b, want) {
		t.Fatalf("AppendGapReport = %x, want %x", b, want)
	}
	d := NewDecoder()
	f, n, err := d.Decode(b)
	if err != nil || n != len(b) || n != protocol.HeaderSize+GapReportLen {
		t.Fatalf("decode: n=%d err=%v", n, err)
	}
	if back, err := ParseGapReport(f.Payload); err != nil || back != g {
		t.Fatalf("ParseGapReport(decoded) = %+v, %v", back, err)
	}
}
