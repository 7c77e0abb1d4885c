package chaos

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
)

// Dir is the direction a message travels.
type Dir uint8

const (
	// Up is client to server.
	Up Dir = 0
	// Down is server to client.
	Down Dir = 1
)

func (d Dir) String() string {
	if d == Up {
		return "up"
	}
	return "down"
}

// NumLanes is the number of reliable lanes the test drives (1, 2 and 3).
const NumLanes = 3

// Msg names one message of the test: the stream it belongs to and its
// index in that stream, counted from 0 in send order.
type Msg struct {
	Client uint16
	Dir    Dir
	Lane   uint8 // 1..3
	Index  uint64
}

// The payload of every test message:
//
//	 0       2     3      4        6        8                16       20
//	+-------+-----+------+--------+--------+----------------+--------+---------
//	| magic | dir | lane | client | padLen |     index      | crc32  | pad ...
//	+-------+-----+------+--------+--------+----------------+--------+---------
//
// All big endian. crc32 (IEEE) covers bytes 0..15 and the padding; the
// padding is a function of the index, so a payload corrupted in transit,
// cut short or taken from another message is caught.
const (
	payloadMagic  = 0xC4A0
	payloadHeader = 20
)

// ErrCorrupt is what Decode reports for a payload that is not one Encode
// wrote.
var ErrCorrupt = errors.New("chaos: corrupt payload")

// Encode appends the payload of m with padLen bytes of padding to b.
func Encode(b []byte, m Msg, padLen int) []byte {
	start := len(b)
	b = binary.BigEndian.AppendUint16(b, payloadMagic)
	b = append(b, byte(m.Dir), m.Lane)
	b = binary.BigEndian.AppendUint16(b, m.Client)
	b = binary.BigEndian.AppendUint16(b, uint16(padLen))
	b = binary.BigEndian.AppendUint64(b, m.Index)
	crc := crc32.ChecksumIEEE(b[start : start+16])
	b = binary.BigEndian.AppendUint32(b, 0)
	padStart := len(b)
	for i := range padLen {
		b = append(b, padByte(m.Index, i))
	}
	crc = crc32.Update(crc, crc32.IEEETable, b[padStart:])
	binary.BigEndian.PutUint32(b[start+16:], crc)
	return b
}

func padByte(index uint64, i int) byte { return byte(index*31 + uint64(i)*7 + 1) }

// Decode parses a payload written by Encode.
func Decode(p []byte) (Msg, error) {
	if len(p) < payloadHeader || binary.BigEndian.Uint16(p) != payloadMagic {
		return Msg{}, ErrCorrupt
	}
	padLen := int(binary.BigEndian.Uint16(p[6:]))
	if len(p) != payloadHeader+padLen {
		return Msg{}, ErrCorrupt
	}
	crc := crc32.ChecksumIEEE(p[:16])
	crc = crc32.Update(crc, crc32.IEEETable, p[payloadHeader:])
	if crc != binary.BigEndian.Uint32(p[16:]) {
		return Msg{}, ErrCorrupt
	}
	m := Msg{
		Dir:    Dir(p[2]),
		Lane:   p[3],
		Client: binary.BigEndian.Uint16(p[4:]),
		Index:  binary.BigEndian.Uint64(p[8:]),
	}
	if m.Dir > Down || m.Lane < 1 || m.Lane > NumLanes {
		return Msg{}, ErrCorrupt
	}
	for i, c := range p[payloadHeader:] {
		if c != padByte(m.Index, i) {
			return Msg{}, ErrCorrupt
		}
	}
	return m, nil
}
