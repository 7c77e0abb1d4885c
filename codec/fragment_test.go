package codec

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ferry-proto/ferry/protocol"
)

func encodeDecode(t testing.TB, d *Decoder, f Frame) Frame {
	b := f.Append(nil)
	g, n, err := d.Decode(b)
	if err != nil || n != len(b) {
		t.Fatalf("decode %s: n=%d err=%v", f.Type, n, err)
	}
	return g
}

// Property: any message cut at any fragment size, each fragment compressed
// or not, with frames of the other lanes interleaved, comes out whole.
func TestFragmentReassembleProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	d := Decoder{MaxFrameSize: protocol.DefaultMaxFrameSize, Compression: true}
	r := NewReassembler(DefaultReassemblyLimits())
	for iter := range 300 {
		size := 1 + rng.IntN(70000)
		msg := make([]byte, size)
		for i := range msg {
			msg[i] = byte("abcab"[rng.IntN(5)]) // compressible
			if rng.IntN(4) == 0 {
				msg[i] = byte(rng.Uint32())
			}
		}
		lane := protocol.Lane(1 + rng.IntN(3))
		tmpl := Frame{Type: protocol.FramePublish, Lane: lane, Name: []byte("t/1"), Corr: uint32(iter)}
		fr := NewFragmenter(&tmpl, msg, uint32(iter), 1+rng.IntN(20000))
		var got []byte
		frames := 0
		for {
			f, ok := fr.Next()
			if !ok {
				break
			}
			frames++
			if rng.IntN(2) == 0 {
				if c, ok := AppendMaybeCompressed(nil, f.Payload); ok {
					f.Payload, f.Flags = c, f.Flags|protocol.FlagCompressed
				}
			}
			g := encodeDecode(t, &d, f)
			out, done, err := r.Add(&g, int64(frames))
			if err != nil {
				t.Fatalf("iter %d frame %d: %v", iter, frames, err)
			}
			if done {
				got = bytes.Clone(out)
			}
			// A frame of another lane between fragments is fine.
			other := Frame{Type: protocol.FrameData, Lane: 1 + (lane % 3), Payload: []byte("x")}
			og := encodeDecode(t, &d, other)
			if out, done, err := r.Add(&og, 0); err != nil || !done || string(out) != "x" {
				t.Fatalf("interleaved frame: %q %v %v", out, done, err)
			}
		}
		if !bytes.Equal(got, msg) {
			t.Fatalf("iter %d: message of %d bytes in %d fragments came out as %d bytes", iter, size, frames, len(got))
		}
		if r.Partial() != 0 || r.Reserved() != 0 {
			t.Fatalf("iter %d: %d partial, %d reserved after completion", iter, r.Partial(), r.Reserved())
		}
	}
	if r.Buffered() > 3*retainCap+2*protocol.MaxTopicLen {
		t.Fatalf("reassembler retains %d bytes when idle", r.Buffered())
	}
}

func TestReassemblerLimits(t *testing.T) {
	lim := DefaultReassemblyLimits()
	lim.MaxBytes = 100
	lim.MaxMessageSize = 80
	lim.MaxPartial = 2
	r := NewReassembler(lim)
	first := func(lane protocol.Lane, total uint32) *Frame {
		return &Frame{Type: protocol.FrameData, Lane: lane, Flags: protocol.FlagFragment, MsgID: 1, Total: total, Payload: []byte{1}}
	}
	if _, _, err := r.Add(first(1, 81), 0); err != ErrMessageTooLarge {
		t.Fatalf("over max message: %v", err)
	}
	if _, _, err := r.Add(first(1, 60), 0); err != nil {
		t.Fatal(err)
	}
	// SPEC §10.4: the budget is reserved from the declared totals.
	if _, _, err := r.Add(first(2, 41), 0); err != ErrFragmentLimit {
		t.Fatalf("over byte budget: %v", err)
	}
	if _, _, err := r.Add(first(2, 40), 0); err != nil {
		t.Fatal(err)
	}
	if r.Reserved() != 100 || r.Partial() != 2 {
		t.Fatalf("reserved %d partial %d", r.Reserved(), r.Partial())
	}
	if _, _, err := r.Add(first(3, 1), 0); err != ErrFragmentLimit {
		t.Fatalf("over partial count: %v", err)
	}
	// Memory actually held grows with the data, not with the declared total.
	if r.Buffered() > 2*(4<<10)+64 {
		t.Fatalf("holds %d bytes for 2 bytes of data", r.Buffered())
	}
	// A plain message on a lane with a partial one.
	plain := &Frame{Type: protocol.FrameData, Lane: 1}
	if _, _, err := r.Add(plain, 0); err != ErrFragmentInterrupt {
		t.Fatalf("interrupting frame: %v", err)
	}
}

