package router

import (
	"testing"
	"time"

	"github.com/ferry-proto/ferry/codec"
	"github.com/ferry-proto/ferry/internal/wiretest"
	"github.com/ferry-proto/ferry/protocol"
)

var secret = []byte("test secret, 32 bytes or more...")

func TestTokenRoundTripAndRejections(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	tok, err := MintToken(secret, Claims{ClientID: "p1", Expires: now.Unix() + 60, Publish: []string{"game/#"}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := VerifyToken(secret, []byte(tok), now)
	if err != nil || c.ClientID != "p1" || len(c.Publish) != 1 {
		t.Fatalf("verify: %+v %v", c, err)
	}
	if _, err := VerifyToken(secret, []byte(tok), now.Add(time.Minute)); err != ErrTokenExpired {
		t.Fatalf("expired: %v", err)
	}
	if _, err := VerifyToken([]byte("other secret"), []byte(tok), now); err != ErrTokenSignature {
		t.Fatalf("wrong secret: %v", err)
	}
	forged := []byte(tok)
	forged[10] ^= 1 // a claim changed, the signature not
	if _, err := VerifyToken(secret, forged, now); err != ErrTokenSignature && err != ErrTokenMalformed {
		t.Fatalf("forged: %v", err)
	}
	for _, bad := range []string{"", "ferry1.", "ferry1.x", "jwt.a.b", "ferry1.!!.!!"} {
		if _, err := VerifyToken(secret, []byte(bad), now); err == nil {
			t.Fatalf("%q accepted", bad)
		}
	}
	if _, err := MintToken(secret, Claims{ClientID: "x", Subscribe: []string{"a/#/b"}}); err == nil {
		t.Fatal("minted a token with an invalid pattern")
	}
}

func TestACLPatterns(t *testing.T) {
	pub := []struct {
		pattern, topic string
		want           bool
	}{
		{"game/#", "game/7/pos", true}, {"game/#", "game", true}, {"game/+/pos", "game/7/pos", true},
		{"game/+/pos", "game/7/vel", false}, {"game/+", "game/7/pos", false}, {"#", "$SYS/x", false},
		{"a/b", "a/b", true}, {"a/b", "a/b/c", false}, {"+/+", "a/b", true}, {"+", "", true},
	}
	for _, tt := range pub {
		if got := matchPattern([]byte(tt.pattern), []byte(tt.topic)); got != tt.want {
			t.Errorf("matchPattern(%q, %q) = %v", tt.pattern, tt.topic, got)
		}
	}
	cov := []struct {
		allowed, requested string
		want               bool
	}{
		{"game/#", "game/+/pos", true}, {"game/#", "game/#", true}, {"game/#", "game", true},
		{"game/+/pos", "game/7/pos", true}, {"game/+/pos", "game/+/pos", true}, {"game/7/pos", "game/+/pos", false},
		{"game/+", "game/#", false}, {"#", "anything/#", true}, {"#", "$SYS/#", false}, {"a/+", "a/+/b", false},
	}
	for _, tt := range cov {
		if got := covers([]byte(tt.allowed), []byte(tt.requested)); got != tt.want {
			t.Errorf("covers(%q, %q) = %v", tt.allowed, tt.requested, got)
		}
	}
	acl := &ACL{direct: []string{"friend", "team-*"}}
	for peer, want := range map[string]bool{"friend": true, "team-red": true, "enemy": false} {
		if acl.CanDirect([]byte(peer)) != want {
			t.Errorf("CanDirect(%q) != %v", peer, want)
		}
	}
}

func loginToken(t *testing.T, addr, token string) *wiretest.Client {
	t.Helper()
	c := wiretest.Dial(t, addr)
	c.Hello(codec.Hello{AuthToken: []byte(token)})
	return c
}

// SPEC §13: a bad token is AUTH_FAILED and a close; what a token does not
// grant is FORBIDDEN, one request at a time.
func TestTokenAuthEndToEnd(t *testing.T) {
	srv, _ := start(t, Options{Auth: &TokenAuth{Secret: secret}})
	for name, tok := range map[string]string{"none": "", "forged": "ferry1.eyJzdWIiOiJ4In0.AAAA"} {
		c := wiretest.Dial(t, srv.Addr())
		h := codec.Hello{Version: 1, AuthToken: []byte(tok)}
		c.Write(codec.AppendHello(nil, &h))
		if code := c.ExpectClose(5 * time.Second); code != protocol.CodeAuthFailed {
			t.Fatalf("%s token: closed with %s", name, code)
		}
	}
	tokA, _ := MintToken(secret, Claims{ClientID: "a", Subscribe: []string{"game/#"}, Direct: []string{"b"}})
	tokB, _ := MintToken(secret, Claims{ClientID: "b", Publish: []string{"game/+/pos"}})
	a := loginToken(t, srv.Addr(), tokA)
	b := loginToken(t, srv.Addr(), tokB)

	a.Send(codec.Frame{Type: protocol.FrameSubscribe, Lane: 1, Corr: 1, Name: []byte("game/+/pos")})
	if code := expectResult(t, a, 1); code != protocol.CodeOK {
		t.Fatalf("allowed subscribe: %s", code)
	}
	a.Send(codec.Frame{Type: protocol.FrameSubscribe, Lane: 1, Corr: 2, Name: []byte("chat/#")})
	if code := expectResult(t, a, 2); code != protocol.CodeForbidden {
		t.Fatalf("denied subscribe: %s", code)
	}
	b.Send(codec.Frame{Type: protocol.FramePublish, Lane: 1, Corr: 3, Name: []byte("game/1/pos"), Payload: []byte("ok")})
	if code := expectResult(t, b, 3); code != protocol.CodeOK {
		t.Fatalf("allowed publish: %s", code)
	}
	if f := a.Next(5 * time.Second); string(f.Payload) != "ok" {
		t.Fatalf("a got %+v", f)
	}
	b.Send(codec.Frame{Type: protocol.FramePublish, Lane: 1, Corr: 4, Name: []byte("game/1/vel"), Payload: []byte("no")})
	if code := expectResult(t, b, 4); code != protocol.CodeForbidden {
		t.Fatalf("denied publish: %s", code)
	}
	b.Send(codec.Frame{Type: protocol.FrameDirect, Lane: 1, Corr: 5, Name: []byte("a"), Payload: []byte("hi")})
	if code := expectResult(t, b, 5); code != protocol.CodeForbidden {
		t.Fatalf("denied direct: %s", code)
	}
	a.Send(codec.Frame{Type: protocol.FrameDirect, Lane: 1, Corr: 6, Name: []byte("b"), Payload: []byte("hi")})
	if code := expectResult(t, a, 6); code != protocol.CodeOK {
		t.Fatalf("allowed direct: %s", code)
	}
	// The token names the client: a HELLO claiming another id is refused.
	c := wiretest.Dial(t, srv.Addr())
	h := codec.Hello{Version: 1, ClientID: []byte("mallory"), AuthToken: []byte(tokA)}
	c.Write(codec.AppendHello(nil, &h))
	if code := c.ExpectClose(5 * time.Second); code != protocol.CodeAuthFailed {
		t.Fatalf("id mismatch: closed with %s", code)
	}
}
