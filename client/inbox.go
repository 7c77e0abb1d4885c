package client

import "sync"

// inbox is the queue of the callback goroutine: incoming messages and
// callbacks (events, gap reports, SendAsync completions), run one at a time
// in order. Pushing never blocks, so it may happen under Client.mu; the
// reader instead waits for room before it reads more from the socket
// (waitRoom), which bounds the queue to the limit plus one read's worth.
type inbox struct {
	mu       sync.Mutex
	items    []inboxItem
	bytes    int // payload bytes of the queued messages
	msgs     int
	closed   bool
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

func (q *inbox) pushMsg(m *Message) {
	q.mu.Lock()
	if !q.closed {
		q.items = append(q.items, inboxItem{m: m})
		q.msgs++
		q.bytes += len(m.Payload)
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
	return q.full() && !q.closed
}

// waitRoom returns once the queue is under its bound (true), or when stop
// is closed first (false).
func (q *inbox) waitRoom(stop <-chan struct{}) bool {
	q.mu.Lock()
	if !q.full() || q.closed {
		q.mu.Unlock()
		return true
	}
	if q.room == nil {
		q.room = make(chan struct{})
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
	q.closed = true
	if q.room != nil {
		close(q.room)
		q.room = nil
	}
	q.mu.Unlock()
	q.notify()
}

// pop waits for the next item; ok is false once the inbox is closed and
// empty. Messages queued at close are skipped.
func (q *inbox) pop() (it inboxItem, ok bool) {
	for {
		q.mu.Lock()
		for len(q.items) > 0 {
			it = q.items[0]
			q.items[0] = inboxItem{}
			q.items = q.items[1:]
			if it.m != nil {
				q.msgs--
				q.bytes -= len(it.m.Payload)
				if q.room != nil && !q.full() {
					close(q.room)
					q.room = nil
				}
				if q.closed {
					continue
				}
			}
			q.mu.Unlock()
			return it, true
		}
		q.items = q.items[:0:0]
		closed := q.closed
		q.mu.Unlock()
		if closed {
			return it, false
		}
		<-q.signal
	}
}
