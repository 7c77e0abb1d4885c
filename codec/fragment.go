package codec

import (
	"bytes"
	"time"

	"github.com/golang/snappy"

	"github.com/ferry-proto/ferry/protocol"
)

// Fragmenter cuts one message into FRAGMENT frames (SPEC §10). The frames
// it returns alias the message; the caller sets Seq on each (reliable
// fragments carry consecutive sequence numbers) and may compress each
// fragment's payload on its own.
type Fragmenter struct {
	tmpl Frame
	msg  []byte
	off  int
	size int
}

// NewFragmenter prepares the fragments of msg. tmpl gives the frame type,
// lane and fixed fields (Route, Corr, Name, TTL, the Key in Opaque, and the
// flags other than FRAGMENT and COMPRESSED), which every fragment carries
// alike (SPEC §10.1); its Payload is ignored. size is the largest
// fragment payload, normally protocol.DefaultFragmentSize. msgID must differ
// from the previous fragmented message of the same lane.
func NewFragmenter(tmpl *Frame, msg []byte, msgID uint32, size int) Fragmenter {
	fr := Fragmenter{tmpl: *tmpl, msg: msg, size: max(size, 1)}
	fr.tmpl.Flags = fr.tmpl.Flags&^protocol.FlagCompressed | protocol.FlagFragment
	fr.tmpl.MsgID = msgID
	fr.tmpl.Total = uint32(len(msg))
	fr.tmpl.Payload = nil
	return fr
}

// NeedsFragments reports whether a payload of n bytes must be fragmented at
// fragment size size.
func NeedsFragments(n, size int) bool { return n > size }

// Next returns the next fragment, or ok == false once all were returned.
func (fr *Fragmenter) Next() (f Frame, ok bool) {
	if fr.off >= len(fr.msg) {
		return f, false
	}
	n := min(fr.size, len(fr.msg)-fr.off)
	f = fr.tmpl
	f.Offset = uint32(fr.off)
	f.Payload = fr.msg[fr.off : fr.off+n : fr.off+n]
	fr.off += n
	return f, true
}

// Remaining is the number of message bytes not yet returned.
func (fr *Fragmenter) Remaining() int { return len(fr.msg) - fr.off }

// ReassemblyLimits bound what a Reassembler may hold (SPEC §10.4).
type ReassemblyLimits struct {
	// MaxFrameSize is this side's max frame size; a compressed frame
	// without FRAGMENT may decode to at most this much.
	MaxFrameSize int
	// MaxMessageSize is the largest message this side accepts.
	MaxMessageSize int
	// MaxPartial is how many messages may be partial at once, at most one
	// per lane (so at most 3).
	MaxPartial int
	// MaxBytes bounds the sum of the Total lengths of the partial
	// messages; it is reserved when a message's first fragment arrives,
	// before anything is allocated for it.
	MaxBytes int
	// Timeout is how long a partial message may go without a fragment.
	Timeout time.Duration
}

// DefaultReassemblyLimits are the limits a side uses when configured with
// nothing else.
func DefaultReassemblyLimits() ReassemblyLimits {
	return ReassemblyLimits{
		MaxFrameSize:   protocol.DefaultMaxFrameSize,
		MaxMessageSize: protocol.DefaultMaxMessageSize,
		MaxPartial:     protocol.NumLanes - 1,
		MaxBytes:       2 * protocol.DefaultMaxMessageSize,
		Timeout:        30 * time.Second,
	}
}

// retainCap is the largest buffer a Reassembler keeps for reuse once the
// message it held was delivered.
const retainCap = 32 << 10

type partial struct {
	active bool
	typ    protocol.FrameType
	flags  protocol.Flags // other than COMPRESSED
	msgID  uint32
	total  uint32
	route  uint32
	corr   uint32
	ttl    uint32
	key    uint64 // the idempotency key (KEYED), or 0
	name   []byte
	buf    []byte
	last   int64
}

// Reassembler turns the message frames of one direction of a connection
// (or session) into whole messages: it decompresses, checks the rules of
// SPEC §10 and joins fragments. Every message frame goes through Add, so
// that a fragment interrupted by another message of its lane is caught.
//
// A Reassembler belongs to one goroutine (the connection's event loop). Its
// memory is bounded by the limits: MaxBytes of reassembly plus one decoded
// frame; nothing is allocated for a message before its limits are checked.
type Reassembler struct {
	lim      ReassemblyLimits
	lanes    [protocol.NumLanes]partial
	active   int
	reserved int
	scratch  []byte
	release  int // lane whose buffer was handed out by the last Add, or -1
}

// NewReassembler returns a Reassembler with the given limits.
func NewReassembler(lim ReassemblyLimits) *Reassembler {
	r := &Reassembler{}
	r.Init(lim)
	return r
}

