package codec

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ferry-proto/ferry/protocol"
)

// Run `go test ./codec -run TestVectors -update` (make vectors-update) to
// rewrite docs/vectors/ from the cases in vectorcases_test.go. Without
// -update the test checks the files both ways, as a third-party
// implementation would.
var update = flag.Bool("update", false, "rewrite docs/vectors from the cases")

var vectorDir = filepath.Join("..", "docs", "vectors")

func hexs(b []byte) string { return hex.EncodeToString(b) }

// receive runs a single frame through everything a receiver does with one
// frame on its own: decode, parse HELLO/WELCOME, decompress, walk batches.
func receive(b []byte, maxFrame int, compression bool) (vecFrame, int, error) {
	d := Decoder{MaxFrameSize: maxFrame, Compression: compression}
	if d.MaxFrameSize == 0 {
		d.MaxFrameSize = protocol.DefaultMaxFrameSize
	}
	f, n, err := d.Decode(b)
	if err != nil {
		return vecFrame{}, 0, err
	}
	v, err := toVec(&f, &d)
	return v, n, err
}

func outcome(err error) string {
	if err == nil {
		return ""
	}
	if errors.Is(err, ErrNeedMore) {
		return "need_more"
	}
	return CodeOf(err).String()
}

func buildFrameVectors(t *testing.T) vecFile {
	file := vecFile{Spec: "FERRY/1", Section: "A"}
	seen := map[string]bool{}
	for _, c := range frameCases() {
		if seen[c.name] {
			t.Fatalf("duplicate vector name %s", c.name)
		}
		seen[c.name] = true
		v := vecVector{Name: c.name, Section: c.section, Comment: c.comment, MaxFrameSize: c.maxFrame, Compression: c.compression}
		var b []byte
		if c.frame != nil {
			b = c.frame.Append(nil)
		} else {
			b = c.build()
		}
		v.Hex = hexs(b)
		got, n, err := receive(b, c.maxFrame, c.compression)
		switch {
		case c.needMore:
			if !errors.Is(err, ErrNeedMore) {
				t.Fatalf("%s: want need more, got %v", c.name, err)
			}
			v.NeedMore = true
		case c.err != "":
			if outcome(err) != c.err {
				t.Fatalf("%s: want %s, got %v", c.name, c.err, err)
			}
			v.Error = c.err
		default:
			if err != nil || n != len(b) {
				t.Fatalf("%s: valid case fails to decode: n=%d err=%v", c.name, n, err)
			}
			v.Frame = &got
		}
		file.Vectors = append(file.Vectors, v)
	}
	return file
}

func buildMsgVectors(t *testing.T) vecMsgFile {
	file := vecMsgFile{Spec: "FERRY/1", Section: "A"}
	for _, c := range msgCases() {
		v := vecMsgVector{Name: c.name, Section: c.section, Comment: c.comment, MaxMessageSize: c.maxMessage}
		for i := range c.frames {
			v.FramesHex = append(v.FramesHex, hexs(c.frames[i].Append(nil)))
		}
		got, err := reassemble(v.FramesHex, c.maxMessage)
		if c.err != "" {
			if outcome(err) != c.err {
				t.Fatalf("%s: want %s, got %v", c.name, c.err, err)
			}
			v.Error = c.err
		} else {
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			if !reflect.DeepEqual(got, c.messages) {
				t.Fatalf("%s: messages\n got %+v\nwant %+v", c.name, got, c.messages)
			}
			v.Messages = c.messages
		}
		file.Vectors = append(file.Vectors, v)
	}
	return file
}

// reassemble feeds frames to a receiver with compression on and returns
// the messages it delivers.
func reassemble(framesHex []string, maxMessage int) ([]vecMessage, error) {
	d := Decoder{MaxFrameSize: protocol.DefaultMaxFrameSize, Compression: true}
	// SPEC Appendix A.3: default limits; the byte budget is 2 × the max
	// message size.
	lim := DefaultReassemblyLimits()
	if maxMessage != 0 {
		lim.MaxMessageSize = maxMessage
		lim.MaxBytes = 2 * maxMessage
	}
	r := NewReassembler(lim)
	var out []vecMessage
	for i, h := range framesHex {
		b, err := hex.DecodeString(h)
		if err != nil {
			return nil, err
		}
		f, n, err := d.Decode(b)
		if err != nil {
			return out, err
		}
		if n != len(b) {
			return out, fmt.Errorf("frame %d: %d bytes left over", i, len(b)-n)
		}
		if !f.Type.IsMessage() {
			return out, fmt.Errorf("frame %d: %s is not a message frame", i, f.Type)
		}
		msg, done, err := r.Add(&f, int64(i))
		if err != nil {
			return out, err
		}
		// SPEC Appendix A.3: no clock runs, but a TTL of 0 is expired on
		// arrival (§6.4): such a message, an expired placeholder among
		// them (§12.8), is dropped.
		if done && f.Flags.Has(protocol.FlagExpiry) && f.TTL == 0 {
			continue
		}
		if done {
			m := vecMessage{Type: f.Type.String(), Lane: uint8(f.Lane), Route: f.Route, Corr: f.Corr, Key: f.Key(), PayloadHex: hexs(msg)}
			switch f.Type {
			case protocol.FramePublish:
				m.Topic = string(f.Name)
			case protocol.FrameDirect:
				m.Peer = string(f.Name)
			}
			out = append(out, m)
		}
	}
	return out, nil
}

