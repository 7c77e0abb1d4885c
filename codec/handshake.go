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

// fixedFields is the 48-byte fixed part HELLO and WELCOME share (SPEC §5.2,
// §5.3); byte 2 is reserved in HELLO and SessionPresent in WELCOME.
type fixedFields struct {
	version, caps, byte2 uint8
	maxFrame, maxMessage uint32
	heartbeat            uint32
	receiveMax           uint16
	expiry               uint32
	received             [3]uint64
}

// parseFixed reads the fixed part, Version first (SPEC §5.1), and returns
// what follows it.
func parseFixed(b []byte) (fixedFields, []byte, error) {
	var f fixedFields
	if len(b) < 1 {
		return f, nil, ErrTruncatedBody
	}
	f.version = b[0]
	if f.version != protocol.Version {
		return f, nil, ErrUnsupportedVer
	}
	if len(b) < handshakeFixed {
		return f, nil, ErrTruncatedBody
	}
	be := binary.BigEndian
	f.caps, f.byte2 = b[1], b[2]
	if f.caps&^protocol.CapMask != 0 || b[3] != 0 || b[18] != 0 || b[19] != 0 {
		return f, nil, ErrReservedBits
	}
	f.maxFrame = be.Uint32(b[4:])
	f.maxMessage = be.Uint32(b[8:])
	f.heartbeat = be.Uint32(b[12:])
	f.receiveMax = be.Uint16(b[16:])
	f.expiry = be.Uint32(b[20:])
	for i := range f.received {
		f.received[i] = be.Uint64(b[24+8*i:])
	}
	if f.maxFrame > protocol.HardMaxFrameSize || f.maxMessage > protocol.HardMaxMessageSize {
		return f, nil, ErrBadValue
	}
	return f, b[handshakeFixed:], nil
}

func (f *fixedFields) append(b []byte) []byte {
	be := binary.BigEndian
	b = append(b, f.version, f.caps, f.byte2, 0)
	b = be.AppendUint32(b, f.maxFrame)
	b = be.AppendUint32(b, f.maxMessage)
	b = be.AppendUint32(b, f.heartbeat)
	b = be.AppendUint16(b, f.receiveMax)
	b = append(b, 0, 0)
	b = be.AppendUint32(b, f.expiry)
	for _, r := range f.received {
		b = be.AppendUint64(b, r)
	}
	return b
}

// takeStrings reads the length-prefixed strings that end HELLO and
// WELCOME into dst, each within its limit, and allows nothing after them.
func takeStrings(b []byte, dst []*[]byte, limits []int) error {
	for i, d := range dst {
		var err error
		if *d, b, err = takeString(b, limits[i]); err != nil {
			return err
		}
	}
	if len(b) != 0 {
		return ErrTrailingBytes
	}
	return nil
}

// ParseHello parses a HELLO body (Frame.Payload). It reads Version before
// anything else, so a client of another version gets UNSUPPORTED_VERSION
// whatever follows (SPEC §5.1).
func ParseHello(b []byte) (Hello, error) {
	var h Hello
	f, rest, err := parseFixed(b)
	h.Version = f.version
	if err != nil {
		return h, err
	}
	if f.byte2 != 0 {
		return h, ErrReservedBits
	}
	h.Capabilities, h.MaxFrameSize, h.MaxMessageSize, h.HeartbeatMs = f.caps, f.maxFrame, f.maxMessage, f.heartbeat
	h.ReceiveMax, h.SessionExpiry, h.Received = f.receiveMax, f.expiry, f.received
	err = takeStrings(rest, []*[]byte{&h.ClientID, &h.AuthToken, &h.SessionID, &h.ResumeToken},
		[]int{protocol.MaxClientIDLen, protocol.MaxTokenLen, protocol.MaxSessionIDLen, protocol.MaxTokenLen})
	if err != nil {
		return h, err
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
	f, rest, err := parseFixed(b)
	w.Version = f.version
	if err != nil {
		return w, err
	}
	switch f.byte2 {
	case 0:
	case 1:
		w.SessionPresent = true
	default:
		return w, ErrBadValue
	}
	w.Capabilities, w.MaxFrameSize, w.MaxMessageSize, w.HeartbeatMs = f.caps, f.maxFrame, f.maxMessage, f.heartbeat
	w.ReceiveMax, w.SessionExpiry, w.Received = f.receiveMax, f.expiry, f.received
	err = takeStrings(rest, []*[]byte{&w.ClientID, &w.SessionID, &w.ResumeToken},
		[]int{protocol.MaxClientIDLen, protocol.MaxSessionIDLen, protocol.MaxTokenLen})
	return w, err
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
	f := fixedFields{version: h.Version, caps: h.Capabilities, maxFrame: h.MaxFrameSize, maxMessage: h.MaxMessageSize,
		heartbeat: h.HeartbeatMs, receiveMax: h.ReceiveMax, expiry: h.SessionExpiry, received: h.Received}
	b = f.append(b)
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
	f := fixedFields{version: w.Version, caps: w.Capabilities, maxFrame: w.MaxFrameSize, maxMessage: w.MaxMessageSize,
		heartbeat: w.HeartbeatMs, receiveMax: w.ReceiveMax, expiry: w.SessionExpiry, received: w.Received}
	if w.SessionPresent {
		f.byte2 = 1
	}
	b = f.append(b)
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
// means (SPEC §5.4.5): 0 is the default, values above the maximum are read
// as the maximum.
func EffectiveReceiveMax(v uint16) int {
	switch {
	case v == 0:
		return protocol.DefaultReceiveMax
	case v > protocol.MaxReceiveMax:
		return protocol.MaxReceiveMax
	}
	return int(v)
}
