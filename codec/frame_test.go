package codec

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"reflect"
	"testing"
	"unsafe"

	"github.com/ferry-proto/ferry/protocol"
)

// validFrames are the valid single-frame vectors, as bytes, with the
// receiver settings they need.
func validFrames(t testing.TB) []frameCase {
	var out []frameCase
	for _, c := range frameCases() {
		if c.frame != nil {
			out = append(out, c)
		}
	}
	if len(out) < 30 {
		t.Fatalf("only %d valid cases", len(out))
	}
	return out
}

func decoderFor(c frameCase) Decoder {
	d := Decoder{MaxFrameSize: protocol.DefaultMaxFrameSize, Compression: c.compression}
	if c.maxFrame != 0 {
		d.MaxFrameSize = c.maxFrame
	}
	return d
}

// SPEC §3.2: every proper prefix of a valid frame is "need more", never an
// error or a panic.
func TestDecodeEveryPrefixNeedsMore(t *testing.T) {
	for _, c := range validFrames(t) {
		b := c.frame.Append(nil)
		d := decoderFor(c)
		for i := 0; i < len(b); i++ {
			if _, n, err := d.Decode(b[:i]); !errors.Is(err, ErrNeedMore) || n != 0 {
				t.Fatalf("%s: prefix of %d/%d bytes: n=%d err=%v", c.name, i, len(b), n, err)
			}
		}
	}
}

// A stream of all valid frames, split at every byte boundary into two
// reads, decodes to the same frames as the stream read whole.
func TestDecodeSplitAtEveryBoundary(t *testing.T) {
	var stream []byte
	var want []string
	for _, c := range validFrames(t) {
		if c.compression || c.maxFrame != 0 {
			continue
		}
		b := c.frame.Append(nil)
		stream = append(stream, b...)
		want = append(want, hex.EncodeToString(b))
	}
	d := NewDecoder()
	for split := 0; split <= len(stream); split++ {
		var got []string
		var pending []byte
		for _, chunk := range [][]byte{stream[:split], stream[split:]} {
			pending = append(pending, chunk...)
			for {
				_, n, err := d.Decode(pending)
				if errors.Is(err, ErrNeedMore) {
					break
				}
				if err != nil {
					t.Fatalf("split %d: %v", split, err)
				}
				got = append(got, hex.EncodeToString(pending[:n]))
				pending = pending[n:]
			}
		}
		if len(pending) != 0 || len(got) != len(want) {
			t.Fatalf("split %d: %d frames, %d bytes left; want %d frames", split, len(got), len(pending), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("split %d: frame %d differs", split, i)
			}
		}
	}
}

// Decoding, re-encoding and decoding again is the identity, for every valid
// case and for frames built from random field values.
func TestRoundTrip(t *testing.T) {
	for _, c := range validFrames(t) {
		b := c.frame.Append(nil)
		d := decoderFor(c)
		f, n, err := d.Decode(b)
		if err != nil || n != len(b) {
			t.Fatalf("%s: n=%d err=%v", c.name, n, err)
		}
		if again := f.Append(nil); !bytes.Equal(again, b) {
			t.Fatalf("%s: re-encoded\n %x\nwant %x", c.name, again, b)
		}
		if f.Len() != len(b) || f.HeaderLen() > len(b) {
			t.Fatalf("%s: Len %d HeaderLen %d for %d bytes", c.name, f.Len(), f.HeaderLen(), len(b))
		}
		if err := f.Check(d.MaxFrameSize); err != nil {
			t.Fatalf("%s: Check: %v", c.name, err)
		}
	}
}

func TestAppendHeaderThenPayload(t *testing.T) {
	f := reliableData
	f.Flags |= protocol.FlagExpiry
	f.TTL = 9
	h := f.AppendHeader(nil)
	if len(h) != f.HeaderLen() {
		t.Fatalf("AppendHeader wrote %d bytes, HeaderLen %d", len(h), f.HeaderLen())
	}
	if got := append(h, f.Payload...); !bytes.Equal(got, f.Append(nil)) {
		t.Fatal("header + payload differs from Append")
	}
}

