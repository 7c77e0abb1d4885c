package offline

import (
	"encoding/binary"
	"errors"
)

// GapReportLen is the encoded size of a GapReport.
const GapReportLen = 40

// ErrGapReportSize is returned by ParseGapReport for a body that is not
// exactly GapReportLen bytes.
var ErrGapReportSize = errors.New("offline: gap report is not 40 bytes")

// GapReport tells a resuming client what became of the messages queued for
// it while it was away, so that no loss is silent. Each message pushed is
// counted once: as Delivered when Pop returns it, or in exactly one of the
// four drop counters.
//
// On the wire (the proposed GAP_REPORT body; SPEC §12.4 reserves frame type
// 0x10 and leaves its layout to the delivery revision), five big-endian
// uint64 in this order:
//
//	+-------------------------------+
//	|       Delivered (64)          |  0
//	+-------------------------------+
//	|       DroppedCount (64)       |  8
//	+-------------------------------+
//	|       DroppedBytes (64)       | 16
//	+-------------------------------+
//	|       DroppedAge (64)         | 24
//	+-------------------------------+
//	|       Expired (64)            | 32
//	+-------------------------------+
type GapReport struct {
	Delivered    uint64 // returned by Pop
	DroppedCount uint64 // oldest, dropped to stay within MaxCount
	DroppedBytes uint64 // oldest dropped to stay within MaxBytes, or a message larger than MaxBytes
	DroppedAge   uint64 // older than MaxAge
	Expired      uint64 // reached the message's own expiry
}

// Lost returns the number of messages dropped for any reason.
func (g GapReport) Lost() uint64 {
	return g.DroppedCount + g.DroppedBytes + g.DroppedAge + g.Expired
}

// Len returns GapReportLen, the size Append adds.
func (g GapReport) Len() int { return GapReportLen }

// Append appends the wire form of g to b.
func (g GapReport) Append(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, g.Delivered)
	b = binary.BigEndian.AppendUint64(b, g.DroppedCount)
	b = binary.BigEndian.AppendUint64(b, g.DroppedBytes)
	b = binary.BigEndian.AppendUint64(b, g.DroppedAge)
	return binary.BigEndian.AppendUint64(b, g.Expired)
}

// ParseGapReport decodes the wire form of a gap report: b must be exactly
// GapReportLen bytes (a frame body; the codec has already split frames), else
// ErrGapReportSize. Every value of the five counters is valid.
func ParseGapReport(b []byte) (GapReport, error) {
	if len(b) != GapReportLen {
		return GapReport{}, ErrGapReportSize
	}
	return GapReport{
		Delivered:    binary.BigEndian.Uint64(b[0:]),
		DroppedCount: binary.BigEndian.Uint64(b[8:]),
		DroppedBytes: binary.BigEndian.Uint64(b[16:]),
		DroppedAge:   binary.BigEndian.Uint64(b[24:]),
		Expired:      binary.BigEndian.Uint64(b[32:]),
	}, nil
}
