package chaos

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

// redialer keeps one connection per client open through the proxy, dialing
// again whenever it ends, the way the real clients do.
func redialer(t *testing.T, ctx context.Context, dl *Dialer, addr string, clients int) *sync.WaitGroup {
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			for ctx.Err() == nil {
				c, err := dl.Dial(ctx, i, addr)
				if err != nil {
					time.Sleep(2 * time.Millisecond)
					continue
				}
				stop := context.AfterFunc(ctx, func() { c.Close() })
				go func() { // keep bytes flowing so that the resets meet them
					for ctx.Err() == nil {
						if _, err := c.Write([]byte("tick")); err != nil {
							return
						}
						time.Sleep(time.Millisecond)
					}
				}()
				io.Copy(io.Discard, c)
				stop()
				c.Close()
			}
		})
	}
	return &wg
}

// The driver walks every epoch, kills and restarts, releases the messages
// through the gate and waits for the drain; here the "delivery" is a
// goroutine that hands each released message straight to the checker.
func TestDriverRuns(t *testing.T) {
	const clients, epochs, perStream = 2, 6, 60
	p := newProxy(t, echoServer(t), nil)
	dl := NewDialer(clients)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rctx, stopRedial := context.WithCancel(ctx)
	wg := redialer(t, rctx, dl, p.Addr(), clients)
	defer wg.Wait()
	defer stopRedial()

	ck, gate := NewChecker(clients), NewGate()
	var senders sync.WaitGroup
	defer senders.Wait()
	for i := range clients {
		for dir := Up; dir <= Down; dir++ {
			for lane := uint8(1); lane <= NumLanes; lane++ {
				senders.Go(func() {
					for idx := uint64(0); idx < perStream; idx++ {
						if gate.Wait(ctx, idx) != nil {
							return
						}
						m := ck.Next(i, dir, lane)
						if idx%10 == 3 {
							ck.DropReported(i, dir, 1) // reported, then skipped
							continue
						}
						ck.Deliver(i, dir, lane, Encode(nil, m, 0))
					}
				})
			}
		}
	}
	s := NewSchedule(3)
	s.MaxHold = 50 * time.Millisecond
	var logged []string
	d := &Driver{Proxy: p, Schedule: s, Checker: ck, Gate: gate, Dialer: dl, Epochs: epochs, PerStream: perStream,
		Logf: func(f string, a ...any) { logged = append(logged, f) }}
	if err := d.Run(ctx); err != nil {
		t.Fatal(err)
	}
	r := ck.Result()
	if !r.OK() || r.Sent != clients*2*NumLanes*perStream || r.DroppedReported != clients*2*NumLanes*6 {
		t.Fatalf("%+v", r)
	}
	if dis := dl.Disconnects(); dis < clients*(epochs+1) {
		t.Fatalf("%d disconnects, want at least %d", dis, clients*(epochs+1))
	}
	if len(logged) != epochs || p.Restarts() < epochs+1 {
		t.Fatalf("%d epochs logged, %d restarts", len(logged), p.Restarts())
	}
}

// A run where nothing is delivered stops by itself and says where each
// stream stood.
func TestDriverStalls(t *testing.T) {
	p := newProxy(t, echoServer(t), nil)
	dl := NewDialer(1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rctx, stopRedial := context.WithCancel(ctx)
	wg := redialer(t, rctx, dl, p.Addr(), 1)
	defer wg.Wait()
	defer stopRedial()
	ck := NewChecker(1)
	ck.Next(0, Up, 2)
	d := &Driver{Proxy: p, Schedule: NewSchedule(1), Checker: ck, Gate: NewGate(), Dialer: dl,
		Epochs: 3, PerStream: 10, Stall: 200 * time.Millisecond}
	err := d.Run(ctx)
	if !errors.Is(err, ErrStalled) || !strings.Contains(err.Error(), "lane 2 sent=1 delivered=0 next=0") {
		t.Fatalf("Run = %v", err)
	}
}

// A client that never comes back fails the run within Reconnect.
func TestDriverClientGone(t *testing.T) {
	p := newProxy(t, echoServer(t), nil)
	d := &Driver{Proxy: p, Schedule: NewSchedule(1), Checker: NewChecker(1), Gate: NewGate(), Dialer: NewDialer(1),
		Epochs: 1, PerStream: 1, Reconnect: 100 * time.Millisecond}
	err := d.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "clients [0] did not reconnect") {
		t.Fatalf("Run = %v", err)
	}
}
