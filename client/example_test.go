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

// The examples without an Output comment need a server on 127.0.0.1:7100
// (cmd/ferryd); they are compiled, not run.

func ExampleDial() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, "127.0.0.1:7100",
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
}

func ExampleClient_SendReliable() {
	c, err := client.Dial(context.Background(), "127.0.0.1:7100")
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
	}
}

func ExampleClient_SendAsync() {
	c, err := client.Dial(context.Background(), "127.0.0.1:7100")
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
}

func ExampleClient_Request() {
	c, err := client.Dial(context.Background(), "127.0.0.1:7100")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
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
}

func ExampleClient_Subscribe() {
	c, err := client.Dial(context.Background(), "127.0.0.1:7100")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	err = c.Subscribe(ctx, "game/+/score", func(m *client.Message) error {
		fmt.Printf("%s: %s\n", m.Topic, m.Payload)
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Publish(protocol.LaneNormal, "game/7/score", []byte("3:1"), true); err != nil {
		log.Fatal(err)
	}
}

func ExampleMessage_Confirm() {
	work := make(chan *client.Message, 100)
	c, err := client.Dial(context.Background(), "127.0.0.1:7100",
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
	for m := range work {
		v := protocol.ConfirmProcessed
		if len(m.Payload) == 0 {
			v = protocol.ConfirmRejected // the sender redelivers it later
		}
		if err := m.Confirm(v); err != nil {
			log.Print(err)
		}
	}
}

func ExampleWithGapReportHandler() {
	c, err := client.Dial(context.Background(), "127.0.0.1:7100",
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
