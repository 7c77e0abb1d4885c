//go:build !race

package topic

import (
	"strconv"
	"testing"
)

// Zero-allocation claims: once warm, Match and AppendMatches (with room in
// dst) allocate nothing, including when subscribers with several matching
// patterns have to be deduplicated. (Under -race sync.Pool drops items on
// purpose, hence the build tag.)
func TestAllocs(t *testing.T) {
	tr := New[int]()
	for s := range 1000 {
		g := strconv.Itoa(s % 100)
		subscribe(t, tr, "game/"+g+"/pos", s)
		if s%3 == 0 {
			subscribe(t, tr, "game/+/pos", s) // a second match: dedupe path
		}
		if s%10 == 0 {
			subscribe(t, tr, "game/"+g+"/#", s)
		}
	}
	subscribe(t, tr, "#", 5000)
	topic := []byte("game/42/pos")
	dollar := []byte("$SYS/x")
	miss := []byte("chat/1/2/3")

	n := 0
	fn := func(int) { n++ }
	tr.Match(topic, fn) // warm the pool
	allocs := testing.AllocsPerRun(1000, func() {
		tr.Match(topic, fn)
		tr.Match(dollar, fn)
		tr.Match(miss, fn)
	})
	if allocs != 0 {
		t.Errorf("Match: %v allocs/op, want 0", allocs)
	}
	// One warm-up call, then AllocsPerRun's own warm-up and 1000 runs of
	// three topics: "#" matches the miss too, and nothing matches "$SYS/x".
	m := len(tr.AppendMatches(nil, topic))
	if want := m + 1001*(m+1); n != want {
		t.Errorf("fn called %d times, want %d", n, want)
	}

	dst := make([]int, 0, 1024)
	allocs = testing.AllocsPerRun(1000, func() {
		dst = tr.AppendMatches(dst[:0], topic)
		dst = tr.AppendMatches(dst, miss)
	})
	if allocs != 0 {
		t.Errorf("AppendMatches: %v allocs/op, want 0", allocs)
	}
	if len(dst) < 300 {
		t.Errorf("AppendMatches found %d subscribers, want over 300", len(dst))
	}

	allocs = testing.AllocsPerRun(1000, func() {
		if ValidTopic(topic) != nil || ValidPattern([]byte("game/+/#")) != nil {
			t.Fatal("invalid")
		}
	})
	if allocs != 0 {
		t.Errorf("ValidTopic+ValidPattern: %v allocs/op, want 0", allocs)
	}
}
