package topic

import (
	"bytes"
	"sync"
	"sync/atomic"
)

// Trie is the subscription index: a tree with one node per pattern level,
// where each node lists the subscribers whose pattern ends there. S is the
// router's handle for a subscriber (a connection or session pointer, an id);
// it is used as a map key and copied into match results.
//
// The zero value is an empty Trie ready to use; New returns one too. A Trie
// must not be copied after first use.
//
// All methods are safe from any goroutine. Match, AppendMatches and Len take
// a read lock and run in parallel; Subscribe, Unsubscribe and UnsubscribeAll
// take the write lock and briefly hold back new matches.
type Trie[S comparable] struct {
	mu    sync.RWMutex
	root  *node[S]             // nil until the first Subscribe
	subs  map[S]*subscriber[S] // every subscriber with at least one pattern
	pairs map[pair[S]]pairPos  // every (pattern node, subscriber) pair
	nodes int                  // nodes besides the root; see nodeCount
	ids   idAllocator          // dense subscriber ids for deduplication
	pool  sync.Pool            // of *scratch[S]; one per concurrent Match
	// gen changes (under the write lock) with every subscription added or
	// removed: a set of matches read at one generation is still the set
	// while the generation is the same (Gen, AppendMatchesGen).
	gen atomic.Uint64
}

// Gen is the generation of the subscriptions: it changes whenever one is
// added or removed. Safe from any goroutine.
func (t *Trie[S]) Gen() uint64 { return t.gen.Load() }

// New returns an empty Trie. It is the same as new(Trie[S]).
func New[S comparable]() *Trie[S] { return new(Trie[S]) }

// node is one pattern level. A pattern's last level is where its
// subscribers are listed; the path from the root spells the pattern.
type node[S comparable] struct {
	parent   *node[S]
	children map[string]*node[S] // literal next levels, keyed by level; nil when none
	plus     *node[S]            // the '+' next level
	hash     *node[S]            // the '#' next level: always a leaf
	subs     []*subscriber[S]    // subscribers whose pattern ends here, unordered
	key      string              // this level, when kind is literal
	kind     nodeKind
}

type nodeKind uint8

const (
	literal nodeKind = iota
	plus
	hash
)

func (n *node[S]) empty() bool {
	return len(n.subs) == 0 && len(n.children) == 0 && n.plus == nil && n.hash == nil
}

// subscriber is one S with its patterns.
type subscriber[S comparable] struct {
	s     S
	id    uint32     // index into scratch.seen; unique among live subscribers
	nodes []*node[S] // the end node of each of its patterns, unordered
}

// pair names one subscription; pairPos says where it sits in the two
// unordered lists that hold it, so that removing it is O(1) however many
// subscribers share the pattern or patterns share the subscriber.
type pair[S comparable] struct {
	n *node[S]
	s *subscriber[S]
}

type pairPos struct {
	inNode int32 // index of s in n.subs
	inSub  int32 // index of n in s.nodes
}

// idAllocator hands out the smallest dense ids it can, so that the
// deduplication array of a scratch is as long as the peak number of
// subscribers, not the number ever seen.
type idAllocator struct {
	next uint32
	free []uint32
}

func (a *idAllocator) get() uint32 {
	if n := len(a.free); n > 0 {
		id := a.free[n-1]
		a.free = a.free[:n-1]
		return id
	}
	a.next++
	return a.next - 1
}

func (a *idAllocator) put(id uint32) { a.free = append(a.free, id) }

// reset forgets every id; only for when no subscriber is left.
func (a *idAllocator) reset() { a.next, a.free = 0, nil }

// cut splits off the first level of a topic or pattern. last reports that
// level is the final one (rest is then nil).
func cut(b []byte) (level, rest []byte, last bool) {
	i := bytes.IndexByte(b, '/')
	if i < 0 {
		return b, nil, true
	}
	return b[:i], b[i+1:], false
}

func isPlus(level []byte) bool { return len(level) == 1 && level[0] == '+' }
func isHash(level []byte) bool { return len(level) == 1 && level[0] == '#' }

