package client

import (
	"context"
	"errors"
	"strings"

	"github.com/ferry-proto/ferry/codec"
	"github.com/ferry-proto/ferry/protocol"
)

var errUnsubscribed = errors.New("client: unsubscribed before the server confirmed the subscription")

// subscription is one pattern this client subscribed to. Guarded by
// Client.mu.
type subscription struct {
	pattern string
	h       Handler
	active  bool  // the server confirmed it (RESULT OK) in this session
	call    *call // the SUBSCRIBE waiting for its RESULT, if any
}

// Subscribe subscribes to pattern (SPEC §7.5) and returns once the server
// confirmed it: from then on every message published on a matching topic
// reaches h (or the WithHandler handler when h is nil) on the callback
// goroutine. Subscribing again to the same pattern replaces its handler.
// The server's refusal is a *ResultError (INVALID_TOPIC, FORBIDDEN, ...),
// and the subscription is then dropped.
//
// Subscriptions belong to the client: every reconnect makes them again (a
// SUBSCRIBE is idempotent), so that they survive a new session too. If the
// connection ends before the answer, Subscribe keeps waiting for the answer
// on the next connection. If ctx ends first, Subscribe returns ctx.Err() and
// the subscription stays registered; Unsubscribe removes it.
//
// Patterns are matched locally with the MQTT wildcards SPEC §7.5
// recommends ('+' one level, '#' the rest), so that a PUBLISH reaches the
// handlers of every pattern that matches its topic, once each.
func (c *Client) Subscribe(ctx context.Context, pattern string, h Handler) error {
	if len(pattern) == 0 || len(pattern) > protocol.MaxTopicLen {
		return ErrBadArgument
	}
	c.mu.Lock()
	if err := c.usableLocked(); err != nil {
		c.mu.Unlock()
		return err
	}
	if old := c.unsubs[pattern]; old != nil {
		// An UNSUBSCRIBE of the same pattern is pending: it finishes, and
		// this SUBSCRIBE, sent after it on lane 0, wins.
		delete(c.unsubs, pattern)
	}
	sub := c.subs[pattern]
	if sub == nil {
		sub = &subscription{pattern: pattern}
		c.subs[pattern] = sub
	}
	sub.h = h
	c.subsGen.Add(1)
	if sub.active {
		c.mu.Unlock()
		return nil
	}
	cl := sub.call
	if cl == nil || cl.ch == nil {
		if cl != nil {
			delete(c.calls, cl.corr)
		}
		cl = c.newCallLocked(callSubscribe)
		cl.pattern = pattern
		sub.call = cl
		if c.cn != nil {
			c.cn.appendSubscribe(protocol.FrameSubscribe, cl.corr, pattern)
		}
	}
	c.mu.Unlock()
	select {
	case r := <-cl.ch:
		cl.ch <- r // for a concurrent Subscribe of the same pattern
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Unsubscribe removes the subscription to pattern (SPEC §7.5): its handler
// gets no further message from the moment Unsubscribe is called, and the
// call returns once the server confirmed the UNSUBSCRIBE, or at once when
// no connection is up (a new session has no subscriptions; a resumed one
// gets the UNSUBSCRIBE after the reconnect).
func (c *Client) Unsubscribe(ctx context.Context, pattern string) error {
	if len(pattern) == 0 || len(pattern) > protocol.MaxTopicLen {
		return ErrBadArgument
	}
	c.mu.Lock()
	if err := c.usableLocked(); err != nil {
		c.mu.Unlock()
		return err
	}
	if sub := c.subs[pattern]; sub != nil {
		delete(c.subs, pattern)
		c.subsGen.Add(1)
		if sub.call != nil {
			delete(c.calls, sub.call.corr)
			sub.call.finish(nil, errUnsubscribed)
		}
	}
	cl := c.newCallLocked(callUnsubscribe)
	cl.pattern = pattern
	c.unsubs[pattern] = cl
	if c.cn == nil {
		c.mu.Unlock()
		return nil
	}
	c.cn.appendSubscribe(protocol.FrameUnsubscribe, cl.corr, pattern)
	c.mu.Unlock()
	select {
	case r := <-cl.ch:
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// appendSubscribe queues a SUBSCRIBE or UNSUBSCRIBE on lane 0. c.mu held.
func (cn *conn) appendSubscribe(t protocol.FrameType, corr uint32, pattern string) {
	f := codec.Frame{Type: t, Corr: corr, Name: []byte(pattern)}
	cn.ctrl = f.Append(cn.ctrl)
	cn.wakeUp()
}

// subscribedLocked settles a SUBSCRIBE's RESULT. c.mu held.
func (c *Client) subscribedLocked(cl *call, err error) {
	sub := c.subs[cl.pattern]
	if sub == nil || sub.call != cl {
		return
	}
	sub.call = nil
	if err != nil {
		c.log.Warn("ferry client: subscription refused", "pattern", cl.pattern, "err", err)
		if cl.ch != nil {
			delete(c.subs, cl.pattern) // the caller learns it from Subscribe
			c.subsGen.Add(1)
		}
		// A refused renewal keeps the subscription: the server may hold it
		// still, and the next connection tries again.
		return
	}
	sub.active = true
}

// resubscribeLocked sends, on a new connection, a SUBSCRIBE for every
// subscription and the UNSUBSCRIBEs the server has not confirmed. A resumed
// session keeps its subscriptions (SPEC §12.8), but SUBSCRIBE is idempotent
// (§7.5) and renewing them costs a frame each: it guards against a server
// that lost them with the connection. c.mu held.
func (c *Client) resubscribeLocked(cn *conn) {
	for _, sub := range c.subs {
		sub.active = false
		if sub.call == nil {
			cl := c.newCallLocked(callSubscribe)
			cl.ch = nil // nobody waits: the client's own
			cl.pattern = sub.pattern
			sub.call = cl
		}
		cn.appendSubscribe(protocol.FrameSubscribe, sub.call.corr, sub.pattern)
	}
	for pattern, cl := range c.unsubs {
		cn.appendSubscribe(protocol.FrameUnsubscribe, cl.corr, pattern)
	}
}

// handlerCache remembers, for the callback goroutine alone, which handlers
// the topics it saw go to, so that a stream of publications on a few topics
// costs a map lookup each instead of a lock and a match against every
// pattern. Any change to the subscriptions (Client.subsGen) empties it.
type handlerCache struct {
	gen uint64
	m   map[string][]Handler
}

// maxCachedTopics bounds the cache: past it, it starts again empty.
const maxCachedTopics = 1024

// handlersFor returns the handlers of the subscriptions whose pattern
// matches topic. Callback goroutine only.
func (c *Client) handlersFor(topic string) []Handler {
	hc := &c.hcache
	if gen := c.subsGen.Load(); hc.gen != gen || hc.m == nil || len(hc.m) >= maxCachedTopics {
		hc.gen = gen
		hc.m = make(map[string][]Handler)
	}
	if hs, ok := hc.m[topic]; ok {
		return hs
	}
	c.mu.Lock()
	hs := c.matchLocked(topic)
	// Store what was computed under the generation read before: a change
	// since then bumped it, and the next lookup starts again.
	c.mu.Unlock()
	hc.m[topic] = hs
	return hs
}

// matchLocked returns the handlers of the subscriptions whose pattern
// matches topic. c.mu held.
func (c *Client) matchLocked(topic string) []Handler {
	var hs []Handler
	for p, sub := range c.subs {
		if match(p, topic) {
			h := sub.h
			if h == nil {
				h = c.cfg.handler
			}
			if h != nil {
				hs = append(hs, h)
			}
		}
	}
	return hs
}

// match reports whether topic matches pattern with MQTT's wildcards: '+' is
// one whole level (an empty one too), '#' as the last level is any number
// of remaining levels (none too); a wildcard in the first level does not
// match a topic that starts with '$'. Other bytes compare exactly.
func match(pattern, topic string) bool {
	if strings.HasPrefix(topic, "$") && (strings.HasPrefix(pattern, "+") || strings.HasPrefix(pattern, "#")) {
		return false
	}
	for {
		pl, prest, pmore := strings.Cut(pattern, "/")
		if pl == "#" && !pmore {
			return true
		}
		tl, trest, tmore := strings.Cut(topic, "/")
		if pl != "+" && pl != tl {
			return false
		}
		switch {
		case !pmore && !tmore:
			return true
		case !pmore:
			return false
		case !tmore:
			return prest == "#" // "a/#" matches "a"
		}
		pattern, topic = prest, trest
	}
}