// Init (re)initialises r in place, for a Reassembler embedded in a larger
// struct.
func (r *Reassembler) Init(lim ReassemblyLimits) {
	lim.MaxPartial = min(max(lim.MaxPartial, 0), protocol.NumLanes-1)
	*r = Reassembler{lim: lim, release: -1}
}

// SetLimits changes the limits, for example after the handshake.
func (r *Reassembler) SetLimits(lim ReassemblyLimits) {
	lim.MaxPartial = min(max(lim.MaxPartial, 0), protocol.NumLanes-1)
	r.lim = lim
}

// Add takes one decoded message frame (DATA, PUBLISH or DIRECT) received at
// now (nanoseconds on the caller's monotonic clock). When a message is
// complete it returns its payload, decompressed and joined, and done ==
// true; f's other fields describe the message (for fragments, those of the
// first fragment are checked equal on every later one). An error is a
// protocol violation: the caller closes the connection with CodeOf(err).
//
// The returned payload is a view valid until the next call to Add or Reset:
// f.Payload itself for a plain frame, else a buffer of r's.
func (r *Reassembler) Add(f *Frame, now int64) (msg []byte, done bool, err error) {
	r.recycle()
	lane := f.Lane & protocol.LaneMask
	p := &r.lanes[lane]
	if f.Flags&protocol.FlagFragment == 0 {
		// SPEC §10.2: within a lane, a fragmented message is sent whole
		// before any other message frame. SPEC §10.3 rule 4, §12.8: except
		// an expired placeholder replayed for the rest of a reliable
		// message, which ends that message (it expired); the placeholder
		// itself is then delivered like any message, and dropped by the
		// caller for its TTL of 0 (§6.4).
		if p.active {
			if !f.IsExpiredPlaceholder() || p.flags&protocol.FlagReliable == 0 {
				return nil, false, ErrFragmentInterrupt
			}
			r.abandon(p)
		}
		if f.Flags&protocol.FlagCompressed == 0 {
			// SPEC §6: an unfragmented message over the max message size.
			if len(f.Payload) > r.lim.MaxMessageSize {
				return nil, false, ErrMessageTooLarge
			}
			return f.Payload, true, nil
		}
		// SPEC §11.4: the decoded length against the max frame size
		// (COMPRESSION_ERROR), then against the max message size.
		n, err := DecodedLen(f.Payload)
		if err != nil {
			return nil, false, err
		}
		if n > r.lim.MaxFrameSize {
			return nil, false, ErrDecodedTooLarge
		}
		if n > r.lim.MaxMessageSize {
			return nil, false, ErrMessageTooLarge
		}
		r.scratch, err = AppendDecompressed(r.scratch[:0], f.Payload, n)
		if err != nil {
			return nil, false, err
		}
		return r.scratch, true, nil
	}
	if !p.active {
		if err := r.start(p, f); err != nil {
			return nil, false, err
		}
	} else if err := p.match(f); err != nil {
		return nil, false, err
	}
	if err := p.appendData(f); err != nil {
		return nil, false, err
	}
	p.last = now
	if len(p.buf) < int(p.total) {
		return nil, false, nil
	}
	p.active = false
	r.active--
	r.reserved -= int(p.total)
	r.release = int(lane)
	return p.buf, true, nil
}

// start checks the limits for a message's first fragment (SPEC §10.4)
// before anything is allocated for it.
func (r *Reassembler) start(p *partial, f *Frame) error {
	if f.Offset != 0 {
		return ErrFragmentOrder
	}
	if int64(f.Total) > int64(r.lim.MaxMessageSize) {
		return ErrMessageTooLarge
	}
	if r.active >= r.lim.MaxPartial || int64(r.reserved)+int64(f.Total) > int64(r.lim.MaxBytes) {
		return ErrFragmentLimit
	}
	p.active = true
	p.typ, p.msgID, p.total = f.Type, f.MsgID, f.Total
	p.flags = f.Flags &^ protocol.FlagCompressed
	p.route, p.corr, p.ttl, p.key = f.Route, f.Corr, f.TTL, f.Key()
	p.name = append(p.name[:0], f.Name...)
	p.buf = p.buf[:0]
	r.active++
	r.reserved += int(f.Total)
	return nil
}

// match checks a later fragment against its message (SPEC §10.3): same
// type, flags other than COMPRESSED, MsgID, Total, fixed fields, TTL and
// Key.
func (p *partial) match(f *Frame) error {
	if f.Type != p.typ || f.Flags&^protocol.FlagCompressed != p.flags || f.MsgID != p.msgID || f.Total != p.total || f.Route != p.route ||
		f.Corr != p.corr || f.TTL != p.ttl || f.Key() != p.key || !bytes.Equal(f.Name, p.name) {
		return ErrFragmentMismatch
	}
	if int(f.Offset) != len(p.buf) {
		return ErrFragmentOrder
	}
	return nil
}

