package router

import (
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func newTestLimiter(t *testing.T, l AuthLimit) (*failLimiter, *atomic.Uint64) {
	t.Helper()
	var evicted atomic.Uint64
	f := newFailLimiter(l, &evicted)
	if f == nil {
		t.Fatal("limiter off")
	}
	return f, &evicted
}

func key(t *testing.T, f *failLimiter, s string) sourceKey {
	t.Helper()
	k, ok := f.source(net.TCPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(s), 4000)))
	if !ok {
		t.Fatalf("%s: no source", s)
	}
	return k
}

// Burst failures at once, then refused until the refill gives one back;
// a source whose bucket is full again is forgotten.
func TestAuthLimitBucket(t *testing.T) {
	f, _ := newTestLimiter(t, AuthLimit{Burst: 3, Refill: time.Second})
	k := key(t, f, "192.0.2.1")
	sec := int64(time.Second)
	now := 10 * sec
	for i := range 3 {
		if !f.allow(k, now) {
			t.Fatalf("HELLO %d refused within the burst", i)
		}
		f.fail(k, now)
	}
	if f.allow(k, now) || f.allow(k, now+sec-1) {
		t.Fatal("allowed with an empty bucket")
	}
	if !f.allow(k, now+sec) {
		t.Fatal("refused after one refill")
	}
	f.fail(k, now+sec)
	if f.allow(k, now+sec) {
		t.Fatal("allowed after the refilled token was spent")
	}
	// Refused HELLOs take nothing: waiting one refill is enough.
	for range 100 {
		f.allow(k, now+sec+sec/2)
	}
	if !f.allow(k, now+2*sec) {
		t.Fatal("refusals extended the lockout")
	}
	if f.tracked.Load() != 1 {
		t.Fatalf("tracked %d", f.tracked.Load())
	}
	if !f.allow(k, now+5*sec) || f.tracked.Load() != 0 {
		t.Fatalf("a source back to full is still tracked (%d)", f.tracked.Load())
	}
	if other := key(t, f, "192.0.2.2"); !f.allow(other, now) {
		t.Fatal("another address refused")
	}
}

// IPv4 by address, IPv6 by /64, IPv4-mapped IPv6 as IPv4; both prefix
// lengths configurable.
func TestAuthLimitSources(t *testing.T) {
	f, _ := newTestLimiter(t, AuthLimit{})
	same := [][2]string{
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff"},
		{"::ffff:198.51.100.7", "198.51.100.7"},
		{"fe80::1%eth0", "fe80::2"},
	}
	for _, p := range same {
		if key(t, f, p[0]) != key(t, f, p[1]) {
			t.Errorf("%s and %s are different sources", p[0], p[1])
		}
	}
	differ := [][2]string{
		{"2001:db8:1:2::1", "2001:db8:1:3::1"},
		{"127.0.0.1", "127.0.0.2"},
		{"0.0.0.1", "::1"},
	}
	for _, p := range differ {
		if key(t, f, p[0]) == key(t, f, p[1]) {
			t.Errorf("%s and %s are one source", p[0], p[1])
		}
	}
	f24, _ := newTestLimiter(t, AuthLimit{IPv4Prefix: 24, IPv6Prefix: 128})
	if key(t, f24, "203.0.113.1") != key(t, f24, "203.0.113.200") || key(t, f24, "2001:db8::1") == key(t, f24, "2001:db8::2") {
		t.Error("configured prefixes not applied")
	}
	if _, ok := f.source(nil); ok {
		t.Error("a nil address is a source")
	}
	if _, ok := f.source(&net.UnixAddr{Name: "/tmp/x", Net: "unix"}); ok {
		t.Error("a unix address is a source")
	}
	if _, ok := f.source(&net.UDPAddr{IP: net.IPv4(192, 0, 2, 9), Port: 1}); !ok {
		t.Error("an IP address of another type is not a source")
	}
	var ev atomic.Uint64
	if newFailLimiter(AuthLimit{Burst: -1}, &ev) != nil {
		t.Error("a negative Burst does not turn the limit off")
	}
}

// The table never holds more than MaxSources: past it the source whose
// last failure is the oldest is evicted (counted), unless sources have
// refilled, which go first and free.
func TestAuthLimitBounded(t *testing.T) {
	const maxSources = 1024
	f, evicted := newTestLimiter(t, AuthLimit{Burst: 2, Refill: time.Second, MaxSources: maxSources})
	src := func(i int) sourceKey {
		return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}).As16()
	}
	now := int64(time.Hour)
	const n = 100_000
	for i := range n {
		f.fail(src(i), now)
		f.fail(src(i), now)
	}
	if got := f.tracked.Load(); got > maxSources || got < maxSources*9/10 {
		t.Fatalf("tracking %d sources, bound %d", got, maxSources)
	}
	if evicted.Load() < n-maxSources {
		t.Fatalf("%d evictions counted", evicted.Load())
	}
	if f.allow(src(n-1), now) {
		t.Fatal("the latest source was evicted")
	}
	if !f.allow(src(0), now) {
		t.Fatal("the oldest source is still tracked")
	}
	// Once their buckets refilled, sources are dropped before anything is
	// evicted.
	before := evicted.Load()
	later := now + int64(3*time.Second)
	for i := range maxSources {
		f.fail(src(n+i), later)
	}
	if evicted.Load() != before {
		t.Fatalf("%d sources evicted though every tracked one had refilled", evicted.Load()-before)
	}
}

// The memory the bound stands for, measured: a full table of 65,536
// sources (the default) stays under 8 MiB.
func TestAuthLimitMemory(t *testing.T) {
	f, _ := newTestLimiter(t, AuthLimit{})
	base := heapNow()
	for i := range 200_000 {
		k := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(i >> 16), byte(i >> 8), byte(i)}).As16()
		f.fail(k, 0)
	}
	runtime.KeepAlive(f)
	grew := heapNow() - base
	if f.tracked.Load() > 65_536 {
		t.Fatalf("tracking %d", f.tracked.Load())
	}
	t.Logf("%d sources: %d bytes (%d per source)", f.tracked.Load(), grew, grew/uint64(f.tracked.Load()))
	if grew > 8<<20 {
		t.Fatalf("a full table takes %d bytes", grew)
	}
}

// HELLOs of every event loop meet in the limiter.
func TestAuthLimitConcurrent(t *testing.T) {
	f, _ := newTestLimiter(t, AuthLimit{Burst: 5, Refill: time.Millisecond, MaxSources: 256})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 5000 {
				k := netip.AddrFrom4([4]byte{10, 0, byte(g), byte(i % 300)}).As16()
				if f.allow(k, f.now()) {
					f.fail(k, f.now())
				}
			}
		}()
	}
	wg.Wait()
	if n := f.tracked.Load(); n < 0 || n > 256 {
		t.Fatalf("tracking %d", n)
	}
}
