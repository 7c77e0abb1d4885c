package codec

import (
	"encoding/hex"
	"fmt"
	"strconv"

	"github.com/ferry-proto/ferry/protocol"
)

// The JSON shapes of docs/vectors/ (SPEC Appendix A). Keys whose value is
// zero or empty are omitted.

type vecFile struct {
	Spec    string      `json:"spec"`
	Section string      `json:"section"`
	Vectors []vecVector `json:"vectors"`
}

type vecVector struct {
	Name         string    `json:"name"`
	Section      string    `json:"section"`
	Comment      string    `json:"comment,omitempty"`
	MaxFrameSize int       `json:"max_frame_size,omitempty"`
	Compression  bool      `json:"compression,omitempty"`
	Hex          string    `json:"hex"`
	Frame        *vecFrame `json:"frame,omitempty"`
	Error        string    `json:"error,omitempty"`
	NeedMore     bool      `json:"need_more,omitempty"`
}

type vecFrame struct {
	Type              string      `json:"type"`
	Flags             []string    `json:"flags"`
	Lane              uint8       `json:"lane"`
	Route             uint32      `json:"route,omitempty"`
	Corr              uint32      `json:"corr,omitempty"`
	Seq               uint64      `json:"seq,omitempty,string"`
	MsgID             uint32      `json:"msg_id,omitempty"`
	Offset            uint32      `json:"offset,omitempty"`
	Total             uint32      `json:"total,omitempty"`
	TTL               uint32      `json:"ttl_ms,omitempty"`
	Key               uint64      `json:"key,omitempty,string"`
	Code              string      `json:"code,omitempty"`
	ReconnectAfter    uint32      `json:"reconnect_after_ms,omitempty"`
	AckLane           uint8       `json:"ack_lane,omitempty"`
	AckDelay          uint32      `json:"ack_delay_us,omitempty"`
	ConfirmLane       uint8       `json:"confirm_lane,omitempty"`
	Verdict           string      `json:"verdict,omitempty"`
	Cumulative        uint64      `json:"cumulative,omitempty,string"`
	Selective         uint64      `json:"selective,omitempty,string"`
	Count             uint16      `json:"count,omitempty"`
	Options           uint8       `json:"options,omitempty"`
	Opaque            uint64      `json:"opaque,omitempty,string"`
	Topic             string      `json:"topic,omitempty"`
	Peer              string      `json:"peer,omitempty"`
	Pattern           string      `json:"pattern,omitempty"`
	Reason            string      `json:"reason,omitempty"`
	Detail            string      `json:"detail,omitempty"`
	PayloadHex        string      `json:"payload_hex,omitempty"`
	DecodedPayloadHex string      `json:"decoded_payload_hex,omitempty"`
	Hello             *vecHello   `json:"hello,omitempty"`
	Welcome           *vecWelcome `json:"welcome,omitempty"`
	GapReport         *vecGap     `json:"gap_report,omitempty"`
	Frames            []vecFrame  `json:"frames,omitempty"`
}

type vecGap struct {
	Delivered    uint64 `json:"delivered,string"`
	DroppedCount uint64 `json:"dropped_count,string"`
	DroppedBytes uint64 `json:"dropped_bytes,string"`
	DroppedAge   uint64 `json:"dropped_age,string"`
	Expired      uint64 `json:"expired,string"`
}

type vecHello struct {
	Version        uint8    `json:"version"`
	Capabilities   uint8    `json:"capabilities"`
	MaxFrameSize   uint32   `json:"max_frame_size"`
	MaxMessageSize uint32   `json:"max_message_size"`
	HeartbeatMs    uint32   `json:"heartbeat_ms"`
	ReceiveMax     uint16   `json:"receive_max"`
	SessionExpiry  uint32   `json:"session_expiry_s"`
	Received       []string `json:"received"`
	ClientID       string   `json:"client_id"`
	AuthTokenHex   string   `json:"auth_token_hex"`
	SessionIDHex   string   `json:"session_id_hex"`
	ResumeTokenHex string   `json:"resume_token_hex"`
}

