package codec

import (
	"encoding/binary"

	"github.com/ferry-proto/ferry/protocol"
)

// GapReportLen is the size of a GAP_REPORT body: five uint64 counters
// (SPEC §7.8).
const GapReportLen = 40

// GapReport is the body of a GAP_REPORT frame: what became of the reliable
// messages a server queued for a session while it had no connection, so that
// no loss is silent (SPEC §7.8, §12.9). Each queued message is counted once:
// as Delivered when the server takes it from the queue to send it, or in
// exactly one of the four drop counters.
//
// On the wire, five big-endian uint64 in this order:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                         Delivered (64)                        |  0
//	+---------------------------------------------------------------+
//	|                       DroppedCount (64)                       |  8
//	+---------------------------------------------------------------+
//	|                       DroppedBytes (64)                       | 16
//	+---------------------------------------------------------------+
//	|                        DroppedAge (64)                        | 24
//	+---------------------------------------------------------------+
//	|                          Expired (64)                         | 32
//	+---------------------------------------------------------------+
//
// It is a plain value, safe from any goroutine.
type GapReport struct {
	Delivered    uint64 // taken from the queue to be sent
	DroppedCount uint64 // oldest, dropped to stay within the queue's message count
	DroppedBytes uint64 // oldest dropped to stay within its byte bound, or larger than the bound
	DroppedAge   uint64 // older than the queue's age bound
	Expired      uint64 // reached the message's own expiry (TTL, SPEC §6.4)
}

// ErrGapReportSize is returned by ParseGapReport for a body that is not
// exactly GapReportLen bytes (SPEC §7.8: PROTOCOL_ERROR).
var ErrGapReportSize = &Error{protocol.CodeProtocolError, "gap report is not 40 bytes"}

// Lost returns the number of messages dropped for any reason.
func (g GapReport) Lost() uint64 {
	return g.DroppedCount + g.DroppedBytes + g.DroppedAge + g.Expired
}

// Len returns GapReportLen, the size Append adds.
func (g GapReport) Len() int { return GapReportLen }

// Append appends the wire form of g (a GAP_REPORT body) to b. Send it as
// Frame{Type: protocol.FrameGapReport, Payload: g.Append(buf)}.
func (g GapReport) Append(b []byte) []byte {
	be := binary.BigEndian
	b = be.AppendUint64(b, g.Delivered)
	b = be.AppendUint64(b, g.DroppedCount)
	b = be.AppendUint64(b, g.DroppedBytes)
	b = be.AppendUint64(b, g.DroppedAge)
	return be.AppendUint64(b, g.Expired)
}

// AppendGapReport appends a whole GAP_REPORT frame (header and body) to b.
func AppendGapReport(b []byte, g GapReport) []byte {
	f := Frame{Type: protocol.FrameGapReport}
	b = appendControlHeader(b, &f, GapReportLen)
	return g.Append(b)
}

// ParseGapReport decodes a GAP_REPORT body, the Payload of a decoded
// GAP_REPORT frame (which Decode has already checked to be GapReportLen
// bytes). Any other length gives ErrGapReportSize. Every value of the five
// counters is valid. It does not allocate.
func ParseGapReport(b []byte) (GapReport, error) {
	if len(b) != GapReportLen {
		return GapReport{}, ErrGapReportSize
	}
	be := binary.BigEndian
	return GapReport{
		Delivered:    be.Uint64(b[0:]),
		DroppedCount: be.Uint64(b[8:]),
		DroppedBytes: be.Uint64(b[16:]),
		DroppedAge:   be.Uint64(b[24:]),
		Expired:      be.Uint64(b[32:]),
	}, nil
}
