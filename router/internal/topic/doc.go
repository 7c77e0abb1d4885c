// Package topic is the router's subscription index for PUBLISH and
// SUBSCRIBE (SPEC §6.2, §7.5): it validates topic names and patterns, and
// finds the subscribers of a topic.
//
// Topics are '/'-separated byte strings ("game/7/pos"). Patterns use the
// MQTT wildcards as SPEC §7.5 recommends, with the semantics of MQTT 3.1.1
// and 5.0 §4.7:
//
//   - '+' matches exactly one level, an empty one included: "a/+" matches
//     "a/b" and "a/", not "a" or "a/b/c".
//   - '#' matches any number of remaining levels, zero included, so
//     "sport/#" matches "sport", "sport/" and "sport/x/y". It must be the
//     last level.
//   - Each wildcard fills a whole level: "a+", "a/b#" are invalid.
//   - A pattern whose first level is a wildcard does not match a topic whose
//     first level starts with '$': "#" and "+/x" do not match "$SYS/x";
//     "$SYS/#" does.
//   - Empty levels are levels: "a//b", "/a" and "a/" are distinct topics,
//     matched by "a/+/b", "+/a" and "a/+".
//   - Matching is byte by byte and case sensitive (SPEC §1.2).
//
// Usage:
//
//	t := topic.New[*session]()
//	if err := topic.ValidPattern(p); err != nil {
//		// RESULT INVALID_TOPIC
//	}
//	t.Subscribe(p, sess)
//	...
//	if err := topic.ValidTopic(name); err != nil {
//		// RESULT INVALID_TOPIC
//	}
//	t.Match(name, func(s *session) { s.deliver(msg) })
//	...
//	t.UnsubscribeAll(sess) // session over
//
// Limits: topics and patterns are 1 to 1,024 bytes (protocol.MaxTopicLen)
// with at most MaxLevels (32) levels and no NUL byte; UTF-8 is not checked
// (SPEC §1.2). Match recurses at most MaxLevels+1 deep whatever the topic.
// Memory is proportional to the live subscriptions: Unsubscribe frees the
// nodes it empties. Maps do not shrink in Go, so a node whose children once
// numbered many keeps that table while any child is left.
//
// Cost: Match walks one path per literal level plus one per '+' branch
// that exists, so it is independent of the number of subscriptions that do
// not match, and allocates nothing in steady state; the subscribers it
// finds are deduplicated with a per-call generation array, not a map.
//
// Goroutines: every method is safe from any goroutine. Match and
// AppendMatches share a read lock and run in parallel (publishers on
// different event loops); Subscribe, Unsubscribe and UnsubscribeAll take
// the write lock. Match calls its callback after releasing the lock.
package topic