// appendData adds a fragment's data, decompressing it straight into the
// message buffer when it is compressed; the decoded length is checked
// against what the message still lacks before the buffer grows.
func (p *partial) appendData(f *Frame) error {
	remain := int(p.total) - len(p.buf)
	n := len(f.Payload)
	if f.Flags&protocol.FlagCompressed != 0 {
		var err error
		if n, err = DecodedLen(f.Payload); err != nil {
			return err
		}
		if n > remain {
			return ErrDecodedTooLarge
		}
		if n == 0 {
			return ErrFragmentEmpty
		}
	} else if n > remain {
		return ErrFragmentOverrun
	}
	p.grow(n)
	if f.Flags&protocol.FlagCompressed == 0 {
		p.buf = append(p.buf, f.Payload...)
		return nil
	}
	at := len(p.buf)
	out, err := snappy.Decode(p.buf[at:at+n], f.Payload)
	if err != nil || len(out) != n {
		return ErrCorrupt
	}
	p.buf = p.buf[:at+n]
	return nil
}

// grow makes room for n more bytes, doubling up to the message's Total and
// never past it, so a message never holds more than it declared.
func (p *partial) grow(n int) {
	need := len(p.buf) + n
	if need <= cap(p.buf) {
		return
	}
	c := max(2*cap(p.buf), need, 4<<10)
	c = min(c, int(p.total))
	nb := make([]byte, len(p.buf), c)
	copy(nb, p.buf)
	p.buf = nb
}

// abandon ends p's message without delivering it and returns its
// reservation, keeping a small buffer for the lane's next message.
func (r *Reassembler) abandon(p *partial) {
	p.active = false
	r.active--
	r.reserved -= int(p.total)
	p.buf = p.buf[:0]
	if cap(p.buf) > retainCap {
		p.buf = nil
	}
}

// recycle drops the buffer handed out by the previous Add if it is too
// large to keep, so one large message does not pin its memory.
func (r *Reassembler) recycle() {
	if r.release >= 0 {
		p := &r.lanes[r.release]
		if cap(p.buf) > retainCap {
			p.buf = nil
		}
		r.release = -1
	}
	if cap(r.scratch) > retainCap {
		r.scratch = nil
	}
}

// Expire reports ErrReassemblyTimeout when a partial message has gone
// longer than the timeout without a fragment (SPEC §10.4).
func (r *Reassembler) Expire(now int64) error {
	if r.active == 0 || r.lim.Timeout <= 0 {
		return nil
	}
	for i := range r.lanes {
		p := &r.lanes[i]
		if p.active && now-p.last > int64(r.lim.Timeout) {
			return ErrReassemblyTimeout
		}
	}
	return nil
}

// NextDeadline returns when the oldest partial message times out, and false
// when nothing is partial: the caller arms one timer for it.
func (r *Reassembler) NextDeadline() (int64, bool) {
	if r.active == 0 || r.lim.Timeout <= 0 {
		return 0, false
	}
	var d int64
	found := false
	for i := range r.lanes {
		p := &r.lanes[i]
		if p.active && (!found || p.last < d) {
			d, found = p.last, true
		}
	}
	return d + int64(r.lim.Timeout), found
}

// Partial is the number of messages being reassembled.
func (r *Reassembler) Partial() int { return r.active }

// Reserved is the sum of the Total lengths of the partial messages: the
// bytes counted against MaxBytes.
func (r *Reassembler) Reserved() int { return r.reserved }

// Buffered is the memory r holds now, in bytes: partial data, retained
// buffers and scratch.
func (r *Reassembler) Buffered() int {
	n := cap(r.scratch)
	for i := range r.lanes {
		n += cap(r.lanes[i].buf) + cap(r.lanes[i].name)
	}
	return n
}

// Reset drops every partial message and releases r's buffers.
func (r *Reassembler) Reset() {
	lim := r.lim
	r.Init(lim)
}

// Discard drops the partial message of lane, if any, and returns its
// reservation. A session that outlives its connection keeps its reliable
// partial messages (their fragments were acknowledged and will not be
// sent again) and discards the others.
func (r *Reassembler) Discard(lane protocol.Lane) {
	p := &r.lanes[lane&protocol.LaneMask]
	if !p.active {
		return
	}
	r.active--
	r.reserved -= int(p.total)
	*p = partial{}
}

// Touch restarts the inactivity timeout of every partial message at now:
// a resumed session's partial messages waited for a reconnect, not for a
// silent peer.
func (r *Reassembler) Touch(now int64) {
	for i := range r.lanes {
		if r.lanes[i].active {
			r.lanes[i].last = now
		}
	}
}
