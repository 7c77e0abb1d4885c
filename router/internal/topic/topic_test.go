package topic

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ferry-proto/ferry/protocol"
)

// refMatch is the reference matcher: MQTT §4.7 read literally, on split
// strings, with no trie.
func refMatch(pattern, topic string) bool {
	p := strings.Split(pattern, "/")
	tl := strings.Split(topic, "/")
	// §4.7.2: filters starting with a wildcard do not match '$' topics.
	if strings.HasPrefix(topic, "$") && (p[0] == "+" || p[0] == "#") {
		return false
	}
	for i, lv := range p {
		if lv == "#" {
			return true // the rest, zero levels included (§4.7.1.2)
		}
		if i >= len(tl) {
			return false
		}
		if lv != "+" && lv != tl[i] {
			return false
		}
	}
	return len(p) == len(tl)
}

// refValid is the reference validator: nil when s is a valid pattern (or,
// with topic set, a valid topic name).
func refValid(s string, topic bool) bool {
	if s == "" || len(s) > protocol.MaxTopicLen || strings.IndexByte(s, 0) >= 0 {
		return false
	}
	lv := strings.Split(s, "/")
	if len(lv) > MaxLevels {
		return false
	}
	if topic {
		return !strings.ContainsAny(s, "+#")
	}
	for i, l := range lv {
		if strings.ContainsAny(l, "+#") && l != "+" && l != "#" {
			return false
		}
		if l == "#" && i != len(lv)-1 {
			return false
		}
	}
	return true
}