func TestDecodeTable(t *testing.T) {
	ping := Frame{Type: protocol.FramePing, Opaque: 7}
	tests := []struct {
		name string
		in   []byte
		max  int
		want error
	}{
		{"4 GiB prefix", []byte{0xff, 0xff, 0xff, 0xff}, protocol.DefaultMaxFrameSize, ErrFrameTooLarge},
		{"over limit by one", []byte{0, 0, 0x0f, 0xfd}, 4096, ErrFrameTooLarge},
		{"at limit", []byte{0, 0, 0x0f, 0xfc}, 4096, ErrNeedMore},
		{"length 0", []byte{0, 0, 0, 0}, 4096, ErrFrameTooShort},
		{"unknown type", []byte{0, 0, 0, 3, 0x40, 0, 0}, 4096, ErrUnknownType},
		{"flag on ping", withByte(ping.Append(nil), 5, 1), 4096, ErrReservedFlags},
		{"lane bits", withByte(ping.Append(nil), 6, 0x80), 4096, ErrReservedBits},
		{"ping lane 2", withByte(ping.Append(nil), 6, 2), 4096, ErrBadLane},
		{"ping short", truncateFrame(ping.Append(nil), 1), 4096, ErrTruncatedBody},
		{"ping long", appendToFrame(ping.Append(nil), 1), 4096, ErrTrailingBytes},
		{"compressed off", (&Frame{Type: protocol.FrameData, Flags: protocol.FlagCompressed, Lane: 1, Payload: snappyRef}).Append(nil), 4096, ErrCompressionOff},

		// SPEC §3.3: APP_ACK only together with RELIABLE, checked with
		// the header (§3.5 stage 2.2), before the body is complete.
		{"app ack alone", withByte(enc(appAckData), 5, byte(protocol.FlagAppAck)), 4096, ErrAppAckUnreliable},
		{"app ack alone, header only", withByte(enc(appAckData), 5, byte(protocol.FlagAppAck))[:7], 4096, ErrAppAckUnreliable},
		{"app ack on confirm", withByte(enc(confirmProcessed), 5, byte(protocol.FlagAppAck)), 4096, ErrReservedFlags},
		{"app ack with reliable", enc(appAckData), 4096, nil},

		// SPEC §7.7: CONFIRM, body exactly 12 bytes.
		{"confirm", enc(confirmProcessed), 4096, nil},
		{"confirm short", truncateFrame(enc(confirmProcessed), 1), 4096, ErrTruncatedBody},
		{"confirm empty", truncateFrame(enc(confirmProcessed), 12), 4096, ErrTruncatedBody},
		{"confirm long", appendToFrame(enc(confirmProcessed), 0), 4096, ErrTrailingBytes},
		{"confirm lane 0", withByte(enc(confirmProcessed), 7, 0), 4096, ErrBadValue},
		{"confirm lane 4", withByte(enc(confirmProcessed), 7, 4), 4096, ErrBadValue},
		{"confirm lane 255", withByte(enc(confirmProcessed), 7, 0xff), 4096, ErrBadValue},
		{"confirm verdict 2", withByte(enc(confirmProcessed), 8, 2), 4096, ErrBadValue},
		{"confirm verdict 255", withByte(enc(confirmProcessed), 8, 0xff), 4096, ErrBadValue},
		{"confirm reserved hi", withByte(enc(confirmProcessed), 9, 1), 4096, ErrReservedBits},
		{"confirm reserved lo", withByte(enc(confirmProcessed), 10, 0x80), 4096, ErrReservedBits},
		{"confirm seq 0", withByte(enc(confirmProcessed), 18, 0), 4096, ErrBadValue},
		{"confirm on lane 3", withByte(enc(confirmProcessed), 6, 3), 4096, ErrBadLane},
		{"confirm reliable flag", withByte(enc(confirmProcessed), 5, byte(protocol.FlagReliable)), 4096, ErrReservedFlags},

		// SPEC §7.8: GAP_REPORT, body exactly 40 bytes.
		{"gap report", AppendGapReport(nil, gapReport), 4096, nil},
		{"gap report short", truncateFrame(AppendGapReport(nil, gapReport), 1), 4096, ErrTruncatedBody},
		{"gap report empty", truncateFrame(AppendGapReport(nil, gapReport), GapReportLen), 4096, ErrTruncatedBody},
		{"gap report long", appendToFrame(AppendGapReport(nil, gapReport), 0), 4096, ErrTrailingBytes},
		{"gap report flag", withByte(AppendGapReport(nil, gapReport), 5, byte(protocol.FlagExpiry)), 4096, ErrReservedFlags},
		{"gap report on lane 1", withByte(AppendGapReport(nil, gapReport), 6, 1), 4096, ErrBadLane},

		// SPEC §4.2: the first unassigned type after them.
		{"type 0x11", withByte(ping.Append(nil), 4, 0x11), 4096, ErrUnknownType},

		// SPEC §3.3, §6.5: KEYED adds a Key (u64, ≥ 1) after TTL.
		{"keyed", enc(keyedData), 4096, nil},
		{"keyed with expiry", enc(keyedExpiry), 4096, nil},
		{"keyed key 0", enc(modified(keyedData, func(f *Frame) { f.Opaque = 0 })), 4096, ErrBadValue},
		{"keyed key 0 with expiry", enc(modified(keyedExpiry, func(f *Frame) { f.Opaque = 0 })), 4096, ErrBadValue},
		{"keyed truncated before key", truncateFrame(enc(keyedExpiry), 8+len(keyedExpiry.Payload)), 4096, ErrTruncatedBody},
		{"keyed key cut short", truncateFrame(enc(keyedExpiry), 1+len(keyedExpiry.Payload)), 4096, ErrTruncatedBody},
		{"keyed on batch", withByte(batchOf(1, innerData), 5, byte(protocol.FlagKeyed)), 4096, ErrReservedFlags},
		{"keyed on confirm", withByte(enc(confirmProcessed), 5, byte(protocol.FlagKeyed)), 4096, ErrReservedFlags},
		{"keyed on subscribe", withByte(enc(Frame{Type: protocol.FrameSubscribe, Corr: 1, Name: []byte("a")}), 5, byte(protocol.FlagKeyed)), 4096, ErrReservedFlags},
		{"keyed in batch", batchOf(1, enc(keyedData)), 4096, nil},
		{"flag 0x80", withByte(enc(keyedData), 5, 0x80|byte(keyedData.Flags)), 4096, ErrReservedFlags},
	}
	for _, tt := range tests {
		d := Decoder{MaxFrameSize: tt.max}
		if _, _, err := d.Decode(tt.in); err != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, err, tt.want)
		}
	}
}

