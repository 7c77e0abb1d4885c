package chaos

import (
	"context"
	"sync"
)

// Gate releases messages to the senders in steps, so that the driver
// spreads each stream's messages over the epochs: a sender may send index
// i once i < the gate's limit.
//
// Safe from any goroutine.
type Gate struct {
	mu    sync.Mutex
	limit uint64
	ch    chan struct{} // closed and replaced on every raise
}

// NewGate returns a closed gate (limit 0).
func NewGate() *Gate { return &Gate{ch: make(chan struct{})} }

// Allow raises the limit to n (never lowers it).
func (g *Gate) Allow(n uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if n > g.limit {
		g.limit = n
		close(g.ch)
		g.ch = make(chan struct{})
	}
}

// Limit is the limit now.
func (g *Gate) Limit() uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.limit
}

// Wait blocks until index i may be sent, or ctx ends.
func (g *Gate) Wait(ctx context.Context, i uint64) error {
	for {
		g.mu.Lock()
		ok, ch := i < g.limit, g.ch
		g.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
