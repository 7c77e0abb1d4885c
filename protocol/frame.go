package protocol

// Version is the protocol version spoken by this package (SPEC §5.1).
const Version uint8 = 1

// Header sizes, SPEC §3.
const (
	// LengthSize is the size of the length prefix that starts every frame.
	LengthSize = 4
	// HeaderSize is the length prefix plus type, flags and lane byte.
	HeaderSize = LengthSize + 3
	// MinLength is the smallest legal value of the length prefix: type,
	// flags and lane byte with an empty body.
	MinLength = HeaderSize - LengthSize
)

// FrameType is the first byte after the length prefix, SPEC §4.
type FrameType uint8

// Frame types, SPEC §4. Values not listed are reserved: a receiver closes
// the connection with PROTOCOL_ERROR when it sees one.
const (
	FrameHello       FrameType = 0x01
	FrameWelcome     FrameType = 0x02
	FramePing        FrameType = 0x03
	FramePong        FrameType = 0x04
	FrameData        FrameType = 0x05
	FrameAck         FrameType = 0x06
	FrameBatch       FrameType = 0x07
	FrameError       FrameType = 0x08
	FrameGoAway      FrameType = 0x09
	FrameSubscribe   FrameType = 0x0A
	FrameUnsubscribe FrameType = 0x0B
	FramePublish     FrameType = 0x0C
	FrameDirect      FrameType = 0x0D
	FrameResult      FrameType = 0x0E
	// FrameConfirm is the application's verdict on a message sent with
	// APP_ACK (SPEC §7.7, §12.10). Lane 0, both directions.
	FrameConfirm FrameType = 0x0F
	// FrameGapReport tells a resuming client what became of the messages
	// queued for it while it was away (SPEC §7.8, §12.9). Lane 0, server
	// to client only.
	FrameGapReport FrameType = 0x10
)

var frameTypeNames = [...]string{
	FrameHello:       "HELLO",
	FrameWelcome:     "WELCOME",
	FramePing:        "PING",
	FramePong:        "PONG",
	FrameData:        "DATA",
	FrameAck:         "ACK",
	FrameBatch:       "BATCH",
	FrameError:       "ERROR",
	FrameGoAway:      "GOAWAY",
	FrameSubscribe:   "SUBSCRIBE",
	FrameUnsubscribe: "UNSUBSCRIBE",
	FramePublish:     "PUBLISH",
	FrameDirect:      "DIRECT",
	FrameResult:      "RESULT",
	FrameConfirm:     "CONFIRM",
	FrameGapReport:   "GAP_REPORT",
}

// Known reports whether t is a frame type defined by this revision.
func (t FrameType) Known() bool {
	return int(t) < len(frameTypeNames) && frameTypeNames[t] != ""
}

func (t FrameType) String() string {
	if t.Known() {
		return frameTypeNames[t]
	}
	return "UNKNOWN_FRAME_TYPE(" + itoa(uint64(t)) + ")"
}

// FrameTypes lists the defined frame types in registry order.
func FrameTypes() []FrameType {
	var ts []FrameType
	for t := range frameTypeNames {
		if frameTypeNames[t] != "" {
			ts = append(ts, FrameType(t))
		}
	}
	return ts
}

// IsMessage reports whether frames of type t carry application messages:
// DATA, PUBLISH and DIRECT (SPEC §6). Only these may be reliable, fragmented,
// compressed per frame or carry an expiry.
func (t FrameType) IsMessage() bool {
	return t == FrameData || t == FramePublish || t == FrameDirect
}

// Flags is the second byte after the length prefix. Which bits a frame type
// may set is given by AllowedFlags; the others MUST be zero (SPEC §3.3).
type Flags uint8

// Flag bits, SPEC §3.3. Optional fields that a flag announces appear after
// the type's fixed fields in ascending order of their flag bits.
const (
	// FlagCompressed: the payload is a snappy block (SPEC §11). DATA,
	// PUBLISH, DIRECT, BATCH.
	FlagCompressed Flags = 0x01
	// FlagReliable: a Seq (uint64) field follows (SPEC §12). DATA,
	// PUBLISH, DIRECT.
	FlagReliable Flags = 0x02
	// FlagFragment: MsgID, Offset and Total (3 × uint32) follow (SPEC §10).
	// DATA, PUBLISH, DIRECT.
	FlagFragment Flags = 0x04
	// FlagResponse: this DATA answers the peer's request with the same
	// correlation id (SPEC §6.1). DATA only.
	FlagResponse Flags = 0x08
	// FlagExpiry: a TTL (uint32 milliseconds) field follows (SPEC §6.4).
	// DATA, PUBLISH, DIRECT.
	FlagExpiry Flags = 0x10
	// FlagAppAck: the sender asks the receiving application to confirm
	// processing with a CONFIRM frame (SPEC §12.10). Adds no field. DATA,
	// PUBLISH, DIRECT, and only together with FlagReliable: APP_ACK
	// without RELIABLE is a PROTOCOL_ERROR (SPEC §3.3).
	FlagAppAck Flags = 0x20
	// FlagKeyed: an idempotency Key (uint64, never 0) follows, after TTL:
	// the sending application's identifier of the message, with which a
	// server drops a message it already accepted from the same client id,
	// even in a new session (SPEC §6.5). DATA, PUBLISH, DIRECT.
	FlagKeyed Flags = 0x40
)

