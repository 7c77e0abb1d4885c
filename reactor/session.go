package reactor

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	"github.com/ferry-proto/ferry/codec"
	"github.com/ferry-proto/ferry/codec/rtt"
	"github.com/ferry-proto/ferry/codec/seqwin"
	"github.com/ferry-proto/ferry/protocol"
	"github.com/ferry-proto/ferry/reactor/internal/offline"
)

// SessionConfig governs sessions: what outlives a connection so that a
// client that reconnects resumes where it was (SPEC §5.4.6, §5.4.7, §12).
type SessionConfig struct {
	// Secret keys the HMAC of resume tokens. Empty: 32 random bytes per
	// server, so tokens do not survive a restart (nor do sessions: the
	// store is in memory).
	Secret []byte
	// DefaultExpiry is granted to a client that asks for 0; MaxExpiry
	// caps what a client may ask for. Defaults 120 s and 1 h. A negative
	// DefaultExpiry turns resumption off (WELCOME carries no SessionID).
	DefaultExpiry, MaxExpiry time.Duration
	// Offline bounds the queue of reliable messages kept for a session
	// while it has no connection: count (default 1,000), bytes of payload
	// (default 1 MiB) and age (default none). The oldest are dropped
	// first; every drop is reported to the client in a GAP_REPORT.
	OfflineMaxCount int
	OfflineMaxBytes int
	OfflineMaxAge   time.Duration
	// MaxInflightBytes bounds the unacknowledged reliable bytes per lane
	// sent to one client (SPEC §12). Default 1 MiB.
	MaxInflightBytes int
	// AckEvery and AckDelay are when this side acknowledges: after every
	// AckEvery-th reliable frame of a lane, or AckDelay after the oldest
	// unacknowledged one. Defaults 2 and 25 ms.
	AckEvery int
	AckDelay time.Duration
	// ConfirmTimeout is how long a reliable message sent with APP_ACK
	// waits for the client's CONFIRM before it counts as failed and is
	// redelivered after a backoff (1, 5, 15, 30, 60 s ±20 %). Default 30 s.
	ConfirmTimeout time.Duration
	// MaxDeliveries is how many times such a message is delivered before
	// it is dead-lettered. Default 5.
	MaxDeliveries int
	// DeadLetter, if set, receives each dead-lettered message (counted in
	// Counters.DeadLettered either way). It runs on an event loop: it must
	// not block, and f is valid only during the call.
	DeadLetter func(s *Session, f *codec.Frame)
	// KeyRetention is how long the idempotency keys a client used are
	// remembered, and KeysPerClient how many at most per client id (the
	// oldest are forgotten first). SPEC §6.5. Defaults 10 minutes and
	// 10,000.
	KeyRetention  time.Duration
	KeysPerClient int
	// Store keeps sessions between connections. Default: a MemoryStore
	// (a restart loses every session).
	Store SessionStore
	// MaxSessions bounds the sessions kept (attached or not). Past it a
	// new connection gets a session that cannot be resumed. Default
	// 2 × Config.MaxConns.
	MaxSessions int
}

func (c *SessionConfig) withDefaults(maxConns int) {
	if len(c.Secret) == 0 {
		c.Secret = make([]byte, 32)
		_, _ = rand.Read(c.Secret)
	}
	if c.DefaultExpiry == 0 {
		c.DefaultExpiry = time.Duration(protocol.DefaultSessionExpirySec) * time.Second
	}
	if c.MaxExpiry == 0 {
		c.MaxExpiry = time.Hour
	}
	if c.OfflineMaxCount <= 0 {
		c.OfflineMaxCount = offline.DefaultMaxCount
	}
	if c.OfflineMaxBytes <= 0 {
		c.OfflineMaxBytes = offline.DefaultMaxBytes
	}
	if c.MaxInflightBytes <= 0 {
		c.MaxInflightBytes = 1 << 20
	}
	if c.AckEvery <= 0 {
		c.AckEvery = 2
	}
	if c.AckDelay <= 0 {
		c.AckDelay = 25 * time.Millisecond
	}
	if c.ConfirmTimeout <= 0 {
		c.ConfirmTimeout = defaultConfirmTimeout
	}
	if c.MaxDeliveries <= 0 {
		c.MaxDeliveries = rtt.DefaultMaxDeliveries
	}
	if c.KeyRetention <= 0 {
		c.KeyRetention = protocol.DefaultKeyRetentionSec * time.Second
	}
	if c.KeysPerClient <= 0 {
		c.KeysPerClient = protocol.DefaultKeysPerClient
	}
	if c.MaxSessions <= 0 {
		c.MaxSessions = 2 * maxConns
	}
}

