package codec

import (
	"encoding/binary"

	"github.com/ferry-proto/ferry/protocol"
)

// Hello is the body of the HELLO frame a client sends first (SPEC §5.2).
// The byte slices alias the buffer it was parsed from.
//
//	+---------------+---------------+-------------------------------+
//	|  Version (8)  |   Caps (8)    |         Reserved (16)         |
//	+---------------+---------------+-------------------------------+
//	|                       MaxFrameSize (32)                       |
//	|                      MaxMessageSize (32)                      |
//	|                       HeartbeatMs (32)                        |
//	+-------------------------------+-------------------------------+
//	|        ReceiveMax (16)        |         Reserved (16)         |
//	+-------------------------------+-------------------------------+
//	|                      SessionExpiry (32)                       |
//	|              Received[1], Received[2], Received[3] (3 × 64)   |
//	+-------------------------------+-------------------------------+
//	| ClientIDLen (16) | ClientID | TokenLen (16) | AuthToken |
//	| SessionIDLen (16) | SessionID | ResumeTokenLen (16) | ResumeToken |
type Hello struct {
	Version        uint8
	Capabilities   uint8
	MaxFrameSize   uint32
	MaxMessageSize uint32
	HeartbeatMs    uint32
	ReceiveMax     uint16
	SessionExpiry  uint32
	// Received holds, for lanes 1-3, the highest sequence number received
	// in order from the server in the session being resumed.
	Received    [3]uint64
	ClientID    []byte
	AuthToken   []byte
	SessionID   []byte
	ResumeToken []byte
}

// Welcome is the body of the WELCOME frame a server answers HELLO with
// (SPEC §5.3). Its values are authoritative.
//
//	+---------------+---------------+---------------+---------------+
//	|  Version (8)  |   Caps (8)    | SessPresent(8)| Reserved (8)  |
//	+---------------+---------------+---------------+---------------+
//	| MaxFrameSize (32) | MaxMessageSize (32) | HeartbeatMs (32)    |
//	| ReceiveMax (16) | Reserved (16) | SessionExpiry (32)          |
//	| Received[1..3] (3 × 64)                                       |
//	| ClientIDLen (16) | ClientID | SessionIDLen (16) | SessionID   |
//	| ResumeTokenLen (16) | ResumeToken                             |
type Welcome struct {
	Version        uint8
	Capabilities   uint8
	SessionPresent bool
	MaxFrameSize   uint32
	MaxMessageSize uint32
	HeartbeatMs    uint32
	ReceiveMax     uint16
	SessionExpiry  uint32
	Received       [3]uint64
	ClientID       []byte
	SessionID      []byte
	ResumeToken    []byte
}

// handshakeFixed is the size of the fixed part of HELLO and WELCOME.
const handshakeFixed = 48

// ParseHello parses a HELLO body (Frame.Payload). It reads Version before
// anything else, so a client of another version gets UNSUPPORTED_VERSION
// whatever follows (SPEC §5.1).
func ParseHello(b []byte) (Hello, error) {
	var h Hello
	if len(b) < 1 {
		return h, ErrTruncatedBody
	}
	h.Version = b[0]
	if h.Version != protocol.Version {
		return h, ErrUnsupportedVer
	}
	if len(b) < handshakeFixed {
		return h, ErrTruncatedBody
	}
	be := binary.BigEndian
	h.Capabilities = b[1]
	if h.Capabilities&^protocol.CapMask != 0 || b[2] != 0 || b[3] != 0 || b[18] != 0 || b[19] != 0 {
		return h, ErrReservedBits
	}
	h.MaxFrameSize = be.Uint32(b[4:])
	h.MaxMessageSize = be.Uint32(b[8:])
	h.HeartbeatMs = be.Uint32(b[12:])
	h.ReceiveMax = be.Uint16(b[16:])
	h.SessionExpiry = be.Uint32(b[20:])
	for i := range h.Received {
		h.Received[i] = be.Uint64(b[24+8*i:])
	}
	if err := checkLimits(h.MaxFrameSize, h.MaxMessageSize); err != nil {
		return h, err
	}
	rest := b[handshakeFixed:]
	var err error
	if h.ClientID, rest, err = takeString(rest, protocol.MaxClientIDLen); err != nil {
		return h, err
	}
	if h.AuthToken, rest, err = takeString(rest, protocol.MaxTokenLen); err != nil {
		return h, err
	}
	if h.SessionID, rest, err = takeString(rest, protocol.MaxSessionIDLen); err != nil {
		return h, err
	}
	if h.ResumeToken, rest, err = takeString(rest, protocol.MaxTokenLen); err != nil {
		return h, err
	}
	if len(rest) != 0 {
		return h, ErrTrailingBytes
	}
	// SPEC §5.2: resume positions without a session to resume are void.
	if len(h.SessionID) == 0 && (h.Received != [3]uint64{} || len(h.ResumeToken) != 0) {
		return h, ErrBadValue
	}
	return h, nil
}

