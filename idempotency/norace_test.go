//go:build !race

package idempotency_test

import "testing"

func TestMemoryStoreMillionKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("1 000 000 keys")
	}
	manyKeys(t, 1_000_000)
}
