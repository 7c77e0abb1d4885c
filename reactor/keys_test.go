package reactor

import (
	"testing"
	"time"
)

// SPEC §6.5: a key is remembered per client id for the retention and up
// to the bound, the oldest forgotten first.
func TestKeyStore(t *testing.T) {
	var ks keyStore
	ks.init()
	const ret = time.Minute
	sec := int64(time.Second)
	if !ks.accept("a", 1, 0, ret, 3) || ks.accept("a", 1, sec, ret, 3) {
		t.Fatal("a key accepted twice")
	}
	if !ks.accept("b", 1, sec, ret, 3) {
		t.Fatal("keys are per client id")
	}
	for k := uint64(2); k <= 4; k++ {
		if !ks.accept("a", k, 2*sec, ret, 3) {
			t.Fatalf("key %d refused", k)
		}
	}
	// Bound 3: key 1 was the oldest and is forgotten.
	if !ks.accept("a", 1, 3*sec, ret, 3) {
		t.Fatal("the oldest key was not forgotten at the bound")
	}
	if ks.accept("a", 4, 3*sec, ret, 3) {
		t.Fatal("key 4 forgotten early")
	}
	// Retention: all of a's keys are older than a minute at 4 min.
	if !ks.accept("a", 4, 4*60*sec, ret, 3) {
		t.Fatal("key 4 kept past the retention")
	}
	ks.sweep(10 * 60 * sec)
	for i := range ks.shards {
		if n := len(ks.shards[i].byClient); n != 0 {
			t.Fatalf("sweep left %d clients", n)
		}
	}
}

// SPEC §6.5: a refused message's key is forgotten, so the same key may be
// sent again; its stale ring entry does not evict the new one.
func TestKeyStoreForget(t *testing.T) {
	var ks keyStore
	ks.init()
	sec := int64(time.Second)
	ks.accept("a", 5, 0, time.Minute, 8)
	ks.forget("a", 5)
	if !ks.accept("a", 5, sec, time.Minute, 8) {
		t.Fatal("a forgotten key refused")
	}
	// The stale entry (expiring at 60 s) goes first; the new one stays.
	if ks.accept("a", 5, 60*sec+1, time.Minute, 8) {
		t.Fatal("the new entry was dropped with the stale one")
	}
}
