package codec

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/ferry-proto/ferry/protocol"
)

// SPEC §3.3: "The fields that flags add appear after the type's fixed
// fields, in ascending order of their flag bits": the Key (KEYED, 0x40)
// comes after TTL (EXPIRY, 0x10) and right before the payload.
func TestKeyedFieldOrder(t *testing.T) {
	f := Frame{Type: protocol.FrameDirect,
		Flags: protocol.FlagReliable | protocol.FlagFragment | protocol.FlagExpiry | protocol.FlagAppAck | protocol.FlagKeyed,
		Lane:  2, Corr: 0, Seq: 0x0101010101010101, MsgID: 0x02020202, Offset: 0, Total: 0x03030303, TTL: 0x04040404,
		Opaque: 0x0505050505050505, Name: []byte("p"), Payload: []byte("xy")}
	b := f.Append(nil)
	body := b[protocol.HeaderSize+4+2+1:] // Corr, PeerLen, Peer
	want := []byte{1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 0, 0, 0, 0, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5, 'x', 'y'}
	if !bytes.Equal(body, want) {
		t.Fatalf("optional fields and payload\n got %x\nwant %x", body, want)
	}
	if f.HeaderLen() != len(b)-2 || f.Len() != len(b) {
		t.Fatalf("HeaderLen %d Len %d for %d bytes", f.HeaderLen(), f.Len(), len(b))
	}
	d := NewDecoder()
	g, n, err := d.Decode(b)
	if err != nil || n != len(b) || g.Key() != 0x0505050505050505 || g.TTL != 0x04040404 || string(g.Payload) != "xy" {
		t.Fatalf("decoded %+v, n=%d, err=%v", g, n, err)
	}
}

// Key reads Opaque only where it is a key: a message frame with KEYED.
func TestKey(t *testing.T) {
	d := NewDecoder()
	for _, tt := range []struct {
		name string
		f    Frame
		want uint64
	}{
		{"keyed", keyedData, keyedData.Opaque},
		{"keyed, max", modified(keyedExpiry, func(f *Frame) { f.Opaque = 1<<64 - 1 }), 1<<64 - 1},
		{"not keyed", reliableData, 0},
		{"ping", Frame{Type: protocol.FramePing, Opaque: 7}, 0},
	} {
		g := encodeDecode(t, &d, tt.f)
		if g.Key() != tt.want || tt.f.Key() != tt.want {
			t.Errorf("%s: Key %d (decoded %d), want %d", tt.name, tt.f.Key(), g.Key(), tt.want)
		}
		if tt.f.Type.IsMessage() && !tt.f.Flags.Has(protocol.FlagKeyed) && g.Opaque != 0 {
			t.Errorf("%s: Opaque %d decoded without KEYED", tt.name, g.Opaque)
		}
	}
	// An Opaque left on a message frame without KEYED is not encoded.
	stray := modified(reliableData, func(f *Frame) { f.Opaque = 9 })
	if !bytes.Equal(stray.Append(nil), reliableData.Append(nil)) || stray.Key() != 0 {
		t.Fatal("Opaque without KEYED reached the wire")
	}
}

// SPEC §6.5: "Key 0 is invalid": PROTOCOL_ERROR, like Seq 0.
func TestKeyZero(t *testing.T) {
	d := NewDecoder()
	for _, f := range []Frame{keyedData, keyedExpiry,
		{Type: protocol.FramePublish, Flags: protocol.FlagKeyed, Lane: 3, Name: []byte("t"), Opaque: 1}} {
		b := f.Append(nil)
		at := f.HeaderLen() - 8 // the Key is the last field before the payload
		if got := binary.BigEndian.Uint64(b[at:]); got != f.Opaque {
			t.Fatalf("%s: Key at %d reads %#x", f.Type, at, got)
		}
		copy(b[at:], make([]byte, 8))
		if _, _, err := d.Decode(b); err != ErrBadValue || CodeOf(err) != protocol.CodeProtocolError {
			t.Errorf("%s with Key 0: %v, want ErrBadValue", f.Type, err)
		}
		f.Opaque = 0
		if err := f.Check(protocol.DefaultMaxFrameSize); err != ErrBadValue {
			t.Errorf("%s with Key 0: Check %v, want ErrBadValue", f.Type, err)
		}
	}
}

