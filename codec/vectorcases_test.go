package codec

import (
	"bytes"
	"encoding/binary"

	"github.com/ferry-proto/ferry/protocol"
)

// The cases behind docs/vectors/. Valid cases are written as fields; their
// bytes come from the encoder and are checked by decoding them back and by
// the hand-annotated examples in SPEC Appendix B. Invalid cases are valid
// bytes with one thing broken, and name the error a receiver must produce:
// generation fails unless the codec produces exactly that.

type frameCase struct {
	name, section, comment string
	maxFrame               int
	compression            bool
	frame                  *Frame
	build                  func() []byte // bytes of an invalid or partial case
	err                    string        // expected error code name
	needMore               bool
}

type msgCase struct {
	name, section, comment string
	maxMessage             int
	frames                 []Frame
	messages               []vecMessage
	err                    string
}

func enc(f Frame) []byte { return f.Append(nil) }

func snappyOf(b []byte) []byte { return AppendCompressed(nil, b) }

// snappyRef is a fixed snappy block, written by hand so the vectors do not
// depend on one encoder's choices: "ferry ferry ferry ferry " (24 bytes) as
// a literal of 6 bytes (tag 0x14) and a copy of 18 bytes from offset 6 (tag
// 0x46, a copy with a 2-byte little-endian offset).
var snappyRef = []byte{0x18, 0x14, 'f', 'e', 'r', 'r', 'y', ' ', 0x46, 0x06, 0x00}

var reliableData = Frame{Type: protocol.FrameData, Flags: protocol.FlagReliable, Lane: 1, Route: 7, Corr: 42, Seq: 1, Payload: []byte("hi")}

var helloFull = Hello{
	Version: 1, Capabilities: protocol.CapCompression, MaxFrameSize: 1 << 20, MaxMessageSize: 64 << 20,
	HeartbeatMs: 10_000, ReceiveMax: 256, SessionExpiry: 300, ClientID: []byte("player-17"),
	AuthToken: []byte("tok"),
}

var helloResume = Hello{
	Version: 1, MaxFrameSize: 0, HeartbeatMs: 60_000, ReceiveMax: 32, SessionExpiry: 600,
	Received: [3]uint64{5, 0, 1 << 40}, ClientID: []byte("sensor-9"),
	SessionID:   bytes.Repeat([]byte{0xab}, 16),
	ResumeToken: []byte{1, 2, 3, 4, 5, 6, 7, 8},
}

func helloFrame(h Hello) []byte { return AppendHello(nil, &h) }

func withByte(b []byte, i int, v byte) []byte {
	c := bytes.Clone(b)
	c[i] = v
	return c
}

func withLen(b []byte, n uint32) []byte {
	c := bytes.Clone(b)
	binary.BigEndian.PutUint32(c, n)
	return c
}

// appendToFrame adds bytes to a frame's body and fixes its length.
func appendToFrame(b []byte, extra ...byte) []byte {
	c := append(bytes.Clone(b), extra...)
	binary.BigEndian.PutUint32(c, uint32(len(c)-4))
	return c
}

// truncateFrame drops bytes from a frame's end and fixes its length.
func truncateFrame(b []byte, n int) []byte {
	c := bytes.Clone(b[:len(b)-n])
	binary.BigEndian.PutUint32(c, uint32(len(c)-4))
	return c
}

func batchOf(count uint16, inner ...[]byte) []byte {
	f := Frame{Type: protocol.FrameBatch, Lane: 2, Count: count, Payload: bytes.Join(inner, nil)}
	return enc(f)
}

// The delivery frames of SPEC §7.7, §7.8 and §12.
var (
	confirmProcessed = Frame{Type: protocol.FrameConfirm, AckLane: 1, Verdict: protocol.ConfirmProcessed, Seq: 2}
	gapReport        = GapReport{Delivered: 7, DroppedCount: 2, DroppedBytes: 1, DroppedAge: 0, Expired: 3}
	appAckData       = Frame{Type: protocol.FrameData, Flags: protocol.FlagReliable | protocol.FlagAppAck, Lane: 1, Route: 9, Seq: 2, Payload: []byte("do")}
)

// Keyed message frames (SPEC §6.5): the Key travels in Opaque.
var (
	// keyedData is a reliable request with a key: a random 64-bit value,
	// here the high half of a UUID.
	keyedData = Frame{Type: protocol.FrameData, Flags: protocol.FlagReliable | protocol.FlagKeyed, Lane: 1, Route: 9, Corr: 5, Seq: 3,
		Opaque: 0x9f3c2a7be1d04f86, Payload: []byte("pay")}
	// keyedExpiry shows the order of the optional fields: TTL (EXPIRY,
	// 0x10), then Key (KEYED, 0x40).
	keyedExpiry = Frame{Type: protocol.FrameData, Flags: protocol.FlagExpiry | protocol.FlagKeyed, Lane: 2, Route: 4, TTL: 5000,
		Opaque: 0x1122334455667788, Payload: []byte("soon")}
)

// modified returns a copy of f changed by fn.
func modified(f Frame, fn func(*Frame)) Frame { fn(&f); return f }

var (
	innerAck  = enc(Frame{Type: protocol.FrameAck, AckLane: 2, AckDelay: 250, Cumulative: 9, Selective: 0x5})
	innerData = enc(Frame{Type: protocol.FrameData, Lane: 2, Route: 3, Payload: []byte("move")})
	innerPub  = enc(Frame{Type: protocol.FramePublish, Lane: 2, Name: []byte("room/1"), Payload: []byte("x")})
)

