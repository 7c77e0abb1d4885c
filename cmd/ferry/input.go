package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/ferry-proto/ferry/protocol"
)

// maxMessage is the largest message read from stdin: the default max
// message size of FERRY/1 (SPEC §5.4.2); the server may take less, and the
// client library then refuses it (ErrTooLarge).
const maxMessage = protocol.DefaultMaxMessageSize

// source is where the messages of pub and send come from: the MESSAGE
// argument, the whole of stdin (--stdin), or each line of it (--lines).
type source struct {
	arg          *string
	whole, lines bool
}

func sourceFlags(f *flags) *source {
	s := &source{}
	f.BoolVar(&s.whole, "stdin", false, "read the message from standard input, all of it")
	f.BoolVar(&s.lines, "lines", false, "send each line of standard input as a message, as it is read")
	return s
}

// check says whether exactly one source is given.
func (s *source) check() error {
	n := 0
	for _, b := range []bool{s.arg != nil, s.whole, s.lines} {
		if b {
			n++
		}
	}
	switch {
	case n == 0:
		return usagef(`no message: give MESSAGE ("" for an empty one), --stdin or --lines`)
	case n > 1:
		return usagef("give one of MESSAGE, --stdin and --lines")
	}
	return nil
}

// payload returns the one message of an argument or --stdin.
func (s *source) payload(ctx context.Context, r io.Reader) ([]byte, error) {
	if s.arg != nil {
		return []byte(*s.arg), nil
	}
	return readAll(ctx, r)
}

// readAll reads r to its end, unless ctx ends first. Reading a terminal
// cannot be interrupted: on Ctrl-C the reading goroutine is left to the
// process's exit.
func readAll(ctx context.Context, r io.Reader) ([]byte, error) {
	type result struct {
		b   []byte
		err error
	}
	ch := make(chan result, 1)
	go func() {
		b, err := io.ReadAll(io.LimitReader(r, maxMessage+1))
		ch <- result{b, err}
	}()
	select {
	case res := <-ch:
		if res.err != nil {
			return nil, fmt.Errorf("reading standard input: %w", res.err)
		}
		if len(res.b) > maxMessage {
			return nil, fmt.Errorf("standard input holds more than %d bytes", maxMessage)
		}
		return res.b, nil
	case <-ctx.Done():
		return nil, errInterrupted
	}
}

// readLines calls fn with each line of r (without "\n" or "\r\n") as soon
// as it is read, until r ends, fn fails or ctx ends.
func readLines(ctx context.Context, r io.Reader, fn func([]byte) error) error {
	lines := make(chan []byte)
	errc := make(chan error, 1)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 0, 64<<10), maxMessage+1)
		for sc.Scan() {
			line := bytes.Clone(bytes.TrimSuffix(sc.Bytes(), []byte("\r")))
			select {
			case lines <- line:
			case <-stop:
				return
			}
		}
		errc <- sc.Err()
	}()
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				if err := <-errc; err != nil {
					return fmt.Errorf("reading standard input: %w", err)
				}
				return nil
			}
			if err := fn(line); err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
