package topic

import (
	"testing"

	"go.uber.org/goleak"
)

// The concurrency test starts goroutines; every one must be gone at the end.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
