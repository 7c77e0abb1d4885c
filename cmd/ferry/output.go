package main

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ferry-proto/ferry/client"
	"github.com/ferry-proto/ferry/protocol"
)

// printer writes messages and results on stdout: a readable line each, or
// with --json one JSON object per line.
type printer struct {
	w      io.Writer
	json   bool
	binary string // hex or base64
}

func newPrinter(e *env, co *common) *printer {
	return &printer{w: e.stdout, json: co.json, binary: co.binary}
}

// failed reports err for res: under --json as res's failure object; the
// caller prints it on stderr either way. It returns err.
func (p *printer) failed(res *resultJSON, err error) error {
	if p.json {
		p.emit(res.fail(err))
	}
	return err
}

// emit writes v as one line of JSON.
func (p *printer) emit(v any) {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		b.Reset()
		fmt.Fprintf(&b, "{\"ok\":false,\"error\":%q}\n", err.Error())
	}
	io.WriteString(p.w, b.String())
}

// msgJSON is an incoming message under --json.
type msgJSON struct {
	Kind     string  `json:"kind"`            // PUBLISH, DIRECT or DATA
	Topic    string  `json:"topic,omitempty"` // PUBLISH
	Peer     string  `json:"peer,omitempty"`  // DIRECT: the sender
	Route    *uint32 `json:"route,omitempty"` // DATA
	Request  bool    `json:"request,omitempty"`
	Lane     uint8   `json:"lane"`
	Reliable bool    `json:"reliable"`
	Bytes    int     `json:"bytes"`
	payloadJSON
}

// payloadJSON is a payload under --json: text as it is, anything else in
// hex or base64 (Encoding says which).
type payloadJSON struct {
	Encoding string `json:"encoding"` // text, hex or base64
	Payload  string `json:"payload"`
}

func (p *printer) payload(b []byte) payloadJSON {
	if isText(b) {
		return payloadJSON{"text", string(b)}
	}
	return payloadJSON{p.binary, p.encode(b)}
}

func (p *printer) encode(b []byte) string {
	if p.binary == "base64" {
		return base64.StdEncoding.EncodeToString(b)
	}
	return hex.EncodeToString(b)
}

// message prints one incoming message.
func (p *printer) message(m *client.Message) {
	if p.json {
		j := msgJSON{Kind: m.Kind.String(), Lane: uint8(m.Lane), Reliable: m.Reliable, Bytes: len(m.Payload),
			payloadJSON: p.payload(m.Payload)}
		switch m.Kind {
		case client.KindPublish:
			j.Topic = m.Topic
		case client.KindDirect:
			j.Peer = m.Peer
		case client.KindData:
			route := m.Route
			j.Route, j.Request = &route, m.IsRequest()
		}
		p.emit(j)
		return
	}
	var head string
	switch m.Kind {
	case client.KindPublish:
		head = m.Topic
	case client.KindDirect:
		head = "direct from " + m.Peer
	case client.KindData:
		kind := "data"
		if m.IsRequest() {
			kind = "request"
		}
		head = fmt.Sprintf("%s to route %d", kind, m.Route)
	}
	io.WriteString(p.w, head+" "+p.describe(m.Lane, m.Payload)+"\n")
}

// describe renders "(lane 2): text", or for binary payloads
// "(lane 2, 5 bytes hex): 0102030405".
func (p *printer) describe(lane protocol.Lane, b []byte) string {
	if isText(b) {
		return fmt.Sprintf("(lane %d): %s", lane, strings.TrimSuffix(string(b), "\n"))
	}
	return fmt.Sprintf("(lane %d, %d bytes %s): %s", lane, len(b), p.binary, p.encode(b))
}

// isText reports whether b reads as text: UTF-8 of graphic characters,
// tabs and line breaks. Anything else is shown in hex or base64.
func isText(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if !unicode.IsGraphic(r) && r != '\n' && r != '\r' && r != '\t' {
			return false
		}
	}
	return true
}

// resultJSON is the outcome of a pub, req or send under --json.
type resultJSON struct {
	OK        bool     `json:"ok"`
	Code      string   `json:"code,omitempty"`  // a failure's protocol error code; send: the receipt's, OK
	Error     string   `json:"error,omitempty"` // what went wrong
	Topic     string   `json:"topic,omitempty"`
	Peer      string   `json:"peer,omitempty"`
	Route     *uint32  `json:"route,omitempty"`
	Lane      uint8    `json:"lane,omitempty"`
	Reliable  *bool    `json:"reliable,omitempty"`
	Published *int     `json:"published,omitempty"` // pub
	Bytes     *int     `json:"bytes,omitempty"`
	RTTMillis *float64 `json:"rtt_ms,omitempty"`
	*payloadJSON
}

func (r *resultJSON) fail(err error) *resultJSON {
	r.OK, r.Code, r.Error = false, codeOf(err), describe(err)
	return r
}

func millis(d time.Duration) *float64 {
	ms := float64(d.Microseconds()) / 1000
	return &ms
}

func ptr[T any](v T) *T { return &v }

// codeOf returns the name of the protocol error code err carries (a RESULT
// or the ERROR that closed the connection), or "".
func codeOf(err error) string {
	var re *client.ResultError
	if errors.As(err, &re) {
		return re.Code.String()
	}
	var se *client.ServerError
	if errors.As(err, &se) {
		return se.Code.String()
	}
	return ""
}

// describe says what went wrong for people, naming the protocol error code
// where there is one: "route 99: NO_SUCH_ROUTE", "connect to ...:
// AUTH_FAILED (server closed the connection with AUTH_FAILED)".
func describe(err error) string {
	msg := err.Error()
	var inner, code string
	var re *client.ResultError
	var se *client.ServerError
	switch {
	case errors.As(err, &re):
		inner, code = re.Error(), re.Code.String()
		if re.Detail != "" {
			code += ": " + re.Detail
		}
	case errors.As(err, &se):
		inner = se.Error()
		code = se.Code.String() + " (" + strings.TrimPrefix(inner, "client: ") + ")"
	}
	if i := strings.Index(msg, inner); inner != "" && i >= 0 {
		// The code in place of the library's wording of it, keeping what
		// the command says around it.
		msg = msg[:i] + code + msg[i+len(inner):]
	}
	return strings.ReplaceAll(msg, "client: ", "")
}
