package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"time"

	"github.com/ferry-proto/ferry/client"
	"github.com/ferry-proto/ferry/codec"
	"github.com/ferry-proto/ferry/protocol"
)

// Each example starts a real ferry server in this process (exampleServer:
// the reactor and the router on a free loopback port, with ferryd's echo on
// route 1) and dials it, as it would dial cmd/ferryd on 127.0.0.1:7100.

func ExampleDial() {
	addr, stop := exampleServer()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, addr,
		client.WithClientID("sensor-7"),
		client.WithHeartbeat(10*time.Second),
		client.WithCompression(true),
		client.WithLogger(slog.Default()),
		client.WithHandler(func(m *client.Message) error {
			fmt.Printf("%s on lane %d: %q\n", m.Kind, m.Lane, m.Payload)
			return nil
		}),
		client.WithStateHandler(func(ev client.Event) {
			if ev.Kind == client.EventNewSession {
				log.Printf("session lost: %d reliable messages failed", ev.Lost)
			}
		}))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Println("connected as", c.ClientID())
	// Output: connected as sensor-7
}

func ExampleClient_SendReliable() {
	addr, stop := exampleServer()
	defer stop()
	c, err := client.Dial(context.Background(), addr)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Returns once the server acknowledged it; survives reconnects.
	err = c.SendReliable(ctx, protocol.LaneNormal, 42, []byte("reading: 21.5"))
	switch {
	case errors.Is(err, client.ErrSessionLost):
		log.Print("the server lost the session before acknowledging it")
	case err != nil:
		log.Print(err)
	default:
		fmt.Println("acknowledged")
	}
	// Output: acknowledged
}

func ExampleClient_SendAsync() {
	addr, stop := exampleServer()
	defer stop()
	c, err := client.Dial(context.Background(), addr)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	for i := range 1000 {
		err := c.SendAsync(protocol.LaneBulk, 7, []byte(fmt.Sprint(i)), func(err error) {
			if err != nil {
				log.Printf("message %d: %v", i, err)
			}
		})
		if errors.Is(err, client.ErrQueueFull) {
			// The pending store is full: wait for acknowledgements.
			if err := c.Flush(context.Background()); err != nil {
				log.Fatal(err)
			}
		}
	}
	// Wait for every acknowledgement before closing.
	if err := c.Flush(context.Background()); err != nil {
		log.Print(err)
	}
	fmt.Println(c.Stats().MessagesSent, "messages sent and acknowledged")
	// Output: 1000 messages sent and acknowledged
}

func ExampleClient_Request() {
	addr, stop := exampleServer()
	defer stop()
	c, err := client.Dial(context.Background(), addr)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	// Route 1 is the server's echo.
	resp, err := c.Request(ctx, protocol.LaneInteractive, 1, []byte("hello"))
	var re *client.ResultError
	switch {
	case errors.As(err, &re) && re.Code == protocol.CodeNoSuchRoute:
		log.Print("no handler for route 1")
	case errors.Is(err, client.ErrDisconnected):
		log.Print("connection lost; the request may have been processed")
	case err != nil:
		log.Print(err)
	default:
		fmt.Printf("%s\n", resp)
	}
	// Output: hello
}

func ExampleClient_Subscribe() {
	addr, stop := exampleServer()
	defer stop()
	c, err := client.Dial(context.Background(), addr)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got := make(chan struct{}, 1)
	err = c.Subscribe(ctx, "game/+/score", func(m *client.Message) error {
		fmt.Printf("%s: %s\n", m.Topic, m.Payload)
		got <- struct{}{}
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	// A publisher gets its own publications when it subscribed to them.
	if err := c.Publish(protocol.LaneNormal, "game/7/score", []byte("3:1"), true); err != nil {
		log.Fatal(err)
	}
	select {
	case <-got:
	case <-ctx.Done():
		log.Fatal(ctx.Err())
	}
	// Output: game/7/score: 3:1
}

func ExampleMessage_Confirm() {
	addr, stop := exampleServer()
	defer stop()
	work := make(chan *client.Message, 100)
	c, err := client.Dial(context.Background(), addr,
		client.WithHandler(func(m *client.Message) error {
			if m.NeedsConfirm() {
				work <- m // confirmed by a worker once processed
				return client.ErrConfirmLater
			}
			return nil
		}))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// The example server answers route 2 with a job for its sender: a
	// reliable message with APP_ACK, redelivered until it is confirmed.
	if err := c.SendReliable(ctx, protocol.LaneNormal, 2, []byte("resize photo-17")); err != nil {
		log.Fatal(err)
	}
	// The worker.
	select {
	case m := <-work:
		v := protocol.ConfirmProcessed
		if len(m.Payload) == 0 {
			v = protocol.ConfirmRejected // the sender redelivers it later
		}
		if err := m.Confirm(v); err != nil {
			log.Print(err)
		}
		fmt.Printf("%s: %s\n", v, m.Payload)
	case <-ctx.Done():
		log.Fatal(ctx.Err())
	}
	// Output: PROCESSED: resize photo-17
}

// The handler runs when a session resumes after the server queued reliable
// messages for the client while it was away, and reports those it dropped.
// Staging that (a connection lost at a known moment, messages queued
// offline, then the resume) takes more than an example should show, so this
// one only connects: its handler is not called.
func ExampleWithGapReportHandler() {
	addr, stop := exampleServer()
	defer stop()
	c, err := client.Dial(context.Background(), addr,
		client.WithClientID("sensor-7"),
		client.WithSessionExpiry(10*time.Minute),
		client.WithGapReportHandler(func(g codec.GapReport) {
			if n := g.Lost(); n > 0 {
				log.Printf("the server dropped %d messages while we were away", n)
			}
		}))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Println("connected as", c.ClientID())
	// Output: connected as sensor-7
}

// A failed request carries the server's code.
func ExampleResultError() {
	var err error = &client.ResultError{Code: protocol.CodeNoSuchClient, Detail: "bob"}
	var re *client.ResultError
	if errors.As(err, &re) {
		fmt.Println(re.Code, re.Detail)
	}
	// Output: NO_SUCH_CLIENT bob
}

// The server's refusal to take a client (SPEC §13.5) comes as a
// *ServerError, also when it closed a client that was running: its calls
// then fail with an error that is both ErrClosed and the ServerError.
func ExampleServerError() {
	err := fmt.Errorf("wrapped: %w", &client.ServerError{Code: protocol.CodeAuthFailed, Reason: "bad token"})
	var se *client.ServerError
	if errors.As(err, &se) {
		fmt.Println(se.Code, se.GoAway)
	}
	// Output: AUTH_FAILED false
}
