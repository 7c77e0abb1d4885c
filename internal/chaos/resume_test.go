package chaos

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-proto/ferry/client"
	"github.com/ferry-proto/ferry/reactor"
)

// TestResumeAfterLostWelcome is the smallest failure TestChaos found: a
// resume whose WELCOME never reaches the client, once or several times in a
// row. The server rotates the session's token when it answers
// (notes/delivery.md: "rotated on every connect (the previous token stops
// working)"), the client only holds the token of the last WELCOME it read,
// so a HELLO after lost WELCOMEs must still resume with it, or the session
// and everything it held is lost (RESUME_FAILED, then a new session). Any
// fault that cuts a connection between the server's WELCOME and the
// client's reading of it does this; here the proxy swallows the server's
// first bytes on a connection and resets it 20 ms later.
func TestResumeAfterLostWelcome(t *testing.T) {
	for _, lost := range []int{1, 2, 3} {
		t.Run(fmt.Sprintf("%d lost", lost), func(t *testing.T) { resumeAfterLostWelcomes(t, lost) })
	}
}

func resumeAfterLostWelcomes(t *testing.T, lost int) {
	ck := NewChecker(1)
	h := &handler{ck: ck, names: map[string]int{clientName(0): 0}, notes: &notes{}, sessions: make([]atomic.Pointer[reactor.Session], 1)}
	srv, err := reactor.New(reactor.Config{Addr: "127.0.0.1:0", Handler: h})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	px, err := NewProxy("127.0.0.1:0", srv.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	dl := NewDialer(1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, px.Addr(), client.WithClientID(clientName(0)),
		client.WithDialer(func(ctx context.Context, addr string) (net.Conn, error) { return dl.Dial(ctx, 0, addr) }),
		client.WithBackoff(50*time.Millisecond, 50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// The next connections: the HELLO goes through, the WELCOME does not.
	must(t, px.Restart([]Toxic{{Name: "r", Type: "reset_peer", Stream: "downstream", Attrs: map[string]int64{"timeout": 20}}}, 0))
	for dl.Dials()[0] < uint64(1+lost) && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(30 * time.Millisecond) // the last one's WELCOME is swallowed too
	// Then one goes through whole.
	before := dl.Dials()
	must(t, px.Restart(nil, 0))
	dl.WaitRedial(ctx, before)
	for c.State() != client.StateConnected && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
	st, ctr := c.Stats(), srv.Counters()
	if got := dl.Dials()[0]; got < uint64(lost+2) {
		t.Fatalf("%d dials, want at least %d", got, lost+2)
	}
	t.Logf("%d dials; client %d resumes, %d new sessions; server %d resumes, %d RESUME_FAILED; server closes %s",
		dl.Dials()[0], st.Resumes, st.NewSessions, ctr.Resumes.Load(), ctr.ResumesFailed.Load(), h.closes())
	if st.NewSessions != 0 || ctr.ResumesFailed.Load() != 0 {
		t.Errorf("the session was lost")
	}
}
