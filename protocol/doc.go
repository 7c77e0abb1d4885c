// Package protocol is the vocabulary of FERRY/1 (docs/SPEC.md): frame types,
// flags, lanes, header layout, limits and error codes, named one to one with
// the spec. It holds constants and small value types only; it does no I/O and
// imports nothing of ours, so every other package (and the client) can share it.
//
// The frame header, SPEC §3:
//
//	+---------------+---------------+---------------+---------------+
//	|                      Length (32, big-endian)                  |
//	+---------------+---------------+-----------+---+---------------+
//	|   Type (8)    |   Flags (8)   | Rsvd (6)  |L 2|  body ...
//	+---------------+---------------+-----------+---+
//
// Length counts the bytes after the length field, so a frame occupies
// 4+Length bytes on the wire. The registries in this package (FrameType,
// ErrorCode, the flags) are checked against the tables in docs/SPEC.md by a
// test, so the two cannot drift.
//
// All values are plain constants and are safe from any goroutine.
package protocol
