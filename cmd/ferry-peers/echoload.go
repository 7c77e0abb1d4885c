package main

import (
	"context"
	"errors"
	"time"

	"github.com/ferry-proto/ferry/bench"
	"github.com/ferry-proto/ferry/protocol"
)

// echoConfig is one echo-load run: a pipelined FERRY/1 echo load on bare
// sockets, so that the server and not the load generator is what runs out
// of CPU first. It is ferry-bench echo --light (bench/lightecho.go) under
// the flags bench/compare/compare.sh gives it, --depth for --inflight.
type echoConfig struct {
	Addr     string
	Conns    int
	Depth    int // requests in flight per connection
	Size     int // payload bytes, at least 8 (the send time)
	Duration time.Duration
	Lane     protocol.Lane
}

// runEchoLoad runs ferry-bench's light echo with cfg. The result is
// ferry-bench's, named "echo-pipelined" as the comparison's table is.
func runEchoLoad(ctx context.Context, cfg echoConfig) (*bench.Result, error) {
	if cfg.Conns < 1 || cfg.Depth < 1 || cfg.Duration <= 0 {
		return nil, errors.New("echo-load: --conns and --depth must be at least 1, --duration positive")
	}
	res, err := bench.Run(ctx, bench.Config{
		Scenario: "echo", Light: true, Addr: cfg.Addr, Conns: cfg.Conns, Inflight: cfg.Depth,
		Size: cfg.Size, Duration: cfg.Duration, Lane: cfg.Lane,
	})
	if err != nil {
		return nil, err
	}
	res.Scenario = "echo-pipelined"
	return res, nil
}
