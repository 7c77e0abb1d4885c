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
	unknown := []byte{0, 0, 0, 3, 0x7f, 0, 0}

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
		"encode":       func() { buf = reliableData.Append(buf[:0]) },
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