func writeJSON(t *testing.T, name string, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(vectorDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(vectorDir, name), append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readJSON(t *testing.T, name string, v any) {
	b, err := os.ReadFile(filepath.Join(vectorDir, name))
	if err != nil {
		t.Fatalf("%v (run make vectors-update)", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// TestVectors checks docs/vectors/ both ways: decoding each vector's bytes
// gives its fields or its error, and encoding its fields gives exactly its
// bytes. It also checks that the files are what the cases generate, so a
// change to either is seen.
func TestVectors(t *testing.T) {
	frames := buildFrameVectors(t)
	msgs := buildMsgVectors(t)
	if *update {
		writeJSON(t, "frames.json", frames)
		writeJSON(t, "messages.json", msgs)
	}
	var onDisk vecFile
	readJSON(t, "frames.json", &onDisk)
	if !reflect.DeepEqual(normalize(onDisk), normalize(frames)) {
		t.Errorf("docs/vectors/frames.json differs from the cases: run make vectors-update and review the diff")
	}
	var msgsOnDisk vecMsgFile
	readJSON(t, "messages.json", &msgsOnDisk)
	if !reflect.DeepEqual(roundTrip(msgsOnDisk), roundTrip(msgs)) {
		t.Errorf("docs/vectors/messages.json differs from the cases: run make vectors-update and review the diff")
	}

	for _, v := range onDisk.Vectors {
		t.Run("frames/"+v.Name, func(t *testing.T) { checkFrameVector(t, v) })
	}
	for _, v := range msgsOnDisk.Vectors {
		t.Run("messages/"+v.Name, func(t *testing.T) {
			got, err := reassemble(v.FramesHex, v.MaxMessageSize)
			if v.Error != "" {
				if outcome(err) != v.Error {
					t.Fatalf("want %s, got %v", v.Error, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, v.Messages) {
				t.Fatalf("got %+v, want %+v", got, v.Messages)
			}
		})
	}
}

// TestSpecExamples checks the annotated hex dumps of SPEC Appendix B
// against the vectors, so the prose and the files cannot drift.
func TestSpecExamples(t *testing.T) {
	spec, err := os.ReadFile(filepath.Join("..", "docs", "SPEC.md"))
	if err != nil {
		t.Fatal(err)
	}
	var file vecFile
	readJSON(t, "frames.json", &file)
	known := map[string]string{}
	for _, v := range file.Vectors {
		known[v.Hex] = v.Name
	}
	found := 0
	for _, block := range strings.Split(string(spec), "```hex\n")[1:] {
		h := strings.Join(strings.Fields(strings.SplitN(block, "```", 2)[0]), "")
		if _, ok := known[h]; !ok {
			t.Errorf("SPEC hex example %s matches no vector", h)
		}
		found++
	}
	if found < 2 {
		t.Fatalf("found %d hex examples in SPEC.md, want at least 2", found)
	}
}

// roundTrip makes nil and empty slices compare equal after a JSON round trip.
func roundTrip[T any](v T) T {
	b, _ := json.Marshal(v)
	var out T
	_ = json.Unmarshal(b, &out)
	return out
}

// normalize makes nil and empty slices compare equal after a JSON round trip.
func normalize(f vecFile) vecFile {
	b, _ := json.Marshal(f)
	var out vecFile
	_ = json.Unmarshal(b, &out)
	return out
}

func checkFrameVector(t *testing.T, v vecVector) {
	b, err := hex.DecodeString(v.Hex)
	if err != nil {
		t.Fatal(err)
	}
	got, n, err := receive(b, v.MaxFrameSize, v.Compression)
	switch {
	case v.NeedMore:
		if !errors.Is(err, ErrNeedMore) {
			t.Fatalf("want need more, got %v", err)
		}
		return
	case v.Error != "":
		if outcome(err) != v.Error {
			t.Fatalf("want %s, got %v", v.Error, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if n != len(b) {
		t.Fatalf("decode consumed %d of %d bytes", n, len(b))
	}
	want, _ := json.Marshal(v.Frame)
	have, _ := json.Marshal(got)
	if !bytes.Equal(want, have) {
		t.Fatalf("decoded fields\n got %s\nwant %s", have, want)
	}
	// Encode direction: the fields give exactly the bytes.
	f, err := fromVec(v.Frame)
	if err != nil {
		t.Fatal(err)
	}
	if enc := f.Append(nil); !bytes.Equal(enc, b) {
		t.Fatalf("encoded\n got %x\nwant %x", enc, b)
	}
	if f.Len() != len(b) {
		t.Fatalf("Len() = %d, encoded %d bytes", f.Len(), len(b))
	}
	// The inner frames of a batch re-encode to its (decoded) inner bytes.
	if v.Frame.Type == "BATCH" {
		inner := v.Frame.PayloadHex
		if v.Frame.DecodedPayloadHex != "" {
			inner = v.Frame.DecodedPayloadHex
		}
		var joined []byte
		for i := range v.Frame.Frames {
			fi, err := fromVec(&v.Frame.Frames[i])
			if err != nil {
				t.Fatal(err)
			}
			joined = fi.Append(joined)
		}
		if hexs(joined) != inner {
			t.Fatalf("batch inner frames re-encode to %x, want %s", joined, inner)
		}
	}
}
