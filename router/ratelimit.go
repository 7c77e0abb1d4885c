package router

import "time"

// RateLimit bounds what one connection may send: messages and bytes per
// second, each a token bucket holding up to Burst seconds' worth. Zero
// rates are unlimited.
type RateLimit struct {
	Messages float64       // requests, publications, direct messages and (un)subscriptions per second
	Bytes    float64       // payload bytes per second
	Burst    time.Duration // how much of the rate may come at once; default 1 s
	// Close closes a connection over its limit with RATE_LIMITED; by
	// default the message is dropped and, when it asked for an answer,
	// answered with RESULT RATE_LIMITED (SPEC §13).
	Close bool
}

func (l RateLimit) enabled() bool { return l.Messages > 0 || l.Bytes > 0 }

// bucket is one connection's pair of token buckets. Loop-owned.
type bucket struct {
	msgs, bytes float64
	last        time.Time
}

// allow takes one message of n bytes from the buckets, refilled for the
// time since the last call, and reports whether there was room.
func (b *bucket) allow(l *RateLimit, now time.Time, n int) bool {
	burst := l.Burst
	if burst <= 0 {
		burst = time.Second
	}
	if b.last.IsZero() {
		b.msgs, b.bytes = l.Messages*burst.Seconds(), l.Bytes*burst.Seconds()
	} else if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.msgs = min(b.msgs+dt*l.Messages, l.Messages*burst.Seconds())
		b.bytes = min(b.bytes+dt*l.Bytes, l.Bytes*burst.Seconds())
	}
	b.last = now
	if (l.Messages > 0 && b.msgs < 1) || (l.Bytes > 0 && b.bytes < float64(n)) {
		return false
	}
	b.msgs--
	b.bytes -= float64(n)
	return true
}