var matchCases = []struct {
	pattern, topic string
	want           bool
}{
	// Exact matches: no wildcard matches the byte-equal topic only.
	{"a", "a", true},
	{"a/b/c", "a/b/c", true},
	{"a/b/c", "a/b", false},
	{"a/b", "a/b/c", false},
	{"a/b/c", "a/b/d", false},
	{"A/b", "a/b", false}, // §4.7.3: case sensitive
	{"sport tennis", "sport tennis", true},
	{"ö/ü", "ö/ü", true},

	// '+': exactly one level (§4.7.1.3, with the standard's own examples).
	{"sport/tennis/+", "sport/tennis/player1", true},
	{"sport/tennis/+", "sport/tennis/player2", true},
	{"sport/tennis/+", "sport/tennis/player1/ranking", false},
	{"sport/tennis/+", "sport/tennis", false},
	{"sport/+", "sport", false},
	{"sport/+", "sport/", true},
	{"+", "a", true},
	{"+", "a/b", false},
	{"+/+", "/finance", true},
	{"/+", "/finance", true},
	{"+", "/finance", false},
	{"a/+/c", "a/b/c", true}, // '+' in the middle
	{"a/+/c", "a//c", true},  // ... matching an empty level
	{"a/+/c", "a/b/d", false},
	{"a/+/c", "a/b/x/c", false},
	{"a/+/c", "a/c", false},
	{"+/+/+", "a/b/c", true},
	{"+/b/+", "a/b/c", true},
	{"+/b/+", "a/x/c", false},

	// '#': the parent and any number of levels below (§4.7.1.2).
	{"#", "a", true},
	{"#", "a/b/c", true},
	{"sport/#", "sport", true}, // "also matches the singular sport"
	{"sport/#", "sport/", true},
	{"sport/#", "sport/tennis/player1", true},
	{"sport/tennis/player1/#", "sport/tennis/player1", true},
	{"sport/tennis/player1/#", "sport/tennis/player1/ranking", true},
	{"sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true},
	{"sport/tennis/#", "sport", false},
	{"sport/#", "sports", false},
	{"sport/#", "sport2/x", false},
	{"+/#", "a", true},
	{"+/#", "a/b/c", true},
	{"sport/+/#", "sport/tennis", true},
	{"sport/+/#", "sport", false},
	{"/#", "/a", true},
	{"/#", "/", true},
	{"/#", "a", false},

	// '$' topics (§4.7.2): no match for filters starting with a wildcard.
	{"#", "$SYS", false},
	{"#", "$SYS/broker", false},
	{"+", "$", false},
	{"+/#", "$SYS/x", false},
	{"+/monitor/Clients", "$SYS/monitor/Clients", false},
	{"$SYS/#", "$SYS/monitor/Clients", true},
	{"$SYS/#", "$SYS", true},
	{"$SYS/monitor/+", "$SYS/monitor/Clients", true},
	{"$SYS/+", "$SYS/", true},
	{"$SYS", "$SYS", true},
	{"a/#", "a/$b", true}, // '$' only counts in the first level
	{"a/+", "a/$b", true},
	{"+/x", "a$/x", true}, // ... and only as its first character
	{"#", "a$", true},

	// Empty levels; leading and trailing '/' make distinct topics (§4.7.3).
	{"/", "/", true},
	{"+/+", "/", true},
	{"+", "/", false},
	{"#", "/", true},
	{"#", "//", true},
	{"+/+/+", "//", true},
	{"a/", "a", false},
	{"a", "a/", false},
	{"/a", "a", false},
	{"a", "/a", false},
	{"+/a", "/a", true},
	{"a/+", "a/", true},
	{"a//b", "a//b", true},
	{"a//b", "a/b", false},
	{"a/b", "a//b", false},
	{"a/+/+", "a//", true},
	{"a/b/", "a/b/", true},
	{"//", "//", true},
	{"//", "/", false},
}

func subscribe(t testing.TB, tr *Trie[int], pattern string, s int) {
	t.Helper()
	if _, err := tr.Subscribe([]byte(pattern), s); err != nil {
		t.Fatalf("Subscribe(%q): %v", pattern, err)
	}
}

// matches returns the subscribers of topic, failing on a duplicate.
func matches(t testing.TB, tr *Trie[int], topic string) map[int]bool {
	t.Helper()
	got := map[int]bool{}
	tr.Match([]byte(topic), func(s int) {
		if got[s] {
			t.Fatalf("Match(%q): subscriber %d passed twice", topic, s)
		}
		got[s] = true
	})
	return got
}

func TestMatchTable(t *testing.T) {
	if len(matchCases) < 40 {
		t.Fatalf("%d cases, want at least 40", len(matchCases))
	}
	for _, c := range matchCases {
		t.Run(c.pattern+"~"+c.topic, func(t *testing.T) {
			if err := ValidPattern([]byte(c.pattern)); err != nil {
				t.Fatalf("ValidPattern(%q) = %v", c.pattern, err)
			}
			if err := ValidTopic([]byte(c.topic)); err != nil {
				t.Fatalf("ValidTopic(%q) = %v", c.topic, err)
			}
			if got := refMatch(c.pattern, c.topic); got != c.want {
				t.Errorf("refMatch(%q, %q) = %v, want %v", c.pattern, c.topic, got, c.want)
			}
			tr := New[int]()
			subscribe(t, tr, c.pattern, 1)
			subscribe(t, tr, "unrelated/pattern", 2)
			if got := matches(t, tr, c.topic)[1]; got != c.want {
				t.Errorf("Trie: %q matches %q = %v, want %v", c.pattern, c.topic, got, c.want)
			}
			got := tr.AppendMatches(nil, []byte(c.topic))
			if want := c.want; slices.Contains(got, 1) != want {
				t.Errorf("AppendMatches: %q matches %q = %v, want %v", c.pattern, c.topic, got, want)
			}
		})
	}
}

// TestMatchTableOneTrie puts every pattern of the table into one trie, so
// that the patterns share nodes, and checks each topic against all of them.
func TestMatchTableOneTrie(t *testing.T) {
	tr := New[int]()
	for i, c := range matchCases {
		subscribe(t, tr, c.pattern, i)
	}
	for _, c := range matchCases {
		got := matches(t, tr, c.topic)
		for i, p := range matchCases {
			if want := refMatch(p.pattern, c.topic); got[i] != want {
				t.Errorf("%q matches %q = %v, want %v", p.pattern, c.topic, got[i], want)
			}
		}
	}
}

func TestValidPattern(t *testing.T) {
	long := strings.Repeat("a", protocol.MaxTopicLen)
	levels := strings.Repeat("a/", MaxLevels-1) + "a"
	for _, c := range []struct {
		pattern string
		want    error
	}{
		{"a", nil},
		{"#", nil},
		{"+", nil},
		{"a/#", nil},
		{"+/+", nil},
		{"+/#", nil},
		{"a/+/#", nil},
		{"/", nil},
		{"//", nil},
		{"a//b", nil},
		{"/#", nil},
		{"$SYS/#", nil},
		{"sport tennis", nil},
		{"ö/+", nil},
		{"\xff", nil}, // SPEC §1.2: UTF-8 is not validated
		{long, nil},
		{levels, nil},
		{strings.Repeat("/", MaxLevels-1), nil},
		{strings.Repeat("+/", MaxLevels-1) + "#", nil},

		{"", ErrEmpty},
		{"a/#/b", ErrPlacement}, // '#' must be last
		{"#/", ErrPlacement},
		{"#/#", ErrPlacement},
		{"a/#/", ErrPlacement},
		{"a#", ErrPlacement}, // '#' must fill its level
		{"#a", ErrPlacement},
		{"a/b#", ErrPlacement},
		{"##", ErrPlacement},
		{"a/b+", ErrPlacement}, // '+' must fill its level
		{"+a", ErrPlacement},
		{"a+/b", ErrPlacement},
		{"a/+b/c", ErrPlacement},
		{"++", ErrPlacement},
		{"+#", ErrPlacement},
		{"\x00", ErrNUL},
		{"a/\x00/b", ErrNUL},
		{long + "a", ErrTooLong},
		{levels + "/a", ErrTooManyLevels},
		{strings.Repeat("/", MaxLevels), ErrTooManyLevels},
		{strings.Repeat("+/", MaxLevels) + "#", ErrTooManyLevels},
	} {
		err := ValidPattern([]byte(c.pattern))
		if !errors.Is(err, c.want) || (err == nil) != (c.want == nil) {
			t.Errorf("ValidPattern(%.40q) = %v, want %v", c.pattern, err, c.want)
		}
		if (err == nil) != refValid(c.pattern, false) {
			t.Errorf("ValidPattern(%.40q) = %v, reference disagrees", c.pattern, err)
		}
		tr := New[int]()
		if added, err2 := tr.Subscribe([]byte(c.pattern), 1); err2 != err || added != (err == nil) {
			t.Errorf("Subscribe(%.40q) = %v, %v; want %v, %v", c.pattern, added, err2, err == nil, err)
		}
		if err != nil && (tr.Len() != 0 || tr.nodeCount() != 0) {
			t.Errorf("Subscribe(%.40q) failed but left %d pairs, %d nodes", c.pattern, tr.Len(), tr.nodeCount())
		}
	}
}

func TestValidTopic(t *testing.T) {
	long := strings.Repeat("a", protocol.MaxTopicLen)
	levels := strings.Repeat("a/", MaxLevels-1) + "a"
	for _, c := range []struct {
		topic string
		want  error
	}{
		{"a", nil},
		{"/", nil},
		{"a//b", nil},
		{"/a", nil},
		{"a/", nil},
		{"$SYS/x", nil},
		{"ö", nil},
		{long, nil},
		{levels, nil},

		{"", ErrEmpty},
		{"a/+", ErrWildcard},
		{"#", ErrWildcard},
		{"+", ErrWildcard},
		{"a/#", ErrWildcard},
		{"a+b", ErrWildcard},
		{"a#b", ErrWildcard},
		{"a\x00", ErrNUL},
		{long + "a", ErrTooLong},
		{levels + "/a", ErrTooManyLevels},
	} {
		err := ValidTopic([]byte(c.topic))
		if !errors.Is(err, c.want) || (err == nil) != (c.want == nil) {
			t.Errorf("ValidTopic(%.40q) = %v, want %v", c.topic, err, c.want)
		}
		if (err == nil) != refValid(c.topic, true) {
			t.Errorf("ValidTopic(%.40q) = %v, reference disagrees", c.topic, err)
		}
	}
}

// randomLevels builds a topic or pattern from a small alphabet, so that
// random patterns and topics often meet: empty levels, '$' levels and
// shared prefixes are common.
func randomLevels(r *rand.Rand, pattern bool) string {
	alphabet := []string{"a", "b", "c", "", "$x", "$", "ab"}
	n := 1 + r.IntN(5)
	lv := make([]string, n)
	for i := range lv {
		switch {
		case pattern && i == n-1 && r.IntN(4) == 0:
			lv[i] = "#"
		case pattern && r.IntN(4) == 0:
			lv[i] = "+"
		default:
			lv[i] = alphabet[r.IntN(len(alphabet))]
		}
	}
	if n == 1 && lv[0] == "" {
		return "/" // an empty topic or pattern is invalid
	}
	return strings.Join(lv, "/")
}

// TestMatchRandom compares Trie.Match and AppendMatches with the reference
// matcher over random subscriptions, topics and unsubscriptions.
func TestMatchRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 20 {
		tr := New[int]()
		model := map[int]map[string]bool{} // subscriber -> patterns
		nsubs := 1 + r.IntN(100)
		for range 4 * nsubs {
			s, p := r.IntN(nsubs), randomLevels(r, true)
			added, err := tr.Subscribe([]byte(p), s)
			if err != nil {
				t.Fatalf("Subscribe(%q): %v", p, err)
			}
			if added == model[s][p] {
				t.Fatalf("Subscribe(%q, %d) added = %v, model has it: %v", p, s, added, model[s][p])
			}
			if model[s] == nil {
				model[s] = map[string]bool{}
			}
			model[s][p] = true
		}
		check := func(stage string) {
			t.Helper()
			n := 0
			for _, ps := range model {
				n += len(ps)
			}
			if tr.Len() != n {
				t.Fatalf("round %d %s: Len() = %d, model has %d", round, stage, tr.Len(), n)
			}
			for range 200 {
				topic := randomLevels(r, false)
				want := map[int]bool{}
				for s, ps := range model {
					for p := range ps {
						if refMatch(p, topic) {
							want[s] = true
						}
					}
				}
				if got := matches(t, tr, topic); !maps.Equal(got, want) {
					t.Fatalf("round %d %s: Match(%q) = %v, want %v", round, stage, topic, got, want)
				}
				app := tr.AppendMatches([]int{-1}, []byte(topic))
				slices.Sort(app[1:])
				if wantS := slices.Sorted(maps.Keys(want)); app[0] != -1 || !slices.Equal(app[1:], wantS) {
					t.Fatalf("round %d %s: AppendMatches(%q) = %v, want [-1] + %v", round, stage, topic, app, wantS)
				}
			}
		}
		check("after subscribe")
		for s, ps := range model {
			for p := range ps {
				if r.IntN(2) == 0 {
					continue
				}
				if !tr.Unsubscribe([]byte(p), s) {
					t.Fatalf("Unsubscribe(%q, %d) = false", p, s)
				}
				delete(ps, p)
			}
			if len(ps) == 0 {
				delete(model, s)
			}
		}
		check("after unsubscribe")
	}
}