var flagNames = [...]struct {
	f    Flags
	name string
}{
	{FlagCompressed, "COMPRESSED"},
	{FlagReliable, "RELIABLE"},
	{FlagFragment, "FRAGMENT"},
	{FlagResponse, "RESPONSE"},
	{FlagExpiry, "EXPIRY"},
	{FlagAppAck, "APP_ACK"},
	{FlagKeyed, "KEYED"},
}

// Has reports whether every bit of g is set in f.
func (f Flags) Has(g Flags) bool { return f&g == g }

func (f Flags) String() string {
	if f == 0 {
		return "0"
	}
	var s string
	rest := f
	for _, n := range flagNames {
		if f&n.f != 0 {
			if s != "" {
				s += "|"
			}
			s += n.name
			rest &^= n.f
		}
	}
	if rest != 0 {
		if s != "" {
			s += "|"
		}
		s += "0x" + hex8(uint8(rest))
	}
	return s
}

// FlagNames returns the registry of flag bits and their names.
func FlagNames() map[Flags]string {
	m := make(map[Flags]string, len(flagNames))
	for _, n := range flagNames {
		m[n.f] = n.name
	}
	return m
}

const messageFlags = FlagCompressed | FlagReliable | FlagFragment | FlagExpiry | FlagAppAck | FlagKeyed

// AllowedFlags returns the flag bits frame type t may set (SPEC §3.3). A
// bit being allowed does not make every combination valid: FlagAppAck
// needs FlagReliable (see FlagsValid).
func AllowedFlags(t FrameType) Flags {
	switch t {
	case FrameData:
		return messageFlags | FlagResponse
	case FramePublish, FrameDirect:
		return messageFlags
	case FrameBatch:
		return FlagCompressed
	}
	return 0
}

// FlagsValid reports whether frame type t may carry exactly the flags f:
// every bit allowed for t (AllowedFlags) and, SPEC §3.3, APP_ACK only
// together with RELIABLE.
func FlagsValid(t FrameType, f Flags) bool {
	if f&^AllowedFlags(t) != 0 {
		return false
	}
	return f&FlagAppAck == 0 || f&FlagReliable != 0
}

// Lane is the priority class of a frame, the low two bits of the lane byte
// (SPEC §8). The six high bits are reserved and MUST be zero.
type Lane uint8

// Lanes, SPEC §8. Control is served strictly first; the others share the
// connection by weight.
const (
	LaneControl     Lane = 0
	LaneInteractive Lane = 1
	LaneNormal      Lane = 2
	LaneBulk        Lane = 3

	// NumLanes is the number of lanes.
	NumLanes = 4
	// LaneMask selects the lane bits of the lane byte.
	LaneMask = 0x03
)

var laneNames = [NumLanes]string{"CONTROL", "INTERACTIVE", "NORMAL", "BULK"}

func (l Lane) String() string {
	if l < NumLanes {
		return laneNames[l]
	}
	return "INVALID_LANE(" + itoa(uint64(l)) + ")"
}

// Valid reports whether l names a lane.
func (l Lane) Valid() bool { return l < NumLanes }

// LaneRule says which lanes a frame type may use (SPEC §8.1).
type LaneRule uint8

const (
	// LaneRuleControl: the frame MUST be on lane 0.
	LaneRuleControl LaneRule = iota
	// LaneRuleMessage: the frame MUST be on lane 1, 2 or 3.
	LaneRuleMessage
	// LaneRuleAny: any lane.
	LaneRuleAny
)

// LaneRuleOf returns the lane rule of frame type t.
func LaneRuleOf(t FrameType) LaneRule {
	switch t {
	case FrameData, FramePublish, FrameDirect:
		return LaneRuleMessage
	case FrameBatch, FrameSubscribe, FrameUnsubscribe, FrameResult:
		return LaneRuleAny
	}
	return LaneRuleControl
}

// LaneAllowed reports whether frame type t may travel on lane l.
func LaneAllowed(t FrameType, l Lane) bool {
	switch LaneRuleOf(t) {
	case LaneRuleControl:
		return l == LaneControl
	case LaneRuleMessage:
		return l >= LaneInteractive && l < NumLanes
	}
	return l < NumLanes
}

// Capability bits of HELLO and WELCOME (SPEC §5.2, §5.4).
const (
	// CapCompression: the sender can send and receive snappy-compressed
	// payloads. Compression is on when both HELLO and WELCOME set it.
	CapCompression uint8 = 0x01
	// CapMask is the set of defined capability bits; the others MUST be zero.
	CapMask uint8 = CapCompression
)