func frameCases() []frameCase {
	p := func(f Frame) *Frame { return &f }
	ping := enc(Frame{Type: protocol.FramePing, Opaque: 0x0102030405060708})
	data := enc(Frame{Type: protocol.FrameData, Lane: 1, Route: 1, Payload: []byte("abc")})
	return []frameCase{
		// §5: handshake.
		{name: "hello-minimal", section: "§5.2", frame: p(Frame{Type: protocol.FrameHello, Payload: (&Hello{Version: 1}).Append(nil)})},
		{name: "hello-full", section: "§5.2", frame: p(Frame{Type: protocol.FrameHello, Payload: helloFull.Append(nil)})},
		{name: "hello-resume", section: "§5.2", frame: p(Frame{Type: protocol.FrameHello, Payload: helloResume.Append(nil)})},
		{name: "welcome-new", section: "§5.3", frame: p(Frame{Type: protocol.FrameWelcome, Payload: (&Welcome{
			Version: 1, Capabilities: protocol.CapCompression, MaxFrameSize: 65536, MaxMessageSize: 16 << 20,
			HeartbeatMs: 10_000, ReceiveMax: 256, SessionExpiry: 120, ClientID: []byte("player-17"),
			SessionID: bytes.Repeat([]byte{0x11}, 16), ResumeToken: bytes.Repeat([]byte{0x22}, 24)}).Append(nil)})},
		{name: "welcome-resumed", section: "§5.3", frame: p(Frame{Type: protocol.FrameWelcome, Payload: (&Welcome{
			Version: 1, SessionPresent: true, MaxFrameSize: 65536, MaxMessageSize: 16 << 20,
			HeartbeatMs: 60_000, ReceiveMax: 32, SessionExpiry: 600, Received: [3]uint64{3, 0, 12},
			ClientID: []byte("sensor-9"), SessionID: bytes.Repeat([]byte{0xab}, 16),
			ResumeToken: bytes.Repeat([]byte{0x33}, 24)}).Append(nil)})},
		{name: "hello-bad-version", section: "§5.1", build: func() []byte { return withByte(helloFrame(helloFull), 7, 2) }, err: "UNSUPPORTED_VERSION"},
		{name: "hello-version-only", section: "§5.1", comment: "a HELLO of another version is rejected from its first byte, whatever follows",
			build: func() []byte { return enc(Frame{Type: protocol.FrameHello, Payload: []byte{9}}) }, err: "UNSUPPORTED_VERSION"},
		{name: "hello-truncated", section: "§5.2", build: func() []byte { return truncateFrame(helloFrame(helloFull), 1) }, err: "PROTOCOL_ERROR"},
		{name: "hello-trailing-byte", section: "§5.2", build: func() []byte { return appendToFrame(helloFrame(helloFull), 0) }, err: "PROTOCOL_ERROR"},
		{name: "hello-reserved-capability", section: "§5.2", build: func() []byte { return withByte(helloFrame(helloFull), 8, 0x81) }, err: "PROTOCOL_ERROR"},
		{name: "hello-reserved-field", section: "§5.2", build: func() []byte { return withByte(helloFrame(helloFull), 10, 1) }, err: "PROTOCOL_ERROR"},
		{name: "hello-max-frame-over-ceiling", section: "§5.4", build: func() []byte {
			h := helloFull
			h.MaxFrameSize = protocol.HardMaxFrameSize + 1
			return helloFrame(h)
		}, err: "PROTOCOL_ERROR"},
		{name: "hello-client-id-too-long", section: "§5.2", build: func() []byte {
			h := helloFull
			h.ClientID = bytes.Repeat([]byte("c"), protocol.MaxClientIDLen+1)
			return helloFrame(h)
		}, err: "PROTOCOL_ERROR"},
		{name: "hello-received-without-session", section: "§5.2", build: func() []byte {
			h := helloFull
			h.Received[0] = 1
			return helloFrame(h)
		}, err: "PROTOCOL_ERROR"},
		{name: "welcome-bad-session-present", section: "§5.3", build: func() []byte {
			return withByte(AppendWelcome(nil, &Welcome{Version: 1, HeartbeatMs: 10_000, ClientID: []byte("c")}), 9, 2)
		}, err: "PROTOCOL_ERROR"},
		{name: "welcome-bad-version", section: "§5.1", build: func() []byte {
			return withByte(AppendWelcome(nil, &Welcome{Version: 1, HeartbeatMs: 10_000, ClientID: []byte("c")}), 7, 2)
		}, err: "UNSUPPORTED_VERSION"},
		{name: "hello-empty-body", section: "§5.2", build: func() []byte { return enc(Frame{Type: protocol.FrameHello}) }, err: "PROTOCOL_ERROR"},
		{name: "hello-max-message-over-ceiling", section: "§5.4", build: func() []byte {
			h := helloFull
			h.MaxMessageSize = protocol.HardMaxMessageSize + 1
			return helloFrame(h)
		}, err: "PROTOCOL_ERROR"},
		{name: "hello-resume-token-without-session", section: "§5.2", build: func() []byte {
			h := helloFull
			h.ResumeToken = []byte("t")
			return helloFrame(h)
		}, err: "PROTOCOL_ERROR"},

		// §6: message frames, every lane and flag.
		{name: "data-lane1", section: "§6.1", frame: p(Frame{Type: protocol.FrameData, Lane: 1, Route: 1, Payload: []byte("abc")})},
		{name: "data-lane2", section: "§6.1", frame: p(Frame{Type: protocol.FrameData, Lane: 2, Route: 0xfffffffe, Payload: []byte{0}})},
		{name: "data-lane3", section: "§6.1", frame: p(Frame{Type: protocol.FrameData, Lane: 3, Route: 9, Payload: bytes.Repeat([]byte{0xee}, 32)})},
		{name: "data-empty-payload", section: "§6.1", frame: p(Frame{Type: protocol.FrameData, Lane: 1, Route: 5})},
		{name: "data-reliable", section: "§6.1", frame: p(reliableData)},
		{name: "data-request", section: "§6.1", frame: p(Frame{Type: protocol.FrameData, Lane: 1, Route: 100, Corr: 1, Payload: []byte("get")})},
		{name: "data-response", section: "§6.1", frame: p(Frame{Type: protocol.FrameData, Flags: protocol.FlagResponse, Lane: 1, Route: 100, Corr: 1, Payload: []byte("ok")})},
		{name: "data-expiry", section: "§6.4", frame: p(Frame{Type: protocol.FrameData, Flags: protocol.FlagExpiry, Lane: 2, Route: 4, TTL: 5000, Payload: []byte("soon")})},
		{name: "data-compressed", section: "§11", compression: true, frame: p(Frame{Type: protocol.FrameData, Flags: protocol.FlagCompressed, Lane: 2, Route: 6, Payload: snappyRef})},
		{name: "data-fragment-first", section: "§10.1", frame: p(Frame{Type: protocol.FrameData, Flags: protocol.FlagFragment, Lane: 3, Route: 8, MsgID: 1, Offset: 0, Total: 40, Payload: bytes.Repeat([]byte{'a'}, 16)})},
		{name: "data-all-flags", section: "§3.3", compression: true, frame: p(Frame{Type: protocol.FrameData,
			Flags: protocol.FlagCompressed | protocol.FlagReliable | protocol.FlagFragment | protocol.FlagExpiry,
			Lane:  3, Route: 2, Corr: 3, Seq: 1 << 33, MsgID: 77, Offset: 16, Total: 64, TTL: 30_000, Payload: snappyRef})},
		{name: "publish", section: "§6.2", frame: p(Frame{Type: protocol.FramePublish, Lane: 1, Name: []byte("game/7/pos"), Payload: []byte{1, 2, 3, 4}})},
		{name: "publish-reliable-compressed", section: "§6.2", compression: true, frame: p(Frame{Type: protocol.FramePublish,
			Flags: protocol.FlagReliable | protocol.FlagCompressed, Lane: 2, Corr: 5, Seq: 12, Name: []byte("news"), Payload: snappyRef})},
		{name: "publish-empty-topic", section: "§6.2", comment: "valid framing; the server answers INVALID_TOPIC in a RESULT",
			frame: p(Frame{Type: protocol.FramePublish, Lane: 3, Payload: []byte("z")})},
		{name: "direct", section: "§6.3", frame: p(Frame{Type: protocol.FrameDirect, Flags: protocol.FlagReliable, Lane: 1, Corr: 8, Seq: 3, Name: []byte("player-2"), Payload: []byte("gg")})},

		// §7: control frames.
		{name: "ping", section: "§7.1", frame: p(Frame{Type: protocol.FramePing, Opaque: 0x0102030405060708})},
		{name: "pong", section: "§7.1", frame: p(Frame{Type: protocol.FramePong, Opaque: 0x0102030405060708})},
		{name: "ack", section: "§7.2", frame: p(Frame{Type: protocol.FrameAck, AckLane: 1, AckDelay: 1500, Cumulative: 41, Selective: 0b1011})},
		{name: "ack-lane3-nothing-received", section: "§7.2", frame: p(Frame{Type: protocol.FrameAck, AckLane: 3})},
		{name: "error", section: "§7.3", frame: p(Frame{Type: protocol.FrameError, Code: protocol.CodeFrameTooLarge, Payload: []byte("frame of 70000 bytes over 65536")})},
		{name: "error-no-reason", section: "§7.3", frame: p(Frame{Type: protocol.FrameError, Code: protocol.CodeIdleTimeout})},
		{name: "goaway", section: "§7.4", frame: p(Frame{Type: protocol.FrameGoAway, Code: protocol.CodeGoingAway, ReconnectAfter: 2000, Payload: []byte("restart")})},
		{name: "subscribe", section: "§7.5", frame: p(Frame{Type: protocol.FrameSubscribe, Corr: 11, Name: []byte("game/+/pos")})},
		{name: "subscribe-lane2", section: "§7.5", frame: p(Frame{Type: protocol.FrameSubscribe, Lane: 2, Corr: 12, Name: []byte("alerts/#")})},
		{name: "unsubscribe", section: "§7.5", frame: p(Frame{Type: protocol.FrameUnsubscribe, Corr: 13, Name: []byte("game/+/pos")})},
		{name: "result-ok", section: "§7.6", frame: p(Frame{Type: protocol.FrameResult, Corr: 11})},
		{name: "result-error", section: "§7.6", frame: p(Frame{Type: protocol.FrameResult, Lane: 1, Corr: 8, Code: protocol.CodeNoSuchClient, Payload: []byte("player-2")})},

		// §7.7, §7.8, §12: the delivery revision.
		{name: "data-reliable-app-ack", section: "§12.10", comment: "the receiving application is asked to confirm processing; the vector confirm-processed answers it",
			frame: p(appAckData)},
		{name: "publish-app-ack-expiry", section: "§12.10", frame: p(Frame{Type: protocol.FramePublish,
			Flags: protocol.FlagReliable | protocol.FlagExpiry | protocol.FlagAppAck, Lane: 2, Corr: 4, Seq: 31, TTL: 60_000,
			Name: []byte("orders/eu"), Payload: []byte(`{"id":1}`)})},
		{name: "direct-app-ack-fragment", section: "§12.10", comment: "APP_ACK is set on every fragment; the CONFIRM names the Seq of the last",
			frame: p(Frame{Type: protocol.FrameDirect, Flags: protocol.FlagReliable | protocol.FlagFragment | protocol.FlagAppAck, Lane: 3,
				Seq: 5, MsgID: 2, Offset: 0, Total: 20, Name: []byte("device-4"), Payload: []byte("0123456789")})},
		{name: "data-expired-placeholder", section: "§12.8", comment: "replayed in place of a reliable frame whose message expired: TTL 0, no payload; the receiver acknowledges Seq 12 and drops it",
			frame: p(Frame{Type: protocol.FrameData, Flags: protocol.FlagReliable | protocol.FlagExpiry, Lane: 2, Route: 4, Seq: 12})},
		{name: "confirm-processed", section: "§7.7", frame: p(confirmProcessed)},
		{name: "confirm-rejected", section: "§7.7", frame: p(Frame{Type: protocol.FrameConfirm, AckLane: 3, Verdict: protocol.ConfirmRejected, Seq: 1 << 40})},
		{name: "gap-report", section: "§7.8", frame: p(Frame{Type: protocol.FrameGapReport, Payload: gapReport.Append(nil)})},
		{name: "gap-report-nothing-lost", section: "§7.8", frame: p(Frame{Type: protocol.FrameGapReport, Payload: GapReport{Delivered: 1000}.Append(nil)})},
		{name: "batch-ack-and-confirm", section: "§9.4", comment: "control frames piggybacked in one batch on lane 0",
			frame: p(Frame{Type: protocol.FrameBatch, Count: 2, Payload: bytes.Join([][]byte{innerAck, enc(confirmProcessed)}, nil)})},
		{name: "confirm-truncated", section: "§7.7", build: func() []byte { return truncateFrame(enc(confirmProcessed), 1) }, err: "PROTOCOL_ERROR"},
		{name: "confirm-trailing-byte", section: "§7.7", build: func() []byte { return appendToFrame(enc(confirmProcessed), 0) }, err: "PROTOCOL_ERROR"},
		{name: "confirm-lane0", section: "§7.7", comment: "ConfirmLane 0: lane 0 carries no messages",
			build: func() []byte { return withByte(enc(confirmProcessed), 7, 0) }, err: "PROTOCOL_ERROR"},
		{name: "confirm-lane4", section: "§7.7", build: func() []byte { return withByte(enc(confirmProcessed), 7, 4) }, err: "PROTOCOL_ERROR"},
		{name: "confirm-bad-verdict", section: "§7.7", build: func() []byte { return withByte(enc(confirmProcessed), 8, 2) }, err: "PROTOCOL_ERROR"},
		{name: "confirm-reserved-field", section: "§7.7", build: func() []byte { return withByte(enc(confirmProcessed), 10, 1) }, err: "PROTOCOL_ERROR"},
		{name: "confirm-seq-zero", section: "§7.7", build: func() []byte { return withByte(enc(confirmProcessed), 18, 0) }, err: "PROTOCOL_ERROR"},
		{name: "confirm-with-flag", section: "§7.7", build: func() []byte { return withByte(enc(confirmProcessed), 5, byte(protocol.FlagAppAck)) }, err: "PROTOCOL_ERROR"},
		{name: "confirm-on-lane1", section: "§8.1", build: func() []byte { return withByte(enc(confirmProcessed), 6, 1) }, err: "PROTOCOL_ERROR"},
		{name: "gap-report-truncated", section: "§7.8", build: func() []byte {
			return truncateFrame(enc(Frame{Type: protocol.FrameGapReport, Payload: gapReport.Append(nil)}), 8)
		}, err: "PROTOCOL_ERROR"},
		{name: "gap-report-trailing-byte", section: "§7.8", build: func() []byte {
			return appendToFrame(enc(Frame{Type: protocol.FrameGapReport, Payload: gapReport.Append(nil)}), 0)
		}, err: "PROTOCOL_ERROR"},
		{name: "gap-report-with-flag", section: "§7.8", build: func() []byte {
			return withByte(enc(Frame{Type: protocol.FrameGapReport, Payload: gapReport.Append(nil)}), 5, byte(protocol.FlagReliable))
		}, err: "PROTOCOL_ERROR"},
		{name: "gap-report-on-lane2", section: "§8.1", build: func() []byte {
			return withByte(enc(Frame{Type: protocol.FrameGapReport, Payload: gapReport.Append(nil)}), 6, 2)
		}, err: "PROTOCOL_ERROR"},
		{name: "app-ack-without-reliable", section: "§3.3", build: func() []byte { return withByte(data, 5, byte(protocol.FlagAppAck)) }, err: "PROTOCOL_ERROR"},
		{name: "app-ack-with-expiry-without-reliable", section: "§3.3", build: func() []byte {
			return enc(Frame{Type: protocol.FramePublish, Flags: protocol.FlagExpiry | protocol.FlagAppAck, Lane: 2, TTL: 100, Name: []byte("t"), Payload: []byte("x")})
		}, err: "PROTOCOL_ERROR"},
		{name: "batch-inner-app-ack-without-reliable", section: "§9.2", build: func() []byte { return batchOf(1, withByte(innerData, 5, byte(protocol.FlagAppAck))) }, err: "PROTOCOL_ERROR"},

		// §6.5: idempotency keys.
		{name: "data-reliable-keyed", section: "§6.5", comment: "a reliable request with an idempotency key; sent again with the same key, even in a new session, it is not delivered again and is answered with RESULT OK, detail \"duplicate\"",
			frame: p(keyedData)},
		{name: "data-keyed-expiry", section: "§3.3", comment: "optional fields in ascending order of their flag bits: TTL (EXPIRY, 0x10) 00001388, then Key (KEYED, 0x40) 1122334455667788, then the payload",
			frame: p(keyedExpiry)},
		{name: "publish-keyed-fragment", section: "§10.1", comment: "every fragment of a keyed message carries KEYED and the same Key, after its fragment header",
			frame: p(Frame{Type: protocol.FramePublish, Flags: protocol.FlagReliable | protocol.FlagFragment | protocol.FlagKeyed, Lane: 2,
				Seq: 40, MsgID: 6, Offset: 8, Total: 24, Opaque: 0x00000000deadbeef, Name: []byte("orders/eu"), Payload: []byte("-item-2-")})},
		{name: "direct-every-optional-field", section: "§3.3", compression: true, comment: "Seq, MsgID, Offset, Total, TTL and Key, in that order; APP_ACK and COMPRESSED add no field",
			frame: p(Frame{Type: protocol.FrameDirect,
				Flags: protocol.FlagCompressed | protocol.FlagReliable | protocol.FlagFragment | protocol.FlagExpiry | protocol.FlagAppAck | protocol.FlagKeyed,
				Lane:  3, Seq: 2, MsgID: 3, Offset: 0, Total: 48, TTL: 60_000, Opaque: 1 << 63, Name: []byte("device-4"), Payload: snappyRef})},
		{name: "data-keyed-expired-placeholder", section: "§12.8", comment: "the placeholder of a keyed frame keeps KEYED and its Key; the receiver drops it as expired without looking the key up",
			frame: p(Frame{Type: protocol.FrameData, Flags: protocol.FlagReliable | protocol.FlagExpiry | protocol.FlagKeyed, Lane: 1, Route: 9, Corr: 5, Seq: 4, Opaque: keyedData.Opaque})},
		{name: "data-key-zero", section: "§6.5", comment: "Key 0 is never valid",
			build: func() []byte { return enc(modified(keyedData, func(f *Frame) { f.Opaque = 0 })) }, err: "PROTOCOL_ERROR"},
		{name: "publish-fragment-key-zero", section: "§6.5", build: func() []byte {
			return enc(Frame{Type: protocol.FramePublish, Flags: protocol.FlagFragment | protocol.FlagKeyed, Lane: 2, MsgID: 1, Total: 4, Name: []byte("t"), Payload: []byte("ab")})
		}, err: "PROTOCOL_ERROR"},
		{name: "data-keyed-truncated-before-key", section: "§3.3", comment: "KEYED is set but the body ends after TTL",
			build: func() []byte { return truncateFrame(enc(keyedExpiry), 8+len(keyedExpiry.Payload)) }, err: "PROTOCOL_ERROR"},
		{name: "data-keyed-key-cut-short", section: "§3.3", comment: "the body ends 4 bytes into the Key",
			build: func() []byte { return truncateFrame(enc(keyedExpiry), 4+len(keyedExpiry.Payload)) }, err: "PROTOCOL_ERROR"},
		{name: "batch-keyed", section: "§3.3", comment: "KEYED is for message frames; a BATCH may set only COMPRESSED",
			build: func() []byte { return withByte(batchOf(1, innerData), 5, byte(protocol.FlagKeyed)) }, err: "PROTOCOL_ERROR"},
		{name: "batch-inner-keyed-key-zero", section: "§9.2", build: func() []byte {
			return batchOf(1, enc(modified(keyedData, func(f *Frame) { f.Opaque = 0 })))
		}, err: "PROTOCOL_ERROR"},

		// §9: batches.
		{name: "batch", section: "§9", frame: p(Frame{Type: protocol.FrameBatch, Lane: 2, Count: 3, Payload: bytes.Join([][]byte{innerAck, innerData, innerPub}, nil)})},
		{name: "batch-compressed", section: "§9", compression: true, frame: p(Frame{Type: protocol.FrameBatch, Flags: protocol.FlagCompressed, Lane: 1, Count: 8,
			Payload: snappyOf(bytes.Repeat(innerData, 8))})},
		{name: "batch-count-zero", section: "§9", build: func() []byte { return batchOf(0) }, err: "PROTOCOL_ERROR"},
		{name: "batch-count-over-limit", section: "§9", comment: "1,025 inner frames, one over the limit, and Count says so",
			build: func() []byte {
				unsub := enc(Frame{Type: protocol.FrameUnsubscribe, Corr: 1, Name: []byte("a")})
				return batchOf(protocol.MaxBatchFrames+1, bytes.Repeat(unsub, protocol.MaxBatchFrames+1))
			}, err: "PROTOCOL_ERROR"},
		{name: "batch-inner-length-below-minimum", section: "§9", build: func() []byte { return batchOf(1, []byte{0, 0, 0, 2, 3, 0}) }, err: "PROTOCOL_ERROR"},
		{name: "batch-inner-compressed", section: "§9", compression: true, build: func() []byte {
			return batchOf(1, enc(Frame{Type: protocol.FrameData, Flags: protocol.FlagCompressed, Lane: 2, Payload: snappyRef}))
		}, err: "PROTOCOL_ERROR"},
		{name: "batch-holds-welcome", section: "§9", build: func() []byte {
			return batchOf(1, AppendWelcome(nil, &Welcome{Version: 1, HeartbeatMs: 1000, ClientID: []byte("c")}))
		}, err: "PROTOCOL_ERROR"},
		{name: "batch-compressed-corrupt", section: "§9", compression: true, build: func() []byte {
			return enc(Frame{Type: protocol.FrameBatch, Flags: protocol.FlagCompressed, Lane: 1, Count: 1, Payload: []byte{0x18, 0x14, 'f', 'e', 'r', 'r', 'y', ' ', 0x46, 0x40, 0x00}})
		}, err: "COMPRESSION_ERROR"},
		{name: "batch-compressed-over-frame-limit", section: "§9", compression: true, comment: "a valid block of 70,000 decoded bytes, over the 65,536-byte frame limit",
			build: func() []byte {
				return enc(Frame{Type: protocol.FrameBatch, Flags: protocol.FlagCompressed, Lane: 1, Count: 1, Payload: snappyOf(make([]byte, 70000))})
			}, err: "COMPRESSION_ERROR"},
		{name: "batch-fewer-frames-than-count", section: "§9", build: func() []byte { return batchOf(3, innerAck, innerData) }, err: "PROTOCOL_ERROR"},
		{name: "batch-more-frames-than-count", section: "§9", build: func() []byte { return batchOf(1, innerAck, innerData) }, err: "PROTOCOL_ERROR"},
		{name: "batch-overruns-frame", section: "§9", comment: "the last inner frame claims 4 bytes more than the batch holds",
			build: func() []byte {
				bad := withLen(innerData, binary.BigEndian.Uint32(innerData)+4)
				return batchOf(2, innerAck, bad)
			}, err: "PROTOCOL_ERROR"},
		{name: "batch-nested", section: "§9", build: func() []byte { return batchOf(1, batchOf(1, innerData)) }, err: "PROTOCOL_ERROR"},
		{name: "batch-holds-hello", section: "§9", build: func() []byte { return batchOf(1, helloFrame(Hello{Version: 1})) }, err: "PROTOCOL_ERROR"},
		{name: "batch-holds-fragment", section: "§9", build: func() []byte {
			return batchOf(1, enc(Frame{Type: protocol.FrameData, Flags: protocol.FlagFragment, Lane: 2, MsgID: 1, Total: 2, Payload: []byte("a")}))
		}, err: "PROTOCOL_ERROR"},
		{name: "batch-inner-reserved-bits", section: "§9", build: func() []byte { return batchOf(1, withByte(innerData, 6, 0x42)) }, err: "PROTOCOL_ERROR"},

		// §3: framing errors and partial input.
		{name: "need-more-empty", section: "§3.2", build: func() []byte { return nil }, needMore: true},
		{name: "need-more-length-only", section: "§3.2", build: func() []byte { return ping[:4] }, needMore: true},
		{name: "need-more-header-only", section: "§3.2", build: func() []byte { return ping[:7] }, needMore: true},
		{name: "need-more-one-byte-short", section: "§3.2", build: func() []byte { return ping[:len(ping)-1] }, needMore: true},
		{name: "length-4gib", section: "§3.2", comment: "rejected from the 4-byte prefix alone: nothing is allocated",
			build: func() []byte { return []byte{0xff, 0xff, 0xff, 0xff} }, err: "FRAME_TOO_LARGE"},
		{name: "length-just-over-default", section: "§3.2", comment: "65,537 bytes in all, one over the default 65,536",
			build: func() []byte { return []byte{0x00, 0x00, 0xff, 0xfd, byte(protocol.FrameData), 0, 1} }, err: "FRAME_TOO_LARGE"},
		{name: "length-just-over-negotiated", section: "§3.2", maxFrame: 4096,
			build: func() []byte { return []byte{0x00, 0x00, 0x0f, 0xfd, byte(protocol.FrameData), 0, 1} }, err: "FRAME_TOO_LARGE"},
		{name: "length-at-negotiated-max", section: "§3.2", maxFrame: 4096, comment: "exactly the limit is allowed: a proper prefix waits for more",
			build: func() []byte { return []byte{0x00, 0x00, 0x0f, 0xfc, byte(protocol.FrameData), 0, 1} }, needMore: true},
		{name: "length-below-minimum", section: "§3.2", build: func() []byte { return []byte{0, 0, 0, 2, 3, 0} }, err: "PROTOCOL_ERROR"},
		{name: "type-zero", section: "§4", build: func() []byte { return withByte(ping, 4, 0x00) }, err: "PROTOCOL_ERROR"},
		{name: "type-reserved-0x11", section: "§4.2", comment: "the first type after GAP_REPORT", build: func() []byte { return withByte(ping, 4, 0x11) }, err: "PROTOCOL_ERROR"},
		{name: "type-unknown", section: "§4", build: func() []byte { return withByte(ping, 4, 0x7e) }, err: "PROTOCOL_ERROR"},
		{name: "flags-on-ping", section: "§3.3", build: func() []byte { return withByte(ping, 5, 0x01) }, err: "PROTOCOL_ERROR"},
		{name: "flag-reserved-0x80", section: "§3.3", build: func() []byte { return withByte(data, 5, 0x80) }, err: "PROTOCOL_ERROR"},
		{name: "flag-response-on-publish", section: "§3.3", build: func() []byte { return withByte(innerPub, 5, 0x08) }, err: "PROTOCOL_ERROR"},
		{name: "lane-reserved-bits", section: "§3.4", build: func() []byte { return withByte(data, 6, 0x05) }, err: "PROTOCOL_ERROR"},
		{name: "data-on-lane0", section: "§8.1", build: func() []byte { return withByte(data, 6, 0) }, err: "PROTOCOL_ERROR"},
		{name: "ping-on-lane1", section: "§8.1", build: func() []byte { return withByte(ping, 6, 1) }, err: "PROTOCOL_ERROR"},
		{name: "ping-truncated-body", section: "§7.1", build: func() []byte { return truncateFrame(ping, 4) }, err: "PROTOCOL_ERROR"},
		{name: "ping-trailing-byte", section: "§7.1", build: func() []byte { return appendToFrame(ping, 0) }, err: "PROTOCOL_ERROR"},
		{name: "data-truncated-fields", section: "§6.1", build: func() []byte { return truncateFrame(enc(Frame{Type: protocol.FrameData, Lane: 1}), 1) }, err: "PROTOCOL_ERROR"},
		{name: "data-reliable-without-seq", section: "§6.1", build: func() []byte {
			return withByte(enc(Frame{Type: protocol.FrameData, Lane: 1}), 5, byte(protocol.FlagReliable))
		}, err: "PROTOCOL_ERROR"},
		{name: "data-reliable-seq-zero", section: "§12.1", build: func() []byte {
			return withByte(enc(Frame{Type: protocol.FrameData, Flags: protocol.FlagReliable, Lane: 1, Seq: 1}), 22, 0)
		}, err: "PROTOCOL_ERROR"},
		{name: "data-response-without-corr", section: "§6.1", build: func() []byte {
			return withByte(enc(Frame{Type: protocol.FrameData, Lane: 1, Payload: []byte("x")}), 5, byte(protocol.FlagResponse))
		}, err: "PROTOCOL_ERROR"},
		{name: "ack-lane0", section: "§7.2", build: func() []byte { return enc(Frame{Type: protocol.FrameAck, AckLane: 0}) }, err: "PROTOCOL_ERROR"},
		{name: "ack-reserved-field", section: "§7.2", build: func() []byte {
			return withByte(enc(Frame{Type: protocol.FrameAck, AckLane: 1}), 8, 1)
		}, err: "PROTOCOL_ERROR"},
		{name: "error-reserved-field", section: "§7.3", build: func() []byte {
			return withByte(enc(Frame{Type: protocol.FrameError, Code: 1}), 9, 1)
		}, err: "PROTOCOL_ERROR"},
		{name: "error-reason-too-long", section: "§7.3", build: func() []byte {
			return enc(Frame{Type: protocol.FrameError, Code: 1, Payload: bytes.Repeat([]byte("r"), protocol.MaxReasonLen+1)})
		}, err: "PROTOCOL_ERROR"},
		{name: "subscribe-empty-pattern", section: "§7.5", build: func() []byte {
			return truncateFrame(enc(Frame{Type: protocol.FrameSubscribe, Corr: 1, Name: []byte("a")}), 1)
		}, err: "PROTOCOL_ERROR"},
		{name: "subscribe-options-set", section: "§7.5", build: func() []byte {
			return withByte(enc(Frame{Type: protocol.FrameSubscribe, Corr: 1, Name: []byte("a")}), 11, 1)
		}, err: "PROTOCOL_ERROR"},
		{name: "publish-topic-too-long", section: "§6.2", build: func() []byte {
			return enc(Frame{Type: protocol.FramePublish, Lane: 1, Name: bytes.Repeat([]byte("t"), protocol.MaxTopicLen+1)})
		}, err: "PROTOCOL_ERROR"},
		{name: "publish-topic-overruns-frame", section: "§6.2", build: func() []byte {
			b := enc(Frame{Type: protocol.FramePublish, Lane: 1, Name: []byte("abc")})
			return withByte(b, 12, 9)
		}, err: "PROTOCOL_ERROR"},
		{name: "fragment-total-zero", section: "§10.3", build: func() []byte {
			return enc(Frame{Type: protocol.FrameData, Flags: protocol.FlagFragment, Lane: 3, MsgID: 1, Total: 0, Payload: []byte("a")})
		}, err: "PROTOCOL_ERROR"},
		{name: "fragment-empty", section: "§10.3", build: func() []byte {
			return enc(Frame{Type: protocol.FrameData, Flags: protocol.FlagFragment, Lane: 3, MsgID: 1, Total: 10})
		}, err: "PROTOCOL_ERROR"},
		{name: "fragment-total-lies", section: "§10.3", comment: "16 bytes of data at offset 0 of a message said to be 8 bytes long",
			build: func() []byte {
				return enc(Frame{Type: protocol.FrameData, Flags: protocol.FlagFragment, Lane: 3, MsgID: 1, Total: 8, Payload: bytes.Repeat([]byte{1}, 16)})
			}, err: "PROTOCOL_ERROR"},
		{name: "fragment-offset-past-total", section: "§10.3", build: func() []byte {
			return enc(Frame{Type: protocol.FrameData, Flags: protocol.FlagFragment, Lane: 3, MsgID: 1, Offset: 8, Total: 8, Payload: []byte{1}})
		}, err: "PROTOCOL_ERROR"},

		// §11: compression.
		{name: "compressed-not-negotiated", section: "§11", build: func() []byte {
			return enc(Frame{Type: protocol.FrameData, Flags: protocol.FlagCompressed, Lane: 2, Route: 6, Payload: snappyRef})
		}, err: "PROTOCOL_ERROR"},
		{name: "compressed-corrupt", section: "§11", compression: true, comment: "the copy reaches back before the start of the output",
			build: func() []byte {
				return enc(Frame{Type: protocol.FrameData, Flags: protocol.FlagCompressed, Lane: 2, Payload: []byte{0x18, 0x14, 'f', 'e', 'r', 'r', 'y', ' ', 0x46, 0x40, 0x00}})
			}, err: "COMPRESSION_ERROR"},
		{name: "compressed-bomb", section: "§11", compression: true, comment: "an 8-byte block claiming to decode to 1 GiB: refused from its preamble",
			build: func() []byte {
				blk := binary.AppendUvarint(nil, 1<<30)
				blk = append(blk, 0x00, 'a')
				return enc(Frame{Type: protocol.FrameData, Flags: protocol.FlagCompressed, Lane: 2, Payload: blk})
			}, err: "COMPRESSION_ERROR"},
		{name: "compressed-over-frame-limit", section: "§11.4", compression: true, comment: "a valid block of 70,000 decoded bytes, more than the 65,536-byte frame limit",
			build: func() []byte {
				return enc(Frame{Type: protocol.FrameData, Flags: protocol.FlagCompressed, Lane: 2, Payload: snappyOf(make([]byte, 70000))})
			}, err: "COMPRESSION_ERROR"},
		{name: "compressed-preamble-empty", section: "§11.4", compression: true, build: func() []byte {
			return enc(Frame{Type: protocol.FrameData, Flags: protocol.FlagCompressed, Lane: 2, Route: 1})
		}, err: "COMPRESSION_ERROR"},
		{name: "compressed-preamble-truncated", section: "§11.4", compression: true, build: func() []byte {
			return enc(Frame{Type: protocol.FrameData, Flags: protocol.FlagCompressed, Lane: 2, Payload: []byte{0x80, 0x80}})
		}, err: "COMPRESSION_ERROR"},
		{name: "compressed-preamble-over-32-bits", section: "§11.4", compression: true, build: func() []byte {
			return enc(Frame{Type: protocol.FrameData, Flags: protocol.FlagCompressed, Lane: 2, Payload: binary.AppendUvarint(nil, 1<<32)})
		}, err: "COMPRESSION_ERROR"},
		{name: "compressed-copy-offset-zero", section: "§11.4", compression: true, build: func() []byte {
			return enc(Frame{Type: protocol.FrameData, Flags: protocol.FlagCompressed, Lane: 2, Payload: []byte{0x18, 0x14, 'f', 'e', 'r', 'r', 'y', ' ', 0x46, 0x00, 0x00}})
		}, err: "COMPRESSION_ERROR"},
		{name: "compressed-literal-cut-short", section: "§11.4", compression: true, build: func() []byte {
			return enc(Frame{Type: protocol.FrameData, Flags: protocol.FlagCompressed, Lane: 2, Payload: []byte{0x06, 0x14, 'f', 'e', 'r'}})
		}, err: "COMPRESSION_ERROR"},
		{name: "compressed-output-shorter", section: "§11.4", compression: true, comment: "the preamble says 25 bytes; the elements make 24",
			build: func() []byte {
				return enc(Frame{Type: protocol.FrameData, Flags: protocol.FlagCompressed, Lane: 2, Payload: append([]byte{0x19}, snappyRef[1:]...)})
			}, err: "COMPRESSION_ERROR"},
		{name: "compressed-fragment-decodes-empty", section: "§10.3", compression: true, build: func() []byte {
			return enc(Frame{Type: protocol.FrameData, Flags: protocol.FlagCompressed | protocol.FlagFragment, Lane: 3, MsgID: 1, Total: 8, Payload: []byte{0x00}})
		}, err: "PROTOCOL_ERROR"},
		{name: "fragment-compressed-offset-past-total", section: "§10.3", compression: true, comment: "Offset = Total on a compressed fragment: only the Offset check applies",
			build: func() []byte {
				return enc(Frame{Type: protocol.FrameData, Flags: protocol.FlagCompressed | protocol.FlagFragment, Lane: 3, MsgID: 1, Offset: 24, Total: 24, Payload: snappyRef})
			}, err: "PROTOCOL_ERROR"},
		{name: "ack-lane-4", section: "§7.2", build: func() []byte {
			return withByte(enc(Frame{Type: protocol.FrameAck, AckLane: 1}), 7, 4)
		}, err: "PROTOCOL_ERROR"},
		{name: "result-detail-too-long", section: "§7.6", build: func() []byte {
			return enc(Frame{Type: protocol.FrameResult, Corr: 1, Payload: bytes.Repeat([]byte("d"), protocol.MaxReasonLen+1)})
		}, err: "PROTOCOL_ERROR"},
		{name: "subscribe-pattern-too-long", section: "§7.5", build: func() []byte {
			return enc(Frame{Type: protocol.FrameSubscribe, Corr: 1, Name: bytes.Repeat([]byte("p"), protocol.MaxTopicLen+1)})
		}, err: "PROTOCOL_ERROR"},
		{name: "compressed-fragment-overruns", section: "§10.3", compression: true, comment: "a compressed fragment decoding to 24 bytes where 8 remain",
			build: func() []byte {
				return enc(Frame{Type: protocol.FrameData, Flags: protocol.FlagCompressed | protocol.FlagFragment, Lane: 3, MsgID: 1, Offset: 0, Total: 8, Payload: snappyRef})
			}, err: "COMPRESSION_ERROR"},
	}
}

