package codec

import (
	"bytes"
	"testing"

	"github.com/ferry-proto/ferry/protocol"
)

func collectBatch(t *testing.T, d *Decoder, b []byte) []Frame {
	t.Helper()
	f, n, err := d.Decode(b)
	if err != nil || n != len(b) {
		t.Fatalf("decode batch: n=%d err=%v", n, err)
	}
	if f.Type != protocol.FrameBatch {
		t.Fatalf("got %s, want BATCH", f.Type)
	}
	inner := f.Payload
	if f.Flags.Has(protocol.FlagCompressed) {
		if inner, err = AppendDecompressed(nil, f.Payload, d.MaxFrameSize); err != nil {
			t.Fatal(err)
		}
	}
	var out []Frame
	it := d.Batch(&f, inner)
	for {
		g, ok, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return out
		}
		out = append(out, g)
	}
}

func TestBatchWriterRoundTrip(t *testing.T) {
	for _, compress := range []bool{false, true} {
		var w BatchWriter
		w.Begin([]byte("prefix"), protocol.LaneNormal, protocol.DefaultMaxFrameSize)
		var want [][]byte
		for i := range 50 {
			f := Frame{Type: protocol.FrameData, Lane: 2, Route: uint32(i), Payload: []byte("payload payload")}
			if !w.Add(&f) {
				t.Fatalf("frame %d did not fit", i)
			}
			want = append(want, f.Append(nil))
		}
		ack := Frame{Type: protocol.FrameAck, AckLane: 2, Cumulative: 50}
		if !w.Add(&ack) {
			t.Fatal("ACK did not fit")
		}
		want = append(want, ack.Append(nil))
		buf, _ := w.Finish(compress, nil)
		if !bytes.HasPrefix(buf, []byte("prefix")) {
			t.Fatal("Finish lost the bytes before the batch")
		}
		d := Decoder{MaxFrameSize: protocol.DefaultMaxFrameSize, Compression: compress}
		got := collectBatch(t, &d, buf[6:])
		if len(got) != len(want) {
			t.Fatalf("compress=%v: %d frames, want %d", compress, len(got), len(want))
		}
		for i := range got {
			if !bytes.Equal(got[i].Append(nil), want[i]) {
				t.Fatalf("compress=%v: frame %d differs", compress, i)
			}
		}
		if compress && len(buf)-6 >= BatchHeaderLen+len(bytes.Join(want, nil)) {
			t.Fatalf("compressed batch of %d bytes saved nothing", len(buf)-6)
		}
	}
}

func TestBatchWriterLimits(t *testing.T) {
	var w BatchWriter
	w.Begin(nil, 1, 4096)
	big := Frame{Type: protocol.FrameData, Lane: 1, Payload: make([]byte, 5000)}
	if w.Add(&big) {
		t.Fatal("a frame larger than the peer's max frame size was batched")
	}
	frag := Frame{Type: protocol.FrameData, Lane: 1, Flags: protocol.FlagFragment, Total: 9, Payload: []byte{1}}
	if w.Add(&frag) {
		t.Fatal("a fragment was batched")
	}
	small := Frame{Type: protocol.FramePing}
	n := 0
	for w.Add(&small) {
		n++
	}
	if n != (4096-BatchHeaderLen)/small.Len() {
		t.Fatalf("batched %d PINGs into 4096 bytes", n)
	}
	out, _ := w.Finish(false, nil)
	if len(out) > 4096 {
		t.Fatalf("batch of %d bytes over the 4096 limit", len(out))
	}
	// Count limit.
	w.Begin(nil, 1, protocol.HardMaxFrameSize)
	for w.Add(&small) {
	}
	if w.Count() != protocol.MaxBatchFrames {
		t.Fatalf("batch holds %d frames, limit %d", w.Count(), protocol.MaxBatchFrames)
	}
}

func TestBatchWriterSmallCases(t *testing.T) {
	var w BatchWriter
	w.Begin([]byte("x"), 1, 4096)
	out, _ := w.Finish(false, nil)
	if string(out) != "x" {
		t.Fatalf("empty batch left %q", out)
	}
	w.Begin(nil, 1, 4096)
	p := Frame{Type: protocol.FramePing, Opaque: 3}
	w.Add(&p)
	out, _ = w.Finish(true, nil)
	if !bytes.Equal(out, p.Append(nil)) {
		t.Fatal("a batch of one frame was not unwrapped")
	}
}