// ParseWelcome parses a WELCOME body (Frame.Payload).
func ParseWelcome(b []byte) (Welcome, error) {
	var w Welcome
	if len(b) < 1 {
		return w, ErrTruncatedBody
	}
	w.Version = b[0]
	if w.Version != protocol.Version {
		return w, ErrUnsupportedVer
	}
	if len(b) < handshakeFixed {
		return w, ErrTruncatedBody
	}
	be := binary.BigEndian
	w.Capabilities = b[1]
	if w.Capabilities&^protocol.CapMask != 0 || b[3] != 0 || b[18] != 0 || b[19] != 0 {
		return w, ErrReservedBits
	}
	switch b[2] {
	case 0:
	case 1:
		w.SessionPresent = true
	default:
		return w, ErrBadValue
	}
	w.MaxFrameSize = be.Uint32(b[4:])
	w.MaxMessageSize = be.Uint32(b[8:])
	w.HeartbeatMs = be.Uint32(b[12:])
	w.ReceiveMax = be.Uint16(b[16:])
	w.SessionExpiry = be.Uint32(b[20:])
	for i := range w.Received {
		w.Received[i] = be.Uint64(b[24+8*i:])
	}
	if err := checkLimits(w.MaxFrameSize, w.MaxMessageSize); err != nil {
		return w, err
	}
	rest := b[handshakeFixed:]
	var err error
	if w.ClientID, rest, err = takeString(rest, protocol.MaxClientIDLen); err != nil {
		return w, err
	}
	if w.SessionID, rest, err = takeString(rest, protocol.MaxSessionIDLen); err != nil {
		return w, err
	}
	if w.ResumeToken, rest, err = takeString(rest, protocol.MaxTokenLen); err != nil {
		return w, err
	}
	if len(rest) != 0 {
		return w, ErrTrailingBytes
	}
	return w, nil
}

func checkLimits(maxFrame, maxMessage uint32) error {
	if maxFrame > protocol.HardMaxFrameSize || maxMessage > protocol.HardMaxMessageSize {
		return ErrBadValue
	}
	return nil
}

func takeString(b []byte, limit int) (s, rest []byte, err error) {
	if len(b) < 2 {
		return nil, nil, ErrTruncatedBody
	}
	n := int(binary.BigEndian.Uint16(b))
	if n > limit {
		return nil, nil, ErrFieldTooLong
	}
	if len(b) < 2+n {
		return nil, nil, ErrTruncatedBody
	}
	if n == 0 {
		return nil, b[2:], nil
	}
	return b[2 : 2+n : 2+n], b[2+n:], nil
}

func appendString(b, s []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// Len is the size of the encoded HELLO body.
func (h *Hello) Len() int {
	return handshakeFixed + 8 + len(h.ClientID) + len(h.AuthToken) + len(h.SessionID) + len(h.ResumeToken)
}

// Append appends the HELLO body to b.
func (h *Hello) Append(b []byte) []byte {
	be := binary.BigEndian
	b = append(b, h.Version, h.Capabilities, 0, 0)
	b = be.AppendUint32(b, h.MaxFrameSize)
	b = be.AppendUint32(b, h.MaxMessageSize)
	b = be.AppendUint32(b, h.HeartbeatMs)
	b = be.AppendUint16(b, h.ReceiveMax)
	b = append(b, 0, 0)
	b = be.AppendUint32(b, h.SessionExpiry)
	for _, r := range h.Received {
		b = be.AppendUint64(b, r)
	}
	b = appendString(b, h.ClientID)
	b = appendString(b, h.AuthToken)
	b = appendString(b, h.SessionID)
	return appendString(b, h.ResumeToken)
}

// Len is the size of the encoded WELCOME body.
func (w *Welcome) Len() int {
	return handshakeFixed + 6 + len(w.ClientID) + len(w.SessionID) + len(w.ResumeToken)
}

// Append appends the WELCOME body to b.
func (w *Welcome) Append(b []byte) []byte {
	be := binary.BigEndian
	var present byte
	if w.SessionPresent {
		present = 1
	}
	b = append(b, w.Version, w.Capabilities, present, 0)
	b = be.AppendUint32(b, w.MaxFrameSize)
	b = be.AppendUint32(b, w.MaxMessageSize)
	b = be.AppendUint32(b, w.HeartbeatMs)
	b = be.AppendUint16(b, w.ReceiveMax)
	b = append(b, 0, 0)
	b = be.AppendUint32(b, w.SessionExpiry)
	for _, r := range w.Received {
		b = be.AppendUint64(b, r)
	}
	b = appendString(b, w.ClientID)
	b = appendString(b, w.SessionID)
	return appendString(b, w.ResumeToken)
}

// AppendHello appends a whole HELLO frame (header and body) to b.
func AppendHello(b []byte, h *Hello) []byte {
	f := Frame{Type: protocol.FrameHello}
	b = appendControlHeader(b, &f, h.Len())
	return h.Append(b)
}

// AppendWelcome appends a whole WELCOME frame (header and body) to b.
func AppendWelcome(b []byte, w *Welcome) []byte {
	f := Frame{Type: protocol.FrameWelcome}
	b = appendControlHeader(b, &f, w.Len())
	return w.Append(b)
}

func appendControlHeader(b []byte, f *Frame, bodyLen int) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(protocol.MinLength+bodyLen))
	return append(b, byte(f.Type), byte(f.Flags), byte(f.Lane))
}

// EffectiveMaxFrameSize turns an announced MaxFrameSize into the limit it
// means (SPEC §5.4): 0 is the default, values under the minimum are read as
// the minimum.
func EffectiveMaxFrameSize(v uint32) int {
	switch {
	case v == 0:
		return protocol.DefaultMaxFrameSize
	case v < protocol.MinMaxFrameSize:
		return protocol.MinMaxFrameSize
	case v > protocol.HardMaxFrameSize:
		return protocol.HardMaxFrameSize
	}
	return int(v)
}

// EffectiveMaxMessageSize turns an announced MaxMessageSize into the limit
// it means (SPEC §5.4): 0 is the default.
func EffectiveMaxMessageSize(v uint32) int {
	switch {
	case v == 0:
		return protocol.DefaultMaxMessageSize
	case v > protocol.HardMaxMessageSize:
		return protocol.HardMaxMessageSize
	}
	return int(v)
}

// EffectiveReceiveMax turns an announced ReceiveMax into the window it
// means: 0 is the default.
func EffectiveReceiveMax(v uint16) int {
	if v == 0 {
		return protocol.DefaultReceiveMax
	}
	return int(v)
}
