//go:build race

package idempotency_test

import "testing"

// Under the race detector a million keys take minutes: the same check on
// fewer (the 1 000 000 run is in norace_test.go).
func TestMemoryStoreManyKeys(t *testing.T) { manyKeys(t, 50_000) }