// SPEC §10.1: every fragment of a keyed message carries KEYED and the same
// Key; the Fragmenter copies it from the template like TTL.
func TestFragmenterKeyed(t *testing.T) {
	tmpl := Frame{Type: protocol.FrameData, Flags: protocol.FlagReliable | protocol.FlagExpiry | protocol.FlagKeyed | protocol.FlagCompressed,
		Lane: 2, Route: 4, TTL: 900, Opaque: 0xfeed, Payload: []byte("ignored")}
	frags := fragmentsOf(tmpl, bytes.Repeat([]byte("k"), 50), 16, 3)
	if len(frags) != 4 {
		t.Fatalf("%d fragments", len(frags))
	}
	for i, f := range frags {
		if f.Key() != 0xfeed || f.TTL != 900 || f.Flags != protocol.FlagReliable|protocol.FlagExpiry|protocol.FlagKeyed|protocol.FlagFragment {
			t.Fatalf("fragment %d: flags %v key %#x ttl %d", i, f.Flags, f.Key(), f.TTL)
		}
	}
}

// SPEC §10.3 check 6.1: a later fragment whose Key (or KEYED) differs from
// the first's is a PROTOCOL_ERROR, as a different TTL is.
func TestReassemblerKeyed(t *testing.T) {
	d := NewDecoder()
	tmpl := Frame{Type: protocol.FramePublish, Flags: protocol.FlagReliable | protocol.FlagKeyed, Lane: 1, Name: []byte("t"), Opaque: 77}
	frags := fragmentsOf(tmpl, []byte("0123456789abcdefghij"), 8, 5)
	for i := range frags {
		frags[i].Seq = uint64(1 + i)
	}

	r := NewReassembler(DefaultReassemblyLimits())
	var msg []byte
	for i, f := range frags {
		g := encodeDecode(t, &d, f)
		out, done, err := r.Add(&g, int64(i))
		if err != nil || done != (i == len(frags)-1) {
			t.Fatalf("fragment %d: done=%v err=%v", i, done, err)
		}
		if done {
			msg = out
			// The message's fields, the Key among them, are the last
			// fragment's, checked equal to the first's.
			if g.Key() != 77 {
				t.Fatalf("message key %d", g.Key())
			}
		}
	}
	if string(msg) != "0123456789abcdefghij" {
		t.Fatalf("message %q", msg)
	}

	for name, fn := range map[string]func(*Frame){
		"other key":      func(f *Frame) { f.Opaque = 78 },
		"KEYED dropped":  func(f *Frame) { f.Flags &^= protocol.FlagKeyed; f.Opaque = 0 },
		"other ttl":      func(f *Frame) { f.Flags |= protocol.FlagExpiry; f.TTL = 5 },
		"other key, max": func(f *Frame) { f.Opaque = 1<<64 - 1 },
	} {
		r := NewReassembler(DefaultReassemblyLimits())
		first := encodeDecode(t, &d, frags[0])
		if _, _, err := r.Add(&first, 0); err != nil {
			t.Fatal(err)
		}
		g := encodeDecode(t, &d, modified(frags[1], fn))
		if _, _, err := r.Add(&g, 1); err != ErrFragmentMismatch || CodeOf(err) != protocol.CodeProtocolError {
			t.Errorf("%s: err=%v, want ErrFragmentMismatch", name, err)
		}
	}

	// An unkeyed message started on the lane: a fragment that adds KEYED
	// does not continue it either.
	plainT := tmpl
	plainT.Flags &^= protocol.FlagKeyed
	plainT.Opaque = 0
	plain := fragmentsOf(plainT, []byte("0123456789"), 8, 6)
	plain[0].Seq, plain[1].Seq = 1, 2
	r = NewReassembler(DefaultReassemblyLimits())
	first := encodeDecode(t, &d, plain[0])
	if _, _, err := r.Add(&first, 0); err != nil {
		t.Fatal(err)
	}
	g := encodeDecode(t, &d, modified(plain[1], func(f *Frame) { f.Flags |= protocol.FlagKeyed; f.Opaque = 1 }))
	if _, _, err := r.Add(&g, 1); err != ErrFragmentMismatch {
		t.Errorf("KEYED added: err=%v, want ErrFragmentMismatch", err)
	}

	// SPEC §12.8: a placeholder that keeps KEYED and the Key ends the
	// partial reliable message of its lane.
	r = NewReassembler(DefaultReassemblyLimits())
	first = encodeDecode(t, &d, frags[0])
	if _, _, err := r.Add(&first, 0); err != nil {
		t.Fatal(err)
	}
	ph := encodeDecode(t, &d, Frame{Type: protocol.FramePublish, Flags: protocol.FlagReliable | protocol.FlagExpiry | protocol.FlagKeyed,
		Lane: 1, Name: []byte("t"), Seq: 2, Opaque: 77})
	if !ph.IsExpiredPlaceholder() {
		t.Fatal("keyed placeholder not recognised")
	}
	if out, done, err := r.Add(&ph, 1); err != nil || !done || len(out) != 0 || r.Partial() != 0 {
		t.Fatalf("keyed placeholder: done=%v err=%v partial=%d", done, err, r.Partial())
	}
}
