package client

import (
	"errors"
	"time"

	"github.com/ferry-proto/ferry/protocol"
)

// dispatch is the callback goroutine: it runs handlers and callbacks one at
// a time, in order, until the client closes and the queued callbacks ran.
func (c *Client) dispatch() {
	defer close(c.dispatched)
	var batch []inboxItem
	for {
		var ok bool
		if batch, ok = c.inbox.take(batch); !ok {
			return
		}
		// One lock for a whole batch: messages queued while it runs wait
		// for the next one.
		msgs, bytes := 0, 0
		for i := range batch {
			it := batch[i]
			batch[i] = inboxItem{}
			if it.m != nil {
				msgs++
				bytes += len(it.m.Payload)
				if c.inbox.roomWanted() {
					c.inbox.done(msgs, bytes)
					msgs, bytes = 0, 0
				}
				if c.inbox.isClosed() {
					continue // messages queued at close are dropped
				}
			}
			c.inCallback.Store(true)
			if it.fn != nil {
				it.fn()
			} else {
				c.deliver(it.m)
			}
			c.inCallback.Store(false)
		}
		c.inbox.done(msgs, bytes)
	}
}

// deliver hands one message to its handlers and sends what the protocol
// expects after them: the answer to a request, the CONFIRM of an APP_ACK
// message.
func (c *Client) deliver(m *Message) {
	if m.expiry && c.now()-m.arrived > int64(time.Duration(m.ttl)*time.Millisecond) {
		// SPEC §6.4: never delivered after its TTL; a request is answered
		// EXPIRED.
		c.stats.dropped.Add(1)
		if m.IsRequest() && m.answered.Or(1)&1 == 0 {
			_ = c.reply(m, nil, true, protocol.CodeExpired, "")
		}
		if m.appAck && m.answered.Or(2)&2 == 0 {
			// SPEC §12.10: a message that cannot be delivered is REJECTED.
			_ = c.confirm(m, protocol.ConfirmRejected)
		}
		return
	}
	var hs []Handler
	switch m.Kind {
	case KindPublish:
		hs = c.handlersFor(m.Topic)
	default:
		if c.cfg.handler != nil {
			hs = []Handler{c.cfg.handler}
		}
	}
	c.stats.received.Add(1)
	var err error
	for _, h := range hs {
		if e := h(m); e != nil && err == nil {
			err = e
		}
	}
	if m.IsRequest() && m.answered.Or(1)&1 == 0 {
		// SPEC §6.1: a request is answered exactly once.
		switch {
		case len(hs) == 0:
			_ = c.reply(m, nil, true, protocol.CodeNoSuchRoute, "")
		case err != nil && !errors.Is(err, ErrConfirmLater):
			_ = c.reply(m, nil, true, protocol.CodeHandlerError, err.Error())
		default:
			_ = c.reply(m, nil, false, protocol.CodeOK, "")
		}
	}
	if m.appAck && !errors.Is(err, ErrConfirmLater) && m.answered.Or(2)&2 == 0 {
		v := protocol.ConfirmProcessed
		if err != nil || len(hs) == 0 {
			v = protocol.ConfirmRejected
		}
		_ = c.confirm(m, v)
	}
}
