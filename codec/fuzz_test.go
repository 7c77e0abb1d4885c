package codec

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/ferry-proto/ferry/protocol"
)

// Fuzz targets for every parser of this package, seeded from docs/vectors.
// `make fuzz FUZZTIME=10m` runs each; `make test` runs each briefly.

func vectorSeeds(f *testing.F) {
	b, err := os.ReadFile(filepath.Join(vectorDir, "frames.json"))
	if err != nil {
		f.Fatal(err)
	}
	var file vecFile
	if err := json.Unmarshal(b, &file); err != nil {
		f.Fatal(err)
	}
	for _, v := range file.Vectors {
		raw, _ := hex.DecodeString(v.Hex)
		f.Add(raw)
	}
}

func messageSeeds(f *testing.F) {
	b, err := os.ReadFile(filepath.Join(vectorDir, "messages.json"))
	if err != nil {
		f.Fatal(err)
	}
	var file vecMsgFile
	if err := json.Unmarshal(b, &file); err != nil {
		f.Fatal(err)
	}
	for _, v := range file.Vectors {
		var stream []byte
		for _, h := range v.FramesHex {
			raw, _ := hex.DecodeString(h)
			stream = append(stream, raw...)
		}
		f.Add(stream)
	}
}

// FuzzDecode: any byte string either decodes to a frame that re-encodes to
// exactly the bytes it came from, or is "need more" for a proper prefix, or
// is a protocol error with a defined code. Nothing past the limit is read.
func FuzzDecode(f *testing.F) {
	vectorSeeds(f)
	// The delivery frames at their edges (SPEC §7.7, §7.8, §12): the
	// mutator reaches the errors from these in one byte.
	for _, fr := range []Frame{
		{Type: protocol.FrameConfirm, AckLane: 1, Verdict: protocol.ConfirmProcessed, Seq: 1},
		{Type: protocol.FrameConfirm, AckLane: 3, Verdict: protocol.ConfirmRejected, Seq: 1<<64 - 1},
		{Type: protocol.FrameGapReport, Payload: GapReport{1, 2, 3, 4, 5}.Append(nil)},
		{Type: protocol.FrameData, Flags: protocol.FlagReliable | protocol.FlagAppAck | protocol.FlagExpiry, Lane: 3, Seq: 1, TTL: 1, Payload: []byte("a")},
		{Type: protocol.FrameDirect, Flags: protocol.FlagReliable | protocol.FlagAppAck | protocol.FlagFragment, Lane: 2, Seq: 9, MsgID: 1, Total: 3, Name: []byte("p"), Payload: []byte("ab")},
		{Type: protocol.FramePublish, Flags: protocol.FlagReliable | protocol.FlagExpiry, Lane: 1, Seq: 4, Name: []byte("t")},
		// SPEC §6.5: keyed frames; the Key at 1 and at its maximum, after
		// every other optional field, and in a keyed placeholder.
		keyedData,
		keyedExpiry,
		{Type: protocol.FrameDirect, Flags: protocol.FlagReliable | protocol.FlagFragment | protocol.FlagExpiry | protocol.FlagAppAck | protocol.FlagKeyed,
			Lane: 3, Seq: 1, MsgID: 2, Total: 9, TTL: 1, Opaque: 1, Name: []byte("p"), Payload: []byte("abc")},
		{Type: protocol.FramePublish, Flags: protocol.FlagKeyed, Lane: 2, Opaque: 1<<64 - 1},
		{Type: protocol.FrameData, Flags: protocol.FlagReliable | protocol.FlagExpiry | protocol.FlagKeyed, Lane: 1, Seq: 2, Opaque: 3},
	} {
		f.Add(fr.Append(nil))
	}
	f.Add(withByte(AppendGapReport(nil, GapReport{}), 3, GapReportLen+protocol.MinLength+1))
	f.Add(batchOf(2, enc(Frame{Type: protocol.FrameConfirm, AckLane: 2, Seq: 7}), AppendGapReport(nil, GapReport{Expired: 1})))
	f.Add(batchOf(1, enc(keyedData)))
	f.Add(truncateFrame(enc(keyedExpiry), 8+len(keyedExpiry.Payload)))
	f.Fuzz(func(t *testing.T, b []byte) {
		d := Decoder{MaxFrameSize: 4096, Compression: true}
		fr, n, err := d.Decode(b)
		if err == ErrNeedMore {
			if n != 0 {
				t.Fatal("need more consumed bytes")
			}
			return
		}
		if err != nil {
			if !CodeOf(err).Known() || CodeOf(err) == protocol.CodeInternal {
				t.Fatalf("undefined error %v", err)
			}
			return
		}
		if n < protocol.HeaderSize || n > len(b) || n > d.MaxFrameSize {
			t.Fatalf("consumed %d of %d bytes", n, len(b))
		}
		if again := fr.Append(nil); !bytes.Equal(again, b[:n]) {
			t.Fatalf("re-encoded %x\nfrom %x", again, b[:n])
		}
		if fr.Len() != n {
			t.Fatalf("Len %d, consumed %d", fr.Len(), n)
		}
		// What decodes, Check accepts: the two apply the same rules.
		if err := fr.Check(d.MaxFrameSize); err != nil {
			t.Fatalf("decoded %s fails Check: %v", fr.Type, err)
		}
		// SPEC §3.3: APP_ACK only with RELIABLE.
		if fr.Flags.Has(protocol.FlagAppAck) && !fr.Flags.Has(protocol.FlagReliable) {
			t.Fatal("APP_ACK without RELIABLE decoded")
		}
		// SPEC §6.5: a Key only with KEYED, on a message frame, never 0;
		// a message frame's Opaque is its Key and nothing else.
		if fr.Flags.Has(protocol.FlagKeyed) != (fr.Key() != 0) {
			t.Fatalf("KEYED %v with Key %d", fr.Flags.Has(protocol.FlagKeyed), fr.Key())
		}
		if fr.Type.IsMessage() && fr.Opaque != fr.Key() {
			t.Fatalf("%s: Opaque %d beside Key %d", fr.Type, fr.Opaque, fr.Key())
		}
		// The receiver's further steps on this one frame.
		switch fr.Type {
		case protocol.FrameHello:
			if h, err := ParseHello(fr.Payload); err == nil && !bytes.Equal(h.Append(nil), fr.Payload) {
				t.Fatal("HELLO does not re-encode")
			}
		case protocol.FrameWelcome:
			if w, err := ParseWelcome(fr.Payload); err == nil && !bytes.Equal(w.Append(nil), fr.Payload) {
				t.Fatal("WELCOME does not re-encode")
			}
		case protocol.FrameConfirm:
			// SPEC §7.7: ConfirmLane 1 to 3, Verdict 0 or 1, Seq ≥ 1.
			if fr.AckLane < 1 || fr.AckLane > 3 || !fr.Verdict.Known() || fr.Seq == 0 || n != protocol.HeaderSize+confirmLen {
				t.Fatalf("CONFIRM out of range: %+v", fr)
			}
		case protocol.FrameGapReport:
			// SPEC §7.8: exactly 40 bytes, every value valid.
			g, err := ParseGapReport(fr.Payload)
			if err != nil || !bytes.Equal(AppendGapReport(nil, g), b[:n]) {
				t.Fatalf("GAP_REPORT body does not round-trip: %v", err)
			}
		}
	})
}

