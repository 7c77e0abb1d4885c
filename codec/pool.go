package codec

import "github.com/valyala/bytebufferpool"

// Buffer is a pooled byte buffer; B is its contents.
type Buffer = bytebufferpool.ByteBuffer

// GetBuffer returns an empty pooled buffer. Return it with PutBuffer once
// nothing refers to its bytes any more.
func GetBuffer() *Buffer { return bytebufferpool.Get() }

// PutBuffer returns a buffer to the pool.
func PutBuffer(b *Buffer) { bytebufferpool.Put(b) }

// EncodePooled encodes f into a pooled buffer: the caller owns the buffer
// and returns it with PutBuffer after the bytes were written out.
func EncodePooled(f *Frame) *Buffer {
	b := bytebufferpool.Get()
	b.B = f.Append(b.B[:0])
	return b
}
