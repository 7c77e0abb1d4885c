package bench

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// ProgressPrinter writes Progress reports to w: on a terminal (tty) one
// status line rewritten in place, otherwise one plain line per report, so
// that a log or a pipe gets readable text. Report is meant for
// Config.Progress; Done ends the status line and must be called once the
// run is over, before anything else is written to w. Both are safe from
// any goroutine.
type ProgressPrinter struct {
	w   io.Writer
	tty bool

	mu        sync.Mutex
	lastConns int
	lastAt    time.Time
	drawn     bool
}

// NewProgressPrinter returns a printer to w.
func NewProgressPrinter(w io.Writer, tty bool) *ProgressPrinter {
	return &ProgressPrinter{w: w, tty: tty}
}

// Report writes one report.
func (pp *ProgressPrinter) Report(p Progress) {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	now := time.Now()
	var b strings.Builder
	el := p.Elapsed.Round(100 * time.Millisecond)
	if p.Total > 0 {
		fmt.Fprintf(&b, "[%s %s/%s]", p.Phase, el, p.Total)
	} else {
		fmt.Fprintf(&b, "[%s %s]", p.Phase, el)
	}
	fmt.Fprintf(&b, " conns %s/%s", group(float64(p.Conns)), group(float64(p.Target)))
	if p.Phase == "connect" && !pp.lastAt.IsZero() {
		fmt.Fprintf(&b, " (%s/s)", group(float64(p.Conns-pp.lastConns)/now.Sub(pp.lastAt).Seconds()))
	}
	if p.Phase != "connect" && (p.Msgs > 0 || p.Rate > 0) {
		fmt.Fprintf(&b, "  msgs %s  %s msgs/s", group(float64(p.Msgs)), group(p.Rate))
	}
	fmt.Fprintf(&b, "  errors %s  reconnects %s", group(float64(p.Errors)), group(float64(p.Reconnects)))
	pp.lastConns, pp.lastAt = p.Conns, now
	if pp.tty {
		// Carriage return and erase to the end of the line.
		_, _ = io.WriteString(pp.w, "\r\x1b[K"+b.String())
		pp.drawn = true
		return
	}
	_, _ = io.WriteString(pp.w, b.String()+"\n")
}

// Done ends the status line on a terminal.
func (pp *ProgressPrinter) Done() {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	if pp.tty && pp.drawn {
		_, _ = io.WriteString(pp.w, "\r\x1b[K")
		pp.drawn = false
	}
}
