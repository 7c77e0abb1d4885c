package loadgen

import "encoding/binary"

// RawHeaderLen is the length prefix of the raw format: a 4-byte big-endian
// payload length, then the payload (rawecho's format).
const RawHeaderLen = 4

// RawEncode appends a raw frame carrying payload to dst. The raw format has
// no sequence number, so seq is unused. It matches Config.Encode.
func RawEncode(dst []byte, _ uint32, payload []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(payload)))
	return append(dst, payload...)
}

// RawDecode reports the length of the raw frame at the start of b, or
// ok=false when b holds only part of it. A frame longer than MaxResponse is
// an error, reported as soon as its header is seen. It matches
// Config.Decode.
func RawDecode(b []byte) (n int, ok bool, err error) {
	if len(b) < RawHeaderLen {
		return 0, false, nil
	}
	size := uint64(binary.BigEndian.Uint32(b))
	if size > MaxResponse-RawHeaderLen {
		return 0, false, ErrResponseTooLarge
	}
	n = RawHeaderLen + int(size)
	if len(b) < n {
		return 0, false, nil
	}
	return n, true, nil
}
