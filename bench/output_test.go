package bench

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"math"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRecorderPercentiles(t *testing.T) {
	r := NewRecorder(4)
	// 1 to 10,000 µs, recorded over all shards.
	for v := 1; v <= 10_000; v++ {
		r.Record(v, time.Duration(v)*time.Microsecond)
	}
	p := PercentilesOf(r.Merged())
	within := func(name string, got, want float64) {
		t.Helper()
		// Three significant digits: each value is within 0.1 %.
		if math.Abs(got-want) > want*0.001+1e-9 {
			t.Errorf("%s = %v ms, want %v ms", name, got, want)
		}
	}
	if p.Count != 10_000 {
		t.Errorf("count %d", p.Count)
	}
	within("p50", p.P50ms, 5)
	within("p90", p.P90ms, 9)
	within("p99", p.P99ms, 9.9)
	within("p99.9", p.P999ms, 9.99)
	within("max", p.MaxMs, 10)
	within("mean", p.MeanMs, 5.0005)
}

// Values out of the histogram's range are clamped, not dropped: a stall
// longer than the range still counts.
func TestRecorderClamps(t *testing.T) {
	r := NewRecorder(1)
	r.Record(0, -time.Second)
	r.Record(0, 0)
	r.Record(0, 2*time.Hour)
	h := r.Merged()
	if h.TotalCount() != 3 {
		t.Fatalf("count %d, want 3", h.TotalCount())
	}
	if got := PercentilesOf(h).MaxMs; got < float64(time.Hour/time.Millisecond) {
		t.Errorf("max %v ms, want an hour", got)
	}
}

func TestRecorderConcurrent(t *testing.T) {
	r := NewRecorder(3)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				r.Record(g, time.Millisecond)
			}
		}()
	}
	wg.Wait()
	if n := r.Merged().TotalCount(); n != 8000 {
		t.Errorf("count %d, want 8000", n)
	}
}

func TestPercentilesOfEmpty(t *testing.T) {
	if p := PercentilesOf(nil); p != (Percentiles{}) {
		t.Errorf("%+v", p)
	}
	if p := PercentilesOf(newHist()); p != (Percentiles{}) {
		t.Errorf("%+v", p)
	}
}

func sampleResult(scenario string) *Result {
	r := &Result{Scenario: scenario, Addr: "127.0.0.1:7100", Connections: 100, DurationS: 10, Size: 1024,
		Loop: "closed", Msgs: 1_000_000, MsgsPerSec: 100_000, Errors: 0}
	rec := NewRecorder(1)
	for v := 1; v <= 1000; v++ {
		rec.Record(0, time.Duration(v)*10*time.Microsecond)
	}
	r.addSeries(scenario, rec.Merged(), 10*time.Second)
	r.addSeries("connect", rec.Merged(), 0)
	return r
}

// The JSON object carries the fields the issue names, under those names.
func TestResultJSON(t *testing.T) {
	r := sampleResult("echo")
	var b bytes.Buffer
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(b.Bytes(), []byte("}\n")) || bytes.Count(b.Bytes(), []byte("\n")) != 1 {
		t.Errorf("want one object on one line: %q", b.String())
	}
	var m map[string]any
	if err := json.Unmarshal(b.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"scenario", "connections", "msgs_per_sec", "p50_ms", "p90_ms", "p99_ms", "p999_ms",
		"max_ms", "errors", "reconnects", "series"} {
		if _, ok := m[k]; !ok {
			t.Errorf("no %q in %s", k, b.String())
		}
	}
	if m["scenario"] != "echo" || m["connections"] != 100.0 || m["errors"] != 0.0 {
		t.Errorf("scenario %v, connections %v, errors %v", m["scenario"], m["connections"], m["errors"])
	}
	if math.Abs(m["p50_ms"].(float64)-5) > 0.01 || math.Abs(m["max_ms"].(float64)-10) > 0.01 {
		t.Errorf("p50 %v, max %v", m["p50_ms"], m["max_ms"])
	}
	for _, k := range []string{"bytes_per_conn", "lost", "resumed", "dropped"} {
		if _, ok := m[k]; ok {
			t.Errorf("%q present in an echo result", k)
		}
	}
	// Idle adds bytes_per_conn; a zero loss is reported, not omitted.
	r = sampleResult("idle")
	r.BytesPerConn = 1234.5
	zero := int64(0)
	r.Dropped = &zero
	b.Reset()
	_ = r.WriteJSON(&b)
	m = nil
	_ = json.Unmarshal(b.Bytes(), &m)
	if m["bytes_per_conn"] != 1234.5 || m["dropped"] != 0.0 {
		t.Errorf("bytes_per_conn %v, dropped %v", m["bytes_per_conn"], m["dropped"])
	}
}