func TestDedupe(t *testing.T) {
	tr := New[int]()
	for _, p := range []string{"a/b", "a/+", "+/b", "+/+", "#", "a/#", "a/b/#"} {
		subscribe(t, tr, p, 1)
	}
	subscribe(t, tr, "a/b", 2)
	subscribe(t, tr, "a/+", 3)
	subscribe(t, tr, "x", 3)
	subscribe(t, tr, "x", 4)

	got := matches(t, tr, "a/b") // fails on a duplicate
	if want := map[int]bool{1: true, 2: true, 3: true}; !maps.Equal(got, want) {
		t.Fatalf("Match(a/b) = %v, want %v", got, want)
	}
	app := tr.AppendMatches(nil, []byte("a/b"))
	slices.Sort(app)
	if !slices.Equal(app, []int{1, 2, 3}) {
		t.Fatalf("AppendMatches(a/b) = %v, want [1 2 3]", app)
	}
	// Many calls in a row: the generation marks of one call must not hide
	// a subscriber from the next.
	for i := range 1000 {
		if n := len(tr.AppendMatches(nil, []byte("a/b"))); n != 3 {
			t.Fatalf("call %d: %d matches, want 3", i, n)
		}
	}
	// The generation counter wraps: marks left from before the wrap must
	// not hide a subscriber after it.
	sc := &scratch[int]{gen: ^uint32(0)}
	sc.begin(int(tr.ids.next), []byte("a/b"))
	if sc.gen != 1 {
		t.Fatalf("gen after wrap = %d, want 1", sc.gen)
	}
	for i := range sc.seen {
		sc.seen[i] = 1 // what a stale mark would look like without clear
	}
	sc.gen = ^uint32(0)
	sc.begin(int(tr.ids.next), []byte("a/b"))
	sc.walk(tr.root, []byte("a/b"), false, true)
	slices.Sort(sc.out)
	if !slices.Equal(sc.out, []int{1, 2, 3}) {
		t.Fatalf("after the wrap: %v, want [1 2 3]", sc.out)
	}
}