// The fields of the delivery frames, decoded (SPEC §7.7, §7.8).
func TestDecodeDeliveryFrames(t *testing.T) {
	d := NewDecoder()
	f, _, err := d.Decode(enc(Frame{Type: protocol.FrameConfirm, AckLane: 3, Verdict: protocol.ConfirmRejected, Seq: 1<<63 + 5}))
	if err != nil || f.Type != protocol.FrameConfirm || f.AckLane != 3 || f.Verdict != protocol.ConfirmRejected || f.Seq != 1<<63+5 ||
		f.Lane != 0 || f.Flags != 0 || f.Payload != nil {
		t.Fatalf("CONFIRM decoded to %+v, %v", f, err)
	}
	f, _, err = d.Decode(AppendGapReport(nil, gapReport))
	if err != nil || f.Type != protocol.FrameGapReport || len(f.Payload) != GapReportLen {
		t.Fatalf("GAP_REPORT decoded to %+v, %v", f, err)
	}
	if g, err := ParseGapReport(f.Payload); err != nil || g != gapReport {
		t.Fatalf("GAP_REPORT body %+v, %v", g, err)
	}
	f, _, err = d.Decode(enc(appAckData))
	if err != nil || !f.Flags.Has(protocol.FlagReliable|protocol.FlagAppAck) || f.Seq != appAckData.Seq {
		t.Fatalf("DATA with APP_ACK decoded to %+v, %v", f, err)
	}
}