func TestResultTable(t *testing.T) {
	r := sampleResult("echo")
	r.note("a note")
	var b bytes.Buffer
	if err := r.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ferry-bench echo → 127.0.0.1:7100: 100 connections", "1,000,000", "100,000 msgs/s",
		"p99.9", "note: a note"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("no %q in\n%s", want, b.String())
		}
	}
}

func TestWriteSVG(t *testing.T) {
	r := sampleResult("lanes")
	r.Series[0].Name = `lane <1> & "2"` // escaped, not markup
	var b bytes.Buffer
	if err := r.WriteSVG(&b); err != nil {
		t.Fatal(err)
	}
	checkSVG(t, b.Bytes())
	s := b.String()
	// The connect series is not drawn next to message latencies.
	if n := strings.Count(s, "<polyline"); n != 1 {
		t.Errorf("%d curves, want 1", n)
	}
	for _, want := range []string{"99.9%", "Latency (ms)", "Percentile", "lane &lt;1&gt; &amp; &#34;2&#34;"} {
		if !strings.Contains(s, want) {
			t.Errorf("no %q in the SVG", want)
		}
	}
	// An empty result still draws axes.
	b.Reset()
	if err := (&Result{Scenario: "echo"}).WriteSVG(&b); err != nil {
		t.Fatal(err)
	}
	checkSVG(t, b.Bytes())
}

// checkSVG parses b as XML and checks that it is an SVG document.
func checkSVG(t *testing.T, b []byte) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(b))
	root := ""
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && root == "" {
			root = se.Name.Local
		}
	}
	if root != "svg" {
		t.Errorf("root element %q", root)
	}
}

// The percentile curve runs from 0 to log10(count) decades, rises
// monotonically and ends at the maximum.
func TestPercentileCurve(t *testing.T) {
	rec := NewRecorder(1)
	for v := 1; v <= 100_000; v++ {
		rec.Record(0, time.Duration(v)*time.Microsecond)
	}
	h := rec.Merged()
	pts := percentileCurve(h)
	if pts[0][0] != 0 || math.Abs(pts[len(pts)-1][0]-5) > 1e-9 {
		t.Errorf("decades from %v to %v, want 0 to 5", pts[0][0], pts[len(pts)-1][0])
	}
	for i := 1; i < len(pts); i++ {
		if pts[i][1] < pts[i-1][1] || pts[i][0] <= pts[i-1][0] {
			t.Fatalf("not monotonic at %d: %v then %v", i, pts[i-1], pts[i])
		}
	}
	if last := pts[len(pts)-1][1]; last != float64(h.Max())/1e6 {
		t.Errorf("ends at %v, want max %v", last, float64(h.Max())/1e6)
	}
}

func TestPercentileLabel(t *testing.T) {
	for d, want := range []string{"0%", "90%", "99%", "99.9%", "99.99%", "99.999%"} {
		if got := percentileLabel(d); got != want {
			t.Errorf("percentileLabel(%d) = %q, want %q", d, got, want)
		}
	}
}

func TestNiceCeil(t *testing.T) {
	for _, c := range []struct{ in, want float64 }{{0, 1}, {0.3, 0.5}, {1, 1}, {1.2, 2}, {3, 5}, {7, 10}, {12, 20}, {450, 500}} {
		if got := niceCeil(c.in); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("niceCeil(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestFormat(t *testing.T) {
	for _, c := range []struct {
		in   float64
		want string
	}{{0, "0"}, {999, "999"}, {1000, "1,000"}, {1234567.8, "1,234,568"}, {-4321, "-4,321"}} {
		if got := group(c.in); got != c.want {
			t.Errorf("group(%v) = %q, want %q", c.in, got, c.want)
		}
	}
	for _, c := range []struct {
		in   float64
		want string
	}{{0.1234, "0.123"}, {1.234, "1.23"}, {12.34, "12.3"}, {123.4, "123"}} {
		if got := ms(c.in); got != c.want {
			t.Errorf("ms(%v) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestProgressPrinter(t *testing.T) {
	var b bytes.Buffer
	pp := NewProgressPrinter(&b, false)
	pp.Report(Progress{Phase: "run", Elapsed: time.Second, Total: 10 * time.Second, Conns: 5, Target: 5, Msgs: 1234, Rate: 1000})
	pp.Done()
	if got := b.String(); got != "[run 1s/10s] conns 5/5  msgs 1,234  1,000 msgs/s  errors 0  reconnects 0\n" {
		t.Errorf("plain: %q", got)
	}
	b.Reset()
	pp = NewProgressPrinter(&b, true)
	pp.Report(Progress{Phase: "connect", Elapsed: time.Second, Conns: 5, Target: 10})
	pp.Done()
	if got := b.String(); !strings.HasPrefix(got, "\r\x1b[K[connect 1s] conns 5/10") || !strings.HasSuffix(got, "\r\x1b[K") || strings.Contains(got, "\n") {
		t.Errorf("terminal: %q", got)
	}
}
