package topic_test

import (
	"fmt"
	"slices"

	"github.com/ferry-proto/ferry/router/internal/topic"
)

func Example() {
	t := topic.New[string]()
	for _, sub := range []struct{ pattern, who string }{
		{"game/7/pos", "exact"},
		{"game/+/pos", "one-level"},
		{"game/#", "subtree"},
		{"game/#", "twice"},
		{"game/7/+", "twice"}, // two matching patterns, one delivery
		{"#", "all"},
	} {
		if err := topic.ValidPattern([]byte(sub.pattern)); err != nil {
			panic(err)
		}
		t.Subscribe([]byte(sub.pattern), sub.who)
	}

	for _, name := range []string{"game/7/pos", "game", "$SYS/load"} {
		got := t.AppendMatches(nil, []byte(name))
		slices.Sort(got)
		fmt.Println(name, got)
	}
	fmt.Println(topic.ValidTopic([]byte("game/+/pos")))
	fmt.Println(topic.ValidPattern([]byte("game/#/pos")))
	// Output:
	// game/7/pos [all exact one-level subtree twice]
	// game [all subtree twice]
	// $SYS/load []
	// topic: wildcard in a topic name
	// topic: wildcard not alone in its level, or '#' not last
}
