package router

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// AuthLimit bounds failed logins per source address, so that guessing
// tokens (or passwords, with an Authenticator of one's own) from one place
// is slow, and so that a source that keeps failing stops costing the
// server a token check (SPEC §15.7: servers SHOULD limit handshake
// attempts per source address, RATE_LIMITED).
//
// Each source has a token bucket of Burst failures that refills one
// failure every Refill (defaults 10 and 6 s: ten failed logins a minute,
// sustained). A HELLO refused by the authenticator with AUTH_FAILED, or a
// resume refused with RESUME_FAILED, takes a token. While a source's
// bucket is empty its HELLOs are refused with ERROR RATE_LIMITED before
// the authenticator sees them, so a correct guess made then is neither
// accepted nor confirmed. Refused HELLOs take nothing: a client that
// retries with backoff gets in again at the refill rate. A successful
// login gives nothing back (behind a shared NAT, one user's success must
// not reset another's lockout).
//
// Memory is bounded: at most MaxSources sources are tracked (default
// 65,536: about 5 MiB when full, some 80 bytes a source, measured by
// TestAuthLimitMemory). A source whose bucket has refilled is forgotten;
// when the table is full, the source whose last failure is the oldest is
// evicted first (counted in Stats.AuthSourcesEvicted), since its bucket
// is the closest to full.
//
// A source is an IPv4 address (IPv4Prefix, default 32) or an IPv6 /64
// (IPv6Prefix, default 64): a single host is routinely given a whole /64,
// so per IPv6 address would give an attacker 2^64 buckets. IPv4-mapped
// IPv6 addresses count as IPv4. Clients behind one NAT share a bucket.
//
// A per-source limit does not stop an attacker with many addresses (a
// botnet, or an IPv6 /48 holding 65,536 /64s); against a token the
// defence is its 256-bit HMAC (TokenAuth), which is not guessed at any
// rate. The limit caps what one source costs and makes weak secrets of
// custom authenticators slow to find.
type AuthLimit struct {
	// Burst is how many failed logins a source may make at once. Default
	// 10; negative turns the limit off.
	Burst int
	// Refill is the time in which one failure is forgiven. Default 6 s.
	Refill time.Duration
	// MaxSources bounds the sources tracked at once. Default 65,536.
	MaxSources int
	// IPv4Prefix and IPv6Prefix are the prefix lengths that make one
	// source: defaults 32 (each IPv4 address) and 64.
	IPv4Prefix, IPv6Prefix int
}

func (l *AuthLimit) withDefaults() {
	if l.Burst == 0 {
		l.Burst = 10
	}
	if l.Refill <= 0 {
		l.Refill = 6 * time.Second
	}
	if l.MaxSources <= 0 {
		l.MaxSources = 65_536
	}
	if l.IPv4Prefix <= 0 || l.IPv4Prefix > 32 {
		l.IPv4Prefix = 32
	}
	if l.IPv6Prefix <= 0 || l.IPv6Prefix > 128 {
		l.IPv6Prefix = 64
	}
}

// sourceKey is a source's prefix, as 16 bytes (IPv4 mapped into IPv6).
type sourceKey [16]byte

// failLimiter is the table of sources that failed recently. Safe from any
// goroutine: the HELLOs of every event loop meet here, under the lock of
// one of its shards.
//
// Each source holds one number, GCRA's theoretical arrival time: the
// moment its bucket is full again. A failure pushes it Refill further
// (from now, if it lies in the past); the bucket is empty while it lies
// more than (Burst − 1) × Refill ahead.
type failLimiter struct {
	lim     AuthLimit
	epoch   time.Time
	refill  int64 // ns
	limit   int64 // ns: a source whose tat is further ahead than this is refused
	tracked atomic.Int64
	evicted *atomic.Uint64 // Stats.AuthSourcesEvicted
	shards  []failShard
}

// failShard is part of the table under its own lock. Entries live in a
// slab without pointers, linked by index in the order of their last
// failure (head: the oldest), so the garbage collector has nothing to
// scan in it however many sources it holds.
type failShard struct {
	mu         sync.Mutex
	idx        map[sourceKey]int32
	entries    []failEntry
	free       int32 // head of the free list (through next), or -1
	head, tail int32 // -1 when empty
	max        int
}

type failEntry struct {
	key        sourceKey
	tat        int64 // ns since epoch: when the bucket is full again
	prev, next int32
}

const none = -1

