package loadgen

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

func TestRawRoundTrip(t *testing.T) {
	for _, size := range []int{0, 1, 4, 100, 65536} {
		payload := bytes.Repeat([]byte{0xa5}, size)
		prefix := []byte("prefix")
		f := RawEncode(append([]byte(nil), prefix...), 7, payload)
		if !bytes.Equal(f[:len(prefix)], prefix) {
			t.Fatalf("size %d: RawEncode did not append", size)
		}
		f = f[len(prefix):]
		if len(f) != RawHeaderLen+size || binary.BigEndian.Uint32(f) != uint32(size) || !bytes.Equal(f[RawHeaderLen:], payload) {
			t.Fatalf("size %d: bad frame % x", size, f[:min(len(f), 16)])
		}
		// Every truncated prefix needs more; the frame itself decodes whole,
		// also with the start of the next frame behind it.
		for k := range len(f) {
			if n, ok, err := RawDecode(f[:k]); n != 0 || ok || err != nil {
				t.Fatalf("size %d, prefix %d: (%d, %v, %v), want need-more", size, k, n, ok, err)
			}
		}
		two := append(append([]byte(nil), f...), f[:3]...)
		if n, ok, err := RawDecode(two); n != len(f) || !ok || err != nil {
			t.Fatalf("size %d: RawDecode = (%d, %v, %v), want (%d, true, nil)", size, n, ok, err, len(f))
		}
	}
}

func TestRawDecodeTooLarge(t *testing.T) {
	ok := binary.BigEndian.AppendUint32(nil, MaxResponse-RawHeaderLen)
	if _, more, err := RawDecode(ok); more || err != nil {
		t.Fatalf("largest allowed header: (%v, %v)", more, err)
	}
	for _, size := range []uint32{MaxResponse - RawHeaderLen + 1, 1<<32 - 1} {
		b := binary.BigEndian.AppendUint32(nil, size)
		if _, _, err := RawDecode(b); !errors.Is(err, ErrResponseTooLarge) {
			t.Fatalf("length %d: err %v, want ErrResponseTooLarge", size, err)
		}
	}
}