// SPEC §12.8: the expired placeholder, and what is not one.
func TestIsExpiredPlaceholder(t *testing.T) {
	ph := Frame{Type: protocol.FramePublish, Flags: protocol.FlagReliable | protocol.FlagExpiry, Lane: 1, Seq: 3, Name: []byte("t")}
	mod := func(fn func(*Frame)) Frame { f := ph; fn(&f); return f }
	tests := []struct {
		name string
		f    Frame
		want bool
	}{
		{"placeholder", ph, true},
		{"keeps RESPONSE", Frame{Type: protocol.FrameData, Flags: protocol.FlagReliable | protocol.FlagExpiry | protocol.FlagResponse, Lane: 2, Corr: 1, Seq: 1}, true},
		{"ttl 1", mod(func(f *Frame) { f.TTL = 1 }), false},
		{"payload", mod(func(f *Frame) { f.Payload = []byte{0} }), false},
		{"unreliable", mod(func(f *Frame) { f.Flags = protocol.FlagExpiry }), false},
		{"no expiry", mod(func(f *Frame) { f.Flags = protocol.FlagReliable }), false},
		{"fragment", mod(func(f *Frame) { f.Flags |= protocol.FlagFragment }), false},
		{"compressed", mod(func(f *Frame) { f.Flags |= protocol.FlagCompressed }), false},
		// SPEC §12.8: a placeholder keeps KEYED and the Key of the frame
		// it stands in for.
		{"keeps KEYED", mod(func(f *Frame) { f.Flags |= protocol.FlagKeyed; f.Opaque = 9 }), true},
		{"not a message", Frame{Type: protocol.FrameConfirm, Flags: protocol.FlagReliable | protocol.FlagExpiry}, false},
	}
	for _, tt := range tests {
		if got := tt.f.IsExpiredPlaceholder(); got != tt.want {
			t.Errorf("%s: got %v", tt.name, got)
		}
	}
}

func TestErrorCodes(t *testing.T) {
	if CodeOf(ErrFrameTooLarge) != protocol.CodeFrameTooLarge || CodeOf(ErrCorrupt) != protocol.CodeCompressionError ||
		CodeOf(ErrUnsupportedVer) != protocol.CodeUnsupportedVersion || CodeOf(errors.New("x")) != protocol.CodeInternal {
		t.Fatal("CodeOf maps wrongly")
	}
	if ErrFrameTooLarge.Error() != "codec: frame too large" {
		t.Fatalf("error text %q", ErrFrameTooLarge.Error())
	}
}

func TestCheckRejects(t *testing.T) {
	bad := []Frame{
		{Type: 0x40},
		{Type: protocol.FramePing, Flags: protocol.FlagReliable},
		{Type: protocol.FrameData, Lane: 0},
		{Type: protocol.FrameAck},
		{Type: protocol.FrameSubscribe},
		{Type: protocol.FrameBatch},
		{Type: protocol.FramePublish, Lane: 1, Name: make([]byte, protocol.MaxTopicLen+1)},
		{Type: protocol.FrameData, Lane: 1, Flags: protocol.FlagFragment, Total: 4},
		{Type: protocol.FrameData, Lane: 1, Payload: make([]byte, 5000)},
		{Type: protocol.FrameData, Lane: 1, Flags: protocol.FlagAppAck},
		{Type: protocol.FramePublish, Lane: 1, Flags: protocol.FlagAppAck | protocol.FlagExpiry, TTL: 1},
		{Type: protocol.FrameConfirm, AckLane: 0, Seq: 1},
		{Type: protocol.FrameConfirm, AckLane: 4, Seq: 1},
		{Type: protocol.FrameConfirm, AckLane: 1, Verdict: 2, Seq: 1},
		{Type: protocol.FrameConfirm, AckLane: 1},
		{Type: protocol.FrameConfirm, AckLane: 1, Seq: 1, Lane: 1},
		{Type: protocol.FrameConfirm, AckLane: 1, Seq: 1, Flags: protocol.FlagReliable},
		{Type: protocol.FrameGapReport},
		{Type: protocol.FrameGapReport, Payload: make([]byte, GapReportLen+1)},
		{Type: protocol.FrameGapReport, Payload: make([]byte, GapReportLen), Lane: 2},
		{Type: protocol.FrameData, Lane: 1, Flags: protocol.FlagKeyed},
		{Type: protocol.FrameDirect, Lane: 2, Flags: protocol.FlagKeyed | protocol.FlagReliable | protocol.FlagExpiry, Seq: 1, TTL: 1, Name: []byte("p")},
		{Type: protocol.FrameBatch, Lane: 1, Flags: protocol.FlagKeyed, Count: 1, Payload: innerData, Opaque: 1},
		{Type: protocol.FramePing, Flags: protocol.FlagKeyed, Opaque: 1},
	}
	for i, f := range bad {
		if err := f.Check(4096); err == nil {
			t.Errorf("case %d (%s): Check accepted it", i, f.Type)
		}
	}
}

