package topic

import (
	"errors"

	"github.com/ferry-proto/ferry/protocol"
)

// MaxLevels is the most '/'-separated levels a topic or pattern may have.
// It bounds the depth of the trie, and so the recursion of Match.
const MaxLevels = 32

// Validation errors. The router answers every one of them with RESULT
// INVALID_TOPIC (SPEC §7.5: a server "answers INVALID_TOPIC to patterns it
// cannot use"; §6.2: "An empty topic is well formed but invalid"). Compare
// with errors.Is.
var (
	ErrEmpty         = errors.New("topic: empty topic or pattern")
	ErrTooLong       = errors.New("topic: longer than 1024 bytes")
	ErrTooManyLevels = errors.New("topic: more than 32 levels")
	ErrNUL           = errors.New("topic: contains U+0000")
	ErrWildcard      = errors.New("topic: wildcard in a topic name")
	ErrPlacement     = errors.New("topic: wildcard not alone in its level, or '#' not last")
)

// ValidTopic reports whether topic may be published to: a topic name in the
// sense of MQTT §4.7. It must be 1 to protocol.MaxTopicLen bytes with at most
// MaxLevels levels, contain no '+', '#' or NUL, and may have empty levels
// ("a//b", "/a", "a/"). It does not check UTF-8: SPEC §1.2 says receivers
// do not validate it, and no byte of a multi-byte UTF-8 sequence can be '/',
// '+', '#' or '$', so matching never depends on it. A topic starting with
// '$' is valid here; whether a client may publish to one is the router's
// policy. Safe from any goroutine; allocates nothing.
func ValidTopic(topic []byte) error {
	if len(topic) == 0 {
		return ErrEmpty // MQTT §4.7.3: at least one character long
	}
	if len(topic) > protocol.MaxTopicLen {
		return ErrTooLong
	}
	levels := 1
	for _, c := range topic {
		switch c {
		case '/':
			levels++
		case '+', '#':
			// MQTT §4.7.1: "The wildcard characters ... MUST NOT be
			// used within a Topic Name."
			return ErrWildcard
		case 0:
			// MQTT §4.7.3: topic names "MUST NOT include the null
			// character (Unicode U+0000)".
			return ErrNUL
		}
	}
	if levels > MaxLevels {
		return ErrTooManyLevels
	}
	return nil
}

// ValidPattern reports whether pattern may be subscribed to: a topic filter
// in the sense of MQTT §4.7. The limits of ValidTopic apply, and '+' and '#'
// must each fill a whole level, '#' only as the last one ("#", "a/#",
// "+/b/+" are valid; "a#", "a/#/b", "a/b+", "+a" are not). Safe from any
// goroutine; allocates nothing.
func ValidPattern(pattern []byte) error {
	if len(pattern) == 0 {
		return ErrEmpty // MQTT §4.7.3; SPEC §7.5: Pattern is 1 to 1,024 bytes
	}
	if len(pattern) > protocol.MaxTopicLen {
		return ErrTooLong
	}
	levels := 1
	start := 0 // index of the first byte of the current level
	for i, c := range pattern {
		switch c {
		case '/':
			levels++
			start = i + 1
		case '+':
			// MQTT §4.7.1.3: "The single-level wildcard ... MUST occupy
			// an entire level of the filter."
			if i != start || (i+1 < len(pattern) && pattern[i+1] != '/') {
				return ErrPlacement
			}
		case '#':
			// MQTT §4.7.1.2: "The multi-level wildcard character MUST be
			// specified either on its own or following a topic level
			// separator. In either case it MUST be the last character
			// specified in the Topic Filter."
			if i != start || i+1 != len(pattern) {
				return ErrPlacement
			}
		case 0:
			return ErrNUL // MQTT §4.7.3
		}
	}
	if levels > MaxLevels {
		return ErrTooManyLevels
	}
	return nil
}