type vecWelcome struct {
	Version        uint8    `json:"version"`
	Capabilities   uint8    `json:"capabilities"`
	SessionPresent bool     `json:"session_present"`
	MaxFrameSize   uint32   `json:"max_frame_size"`
	MaxMessageSize uint32   `json:"max_message_size"`
	HeartbeatMs    uint32   `json:"heartbeat_ms"`
	ReceiveMax     uint16   `json:"receive_max"`
	SessionExpiry  uint32   `json:"session_expiry_s"`
	Received       []string `json:"received"`
	ClientID       string   `json:"client_id"`
	SessionIDHex   string   `json:"session_id_hex"`
	ResumeTokenHex string   `json:"resume_token_hex"`
}

type vecMsgFile struct {
	Spec    string         `json:"spec"`
	Section string         `json:"section"`
	Vectors []vecMsgVector `json:"vectors"`
}

type vecMsgVector struct {
	Name           string       `json:"name"`
	Section        string       `json:"section"`
	Comment        string       `json:"comment,omitempty"`
	MaxMessageSize int          `json:"max_message_size,omitempty"`
	FramesHex      []string     `json:"frames_hex"`
	Messages       []vecMessage `json:"messages,omitempty"`
	Error          string       `json:"error,omitempty"`
}

type vecMessage struct {
	Type       string `json:"type"`
	Lane       uint8  `json:"lane"`
	Route      uint32 `json:"route,omitempty"`
	Corr       uint32 `json:"corr,omitempty"`
	Topic      string `json:"topic,omitempty"`
	Peer       string `json:"peer,omitempty"`
	Key        uint64 `json:"key,omitempty,string"`
	PayloadHex string `json:"payload_hex"`
}

func flagList(f protocol.Flags) []string {
	out := []string{}
	names := protocol.FlagNames()
	for bit := protocol.Flags(1); bit != 0; bit <<= 1 {
		if f&bit != 0 {
			out = append(out, names[bit])
		}
	}
	return out
}

func parseFlags(names []string) (protocol.Flags, error) {
	var f protocol.Flags
	for _, n := range names {
		found := false
		for bit, name := range protocol.FlagNames() {
			if name == n {
				f |= bit
				found = true
			}
		}
		if !found {
			return 0, fmt.Errorf("unknown flag %q", n)
		}
	}
	return f, nil
}

func typeByName(n string) (protocol.FrameType, error) {
	for _, t := range protocol.FrameTypes() {
		if t.String() == n {
			return t, nil
		}
	}
	return 0, fmt.Errorf("unknown frame type %q", n)
}

func verdictByName(n string) (protocol.Verdict, error) {
	for _, v := range protocol.Verdicts() {
		if v.String() == n {
			return v, nil
		}
	}
	return 0, fmt.Errorf("unknown verdict %q", n)
}

func codeByName(n string) (protocol.ErrorCode, error) {
	for _, c := range protocol.ErrorCodes() {
		if c.String() == n {
			return c, nil
		}
	}
	return 0, fmt.Errorf("unknown error code %q", n)
}

func u64s(v [3]uint64) []string {
	return []string{strconv.FormatUint(v[0], 10), strconv.FormatUint(v[1], 10), strconv.FormatUint(v[2], 10)}
}

func parseU64s(s []string) ([3]uint64, error) {
	var v [3]uint64
	if len(s) != 3 {
		return v, fmt.Errorf("received: want 3 values, got %d", len(s))
	}
	for i := range s {
		var err error
		if v[i], err = strconv.ParseUint(s[i], 10, 64); err != nil {
			return v, err
		}
	}
	return v, nil
}

func unhex(s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	return hex.DecodeString(s)
}