func newFailLimiter(l AuthLimit, evicted *atomic.Uint64) *failLimiter {
	l.withDefaults()
	if l.Burst < 0 {
		return nil
	}
	n := 16
	for n > 1 && l.MaxSources/n < 64 {
		n /= 2
	}
	f := &failLimiter{lim: l, epoch: time.Now(), evicted: evicted, refill: int64(l.Refill),
		limit: int64(l.Burst-1) * int64(l.Refill), shards: make([]failShard, n)}
	for i := range f.shards {
		f.shards[i] = failShard{free: none, head: none, tail: none, max: l.MaxSources / n}
	}
	return f
}

// now is the limiter's monotonic clock.
func (f *failLimiter) now() int64 { return int64(time.Since(f.epoch)) }

// source returns the key of a peer address; ok is false for an address
// that is not IP (it is not limited).
func (f *failLimiter) source(a net.Addr) (sourceKey, bool) {
	var ip netip.Addr
	switch a := a.(type) {
	case *net.TCPAddr:
		ip, _ = netip.AddrFromSlice(a.IP)
	case nil:
		return sourceKey{}, false
	default:
		ap, err := netip.ParseAddrPort(a.String())
		if err != nil {
			return sourceKey{}, false
		}
		ip = ap.Addr()
	}
	if !ip.IsValid() {
		return sourceKey{}, false
	}
	ip = ip.Unmap()
	bits := f.lim.IPv6Prefix
	if ip.Is4() {
		bits = f.lim.IPv4Prefix
	}
	p, err := ip.WithZone("").Prefix(bits)
	if err != nil {
		return sourceKey{}, false
	}
	return p.Addr().As16(), true
}

func (f *failLimiter) shard(k sourceKey) *failShard {
	h := uint32(2166136261)
	for _, b := range k {
		h = (h ^ uint32(b)) * 16777619
	}
	return &f.shards[h&uint32(len(f.shards)-1)]
}

// allow reports whether a HELLO from k may be checked: false while k's
// bucket is empty.
func (f *failLimiter) allow(k sourceKey, now int64) bool {
	if f.tracked.Load() == 0 {
		return true
	}
	s := f.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.idx[k]
	if !ok {
		return true
	}
	e := &s.entries[i]
	if e.tat <= now {
		s.remove(i) // full again: forgotten
		f.tracked.Add(-1)
		return true
	}
	return e.tat-now <= f.limit
}

// fail takes a token from k's bucket.
func (f *failLimiter) fail(k sourceKey, now int64) {
	s := f.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	// Sources whose buckets refilled need no tracking; the oldest
	// failures are at the head.
	for s.head != none && s.entries[s.head].tat <= now {
		s.remove(s.head)
		f.tracked.Add(-1)
	}
	i, ok := s.idx[k]
	if !ok {
		if len(s.idx) >= s.max {
			s.remove(s.head)
			f.tracked.Add(-1)
			f.evicted.Add(1)
		}
		i = s.alloc(k)
		f.tracked.Add(1)
	} else {
		s.unlink(i)
	}
	e := &s.entries[i]
	e.tat = max(e.tat, now) + f.refill
	s.pushBack(i)
}

func (s *failShard) alloc(k sourceKey) int32 {
	if s.idx == nil {
		s.idx = make(map[sourceKey]int32)
	}
	i := s.free
	if i != none {
		s.free = s.entries[i].next
	} else {
		i = int32(len(s.entries))
		s.entries = append(s.entries, failEntry{})
	}
	s.entries[i] = failEntry{key: k, prev: none, next: none}
	s.idx[k] = i
	return i
}

// remove forgets entry i. A shard left empty after an attack returns
// its memory.
func (s *failShard) remove(i int32) {
	s.unlink(i)
	delete(s.idx, s.entries[i].key)
	if len(s.idx) == 0 && len(s.entries) > 256 {
		*s = failShard{free: none, head: none, tail: none, max: s.max}
		return
	}
	s.entries[i] = failEntry{prev: none, next: s.free}
	s.free = i
}

func (s *failShard) unlink(i int32) {
	e := &s.entries[i]
	if e.prev != none {
		s.entries[e.prev].next = e.next
	} else {
		s.head = e.next
	}
	if e.next != none {
		s.entries[e.next].prev = e.prev
	} else {
		s.tail = e.prev
	}
	e.prev, e.next = none, none
}

func (s *failShard) pushBack(i int32) {
	e := &s.entries[i]
	e.prev, e.next = s.tail, none
	if s.tail != none {
		s.entries[s.tail].next = i
	} else {
		s.head = i
	}
	s.tail = i
}
