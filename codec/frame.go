package codec

import (
	"encoding/binary"

	"github.com/ferry-proto/ferry/protocol"
)

// Frame is one decoded FERRY/1 frame, or the fields of one to encode. It is
// a flat value: the fields a frame type does not use stay zero. Name and
// Payload alias the buffer the frame was decoded from (see Decoder.Decode).
//
// The header every frame starts with, SPEC §3.1:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                          Length (32)                          |
//	+---------------+---------------+-----------+---+---------------+
//	|   Type (8)    |   Flags (8)   | Rsvd (6)  |Ln |  Body ...
//	+---------------+---------------+-----------+---+
//
// The body of a message frame (SPEC §6) is the type's fixed fields, then the
// optional fields its flags announce in ascending bit order, then the payload:
//
//	DATA:    Route (32) | Corr (32)
//	PUBLISH: Corr (32) | TopicLen (16) | Topic
//	DIRECT:  Corr (32) | PeerLen (16) | Peer
//	then:    [Seq (64)] [MsgID (32) | Offset (32) | Total (32)] [TTL (32)] [Key (64)] | Payload
//
// The delivery frames (SPEC §7.7, §7.8) have fixed bodies:
//
//	CONFIRM:    ConfirmLane (8) | Verdict (8) | Reserved (16) | Seq (64)
//	GAP_REPORT: Delivered | DroppedCount | DroppedBytes | DroppedAge | Expired (5 × 64)
type Frame struct {
	Type  protocol.FrameType
	Flags protocol.Flags
	Lane  protocol.Lane

	// AckLane is the lane an ACK acknowledges (SPEC §7.2), and the
	// ConfirmLane of a CONFIRM: the lane of the message it answers (§7.7).
	AckLane protocol.Lane
	// Options of a SUBSCRIBE; reserved, zero in FERRY/1 (SPEC §7.5).
	Options uint8
	// Verdict of a CONFIRM (SPEC §7.7). It sits in what would otherwise be
	// padding: Frame did not grow for it.
	Verdict protocol.Verdict
	// Code of an ERROR, GOAWAY or RESULT (SPEC §13).
	Code protocol.ErrorCode
	// Count of the inner frames of a BATCH (SPEC §9).
	Count uint16

	// Route of a DATA frame (SPEC §6.1).
	Route uint32
	// Corr is the correlation id of DATA, PUBLISH, DIRECT, SUBSCRIBE,
	// UNSUBSCRIBE and RESULT; 0 means none.
	Corr uint32
	// MsgID, Offset and Total are the fragment header (FlagFragment, SPEC §10).
	MsgID, Offset, Total uint32
	// TTL is the message expiry in milliseconds (FlagExpiry, SPEC §6.4).
	TTL uint32
	// ReconnectAfter is a GOAWAY's reconnect hint in milliseconds (SPEC §7.4).
	ReconnectAfter uint32
	// AckDelay is an ACK's delay in microseconds (SPEC §7.2).
	AckDelay uint32

	// Seq is a reliable message's sequence number (FlagReliable, SPEC §12),
	// and for a CONFIRM the Seq of the frame that completed the message it
	// answers (SPEC §7.7).
	Seq uint64
	// Opaque is the value a PING carries and its PONG echoes (SPEC §7.1),
	// and the idempotency Key of a message frame with FlagKeyed (SPEC
	// §6.5), never 0 there; Key reads it, and gives 0 for a frame without
	// a key. No frame type has both, and Frame's size is pinned at 128
	// bytes, so the two share one field: encoding a message frame writes
	// Opaque only when FlagKeyed is set, and decoding one sets it only then.
	Opaque uint64
	// Cumulative and Selective are an ACK's acknowledgement (SPEC §7.2).
	Cumulative, Selective uint64

	// Name is the topic of PUBLISH, the peer client id of DIRECT and the
	// pattern of SUBSCRIBE and UNSUBSCRIBE.
	Name []byte
	// Payload is the message payload (still compressed when FlagCompressed
	// is set), the inner frames of a BATCH, the reason of ERROR and GOAWAY,
	// the detail of RESULT, and the whole body of HELLO, WELCOME and
	// GAP_REPORT (parse it with ParseHello, ParseWelcome or ParseGapReport).
	Payload []byte
}

