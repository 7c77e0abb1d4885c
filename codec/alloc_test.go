//go:build !race

package codec

import (
	"testing"

	"github.com/ferry-proto/ferry/protocol"
)

// The hot paths allocate nothing in steady state.
func TestZeroAllocs(t *testing.T) {
	d := Decoder{MaxFrameSize: protocol.HardMaxFrameSize, Compression: true}
	frames := map[string][]byte{}
	for _, c := range validFrames(t) {
		frames[c.name] = c.frame.Append(nil)
	}
	buf := make([]byte, 0, 1<<17)
	big := Frame{Type: protocol.FrameData, Lane: 3, Flags: protocol.FlagReliable, Payload: make([]byte, 64<<10)}
	bigBytes := big.Append(nil)
	json := payloads(4096)["json"]
	comp := AppendCompressed(nil, json)
	var w BatchWriter
	var scratch []byte
	r := NewReassembler(DefaultReassemblyLimits())
	tooLarge := []byte{0xff, 0xff, 0xff, 0xff}
	deliveryRejects := [][]byte{
		withByte(enc(confirmProcessed), 8, 2),                   // verdict
		withByte(enc(confirmProcessed), 18, 0),                  // Seq 0
		appendToFrame(AppendGapReport(nil, gapReport), 0),       // length
		withByte(enc(appAckData), 5, byte(protocol.FlagAppAck)), // APP_ACK alone
	}
	// A reliable partial message ended by an expired placeholder (SPEC
	// §12.8), then a message on the same lane.
	rel := Frame{Type: protocol.FrameData, Flags: protocol.FlagReliable | protocol.FlagFragment | protocol.FlagExpiry,
		Lane: 2, Seq: 1, MsgID: 1, Total: 64, TTL: 1000, Payload: make([]byte, 16)}
	placeholderSeq := [][]byte{
		rel.Append(nil),
		enc(Frame{Type: protocol.FrameData, Flags: protocol.FlagReliable | protocol.FlagExpiry, Lane: 2, Seq: 2}),
		enc(Frame{Type: protocol.FrameData, Flags: protocol.FlagReliable, Lane: 2, Seq: 3, Payload: []byte("x")}),
	}
	unknown := []byte{0, 0, 0, 3, 0x7f, 0, 0}
	// SPEC §6.5: keyed frames, rejected and fragmented.
	keyedRejects := [][]byte{
		enc(modified(keyedData, func(f *Frame) { f.Opaque = 0 })),     // Key 0
		truncateFrame(enc(keyedExpiry), 8+len(keyedExpiry.Payload)),   // no Key
		withByte(batchOf(1, innerData), 5, byte(protocol.FlagKeyed)),  // KEYED on BATCH
		withByte(enc(keyedData), 5, 0x80|byte(protocol.FlagReliable)), // reserved bit
	}
	keyedTmpl := Frame{Type: protocol.FramePublish, Flags: protocol.FlagKeyed | protocol.FlagExpiry, Lane: 1, Name: []byte("t"), TTL: 100, Opaque: 5}
	var keyedFrags [][]byte
	for fr := NewFragmenter(&keyedTmpl, make([]byte, 40), 1, 16); ; {
		f, ok := fr.Next()
		if !ok {
			break
		}
		keyedFrags = append(keyedFrags, f.Append(nil))
	}

	checks := map[string]func(){
		"decode every valid frame": func() {
			for _, b := range frames {
				if _, _, err := d.Decode(b); err != nil {
					panic(err)
				}
			}
		},
		"decode 64KiB": func() { _, _, _ = d.Decode(bigBytes) },
		"decode rejects": func() {
			_, _, _ = d.Decode(tooLarge)
			_, _, _ = d.Decode(unknown)
		},
		"encode": func() { buf = reliableData.Append(buf[:0]) },
		"encode delivery frames": func() {
			buf = confirmProcessed.Append(buf[:0])
			buf = appAckData.Append(buf)
			buf = AppendGapReport(buf, gapReport)
		},
		"gap report": func() {
			f, _, err := d.Decode(frames["gap-report"])
			if err != nil {
				panic(err)
			}
			if _, err := ParseGapReport(f.Payload); err != nil {
				panic(err)
			}
			buf = gapReport.Append(buf[:0])
		},
		"decode delivery rejects": func() {
			for _, b := range deliveryRejects {
				if _, _, err := d.Decode(b); err == nil {
					panic("accepted")
				}
			}
		},
		"reassembler placeholder": func() {
			for _, b := range placeholderSeq {
				f, _, _ := d.Decode(b)
				if _, _, err := r.Add(&f, 0); err != nil {
					panic(err)
				}
			}
		},
		"encode keyed": func() {
			buf = keyedData.Append(buf[:0])
			buf = keyedExpiry.Append(buf)
		},
		"decode keyed rejects": func() {
			for _, b := range keyedRejects {
				if _, _, err := d.Decode(b); err == nil {
					panic("accepted")
				}
			}
		},
		"reassembler keyed fragments": func() {
			for _, b := range keyedFrags {
				f, _, _ := d.Decode(b)
				if _, _, err := r.Add(&f, 0); err != nil {
					panic(err)
				}
			}
		},
		"encode 64KiB": func() { buf = big.Append(buf[:0]) },
		"batch iterate": func() {
			f, _, _ := d.Decode(frames["batch"])
			it := d.Batch(&f, f.Payload)
			for {
				_, ok, err := it.Next()
				if err != nil || !ok {
					break
				}
			}
		},
		"batch write": func() {
			buf = w.Begin(buf[:0], 1, protocol.DefaultMaxFrameSize)
			for range 10 {
				w.Add(&reliableData)
			}
			buf, scratch = w.Finish(true, scratch)
		},
		"compress": func() { buf, _ = AppendMaybeCompressed(buf[:0], json) },
		"decompress": func() {
			var err error
			if buf, err = AppendDecompressed(buf[:0], comp, 1<<20); err != nil {
				panic(err)
			}
		},
		"reassembler plain": func() {
			f, _, _ := d.Decode(frames["data-lane2"])
			_, _, _ = r.Add(&f, 0)
		},
		"fragmenter": func() {
			tmpl := Frame{Type: protocol.FrameData, Lane: 3}
			fr := NewFragmenter(&tmpl, big.Payload, 1, protocol.DefaultFragmentSize)
			for {
				f, ok := fr.Next()
				if !ok {
					break
				}
				buf = f.Append(buf[:0])
			}
		},
	}
	for name, fn := range checks {
		fn() // warm up buffers
		if n := testing.AllocsPerRun(100, fn); n != 0 {
			t.Errorf("%s: %v allocs per run, want 0", name, n)
		}
	}
}

// A fragmented message allocates its buffer once; reassembling the same
// size again reuses it when it is small enough to keep.
func TestReassemblyAllocsBounded(t *testing.T) {
	r := NewReassembler(DefaultReassemblyLimits())
	d := Decoder{MaxFrameSize: protocol.DefaultMaxFrameSize}
	msg := make([]byte, 20<<10)
	tmpl := Frame{Type: protocol.FrameData, Lane: 2}
	var encoded [][]byte
	fr := NewFragmenter(&tmpl, msg, 1, 8<<10)
	for {
		f, ok := fr.Next()
		if !ok {
			break
		}
		encoded = append(encoded, f.Append(nil))
	}
	run := func() {
		for _, b := range encoded {
			f, _, _ := d.Decode(b)
			if _, _, err := r.Add(&f, 0); err != nil {
				panic(err)
			}
		}
	}
	run()
	if n := testing.AllocsPerRun(50, run); n != 0 {
		t.Fatalf("%v allocs per reassembled 20 KiB message, want 0 once warm", n)
	}
}
