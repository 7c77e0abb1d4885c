package router

import (
	"testing"
	"time"

	"github.com/ferry-proto/ferry/codec"
	"github.com/ferry-proto/ferry/protocol"
)

func TestBucket(t *testing.T) {
	l := RateLimit{Messages: 10, Bytes: 1000}
	var b bucket
	now := time.Unix(0, 0)
	for i := range 10 {
		if !b.allow(&l, now, 10) {
			t.Fatalf("message %d of the burst refused", i)
		}
	}
	if b.allow(&l, now, 10) {
		t.Fatal("11th message in the same instant allowed")
	}
	if !b.allow(&l, now.Add(100*time.Millisecond), 10) {
		t.Fatal("refill after 100 ms (one message at 10/s) refused")
	}
	if b.allow(&l, now.Add(10*time.Second), 2000) {
		t.Fatal("a 2,000-byte message passed a 1,000-byte bucket")
	}
}

// SPEC §13: over the limit a request gets RESULT RATE_LIMITED (drop mode)
// or the connection is closed with RATE_LIMITED (close mode); a client
// within its limit is not affected.
func TestRateLimitModes(t *testing.T) {
	srv, r := start(t, Options{RateLimit: RateLimit{Messages: 5, Burst: time.Second}})
	c := login(t, srv, "fast")
	for i := range 20 {
		c.Send(codec.Frame{Type: protocol.FrameData, Lane: 1, Route: echoRoute, Corr: uint32(i + 1), Payload: []byte("x")})
	}
	ok, limited := 0, 0
	for range 20 {
		f := c.Next(5 * time.Second)
		switch {
		case f.Type == protocol.FrameData:
			ok++
		case f.Type == protocol.FrameResult && f.Code == protocol.CodeRateLimited:
			limited++
		}
	}
	if ok < 5 || ok > 7 || limited != 20-ok || r.Stats().RateLimited.Load() != uint64(limited) {
		t.Fatalf("%d answered, %d rate limited (counter %d)", ok, limited, r.Stats().RateLimited.Load())
	}

	srv2, _ := start(t, Options{RateLimit: RateLimit{Messages: 5, Close: true}})
	c2 := login(t, srv2, "flood")
	// One write: the server closes after the fifth, and a later write of
	// our own would meet the closed socket (EPIPE).
	var flood []byte
	for i := range 20 {
		f := codec.Frame{Type: protocol.FrameData, Lane: 1, Route: echoRoute, Corr: uint32(i + 1)}
		flood = f.Append(flood)
	}
	c2.Write(flood)
	if code := c2.ExpectClose(5 * time.Second); code != protocol.CodeRateLimited {
		t.Fatalf("close mode: closed with %s", code)
	}
}
