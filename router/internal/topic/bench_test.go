package topic

import (
	"math/rand/v2"
	"strconv"
	"testing"
)

// benchTrie builds a trie of n subscriptions shaped like a game server:
// topics game/<g>/<field> over n/10 games, and about two patterns per
// subscriber (so deduplication is exercised). Of the patterns, 70% are
// exact, 12% game/<g>/+, 10% game/<g>/#, 7% chat/<g>/# and 1% are global
// game/+/<field>.
func benchTrie(b *testing.B, n int) *Trie[int] {
	b.Helper()
	r := rand.New(rand.NewPCG(7, 7))
	fields := []string{"pos", "chat", "state", "score"}
	tr := New[int]()
	if _, err := tr.Subscribe([]byte("chat/7/#"), 0); err != nil { // for "deep"
		b.Fatal(err)
	}
	for tr.Len() < n {
		g, f := strconv.Itoa(r.IntN(n/10)), fields[r.IntN(len(fields))]
		var p string
		switch x := r.IntN(100); {
		case x < 70:
			p = "game/" + g + "/" + f
		case x < 82:
			p = "game/" + g + "/+"
		case x < 92:
			p = "game/" + g + "/#"
		case x < 99:
			p = "chat/" + g + "/#"
		default:
			p = "game/+/" + f
		}
		if _, err := tr.Subscribe([]byte(p), r.IntN(n/2)); err != nil {
			b.Fatal(err)
		}
	}
	return tr
}

var benchTopics = []struct{ name, topic string }{
	{"hit", "game/7/pos"},       // exact, game/7/+, game/7/#, game/+/pos
	{"deep", "chat/7/room/a/b"}, // chat/7/# only; five levels
	{"miss", "lobby/7/pos"},     // no first level in the trie
	{"dollar", "$SYS/load"},     // no wildcard may match
}

// BenchmarkMatch: one Match call with a counting callback, per trie size
// and topic; matches/op is the fan-out found.
func BenchmarkMatch(b *testing.B) {
	for _, n := range []int{1_000, 10_000, 100_000} {
		tr := benchTrie(b, n)
		for _, tc := range benchTopics {
			b.Run("subs="+strconv.Itoa(n)+"/"+tc.name, func(b *testing.B) {
				topic := []byte(tc.topic)
				found := 0
				fn := func(int) { found++ }
				b.ReportAllocs()
				for b.Loop() {
					tr.Match(topic, fn)
				}
				b.ReportMetric(float64(found)/float64(b.N), "matches/op")
			})
		}
	}
}

// BenchmarkAppendMatches: the same, into a caller-owned slice.
func BenchmarkAppendMatches(b *testing.B) {
	tr := benchTrie(b, 10_000)
	for _, tc := range benchTopics {
		b.Run("subs=10000/"+tc.name, func(b *testing.B) {
			topic := []byte(tc.topic)
			dst := make([]int, 0, 256)
			b.ReportAllocs()
			for b.Loop() {
				dst = tr.AppendMatches(dst[:0], topic)
			}
			b.ReportMetric(float64(len(dst)), "matches/op")
		})
	}
}

// BenchmarkMatchParallel: publishers on every P matching at once, the read
// lock shared; compare ns/op with BenchmarkMatch to see what the lock costs.
func BenchmarkMatchParallel(b *testing.B) {
	tr := benchTrie(b, 10_000)
	b.Run("subs=10000/hit", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			topic := []byte("game/7/pos")
			found := 0
			for pb.Next() {
				tr.Match(topic, func(int) { found++ })
			}
		})
	})
}

// BenchmarkSubscribeUnsubscribe: adding and removing one subscription in a
// trie of 10,000, creating and pruning its nodes each time.
func BenchmarkSubscribeUnsubscribe(b *testing.B) {
	tr := benchTrie(b, 10_000)
	p := []byte("game/new/+/x")
	b.ReportAllocs()
	for b.Loop() {
		if added, _ := tr.Subscribe(p, -1); !added {
			b.Fatal("not added")
		}
		tr.Unsubscribe(p, -1)
	}
}