func TestSubscribeUnsubscribe(t *testing.T) {
	var tr Trie[string] // the zero value is ready
	tr.Match([]byte("a"), func(string) { t.Fatal("match in an empty trie") })
	if tr.Len() != 0 || tr.Unsubscribe([]byte("a"), "x") || tr.UnsubscribeAll("x") != 0 {
		t.Fatal("empty zero-value trie is not empty")
	}
	if got := tr.AppendMatches(nil, []byte("a")); got != nil {
		t.Fatalf("AppendMatches on empty = %v", got)
	}

	// SPEC §7.5: "Both are idempotent: subscribing twice to a pattern, or
	// removing one that is not there, succeeds."
	if added, err := tr.Subscribe([]byte("a/+"), "x"); !added || err != nil {
		t.Fatalf("first Subscribe = %v, %v", added, err)
	}
	if added, err := tr.Subscribe([]byte("a/+"), "x"); added || err != nil {
		t.Fatalf("second Subscribe = %v, %v; want false, nil", added, err)
	}
	if added, _ := tr.Subscribe([]byte("a/+"), "y"); !added {
		t.Fatal("Subscribe of another subscriber to the same pattern not added")
	}
	if tr.Len() != 2 {
		t.Fatalf("Len = %d, want 2", tr.Len())
	}
	for _, p := range []string{"a/b", "a", "a/+/c", "a/#", "+", "a/+b", ""} {
		if tr.Unsubscribe([]byte(p), "x") {
			t.Fatalf("Unsubscribe(%q) removed something", p)
		}
	}
	if tr.Unsubscribe([]byte("a/+"), "z") {
		t.Fatal("Unsubscribe of an unknown subscriber removed something")
	}
	if !tr.Unsubscribe([]byte("a/+"), "x") || tr.Unsubscribe([]byte("a/+"), "x") {
		t.Fatal("Unsubscribe is not true then false")
	}
	if got := tr.AppendMatches(nil, []byte("a/q")); !slices.Equal(got, []string{"y"}) {
		t.Fatalf("after Unsubscribe: %v, want [y]", got)
	}

	// UnsubscribeAll, with the patterns and subscribers it leaves alone.
	for _, p := range []string{"a", "a/b", "#", "a/+", "+/+/+"} {
		subscribe2(t, &tr, p, "x")
	}
	subscribe2(t, &tr, "a/b", "y")
	if n := tr.UnsubscribeAll("x"); n != 5 {
		t.Fatalf("UnsubscribeAll = %d, want 5", n)
	}
	if tr.Len() != 2 {
		t.Fatalf("Len = %d, want 2", tr.Len())
	}
	if got := tr.AppendMatches(nil, []byte("a/b")); !slices.Equal(got, []string{"y"}) {
		t.Fatalf("after UnsubscribeAll: %v, want [y]", got)
	}
	tr.UnsubscribeAll("y")
	if tr.Len() != 0 || tr.nodeCount() != 0 {
		t.Fatalf("emptied trie has %d pairs, %d nodes", tr.Len(), tr.nodeCount())
	}
}

