package chaos

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Driver runs the schedule against a live system. Each epoch runs on a
// proxy restarted into its weather: the driver lets the epoch's share of
// every stream's messages through the gate, waits until KillAt of them
// have settled (delivered or reported dropped), then kills the
// connections (see Kill), restarts the proxy into the next epoch's weather
// and waits until every client has dialed again (and, with Ready, is
// connected). The last kill restarts into clear weather; the driver then
// releases the rest and waits until everything sent has settled.
//
// Run is bounded: it fails when nothing settles for Stall, or a client
// does not come back within Reconnect of a kill, or ctx ends.
type Driver struct {
	Proxy    *Proxy
	Schedule *Schedule
	Checker  *Checker
	Gate     *Gate
	Dialer   *Dialer
	// Epochs is the number of epochs, each ending in a kill.
	Epochs int
	// PerStream is the number of messages every stream sends in all.
	PerStream uint64
	// Ready, if set, says whether every client is connected (handshake
	// complete). After each restart, once every client has dialed again,
	// the driver waits for it, so that the next kill hits connections
	// that carry messages rather than handshakes.
	Ready func() bool
	// Stall and Reconnect bound the waits (defaults 20 s and 10 s).
	Stall, Reconnect time.Duration
	// Logf, if set, is told every epoch.
	Logf func(format string, args ...any)
}

// ErrStalled is returned when nothing settled for Driver.Stall.
var ErrStalled = errors.New("chaos: no progress")

// Run drives the epochs and the final drain.
func (d *Driver) Run(ctx context.Context) error {
	if d.Stall == 0 {
		d.Stall = 20 * time.Second
	}
	if d.Reconnect == 0 {
		d.Reconnect = 10 * time.Second
	}
	streams := uint64(d.Checker.Clients() * 2 * NumLanes)
	ep := d.Schedule.Next()
	if err := d.restart(ctx, ep.Weather, 0); err != nil {
		return fmt.Errorf("first weather: %w", err)
	}
	prev := uint64(0)
	for e := range d.Epochs {
		if d.Logf != nil {
			d.Logf("%v", ep)
		}
		limit := d.PerStream * uint64(e+1) / uint64(d.Epochs)
		d.Gate.Allow(limit)
		target := streams * (prev + uint64(ep.KillAt*float64(limit-prev)))
		prev = limit
		if err := d.waitProgress(ctx, func() bool { return d.Checker.Progress() >= target }); err != nil {
			return fmt.Errorf("%v: waiting for %d messages to settle: %w", ep, target, err)
		}
		var next Epoch // the last kill restarts into clear weather
		if e+1 < d.Epochs {
			next = d.Schedule.Next()
		}
		if err := d.kill(ctx, ep, next.Weather); err != nil {
			return fmt.Errorf("%v: %w", ep, err)
		}
		ep = next
	}
	d.Gate.Allow(d.PerStream)
	if err := d.waitProgress(ctx, func() bool {
		return d.Checker.Progress() >= streams*d.PerStream && d.Checker.Settled()
	}); err != nil {
		return fmt.Errorf("final drain: %w", err)
	}
	return nil
}

// waitProgress polls done until it holds, failing when the checker's
// progress stands still for d.Stall.
func (d *Driver) waitProgress(ctx context.Context, done func() bool) error {
	last, since := d.Checker.Progress(), time.Now()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !done() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		if p := d.Checker.Progress(); p != last {
			last, since = p, time.Now()
		} else if time.Since(since) > d.Stall {
			return fmt.Errorf("%w for %v: %s", ErrStalled, d.Stall, d.Checker.Status())
		}
	}
	return nil
}

// kill ends an epoch: the kill toxics go onto the live connections until
// every client has noticed (or Hold runs out), then the proxy restarts
// with the next weather, which closes whatever is left.
func (d *Driver) kill(ctx context.Context, ep Epoch, next []Toxic) error {
	outage := time.Duration(0)
	switch ep.Kill {
	case KillReset, KillResetLater, KillTimeout:
		before := d.Dialer.Dials()
		for _, t := range ep.KillToxics {
			if err := d.Proxy.Add(t); err != nil {
				return err
			}
		}
		wctx, cancel := context.WithTimeout(ctx, ep.Hold)
		d.Dialer.WaitRedial(wctx, before)
		cancel()
	case KillDown:
		outage = ep.Outage
	}
	return d.restart(ctx, next, outage)
}

// restart restarts the proxy and waits until every client has dialed
// through it.
func (d *Driver) restart(ctx context.Context, weather []Toxic, outage time.Duration) error {
	before := d.Dialer.Dials()
	if err := d.Proxy.Restart(weather, outage); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, d.Reconnect)
	defer cancel()
	if late := d.Dialer.WaitRedial(wctx, before); late != nil {
		return fmt.Errorf("clients %v did not reconnect within %v of a proxy restart (dials %v, failed %d)",
			late, d.Reconnect, d.Dialer.Dials(), d.Dialer.Failed())
	}
	if d.Ready == nil {
		return nil
	}
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !d.Ready() {
		select {
		case <-wctx.Done():
			return fmt.Errorf("clients not connected within %v of a proxy restart", d.Reconnect)
		case <-tick.C:
		}
	}
	return nil
}