// toVec describes a decoded frame as JSON. inner is the decompressed payload
// of a COMPRESSED frame (nil otherwise).
func toVec(f *Frame, d *Decoder) (vecFrame, error) {
	v := vecFrame{
		Type: f.Type.String(), Flags: flagList(f.Flags), Lane: uint8(f.Lane),
		Route: f.Route, Corr: f.Corr, Seq: f.Seq, MsgID: f.MsgID, Offset: f.Offset, Total: f.Total,
		TTL: f.TTL, ReconnectAfter: f.ReconnectAfter, AckLane: uint8(f.AckLane), AckDelay: f.AckDelay,
		Cumulative: f.Cumulative, Selective: f.Selective, Count: f.Count, Options: f.Options, Opaque: f.Opaque,
	}
	if f.Type.IsMessage() {
		// SPEC §6.5: a message frame's Opaque is its Key.
		v.Key, v.Opaque = f.Key(), 0
	}
	switch f.Type {
	case protocol.FrameConfirm:
		v.AckLane, v.ConfirmLane, v.Verdict = 0, uint8(f.AckLane), f.Verdict.String()
		return v, nil
	case protocol.FrameGapReport:
		g, err := ParseGapReport(f.Payload)
		if err != nil {
			return v, err
		}
		v.GapReport = &vecGap{g.Delivered, g.DroppedCount, g.DroppedBytes, g.DroppedAge, g.Expired}
		return v, nil
	case protocol.FrameError, protocol.FrameGoAway, protocol.FrameResult:
		v.Code = f.Code.String()
		if f.Type == protocol.FrameResult {
			v.Detail = string(f.Payload)
		} else {
			v.Reason = string(f.Payload)
		}
		return v, nil
	case protocol.FramePublish:
		v.Topic = string(f.Name)
	case protocol.FrameDirect:
		v.Peer = string(f.Name)
	case protocol.FrameSubscribe, protocol.FrameUnsubscribe:
		v.Pattern = string(f.Name)
		return v, nil
	case protocol.FrameHello:
		h, err := ParseHello(f.Payload)
		if err != nil {
			return v, err
		}
		v.Hello = &vecHello{h.Version, h.Capabilities, h.MaxFrameSize, h.MaxMessageSize, h.HeartbeatMs,
			h.ReceiveMax, h.SessionExpiry, u64s(h.Received), string(h.ClientID), hex.EncodeToString(h.AuthToken),
			hex.EncodeToString(h.SessionID), hex.EncodeToString(h.ResumeToken)}
		return v, nil
	case protocol.FrameWelcome:
		w, err := ParseWelcome(f.Payload)
		if err != nil {
			return v, err
		}
		v.Welcome = &vecWelcome{w.Version, w.Capabilities, w.SessionPresent, w.MaxFrameSize, w.MaxMessageSize,
			w.HeartbeatMs, w.ReceiveMax, w.SessionExpiry, u64s(w.Received), string(w.ClientID),
			hex.EncodeToString(w.SessionID), hex.EncodeToString(w.ResumeToken)}
		return v, nil
	}
	v.PayloadHex = hex.EncodeToString(f.Payload)
	payload := f.Payload
	if f.Flags&protocol.FlagCompressed != 0 {
		limit := d.MaxFrameSize
		if f.Flags&protocol.FlagFragment != 0 {
			limit = int(f.Total - f.Offset)
		}
		var err error
		if payload, err = AppendDecompressed(nil, f.Payload, limit); err != nil {
			return v, err
		}
		if f.Flags&protocol.FlagFragment != 0 && len(payload) == 0 {
			return v, ErrFragmentEmpty // SPEC §10.3 rule 7
		}
		v.DecodedPayloadHex = hex.EncodeToString(payload)
	}
	if f.Type == protocol.FrameBatch {
		it := d.Batch(f, payload)
		for {
			inner, ok, err := it.Next()
			if err != nil {
				return v, err
			}
			if !ok {
				break
			}
			iv, err := toVec(&inner, d)
			if err != nil {
				return v, err
			}
			v.Frames = append(v.Frames, iv)
		}
	}
	return v, nil
}

