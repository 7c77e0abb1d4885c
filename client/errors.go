package client

import (
	"errors"
	"strconv"

	"github.com/ferry-proto/ferry/protocol"
)

// Errors of one call. Compare with errors.Is.
var (
	// ErrClosed: the client was closed (by Close, or for good after a
	// connection error that forbids reconnecting, see ServerError).
	ErrClosed = errors.New("client: closed")
	// ErrNotConnected: an unreliable message or a request was refused
	// because no connection is up at the moment; the client is reconnecting.
	ErrNotConnected = errors.New("client: not connected")
	// ErrDisconnected: the connection ended before the answer to a request
	// arrived (SPEC §6: "When the connection ends, all of a side's
	// unanswered requests fail locally"). The request may or may not have
	// been processed.
	ErrDisconnected = errors.New("client: disconnected before the answer")
	// ErrQueueFull: the store of pending reliable messages (WithMaxPending)
	// is full and the caller asked not to wait.
	ErrQueueFull = errors.New("client: pending store full")
	// ErrSessionLost: a reliable message had been sent (wholly or in part)
	// but not acknowledged when the server started a new session
	// (WELCOME SessionPresent = 0, SPEC §5.4.7): the server lost it, or may
	// have processed it without the acknowledgement reaching us. The
	// client does not send it again unless WithResendOnNewSession is set.
	ErrSessionLost = errors.New("client: session lost before the message was acknowledged")
	// ErrNoReceipt: a DIRECT reached the server (it is acknowledged and
	// will not be lost) but the connection ended before the server's
	// delivery receipt arrived, so whether the peer got it is unknown.
	ErrNoReceipt = errors.New("client: direct message acknowledged, delivery receipt lost")
	// ErrTooLarge: the message exceeds the server's max message size
	// (SPEC §5.4.2).
	ErrTooLarge = errors.New("client: message larger than the server accepts")
	// ErrBadLane: messages travel on lanes 1 to 3 (SPEC §8.1).
	ErrBadLane = errors.New("client: lane must be 1, 2 or 3")
	// ErrBadArgument: a topic, pattern or peer is empty or too long.
	ErrBadArgument = errors.New("client: invalid topic, pattern or peer")
	// ErrNotRequest: Reply on a message that is not a request, or that was
	// answered already.
	ErrNotRequest = errors.New("client: not an unanswered request")
	// ErrNoConfirm: Confirm on a message that did not ask for a CONFIRM, or
	// that was confirmed already.
	ErrNoConfirm = errors.New("client: message needs no confirmation")
	// ErrConfirmLater, returned by a Handler, says that the handler will
	// call Message.Confirm itself later, so no CONFIRM is sent on its
	// return. It is not an error.
	ErrConfirmLater = errors.New("client: confirmation deferred")
)

// ResultError is a request that the server answered with a RESULT whose
// code is not OK (SPEC §7.6): it failed; the connection is fine.
type ResultError struct {
	Code   protocol.ErrorCode
	Detail string // the server's text, for logs: never parse it
}

func (e *ResultError) Error() string {
	if e.Detail == "" {
		return "client: request failed: " + e.Code.String()
	}
	return "client: request failed: " + e.Code.String() + ": " + e.Detail
}

// ServerError is a connection that the server closed with an ERROR or a
// GOAWAY frame (SPEC §7.3, §7.4), or that this client closed with ERROR
// because the server broke the protocol (Local true). After a code the
// client must not retry on its own (SPEC §13.5: UNSUPPORTED_VERSION,
// AUTH_FAILED, DUPLICATE_CLIENT, SESSION_TAKEN_OVER) the client closes and
// its calls fail with an error that wraps both ErrClosed and the
// ServerError.
type ServerError struct {
	Code   protocol.ErrorCode
	Reason string // the peer's text, for logs: never parse it
	GoAway bool   // the code came in a GOAWAY, not an ERROR
	Local  bool   // this side detected the error and sent it
}

func (e *ServerError) Error() string {
	var s string
	switch {
	case e.Local:
		s = "client: closed the connection with "
	case e.GoAway:
		s = "client: server sent GOAWAY "
	default:
		s = "client: server closed the connection with "
	}
	s += e.Code.String()
	if e.Reason != "" {
		s += ": " + strconv.Quote(e.Reason)
	}
	return s
}

// fatal reports whether a connection that ended with err must not be
// retried automatically (SPEC §13.5).
func fatal(err error) bool {
	var se *ServerError
	if !errors.As(err, &se) || se.Local {
		return false
	}
	switch se.Code {
	case protocol.CodeUnsupportedVersion, protocol.CodeAuthFailed,
		protocol.CodeDuplicateClient, protocol.CodeSessionTakenOver:
		return true
	}
	return false
}

// closedError wraps the reason a client closed for good, so that
// errors.Is(err, ErrClosed) holds and the ServerError is still reachable.
type closedError struct{ cause error }

func (e *closedError) Error() string   { return ErrClosed.Error() + ": " + e.cause.Error() }
func (e *closedError) Unwrap() []error { return []error{ErrClosed, e.cause} }