func TestHelloWelcomeRoundTrip(t *testing.T) {
	for _, h := range []Hello{{Version: 1}, helloFull, helloResume} {
		b := h.Append(nil)
		if len(b) != h.Len() {
			t.Fatalf("Len %d, wrote %d", h.Len(), len(b))
		}
		got, err := ParseHello(b)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Append(nil), b) {
			t.Fatal("HELLO does not round-trip")
		}
	}
	w := Welcome{Version: 1, SessionPresent: true, Received: [3]uint64{1, 2, 3}, SessionID: []byte("s"), ResumeToken: []byte("r")}
	b := w.Append(nil)
	got, err := ParseWelcome(b)
	if err != nil || !got.SessionPresent || got.Received != w.Received || len(b) != w.Len() {
		t.Fatalf("WELCOME round trip: %+v %v", got, err)
	}
	for i := 0; i < len(b); i++ {
		if _, err := ParseWelcome(b[:i]); err == nil {
			t.Fatalf("WELCOME truncated to %d accepted", i)
		}
	}
}

func TestEffectiveLimits(t *testing.T) {
	if EffectiveMaxFrameSize(0) != protocol.DefaultMaxFrameSize || EffectiveMaxFrameSize(10) != protocol.MinMaxFrameSize ||
		EffectiveMaxFrameSize(1<<30) != protocol.HardMaxFrameSize || EffectiveMaxFrameSize(100000) != 100000 {
		t.Fatal("EffectiveMaxFrameSize")
	}
	if EffectiveMaxMessageSize(0) != protocol.DefaultMaxMessageSize || EffectiveReceiveMax(0) != protocol.DefaultReceiveMax {
		t.Fatal("defaults")
	}
	// SPEC §5.4.5: "values above 512 are read as 512".
	for v, want := range map[uint16]int{1: 1, 32: 32, 256: 256, 512: 512, 513: 512, 65535: 512} {
		if got := EffectiveReceiveMax(v); got != want {
			t.Errorf("EffectiveReceiveMax(%d) = %d, want %d", v, got, want)
		}
	}
}

// The hot structs' sizes are pinned so growth is a decision, not an accident.
// Verdict went into padding after Options: on 64-bit Frame is still 128.
func TestFrameSize(t *testing.T) {
	if s := unsafe.Sizeof(Frame{}); s > 128 {
		t.Fatalf("Frame is %d bytes, want <= 128", s)
	}
	if unsafe.Sizeof(uintptr(0)) == 8 && unsafe.Sizeof(Frame{}) != 128 {
		t.Fatalf("Frame is %d bytes on 64-bit, want 128", unsafe.Sizeof(Frame{}))
	}
	if off := unsafe.Offsetof(Frame{}.Verdict); off >= unsafe.Offsetof(Frame{}.Code) {
		t.Fatalf("Verdict at offset %d, want it in the padding before Code", off)
	}
}

func TestPooledEncode(t *testing.T) {
	b := EncodePooled(&reliableData)
	defer PutBuffer(b)
	if !bytes.Equal(b.B, reliableData.Append(nil)) {
		t.Fatal("pooled encode differs")
	}
}

