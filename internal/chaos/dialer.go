package chaos

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"
)

// Dialer is the dial function the test's clients use. It refuses any
// address that is not loopback, binds each client to a source address of
// its own (127.0.0.(10+client)), and counts the connections each client
// made: every successful dial after a client's first is a reconnect, that
// is, a disconnect the client lived through.
//
// Safe from any goroutine.
type Dialer struct {
	mu     sync.Mutex
	dials  []uint64
	fails  []uint64
	notify chan struct{} // closed and replaced on every successful dial
}

// NewDialer returns a dialer for clients clients.
func NewDialer(clients int) *Dialer {
	return &Dialer{dials: make([]uint64, clients), fails: make([]uint64, clients), notify: make(chan struct{})}
}

// Dial connects client to addr, which must be loopback.
func (d *Dialer) Dial(ctx context.Context, client int, addr string) (net.Conn, error) {
	if err := CheckLoopback(addr); err != nil {
		return nil, err
	}
	nd := net.Dialer{
		Timeout:   2 * time.Second,
		LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(10+client))},
	}
	c, err := nd.DialContext(ctx, "tcp", addr)
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		d.fails[client]++
		return nil, fmt.Errorf("chaos: client %d dial: %w", client, err)
	}
	d.dials[client]++
	close(d.notify)
	d.notify = make(chan struct{})
	return c, nil
}

// Dials returns the successful dials per client so far.
func (d *Dialer) Dials() []uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]uint64(nil), d.dials...)
}

// Failed is the number of dials that failed, over all clients.
func (d *Dialer) Failed() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	var n uint64
	for _, f := range d.fails {
		n += f
	}
	return n
}

// Disconnects is the number of disconnects the clients lived through: the
// successful dials beyond each client's first.
func (d *Dialer) Disconnects() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, k := range d.dials {
		if k > 0 {
			n += int(k - 1)
		}
	}
	return n
}

// WaitRedial blocks until every client has dialed successfully since the
// snapshot before (from Dials), or ctx ends. It reports which clients did
// not.
func (d *Dialer) WaitRedial(ctx context.Context, before []uint64) []int {
	for {
		d.mu.Lock()
		var late []int
		for i, k := range d.dials {
			if k <= before[i] {
				late = append(late, i)
			}
		}
		ch := d.notify
		d.mu.Unlock()
		if late == nil {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return late
		}
	}
}