// Decoder decodes frames from a byte stream. The zero value is not ready:
// set MaxFrameSize. A Decoder holds no buffers and is cheap to copy; it is
// owned by one connection and used from the goroutine that reads it.
type Decoder struct {
	// MaxFrameSize is the largest frame (length prefix included) this side
	// accepts: protocol.DefaultMaxFrameSize until the handshake is done,
	// then the value it announced (SPEC §3.2).
	MaxFrameSize int
	// Compression reports whether compression was negotiated; without it
	// a COMPRESSED frame is a protocol error (SPEC §11).
	Compression bool
	// inBatch rejects the frames a BATCH may not hold (SPEC §9).
	inBatch bool
}

// NewDecoder returns a Decoder with the limits that hold before the
// handshake completes.
func NewDecoder() Decoder { return Decoder{MaxFrameSize: protocol.DefaultMaxFrameSize} }

// Decode decodes the first frame of b and returns it with the number of
// bytes it occupied. When b holds only a prefix of a frame it returns
// ErrNeedMore and consumes nothing; a frame that breaks the spec gives a
// *Error whose Code the caller sends before closing.
//
// Decode copies nothing: the frame's Name and Payload alias b and stay valid
// only as long as b's bytes do (for the reactor, until the event-loop
// callback returns or the bytes are discarded). It does not allocate.
//
// The order of checks follows SPEC §3.5: the length prefix against the
// limit as soon as its 4 bytes are present, then the header as soon as its
// 7 bytes are present, then the body once the whole frame is present.
func (d *Decoder) Decode(b []byte) (Frame, int, error) {
	var f Frame
	n, err := d.DecodeInto(&f, b)
	return f, n, err
}

// DecodeInto is Decode into *f (reset first), for a caller that keeps its
// frame in place: the reactor decodes every frame into its loop's scratch,
// and a 128-byte Frame returned by value is one more copy per frame.
func (d *Decoder) DecodeInto(f *Frame, b []byte) (int, error) {
	*f = Frame{}
	if len(b) < protocol.LengthSize {
		return 0, ErrNeedMore
	}
	length := binary.BigEndian.Uint32(b)
	// SPEC §3.2: a length prefix above the receiver's maximum is
	// FRAME_TOO_LARGE, detected before any of the body is read.
	if uint64(length)+protocol.LengthSize > uint64(d.MaxFrameSize) {
		return 0, ErrFrameTooLarge
	}
	if length < protocol.MinLength {
		return 0, ErrFrameTooShort
	}
	if len(b) < protocol.HeaderSize {
		return 0, ErrNeedMore
	}
	f.Type = protocol.FrameType(b[4])
	f.Flags = protocol.Flags(b[5])
	if err := d.checkHeader(f.Type, f.Flags, b[6]); err != nil {
		return 0, err
	}
	f.Lane = protocol.Lane(b[6])
	n := int(length) + protocol.LengthSize
	if len(b) < n {
		return 0, ErrNeedMore
	}
	if err := f.parseBody(b[protocol.HeaderSize:n:n]); err != nil {
		return 0, err
	}
	return n, nil
}

// checkHeader applies the header rules of SPEC §3.3-§3.4 and §9.
func (d *Decoder) checkHeader(t protocol.FrameType, fl protocol.Flags, laneByte byte) error {
	if !t.Known() {
		return ErrUnknownType
	}
	if fl&^protocol.AllowedFlags(t) != 0 {
		return ErrReservedFlags
	}
	// SPEC §3.3: APP_ACK only together with RELIABLE.
	if fl&protocol.FlagAppAck != 0 && fl&protocol.FlagReliable == 0 {
		return ErrAppAckUnreliable
	}
	if laneByte&^protocol.LaneMask != 0 {
		return ErrReservedBits
	}
	if !protocol.LaneAllowed(t, protocol.Lane(laneByte)) {
		return ErrBadLane
	}
	if d.inBatch {
		if t == protocol.FrameBatch || t == protocol.FrameHello || t == protocol.FrameWelcome ||
			fl&(protocol.FlagCompressed|protocol.FlagFragment) != 0 {
			return ErrBatchInner
		}
	}
	if fl&protocol.FlagCompressed != 0 && !d.Compression {
		return ErrCompressionOff
	}
	return nil
}

