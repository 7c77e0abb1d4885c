// Command ferryd runs the ferry server: FERRY/1 on a TCP listener, admin
// endpoints (/metrics, /healthz, /readyz, /debug/pprof) on another.
//
//	ferryd                          # 127.0.0.1:7100, admin 127.0.0.1:7101
//	ferryd --listen 0.0.0.0:7100 --allow-anonymous
//
// Every flag can also be set from the environment: --listen is
// FERRY_LISTEN, --admin FERRY_ADMIN, and so on (upper case, dashes as
// underscores, prefix FERRY_). SIGTERM or SIGINT sends GOAWAY to every
// client, drains, and exits 0.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/ferry-proto/ferry/reactor"
	"github.com/ferry-proto/ferry/router"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var err error
	if len(os.Args) > 1 && os.Args[1] == "mint-token" {
		err = mintToken(os.Args[2:], os.Stdout, os.Stderr)
	} else {
		err = run(ctx, os.Args[1:], os.Stderr, nil)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ferryd:", err)
		os.Exit(1)
	}
}

// options are ferryd's settings, from flags and the environment.
type options struct {
	listen, admin, engine, logFormat, logLevel, profile string
	authSecret, authSecretFile                          string
	loops, authFailBurst, authFailSources               int
	authFailIPv4Prefix, authFailIPv6Prefix              int
	allowAnonymous, compression, rateClose, latency     bool
	drain, rateBurst, authFailRefill                    time.Duration
	rateMessages, rateBytes                             float64
	config                                              string
}

func parse(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("ferryd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.listen, "listen", "127.0.0.1:7100", "FERRY/1 listen address")
	fs.StringVar(&o.admin, "admin", "127.0.0.1:7101", "admin HTTP listen address (empty: none)")
	fs.StringVar(&o.engine, "engine", "gnet", "event-loop engine: gnet or netpoll")
	fs.IntVar(&o.loops, "loops", 0, "event loops (0: one per core)")
	fs.StringVar(&o.profile, "heartbeat-profile", "game", "heartbeat limits: game (10 s in [5 s, 30 s]) or iot (60 s in [30 s, 20 min])")
	fs.BoolVar(&o.compression, "compression", true, "offer snappy compression")
	fs.BoolVar(&o.latency, "handler-latency", true, "record each route's handler run time, one request in 8 per connection (ferry_router_handler_seconds on /metrics)")
	fs.BoolVar(&o.allowAnonymous, "allow-anonymous", false, "accept clients without a token (with a secret) or on a non-loopback address (without one)")
	fs.StringVar(&o.authSecret, "auth-secret", "", "HMAC secret for client tokens (prefer --auth-secret-file or FERRY_AUTH_SECRET)")
	fs.StringVar(&o.authSecretFile, "auth-secret-file", "", "file holding the HMAC secret for client tokens")
	fs.DurationVar(&o.drain, "drain", 5*time.Second, "how long shutdown waits for clients to leave after GOAWAY")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.Float64Var(&o.rateMessages, "rate-messages", 0, "messages per second per connection (0: unlimited)")
	fs.Float64Var(&o.rateBytes, "rate-bytes", 0, "payload bytes per second per connection (0: unlimited)")
	fs.DurationVar(&o.rateBurst, "rate-burst", time.Second, "how much of the rate may come at once")
	fs.BoolVar(&o.rateClose, "rate-close", false, "close connections over their rate limit instead of refusing the message")
	fs.IntVar(&o.authFailBurst, "auth-fail-burst", 10, "failed logins a source address may make at once before its HELLOs are refused with RATE_LIMITED (0: no limit)")
	fs.DurationVar(&o.authFailRefill, "auth-fail-refill", 6*time.Second, "time in which a source address gets one failed login back")
	fs.IntVar(&o.authFailSources, "auth-fail-sources", 65536, "source addresses with failed logins tracked at most (the least recently failing are forgotten first)")
	fs.IntVar(&o.authFailIPv4Prefix, "auth-fail-ipv4-prefix", 32, "IPv4 prefix length that makes one source for the failed-login limit")
	fs.IntVar(&o.authFailIPv6Prefix, "auth-fail-ipv6-prefix", 64, "IPv6 prefix length that makes one source for the failed-login limit")
	fs.StringVar(&o.config, "config", "", "TOML file of settings named like the flags (listen = \"...\"); flags and FERRY_* variables win over it")
	// Precedence: defaults, then the config file, then FERRY_* variables,
	// then flags.
	if path := configPath(args); path != "" {
		if err := applyConfig(fs, path); err != nil {
			return o, err
		}
	}
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		name := "FERRY_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(name); ok {
			if err := f.Value.Set(v); err != nil && envErr == nil {
				envErr = fmt.Errorf("%s: %w", name, err)
			}
		}
	})
	if envErr != nil {
		return o, envErr
	}
	return o, fs.Parse(args)
}