// FuzzBatch: the inner region of a BATCH, compressed or not, walks to its
// declared frames exactly or fails with a defined error.
func FuzzBatch(f *testing.F) {
	f.Add(uint16(3), false, bytes.Join([][]byte{innerAck, innerData, innerPub}, nil))
	f.Add(uint16(2), true, snappyOf(bytes.Join([][]byte{innerData, innerData}, nil)))
	f.Add(uint16(1), false, batchOf(1, innerData))
	f.Fuzz(func(t *testing.T, count uint16, compressed bool, inner []byte) {
		d := Decoder{MaxFrameSize: 4096, Compression: true}
		bf := Frame{Type: protocol.FrameBatch, Count: count, Payload: inner}
		if compressed {
			var err error
			if inner, err = AppendDecompressed(nil, inner, d.MaxFrameSize); err != nil {
				if CodeOf(err) != protocol.CodeCompressionError {
					t.Fatalf("decompress: %v", err)
				}
				return
			}
			if len(inner) > d.MaxFrameSize {
				t.Fatalf("decompressed %d bytes past the limit", len(inner))
			}
		}
		it := d.Batch(&bf, inner)
		var joined []byte
		seen := 0
		for {
			g, ok, err := it.Next()
			if err != nil {
				if !CodeOf(err).Known() || CodeOf(err) == protocol.CodeInternal {
					t.Fatalf("undefined error %v", err)
				}
				return
			}
			if !ok {
				break
			}
			if !Batchable(&g) {
				t.Fatalf("batch yielded a %s that may not be batched", g.Type)
			}
			seen++
			joined = g.Append(joined)
		}
		if seen != int(count) || !bytes.Equal(joined, inner) {
			t.Fatalf("walked %d frames of %d, re-encoded %d of %d bytes", seen, count, len(joined), len(inner))
		}
	})
}