func fragmentsOf(tmpl Frame, msg []byte, size int, msgID uint32) []Frame {
	fr := NewFragmenter(&tmpl, msg, msgID, size)
	var out []Frame
	for {
		f, ok := fr.Next()
		if !ok {
			return out
		}
		out = append(out, f)
	}
}

func msgCases() []msgCase {
	msg40 := []byte("0123456789abcdefghijklmnopqrstuvwxyzABCD")
	tmpl := Frame{Type: protocol.FrameData, Lane: 3, Route: 8, Corr: 0}
	frags := fragmentsOf(tmpl, msg40, 16, 1)
	pubT := Frame{Type: protocol.FramePublish, Flags: protocol.FlagReliable, Lane: 2, Name: []byte("maps/3")}
	pubFrags := fragmentsOf(pubT, bytes.Repeat([]byte("tile "), 8), 16, 9)
	for i := range pubFrags {
		pubFrags[i].Seq = uint64(100 + i)
	}
	compMsg := bytes.Repeat([]byte("ab"), 96)
	compFrags := fragmentsOf(tmpl, compMsg, 64, 2)
	for i := range compFrags {
		compFrags[i].Flags |= protocol.FlagCompressed
		compFrags[i].Payload = AppendCompressed(nil, compFrags[i].Payload)
	}
	lane1 := Frame{Type: protocol.FrameData, Lane: 1, Route: 2, Payload: []byte("fire")}
	// A reliable message with an expiry, interrupted after two of its three
	// fragments; on resume it has expired, so its third Seq is replayed as
	// an expired placeholder (SPEC §12.8).
	relT := Frame{Type: protocol.FrameData, Flags: protocol.FlagReliable | protocol.FlagExpiry, Lane: 2, Route: 8, TTL: 60_000}
	relFrags := fragmentsOf(relT, msg40, 16, 3)
	for i := range relFrags {
		relFrags[i].Seq = uint64(7 + i)
	}
	placeholder := Frame{Type: protocol.FrameData, Flags: protocol.FlagReliable | protocol.FlagExpiry, Lane: 2, Route: 8, Seq: 9}
	next := Frame{Type: protocol.FrameData, Flags: protocol.FlagReliable, Lane: 2, Route: 8, Seq: 10, Payload: []byte("next")}
	// A keyed, reliable PUBLISH in three fragments: each carries the Key
	// (SPEC §6.5, §10.1).
	keyT := Frame{Type: protocol.FramePublish, Flags: protocol.FlagReliable | protocol.FlagKeyed, Lane: 2, Name: []byte("orders/eu"), Opaque: 0x00000000deadbeef}
	keyMsg := []byte("-item-1--item-2--item-3-")
	keyFrags := fragmentsOf(keyT, keyMsg, 8, 6)
	for i := range keyFrags {
		keyFrags[i].Seq = uint64(39 + i)
	}
	// The same with an expiry, interrupted and expired before the session
	// resumed: the placeholder keeps KEYED and the Key (SPEC §12.8).
	keyExpT := keyT
	keyExpT.Flags |= protocol.FlagExpiry
	keyExpT.TTL = 30_000
	keyExpFrags := fragmentsOf(keyExpT, keyMsg, 8, 7)
	for i := range keyExpFrags {
		keyExpFrags[i].Seq = uint64(50 + i)
	}
	keyPlaceholder := Frame{Type: protocol.FramePublish, Flags: protocol.FlagReliable | protocol.FlagExpiry | protocol.FlagKeyed, Lane: 2,
		Name: []byte("orders/eu"), Seq: 52, Opaque: keyT.Opaque}
	pubNext := Frame{Type: protocol.FramePublish, Flags: protocol.FlagReliable, Lane: 2, Name: []byte("orders/eu"), Seq: 53, Payload: []byte("next")}
	m40 := vecMessage{Type: "DATA", Lane: 3, Route: 8, PayloadHex: hexs(msg40)}
	mod := func(f Frame, fn func(*Frame)) Frame { fn(&f); return f }
	return []msgCase{
		{name: "fragmented-data", section: "§10.1", frames: frags, messages: []vecMessage{m40}},
		{name: "fragmented-publish-reliable", section: "§10.1", comment: "each fragment carries its own sequence number",
			frames: pubFrags, messages: []vecMessage{{Type: "PUBLISH", Lane: 2, Topic: "maps/3", PayloadHex: hexs(bytes.Repeat([]byte("tile "), 8))}}},
		{name: "fragmented-compressed", section: "§10.1", comment: "each fragment compressed on its own",
			frames: compFrags, messages: []vecMessage{{Type: "DATA", Lane: 3, Route: 8, PayloadHex: hexs(compMsg)}}},
		{name: "fragments-interleaved-with-other-lane", section: "§10.2", frames: []Frame{frags[0], lane1, frags[1], frags[2]},
			messages: []vecMessage{{Type: "DATA", Lane: 1, Route: 2, PayloadHex: hexs([]byte("fire"))}, m40}},
		{name: "compressed-single-frame", section: "§11", frames: []Frame{{Type: protocol.FrameData, Flags: protocol.FlagCompressed, Lane: 2, Route: 6, Payload: snappyRef}},
			messages: []vecMessage{{Type: "DATA", Lane: 2, Route: 6, PayloadHex: hexs([]byte("ferry ferry ferry ferry "))}}},
		{name: "fragment-interrupted-on-its-lane", section: "§10.2", frames: []Frame{frags[0], mod(lane1, func(f *Frame) { f.Lane = 3 })}, err: "PROTOCOL_ERROR"},
		{name: "fragment-total-lies", section: "§10.3", comment: "the third fragment carries 8 bytes more than the total leaves room for",
			frames: []Frame{frags[0], frags[1], mod(frags[2], func(f *Frame) { f.Payload = append(bytes.Clone(f.Payload), "12345678"...); f.Total = 40 })}, err: "PROTOCOL_ERROR"},
		{name: "fragment-total-changes", section: "§10.3", frames: []Frame{frags[0], mod(frags[1], func(f *Frame) { f.Total = 48 })}, err: "PROTOCOL_ERROR"},
		{name: "fragment-msgid-changes", section: "§10.3", frames: []Frame{frags[0], mod(frags[1], func(f *Frame) { f.MsgID = 2 })}, err: "PROTOCOL_ERROR"},
		{name: "fragment-route-changes", section: "§10.3", frames: []Frame{frags[0], mod(frags[1], func(f *Frame) { f.Route = 9 })}, err: "PROTOCOL_ERROR"},
		{name: "fragment-flags-change", section: "§10.3", comment: "the second fragment adds EXPIRY",
			frames: []Frame{frags[0], mod(frags[1], func(f *Frame) { f.Flags |= protocol.FlagExpiry; f.TTL = 0 })}, err: "PROTOCOL_ERROR"},
		{name: "unfragmented-over-max-message", section: "§6", maxMessage: 3,
			frames: []Frame{{Type: protocol.FrameData, Lane: 1, Payload: []byte("four")}}, err: "MESSAGE_TOO_LARGE"},
		{name: "compressed-over-max-message", section: "§11.4", maxMessage: 16, comment: "decodes to 24 bytes: within the frame limit, over the message limit",
			frames: []Frame{{Type: protocol.FrameData, Flags: protocol.FlagCompressed, Lane: 2, Payload: snappyRef}}, err: "MESSAGE_TOO_LARGE"},
		{name: "fragment-type-changes", section: "§10.3", frames: []Frame{frags[0], mod(frags[1], func(f *Frame) { f.Type = protocol.FramePublish; f.Route = 0 })}, err: "PROTOCOL_ERROR"},
		{name: "fragment-budget-exceeded", section: "§10.4", maxMessage: 32, comment: "budget 2 × 32 bytes: partial messages of 32 and 32 bytes, then a third of 1 byte",
			frames: []Frame{
				{Type: protocol.FrameData, Flags: protocol.FlagFragment, Lane: 1, MsgID: 1, Total: 32, Payload: []byte("a")},
				{Type: protocol.FrameData, Flags: protocol.FlagFragment, Lane: 2, MsgID: 1, Total: 32, Payload: []byte("b")},
				{Type: protocol.FrameData, Flags: protocol.FlagFragment, Lane: 3, MsgID: 1, Total: 2, Payload: []byte("c")},
			}, err: "FRAGMENT_LIMIT"},
		{name: "fragment-gap", section: "§10.3", frames: []Frame{frags[0], frags[2]}, err: "PROTOCOL_ERROR"},
		{name: "fragment-repeated", section: "§10.3", frames: []Frame{frags[0], frags[0]}, err: "PROTOCOL_ERROR"},
		{name: "fragment-first-not-at-zero", section: "§10.3", frames: []Frame{frags[1]}, err: "PROTOCOL_ERROR"},
		{name: "fragment-message-too-large", section: "§10.4", maxMessage: 32, comment: "refused at the first fragment, before anything is allocated",
			frames: frags[:1], err: "MESSAGE_TOO_LARGE"},
		{name: "fragment-huge-total", section: "§10.4", comment: "a first fragment claiming a 4 GiB message",
			frames: []Frame{mod(frags[0], func(f *Frame) { f.Total = 0xffffffff })}, err: "MESSAGE_TOO_LARGE"},
		{name: "expired-placeholder-ends-partial", section: "§12.8", comment: "Seq 7 and 8 began a reliable message; it expired before the session resumed, so Seq 9 is replayed as an expired placeholder, which ends the partial message; both are dropped as expired",
			frames: []Frame{relFrags[0], relFrags[1], placeholder, next}, messages: []vecMessage{{Type: "DATA", Lane: 2, Route: 8, PayloadHex: hexs([]byte("next"))}}},
		{name: "expired-placeholder-alone", section: "§12.8", comment: "a placeholder on a lane with no partial message: dropped as expired",
			frames: []Frame{placeholder, next}, messages: []vecMessage{{Type: "DATA", Lane: 2, Route: 8, PayloadHex: hexs([]byte("next"))}}},
		{name: "placeholder-interrupts-unreliable-partial", section: "§10.3", comment: "only a reliable partial message is ended by a placeholder; an unreliable one dies with its connection and is never continued",
			frames: []Frame{frags[0], mod(placeholder, func(f *Frame) { f.Lane = 3 })}, err: "PROTOCOL_ERROR"},
		{name: "placeholder-with-payload-interrupts", section: "§10.3", comment: "TTL 0 with a payload is not a placeholder: it interrupts the partial message",
			frames: []Frame{relFrags[0], mod(placeholder, func(f *Frame) { f.Payload = []byte("x") })}, err: "PROTOCOL_ERROR"},
		{name: "fragmented-keyed-publish", section: "§6.5", comment: "every fragment carries the same Key; the message is delivered with it",
			frames: keyFrags, messages: []vecMessage{{Type: "PUBLISH", Lane: 2, Topic: "orders/eu", Key: keyT.Opaque, PayloadHex: hexs(keyMsg)}}},
		{name: "fragment-key-changes", section: "§10.3", comment: "a later fragment with another Key than the first",
			frames: []Frame{keyFrags[0], mod(keyFrags[1], func(f *Frame) { f.Opaque++ })}, err: "PROTOCOL_ERROR"},
		{name: "fragment-key-dropped", section: "§10.3", comment: "KEYED is set on every fragment of a message or on none",
			frames: []Frame{keyFrags[0], mod(keyFrags[1], func(f *Frame) { f.Flags &^= protocol.FlagKeyed; f.Opaque = 0 })}, err: "PROTOCOL_ERROR"},
		{name: "keyed-placeholder-ends-partial", section: "§12.8", comment: "Seq 50 and 51 began a keyed reliable message that expired before the session resumed; Seq 52 is replayed as a placeholder that keeps KEYED and the Key and ends the partial message; both are dropped as expired, and no key is looked up or remembered",
			frames: []Frame{keyExpFrags[0], keyExpFrags[1], keyPlaceholder, pubNext}, messages: []vecMessage{{Type: "PUBLISH", Lane: 2, Topic: "orders/eu", PayloadHex: hexs([]byte("next"))}}},
	}
}