func subscribe2(t *testing.T, tr *Trie[string], p, s string) {
	t.Helper()
	if _, err := tr.Subscribe([]byte(p), s); err != nil {
		t.Fatal(err)
	}
}

// TestMatchCallbackReentry: fn runs after the lock is released, so it may
// change the trie, for example to drop a subscriber that cannot keep up.
func TestMatchCallbackReentry(t *testing.T) {
	tr := New[int]()
	for s := range 10 {
		subscribe(t, tr, "a/+", s)
		subscribe(t, tr, "a/b", s)
	}
	n := 0
	tr.Match([]byte("a/b"), func(s int) {
		n++
		tr.UnsubscribeAll(s)
		tr.Match([]byte("a/b"), func(int) {})
		subscribe(t, tr, "other", s)
	})
	if n != 10 {
		t.Fatalf("fn called %d times, want 10", n)
	}
	if got := tr.AppendMatches(nil, []byte("a/b")); len(got) != 0 {
		t.Fatalf("after the callbacks: %v", got)
	}
}

// TestMatchUnvalidated: Match is meant for topics that passed ValidTopic,
// but must not panic on others and still follows the byte-wise rules.
func TestMatchUnvalidated(t *testing.T) {
	tr := New[int]()
	for i, p := range []string{"a/+", "#", "+/+", "a/b"} {
		subscribe(t, tr, p, i)
	}
	for _, topic := range []string{"", "a/+", "a/#", "+", "#", "\x00", strings.Repeat("/", 5000), strings.Repeat("a/", 5000)} {
		got := matches(t, tr, topic)
		for i, p := range []string{"a/+", "#", "+/+", "a/b"} {
			if want := refMatch(p, topic); got[i] != want {
				t.Errorf("%q matches %.20q = %v, want %v", p, topic, got[i], want)
			}
		}
	}
}

