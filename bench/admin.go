package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Metrics are the samples of one scrape of a Prometheus text endpoint, by
// series name with its labels as written ("ferry_drops_total{reason=\"closed\"}").
type Metrics map[string]float64

// Metric names the server exposes that the scenarios read.
const (
	mHeapInuse  = "go_memstats_heap_inuse_bytes"
	mStackInuse = "go_memstats_stack_inuse_bytes"
	mRSS        = "process_resident_memory_bytes"
	mCPU        = "process_cpu_seconds_total"
	mConnsOpen  = "ferry_connections_open"
)

// Admin reads a server's admin endpoint (ferryd's --admin).
type Admin struct {
	Addr string
	hc   http.Client
}

// NewAdmin returns a reader of the admin endpoint at addr (host:port, or a
// URL with http://).
func NewAdmin(addr string) *Admin {
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	return &Admin{Addr: strings.TrimSuffix(addr, "/"),
		hc: http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConns: 1}}}
}

// Close closes the idle HTTP connection kept for the next scrape.
func (a *Admin) Close() { a.hc.CloseIdleConnections() }

// Scrape reads /metrics. With gc, it first asks the server for two garbage
// collections (GET /debug/pprof/heap?gc=1 collects before it profiles; the
// second one frees what the first left in sync.Pools' victim caches), so
// that heap figures count live memory and not garbage; a server without
// pprof is scraped anyway.
func (a *Admin) Scrape(ctx context.Context, gc bool) (Metrics, error) {
	for range 2 {
		if !gc {
			break
		}
		body, err := a.get(ctx, "/debug/pprof/heap?gc=1")
		if err != nil {
			break
		}
		_, _ = io.Copy(io.Discard, body)
		body.Close()
	}
	body, err := a.get(ctx, "/metrics")
	if err != nil {
		return nil, err
	}
	defer body.Close()
	return ParseMetrics(body)
}

func (a *Admin) get(ctx context.Context, path string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.Addr+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("bench: admin: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("bench: admin: GET %s: %s", path, resp.Status)
	}
	return resp.Body, nil
}

// ParseMetrics reads the Prometheus text format: one "name{labels} value
// [timestamp]" per line, comments skipped. Lines it cannot read are
// skipped too.
func ParseMetrics(r io.Reader) (Metrics, error) {
	m := Metrics{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		// The value follows the last space outside the label braces.
		cut := strings.LastIndexByte(line, '}')
		rest := line[max(cut, 0):]
		sp := strings.IndexByte(rest, ' ')
		if sp < 0 {
			continue
		}
		name := strings.TrimSpace(line[:max(cut, 0)+sp])
		fields := strings.Fields(rest[sp:])
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			continue
		}
		m[name] = v
	}
	return m, sc.Err()
}

// memory is the server memory that grows with connections: heap spans and
// goroutine stacks in use.
func (m Metrics) memory() float64 { return m[mHeapInuse] + m[mStackInuse] }