func TestReassemblerTimeout(t *testing.T) {
	lim := DefaultReassemblyLimits()
	lim.Timeout = time.Second
	r := NewReassembler(lim)
	if _, ok := r.NextDeadline(); ok {
		t.Fatal("deadline with nothing partial")
	}
	f := &Frame{Type: protocol.FrameData, Lane: 3, Flags: protocol.FlagFragment, MsgID: 1, Total: 10, Payload: []byte{1}}
	start := int64(5 * time.Second)
	if _, _, err := r.Add(f, start); err != nil {
		t.Fatal(err)
	}
	dl, ok := r.NextDeadline()
	if !ok || dl != start+int64(time.Second) {
		t.Fatalf("deadline %d %v", dl, ok)
	}
	if err := r.Expire(dl); err != nil {
		t.Fatalf("expired at the deadline itself: %v", err)
	}
	// Progress pushes the deadline out (an inactivity timeout).
	f.Offset = 1
	if _, _, err := r.Add(f, dl); err != nil {
		t.Fatal(err)
	}
	if err := r.Expire(dl + int64(time.Second)/2); err != nil {
		t.Fatal(err)
	}
	if err := r.Expire(dl + int64(time.Second) + 1); err != ErrReassemblyTimeout {
		t.Fatalf("want timeout, got %v", err)
	}
	r.Reset()
	if r.Partial() != 0 || r.Expire(1<<62) != nil {
		t.Fatal("Reset kept state")
	}
}

func TestReassemblerReleasesLargeBuffers(t *testing.T) {
	r := NewReassembler(DefaultReassemblyLimits())
	msg := make([]byte, 1<<20)
	tmpl := Frame{Type: protocol.FrameData, Lane: 3}
	fr := NewFragmenter(&tmpl, msg, 1, protocol.DefaultFragmentSize)
	for {
		f, ok := fr.Next()
		if !ok {
			break
		}
		if _, _, err := r.Add(&f, 0); err != nil {
			t.Fatal(err)
		}
	}
	if r.Buffered() < 1<<20 {
		t.Fatalf("the delivered message's buffer is gone before the next Add: %d", r.Buffered())
	}
	if _, _, err := r.Add(&Frame{Type: protocol.FrameData, Lane: 1}, 0); err != nil {
		t.Fatal(err)
	}
	if r.Buffered() > retainCap {
		t.Fatalf("still holds %d bytes after the next Add", r.Buffered())
	}
}

func TestFragmenter(t *testing.T) {
	tmpl := Frame{Type: protocol.FrameData, Lane: 2, Route: 4, Flags: protocol.FlagCompressed | protocol.FlagReliable, Payload: []byte("ignored")}
	fr := NewFragmenter(&tmpl, make([]byte, 40), 7, 16)
	var offs []uint32
	for {
		f, ok := fr.Next()
		if !ok {
			break
		}
		if f.Flags != protocol.FlagReliable|protocol.FlagFragment || f.MsgID != 7 || f.Total != 40 || f.Route != 4 {
			t.Fatalf("fragment fields %+v", f)
		}
		offs = append(offs, f.Offset)
	}
	if len(offs) != 3 || offs[1] != 16 || offs[2] != 32 || fr.Remaining() != 0 {
		t.Fatalf("offsets %v", offs)
	}
	if NeedsFragments(16, 16) || !NeedsFragments(17, 16) {
		t.Fatal("NeedsFragments")
	}
}

