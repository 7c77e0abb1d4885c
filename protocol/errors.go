package protocol

// ErrorCode is the 16-bit code of ERROR, GOAWAY and RESULT frames (SPEC §13).
type ErrorCode uint16

// Error codes, SPEC §13. Codes with scope "connection" are sent in ERROR or
// GOAWAY and the sender closes the connection; codes with scope "request"
// are sent in RESULT and fail one request or message. RATE_LIMITED and
// AUTH_FAILED may appear in either.
const (
	CodeOK                 ErrorCode = 0x0000
	CodeProtocolError      ErrorCode = 0x0001
	CodeFrameTooLarge      ErrorCode = 0x0002
	CodeUnsupportedVersion ErrorCode = 0x0003
	CodeAuthFailed         ErrorCode = 0x0004
	CodeIdleTimeout        ErrorCode = 0x0005
	CodeSlowConsumer       ErrorCode = 0x0006
	CodeRateLimited        ErrorCode = 0x0007
	CodeResumeFailed       ErrorCode = 0x0008
	CodeMessageTooLarge    ErrorCode = 0x0009
	CodeCompressionError   ErrorCode = 0x000A
	CodeGoingAway          ErrorCode = 0x000B
	CodeInternal           ErrorCode = 0x000C
	CodeHandshakeTimeout   ErrorCode = 0x000D
	CodeFragmentLimit      ErrorCode = 0x000E
	CodeReassemblyTimeout  ErrorCode = 0x000F
	CodeSessionTakenOver   ErrorCode = 0x0010
	CodeTooManyConnections ErrorCode = 0x0011
	CodeNoSuchRoute        ErrorCode = 0x0100
	CodeNoSuchClient       ErrorCode = 0x0101
	CodeQueueFull          ErrorCode = 0x0102
	CodeExpired            ErrorCode = 0x0103
	CodeForbidden          ErrorCode = 0x0104
	CodeInvalidTopic       ErrorCode = 0x0105
	CodeDuplicateClient    ErrorCode = 0x0106
	CodeHandlerError       ErrorCode = 0x0107
)

// ErrorScope says where an error code may be used (SPEC §13).
type ErrorScope uint8

const (
	// ScopeConnection: sent in ERROR or GOAWAY; the connection closes.
	ScopeConnection ErrorScope = iota + 1
	// ScopeRequest: sent in RESULT; one request or message fails.
	ScopeRequest
	// ScopeEither: either of the two, by the sender's configuration.
	ScopeEither
)

func (s ErrorScope) String() string {
	switch s {
	case ScopeConnection:
		return "connection"
	case ScopeRequest:
		return "request"
	case ScopeEither:
		return "either"
	}
	return "unknown"
}

type errorInfo struct {
	name  string
	scope ErrorScope
}

var errorInfos = map[ErrorCode]errorInfo{
	CodeOK:                 {"OK", ScopeRequest},
	CodeProtocolError:      {"PROTOCOL_ERROR", ScopeConnection},
	CodeFrameTooLarge:      {"FRAME_TOO_LARGE", ScopeConnection},
	CodeUnsupportedVersion: {"UNSUPPORTED_VERSION", ScopeConnection},
	CodeAuthFailed:         {"AUTH_FAILED", ScopeEither},
	CodeIdleTimeout:        {"IDLE_TIMEOUT", ScopeConnection},
	CodeSlowConsumer:       {"SLOW_CONSUMER", ScopeConnection},
	CodeRateLimited:        {"RATE_LIMITED", ScopeEither},
	CodeResumeFailed:       {"RESUME_FAILED", ScopeConnection},
	CodeMessageTooLarge:    {"MESSAGE_TOO_LARGE", ScopeConnection},
	CodeCompressionError:   {"COMPRESSION_ERROR", ScopeConnection},
	CodeGoingAway:          {"GOING_AWAY", ScopeConnection},
	CodeInternal:           {"INTERNAL", ScopeEither},
	CodeHandshakeTimeout:   {"HANDSHAKE_TIMEOUT", ScopeConnection},
	CodeFragmentLimit:      {"FRAGMENT_LIMIT", ScopeConnection},
	CodeReassemblyTimeout:  {"REASSEMBLY_TIMEOUT", ScopeConnection},
	CodeSessionTakenOver:   {"SESSION_TAKEN_OVER", ScopeConnection},
	CodeTooManyConnections: {"TOO_MANY_CONNECTIONS", ScopeConnection},
	CodeNoSuchRoute:        {"NO_SUCH_ROUTE", ScopeRequest},
	CodeNoSuchClient:       {"NO_SUCH_CLIENT", ScopeRequest},
	CodeQueueFull:          {"QUEUE_FULL", ScopeRequest},
	CodeExpired:            {"EXPIRED", ScopeRequest},
	CodeForbidden:          {"FORBIDDEN", ScopeRequest},
	CodeInvalidTopic:       {"INVALID_TOPIC", ScopeRequest},
	CodeDuplicateClient:    {"DUPLICATE_CLIENT", ScopeConnection},
	CodeHandlerError:       {"HANDLER_ERROR", ScopeRequest},
}

func (c ErrorCode) String() string {
	if e, ok := errorInfos[c]; ok {
		return e.name
	}
	return "UNKNOWN_ERROR(0x" + hex16(uint16(c)) + ")"
}

// Known reports whether c is in the registry.
func (c ErrorCode) Known() bool {
	_, ok := errorInfos[c]
	return ok
}

// Scope returns where c may be used; 0 for an unknown code.
func (c ErrorCode) Scope() ErrorScope { return errorInfos[c].scope }

// ErrorCodes returns the registry, sorted by code.
func ErrorCodes() []ErrorCode {
	cs := make([]ErrorCode, 0, len(errorInfos))
	for c := range errorInfos {
		cs = append(cs, c)
	}
	for i := 1; i < len(cs); i++ {
		for j := i; j > 0 && cs[j] < cs[j-1]; j-- {
			cs[j], cs[j-1] = cs[j-1], cs[j]
		}
	}
	return cs
}