func (f *Frame) parseBody(b []byte) error {
	be := binary.BigEndian
	switch f.Type {
	case protocol.FrameHello, protocol.FrameWelcome:
		f.Payload = b
		return nil
	case protocol.FramePing, protocol.FramePong:
		if len(b) < 8 {
			return ErrTruncatedBody
		}
		if len(b) > 8 {
			return ErrTrailingBytes
		}
		f.Opaque = be.Uint64(b)
		return nil
	case protocol.FrameAck:
		if len(b) < ackLen {
			return ErrTruncatedBody
		}
		if len(b) > ackLen {
			return ErrTrailingBytes
		}
		if b[1] != 0 || b[2] != 0 || b[3] != 0 {
			return ErrReservedBits
		}
		f.AckLane = protocol.Lane(b[0])
		if f.AckLane < protocol.LaneInteractive || f.AckLane >= protocol.NumLanes {
			return ErrBadValue
		}
		f.AckDelay = be.Uint32(b[4:])
		f.Cumulative = be.Uint64(b[8:])
		f.Selective = be.Uint64(b[16:])
		return nil
	case protocol.FrameConfirm:
		if len(b) < confirmLen {
			return ErrTruncatedBody
		}
		if len(b) > confirmLen {
			return ErrTrailingBytes
		}
		if b[2] != 0 || b[3] != 0 {
			return ErrReservedBits
		}
		// SPEC §7.7: ConfirmLane 1 to 3, Verdict 0 or 1, Seq at least 1.
		f.AckLane = protocol.Lane(b[0])
		f.Verdict = protocol.Verdict(b[1])
		f.Seq = be.Uint64(b[4:])
		if f.AckLane < protocol.LaneInteractive || f.AckLane >= protocol.NumLanes || !f.Verdict.Known() || f.Seq == 0 {
			return ErrBadValue
		}
		return nil
	case protocol.FrameGapReport:
		// SPEC §7.8: exactly five counters; every value is valid.
		if len(b) < GapReportLen {
			return ErrTruncatedBody
		}
		if len(b) > GapReportLen {
			return ErrTrailingBytes
		}
		f.Payload = b
		return nil
	case protocol.FrameBatch:
		if len(b) < 4 {
			return ErrTruncatedBody
		}
		f.Count = be.Uint16(b)
		if b[2] != 0 || b[3] != 0 {
			return ErrReservedBits
		}
		if f.Count == 0 || f.Count > protocol.MaxBatchFrames {
			return ErrBatchCount
		}
		f.Payload = b[4:]
		return nil
	case protocol.FrameError:
		if len(b) < 4 {
			return ErrTruncatedBody
		}
		f.Code = protocol.ErrorCode(be.Uint16(b))
		if b[2] != 0 || b[3] != 0 {
			return ErrReservedBits
		}
		return f.setText(b[4:])
	case protocol.FrameGoAway:
		if len(b) < 8 {
			return ErrTruncatedBody
		}
		f.Code = protocol.ErrorCode(be.Uint16(b))
		if b[2] != 0 || b[3] != 0 {
			return ErrReservedBits
		}
		f.ReconnectAfter = be.Uint32(b[4:])
		return f.setText(b[8:])
	case protocol.FrameResult:
		if len(b) < 8 {
			return ErrTruncatedBody
		}
		f.Corr = be.Uint32(b)
		f.Code = protocol.ErrorCode(be.Uint16(b[4:]))
		if b[6] != 0 || b[7] != 0 {
			return ErrReservedBits
		}
		return f.setText(b[8:])
	case protocol.FrameSubscribe:
		if len(b) < 6 {
			return ErrTruncatedBody
		}
		f.Corr = be.Uint32(b)
		f.Options = b[4]
		if b[4] != 0 || b[5] != 0 {
			return ErrReservedBits
		}
		return f.setPattern(b[6:])
	case protocol.FrameUnsubscribe:
		if len(b) < 4 {
			return ErrTruncatedBody
		}
		f.Corr = be.Uint32(b)
		return f.setPattern(b[4:])
	case protocol.FrameData:
		if len(b) < 8 {
			return ErrTruncatedBody
		}
		f.Route = be.Uint32(b)
		f.Corr = be.Uint32(b[4:])
		return f.parseOptional(b[8:])
	case protocol.FramePublish, protocol.FrameDirect:
		if len(b) < 6 {
			return ErrTruncatedBody
		}
		f.Corr = be.Uint32(b)
		nl := int(be.Uint16(b[4:]))
		if nl > nameLimit(f.Type) {
			return ErrFieldTooLong
		}
		if len(b) < 6+nl {
			return ErrTruncatedBody
		}
		if nl > 0 {
			f.Name = b[6 : 6+nl : 6+nl]
		}
		return f.parseOptional(b[6+nl:])
	}
	return ErrUnknownType
}

