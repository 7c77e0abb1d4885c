package main

import (
	"encoding/binary"
	"errors"

	"github.com/ferry-proto/ferry/codec"
	"github.com/ferry-proto/ferry/protocol"
)

// The least of FERRY/1 that the peers need to serve ferry-bench's echo: a
// HELLO answered with a fixed WELCOME, every DATA request turned into its
// response by setting the RESPONSE flag in place, every PING turned into a
// PONG in place. No sessions, lanes, acknowledgements, heartbeats of their
// own, compression or reassembly; a frame that would need any of them
// closes the connection, so a scenario the peers cannot serve fails loudly
// instead of measuring something else.

// maxFrame is the peers' max frame size, length prefix included: the
// handshake's (SPEC §3.2), announced again in WELCOME.
const maxFrame = protocol.DefaultMaxFrameSize

// dataFixed is the size of DATA's fixed fields, Route and Corr (SPEC §6.1).
const dataFixed = 8

// welcomeFrame is the WELCOME every peer answers HELLO with: no
// capabilities, no session (an empty SessionID offers no resumption, SPEC
// §5.4.7), the protocol's default heartbeat, and one client id for every
// client (the peers keep no registry).
var welcomeFrame = codec.AppendWelcome(nil, &codec.Welcome{
	Version:      protocol.Version,
	MaxFrameSize: maxFrame,
	HeartbeatMs:  protocol.DefaultHeartbeatMs,
	ReceiveMax:   protocol.DefaultReceiveMax,
	ClientID:     []byte("ferry-peer"),
})

// Why a peer closes a connection. It sends no ERROR first: a peer is a
// floor to measure against, not a server to debug a client with.
var (
	errFrameTooLarge = errors.New("ferry-peers: frame too large")
	errBadLength     = errors.New("ferry-peers: length below the header")
)

// frameSize reads the length prefix at the start of b (at least 4 bytes)
// and returns the size of the whole frame, prefix included. The length is
// checked before the body is waited for (SPEC §3.2 receiver rules 1, 2).
func frameSize(b []byte) (int, error) {
	l := binary.BigEndian.Uint32(b)
	switch {
	case l > maxFrame-protocol.LengthSize:
		return 0, errFrameTooLarge
	case l < protocol.MinLength:
		return 0, errBadLength
	}
	return protocol.LengthSize + int(l), nil
}

// frameLen reports the size of the frame at the start of b, or 0 while b
// holds only part of it (SPEC §3.2 rule 3).
func frameLen(b []byte) (int, error) {
	if len(b) < protocol.LengthSize {
		return 0, nil
	}
	n, err := frameSize(b)
	if err != nil || len(b) < n {
		return 0, err
	}
	return n, nil
}

// verdict is what a peer does with one complete frame.
type verdict uint8

const (
	// send the frame back as answer rewrote it.
	sendBack verdict = iota
	// sendWelcome: answer with welcomeFrame; the handshake is done.
	sendWelcome
	// ignore the frame: a PONG, an ACK, a one-way DATA or a response.
	ignore
	// hangUp: close the connection.
	hangUp
)

// answer decides what the complete frame f gets and, for sendBack, rewrites
// it in place into the answer, which has f's length. welcomed says whether
// WELCOME was sent on the connection.
//
//	+----------------+---------+---------+-----------+--------------------+
//	| Length (32)    | Type    | Flags   | Lane byte | Body               |
//	+----------------+---------+---------+-----------+--------------------+
//	  f[0:4]           f[4]      f[5]      f[6]        f[7:]
func answer(f []byte, welcomed bool) verdict {
	typ, flags, laneByte := protocol.FrameType(f[4]), protocol.Flags(f[5]), f[6]
	if laneByte&^3 != 0 || !protocol.FlagsValid(typ, flags) {
		return hangUp // SPEC §3.3, §3.4
	}
	if !welcomed {
		// SPEC §5.5 rule 2: the first frame is HELLO.
		if typ != protocol.FrameHello {
			return hangUp
		}
		if _, err := codec.ParseHello(f[protocol.HeaderSize:]); err != nil {
			return hangUp
		}
		return sendWelcome
	}
	switch typ {
	case protocol.FrameData:
		body := f[protocol.HeaderSize:]
		if len(body) < dataFixed || laneByte == 0 {
			return hangUp
		}
		// Reliable frames need acknowledgements and compressed ones a
		// negotiation the peers never make.
		if flags&(protocol.FlagReliable|protocol.FlagCompressed) != 0 {
			return hangUp
		}
		corr := binary.BigEndian.Uint32(body[4:8])
		if flags&protocol.FlagResponse != 0 || corr == 0 {
			return ignore // a response to nothing we asked, or a one-way message
		}
		// SPEC §6.1: the response carries the request's Corr, lane and
		// Route; a fragment stays a fragment of the same message.
		f[5] = byte(flags | protocol.FlagResponse)
		return sendBack
	case protocol.FramePing:
		if len(f) != protocol.HeaderSize+8 {
			return hangUp // SPEC §7.1: the body is exactly 8 bytes
		}
		f[4] = byte(protocol.FramePong) // the Opaque stays
		return sendBack
	case protocol.FramePong, protocol.FrameAck:
		return ignore
	}
	return hangUp
}
