package codec

import (
	"encoding/binary"

	"github.com/ferry-proto/ferry/protocol"
)

// batchFixed is the size of a BATCH's fixed fields: Count (16), Reserved (16).
const batchFixed = 4

// BatchHeaderLen is the size of a BATCH frame before its inner frames.
const BatchHeaderLen = protocol.HeaderSize + batchFixed

// BatchWriter packs small frames into one BATCH frame (SPEC §9), appending
// to a caller-owned buffer:
//
//	var w codec.BatchWriter
//	buf = w.Begin(buf, lane, peerMaxFrameSize)
//	for ... { if !w.Add(&f) { break } }
//	buf, scratch = w.Finish(compress, scratch)
//
// A BatchWriter belongs to one goroutine. It allocates only when the buffer
// it is given must grow.
type BatchWriter struct {
	buf   []byte
	start int
	count int
	limit int
	lane  protocol.Lane
}

// Begin starts a batch at the end of dst for a peer whose maximum frame size
// is maxFrameSize. It returns the buffer, whose tail it now owns until
// Finish.
func (w *BatchWriter) Begin(dst []byte, lane protocol.Lane, maxFrameSize int) []byte {
	w.start = len(dst)
	w.count = 0
	w.limit = maxFrameSize
	w.lane = lane
	w.buf = append(dst, make([]byte, BatchHeaderLen)...)
	return w.buf
}

// Fits reports whether a frame of n encoded bytes would fit in the batch.
func (w *BatchWriter) Fits(n int) bool {
	return w.count < protocol.MaxBatchFrames && len(w.buf)-w.start+n <= w.limit
}

// Add appends f to the batch, or reports false when it may not be batched
// (SPEC §9: no BATCH, HELLO, WELCOME, FRAGMENT or COMPRESSED inside) or no
// longer fits.
func (w *BatchWriter) Add(f *Frame) bool {
	if !Batchable(f) || !w.Fits(f.Len()) {
		return false
	}
	w.buf = f.Append(w.buf)
	w.count++
	return true
}

// AddEncoded appends one already encoded frame. The caller vouches that it
// is batchable (see Batchable).
func (w *BatchWriter) AddEncoded(frame []byte) bool {
	if !w.Fits(len(frame)) {
		return false
	}
	w.buf = append(w.buf, frame...)
	w.count++
	return true
}

// Count is the number of frames added since Begin.
func (w *BatchWriter) Count() int { return w.count }

// Finish completes the batch and returns the buffer. With compress set, the
// inner frames are compressed as a whole when that saves bytes, using
// scratch (returned, perhaps grown, for reuse). An empty batch leaves
// nothing; a batch of one frame is unwrapped into that frame, since a BATCH
// would only add bytes.
func (w *BatchWriter) Finish(compress bool, scratch []byte) (out, scratchOut []byte) {
	b := w.buf
	w.buf = nil
	switch w.count {
	case 0:
		return b[:w.start], scratch
	case 1:
		n := copy(b[w.start:], b[w.start+BatchHeaderLen:])
		return b[:w.start+n], scratch
	}
	flags := protocol.Flags(0)
	if compress {
		inner := b[w.start+BatchHeaderLen:]
		var ok bool
		scratch, ok = AppendMaybeCompressed(scratch[:0], inner)
		if ok {
			flags = protocol.FlagCompressed
			b = append(b[:w.start+BatchHeaderLen], scratch...)
		}
	}
	h := b[w.start:]
	binary.BigEndian.PutUint32(h, uint32(len(h)-protocol.LengthSize))
	h[4] = byte(protocol.FrameBatch)
	h[5] = byte(flags)
	h[6] = byte(w.lane)
	binary.BigEndian.PutUint16(h[7:], uint16(w.count))
	h[9], h[10] = 0, 0
	return b, scratch
}

// Batchable reports whether f may travel inside a BATCH (SPEC §9).
func Batchable(f *Frame) bool {
	switch f.Type {
	case protocol.FrameBatch, protocol.FrameHello, protocol.FrameWelcome:
		return false
	}
	return f.Flags&(protocol.FlagCompressed|protocol.FlagFragment) == 0
}

// BatchIter walks the inner frames of a BATCH. Get one from
// Decoder.Batch; the frames it returns alias the inner bytes.
type BatchIter struct {
	d    Decoder
	rest []byte
	left int
}

// Batch returns an iterator over the inner frames of the BATCH f. inner is
// f.Payload, or its decompressed form when f is COMPRESSED (decompress with
// AppendDecompressed and the receiver's max frame size as the limit).
func (d *Decoder) Batch(f *Frame, inner []byte) BatchIter {
	return BatchIter{d: Decoder{Compression: d.Compression, inBatch: true}, rest: inner, left: int(f.Count)}
}

// Next returns the next inner frame, or ok == false at the end. Every inner
// frame is checked as a top-level frame is, plus the rules of SPEC §9; a
// batch whose frames overrun it, or whose frame count differs from Count,
// is an error.
func (it *BatchIter) Next() (f Frame, ok bool, err error) {
	if it.left == 0 {
		if len(it.rest) != 0 {
			return f, false, ErrBatchMismatch
		}
		return f, false, nil
	}
	if len(it.rest) == 0 {
		return f, false, ErrBatchMismatch
	}
	// An inner frame can be no larger than what is left of the batch.
	it.d.MaxFrameSize = len(it.rest)
	f, n, err := it.d.Decode(it.rest)
	if err != nil {
		if err == ErrNeedMore || err == ErrFrameTooLarge {
			err = ErrBatchOverrun
		}
		return f, false, err
	}
	it.rest = it.rest[n:]
	it.left--
	return f, true, nil
}