const (
	ackLen     = 24
	confirmLen = 12
)

func nameLimit(t protocol.FrameType) int {
	if t == protocol.FrameDirect {
		return protocol.MaxClientIDLen
	}
	return protocol.MaxTopicLen
}

func (f *Frame) setText(b []byte) error {
	if len(b) > protocol.MaxReasonLen {
		return ErrFieldTooLong
	}
	if len(b) > 0 {
		f.Payload = b
	}
	return nil
}

func (f *Frame) setPattern(b []byte) error {
	if len(b) == 0 {
		return ErrBadValue
	}
	if len(b) > protocol.MaxTopicLen {
		return ErrFieldTooLong
	}
	f.Name = b
	return nil
}

// parseOptional reads the fields announced by the flags of a message frame,
// in ascending bit order (SPEC §3.3), and the payload after them.
func (f *Frame) parseOptional(b []byte) error {
	be := binary.BigEndian
	if f.Flags&protocol.FlagReliable != 0 {
		if len(b) < 8 {
			return ErrTruncatedBody
		}
		f.Seq = be.Uint64(b)
		b = b[8:]
	}
	// SPEC §12.1: Seq 0 is never valid. SPEC §6.1: a response names the
	// request it answers.
	if (f.Flags&protocol.FlagReliable != 0 && f.Seq == 0) || (f.Flags&protocol.FlagResponse != 0 && f.Corr == 0) {
		return ErrBadValue
	}
	if f.Flags&protocol.FlagFragment != 0 {
		if len(b) < 12 {
			return ErrTruncatedBody
		}
		f.MsgID = be.Uint32(b)
		f.Offset = be.Uint32(b[4:])
		f.Total = be.Uint32(b[8:])
		b = b[12:]
	}
	if f.Flags&protocol.FlagExpiry != 0 {
		if len(b) < 4 {
			return ErrTruncatedBody
		}
		f.TTL = be.Uint32(b)
		b = b[4:]
	}
	if f.Flags&protocol.FlagKeyed != 0 {
		if len(b) < 8 {
			return ErrTruncatedBody
		}
		// SPEC §3.3, §6.5: Key 0 is never valid.
		if f.Opaque = be.Uint64(b); f.Opaque == 0 {
			return ErrBadValue
		}
		b = b[8:]
	}
	if len(b) > 0 {
		f.Payload = b
	}
	if f.Flags&protocol.FlagFragment != 0 {
		// SPEC §10.3: the checks that need no reassembly state.
		if f.Total == 0 {
			return ErrFragmentTotal
		}
		if len(b) == 0 {
			return ErrFragmentEmpty
		}
		if f.Offset >= f.Total ||
			(f.Flags&protocol.FlagCompressed == 0 && uint64(f.Offset)+uint64(len(b)) > uint64(f.Total)) {
			return ErrFragmentOverrun
		}
	}
	return nil
}

// Key returns the idempotency key of a message frame with FlagKeyed (SPEC
// §6.5), held in Opaque, and 0 for any other frame: 0 is never a key.
func (f *Frame) Key() uint64 {
	if f.Flags&protocol.FlagKeyed == 0 || !f.Type.IsMessage() {
		return 0
	}
	return f.Opaque
}

// IsExpiredPlaceholder reports whether f is the stand-in a sender replays,
// after a session resumes, for a reliable frame whose message expired while
// unacknowledged (SPEC §12.8): a message frame, RELIABLE and EXPIRY with a
// TTL of 0, neither FRAGMENT nor COMPRESSED, with no payload. It keeps
// KEYED and the Key when the frame it stands in for had them. It fills its
// Seq; the receiver acknowledges it and drops it as expired (§6.4), without
// looking its key up (§6.5), and it ends a partial reliable message on its
// lane instead of interrupting it (§10.3 rule 4).
func (f *Frame) IsExpiredPlaceholder() bool {
	const mask = protocol.FlagReliable | protocol.FlagExpiry | protocol.FlagFragment | protocol.FlagCompressed
	return f.Type.IsMessage() && f.Flags&mask == protocol.FlagReliable|protocol.FlagExpiry &&
		f.TTL == 0 && len(f.Payload) == 0
}