// Subscribe adds the subscription of s to pattern. It returns added=false,
// and no error, when s already has exactly this pattern (SPEC §7.5:
// subscribing twice "succeeds"), and an error from ValidPattern when the
// pattern is invalid. Patterns are compared byte by byte (SPEC §1.2); the
// Trie keeps its own copy of pattern's levels, not the slice. Safe from any
// goroutine.
func (t *Trie[S]) Subscribe(pattern []byte, s S) (added bool, err error) {
	if err := ValidPattern(pattern); err != nil {
		return false, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.root == nil {
		t.root = &node[S]{}
		t.subs = make(map[S]*subscriber[S])
		t.pairs = make(map[pair[S]]pairPos)
	}
	n := t.root
	for rest := pattern; ; {
		level, next, last := cut(rest)
		n = t.child(n, level)
		if last {
			break
		}
		rest = next
	}
	sb := t.subs[s]
	if sb == nil {
		sb = &subscriber[S]{s: s, id: t.ids.get()}
		t.subs[s] = sb
	} else if _, ok := t.pairs[pair[S]{n, sb}]; ok {
		return false, nil
	}
	t.pairs[pair[S]{n, sb}] = pairPos{inNode: int32(len(n.subs)), inSub: int32(len(sb.nodes))}
	n.subs = append(n.subs, sb)
	sb.nodes = append(sb.nodes, n)
	t.gen.Add(1)
	return true, nil
}

// child returns n's child for level, creating it. Write lock held.
func (t *Trie[S]) child(n *node[S], level []byte) *node[S] {
	switch {
	case isPlus(level):
		if n.plus == nil {
			n.plus = &node[S]{parent: n, kind: plus}
			t.nodes++
		}
		return n.plus
	case isHash(level):
		if n.hash == nil {
			n.hash = &node[S]{parent: n, kind: hash}
			t.nodes++
		}
		return n.hash
	}
	if c := n.children[string(level)]; c != nil {
		return c
	}
	if n.children == nil {
		n.children = make(map[string]*node[S])
	}
	c := &node[S]{parent: n, key: string(level), kind: literal}
	n.children[c.key] = c
	t.nodes++
	return c
}

// find returns the node that ends pattern, or nil. Any lock held.
func (t *Trie[S]) find(pattern []byte) *node[S] {
	n := t.root
	for rest := pattern; n != nil; {
		level, next, last := cut(rest)
		switch {
		case isPlus(level):
			n = n.plus
		case isHash(level):
			n = n.hash
		default:
			n = n.children[string(level)]
		}
		if last {
			return n
		}
		rest = next
	}
	return nil
}

// Unsubscribe removes the subscription of s to pattern, byte-equal to the
// one given to Subscribe (SPEC §7.5), and reports whether there was one.
// Removing a subscription that does not exist, or an invalid pattern, is
// not an error. Nodes left with no subscribers and no children are freed.
// Safe from any goroutine.
func (t *Trie[S]) Unsubscribe(pattern []byte, s S) (removed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	sb := t.subs[s]
	if sb == nil {
		return false
	}
	n := t.find(pattern)
	if n == nil {
		return false
	}
	p, ok := t.pairs[pair[S]{n, sb}]
	if !ok {
		return false
	}
	t.remove(n, sb, p)
	return true
}

// UnsubscribeAll removes every subscription of s, for a session that ends,
// and returns how many there were. The Trie remembers each subscriber's
// patterns, so the caller need not: it costs O(1) per pattern plus pruning,
// with no pattern parsing. Safe from any goroutine.
func (t *Trie[S]) UnsubscribeAll(s S) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	sb := t.subs[s]
	if sb == nil {
		return 0
	}
	k := len(sb.nodes)
	for len(sb.nodes) > 0 {
		n := sb.nodes[len(sb.nodes)-1]
		t.remove(n, sb, t.pairs[pair[S]{n, sb}])
	}
	return k
}

// remove deletes the pair (n, sb) found at p, then sb if it has no pattern
// left, then n and its ancestors while they are empty. Write lock held.
func (t *Trie[S]) remove(n *node[S], sb *subscriber[S], p pairPos) {
	t.gen.Add(1)
	delete(t.pairs, pair[S]{n, sb})

	last := int32(len(n.subs) - 1)
	if p.inNode != last {
		moved := n.subs[last]
		n.subs[p.inNode] = moved
		k := pair[S]{n, moved}
		q := t.pairs[k]
		q.inNode = p.inNode
		t.pairs[k] = q
	}
	n.subs[last] = nil
	n.subs = n.subs[:last]

	last = int32(len(sb.nodes) - 1)
	if p.inSub != last {
		moved := sb.nodes[last]
		sb.nodes[p.inSub] = moved
		k := pair[S]{moved, sb}
		q := t.pairs[k]
		q.inSub = p.inSub
		t.pairs[k] = q
	}
	sb.nodes[last] = nil
	sb.nodes = sb.nodes[:last]

	if len(sb.nodes) == 0 {
		delete(t.subs, sb.s)
		if len(t.subs) == 0 {
			t.ids.reset()
		} else {
			t.ids.put(sb.id)
		}
	}
	if len(n.subs) == 0 {
		n.subs = nil // let a once-popular level's array go
		t.prune(n)
	}
}

// prune frees n and then its ancestors for as long as they are empty.
// Write lock held.
func (t *Trie[S]) prune(n *node[S]) {
	for n != t.root && n.empty() {
		p := n.parent
		switch n.kind {
		case plus:
			p.plus = nil
		case hash:
			p.hash = nil
		default:
			delete(p.children, n.key)
			if len(p.children) == 0 {
				p.children = nil // maps never shrink: drop an empty one
			}
		}
		n.parent = nil
		t.nodes--
		n = p
	}
}

// Len returns the number of (pattern, subscriber) pairs. Safe from any
// goroutine.
func (t *Trie[S]) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.pairs)
}

// nodeCount returns the number of nodes besides the root, for tests.
func (t *Trie[S]) nodeCount() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.nodes
}
