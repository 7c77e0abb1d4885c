package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/ferry-proto/ferry/bench"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
)

// A manifest lists the runs of one comparison, one per line, in the order
// the table shows them:
//
//	SCENARIO CONTENDER RESULT.json SERVER_CPU_SECONDS|-
//
// RESULT.json is ferry-bench's --json output or nats-pubsub's (the same
// fields); a missing or empty file is a run that failed.

// entry is one line of the manifest with its result.
type entry struct {
	scenario, contender, path string
	serverCPU                 float64 // seconds; 0: unknown
	res                       *bench.Result
	err                       error

	// Set by medians: how many runs of this scenario and contender the
	// manifest holds, and the lowest and highest msgs/s among them.
	runs   int
	lo, hi float64
}

// medians keeps one entry per scenario and contender, in order of first
// appearance: the run with the median msgs/s (the lower median of an even
// count) among those that produced a result, or the first failed one.
func medians(entries []*entry) []*entry {
	type key struct{ scenario, contender string }
	var order []key
	groups := map[key][]*entry{}
	for _, e := range entries {
		k := key{e.scenario, e.contender}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], e)
	}
	out := make([]*entry, 0, len(order))
	for _, k := range order {
		g := groups[k]
		var ok []*entry
		for _, e := range g {
			if e.res != nil {
				ok = append(ok, e)
			}
		}
		if len(ok) == 0 {
			g[0].runs = len(g)
			out = append(out, g[0])
			continue
		}
		sort.SliceStable(ok, func(i, j int) bool { return ok[i].res.MsgsPerSec < ok[j].res.MsgsPerSec })
		m := ok[(len(ok)-1)/2]
		m.runs, m.lo, m.hi = len(g), ok[0].res.MsgsPerSec, ok[len(ok)-1].res.MsgsPerSec
		out = append(out, m)
	}
	return out
}

// target is a ratio the comparison is held to: scenario: a / b ≥ min.
type target struct {
	scenario, a, b string
	min            float64
}

// parseTarget reads "SCENARIO:A/B>=MIN", as in "pubsub:ferry-gnet/nats-server>=1.5".
func parseTarget(s string) (target, error) {
	var t target
	sc, rest, ok1 := strings.Cut(s, ":")
	pair, m, ok2 := strings.Cut(rest, ">=")
	a, b, ok3 := strings.Cut(pair, "/")
	v, err := strconv.ParseFloat(m, 64)
	if !ok1 || !ok2 || !ok3 || err != nil || sc == "" || a == "" || b == "" {
		return t, fmt.Errorf("target %q: want SCENARIO:A/B>=MIN", s)
	}
	return target{scenario: sc, a: a, b: b, min: v}, nil
}

func readManifest(path string) ([]*entry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []*entry
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		if len(fields) != 4 {
			return nil, fmt.Errorf("%s:%d: want SCENARIO CONTENDER RESULT CPU", path, line)
		}
		e := &entry{scenario: fields[0], contender: fields[1], path: fields[2]}
		if fields[3] != "-" {
			if e.serverCPU, err = strconv.ParseFloat(fields[3], 64); err != nil {
				return nil, fmt.Errorf("%s:%d: server CPU: %w", path, line, err)
			}
		}
		e.res, e.err = readResult(e.path)
		out = append(out, e)
	}
	return out, sc.Err()
}

func readResult(path string) (*bench.Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return nil, errors.New("no result")
	}
	var r bench.Result
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

// reportOptions shape the tables.
type reportOptions struct {
	baseline  string
	targets   []target
	idleLimit float64 // bytes per connection the idle figure is held to
	markdown  bool
}

