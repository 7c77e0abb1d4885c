// Package codec turns FERRY/1 frames into bytes and bytes into frames
// (docs/SPEC.md). It touches no sockets and no io.Reader: callers hand it
// byte slices, and it says how many bytes a frame took.
//
// Decoding is a loop over whatever bytes have arrived:
//
//	d := codec.NewDecoder() // 64 KiB frames until the handshake is done
//	for {
//		f, n, err := d.Decode(buf)
//		if err == codec.ErrNeedMore {
//			break // keep buf, read more
//		}
//		if err != nil {
//			// send ERROR with codec.CodeOf(err), then close
//		}
//		handle(&f) // f's slices alias buf
//		buf = buf[n:]
//	}
//
// Encoding appends to a caller-owned buffer (Frame.Append, AppendHello,
// BatchWriter) or a pooled one (EncodePooled).
//
// What else is here: BATCH packing and iteration (batch.go), a Fragmenter
// and a Reassembler with limits and memory accounting (fragment.go), the
// snappy block compression with its decoded-length guard (compress.go), and
// the GAP_REPORT body (gapreport.go). The delivery state machines built on
// these frames live in codec/seqwin (sequence windows, ACKs) and codec/rtt
// (RTT, probes, redelivery backoff).
//
// Limits: a frame larger than Decoder.MaxFrameSize is rejected from its
// length prefix alone; a compressed payload is never decoded past its limit;
// the Reassembler reserves a message's declared length against its budget
// before it allocates anything. Decoding a plain frame allocates nothing.
//
// Goroutines: Decoder, BatchWriter, Fragmenter and Reassembler are values
// owned by one goroutine at a time (the connection's event loop); the
// package has no global mutable state besides the buffer pool, which is
// safe from any goroutine.
package codec