// fieldsLen is the size of the body before the payload (for SUBSCRIBE and
// UNSUBSCRIBE, before the pattern).
func (f *Frame) fieldsLen() int {
	switch f.Type {
	case protocol.FramePing, protocol.FramePong:
		return 8
	case protocol.FrameAck:
		return ackLen
	case protocol.FrameConfirm:
		return confirmLen
	case protocol.FrameBatch, protocol.FrameError, protocol.FrameUnsubscribe:
		return 4
	case protocol.FrameGoAway, protocol.FrameResult, protocol.FrameData:
		return 8
	case protocol.FrameSubscribe:
		return 6
	case protocol.FramePublish, protocol.FrameDirect:
		return 6 + len(f.Name)
	}
	return 0
}

func (f *Frame) optionalLen() int {
	n := 0
	if f.Flags&protocol.FlagReliable != 0 {
		n += 8
	}
	if f.Flags&protocol.FlagFragment != 0 {
		n += 12
	}
	if f.Flags&protocol.FlagExpiry != 0 {
		n += 4
	}
	if f.Flags&protocol.FlagKeyed != 0 {
		n += 8
	}
	return n
}

// HeaderLen is the size of the frame without its payload: what AppendHeader
// writes.
func (f *Frame) HeaderLen() int {
	n := protocol.HeaderSize + f.fieldsLen()
	if f.Type.IsMessage() {
		n += f.optionalLen()
	}
	if f.Type == protocol.FrameSubscribe || f.Type == protocol.FrameUnsubscribe {
		n += len(f.Name)
	}
	return n
}

// Len is the size of the encoded frame, length prefix included.
func (f *Frame) Len() int {
	n := f.HeaderLen()
	if f.Type != protocol.FrameSubscribe && f.Type != protocol.FrameUnsubscribe {
		n += len(f.Payload)
	}
	return n
}

// Append appends the encoded frame to b and returns the extended slice. It
// trusts the fields: use Check first on values that did not come from this
// package's own logic.
func (f *Frame) Append(b []byte) []byte {
	b = f.AppendHeader(b)
	if f.Type == protocol.FrameSubscribe || f.Type == protocol.FrameUnsubscribe {
		return b
	}
	return append(b, f.Payload...)
}

// AppendHeader appends everything but the payload, with the length prefix
// counting the payload: a writer can then hand the payload to writev as a
// separate slice without copying it.
func (f *Frame) AppendHeader(b []byte) []byte {
	be := binary.BigEndian
	n := f.Len()
	b = be.AppendUint32(b, uint32(n-protocol.LengthSize))
	b = append(b, byte(f.Type), byte(f.Flags), byte(f.Lane))
	switch f.Type {
	case protocol.FramePing, protocol.FramePong:
		b = be.AppendUint64(b, f.Opaque)
	case protocol.FrameAck:
		b = append(b, byte(f.AckLane), 0, 0, 0)
		b = be.AppendUint32(b, f.AckDelay)
		b = be.AppendUint64(b, f.Cumulative)
		b = be.AppendUint64(b, f.Selective)
	case protocol.FrameConfirm:
		b = append(b, byte(f.AckLane), byte(f.Verdict), 0, 0)
		b = be.AppendUint64(b, f.Seq)
	case protocol.FrameBatch:
		b = be.AppendUint16(b, f.Count)
		b = append(b, 0, 0)
	case protocol.FrameError:
		b = be.AppendUint16(b, uint16(f.Code))
		b = append(b, 0, 0)
	case protocol.FrameGoAway:
		b = be.AppendUint16(b, uint16(f.Code))
		b = append(b, 0, 0)
		b = be.AppendUint32(b, f.ReconnectAfter)
	case protocol.FrameResult:
		b = be.AppendUint32(b, f.Corr)
		b = be.AppendUint16(b, uint16(f.Code))
		b = append(b, 0, 0)
	case protocol.FrameSubscribe:
		b = be.AppendUint32(b, f.Corr)
		b = append(b, f.Options, 0)
		b = append(b, f.Name...)
	case protocol.FrameUnsubscribe:
		b = be.AppendUint32(b, f.Corr)
		b = append(b, f.Name...)
	case protocol.FrameData:
		b = be.AppendUint32(b, f.Route)
		b = be.AppendUint32(b, f.Corr)
		b = f.appendOptional(b)
	case protocol.FramePublish, protocol.FrameDirect:
		b = be.AppendUint32(b, f.Corr)
		b = be.AppendUint16(b, uint16(len(f.Name)))
		b = append(b, f.Name...)
		b = f.appendOptional(b)
	}
	return b
}

