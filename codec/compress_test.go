package codec

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/golang/snappy"
)

// payloads returns the benchmark and test payload kinds at one size.
func payloads(size int) map[string][]byte {
	rng := rand.New(rand.NewPCG(uint64(size), 9))
	random := make([]byte, size)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	var js bytes.Buffer
	for i := 0; js.Len() < size; i++ {
		js.WriteString(`{"id":`)
		js.WriteString(string(rune('0' + i%10)))
		js.WriteString(`,"x":12.5,"y":-3.25,"name":"player`)
		js.WriteString(string(rune('a' + rng.IntN(26))))
		js.WriteString(`","state":"running","hp":100},`)
	}
	return map[string][]byte{
		"json":       js.Bytes()[:size],
		"random":     random,
		"repetitive": bytes.Repeat([]byte("ferry "), size/6+1)[:size],
	}
}

// The chosen encoder's blocks decode with golang/snappy, the reference
// implementation of the wire format (SPEC §11).
func TestCompressInterop(t *testing.T) {
	for _, size := range []int{1, 255, 256, 4 << 10, 64 << 10, 1 << 20} {
		for kind, p := range payloads(size) {
			c := AppendCompressed(nil, p)
			got, err := snappy.Decode(nil, c)
			if err != nil || !bytes.Equal(got, p) {
				t.Fatalf("%s/%d: golang/snappy cannot decode our block: %v", kind, size, err)
			}
			// And ours decodes golang/snappy's.
			got, err = AppendDecompressed(nil, snappy.Encode(nil, p), size)
			if err != nil || !bytes.Equal(got, p) {
				t.Fatalf("%s/%d: %v", kind, size, err)
			}
		}
	}
}

func TestMaybeCompress(t *testing.T) {
	p := payloads(4096)
	if out, ok := AppendMaybeCompressed([]byte("h"), p["random"]); ok || !bytes.Equal(out[1:], p["random"]) {
		t.Fatal("random bytes were compressed although it saves nothing")
	}
	if out, ok := AppendMaybeCompressed(nil, p["json"]); !ok || len(out) >= 4096 {
		t.Fatal("JSON was not compressed")
	}
	small := bytes.Repeat([]byte("a"), MinCompressSize-1)
	if _, ok := AppendMaybeCompressed(nil, small); ok {
		t.Fatal("payload under the threshold was compressed")
	}
}

func TestDecompressGuards(t *testing.T) {
	bomb := binary.AppendUvarint(nil, 1<<31)
	bomb = append(bomb, 0, 'a')
	if _, err := AppendDecompressed(nil, bomb, 1<<20); err != ErrDecodedTooLarge {
		t.Fatalf("bomb: %v", err)
	}
	if _, err := AppendDecompressed(nil, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 1<<20); err != ErrCorrupt {
		t.Fatalf("bad varint: %v", err)
	}
	if _, err := AppendDecompressed(nil, []byte{0x05, 0x00, 'a'}, 100); err != ErrCorrupt {
		t.Fatalf("short literal: %v", err)
	}
	if _, err := AppendDecompressed(nil, nil, 100); err != ErrCorrupt {
		t.Fatalf("empty block: %v", err)
	}
	out, err := AppendDecompressed([]byte("x"), snappyRef, 24)
	if err != nil || string(out) != "xferry ferry ferry ferry " {
		t.Fatalf("append: %q %v", out, err)
	}
}
