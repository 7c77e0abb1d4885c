package protocol

// Verdict is a CONFIRM's answer to a message sent with APP_ACK (SPEC §7.7,
// §12.10). Values above ConfirmRejected are not defined: a receiver closes
// with PROTOCOL_ERROR when it sees one.
type Verdict uint8

// Verdicts, SPEC §7.7.
const (
	// ConfirmProcessed: the receiving application processed the message.
	// The sender stops tracking it.
	ConfirmProcessed Verdict = 0
	// ConfirmRejected: the receiving application did not process it (a
	// NACK). The sender redelivers it after a backoff, or dead-letters it.
	ConfirmRejected Verdict = 1
)

var verdictNames = [...]string{
	ConfirmProcessed: "PROCESSED",
	ConfirmRejected:  "REJECTED",
}

// Known reports whether v is a verdict defined by this revision.
func (v Verdict) Known() bool { return int(v) < len(verdictNames) }

func (v Verdict) String() string {
	if v.Known() {
		return verdictNames[v]
	}
	return "UNKNOWN_VERDICT(" + itoa(uint64(v)) + ")"
}

// Verdicts lists the defined verdicts in registry order.
func Verdicts() []Verdict {
	vs := make([]Verdict, len(verdictNames))
	for i := range vs {
		vs[i] = Verdict(i)
	}
	return vs
}
