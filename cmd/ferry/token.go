package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/ferry-proto/ferry/router"
)

const tokenAbout = `Mints a client token, as ferryd mint-token does (router.MintToken): HMAC-
SHA256 under the server's secret, naming the client id and what it may do.
Prints the token; pass it with --token or $FERRY_TOKEN.

  FERRY_TOKEN=$(ferry token --client-id bob --subscribe 'game/#' --direct alice)

The secret comes from --auth-secret-file, --auth-secret, $FERRY_AUTH_SECRET_FILE
or $FERRY_AUTH_SECRET, in that order, and must be at least 16 bytes. Without
--publish, --subscribe or --direct the token allows requests only.`

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func cmdToken(_ context.Context, e *env, args []string) error {
	f := newFlags(e, "token", "--client-id ID [flags]", tokenAbout)
	var c router.Claims
	var pub, sub, dm listFlag
	var secret, secretFile string
	var asJSON bool
	f.StringVar(&c.ClientID, "client-id", "", "the client `id` the token names (required)")
	ttl := f.Duration("ttl", 24*time.Hour, "lifetime of the token (0: no expiry)")
	f.Var(&pub, "publish", "topic `pattern` the client may publish to (repeatable)")
	f.Var(&sub, "subscribe", "topic `pattern` the client may subscribe within (repeatable)")
	f.Var(&dm, "direct", `client `+"`id`"+` the client may message: an id, a prefix ending in "*", or "*" (repeatable)`)
	f.StringVar(&secret, "auth-secret", "", "HMAC `secret` (prefer --auth-secret-file or $FERRY_AUTH_SECRET)")
	f.StringVar(&secretFile, "auth-secret-file", "", "`file` holding the HMAC secret")
	f.BoolVar(&asJSON, "json", false, "print a JSON object: token, client_id, expires")
	pos, err := f.parse(nil, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	if c.ClientID == "" {
		return usagef("--client-id is required")
	}
	if *ttl < 0 {
		return usagef("--ttl must not be negative")
	}
	key, err := loadSecret(secret, secretFile)
	if err != nil {
		return err
	}
	c.Publish, c.Subscribe, c.Direct = pub, sub, dm
	if *ttl > 0 {
		c.Expires = time.Now().Add(*ttl).Unix()
	}
	tok, err := router.MintToken(key, c)
	if err != nil {
		return err
	}
	if asJSON {
		p := &printer{w: e.stdout}
		p.emit(struct {
			Token    string `json:"token"`
			ClientID string `json:"client_id"`
			Expires  int64  `json:"expires"` // Unix seconds; 0 never
		}{tok, c.ClientID, c.Expires})
		return nil
	}
	_, err = fmt.Fprintln(e.stdout, tok)
	return err
}

// loadSecret finds the HMAC secret as ferryd does: a file (trimmed) before
// a value, flags before the environment, at least 16 bytes.
func loadSecret(secret, file string) ([]byte, error) {
	if file == "" && secret == "" {
		file, secret = os.Getenv("FERRY_AUTH_SECRET_FILE"), os.Getenv("FERRY_AUTH_SECRET")
	}
	var key []byte
	switch {
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		key = []byte(strings.TrimSpace(string(b)))
	case secret != "":
		key = []byte(secret)
	default:
		return nil, usagef("no secret: give --auth-secret-file or --auth-secret (or $FERRY_AUTH_SECRET)")
	}
	if len(key) < 16 {
		return nil, errors.New("the auth secret must be at least 16 bytes")
	}
	return key, nil
}