// randomFrame builds a valid frame of type t with random field values.
func randomFrame(rng interface {
	IntN(int) int
	Uint32() uint32
	Uint64() uint64
}, t protocol.FrameType) Frame {
	bytesN := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	f := Frame{Type: t}
	switch protocol.LaneRuleOf(t) {
	case protocol.LaneRuleMessage:
		f.Lane = protocol.Lane(1 + rng.IntN(3))
	case protocol.LaneRuleAny:
		f.Lane = protocol.Lane(rng.IntN(4))
	}
	f.Flags = protocol.AllowedFlags(t) & protocol.Flags(rng.Uint32()) &^ protocol.FlagCompressed
	if f.Flags.Has(protocol.FlagAppAck) {
		f.Flags |= protocol.FlagReliable // SPEC §3.3
	}
	switch t {
	case protocol.FramePing, protocol.FramePong:
		f.Opaque = rng.Uint64()
	case protocol.FrameAck:
		f.AckLane = protocol.Lane(1 + rng.IntN(3))
		f.AckDelay, f.Cumulative, f.Selective = rng.Uint32(), rng.Uint64(), rng.Uint64()
	case protocol.FrameConfirm:
		f.AckLane = protocol.Lane(1 + rng.IntN(3))
		f.Verdict = protocol.Verdict(rng.IntN(2))
		f.Seq = max(rng.Uint64(), 1)
	case protocol.FrameGapReport:
		f.Payload = GapReport{rng.Uint64(), rng.Uint64(), rng.Uint64(), rng.Uint64(), rng.Uint64()}.Append(nil)
	case protocol.FrameError, protocol.FrameGoAway, protocol.FrameResult:
		f.Code = protocol.ErrorCode(rng.Uint32())
		f.ReconnectAfter = map[bool]uint32{true: rng.Uint32()}[t == protocol.FrameGoAway]
		f.Corr = map[bool]uint32{true: rng.Uint32()}[t == protocol.FrameResult]
		if n := rng.IntN(protocol.MaxReasonLen + 1); n > 0 {
			f.Payload = bytesN(n)
		}
	case protocol.FrameSubscribe, protocol.FrameUnsubscribe:
		f.Corr = rng.Uint32()
		f.Name = bytesN(1 + rng.IntN(protocol.MaxTopicLen))
	case protocol.FrameBatch:
		f.Count = uint16(1 + rng.IntN(protocol.MaxBatchFrames))
		f.Payload = bytesN(1 + rng.IntN(64))
	case protocol.FrameHello, protocol.FrameWelcome:
		f.Payload = bytesN(rng.IntN(100))
	default:
		f.Route = map[bool]uint32{true: rng.Uint32()}[t == protocol.FrameData]
		f.Corr = rng.Uint32()
		if t != protocol.FrameData {
			f.Name = bytesN(rng.IntN(nameLimit(t) + 1))
		}
		if f.Flags.Has(protocol.FlagReliable) {
			f.Seq = rng.Uint64()
		}
		if f.Flags.Has(protocol.FlagExpiry) {
			f.TTL = rng.Uint32()
		}
		if f.Flags.Has(protocol.FlagKeyed) {
			f.Opaque = max(rng.Uint64(), 1) // SPEC §6.5: never 0
		}
		n := rng.IntN(2000)
		if f.Flags.Has(protocol.FlagFragment) {
			n++
			f.MsgID = rng.Uint32()
			f.Total = uint32(n + rng.IntN(1<<20))
			f.Offset = uint32(rng.IntN(int(f.Total) - n + 1))
		}
		if n > 0 {
			f.Payload = bytesN(n)
		}
	}
	if len(f.Name) == 0 {
		f.Name = nil
	}
	return f
}

func TestRoundTripRandomFields(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	d := Decoder{MaxFrameSize: protocol.HardMaxFrameSize}
	for i := range 20000 {
		ft := protocol.FrameTypes()[i%len(protocol.FrameTypes())]
		f := randomFrame(rng, ft)
		if err := f.Check(d.MaxFrameSize); err != nil {
			t.Fatalf("%s: random frame fails Check: %v", ft, err)
		}
		b := f.Append(nil)
		if len(b) != f.Len() {
			t.Fatalf("%s: Len %d, wrote %d", ft, f.Len(), len(b))
		}
		got, n, err := d.Decode(b)
		if err != nil || n != len(b) {
			t.Fatalf("%s: n=%d err=%v", ft, n, err)
		}
		if !reflect.DeepEqual(got, f) {
			t.Fatalf("%s: round trip\n got %+v\nwant %+v", ft, got, f)
		}
	}
}