func (f *Frame) appendOptional(b []byte) []byte {
	be := binary.BigEndian
	if f.Flags&protocol.FlagReliable != 0 {
		b = be.AppendUint64(b, f.Seq)
	}
	if f.Flags&protocol.FlagFragment != 0 {
		b = be.AppendUint32(b, f.MsgID)
		b = be.AppendUint32(b, f.Offset)
		b = be.AppendUint32(b, f.Total)
	}
	if f.Flags&protocol.FlagExpiry != 0 {
		b = be.AppendUint32(b, f.TTL)
	}
	if f.Flags&protocol.FlagKeyed != 0 {
		b = be.AppendUint64(b, f.Opaque)
	}
	return b
}

// Check reports whether f would encode to a frame that a receiver with
// limit maxFrameSize accepts: known type, allowed flags and lane, field
// lengths within their limits. It is for fields that came from outside
// (an application, a test); the encoders trust their input.
func (f *Frame) Check(maxFrameSize int) error {
	if !f.Type.Known() {
		return ErrUnknownType
	}
	if f.Flags&^protocol.AllowedFlags(f.Type) != 0 {
		return ErrReservedFlags
	}
	if f.Flags&protocol.FlagAppAck != 0 && f.Flags&protocol.FlagReliable == 0 {
		return ErrAppAckUnreliable
	}
	if !protocol.LaneAllowed(f.Type, f.Lane) {
		return ErrBadLane
	}
	if f.Len() > maxFrameSize {
		return ErrFrameTooLarge
	}
	switch f.Type {
	case protocol.FramePublish, protocol.FrameDirect:
		if len(f.Name) > nameLimit(f.Type) {
			return ErrFieldTooLong
		}
	case protocol.FrameSubscribe, protocol.FrameUnsubscribe:
		if len(f.Name) == 0 {
			return ErrBadValue
		}
		if len(f.Name) > protocol.MaxTopicLen {
			return ErrFieldTooLong
		}
		if f.Options != 0 {
			return ErrReservedBits
		}
	case protocol.FrameError, protocol.FrameGoAway, protocol.FrameResult:
		if len(f.Payload) > protocol.MaxReasonLen {
			return ErrFieldTooLong
		}
	case protocol.FrameAck:
		if f.AckLane < protocol.LaneInteractive || f.AckLane >= protocol.NumLanes {
			return ErrBadValue
		}
	case protocol.FrameConfirm:
		if f.AckLane < protocol.LaneInteractive || f.AckLane >= protocol.NumLanes || !f.Verdict.Known() || f.Seq == 0 {
			return ErrBadValue
		}
	case protocol.FrameGapReport:
		if len(f.Payload) < GapReportLen {
			return ErrTruncatedBody
		}
		if len(f.Payload) > GapReportLen {
			return ErrTrailingBytes
		}
	case protocol.FrameBatch:
		if f.Count == 0 || f.Count > protocol.MaxBatchFrames {
			return ErrBatchCount
		}
	}
	if (f.Flags&protocol.FlagReliable != 0 && f.Seq == 0) || (f.Flags&protocol.FlagResponse != 0 && f.Corr == 0) ||
		(f.Flags&protocol.FlagKeyed != 0 && f.Opaque == 0) {
		return ErrBadValue
	}
	if f.Flags&protocol.FlagFragment != 0 {
		if f.Total == 0 {
			return ErrFragmentTotal
		}
		if len(f.Payload) == 0 {
			return ErrFragmentEmpty
		}
		if f.Offset >= f.Total {
			return ErrFragmentOverrun
		}
	}
	return nil
}