// SPEC §12.8: "a placeholder on a lane whose partial message is reliable
// ends that message", an exception to §10.3 rule 4; nothing else does.
func TestReassemblerExpiredPlaceholder(t *testing.T) {
	d := NewDecoder()
	r := NewReassembler(DefaultReassemblyLimits())
	tmpl := Frame{Type: protocol.FrameDirect, Flags: protocol.FlagReliable | protocol.FlagExpiry | protocol.FlagAppAck,
		Lane: 3, Name: []byte("peer"), TTL: 5000}
	frags := fragmentsOf(tmpl, bytes.Repeat([]byte("z"), 30), 10, 4)
	for i := range frags {
		frags[i].Seq = uint64(20 + i)
	}
	placeholder := Frame{Type: protocol.FrameDirect, Flags: protocol.FlagReliable | protocol.FlagExpiry, Lane: 3, Seq: 21, Name: []byte("peer")}

	first := encodeDecode(t, &d, frags[0])
	if _, done, err := r.Add(&first, 1); done || err != nil || r.Partial() != 1 || r.Reserved() != 30 {
		t.Fatalf("first fragment: done=%v err=%v partial=%d reserved=%d", done, err, r.Partial(), r.Reserved())
	}
	ph := encodeDecode(t, &d, placeholder)
	msg, done, err := r.Add(&ph, 2)
	if err != nil || !done || len(msg) != 0 || r.Partial() != 0 || r.Reserved() != 0 {
		t.Fatalf("placeholder: msg=%q done=%v err=%v partial=%d reserved=%d", msg, done, err, r.Partial(), r.Reserved())
	}
	if _, ok := r.NextDeadline(); ok {
		t.Fatal("a deadline is left for the ended message")
	}
	// The message's last fragment, had it come, would now be a fragment
	// without a first one: the lane starts afresh.
	last := encodeDecode(t, &d, frags[2])
	if _, _, err := r.Add(&last, 3); err != ErrFragmentOrder {
		t.Fatalf("fragment after the placeholder: err=%v, want ErrFragmentOrder", err)
	}

	// Not placeholders: they interrupt the partial message, as before.
	for name, bad := range map[string]Frame{
		"with payload":    {Type: protocol.FrameDirect, Flags: protocol.FlagReliable | protocol.FlagExpiry, Lane: 3, Seq: 21, Name: []byte("peer"), Payload: []byte("x")},
		"ttl 1":           {Type: protocol.FrameDirect, Flags: protocol.FlagReliable | protocol.FlagExpiry, Lane: 3, Seq: 21, Name: []byte("peer"), TTL: 1},
		"unreliable":      {Type: protocol.FrameDirect, Flags: protocol.FlagExpiry, Lane: 3, Name: []byte("peer")},
		"without expiry":  {Type: protocol.FrameDirect, Flags: protocol.FlagReliable, Lane: 3, Seq: 21, Name: []byte("peer")},
		"unreliable part": {},
	} {
		r := NewReassembler(DefaultReassemblyLimits())
		start := first
		if name == "unreliable part" {
			// A placeholder never ends an unreliable partial message.
			un := frags[0]
			un.Flags &^= protocol.FlagReliable | protocol.FlagAppAck
			start, bad = encodeDecode(t, &d, un), placeholder
		}
		if _, _, err := r.Add(&start, 1); err != nil {
			t.Fatalf("%s: first fragment: %v", name, err)
		}
		g := encodeDecode(t, &d, bad)
		if _, _, err := r.Add(&g, 2); err != ErrFragmentInterrupt {
			t.Errorf("%s: err=%v, want ErrFragmentInterrupt", name, err)
		}
		if r.Partial() != 1 {
			t.Errorf("%s: partial message lost", name)
		}
	}
}
