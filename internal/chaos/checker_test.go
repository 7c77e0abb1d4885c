package chaos

import (
	"strings"
	"testing"
)

func send(c *Checker, client int, dir Dir, lane uint8, n int) []Msg {
	ms := make([]Msg, n)
	for i := range ms {
		ms[i] = c.Next(client, dir, lane)
	}
	return ms
}

func deliver(c *Checker, ms ...Msg) {
	for _, m := range ms {
		c.Deliver(int(m.Client), m.Dir, m.Lane, Encode(nil, m, int(m.Index%5)))
	}
}

func wantProblems(t *testing.T, r Result, subs ...string) {
	t.Helper()
	all := strings.Join(r.Problems, "\n")
	if len(subs) == 0 && !r.OK() {
		t.Fatalf("unexpected problems:\n%s", all)
	}
	for _, s := range subs {
		if !strings.Contains(all, s) {
			t.Fatalf("problems do not mention %q:\n%s", s, all)
		}
	}
}

func TestCheckerClean(t *testing.T) {
	c := NewChecker(2)
	for client := range 2 {
		for dir := Up; dir <= Down; dir++ {
			for lane := uint8(1); lane <= NumLanes; lane++ {
				deliver(c, send(c, client, dir, lane, 100)...)
			}
		}
	}
	r := c.Result()
	wantProblems(t, r)
	if !c.Settled() || r.Sent != 1200 || r.Delivered != 1200 || r.Lost != 0 {
		t.Fatalf("settled %v, %+v", c.Settled(), r)
	}
	want := "chaos: sent=1200 delivered=1200 lost=0 duplicated=0 reordered=0 dropped_reported=0 disconnects=7"
	if got := r.Line(7); got != want {
		t.Fatalf("line\n got %s\nwant %s", got, want)
	}
}

func TestCheckerLost(t *testing.T) {
	c := NewChecker(1)
	ms := send(c, 0, Down, 2, 10)
	deliver(c, ms[:3]...)
	deliver(c, ms[5:]...)
	if c.Settled() {
		t.Fatal("settled with two messages missing")
	}
	r := c.Result()
	if r.Lost != 2 || r.Delivered != 8 {
		t.Fatalf("%+v", r)
	}
	wantProblems(t, r, "client 0 down: lost 2", "lane 2: 2 missing, first [3 4]")
}

// Drops reported by count cover exactly that many missing messages: the
// offline queue drops the oldest, and the GAP_REPORT does not say which.
func TestCheckerDropsReported(t *testing.T) {
	c := NewChecker(1)
	ms := send(c, 0, Down, 1, 10)
	c.DropReported(0, Down, 4) // before the messages after the drop
	deliver(c, ms[4:]...)
	r := c.Result()
	wantProblems(t, r)
	if !c.Settled() || r.DroppedReported != 4 || r.Lost != 0 {
		t.Fatalf("%+v", r)
	}
	if got := c.Outstanding(0, Down, 1); got != 0 {
		t.Fatalf("outstanding %d", got)
	}

	// Over-reporting is a failure too: every drop counted exactly.
	c.DropReported(0, Down, 1)
	r = c.Result()
	if r.Lost != -1 {
		t.Fatalf("%+v", r)
	}
	wantProblems(t, r, "1 more drops reported than messages missing")
}

func TestCheckerDuplicateAndReorder(t *testing.T) {
	c := NewChecker(1)
	ms := send(c, 0, Up, 3, 6)
	deliver(c, ms[0], ms[2], ms[1], ms[2], ms[3], ms[5], ms[4], ms[0])
	r := c.Result()
	if r.Duplicated != 2 || r.Reordered != 2 || r.Delivered != 6 || r.Lost != 0 {
		t.Fatalf("%+v", r)
	}
	wantProblems(t, r, "client 0 up lane 3: 2 delivered twice, first [2 0]",
		"client 0 up lane 3: 2 out of order, first 1 after 2, 4 after 5")
}

