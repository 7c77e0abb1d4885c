package chaos

import (
	"errors"
	"testing"
)

func TestPayloadRoundTrip(t *testing.T) {
	for _, m := range []Msg{
		{Client: 0, Dir: Up, Lane: 1, Index: 0},
		{Client: 7, Dir: Down, Lane: 3, Index: 1<<64 - 1},
		{Client: 65535, Dir: Down, Lane: 2, Index: 123456789},
	} {
		for _, pad := range []int{0, 1, 100, 40 << 10} {
			p := Encode(nil, m, pad)
			if len(p) != payloadHeader+pad {
				t.Fatalf("len %d, want %d", len(p), payloadHeader+pad)
			}
			got, err := Decode(p)
			if err != nil || got != m {
				t.Fatalf("Decode(Encode(%+v, %d)) = %+v, %v", m, pad, got, err)
			}
		}
	}
}

// Every single-bit flip and every truncation is caught: the checker must
// never count a damaged message as delivered.
func TestPayloadCorruption(t *testing.T) {
	m := Msg{Client: 1, Dir: Down, Lane: 2, Index: 4242}
	p := Encode(nil, m, 37)
	for i := range p {
		for bit := range 8 {
			q := append([]byte(nil), p...)
			q[i] ^= 1 << bit
			if _, err := Decode(q); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("flip byte %d bit %d: err %v", i, bit, err)
			}
		}
	}
	for n := range len(p) {
		if _, err := Decode(p[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated to %d: err %v", n, err)
		}
	}
	if _, err := Decode(append(p, 0)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("one byte extra: err %v", err)
	}
	// Another message's padding under this header.
	other := Encode(nil, Msg{Client: 1, Dir: Down, Lane: 2, Index: 4243}, 37)
	q := append(append([]byte(nil), p[:payloadHeader]...), other[payloadHeader:]...)
	if _, err := Decode(q); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("spliced payload: err %v", err)
	}
}
