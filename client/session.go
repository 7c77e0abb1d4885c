package client

import (
	"slices"

	"github.com/ferry-proto/ferry/codec"
	"github.com/ferry-proto/ferry/codec/seqwin"
	"github.com/ferry-proto/ferry/protocol"
)

// session is the client's half of a FERRY/1 session: what outlives a
// connection so that a reconnect resumes where the last one stopped
// (notes/delivery.md, SPEC §5.4.7, §12). Guarded by Client.mu.
type session struct {
	id, token []byte // from the last WELCOME; empty: nothing to resume
	gen       uint64 // incremented for each new session
	granted   bool   // a session exists (resumable or not) whose loss is news
	lanes     [protocol.NumLanes]lane
	reasm     codec.Reassembler
	confirms  []confirmReq // CONFIRMs not yet written
}

// lane is one lane (1 to 3) of the session, both directions.
type lane struct {
	tx seqwin.Sender
	rx seqwin.Receiver

	// inflight holds the reliable frames sent and not yet released by the
	// peer's Cumulative point, in Seq order, Seqs tx.Acked()+1 ..
	// tx.Next()-1 without a gap: the frame of Seq s is
	// inflight[s-tx.Acked()-1].
	inflight []sentFrame
	// replayNext..replayEnd are the Seqs still to send again on this
	// connection after a resume, before anything new (notes/delivery.md).
	replayNext, replayEnd uint64

	// queue holds what waits to be written on this lane, in order: reliable
	// and unreliable messages, responses and RESULTs.
	queue []*outMsg
	// cur is the message being written: some of its frames went out, the
	// others follow before any other frame of the lane (SPEC §10.2). A
	// reliable one stays across a reconnect and continues after the replay
	// (SPEC §12.7).
	cur   *outMsg
	msgID uint32 // MsgID of the last fragmented message sent (SPEC §10.1)

	// In the receiving direction: whether the Reassembler holds a partial
	// message on this lane, and whether it is reliable (it then survives a
	// reconnect, notes/delivery.md).
	partial, partialReliable bool
	partialAt                int64 // arrival of its first fragment (SPEC §6.4)
}

// sentFrame is one reliable frame in flight: which bytes of which message.
type sentFrame struct {
	m      *outMsg
	off, n int
}

// outMsg is one message (or RESULT or response) waiting to be written,
// being written, or, reliable, waiting for its acknowledgement.
type outMsg struct {
	typ     protocol.FrameType
	lane    protocol.Lane
	flags   protocol.Flags // RELIABLE, RESPONSE: the same on every frame
	route   uint32
	corr    uint32
	code    protocol.ErrorCode // RESULT
	name    []byte
	payload []byte // the client's own copy
	// key is the idempotency key (SPEC §6.5) of a reliable message sent
	// with WithResendOnNewSession: if its session is lost and it goes
	// again as a new message, the server drops it when it had it already.
	key uint64

	// packed is, for a pack, the number of unreliable messages whose
	// frames payload holds, encoded when they were sent (Send, Publish):
	// small unreliable messages of one lane queued back to back share a
	// pack, written as it is. 0: an ordinary message.
	packed int

	frag     bool // cut into fragments, decided at its first frame
	msgID    uint32
	off      int  // payload bytes written so far (each fragment once)
	started  bool // its first frame was written
	acked    bool // reliable: its last frame was acknowledged
	receipt  bool // DIRECT: the server's delivery receipt came (it has it)
	finished bool // completed or failed: nothing more to report
	dropped  bool // withdrawn from its queue by a cancelled caller

	store  int         // payload bytes held in the pending store (reliable), -1: none
	held   int         // unreliable: payload bytes counted in Client.unrelBytes
	waitCh chan error  // SendReliable's outcome
	done   func(error) // SendAsync's callback, run on the callback goroutine
	call   *call       // DIRECT receipt or request
}

func (m *outMsg) reliable() bool { return m.flags&protocol.FlagReliable != 0 }

// packTail returns the lane's last queued message if it is a pack with room
// for n more bytes, and nil otherwise.
func (l *lane) packTail(n int) *outMsg {
	if len(l.queue) == 0 {
		return nil
	}
	m := l.queue[len(l.queue)-1]
	if m.packed == 0 || m.started || m.dropped || len(m.payload)+n > packLimit {
		return nil
	}
	return m
}

// last reports whether the frame [off, off+n) ends the message.
func (m *outMsg) last(off, n int) bool { return off+n == len(m.payload) }

// confirmReq is one CONFIRM to write.
type confirmReq struct {
	lane    protocol.Lane
	verdict protocol.Verdict
	seq     uint64
}

// frameOf returns the in-flight frame with Seq seq.
func (l *lane) frameOf(seq uint64) *sentFrame {
	return &l.inflight[seq-l.tx.Acked()-1]
}

// remove takes the i-th message out of the queue.
func (l *lane) remove(i int) {
	if i == 0 {
		l.queue[0] = nil
		l.queue = l.queue[1:]
	} else {
		l.queue = slices.Delete(l.queue, i, i+1)
	}
	if len(l.queue) == 0 {
		l.queue = nil
	}
}

// startedMsgs returns the distinct reliable messages that were written in
// whole or in part and not acknowledged, in Seq order: what a lost session
// takes with it.
func (l *lane) startedMsgs() []*outMsg {
	var out []*outMsg
	for i := range l.inflight {
		m := l.inflight[i].m
		if len(out) == 0 || out[len(out)-1] != m {
			out = append(out, m)
		}
	}
	if m := l.cur; m != nil && m.reliable() && (len(out) == 0 || out[len(out)-1] != m) {
		out = append(out, m)
	}
	return out
}
