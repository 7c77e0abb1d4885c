package codec

import (
	"slices"

	"github.com/golang/snappy"
	"github.com/klauspost/compress/s2"
)

// MinCompressSize is the payload size below which senders do not try to
// compress (SPEC §11): snappy rarely saves bytes on less.
const MinCompressSize = 128

// The encoder. Payloads are snappy blocks (SPEC §11). s2.EncodeSnappy writes
// that format and its output decodes with golang/snappy (TestCompressInterop).
// In BenchmarkCompress (three runs of three on 2 noisy cores) s2 was ahead on
// 4 KiB JSON-like payloads, the size of a typical message, by 10-25 %;
// 256 B and 64 KiB JSON were a tie within the noise; golang/snappy was ahead
// on 64 KiB random bytes, which do not compress and are then sent as they
// are. So s2 encodes; golang/snappy, the reference, decodes.
func encodeBlock(dst, src []byte) []byte { return s2.EncodeSnappy(dst, src) }

func maxEncodedLen(n int) int { return s2.MaxEncodedLen(n) }

// AppendCompressed appends the snappy block of src to dst. It allocates only
// when dst lacks the capacity for the worst case, s2.MaxEncodedLen(len(src)).
func AppendCompressed(dst, src []byte) []byte {
	m := maxEncodedLen(len(src))
	if m < 0 {
		panic("codec: payload too large to compress")
	}
	dst = slices.Grow(dst, m)
	out := encodeBlock(dst[len(dst):len(dst)+m], src)
	return dst[:len(dst)+len(out)]
}

// AppendMaybeCompressed appends src to dst compressed when that is worth it
// (at least MinCompressSize and strictly smaller, SPEC §11) and reports
// whether it did; otherwise it appends src as it is.
func AppendMaybeCompressed(dst, src []byte) ([]byte, bool) {
	if len(src) < MinCompressSize {
		return append(dst, src...), false
	}
	n := len(dst)
	out := AppendCompressed(dst, src)
	if len(out)-n >= len(src) {
		return append(out[:n], src...), false
	}
	return out, true
}

// DecodedLen returns the length src decompresses to, read from the snappy
// preamble without decoding anything.
func DecodedLen(src []byte) (int, error) {
	n, err := snappy.DecodedLen(src)
	if err != nil {
		return 0, ErrCorrupt
	}
	return n, nil
}

// AppendDecompressed appends the decompressed form of the snappy block src
// to dst. The decoded length is checked against limit before any memory is
// reserved for it (SPEC §11: a block claiming more is COMPRESSION_ERROR).
func AppendDecompressed(dst, src []byte, limit int) ([]byte, error) {
	n, err := DecodedLen(src)
	if err != nil {
		return dst, err
	}
	if n > limit {
		return dst, ErrDecodedTooLarge
	}
	dst = slices.Grow(dst, n)
	out, err := snappy.Decode(dst[len(dst):len(dst)+n], src)
	if err != nil || len(out) != n {
		return dst, ErrCorrupt
	}
	return dst[:len(dst)+n], nil
}