// run starts ferryd and blocks until ctx ends, then shuts down. ready, when
// not nil, receives the bound addresses once both listeners are up (tests).
func run(ctx context.Context, args []string, stderr io.Writer, ready chan<- [2]string) error {
	o, err := parse(args, stderr)
	if err != nil {
		return err
	}
	log, err := newLogger(o, stderr)
	if err != nil {
		return err
	}
	secret, err := loadSecret(o)
	if err != nil {
		return err
	}
	var auth router.Authenticator = router.Anonymous{}
	anonymous := true
	if secret != nil {
		auth = &router.TokenAuth{Secret: secret, AllowAnonymous: o.allowAnonymous}
		anonymous = o.allowAnonymous
	} else if !isLoopback(o.listen) && !o.allowAnonymous {
		// Like Redis's protected mode: anonymous clients only where they
		// cannot come from the network, unless the operator says so.
		return fmt.Errorf("refusing to accept anonymous clients on %s: set --auth-secret-file (client tokens: ferryd mint-token), listen on a loopback address, or pass --allow-anonymous", o.listen)
	}
	hb := reactor.GameProfile
	switch o.profile {
	case "game":
	case "iot":
		hb = reactor.IoTProfile
	default:
		return fmt.Errorf("unknown heartbeat profile %q", o.profile)
	}

	authLimit, err := o.authLimit()
	if err != nil {
		return err
	}
	r := router.New(router.Options{Auth: auth, Logger: log, AuthLimit: authLimit, Latency: o.latency, RateLimit: router.RateLimit{
		Messages: o.rateMessages, Bytes: o.rateBytes, Burst: o.rateBurst, Close: o.rateClose}})
	registerBuiltins(r)
	srv, err := reactor.New(reactor.Config{
		Addr: o.listen, Engine: o.engine, Loops: o.loops, Heartbeat: hb,
		Compression: o.compression, DrainTimeout: o.drain, Handler: r, Logger: log,
	})
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return err
	}
	var isReady atomic.Bool
	adminAddr := ""
	var admin *http.Server
	if o.admin != "" {
		ln, err := net.Listen("tcp", o.admin)
		if err != nil {
			_ = srv.Close()
			return err
		}
		adminAddr = ln.Addr().String()
		admin = &http.Server{Handler: router.AdminHandler(srv, r, isReady.Load), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = admin.Serve(ln) }()
	}
	isReady.Store(true)
	log.Info("ferryd ready", "listen", srv.Addr(), "admin", adminAddr, "engine", o.engine,
		"heartbeat_profile", o.profile, "anonymous", anonymous, "tokens", secret != nil,
		"auth_fail_burst", authLimit.Burst, "auth_fail_refill", authLimit.Refill)
	if ready != nil {
		ready <- [2]string{srv.Addr(), adminAddr}
	}

	<-ctx.Done()
	isReady.Store(false)
	log.Info("ferryd shutting down: GOAWAY to every client", "drain", o.drain)
	sctx, cancel := context.WithTimeout(context.Background(), o.drain+10*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	if admin != nil {
		_ = admin.Shutdown(sctx)
	}
	log.Info("ferryd stopped")
	return err
}

// authLimit checks the failed-login settings; a burst of 0 turns the
// limit off.
func (o options) authLimit() (router.AuthLimit, error) {
	l := router.AuthLimit{Burst: o.authFailBurst, Refill: o.authFailRefill, MaxSources: o.authFailSources,
		IPv4Prefix: o.authFailIPv4Prefix, IPv6Prefix: o.authFailIPv6Prefix}
	switch {
	case l.Burst <= 0:
		l.Burst = -1
	case l.Refill <= 0:
		return l, errors.New("--auth-fail-refill must be positive")
	case l.MaxSources <= 0:
		return l, errors.New("--auth-fail-sources must be positive")
	case l.IPv4Prefix < 1 || l.IPv4Prefix > 32:
		return l, fmt.Errorf("--auth-fail-ipv4-prefix %d: want 1 to 32", l.IPv4Prefix)
	case l.IPv6Prefix < 1 || l.IPv6Prefix > 128:
		return l, fmt.Errorf("--auth-fail-ipv6-prefix %d: want 1 to 128", l.IPv6Prefix)
	}
	return l, nil
}