// Session is what a client's reliable traffic belongs to: sequence
// numbers, unacknowledged messages, partial reliable messages and, while
// no connection is attached, an offline queue. It outlives connections
// for its granted expiry.
//
// While a connection is attached, the delivery state belongs to that
// connection's event loop; between connections it is guarded by mu. Send,
// ID, ClientID and Attached are safe from any goroutine.
type Session struct {
	srv      *Server
	id       string
	clientID string
	expiry   time.Duration // granted; 0: not resumable

	mu     sync.Mutex
	conn   *Conn // attached connection, nil between connections
	waiter *Conn // a connection resuming this session while conn still closes
	gen    uint64
	// prevValid: the token of generation gen-1 still resumes, because the
	// connection given gen's token has received nothing yet (its WELCOME
	// may have been lost with it).
	prevValid bool
	detachAt  int64 // server clock, when conn detached
	gone      bool  // expired, or discarded
	offline   *offline.Queue
	parked    [protocol.NumLanes - 1][]outItem // unsent reliable items of the last connection
	gapQueued bool                             // something went through the offline path since the last report
	// waitReceived is the HELLO's Received1..3 of the waiting connection;
	// waitPrev says its token was the previous generation's (see
	// finishResume).
	waitReceived [protocol.NumLanes - 1]uint64
	waitPrev     bool

	d *delivery // nil until the first reliable frame either way
}

// delivery is the reliable state of a session (SPEC §12), allocated on the
// first reliable frame so that sessions that never use it stay small.
type delivery struct {
	ready bool // limits set for the attached connection
	lanes [protocol.NumLanes - 1]laneDelivery
	// reasm holds the partial messages of the session: reliable ones
	// survive a reconnect (their fragments were acknowledged).
	reasm   *codec.Reassembler
	relPart [protocol.NumLanes - 1]bool // the partial message of a lane is reliable
	probe   rtt.Prober
	// pingOpaque is the Opaque of the last PING sent, for RTT samples.
	pingOpaque uint64
	// confirms are the APP_ACK messages waiting for a CONFIRM or a
	// redelivery, in the order they were sent.
	confirms confirmSet
}

type laneDelivery struct {
	tx seqwin.Sender
	rx seqwin.Receiver
	// unacked holds the encoded frames of the Seqs in flight, oldest
	// first: unacked[i] has Seq tx.Acked()+1+i.
	unacked []retained
}

// retained is one sent, unacknowledged reliable frame, kept for a replay.
type retained struct {
	buf     *codec.Buffer
	expires int64 // 0: no expiry
}

func (s *Session) ensureDelivery() *delivery {
	if s.d == nil {
		s.d = &delivery{}
	}
	return s.d
}

// ID is the session id (empty for a session that cannot be resumed).
func (s *Session) ID() string { return s.id }

// ClientID is the client the session belongs to.
func (s *Session) ClientID() string { return s.clientID }

// Attached reports whether a connection is attached now.
func (s *Session) Attached() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conn != nil
}

// Gap is the offline-queue report not yet sent to the client.
func (s *Session) Gap() codec.GapReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.offline == nil {
		return codec.GapReport{}
	}
	return s.offline.Gap()
}

// ErrSessionGone is returned by Session.Send once the session expired or
// was discarded.
var ErrSessionGone = errors.New("reactor: session expired")

// Send queues f for the session's client: on its connection when one is
// attached, else in the offline queue, where it waits for a resume
// (bounded; the oldest are dropped and reported in a GAP_REPORT). Only
// reliable messages wait offline: an unreliable one sent while detached is
// dropped and counted (ErrClosed). Safe from any goroutine; f's slices are
// copied.
func (s *Session) Send(f *codec.Frame) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gone {
		s.srv.counters.Drops[DropSessionExpired].Add(1)
		return ErrSessionGone
	}
	if c := s.conn; c != nil {
		// The session lock is held, so the connection cannot park its
		// queue between the check and the push: a message is either
		// queued before it parks (and parked with it) or refused here.
		if err := c.Send(f); !errors.Is(err, ErrClosed) {
			return err
		}
	}
	if !f.Flags.Has(protocol.FlagReliable) || !f.Type.IsMessage() {
		s.srv.counters.Drops[DropClosed].Add(1)
		return ErrClosed
	}
	return s.pushOffline(f)
}