// fromVec builds the frame a JSON description names, for the encode
// direction: encoding it must give the vector's bytes exactly.
func fromVec(v *vecFrame) (Frame, error) {
	var f Frame
	var err error
	if f.Type, err = typeByName(v.Type); err != nil {
		return f, err
	}
	if f.Flags, err = parseFlags(v.Flags); err != nil {
		return f, err
	}
	f.Lane = protocol.Lane(v.Lane)
	f.Route, f.Corr, f.Seq, f.MsgID, f.Offset, f.Total = v.Route, v.Corr, v.Seq, v.MsgID, v.Offset, v.Total
	f.TTL, f.ReconnectAfter, f.AckLane, f.AckDelay = v.TTL, v.ReconnectAfter, protocol.Lane(v.AckLane), v.AckDelay
	f.Cumulative, f.Selective, f.Count, f.Options, f.Opaque = v.Cumulative, v.Selective, v.Count, v.Options, v.Opaque
	if v.Key != 0 {
		f.Opaque = v.Key
	}
	if v.Code != "" {
		if f.Code, err = codeByName(v.Code); err != nil {
			return f, err
		}
	}
	if v.ConfirmLane != 0 {
		f.AckLane = protocol.Lane(v.ConfirmLane)
	}
	if v.Verdict != "" {
		if f.Verdict, err = verdictByName(v.Verdict); err != nil {
			return f, err
		}
	}
	switch {
	case v.Topic != "":
		f.Name = []byte(v.Topic)
	case v.Peer != "":
		f.Name = []byte(v.Peer)
	case v.Pattern != "":
		f.Name = []byte(v.Pattern)
	}
	switch {
	case v.Reason != "":
		f.Payload = []byte(v.Reason)
	case v.Detail != "":
		f.Payload = []byte(v.Detail)
	default:
		if f.Payload, err = unhex(v.PayloadHex); err != nil {
			return f, err
		}
	}
	if v.Hello != nil {
		h := Hello{Version: v.Hello.Version, Capabilities: v.Hello.Capabilities, MaxFrameSize: v.Hello.MaxFrameSize,
			MaxMessageSize: v.Hello.MaxMessageSize, HeartbeatMs: v.Hello.HeartbeatMs, ReceiveMax: v.Hello.ReceiveMax,
			SessionExpiry: v.Hello.SessionExpiry, ClientID: []byte(v.Hello.ClientID)}
		if h.Received, err = parseU64s(v.Hello.Received); err != nil {
			return f, err
		}
		if h.AuthToken, err = unhex(v.Hello.AuthTokenHex); err != nil {
			return f, err
		}
		if h.SessionID, err = unhex(v.Hello.SessionIDHex); err != nil {
			return f, err
		}
		if h.ResumeToken, err = unhex(v.Hello.ResumeTokenHex); err != nil {
			return f, err
		}
		f.Payload = h.Append(nil)
	}
	if v.GapReport != nil {
		g := GapReport{v.GapReport.Delivered, v.GapReport.DroppedCount, v.GapReport.DroppedBytes,
			v.GapReport.DroppedAge, v.GapReport.Expired}
		f.Payload = g.Append(nil)
	}
	if v.Welcome != nil {
		w := Welcome{Version: v.Welcome.Version, Capabilities: v.Welcome.Capabilities,
			SessionPresent: v.Welcome.SessionPresent, MaxFrameSize: v.Welcome.MaxFrameSize,
			MaxMessageSize: v.Welcome.MaxMessageSize, HeartbeatMs: v.Welcome.HeartbeatMs,
			ReceiveMax: v.Welcome.ReceiveMax, SessionExpiry: v.Welcome.SessionExpiry, ClientID: []byte(v.Welcome.ClientID)}
		if w.Received, err = parseU64s(v.Welcome.Received); err != nil {
			return f, err
		}
		if w.SessionID, err = unhex(v.Welcome.SessionIDHex); err != nil {
			return f, err
		}
		if w.ResumeToken, err = unhex(v.Welcome.ResumeTokenHex); err != nil {
			return f, err
		}
		f.Payload = w.Append(nil)
	}
	return f, nil
}