func TestCheckerForeignCorruptUnknown(t *testing.T) {
	c := NewChecker(2)
	ms := send(c, 0, Up, 1, 2)
	// Arrived on the wrong lane, at the wrong client, damaged, never sent.
	c.Deliver(0, Up, 2, Encode(nil, ms[0], 0))
	c.Deliver(1, Up, 1, Encode(nil, ms[0], 0))
	bad := Encode(nil, ms[1], 3)
	bad[len(bad)-1] ^= 0xff
	c.Deliver(0, Up, 1, bad)
	c.Deliver(0, Up, 1, Encode(nil, Msg{Client: 0, Dir: Up, Lane: 1, Index: 99}, 0))
	deliver(c, ms...)
	r := c.Result()
	if r.Foreign != 2 || r.Corrupt != 1 || r.Unknown != 1 || r.Delivered != 2 {
		t.Fatalf("%+v", r)
	}
	wantProblems(t, r, "1 corrupt and 2 misplaced", "got a message of client 0 up lane 1 (index 0)",
		"deliveries of indexes never sent, first [99]")
}

func TestCheckerMissingSample(t *testing.T) {
	c := NewChecker(1)
	ms := send(c, 0, Up, 1, 300)
	for _, m := range ms {
		if m.Index%64 != 63 && m.Index != 200 {
			deliver(c, m)
		}
	}
	r := c.Result()
	wantProblems(t, r, "lane 1: 5 missing, first [63 127 191 200 255]")
}

// Messages written off with a lost session are still lost, but settled.
func TestCheckerWriteOff(t *testing.T) {
	c := NewChecker(1)
	ms := send(c, 0, Down, 1, 10)
	deliver(c, ms[:4]...)
	c.DropReported(0, Down, 1)
	if n := c.WriteOff(0, Down); n != 5 {
		t.Fatalf("WriteOff = %d, want 5", n)
	}
	if n := c.WriteOff(0, Down); n != 0 {
		t.Fatalf("second WriteOff = %d, want 0", n)
	}
	if !c.Settled() || c.Progress() != 10 {
		t.Fatalf("settled %v, progress %d", c.Settled(), c.Progress())
	}
	r := c.Result()
	if r.Lost != 5 {
		t.Fatalf("%+v", r)
	}
	wantProblems(t, r, "client 0 down: lost 5 (5 written off with a lost session)")
}

// A receiver that skips messages must have had them reported dropped
// first; the checker names the skipped ids when it happens.
func TestCheckerGapNeedsReport(t *testing.T) {
	c := NewChecker(1)
	ms := send(c, 0, Down, 2, 10)
	deliver(c, ms[0], ms[1])
	c.DropReported(0, Down, 2)
	deliver(c, ms[4]) // skips 2, 3: covered
	deliver(c, ms[7]) // skips 5, 6: not covered
	deliver(c, ms[8], ms[9])
	c.DropReported(0, Down, 2) // too late for 5 and 6
	r := c.Result()
	if r.Unexplained != 2 || r.Lost != 0 {
		t.Fatalf("%+v", r)
	}
	wantProblems(t, r, "2 messages skipped by their receiver with no drop reported: client 0 down lane 2: 5..6 skipped (2 messages, 0 of them covered")
}

// The window frees for drops of the oldest (the receiver moves on) and of
// the newest (reported with their lane).
func TestCheckerOutstanding(t *testing.T) {
	c := NewChecker(1)
	ms := send(c, 0, Up, 1, 10)
	if got := c.Outstanding(0, Up, 1); got != 10 {
		t.Fatalf("outstanding %d, want 10", got)
	}
	c.DropReported(0, Up, 3)
	deliver(c, ms[3:6]...) // the oldest three dropped
	if got := c.Outstanding(0, Up, 1); got != 4 {
		t.Fatalf("outstanding %d, want 4", got)
	}
	c.DropReportedLane(0, Up, 1, 4) // the newest four failed
	if got := c.Outstanding(0, Up, 1); got != 0 {
		t.Fatalf("outstanding %d, want 0", got)
	}
	r := c.Result()
	wantProblems(t, r)
	if r.DroppedReported != 7 || r.Lost != 0 {
		t.Fatalf("%+v", r)
	}
}
