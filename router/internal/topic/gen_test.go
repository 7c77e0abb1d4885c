package topic

import "testing"

// Gen changes with every subscription added or removed, and only then;
// AppendMatchesGen reads it with the matches.
func TestGen(t *testing.T) {
	tr := New[int]()
	g := tr.Gen()
	step := func(what string, changed bool) {
		t.Helper()
		if now := tr.Gen(); (now != g) != changed {
			t.Fatalf("%s: generation %d -> %d, changed want %v", what, g, now, changed)
		}
		g = tr.Gen()
	}
	if _, err := tr.Subscribe([]byte("a/+"), 1); err != nil {
		t.Fatal(err)
	}
	step("subscribe", true)
	_, _ = tr.Subscribe([]byte("a/+"), 1)
	step("subscribe again", false)
	if m, gen := tr.AppendMatchesGen(nil, []byte("a/b")); len(m) != 1 || gen != g {
		t.Fatalf("matches %v at %d, want [1] at %d", m, gen, g)
	}
	tr.Unsubscribe([]byte("x"), 1)
	step("unsubscribe unknown", false)
	_, _ = tr.Subscribe([]byte("#"), 2)
	step("subscribe another", true)
	tr.Unsubscribe([]byte("a/+"), 1)
	step("unsubscribe", true)
	tr.UnsubscribeAll(2)
	step("unsubscribe all", true)
	tr.UnsubscribeAll(2)
	step("unsubscribe all again", false)
}
