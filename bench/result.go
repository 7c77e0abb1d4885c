package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Result is what a run measured. Its JSON form is ferry-bench --json: one
// object whose top-level percentiles are those of the first series (the
// scenario's main latency; for idle, the time to connect one connection).
type Result struct {
	Scenario    string  `json:"scenario"`
	Addr        string  `json:"addr"`
	Connections int     `json:"connections"`
	DurationS   float64 `json:"duration_s"`
	Size        int     `json:"size"`
	Loop        string  `json:"loop"`                  // "closed" or "open"
	TargetRate  float64 `json:"target_rate,omitempty"` // open loop: msgs/s asked for
	Lane        int     `json:"lane,omitempty"`
	// echo: requests in flight per connection, and whether bare sockets
	// (--light) sent them instead of the Go client.
	Inflight int  `json:"inflight,omitempty"`
	Light    bool `json:"light,omitempty"`

	// Msgs counts the messages that completed within Duration: responses
	// (echo, lanes), deliveries to a subscriber or peer (pubsub, fanout,
	// direct, reconnect-storm).
	Msgs       int64   `json:"msgs"`
	MsgsPerSec float64 `json:"msgs_per_sec"`
	MBPerSec   float64 `json:"mb_per_sec"` // payload bytes of Msgs, 10^6 per second
	Percentiles
	Errors     int64 `json:"errors"`
	Reconnects int64 `json:"reconnects"`

	// ConnectS is the time it took to open every connection (handshakes
	// included); ConnectsPerSec the rate that makes.
	ConnectS       float64 `json:"connect_s"`
	ConnectsPerSec float64 `json:"connects_per_sec"`
	// Server and client CPU time over the traffic phase (the server's from
	// /proc/PID/stat with --server-pid, else from its
	// process_cpu_seconds_total; absent without either).
	ServerCPUS float64 `json:"server_cpu_s,omitempty"`
	ClientCPUS float64 `json:"client_cpu_s,omitempty"`

	// idle: the server's memory per connection, BytesPerConnFrom says
	// which: "heap+stack" from the admin endpoint (heap in use + stacks in
	// use, after a GC: go_memstats_heap_inuse_bytes +
	// go_memstats_stack_inuse_bytes), or, with --server-pid and no admin
	// endpoint, "rss", the growth of its resident memory (/proc/PID/status
	// VmRSS); the server's resident memory per connection; this process's
	// heap and stacks and goroutines per connection; connections that
	// ended during the hold.
	BytesPerConn            float64 `json:"bytes_per_conn,omitempty"`
	BytesPerConnFrom        string  `json:"bytes_per_conn_from,omitempty"`
	ServerRSSPerConn        float64 `json:"server_rss_per_conn,omitempty"`
	ClientBytesPerConn      float64 `json:"client_bytes_per_conn,omitempty"`
	ClientGoroutinesPerConn float64 `json:"client_goroutines_per_conn,omitempty"`
	Dropped                 *int64  `json:"dropped,omitempty"`

	// pubsub, fanout, direct, reconnect-storm: messages sent, and deliveries
	// that never came (unreliable messages the server dropped, or a
	// reliable one lost), came twice or out of order.
	Published  int64  `json:"published,omitempty"`
	Lost       *int64 `json:"lost,omitempty"`
	Duplicates *int64 `json:"duplicates,omitempty"`
	Reordered  *int64 `json:"reordered,omitempty"`

	// reconnect-storm: clients resumed after the drop, clients that got a
	// new session instead (their unacknowledged messages lost), and the time
	// from the drop until the last one was back.
	Resumed     *int64  `json:"resumed,omitempty"`
	NewSessions *int64  `json:"new_sessions,omitempty"`
	ResumeAllMs float64 `json:"resume_all_ms,omitempty"`

	// Series holds every latency distribution measured, the main one first.
	Series []Series `json:"series"`
	// Notes are warnings about the run (settings adjusted, a measurement
	// that could not be made).
	Notes []string `json:"notes,omitempty"`

	hists []*hdrhistogram.Histogram // parallel to Series, for WriteSVG
}

// Series is one latency distribution of a run.
type Series struct {
	Name   string  `json:"name"`
	PerSec float64 `json:"per_sec"`
	Percentiles
}

// addSeries appends a distribution; the first one added is the main one.
func (r *Result) addSeries(name string, h *hdrhistogram.Histogram, over time.Duration) {
	s := Series{Name: name, Percentiles: PercentilesOf(h)}
	if over > 0 {
		s.PerSec = float64(s.Count) / over.Seconds()
	}
	r.Series = append(r.Series, s)
	r.hists = append(r.hists, h)
	if len(r.Series) == 1 {
		r.Percentiles = s.Percentiles
	}
}

// Histogram returns the distribution of the series named name, or nil.
func (r *Result) Histogram(name string) *hdrhistogram.Histogram {
	for i, s := range r.Series {
		if s.Name == name && i < len(r.hists) {
			return r.hists[i]
		}
	}
	return nil
}

