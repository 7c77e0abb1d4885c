package reactor

import (
	"sync"
	"time"

	"github.com/ferry-proto/ferry/codec"
	"github.com/ferry-proto/ferry/protocol"
)

// keyStore remembers the idempotency keys each client id used (SPEC §6.5),
// so that a keyed message is delivered once even when the client sends it
// again in a new session. Keys are per client id, kept for a retention and
// up to a bound per client (the oldest are forgotten first). In memory: a
// restart forgets them, as it forgets sessions.
type keyStore struct {
	shards [16]keyShard
}

type keyShard struct {
	mu       sync.Mutex
	byClient map[string]*clientKeys
}

// clientKeys holds one client's keys: a set, and the same keys in the
// order they were accepted, for eviction by age and by count.
type clientKeys struct {
	seen  map[uint64]int64 // key → its entry's expiry (an entry whose expiry differs is stale)
	order []keyEntry       // ring, oldest at head
	head  int
	n     int
}

type keyEntry struct {
	key     uint64
	expires int64
}

func (ks *keyStore) init() {
	for i := range ks.shards {
		ks.shards[i].byClient = make(map[string]*clientKeys)
	}
}

func (ks *keyStore) shard(client string) *keyShard {
	h := uint32(2166136261)
	for i := 0; i < len(client); i++ {
		h = (h ^ uint32(client[i])) * 16777619
	}
	return &ks.shards[h%uint32(len(ks.shards))]
}

// accept records key for client and reports true, or reports false when
// the key is already remembered: the message is a duplicate. Safe from
// any goroutine.
func (ks *keyStore) accept(client string, key uint64, now int64, retention time.Duration, limit int) bool {
	sh := ks.shard(client)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	ck := sh.byClient[client]
	if ck == nil {
		ck = &clientKeys{seen: make(map[uint64]int64)}
		sh.byClient[client] = ck
	}
	ck.expire(now)
	if _, dup := ck.seen[key]; dup {
		return false
	}
	for ck.n >= limit {
		ck.pop()
	}
	if ck.n == len(ck.order) {
		ck.grow(limit)
	}
	exp := now + int64(retention)
	ck.order[(ck.head+ck.n)%len(ck.order)] = keyEntry{key: key, expires: exp}
	ck.n++
	ck.seen[key] = exp
	return true
}

func (ck *clientKeys) grow(limit int) {
	size := min(max(2*len(ck.order), 16), limit)
	order := make([]keyEntry, size)
	for i := range ck.n {
		order[i] = ck.order[(ck.head+i)%len(ck.order)]
	}
	ck.order, ck.head = order, 0
}

func (ck *clientKeys) pop() {
	e := ck.order[ck.head]
	if ck.seen[e.key] == e.expires {
		delete(ck.seen, e.key)
	}
	ck.head = (ck.head + 1) % len(ck.order)
	ck.n--
}

// forget drops key for client: the message it came with was refused, so
// the sender may try it again under the same key (SPEC §6.5: keys record
// acceptance). Its ring entry stays until it expires or is evicted, as a
// stale entry. Safe from any goroutine.
func (ks *keyStore) forget(client string, key uint64) {
	sh := ks.shard(client)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if ck := sh.byClient[client]; ck != nil {
		delete(ck.seen, key)
	}
}

// expire forgets the keys whose retention has passed: they are in
// acceptance order, so the expired ones are at the head.
func (ck *clientKeys) expire(now int64) {
	for ck.n > 0 && ck.order[ck.head].expires <= now {
		ck.pop()
	}
}

// sweep forgets expired keys and the clients left with none. The server's
// janitor calls it every second.
func (ks *keyStore) sweep(now int64) {
	for i := range ks.shards {
		sh := &ks.shards[i]
		sh.mu.Lock()
		for id, ck := range sh.byClient {
			ck.expire(now)
			if ck.n == 0 {
				delete(sh.byClient, id)
			}
		}
		sh.mu.Unlock()
	}
}

// acceptKey applies SPEC §6.5 to a keyed message: a key the client used
// before is a duplicate, not delivered; it is answered as if delivered (a
// request with RESULT OK, APP_ACK with CONFIRM PROCESSED). Runs on the
// loop.
func (c *Conn) acceptKey(f *codec.Frame, now int64) bool {
	cfg := &c.srv.cfg.Sessions
	if c.srv.keys.accept(c.ClientID(), f.Key(), now, cfg.KeyRetention, cfg.KeysPerClient) {
		return true
	}
	c.ctr.DuplicateKeys.Add(1)
	if f.Corr != 0 && !f.Flags.Has(protocol.FlagResponse) {
		r := codec.Frame{Type: protocol.FrameResult, Lane: f.Lane, Corr: f.Corr, Code: protocol.CodeOK, Payload: duplicateDetail}
		_ = c.SendOnLoop(&r)
	}
	if f.Flags.Has(protocol.FlagAppAck) {
		c.Confirm(f.Lane, f.Seq, protocol.ConfirmProcessed)
	}
	return false
}

var duplicateDetail = []byte("duplicate")

// ForgetKey forgets an idempotency key the client used, for a message the
// application refused (a failure RESULT, CONFIRM REJECTED): SPEC §6.5 keys
// record acceptance, so the client may send it again under the same key.
// Safe from any goroutine.
func (c *Conn) ForgetKey(key uint64) {
	if key != 0 {
		c.srv.keys.forget(c.ClientID(), key)
	}
}
