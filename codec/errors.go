package codec

import (
	"errors"

	"github.com/ferry-proto/ferry/protocol"
)

// Error is a violation of FERRY/1 found in a peer's bytes. Code is what the
// receiver sends in its ERROR frame before closing (SPEC §13). The errors
// below are preallocated so that rejecting a frame allocates nothing.
type Error struct {
	Code protocol.ErrorCode
	msg  string
}

func (e *Error) Error() string { return "codec: " + e.msg }

// ErrNeedMore is returned by the decoders when the input holds only part of
// a frame: the caller keeps the bytes and calls again with more. It is not a
// protocol error.
var ErrNeedMore = errors.New("codec: need more bytes")

// Errors of the framing layer (SPEC §3), the frame bodies (§5-§7), batches
// (§9), fragments (§10) and compression (§11).
var (
	ErrFrameTooLarge     = &Error{protocol.CodeFrameTooLarge, "frame too large"}
	ErrFrameTooShort     = &Error{protocol.CodeProtocolError, "length prefix below minimum"}
	ErrUnknownType       = &Error{protocol.CodeProtocolError, "unknown frame type"}
	ErrReservedFlags     = &Error{protocol.CodeProtocolError, "flag not allowed for frame type"}
	ErrAppAckUnreliable  = &Error{protocol.CodeProtocolError, "APP_ACK without RELIABLE"}
	ErrReservedBits      = &Error{protocol.CodeProtocolError, "reserved bits set"}
	ErrBadLane           = &Error{protocol.CodeProtocolError, "frame type not allowed on lane"}
	ErrTruncatedBody     = &Error{protocol.CodeProtocolError, "frame body shorter than its fields"}
	ErrTrailingBytes     = &Error{protocol.CodeProtocolError, "bytes after the last field"}
	ErrFieldTooLong      = &Error{protocol.CodeProtocolError, "field longer than its limit"}
	ErrBadValue          = &Error{protocol.CodeProtocolError, "field value out of range"}
	ErrUnsupportedVer    = &Error{protocol.CodeUnsupportedVersion, "unsupported protocol version"}
	ErrCompressionOff    = &Error{protocol.CodeProtocolError, "compressed frame but compression not negotiated"}
	ErrBatchCount        = &Error{protocol.CodeProtocolError, "batch frame count out of range"}
	ErrBatchOverrun      = &Error{protocol.CodeProtocolError, "batch inner frame overruns the batch"}
	ErrBatchMismatch     = &Error{protocol.CodeProtocolError, "batch holds a different number of frames than its count"}
	ErrBatchInner        = &Error{protocol.CodeProtocolError, "frame not allowed inside a batch"}
	ErrFragmentTotal     = &Error{protocol.CodeProtocolError, "fragment total length is zero"}
	ErrFragmentEmpty     = &Error{protocol.CodeProtocolError, "fragment carries no data"}
	ErrFragmentOrder     = &Error{protocol.CodeProtocolError, "fragment out of order"}
	ErrFragmentMismatch  = &Error{protocol.CodeProtocolError, "fragment does not match its message"}
	ErrFragmentOverrun   = &Error{protocol.CodeProtocolError, "fragment data exceeds the total length"}
	ErrFragmentInterrupt = &Error{protocol.CodeProtocolError, "lane has a partial message"}
	ErrMessageTooLarge   = &Error{protocol.CodeMessageTooLarge, "message larger than the limit"}
	ErrFragmentLimit     = &Error{protocol.CodeFragmentLimit, "reassembly limit reached"}
	ErrReassemblyTimeout = &Error{protocol.CodeReassemblyTimeout, "reassembly timed out"}
	ErrCorrupt           = &Error{protocol.CodeCompressionError, "corrupt snappy block"}
	ErrDecodedTooLarge   = &Error{protocol.CodeCompressionError, "decoded length over the limit"}
)

// CodeOf returns the error code a receiver sends for err: the code of a
// codec *Error, or INTERNAL for anything else.
func CodeOf(err error) protocol.ErrorCode {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return protocol.CodeInternal
}
