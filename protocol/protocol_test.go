package protocol

import (
	"testing"
	"unsafe"
)

func TestStrings(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{FrameHello.String(), "HELLO"},
		{FrameResult.String(), "RESULT"},
		{FrameType(0).String(), "UNKNOWN_FRAME_TYPE(0)"},
		{FrameConfirm.String(), "CONFIRM"},
		{FrameGapReport.String(), "GAP_REPORT"},
		{FrameType(0x11).String(), "UNKNOWN_FRAME_TYPE(17)"},
		{FrameType(200).String(), "UNKNOWN_FRAME_TYPE(200)"},
		{(FlagCompressed | FlagFragment).String(), "COMPRESSED|FRAGMENT"},
		{Flags(0).String(), "0"},
		{(FlagReliable | 0x80).String(), "RELIABLE|0x80"},
		{(FlagReliable | FlagAppAck).String(), "RELIABLE|APP_ACK"},
		{(FlagExpiry | FlagKeyed | 0x80).String(), "EXPIRY|KEYED|0x80"},
		{ConfirmProcessed.String(), "PROCESSED"},
		{ConfirmRejected.String(), "REJECTED"},
		{Verdict(2).String(), "UNKNOWN_VERDICT(2)"},
		{LaneBulk.String(), "BULK"},
		{Lane(4).String(), "INVALID_LANE(4)"},
		{CodeSlowConsumer.String(), "SLOW_CONSUMER"},
		{ErrorCode(0xbeef).String(), "UNKNOWN_ERROR(0xbeef)"},
		{ScopeEither.String(), "either"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func TestRegistries(t *testing.T) {
	if n := len(FrameTypes()); n != 16 {
		t.Fatalf("%d frame types", n)
	}
	for _, ft := range FrameTypes() {
		if !ft.Known() {
			t.Fatalf("%v not known", ft)
		}
	}
	// SPEC §4.2: 0x00 and 0x11 upwards stay reserved.
	for _, ft := range []FrameType{0x00, 0x11, 0x7f, 0x80, 0xff} {
		if ft.Known() {
			t.Fatalf("%#x must stay unknown until a revision defines it", uint8(ft))
		}
	}
	if vs := Verdicts(); len(vs) != 2 || vs[0] != ConfirmProcessed || vs[1] != ConfirmRejected || Verdict(2).Known() {
		t.Fatalf("verdicts %v", vs)
	}
	codes := ErrorCodes()
	for i := 1; i < len(codes); i++ {
		if codes[i] <= codes[i-1] {
			t.Fatal("ErrorCodes not sorted")
		}
	}
	for _, c := range codes {
		if c.Scope() == 0 {
			t.Fatalf("%v has no scope", c)
		}
	}
	// The brief's required codes exist.
	for _, name := range []string{"PROTOCOL_ERROR", "FRAME_TOO_LARGE", "UNSUPPORTED_VERSION", "AUTH_FAILED",
		"IDLE_TIMEOUT", "SLOW_CONSUMER", "RATE_LIMITED", "RESUME_FAILED", "MESSAGE_TOO_LARGE",
		"COMPRESSION_ERROR", "GOING_AWAY", "INTERNAL"} {
		found := false
		for _, c := range codes {
			found = found || c.String() == name
		}
		if !found {
			t.Errorf("error code %s missing", name)
		}
	}
}

func TestLaneRules(t *testing.T) {
	for _, ft := range FrameTypes() {
		for l := Lane(0); l < 5; l++ {
			got := LaneAllowed(ft, l)
			var want bool
			switch LaneRuleOf(ft) {
			case LaneRuleControl:
				want = l == 0
			case LaneRuleMessage:
				want = l >= 1 && l <= 3
			case LaneRuleAny:
				want = l <= 3
			}
			if got != want {
				t.Errorf("%v on lane %d: %v", ft, l, got)
			}
		}
		// Flags beyond the message flags only on the message frames.
		if !ft.IsMessage() && ft != FrameBatch && AllowedFlags(ft) != 0 {
			t.Errorf("%v allows flags %v", ft, AllowedFlags(ft))
		}
	}
	if !FlagCompressed.Has(FlagCompressed) || FlagCompressed.Has(FlagReliable) {
		t.Fatal("Has")
	}
	// SPEC §8.1: CONFIRM and GAP_REPORT are lane 0 only and take no flags.
	for _, ft := range []FrameType{FrameConfirm, FrameGapReport} {
		if LaneRuleOf(ft) != LaneRuleControl || AllowedFlags(ft) != 0 {
			t.Errorf("%v: lane rule %v, flags %v", ft, LaneRuleOf(ft), AllowedFlags(ft))
		}
	}
}

// SPEC §3.3: "APP_ACK ... Only together with RELIABLE (APP_ACK without
// RELIABLE: PROTOCOL_ERROR)."
func TestFlagsValid(t *testing.T) {
	tests := []struct {
		t    FrameType
		f    Flags
		want bool
	}{
		{FrameData, 0, true},
		{FrameData, FlagReliable | FlagAppAck, true},
		{FramePublish, FlagReliable | FlagAppAck | FlagFragment | FlagExpiry | FlagCompressed, true},
		{FrameDirect, FlagReliable | FlagAppAck, true},
		{FrameData, FlagAppAck, false},
		{FramePublish, FlagAppAck | FlagExpiry, false},
		{FramePublish, FlagResponse, false},
		{FrameConfirm, FlagAppAck, false},
		{FrameGapReport, FlagCompressed, false},
		{FrameBatch, FlagCompressed, true},
		// SPEC §3.3: KEYED on the three message types, alone or with any
		// other of their flags.
		{FrameData, FlagKeyed, true},
		{FramePublish, FlagKeyed | FlagExpiry, true},
		{FrameDirect, FlagKeyed | FlagReliable | FlagAppAck | FlagFragment, true},
		{FrameData, FlagKeyed | FlagAppAck, false},
		{FrameBatch, FlagKeyed, false},
		{FrameSubscribe, FlagKeyed, false},
		{FrameData, 0x80, false},
	}
	for _, tt := range tests {
		if got := FlagsValid(tt.t, tt.f); got != tt.want {
			t.Errorf("FlagsValid(%v, %v) = %v, want %v", tt.t, tt.f, got, tt.want)
		}
	}
}

func TestSizes(t *testing.T) {
	if HeaderSize != 7 || MinLength != 3 || unsafe.Sizeof(ErrorCode(0)) != 2 {
		t.Fatal("header layout changed")
	}
	if DefaultMaxFrameSize > HardMaxFrameSize || MinMaxFrameSize > DefaultMaxFrameSize ||
		DefaultFragmentSize >= DefaultMaxFrameSize-64 || DefaultMaxMessageSize > HardMaxMessageSize {
		t.Fatal("limits out of order")
	}
}