func (r *Result) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// WriteJSON writes the result as one JSON object and a newline.
func (r *Result) WriteJSON(w io.Writer) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// WriteTable writes the result for a person to read.
func (r *Result) WriteTable(w io.Writer) error {
	var b strings.Builder
	loop := "closed loop"
	if r.Loop == "open" {
		loop = "open loop at " + group(r.TargetRate) + " msgs/s"
	}
	dur := time.Duration(r.DurationS * float64(time.Second)).Round(time.Millisecond)
	if r.Scenario == "idle" {
		fmt.Fprintf(&b, "ferry-bench idle → %s: %s connections held %s\n", r.Addr, group(float64(r.Connections)), dur)
	} else {
		light := ""
		if r.Light {
			light = fmt.Sprintf(", bare sockets, %d in flight each", r.Inflight)
		}
		fmt.Fprintf(&b, "ferry-bench %s → %s: %s connections, %s, %d B, %s%s\n",
			r.Scenario, r.Addr, group(float64(r.Connections)), dur, r.Size, loop, light)
	}
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	row := func(k, format string, args ...any) {
		fmt.Fprintf(tw, "  %s\t"+format+"\n", append([]any{k}, args...)...)
	}
	if r.Scenario != "idle" {
		row("messages", "%s\t%s msgs/s\t%.1f MB/s", group(float64(r.Msgs)), group(r.MsgsPerSec), r.MBPerSec)
	}
	if r.Published > 0 {
		row("published", "%s", group(float64(r.Published)))
	}
	row("errors", "%s", group(float64(r.Errors)))
	row("reconnects", "%s", group(float64(r.Reconnects)))
	optional := func(k string, v *int64) {
		if v != nil {
			row(k, "%s", group(float64(*v)))
		}
	}
	optional("lost", r.Lost)
	optional("duplicates", r.Duplicates)
	optional("reordered", r.Reordered)
	optional("resumed", r.Resumed)
	optional("new sessions", r.NewSessions)
	if r.ResumeAllMs > 0 {
		row("all resumed after", "%.1f ms", r.ResumeAllMs)
	}
	row("connect", "%s in %.2f s\t%s conns/s", group(float64(r.Connections)), r.ConnectS, group(r.ConnectsPerSec))
	if r.BytesPerConn != 0 && r.BytesPerConnFrom == "rss" {
		row("server memory", "%s B/conn\t(resident, /proc/PID/status)", group(r.BytesPerConn))
	} else if r.BytesPerConn != 0 {
		row("server memory", "%s B/conn\t(heap+stack in use, after GC)", group(r.BytesPerConn))
	}
	if r.ServerRSSPerConn != 0 && r.BytesPerConnFrom != "rss" {
		row("server RSS", "%s B/conn", group(r.ServerRSSPerConn))
	}
	if r.ClientBytesPerConn != 0 {
		row("client memory", "%s B/conn\t%.1f goroutines/conn", group(r.ClientBytesPerConn), r.ClientGoroutinesPerConn)
	}
	optional("dropped", r.Dropped)
	if r.ServerCPUS > 0 {
		if r.Msgs > 0 {
			row("server CPU", "%.2f s\t%s msgs per server CPU-second", r.ServerCPUS, group(float64(r.Msgs)/r.ServerCPUS))
		} else {
			row("server CPU", "%.2f s", r.ServerCPUS)
		}
	}
	if r.ClientCPUS > 0 {
		row("client CPU", "%.2f s", r.ClientCPUS)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Series) > 0 {
		b.WriteString("\n")
		tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
		// Right-aligned numbers; names padded to the column's width so that
		// they read left-aligned.
		width := len("latency (ms)")
		for _, s := range r.Series {
			width = max(width, len(s.Name))
		}
		fmt.Fprintf(tw, "  %-*s\tcount\tper s\tp50\tp90\tp99\tp99.9\tmax\tmean\t\n", width, "latency (ms)")
		for _, s := range r.Series {
			perSec := "-"
			if s.PerSec > 0 {
				perSec = group(s.PerSec)
			}
			fmt.Fprintf(tw, "  %-*s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", width, s.Name, group(float64(s.Count)), perSec,
				ms(s.P50ms), ms(s.P90ms), ms(s.P99ms), ms(s.P999ms), ms(s.MaxMs), ms(s.MeanMs))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	for _, n := range r.Notes {
		b.WriteString("note: " + n + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// FormatMs formats milliseconds as the result table does (three
// significant digits or more); FormatCount formats a count with thousands
// separators. For tools that print ferry-bench's figures beside others.
func FormatMs(v float64) string { return ms(v) }

// FormatCount: see FormatMs.
func FormatCount(v float64) string { return group(v) }

// ms formats milliseconds with three significant digits or more.
func ms(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case v >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strconv.FormatFloat(v, 'f', 3, 64)
}

// group formats v rounded to an integer with thousands separators:
// 1234567.8 is "1,234,568".
func group(v float64) string {
	neg := v < 0
	s := strconv.FormatFloat(max(v, -v), 'f', 0, 64)
	var b strings.Builder
	if neg && s != "0" {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