// randomPattern draws from a wide alphabet and depth, so that 10,000 of
// them build a large, deep trie.
func randomPattern(r *rand.Rand) string {
	n := 1 + r.IntN(8)
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte('/')
		}
		switch x := r.IntN(20); {
		case x == 0 && i == n-1:
			b.WriteByte('#')
		case x < 3:
			b.WriteByte('+')
		case x == 3:
			// an empty level
		default:
			b.WriteString("l" + strconv.Itoa(r.IntN(40)))
		}
	}
	if b.Len() == 0 {
		return "/" // an empty pattern is invalid
	}
	return b.String()
}

// TestUnsubscribePrunes: after 10,000 random subscriptions are removed,
// the trie is back to its baseline of nodes, pairs, subscribers and ids,
// round after round.
func TestUnsubscribePrunes(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	tr := New[int]()
	subscribe(t, tr, "base/line", -1)
	baseNodes := tr.nodeCount()
	const n = 10_000
	type sub struct {
		p string
		s int
	}
	for round := range 3 {
		var subs []sub
		for range n {
			s := sub{randomPattern(r), r.IntN(500)}
			if added, err := tr.Subscribe([]byte(s.p), s.s); err != nil {
				t.Fatal(err)
			} else if added {
				subs = append(subs, s)
			}
		}
		if tr.nodeCount() <= baseNodes {
			t.Fatalf("round %d: %d nodes after subscribing", round, tr.nodeCount())
		}
		t.Logf("round %d: %d pairs, %d nodes", round, tr.Len(), tr.nodeCount())
		if round == 2 {
			for s := range 500 { // the other way to leave
				tr.UnsubscribeAll(s)
			}
		} else {
			r.Shuffle(len(subs), func(i, j int) { subs[i], subs[j] = subs[j], subs[i] })
			for _, s := range subs {
				if !tr.Unsubscribe([]byte(s.p), s.s) {
					t.Fatalf("Unsubscribe(%q, %d) = false", s.p, s.s)
				}
			}
		}
		if got := tr.nodeCount(); got != baseNodes {
			t.Fatalf("round %d: %d nodes after unsubscribing, want %d", round, got, baseNodes)
		}
		if tr.Len() != 1 || len(tr.pairs) != 1 || len(tr.subs) != 1 {
			t.Fatalf("round %d: %d pairs, %d subscribers left, want 1", round, len(tr.pairs), len(tr.subs))
		}
		if tr.ids.next-uint32(len(tr.ids.free)) != 1 {
			t.Fatalf("round %d: %d ids in use, want 1", round, tr.ids.next-uint32(len(tr.ids.free)))
		}
	}
	tr.UnsubscribeAll(-1)
	if tr.nodeCount() != 0 || tr.root.children != nil || tr.ids.next != 0 {
		t.Fatalf("empty trie: %d nodes, root children %v, next id %d", tr.nodeCount(), tr.root.children, tr.ids.next)
	}
}