// Built-in routes, so a fresh server can be exercised at once.
const (
	// RouteEcho answers with the request's payload.
	RouteEcho = 1
)

func registerBuiltins(r *router.Router) {
	r.Handle(RouteEcho, "ferry.echo", func(ctx *router.Context) { _ = ctx.Reply(ctx.Payload()) })
}

func newLogger(o options, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return nil, err
	}
	hopts := &slog.HandlerOptions{Level: level}
	switch o.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(w, hopts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, hopts)), nil
	}
	return nil, errors.New("unknown log format " + o.logFormat)
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// loadSecret returns the token secret from --auth-secret-file or
// --auth-secret (FERRY_AUTH_SECRET), or nil when none is set.
func loadSecret(o options) ([]byte, error) {
	var secret []byte
	switch {
	case o.authSecretFile != "":
		b, err := os.ReadFile(o.authSecretFile)
		if err != nil {
			return nil, err
		}
		secret = []byte(strings.TrimSpace(string(b)))
	case o.authSecret != "":
		secret = []byte(o.authSecret)
	default:
		return nil, nil
	}
	if len(secret) < 16 {
		return nil, errors.New("the auth secret must be at least 16 bytes")
	}
	return secret, nil
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// mintToken prints a client token: ferryd mint-token --client-id ID
// [--ttl D] [--publish P]... [--subscribe P]... [--direct ID]...
func mintToken(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ferryd mint-token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	var c router.Claims
	var pub, sub, dm listFlag
	ttl := fs.Duration("ttl", 24*time.Hour, "lifetime of the token (0: no expiry)")
	fs.StringVar(&c.ClientID, "client-id", "", "the client id the token names (required)")
	// The environment is read after parsing, not as the flags' defaults,
	// so that --help never prints the secret.
	fs.StringVar(&o.authSecret, "auth-secret", "", "HMAC secret (or FERRY_AUTH_SECRET)")
	fs.StringVar(&o.authSecretFile, "auth-secret-file", "", "file holding the HMAC secret (or FERRY_AUTH_SECRET_FILE)")
	fs.Var(&pub, "publish", "topic pattern the client may publish to (repeatable)")
	fs.Var(&sub, "subscribe", "topic pattern the client may subscribe within (repeatable)")
	fs.Var(&dm, "direct", `client id the client may message: an id, a prefix ending in "*", or "*" (repeatable)`)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.authSecret == "" {
		o.authSecret = os.Getenv("FERRY_AUTH_SECRET")
	}
	if o.authSecretFile == "" {
		o.authSecretFile = os.Getenv("FERRY_AUTH_SECRET_FILE")
	}
	secret, err := loadSecret(o)
	if err != nil {
		return err
	}
	if secret == nil {
		return errors.New("mint-token needs --auth-secret-file or --auth-secret")
	}
	c.Publish, c.Subscribe, c.Direct = pub, sub, dm
	if *ttl > 0 {
		c.Expires = time.Now().Add(*ttl).Unix()
	}
	tok, err := router.MintToken(secret, c)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, tok)
	return err
}

// configPath finds --config in args (or FERRY_CONFIG) before the flags are
// parsed, so that the file can be applied under them.
func configPath(args []string) string {
	for i, a := range args {
		switch {
		case a == "--config" || a == "-config":
			if i+1 < len(args) {
				return args[i+1]
			}
		case strings.HasPrefix(a, "--config="), strings.HasPrefix(a, "-config="):
			return a[strings.IndexByte(a, '=')+1:]
		}
	}
	return os.Getenv("FERRY_CONFIG")
}

// applyConfig sets flags from a TOML file whose keys are flag names.
func applyConfig(fs *flag.FlagSet, path string) error {
	var m map[string]any
	if _, err := toml.DecodeFile(path, &m); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	for k, v := range m {
		if fs.Lookup(k) == nil || k == "config" {
			return fmt.Errorf("config %s: unknown setting %q", path, k)
		}
		if err := fs.Set(k, fmt.Sprint(v)); err != nil {
			return fmt.Errorf("config %s: %s: %w", path, k, err)
		}
	}
	return nil
}
