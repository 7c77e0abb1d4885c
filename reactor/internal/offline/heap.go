package offline

// deadline is one entry of the queue's min-heap: when the message in ring
// slot pos must leave undelivered. The slot points back with its hidx, so a
// message leaving from the head finds its entry in O(1) and removes it in
// O(log n). container/heap is not used: its Push and Pop box every element
// in an interface, which allocates.
type deadline struct {
	at  int64
	pos int32
}

// heapPush adds the deadline at for the message in ring slot pos.
// The heap grows to the ring's size, not beyond: it never holds more
// entries than there are live slots.
func (q *Queue) heapPush(at int64, pos int) {
	if len(q.heap) == cap(q.heap) {
		heap := make([]deadline, len(q.heap), len(q.ring))
		copy(heap, q.heap)
		q.heap = heap
	}
	q.heap = append(q.heap, deadline{at: at, pos: int32(pos)})
	q.heapUp(len(q.heap) - 1)
}

// heapRemove removes the entry at index i. The slot it pointed at is the
// caller's to clear.
func (q *Queue) heapRemove(i int) {
	last := len(q.heap) - 1
	if i != last {
		q.heapSet(i, q.heap[last])
	}
	q.heap = q.heap[:last]
	if i != last && !q.heapDown(i) {
		q.heapUp(i)
	}
}

// heapSet stores e at index i and points its slot back at i.
func (q *Queue) heapSet(i int, e deadline) {
	q.heap[i] = e
	q.ring[e.pos].hidx = int32(i)
}

func (q *Queue) heapUp(i int) {
	e := q.heap[i]
	for i > 0 {
		parent := (i - 1) / 2
		if q.heap[parent].at <= e.at {
			break
		}
		q.heapSet(i, q.heap[parent])
		i = parent
	}
	q.heapSet(i, e)
}

// heapDown sifts the entry at i down and reports whether it moved.
func (q *Queue) heapDown(i0 int) bool {
	e := q.heap[i0]
	i := i0
	n := len(q.heap)
	for {
		c := 2*i + 1
		if c >= n {
			break
		}
		if r := c + 1; r < n && q.heap[r].at < q.heap[c].at {
			c = r
		}
		if e.at <= q.heap[c].at {
			break
		}
		q.heapSet(i, q.heap[c])
		i = c
	}
	q.heapSet(i, e)
	return i != i0
}