// FuzzReassembly: a stream of frames fed to a Reassembler with small limits
// never makes it hold more than its budget, and every message it delivers
// has the length its fragments declared.
func FuzzReassembly(f *testing.F) {
	messageSeeds(f)
	f.Fuzz(func(t *testing.T, stream []byte) {
		d := Decoder{MaxFrameSize: 4096, Compression: true}
		lim := ReassemblyLimits{MaxFrameSize: 4096, MaxMessageSize: 2048, MaxPartial: 2, MaxBytes: 3000, Timeout: 1000}
		r := NewReassembler(lim)
		now := int64(0)
		for len(stream) > 0 {
			fr, n, err := d.Decode(stream)
			if err != nil {
				return
			}
			stream = stream[n:]
			now += 10
			if !fr.Type.IsMessage() {
				continue
			}
			msg, done, err := r.Add(&fr, now)
			if r.Reserved() > lim.MaxBytes || r.Partial() > lim.MaxPartial {
				t.Fatalf("reserved %d partial %d over limits", r.Reserved(), r.Partial())
			}
			// Partial data, at most one retained buffer per lane, one scratch.
			if max := lim.MaxBytes + 3*retainCap + lim.MaxFrameSize + 3*protocol.MaxTopicLen; r.Buffered() > max {
				t.Fatalf("holds %d bytes, bound %d", r.Buffered(), max)
			}
			if err != nil {
				if !CodeOf(err).Known() || CodeOf(err) == protocol.CodeInternal {
					t.Fatalf("undefined error %v", err)
				}
				return
			}
			if done && fr.Flags.Has(protocol.FlagFragment) && len(msg) != int(fr.Total) {
				t.Fatalf("delivered %d bytes of a %d-byte message", len(msg), fr.Total)
			}
			if done && len(msg) > lim.MaxMessageSize && fr.Flags.Has(protocol.FlagFragment) {
				t.Fatalf("delivered %d bytes over the max message size", len(msg))
			}
			_ = r.Expire(now)
		}
	})
}

// FuzzDecompress: no block decodes past its limit, and what decodes
// survives a round trip through our encoder.
func FuzzDecompress(f *testing.F) {
	f.Add(snappyRef, 100)
	f.Add(snappyOf(payloads(4096)["json"]), 4096)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f, 0x00}, 1<<20)
	f.Fuzz(func(t *testing.T, block []byte, limit int) {
		limit = max(0, min(limit, 1<<20))
		out, err := AppendDecompressed(nil, block, limit)
		if err != nil {
			if CodeOf(err) != protocol.CodeCompressionError {
				t.Fatalf("undefined error %v", err)
			}
			return
		}
		if len(out) > limit {
			t.Fatalf("decoded %d bytes past limit %d", len(out), limit)
		}
		again, err := AppendDecompressed(nil, AppendCompressed(nil, out), len(out))
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// FuzzHello: HELLO bodies parse or fail with a defined error, and what
// parses re-encodes to the same bytes.
func FuzzHello(f *testing.F) {
	f.Add(helloFull.Append(nil))
	f.Add(helloResume.Append(nil))
	f.Add((&Welcome{Version: 1, SessionPresent: true}).Append(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		if h, err := ParseHello(b); err == nil {
			if !bytes.Equal(h.Append(nil), b) {
				t.Fatal("HELLO does not re-encode")
			}
		} else if !CodeOf(err).Known() || CodeOf(err) == protocol.CodeInternal {
			t.Fatalf("undefined error %v", err)
		}
		if w, err := ParseWelcome(b); err == nil && !bytes.Equal(w.Append(nil), b) {
			t.Fatal("WELCOME does not re-encode")
		}
	})
}