// TestConcurrent: matchers run while others subscribe and unsubscribe. Run
// it with -race. The pinned subscriber's two patterns never change, so
// every match must see it exactly once; no match may see anyone twice.
func TestConcurrent(t *testing.T) {
	tr := New[int]()
	const pinned = -1
	subscribe(t, tr, "game/+/pos", pinned)
	subscribe(t, tr, "game/#", pinned)

	var stop atomic.Bool
	var wg sync.WaitGroup
	for g := range 3 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 5))
			for !stop.Load() {
				s := r.IntN(50)
				p := []byte(fmt.Sprintf("game/%d/%s", r.IntN(10), []string{"pos", "+", "#"}[r.IntN(3)]))
				switch r.IntN(10) {
				case 0:
					tr.UnsubscribeAll(s)
				case 1, 2, 3, 4:
					tr.Unsubscribe(p, s)
				default:
					if _, err := tr.Subscribe(p, s); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	var matchers sync.WaitGroup
	for g := range 4 {
		matchers.Go(func() {
			topic := []byte("game/" + strconv.Itoa(g) + "/pos")
			dst := make([]int, 0, 64)
			seen := make(map[int]bool)
			for range 3000 {
				clear(seen)
				tr.Match(topic, func(s int) {
					if seen[s] {
						t.Errorf("Match(%s): %d twice", topic, s)
					}
					seen[s] = true
				})
				if !seen[pinned] {
					t.Errorf("Match(%s) missed the pinned subscriber", topic)
				}
				dst = tr.AppendMatches(dst[:0], topic)
				if n := len(dst); n != len(slices.Compact(slices.Sorted(slices.Values(dst)))) {
					t.Errorf("AppendMatches(%s) has duplicates: %v", topic, dst)
				}
				_ = tr.Len()
			}
		})
	}
	matchers.Wait()
	stop.Store(true)
	wg.Wait()
}

func FuzzMatch(f *testing.F) {
	for _, c := range matchCases {
		f.Add(c.pattern, c.topic)
	}
	f.Add("a/#/b", "a/+")
	f.Add("a+", "#")
	f.Fuzz(func(t *testing.T, pattern, topic string) {
		pv, tv := ValidPattern([]byte(pattern)), ValidTopic([]byte(topic))
		if (pv == nil) != refValid(pattern, false) {
			t.Fatalf("ValidPattern(%q) = %v, reference disagrees", pattern, pv)
		}
		if (tv == nil) != refValid(topic, true) {
			t.Fatalf("ValidTopic(%q) = %v, reference disagrees", topic, tv)
		}
		tr := New[int]()
		_, err := tr.Subscribe([]byte(pattern), 1)
		if err != pv {
			t.Fatalf("Subscribe error %v, ValidPattern %v", err, pv)
		}
		got := tr.AppendMatches(nil, []byte(topic)) // any topic: no panic
		if pv == nil && tv == nil {
			if want := refMatch(pattern, topic); (len(got) == 1) != want {
				t.Fatalf("%q matches %q: trie %v, reference %v", pattern, topic, got, want)
			}
		}
		if pv == nil && (!tr.Unsubscribe([]byte(pattern), 1) || tr.nodeCount() != 0) {
			t.Fatalf("Unsubscribe(%q) did not empty the trie", pattern)
		}
	})
}