// pushOffline encodes f (Seq left 0: it is numbered when sent) into the
// offline queue. Call with mu held.
func (s *Session) pushOffline(f *codec.Frame) error {
	if f.Flags.Has(protocol.FlagFragment) {
		return ErrNotSendable
	}
	g := *f
	g.Flags &^= protocol.FlagCompressed
	g.Seq = 0
	now := s.srv.now()
	var expires int64
	if g.Flags.Has(protocol.FlagExpiry) {
		expires = now + int64(g.TTL)*int64(time.Millisecond)
	}
	if s.offline == nil {
		cfg := &s.srv.cfg.Sessions
		s.offline = offline.New(offline.Limits{MaxCount: cfg.OfflineMaxCount, MaxBytes: cfg.OfflineMaxBytes, MaxAge: cfg.OfflineMaxAge})
	}
	before := s.offline.Gap().Lost()
	s.offline.Push(offline.Message{Lane: uint8(g.Lane), Payload: g.Append(nil), Expires: expires, Enqueued: now}, now)
	if lost := s.offline.Gap().Lost() - before; lost > 0 {
		s.srv.counters.Drops[DropOfflineFull].Add(lost)
	}
	s.gapQueued = true
	return nil
}

// SessionStore keeps the sessions that hold state, attached or waiting
// for a resume, indexed by SessionID and by client id. The server calls it
// with its own session lock held, never concurrently, so an
// implementation needs no lock of its own; each call must be quick (it
// runs on event loops). Sessions are live objects (pooled buffers,
// sequence state): a store decides where they are kept and how they are
// found, not how they are encoded. The default, MemoryStore, keeps them in
// this process: a restart loses them all (SPEC §12.11).
type SessionStore interface {
	// Get returns the session with id, or nil.
	Get(id string) *Session
	// ByClient returns the session of client id, or nil.
	ByClient(clientID string) *Session
	// Put adds s under its id (unless empty) and its client id, replacing
	// what was there.
	Put(s *Session)
	// Delete removes s from both indexes, if it is what they hold.
	Delete(s *Session)
	// Range calls fn for each session held by id until fn returns false.
	Range(fn func(*Session) bool)
	// Len is the number of sessions held by id.
	Len() int
}

// MemoryStore is the in-memory SessionStore, ferryd's embedded default.
type MemoryStore struct {
	byID     map[string]*Session
	byClient map[string]*Session
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{byID: make(map[string]*Session), byClient: make(map[string]*Session)}
}

func (m *MemoryStore) Get(id string) *Session            { return m.byID[id] }
func (m *MemoryStore) ByClient(clientID string) *Session { return m.byClient[clientID] }
func (m *MemoryStore) Len() int                          { return len(m.byID) }

func (m *MemoryStore) Put(s *Session) {
	if s.id != "" {
		m.byID[s.id] = s
	}
	m.byClient[s.clientID] = s
}

func (m *MemoryStore) Delete(s *Session) {
	if s.id != "" && m.byID[s.id] == s {
		delete(m.byID, s.id)
	}
	if m.byClient[s.clientID] == s {
		delete(m.byClient, s.clientID)
	}
}

func (m *MemoryStore) Range(fn func(*Session) bool) {
	for _, s := range m.byID {
		if !fn(s) {
			return
		}
	}
}

// sessionStore is the server's side of its SessionStore: the lock every
// call is made under, the connections waiting for a session, and the
// per-process nonce of SessionIDs.
//
// A connection's session is materialized (a Session allocated and kept in
// the store) only when it has reliable state or when its connection ends;
// an idle connection costs nothing for its session. Its SessionID is
// derived from the connection id, so a resume can find a session that is
// still only a connection (see Server.sessionID).
type sessionStore struct {
	mu    sync.Mutex
	store SessionStore
	// waiters are connections resuming a session whose connection has
	// not let go yet, by SessionID (rare: a takeover).
	waiters map[string]resumeWaiter
	boot    [16]byte // random per process: ids never repeat across restarts
}

func (st *sessionStore) init(store SessionStore) {
	if store == nil {
		store = NewMemoryStore()
	}
	st.store = store
	st.waiters = make(map[string]resumeWaiter)
	_, _ = rand.Read(st.boot[:])
}

// resumeWaiter is a connection waiting for a session's first connection
// to let go, with its HELLO's Received1..3.
type resumeWaiter struct {
	c        *Conn
	received [protocol.NumLanes - 1]uint64
}

// sessionID is the SessionID offered to connection connID: the id and a
// MAC of it under the server's secret and boot nonce, in hex (32
// characters). It names the connection until the session is materialized,
// and the session after.
func (s *Server) sessionID(connID uint64) string {
	var raw [16]byte
	binary.BigEndian.PutUint64(raw[:8], connID)
	copy(raw[8:], s.sessionMAC(connID))
	return hex.EncodeToString(raw[:])
}

func (s *Server) sessionMAC(connID uint64) []byte {
	m := hmac.New(sha256.New, s.cfg.Sessions.Secret)
	m.Write(s.sessions.boot[:])
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], connID)
	m.Write(b[:])
	return m.Sum(nil)[:8]
}

// parseSessionID returns the connection id a SessionID of ours names.
func (s *Server) parseSessionID(id []byte) (uint64, bool) {
	var raw [16]byte
	if len(id) != 32 {
		return 0, false
	}
	if _, err := hex.Decode(raw[:], id); err != nil {
		return 0, false
	}
	connID := binary.BigEndian.Uint64(raw[:8])
	return connID, hmac.Equal(raw[8:], s.sessionMAC(connID))
}

// SessionByClient returns the materialized session of client id, attached
// or waiting for a resume, or nil (a connected client whose session holds
// nothing yet is reached through its connection). Safe from any goroutine.
func (s *Server) SessionByClient(id string) *Session {
	st := &s.sessions
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.store.ByClient(id)
}

// NumSessions is the number of materialized sessions, attached or not.
func (s *Server) NumSessions() int {
	st := &s.sessions
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.store.Len()
}

// forgetClient discards the session client id had: a HELLO that starts a
// new session for the same client id ends the old one (SPEC §5.4.7).
func (s *Server) forgetClient(clientID string) {
	st := &s.sessions
	st.mu.Lock()
	defer st.mu.Unlock()
	if old := st.store.ByClient(clientID); old != nil {
		s.discardLocked(old)
	}
}

// register keeps a materialized session, replacing an older session of
// the same client id, and makes a connection waiting to resume it the
// session's waiter (the detach wakes it).
func (s *Server) register(sess *Session) {
	st := &s.sessions
	st.mu.Lock()
	defer st.mu.Unlock()
	if old := st.store.ByClient(sess.clientID); old != nil && old != sess {
		s.discardLocked(old)
	}
	if sess.id != "" && st.store.Get(sess.id) == nil && st.store.Len() >= s.cfg.Sessions.MaxSessions {
		// Full: the session serves its connection but is not kept after
		// it (its client is told SessionPresent = 0 when it comes back).
		s.counters.SessionsRefused.Add(1)
		if w, ok := st.waiters[sess.id]; ok {
			// A connection already waits to resume it (beginResumeHeld):
			// it gets a new session, as after an expiry, rather than
			// wait for a detach that will not wake it.
			delete(st.waiters, sess.id)
			w.c.wakeResume(&Session{srv: s, gone: true, waiter: w.c})
		}
		if sess.conn != nil {
			sess.conn.sessRefused = true
		}
		sess.id, sess.expiry = "", 0
	}
	st.store.Put(sess)
	if sess.id == "" {
		return
	}
	if w, ok := st.waiters[sess.id]; ok {
		delete(st.waiters, sess.id)
		sess.mu.Lock()
		sess.waiter, sess.waitReceived = w.c, w.received
		sess.mu.Unlock()
	}
}

// discardLocked forgets a session; what it still held is counted as
// dropped. Call with the store's lock held.
func (s *Server) discardLocked(sess *Session) {
	s.sessions.store.Delete(sess)
	sess.mu.Lock()
	sess.gone = true
	if sess.conn == nil {
		s.counters.Drops[DropSessionExpired].Add(uint64(sess.releaseLocked()))
	}
	sess.mu.Unlock()
}

// releaseLocked frees everything a detached session holds and returns the
// number of messages it held.
func (sess *Session) releaseLocked() int {
	n := 0
	if d := sess.d; d != nil {
		for i := range d.lanes {
			for _, r := range d.lanes[i].unacked {
				codec.PutBuffer(r.buf)
				n++
			}
			d.lanes[i].unacked = nil
		}
		n += d.confirms.release()
	}
	for i := range sess.parked {
		for j := range sess.parked[i] {
			sess.parked[i][j].release()
			n++
		}
		sess.parked[i] = nil
	}
	if sess.offline != nil {
		n += sess.offline.Len()
		sess.offline = nil
	}
	return n
}

// resumeToken is the token for the session's current generation:
// base64url(HMAC-SHA256(secret, id || gen)).
func (s *Server) resumeToken(id string, gen uint64) []byte {
	m := hmac.New(sha256.New, s.cfg.Sessions.Secret)
	m.Write([]byte(id))
	var g [8]byte
	binary.BigEndian.PutUint64(g[:], gen)
	m.Write(g[:])
	sum := m.Sum(nil)
	out := make([]byte, base64.RawURLEncoding.EncodedLen(len(sum)))
	base64.RawURLEncoding.Encode(out, sum)
	return out
}

// resumeOutcome is what a HELLO's SessionID and ResumeToken lead to.
type resumeOutcome uint8

const (
	resumeNew    resumeOutcome = iota // unknown or expired: a new session
	resumeOK                          // resumed (sess, or the session of conn)
	resumePrev                        // resumed with the previous, unproven token
	resumeFailed                      // the token is not valid: RESUME_FAILED
)

// lookupResume finds the session a HELLO names and checks its token in
// constant time. A token of an earlier generation fails: tokens rotate on
// every connect, so a replayed one is refused. It returns the session when
// it is materialized, else the connection that still holds it.
func (s *Server) lookupResume(id, token []byte, clientID string) (*Session, *Conn, resumeOutcome) {
	st := &s.sessions
	st.mu.Lock()
	sess := st.store.Get(string(id))
	st.mu.Unlock()
	if sess == nil {
		connID, ok := s.parseSessionID(id)
		if !ok {
			return nil, nil, resumeNew
		}
		holder := s.lookup(connID)
		if holder == nil {
			// A connection registers its session before the server
			// forgets it: look again.
			st.mu.Lock()
			sess = st.store.Get(string(id))
			st.mu.Unlock()
			if sess == nil {
				return nil, nil, resumeNew
			}
		} else {
			// Never materialized: still on its first connection.
			if !hmac.Equal(s.resumeToken(string(id), 1), token) || (clientID != "" && clientID != holder.ClientID()) {
				s.counters.ResumesFailed.Add(1)
				return nil, nil, resumeFailed
			}
			return nil, holder, resumeOK
		}
	}
	sess.mu.Lock()
	gen, gone, prev := sess.gen, sess.gone, sess.prevValid
	sess.mu.Unlock()
	if gone {
		return nil, nil, resumeNew
	}
	// SPEC §5.4.7: the current token, or the one before it while the
	// connection that was given the current one has not yet shown (by
	// sending anything) that its WELCOME arrived.
	current := hmac.Equal(s.resumeToken(sess.id, gen), token)
	ok := current || prev && gen > 1 && hmac.Equal(s.resumeToken(sess.id, gen-1), token)
	if !ok || (clientID != "" && clientID != sess.clientID) {
		s.counters.ResumesFailed.Add(1)
		return nil, nil, resumeFailed
	}
	if !current {
		return sess, nil, resumePrev
	}
	return sess, nil, resumeOK
}

// expireSessions discards detached sessions whose expiry has passed. The
// server's janitor calls it every second.
func (s *Server) expireSessions() {
	now := s.now()
	st := &s.sessions
	st.mu.Lock()
	defer st.mu.Unlock()
	var due []*Session
	st.store.Range(func(sess *Session) bool {
		sess.mu.Lock()
		if sess.conn == nil && sess.waiter == nil && !sess.gone && now-sess.detachAt >= int64(sess.expiry) {
			due = append(due, sess)
		}
		sess.mu.Unlock()
		return true
	})
	for _, sess := range due {
		s.counters.SessionsExpired.Add(1)
		s.discardLocked(sess)
	}
}

// janitor expires sessions until the server stops.
func (s *Server) janitor() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.stopped:
			return
		case <-t.C:
			s.expireSessions()
			s.keys.sweep(s.now())
		}
	}
}

// Server is the server the connection belongs to. Safe from any goroutine.
func (c *Conn) Server() *Server { return c.srv }

// Session is the session the connection is attached to. It is allocated
// on first use (a connection that never uses one costs nothing for it), so
// call it only when needed. Call it on the loop, from OnOpen on (in a
// handler callback); the Session itself is safe from any goroutine.
func (c *Conn) Session() *Session {
	if c.state == stateHandshake || c.state == stateClosed && c.sess == nil {
		return c.sess
	}
	return c.session()
}

// Resumed reports whether the handshake resumed an earlier session. Call
// it on the loop.
func (c *Conn) Resumed() bool { return c.resumed }
