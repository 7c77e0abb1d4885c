package codec

import (
	"fmt"
	"testing"

	"github.com/golang/snappy"
	"github.com/klauspost/compress/s2"

	"github.com/ferry-proto/ferry/protocol"
)

var benchSizes = []struct {
	name string
	n    int
}{{"16B", 16}, {"256B", 256}, {"4KiB", 4 << 10}, {"64KiB", 64 << 10}}

func benchFrame(n int) Frame {
	return Frame{Type: protocol.FrameData, Flags: protocol.FlagReliable, Lane: 2, Route: 7, Corr: 1, Seq: 99, Payload: make([]byte, n)}
}

func BenchmarkEncode(b *testing.B) {
	for _, s := range benchSizes {
		b.Run(s.name, func(b *testing.B) {
			f := benchFrame(s.n)
			buf := make([]byte, 0, f.Len())
			b.SetBytes(int64(f.Len()))
			b.ReportAllocs()
			for b.Loop() {
				buf = f.Append(buf[:0])
			}
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, s := range benchSizes {
		b.Run(s.name, func(b *testing.B) {
			f := benchFrame(s.n)
			enc := f.Append(nil)
			d := Decoder{MaxFrameSize: protocol.HardMaxFrameSize}
			b.SetBytes(int64(len(enc)))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := d.Decode(enc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecodeStream decodes a buffer of many small frames, as OnTraffic
// does with a read full of pipelined messages.
func BenchmarkDecodeStream(b *testing.B) {
	f := benchFrame(64)
	var stream []byte
	for range 256 {
		stream = f.Append(stream)
	}
	d := NewDecoder()
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		rest := stream
		for len(rest) > 0 {
			_, n, err := d.Decode(rest)
			if err != nil {
				b.Fatal(err)
			}
			rest = rest[n:]
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*256), "ns/frame")
}

// BenchmarkCompress compares golang/snappy with klauspost/compress's
// snappy-compatible encoders on the same payloads (SPEC §11 wire format):
// the faster one whose output golang/snappy decodes is used (compress.go).
func BenchmarkCompress(b *testing.B) {
	encoders := []struct {
		name string
		max  func(int) int
		enc  func(dst, src []byte) []byte
	}{
		{"golang-snappy", snappy.MaxEncodedLen, snappy.Encode},
		{"s2-snappy", s2.MaxEncodedLen, s2.EncodeSnappy},
		{"s2-snappy-better", s2.MaxEncodedLen, s2.EncodeSnappyBetter},
	}
	for _, size := range []struct {
		name string
		n    int
	}{{"256B", 256}, {"4KiB", 4 << 10}, {"64KiB", 64 << 10}} {
		for _, kind := range []string{"json", "random", "repetitive"} {
			p := payloads(size.n)[kind]
			for _, e := range encoders {
				b.Run(fmt.Sprintf("%s/%s/%s", kind, size.name, e.name), func(b *testing.B) {
					dst := make([]byte, e.max(len(p)))
					out := e.enc(dst, p)
					b.ReportMetric(float64(len(out))/float64(len(p)), "ratio")
					b.SetBytes(int64(len(p)))
					b.ReportAllocs()
					for b.Loop() {
						e.enc(dst, p)
					}
				})
			}
		}
	}
}

func BenchmarkDecompress(b *testing.B) {
	for _, size := range []struct {
		name string
		n    int
	}{{"256B", 256}, {"4KiB", 4 << 10}, {"64KiB", 64 << 10}} {
		p := payloads(size.n)["json"]
		c := snappy.Encode(nil, p)
		dst := make([]byte, len(p))
		b.Run("json/"+size.name+"/golang-snappy", func(b *testing.B) {
			b.SetBytes(int64(len(p)))
			b.ReportAllocs()
			for b.Loop() {
				_, _ = snappy.Decode(dst, c)
			}
		})
		b.Run("json/"+size.name+"/s2", func(b *testing.B) {
			b.SetBytes(int64(len(p)))
			b.ReportAllocs()
			for b.Loop() {
				_, _ = s2.Decode(dst, c)
			}
		})
	}
}
