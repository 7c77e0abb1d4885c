package topic

// scratch is the per-call state of a match. It lives in the Trie's pool, so
// a steady stream of matches allocates nothing, and each concurrent match
// has its own.
//
// Deduplication: a subscriber with several patterns may be reached through
// more than one of them. seen[id] == gen marks subscriber id as already
// emitted by this call; bumping gen forgets every mark at once. The marks
// cannot live on the subscriber entries themselves: matches run in parallel
// under the read lock, and one call's mark would overwrite another's.
// Subscribers with a single pattern cannot be reached twice and skip the
// array entirely.
type scratch[S comparable] struct {
	seen   []uint32 // by subscriber id; seen[id] == gen: emitted
	gen    uint32
	dollar bool // the topic's first level starts with '$'
	out    []S  // the results of this call
	buf    []S  // Match's reusable result buffer
}

// getScratch returns a scratch ready for one call. Read lock held (it reads
// the id range).
func (t *Trie[S]) getScratch(topic []byte) *scratch[S] {
	sc, _ := t.pool.Get().(*scratch[S])
	if sc == nil {
		sc = new(scratch[S])
	}
	sc.begin(int(t.ids.next), topic)
	return sc
}

// begin readies sc for a call on topic with subscriber ids below ids.
func (sc *scratch[S]) begin(ids int, topic []byte) {
	if len(sc.seen) < ids {
		sc.seen = make([]uint32, ids+ids/4)
	}
	sc.gen++
	if sc.gen == 0 { // wrapped: old marks could look current
		clear(sc.seen)
		sc.gen = 1
	}
	sc.dollar = len(topic) > 0 && topic[0] == '$'
}

// AppendMatches appends to dst every distinct subscriber with a pattern
// that matches topic, each once, in no particular order, and returns the
// extended slice. It allocates nothing when dst has room.
//
// topic should have passed ValidTopic. Other input is matched by the same
// byte-wise rules and never panics: a '+' or '#' in it is an ordinary
// character, which wildcards match like any other and no literal pattern
// level equals. topic is not retained. Safe from any goroutine; runs in
// parallel with other matches.
func (t *Trie[S]) AppendMatches(dst []S, topic []byte) []S {
	dst, _ = t.AppendMatchesGen(dst, topic)
	return dst
}

// AppendMatchesGen is AppendMatches that also returns the generation (see
// Gen) the matches were read at: while Gen returns the same, a PUBLISH on
// topic has the same subscribers.
func (t *Trie[S]) AppendMatchesGen(dst []S, topic []byte) ([]S, uint64) {
	t.mu.RLock()
	gen := t.gen.Load()
	if t.root == nil {
		t.mu.RUnlock()
		return dst, gen
	}
	sc := t.getScratch(topic)
	sc.out = dst
	sc.walk(t.root, topic, false, true)
	dst = sc.out
	sc.out = nil
	t.mu.RUnlock()
	t.pool.Put(sc)
	return dst, gen
}

// Match calls fn once for each distinct subscriber with a pattern that
// matches topic, in no particular order. Input rules are those of
// AppendMatches.
//
// The matches are collected under the read lock and fn is called after it
// is released, so fn may call any method of the Trie (for example
// UnsubscribeAll for a subscriber that cannot keep up) and may take its
// time without holding back Subscribe. The price is snapshot semantics: a
// subscriber removed by another goroutine while fn runs may still be
// passed to fn for this topic. Allocates nothing in steady state. Safe from
// any goroutine.
func (t *Trie[S]) Match(topic []byte, fn func(S)) {
	t.mu.RLock()
	if t.root == nil {
		t.mu.RUnlock()
		return
	}
	sc := t.getScratch(topic)
	sc.out = sc.buf[:0]
	sc.walk(t.root, topic, false, true)
	out := sc.out
	sc.out = nil
	t.mu.RUnlock()
	for _, s := range out {
		fn(s)
	}
	clear(out) // drop the references until the next call
	sc.buf = out[:0]
	t.pool.Put(sc)
}

// walk visits the subscriptions that match the levels of rest under n: n
// stands for the levels already consumed, end reports that none are left,
// first that n is the root. Recursion depth is bounded by the trie's depth
// (MaxLevels + 1), whatever the topic.
func (sc *scratch[S]) walk(n *node[S], rest []byte, end, first bool) {
	// MQTT §4.7.2: "The Server MUST NOT match Topic Filters starting with a
	// wildcard character (# or +) with Topic Names beginning with a $
	// character."
	wild := !first || !sc.dollar
	// MQTT §4.7.1.2: '#' matches the parent and any number of child
	// levels: "sport/#" also matches "sport", and so does "#" everything.
	if n.hash != nil && wild {
		sc.emit(n.hash)
	}
	if end {
		sc.emit(n)
		return
	}
	level, next, last := cut(rest)
	if c := n.children[string(level)]; c != nil {
		sc.walk(c, next, last, false)
	}
	// MQTT §4.7.1.3: '+' matches exactly one level, an empty one included.
	if n.plus != nil && wild {
		sc.walk(n.plus, next, last, false)
	}
}

// emit appends the subscribers of n not yet emitted by this call.
func (sc *scratch[S]) emit(n *node[S]) {
	for _, sb := range n.subs {
		if len(sb.nodes) > 1 {
			if sc.seen[sb.id] == sc.gen {
				continue
			}
			sc.seen[sb.id] = sc.gen
		}
		sc.out = append(sc.out, sb.s)
	}
}