// writeReport prints one table per scenario, in manifest order: absolute
// figures and ratios to the baseline contender, then the targets and the
// idle figures.
func writeReport(w io.Writer, entries []*entry, o reportOptions) error {
	var scenarios []string
	by := map[string][]*entry{}
	for _, e := range medians(entries) {
		if _, ok := by[e.scenario]; !ok {
			scenarios = append(scenarios, e.scenario)
		}
		by[e.scenario] = append(by[e.scenario], e)
	}
	var b strings.Builder
	for _, sc := range scenarios {
		es := by[sc]
		if sc == "idle" {
			writeIdle(&b, es, o)
			continue
		}
		var base *entry
		for _, e := range es {
			if e.contender == o.baseline && e.res != nil {
				base = e
			}
		}
		if r := firstResult(es); r != nil {
			fmt.Fprintf(&b, "%s: %d connections, %d B payloads, %.1f s, %s loop\n", sc, r.Connections, r.Size, r.DurationS, r.Loop)
		} else {
			fmt.Fprintf(&b, "%s\n", sc)
		}
		if n := es[0].runs; n > 1 {
			fmt.Fprintf(&b, "(each row: the run with the median msgs/s of %d rounds, contenders interleaved; range in brackets)\n", n)
		}
		head := []string{"contender", "msgs/s", "p50 ms", "p99 ms", "p99.9 ms", "max ms", "errors",
			"cli CPU s", "srv CPU s", "msgs/srv CPU-s", "× " + o.baseline, "per CPU × " + o.baseline}
		var rows [][]string
		var failures []string
		for _, e := range es {
			if e.res == nil {
				rows = append(rows, []string{e.contender, "failed", "", "", "", "", "", "", "", "", "", ""})
				failures = append(failures, "  "+e.contender+" failed: "+e.err.Error()+"\n")
				continue
			}
			r := e.res
			rate := bench.FormatCount(r.MsgsPerSec)
			if e.runs > 1 {
				rate += " [" + bench.FormatCount(e.lo) + "–" + bench.FormatCount(e.hi) + "]"
			}
			row := []string{e.contender, rate, bench.FormatMs(r.P50ms), bench.FormatMs(r.P99ms), bench.FormatMs(r.P999ms),
				bench.FormatMs(r.MaxMs), bench.FormatCount(float64(r.Errors)), "-", "-", "-", "-", "-"}
			if r.ClientCPUS > 0 {
				row[7] = strconv.FormatFloat(r.ClientCPUS, 'f', 2, 64)
			}
			if e.serverCPU > 0 {
				row[8] = strconv.FormatFloat(e.serverCPU, 'f', 2, 64)
				row[9] = bench.FormatCount(float64(r.Msgs) / e.serverCPU)
			}
			if base != nil && base.res.MsgsPerSec > 0 {
				row[10] = ratio(r.MsgsPerSec / base.res.MsgsPerSec)
				if e.serverCPU > 0 && base.serverCPU > 0 && base.res.Msgs > 0 {
					row[11] = ratio((float64(r.Msgs) / e.serverCPU) / (float64(base.res.Msgs) / base.serverCPU))
				}
			}
			rows = append(rows, row)
		}
		writeTable(&b, head, rows, o.markdown)
		b.WriteString(strings.Join(failures, ""))
		b.WriteString("\n")
	}
	if len(o.targets) > 0 {
		b.WriteString("targets (ratios of msgs/s measured in this run):\n")
		for _, t := range o.targets {
			a, bb := find(by[t.scenario], t.a), find(by[t.scenario], t.b)
			if a == nil || bb == nil || bb.res.MsgsPerSec == 0 {
				fmt.Fprintf(&b, "  %s: %s / %s ≥ %.2f: not measured\n", t.scenario, t.a, t.b, t.min)
				continue
			}
			r := a.res.MsgsPerSec / bb.res.MsgsPerSec
			verdict := "met"
			if r < t.min {
				verdict = "NOT met"
			}
			fmt.Fprintf(&b, "  %s: %s / %s = %.2f (target ≥ %.2f): %s", t.scenario, t.a, t.b, r, t.min, verdict)
			if rs := roundRatios(entries, t); len(rs) > 1 {
				b.WriteString("; round by round " + strings.Join(rs, ", "))
			}
			b.WriteString("\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// roundRatios pairs the i-th run of t.a with the i-th run of t.b (the
// script interleaves contenders, so those ran side by side) and formats
// each round's ratio of msgs/s.
func roundRatios(entries []*entry, t target) []string {
	var as, bs []*entry
	for _, e := range entries {
		switch {
		case e.scenario != t.scenario:
		case e.contender == t.a:
			as = append(as, e)
		case e.contender == t.b:
			bs = append(bs, e)
		}
	}
	var out []string
	for i := 0; i < len(as) && i < len(bs); i++ {
		if as[i].res == nil || bs[i].res == nil || bs[i].res.MsgsPerSec == 0 {
			out = append(out, "-")
			continue
		}
		out = append(out, ratio(as[i].res.MsgsPerSec/bs[i].res.MsgsPerSec))
	}
	return out
}

func writeIdle(b *strings.Builder, es []*entry, o reportOptions) {
	b.WriteString("idle: connections held, server memory per connection\n")
	head := []string{"contender", "connections", "connect s", "conns/s", "heap+stack B/conn", "RSS B/conn", "errors",
		fmt.Sprintf("≤ %s B/conn", bench.FormatCount(o.idleLimit))}
	var rows [][]string
	var failures []string
	for _, e := range es {
		if e.res == nil {
			rows = append(rows, []string{e.contender, "failed", "", "", "", "", "", ""})
			failures = append(failures, "  "+e.contender+" failed: "+e.err.Error()+"\n")
			continue
		}
		r := e.res
		ok := "no"
		if r.BytesPerConn > 0 && r.BytesPerConn <= o.idleLimit {
			ok = "yes"
		}
		if r.BytesPerConn == 0 {
			ok = "not measured"
		}
		rows = append(rows, []string{e.contender, bench.FormatCount(float64(r.Connections)), strconv.FormatFloat(r.ConnectS, 'f', 2, 64),
			bench.FormatCount(r.ConnectsPerSec), bench.FormatCount(r.BytesPerConn), bench.FormatCount(r.ServerRSSPerConn), bench.FormatCount(float64(r.Errors)), ok})
	}
	writeTable(b, head, rows, o.markdown)
	b.WriteString(strings.Join(failures, ""))
	b.WriteString("\n")
}

func writeTable(b *strings.Builder, head []string, rows [][]string, markdown bool) {
	if markdown {
		b.WriteString("| " + strings.Join(head, " | ") + " |\n|")
		for range head {
			b.WriteString("---|")
		}
		b.WriteString("\n")
		for _, r := range rows {
			b.WriteString("| " + strings.Join(r, " | ") + " |\n")
		}
		return
	}
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  "+strings.Join(head, "\t")+"\t")
	for _, r := range rows {
		fmt.Fprintln(tw, "  "+strings.Join(r, "\t")+"\t")
	}
	_ = tw.Flush()
}

func firstResult(es []*entry) *bench.Result {
	for _, e := range es {
		if e.res != nil {
			return e.res
		}
	}
	return nil
}

func find(es []*entry, contender string) *entry {
	for _, e := range es {
		if e.contender == contender && e.res != nil {
			return e
		}
	}
	return nil
}

func ratio(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }
