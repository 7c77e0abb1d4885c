package router

import (
	"bytes"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferry-proto/ferry/codec"
	"github.com/ferry-proto/ferry/protocol"
	"github.com/ferry-proto/ferry/reactor"
	"github.com/ferry-proto/ferry/router/internal/topic"
)

// HandlerFunc handles one request. It runs on the connection's loop.
type HandlerFunc func(ctx *Context)

// Middleware wraps a handler (auth, rate limits, metrics, logging). The
// chain is composed once, when a route is registered, so it adds no work
// per message beyond the calls themselves.
type Middleware func(HandlerFunc) HandlerFunc

// Authenticator decides who a client is from its HELLO.
type Authenticator interface {
	// Authenticate returns the client id (empty: the server assigns one)
	// and CodeOK, or a code such as AUTH_FAILED to refuse. It runs on the
	// connection's loop and must not block.
	Authenticate(h *codec.Hello) (clientID string, code protocol.ErrorCode)
}

// Anonymous accepts every client under the id it asks for (or an assigned
// one). Use it only where every client is trusted: ferryd allows it on
// loopback addresses by default and elsewhere only when told to.
type Anonymous struct{}

// Authenticate implements Authenticator.
func (Anonymous) Authenticate(h *codec.Hello) (string, protocol.ErrorCode) {
	return string(h.ClientID), protocol.CodeOK
}

// Options configure a Router. Zero values mean the documented defaults.
type Options struct {
	// Auth authenticates clients. Default Anonymous.
	Auth Authenticator
	// RefuseDuplicates refuses a second login with a client id already
	// connected (DUPLICATE_CLIENT). By default the new connection takes
	// over and the old one is closed with SESSION_TAKEN_OVER.
	RefuseDuplicates bool
	// MaxSubscriptions caps the patterns one connection may hold; past it
	// SUBSCRIBE gets RESULT RATE_LIMITED. Default 1,024.
	MaxSubscriptions int
	// RateLimit bounds each connection's messages and bytes per second.
	// Default: unlimited.
	RateLimit RateLimit
	// Latency records each route's handler run time in a histogram
	// exported on /metrics (ferry_router_handler_seconds{route}), from a
	// sample: a connection's first request and every 8th after it are
	// timed (two clock reads each, ~7 % of a pipelined echo's server CPU
	// when every request was). Quantiles and the mean of the sample stand
	// for all requests; its count is the sample's size.
	Latency bool
	// AuthLimit bounds failed logins per source address (10 at once, then
	// one per 6 s; HELLOs from a source over it are refused with
	// RATE_LIMITED). Default on; see AuthLimit.
	AuthLimit AuthLimit
	// Logger for lifecycle events (never per message). Default: discard.
	Logger *slog.Logger
}

// Router dispatches a server's messages. It implements reactor.Handler.
type Router struct {
	opts   Options
	routes map[uint32]*route
	// low holds the routes numbered below len(low) too: an array index
	// instead of a map lookup per request for the usual small numbers.
	low      [64]*route
	mws      []Middleware
	subs     *topic.Trie[*reactor.Conn]
	registry registry
	fails    *failLimiter // nil: failed logins are not limited
	stats    Stats
	// epoch is what handler run times are read against: time.Since on a
	// time with a monotonic reading reads one clock, time.Now two.
	epoch time.Time
}

type route struct {
	name string
	h    HandlerFunc
	// lat holds the handler's run times when Options.Latency is on.
	lat reactor.Histogram
}

// Stats are the router's running totals (atomics, safe to read any time).
type Stats struct {
	Requests     atomic.Uint64 // DATA requests dispatched to a handler
	NoRoute      atomic.Uint64 // DATA for an unknown route
	Published    atomic.Uint64 // PUBLISH accepted
	Delivered    atomic.Uint64 // publications queued to subscribers
	Undelivered  atomic.Uint64 // a subscriber's queue refused a publication (dropped, slow consumer, closed)
	Directs      atomic.Uint64 // DIRECT forwarded
	NoSuchClient atomic.Uint64 // DIRECT to a client not connected
	Takeovers    atomic.Uint64 // logins that replaced a connection with the same id
	RateLimited  atomic.Uint64 // messages refused over a connection's rate limit
	Forbidden    atomic.Uint64 // requests refused by the client's permissions

	// Failed logins (AuthLimit).
	AuthFailed         atomic.Uint64 // HELLOs the authenticator refused with AUTH_FAILED
	AuthRateLimited    atomic.Uint64 // HELLOs refused with RATE_LIMITED: their source failed too often
	AuthSourcesEvicted atomic.Uint64 // sources with failures forgotten early because the table was full
}

// New returns a Router.
func New(opts Options) *Router {
	if opts.Auth == nil {
		opts.Auth = Anonymous{}
	}
	if opts.MaxSubscriptions == 0 {
		opts.MaxSubscriptions = 1024
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Router{opts: opts, routes: make(map[uint32]*route), subs: topic.New[*reactor.Conn](), epoch: time.Now()}
	r.fails = newFailLimiter(opts.AuthLimit, &r.stats.AuthSourcesEvicted)
	r.registry.init()
	return r
}

// Stats returns the router's counters.
func (r *Router) Stats() *Stats { return &r.stats }

// AuthSources is the number of source addresses whose failed logins are
// being tracked now (AuthLimit). Safe from any goroutine.
func (r *Router) AuthSources() int {
	if r.fails == nil {
		return 0
	}
	return int(r.fails.tracked.Load())
}

// Use appends middleware; it wraps the routes registered after it.
func (r *Router) Use(mw ...Middleware) { r.mws = append(r.mws, mw...) }

// Handle registers h for route (SPEC §6.1: the DATA frame's Route). Call it
// before the server starts.
func (r *Router) Handle(routeID uint32, name string, h HandlerFunc) {
	for i := len(r.mws) - 1; i >= 0; i-- {
		h = r.mws[i](h)
	}
	rt := &route{name: name, h: h}
	r.routes[routeID] = rt
	if routeID < uint32(len(r.low)) {
		r.low[routeID] = rt
	}
}

// route returns the handler registered for id, or nil.
func (r *Router) route(id uint32) *route {
	if id < uint32(len(r.low)) {
		return r.low[id]
	}
	return r.routes[id]
}

// RouteName returns the name a route was registered with.
func (r *Router) RouteName(routeID uint32) string {
	if rt := r.routes[routeID]; rt != nil {
		return rt.name
	}
	return ""
}

// Online reports whether a client id is connected (presence).
func (r *Router) Online(clientID string) bool { return r.registry.get(clientID) != nil }

// connState is what the router keeps per connection, in Conn's context.
//
// It is made only when needed (an ACL from the authenticator, or the
// connection's first message), so that an idle connection costs the
// router nothing but its registry entry.
type connState struct {
	ctx     Context
	acl     *ACL // nil: everything allowed
	bucket  bucket
	nsubs   int             // patterns held in the trie
	calls   uint32          // requests dispatched (latency sampling)
	matches []*reactor.Conn // scratch for PUBLISH
	// last is the topic of this connection's last PUBLISH, valid and
	// allowed, and its subscribers at trie generation lastGen: publishers
	// tend to publish on one topic many times in a row.
	last    []byte
	lastGen uint64
	lastSet bool
}

// latencySample: one request in latencySample per connection is timed
// (Options.Latency).
const latencySample = 8

// maxRemembered is the most subscribers a publisher's last topic keeps:
// beyond, each PUBLISH matches again rather than hold a large slice per
// publisher.
const maxRemembered = 64

// stateOf returns the connection's state, making it on first use.
func (r *Router) stateOf(c *reactor.Conn) *connState {
	st := state(c)
	if st == nil {
		st = &connState{}
		st.ctx.router = r
		c.SetContext(st)
	}
	return st
}

func state(c *reactor.Conn) *connState {
	st, _ := c.Context().(*connState)
	return st
}

// OnHello implements reactor.Handler.
func (r *Router) OnHello(c *reactor.Conn, h *codec.Hello) (string, protocol.ErrorCode) {
	var src sourceKey
	var limited bool
	if r.fails != nil {
		src, limited = r.fails.source(c.RemoteAddr())
		// SPEC §15.7: handshake attempts limited per source address. A
		// source out of failures is refused before its credentials are
		// looked at, so that a right guess now is not confirmed.
		if limited && !r.fails.allow(src, r.fails.now()) {
			r.stats.AuthRateLimited.Add(1)
			return "", protocol.CodeRateLimited
		}
	}
	var id string
	var acl *ACL
	code := protocol.CodeOK
	if a, ok := r.opts.Auth.(ACLAuthenticator); ok {
		id, acl, code = a.AuthenticateACL(h)
	} else {
		id, code = r.opts.Auth.Authenticate(h)
	}
	if code != protocol.CodeOK {
		if code == protocol.CodeAuthFailed {
			r.stats.AuthFailed.Add(1)
			if limited {
				r.fails.fail(src, r.fails.now())
			}
		}
		return "", code
	}
	if acl != nil {
		st := &connState{acl: acl}
		st.ctx.router = r
		c.SetContext(st)
	}
	if id != "" && r.opts.RefuseDuplicates && r.registry.get(id) != nil {
		return "", protocol.CodeDuplicateClient
	}
	return id, protocol.CodeOK
}

// OnOpen implements reactor.Handler.
func (r *Router) OnOpen(c *reactor.Conn) {
	if old := r.registry.put(c.ClientID(), c); old != nil {
		r.stats.Takeovers.Add(1)
		old.Close(protocol.CodeSessionTakenOver)
	}
}

// OnClose implements reactor.Handler.
func (r *Router) OnClose(c *reactor.Conn, code protocol.ErrorCode) {
	// A resume token that is not valid costs the source a failure, as a
	// wrong AuthToken does. The reactor checks it after OnHello and
	// answers RESUME_FAILED only during the handshake (SPEC §5.4.7).
	if code == protocol.CodeResumeFailed && r.fails != nil {
		if src, limited := r.fails.source(c.RemoteAddr()); limited {
			r.fails.fail(src, r.fails.now())
		}
	}
	r.registry.remove(c.ClientID(), c)
	r.subs.UnsubscribeAll(c)
}

// OnMessage implements reactor.Handler.
func (r *Router) OnMessage(c *reactor.Conn, f *codec.Frame) {
	st := r.stateOf(c)
	if r.opts.RateLimit.enabled() && f.Type != protocol.FrameAck && f.Type != protocol.FrameResult &&
		!st.bucket.allow(&r.opts.RateLimit, time.Now(), len(f.Payload)) {
		r.stats.RateLimited.Add(1)
		if r.opts.RateLimit.Close {
			c.Close(protocol.CodeRateLimited)
			return
		}
		result(c, f, protocol.CodeRateLimited)
		return
	}
	switch f.Type {
	case protocol.FrameData:
		if f.Flags.Has(protocol.FlagResponse) {
			return // the server sends no requests of its own yet
		}
		r.dispatch(c, st, f)
	case protocol.FramePublish:
		r.publish(c, st, f)
		r.confirmAccepted(c, f)
	case protocol.FrameDirect:
		r.direct(c, st, f)
		r.confirmAccepted(c, f)
	case protocol.FrameSubscribe:
		r.subscribe(c, st, f)
	case protocol.FrameUnsubscribe:
		r.unsubscribe(c, st, f)
	}
}

func (r *Router) dispatch(c *reactor.Conn, st *connState, f *codec.Frame) {
	rt := r.route(f.Route)
	if rt == nil {
		r.stats.NoRoute.Add(1)
		result(c, f, protocol.CodeNoSuchRoute)
		if f.Flags.Has(protocol.FlagAppAck) {
			c.Confirm(f.Lane, f.Seq, protocol.ConfirmRejected)
		}
		return
	}
	r.stats.Requests.Add(1)
	ctx := &st.ctx
	ctx.conn, ctx.frame, ctx.replied, ctx.rejected = c, f, false, false
	if r.opts.Latency && st.calls%latencySample == 0 {
		start := time.Since(r.epoch)
		rt.h(ctx)
		rt.lat.Observe(time.Since(r.epoch) - start)
	} else {
		rt.h(ctx)
	}
	st.calls++
	if f.Flags.Has(protocol.FlagAppAck) {
		// SPEC §12: the handler has run; it processed the message
		// unless it rejected it.
		v := protocol.ConfirmProcessed
		if ctx.rejected {
			v = protocol.ConfirmRejected
			c.ForgetKey(f.Key())
		}
		c.Confirm(f.Lane, f.Seq, v)
	}
	ctx.conn, ctx.frame = nil, nil
}

// confirmAccepted confirms a PUBLISH or DIRECT sent with APP_ACK once the
// server has handled it: for these the server's application is the
// router, and what it does (fan-out, forwarding) is done.
func (r *Router) confirmAccepted(c *reactor.Conn, f *codec.Frame) {
	if f.Flags.Has(protocol.FlagAppAck) {
		c.Confirm(f.Lane, f.Seq, protocol.ConfirmProcessed)
	}
}

// result answers the request f with a RESULT; requests without a
// correlation id get none (SPEC §7.6). A refused keyed message gives its
// idempotency key back (SPEC §6.5: keys record acceptance), so the client
// may send it again under the same key.
func result(c *reactor.Conn, f *codec.Frame, code protocol.ErrorCode) {
	if code != protocol.CodeOK && f.Flags.Has(protocol.FlagKeyed) {
		c.ForgetKey(f.Key())
	}
	if f.Corr == 0 {
		return
	}
	res := codec.Frame{Type: protocol.FrameResult, Lane: f.Lane, Corr: f.Corr, Code: code}
	_ = c.SendOnLoop(&res)
}

func (r *Router) subscribe(c *reactor.Conn, st *connState, f *codec.Frame) {
	if err := topic.ValidPattern(f.Name); err != nil {
		result(c, f, protocol.CodeInvalidTopic)
		return
	}
	if !st.acl.CanSubscribe(f.Name) {
		r.stats.Forbidden.Add(1)
		result(c, f, protocol.CodeForbidden)
		return
	}
	if st.nsubs >= r.opts.MaxSubscriptions {
		result(c, f, protocol.CodeRateLimited)
		return
	}
	added, err := r.subs.Subscribe(f.Name, c)
	if err != nil {
		result(c, f, protocol.CodeInvalidTopic)
		return
	}
	if added {
		st.nsubs++
	}
	result(c, f, protocol.CodeOK)
}

func (r *Router) unsubscribe(c *reactor.Conn, st *connState, f *codec.Frame) {
	if r.subs.Unsubscribe(f.Name, c) {
		st.nsubs--
	}
	result(c, f, protocol.CodeOK)
}

// publish encodes the publication once and queues the same bytes on every
// subscriber (SPEC §6.2).
func (r *Router) publish(c *reactor.Conn, st *connState, f *codec.Frame) {
	if !st.lastSet || st.lastGen != r.subs.Gen() || !bytes.Equal(st.last, f.Name) {
		if !r.match(c, st, f) {
			return
		}
	}
	r.stats.Published.Add(1)
	// Forwarded as published, minus what belongs to the publisher's own
	// hop: its correlation id and sequence number. A reliable publication
	// is delivered reliably to each subscriber (numbered per subscriber,
	// SPEC §6.2, §12).
	out := codec.Frame{Type: protocol.FramePublish, Flags: f.Flags & (protocol.FlagExpiry | protocol.FlagReliable), Lane: f.Lane,
		TTL: f.TTL, Name: f.Name, Payload: f.Payload}
	if len(st.matches) == 1 {
		// One subscriber: queued as any message (packed with the ones
		// before it when it is on this loop), no shared buffer.
		if err := st.matches[0].SendFrom(c, &out); err != nil {
			r.stats.Undelivered.Add(1)
		} else {
			r.stats.Delivered.Add(1)
		}
	} else if len(st.matches) > 0 {
		sh, err := reactor.NewShared(&out)
		if err != nil {
			result(c, f, protocol.CodeInternal)
			return
		}
		for _, sub := range st.matches {
			err := sub.SendSharedFrom(c, sh)
			if err == reactor.ErrSharedTooLarge {
				err = sub.SendFrom(c, &out)
			}
			if err != nil {
				r.stats.Undelivered.Add(1)
				continue
			}
			r.stats.Delivered.Add(1)
		}
		sh.Release()
	}
	if !st.lastSet {
		clear(st.matches) // not remembered: no reference kept
		st.matches = st.matches[:0]
	}
	result(c, f, protocol.CodeOK)
}

// match checks a PUBLISH's topic and permission (answering a refusal) and
// finds its subscribers into st.matches, remembering them with the topic
// when there are few. It reports whether the publication goes on.
func (r *Router) match(c *reactor.Conn, st *connState, f *codec.Frame) bool {
	st.lastSet = false
	if err := topic.ValidTopic(f.Name); err != nil || len(f.Name) == 0 {
		result(c, f, protocol.CodeInvalidTopic)
		return false
	}
	if !st.acl.CanPublish(f.Name) {
		r.stats.Forbidden.Add(1)
		result(c, f, protocol.CodeForbidden)
		return false
	}
	clear(st.matches)
	st.matches, st.lastGen = r.subs.AppendMatchesGen(st.matches[:0], f.Name)
	if len(st.matches) <= maxRemembered {
		st.last = append(st.last[:0], f.Name...)
		st.lastSet = true
	}
	return true
}

// direct forwards a client-to-client message (SPEC §6.3).
func (r *Router) direct(c *reactor.Conn, st *connState, f *codec.Frame) {
	if !st.acl.CanDirect(f.Name) {
		r.stats.Forbidden.Add(1)
		result(c, f, protocol.CodeForbidden)
		return
	}
	if f.Flags.Has(protocol.FlagReliable) {
		r.directReliable(c, f)
		return
	}
	peer := r.registry.get(string(f.Name))
	if peer == nil {
		r.stats.NoSuchClient.Add(1)
		result(c, f, protocol.CodeNoSuchClient)
		return
	}
	out := codec.Frame{Type: protocol.FrameDirect, Flags: f.Flags & protocol.FlagExpiry, Lane: f.Lane,
		TTL: f.TTL, Name: []byte(c.ClientID()), Payload: f.Payload}
	if err := peer.Send(&out); err != nil {
		code := protocol.CodeQueueFull
		if err == reactor.ErrClosed {
			code = protocol.CodeNoSuchClient
		}
		result(c, f, code)
		return
	}
	r.stats.Directs.Add(1)
	result(c, f, protocol.CodeOK)
}

// directReliable delivers a reliable DIRECT through the recipient's
// session: on its connection, or, while it is disconnected, in its offline
// queue until it resumes (SPEC §6.3, §12). The receipt says the message
// was accepted for the recipient, connected or not.
func (r *Router) directReliable(c *reactor.Conn, f *codec.Frame) {
	out := codec.Frame{Type: protocol.FrameDirect, Flags: f.Flags & (protocol.FlagExpiry | protocol.FlagReliable), Lane: f.Lane,
		TTL: f.TTL, Name: []byte(c.ClientID()), Payload: f.Payload}
	// A connected recipient gets it on its connection: if that closes
	// first, the message is kept with its session.
	if peer := r.registry.get(string(f.Name)); peer != nil {
		if err := peer.Send(&out); err == nil {
			r.stats.Directs.Add(1)
			result(c, f, protocol.CodeOK)
			return
		} else if !errors.Is(err, reactor.ErrClosed) {
			result(c, f, protocol.CodeQueueFull)
			return
		}
	}
	sess := c.Server().SessionByClient(string(f.Name))
	if sess == nil {
		r.stats.NoSuchClient.Add(1)
		result(c, f, protocol.CodeNoSuchClient)
		return
	}
	if err := sess.Send(&out); err != nil {
		code := protocol.CodeQueueFull
		if errors.Is(err, reactor.ErrSessionGone) {
			code = protocol.CodeNoSuchClient
		}
		result(c, f, code)
		return
	}
	r.stats.Directs.Add(1)
	result(c, f, protocol.CodeOK)
}

// registry maps client ids to their live connection, in shards so that
// logins on different loops rarely meet on a lock.
type registry struct {
	shards [16]struct {
		mu sync.RWMutex
		m  map[string]*reactor.Conn
	}
}

func (g *registry) init() {
	for i := range g.shards {
		g.shards[i].m = make(map[string]*reactor.Conn)
	}
}

func shardOf(id string) int {
	h := uint32(2166136261)
	for i := 0; i < len(id); i++ {
		h = (h ^ uint32(id[i])) * 16777619
	}
	return int(h & 15)
}

func (g *registry) get(id string) *reactor.Conn {
	s := &g.shards[shardOf(id)]
	s.mu.RLock()
	c := s.m[id]
	s.mu.RUnlock()
	return c
}

// put registers c under id and returns the connection it replaced.
func (g *registry) put(id string, c *reactor.Conn) *reactor.Conn {
	s := &g.shards[shardOf(id)]
	s.mu.Lock()
	old := s.m[id]
	s.m[id] = c
	s.mu.Unlock()
	return old
}

// remove drops id if it still belongs to c (not to a newer connection).
func (g *registry) remove(id string, c *reactor.Conn) {
	s := &g.shards[shardOf(id)]
	s.mu.Lock()
	if s.m[id] == c {
		delete(s.m, id)
	}
	s.mu.Unlock()
}
