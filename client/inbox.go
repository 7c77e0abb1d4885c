package client

import (
	"sync"
	"sync/atomic"
)

// inbox is the queue of the callback goroutine: incoming messages and
// callbacks (events, gap reports, SendAsync completions), run one at a time
// in order. Pushing never blocks, so it may happen under Client.mu; the
// reader instead waits for room before it reads more from the socket
// (waitRoom), which bounds the queue to the limit plus one read's worth.
type inbox struct {
	mu    sync.Mutex
	items []inboxItem
	// msgs and bytes count the messages queued or being handled (taken,
	// not yet done), and their payload bytes.
	bytes    int
	msgs     int
	closed   atomic.Bool   // no more messages (set under mu; read without it by isClosed)
	wanted   atomic.Bool   // room is not nil: the reader waits
	signal   chan struct{} // cap 1: something was pushed, or closed
	room     chan struct{} // closed when the queue falls under its bound
	maxMsgs  int
	maxBytes int
}

type inboxItem struct {
	m  *Message
	fn func()
}

func (q *inbox) init(maxMsgs, maxBytes int) {
	q.signal = make(chan struct{}, 1)
	q.maxMsgs, q.maxBytes = maxMsgs, maxBytes
}

// pushMsgs queues messages, in order, with one lock.
func (q *inbox) pushMsgs(items []inboxItem) {
	q.mu.Lock()
	if !q.closed.Load() {
		q.items = append(q.items, items...)
		for _, it := range items {
			q.msgs++
			q.bytes += len(it.m.Payload)
		}
	}
	q.mu.Unlock()
	q.notify()
}

// pushFn queues a callback. Callbacks queued before the callback goroutine
// ends run, also after close.
func (q *inbox) pushFn(fn func()) {
	q.mu.Lock()
	q.items = append(q.items, inboxItem{fn: fn})
	q.mu.Unlock()
	q.notify()
}

func (q *inbox) notify() {
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

func (q *inbox) full() bool { return q.msgs >= q.maxMsgs || q.bytes >= q.maxBytes }

func (q *inbox) isFull() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.full() && !q.closed.Load()
}

// waitRoom returns once the queue is under its bound (true), or when stop
// is closed first (false).
func (q *inbox) waitRoom(stop <-chan struct{}) bool {
	q.mu.Lock()
	if !q.full() || q.closed.Load() {
		q.mu.Unlock()
		return true
	}
	if q.room == nil {
		q.room = make(chan struct{})
		q.wanted.Store(true)
	}
	room := q.room
	q.mu.Unlock()
	select {
	case <-room:
		return true
	case <-stop:
		return false
	}
}

// close stops message delivery: queued messages are dropped, callbacks
// still run.
func (q *inbox) close() {
	q.mu.Lock()
	q.closed.Store(true)
	if q.room != nil {
		close(q.room)
		q.room = nil
		q.wanted.Store(false)
	}
	q.mu.Unlock()
	q.notify()
}

// take waits for items and returns all of them, leaving dst (emptied, its
// capacity kept) as the queue's buffer; ok is false once the inbox is
// closed and empty. The messages returned count against the bound until
// done is called for them, so that the queue's memory stays within the
// bound plus one read's worth. Callback goroutine only.
func (q *inbox) take(dst []inboxItem) (items []inboxItem, ok bool) {
	for {
		q.mu.Lock()
		if len(q.items) > 0 {
			items, q.items = q.items, dst[:0]
			q.mu.Unlock()
			return items, true
		}
		closed := q.closed.Load()
		q.mu.Unlock()
		if closed {
			return dst[:0], false
		}
		<-q.signal
	}
}

// done gives back the room of msgs messages of bytes payload bytes taken
// and handled (or skipped).
func (q *inbox) done(msgs, bytes int) {
	if msgs == 0 {
		return
	}
	q.mu.Lock()
	q.msgs -= msgs
	q.bytes -= bytes
	if q.room != nil && !q.full() {
		close(q.room)
		q.room = nil
		q.wanted.Store(false)
	}
	q.mu.Unlock()
}

// roomWanted reports whether the reader waits for room: the callback
// goroutine then gives back each message's room before its handler runs,
// not after the batch, so that a handler waiting for a response (read by
// the reader) does not wait for itself.
func (q *inbox) roomWanted() bool { return q.wanted.Load() }

// isClosed reports whether close was called: messages are skipped from
// then on.
func (q *inbox) isClosed() bool { return q.closed.Load() }
