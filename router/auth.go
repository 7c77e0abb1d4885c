package router

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/ferry-proto/ferry/codec"
	"github.com/ferry-proto/ferry/protocol"
	"github.com/ferry-proto/ferry/router/internal/topic"
)

// Tokens. A token is "ferry1.<claims>.<mac>": the claims as JSON in
// unpadded base64url, then HMAC-SHA256 of "ferry1.<claims>" under the
// server's secret, also unpadded base64url. It goes in HELLO's AuthToken.
//
// Claims name the client and what it may do: publish to topics matching
// the Publish patterns, subscribe to patterns covered by the Subscribe
// patterns, and send direct messages to the clients named in Direct
// (exact ids, "*" for anyone, or a prefix ending in "*").

// Claims are what a token grants.
type Claims struct {
	ClientID  string   `json:"sub"`
	Expires   int64    `json:"exp"` // Unix seconds; 0 never
	Publish   []string `json:"pub,omitempty"`
	Subscribe []string `json:"subs,omitempty"`
	Direct    []string `json:"dm,omitempty"`
}

const tokenPrefix = "ferry1."

// Token errors.
var (
	ErrTokenMalformed = errors.New("router: malformed token")
	ErrTokenSignature = errors.New("router: token signature does not match")
	ErrTokenExpired   = errors.New("router: token expired")
)

// MintToken signs claims with secret.
func MintToken(secret []byte, c Claims) (string, error) {
	if c.ClientID == "" {
		return "", errors.New("router: a token needs a client id")
	}
	for _, p := range append(append([]string(nil), c.Publish...), c.Subscribe...) {
		if err := validPattern([]byte(p)); err != nil {
			return "", err
		}
	}
	body, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	head := tokenPrefix + base64.RawURLEncoding.EncodeToString(body)
	return head + "." + base64.RawURLEncoding.EncodeToString(sign(secret, head)), nil
}

func sign(secret []byte, head string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(head))
	return m.Sum(nil)
}

// VerifyToken checks a token's signature and expiry and returns its claims.
func VerifyToken(secret []byte, token []byte, now time.Time) (Claims, error) {
	var c Claims
	s := string(token)
	if !strings.HasPrefix(s, tokenPrefix) {
		return c, ErrTokenMalformed
	}
	dot := strings.LastIndexByte(s, '.')
	if dot <= len(tokenPrefix) {
		return c, ErrTokenMalformed
	}
	head, mac := s[:dot], s[dot+1:]
	got, err := base64.RawURLEncoding.DecodeString(mac)
	if err != nil {
		return c, ErrTokenMalformed
	}
	if !hmac.Equal(got, sign(secret, head)) {
		return c, ErrTokenSignature
	}
	body, err := base64.RawURLEncoding.DecodeString(head[len(tokenPrefix):])
	if err != nil || json.Unmarshal(body, &c) != nil || c.ClientID == "" {
		return Claims{}, ErrTokenMalformed
	}
	if c.Expires != 0 && now.Unix() >= c.Expires {
		return Claims{}, ErrTokenExpired
	}
	return c, nil
}

// TokenAuth authenticates clients by token (HMAC-SHA256, see MintToken)
// and enforces the token's permissions on publish, subscribe and direct
// messages (FORBIDDEN). A HELLO whose ClientID is set must match the
// token's.
type TokenAuth struct {
	Secret []byte
	// AllowAnonymous also admits clients without a token, with no
	// permissions but request/response.
	AllowAnonymous bool
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Authenticate implements Authenticator.
func (a *TokenAuth) Authenticate(h *codec.Hello) (string, protocol.ErrorCode) {
	id, _, code := a.AuthenticateACL(h)
	return id, code
}

// AuthenticateACL implements ACLAuthenticator.
func (a *TokenAuth) AuthenticateACL(h *codec.Hello) (string, *ACL, protocol.ErrorCode) {
	if len(h.AuthToken) == 0 {
		if a.AllowAnonymous {
			return string(h.ClientID), &ACL{}, protocol.CodeOK
		}
		return "", nil, protocol.CodeAuthFailed
	}
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	c, err := VerifyToken(a.Secret, h.AuthToken, now())
	if err != nil || (len(h.ClientID) > 0 && string(h.ClientID) != c.ClientID) {
		return "", nil, protocol.CodeAuthFailed
	}
	return c.ClientID, &ACL{publish: toBytes(c.Publish), subscribe: toBytes(c.Subscribe), direct: c.Direct}, protocol.CodeOK
}

func toBytes(ss []string) [][]byte {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		out[i] = []byte(s)
	}
	return out
}

// ACL is what one connection may do. A nil *ACL allows everything
// (anonymous mode without tokens).
type ACL struct {
	publish, subscribe [][]byte
	direct             []string
}

// CanPublish reports whether topic matches one of the publish patterns.
func (a *ACL) CanPublish(topicName []byte) bool {
	if a == nil {
		return true
	}
	for _, p := range a.publish {
		if matchPattern(p, topicName) {
			return true
		}
	}
	return false
}

// CanSubscribe reports whether every topic pattern can match is covered by
// one of the subscribe patterns.
func (a *ACL) CanSubscribe(pattern []byte) bool {
	if a == nil {
		return true
	}
	for _, p := range a.subscribe {
		if covers(p, pattern) {
			return true
		}
	}
	return false
}

// CanDirect reports whether the client may send to peer.
func (a *ACL) CanDirect(peer []byte) bool {
	if a == nil {
		return true
	}
	for _, d := range a.direct {
		switch {
		case d == "*":
			return true
		case strings.HasSuffix(d, "*") && strings.HasPrefix(string(peer), d[:len(d)-1]):
			return true
		case d == string(peer):
			return true
		}
	}
	return false
}

// matchPattern reports whether topic matches the MQTT pattern (SPEC §7.5).
func matchPattern(pattern, topicName []byte) bool {
	if len(topicName) > 0 && topicName[0] == '$' && len(pattern) > 0 && (pattern[0] == '+' || pattern[0] == '#') {
		return false
	}
	p, t := string(pattern), string(topicName)
	for {
		pl, prest, pmore := strings.Cut(p, "/")
		if pl == "#" {
			return true
		}
		tl, trest, tmore := strings.Cut(t, "/")
		if pl != "+" && pl != tl {
			return false
		}
		if !pmore || !tmore {
			// "a/#" also matches "a".
			return pmore == tmore || (pmore && prest == "#")
		}
		p, t = prest, trest
	}
}

// covers reports whether every topic that pattern b matches is matched by
// pattern a.
func covers(a, b []byte) bool {
	if len(a) > 0 && (a[0] == '+' || a[0] == '#') && len(b) > 0 && b[0] == '$' {
		return false // wildcards at the first level never match "$" topics
	}
	pa, pb := string(a), string(b)
	for {
		la, resta, morea := strings.Cut(pa, "/")
		if la == "#" {
			return true
		}
		lb, restb, moreb := strings.Cut(pb, "/")
		switch {
		case lb == "#":
			return false // only a "#" covers a "#"
		case la == "+":
		case la != lb:
			return false
		}
		if !morea || !moreb {
			return morea == moreb || (morea && resta == "#")
		}
		pa, pb = resta, restb
	}
}

func validPattern(p []byte) error { return topic.ValidPattern(p) }

// ACLAuthenticator is an Authenticator that also says what the client may
// do; the router enforces it on publish, subscribe and direct messages.
type ACLAuthenticator interface {
	AuthenticateACL(h *codec.Hello) (clientID string, acl *ACL, code protocol.ErrorCode)
}
