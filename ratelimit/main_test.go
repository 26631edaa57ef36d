package ratelimit_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/bulwark-go/bulwark"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// t0 is the start of the tests that pass explicit times.
var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// tierCtx returns a context of tier p.
func tierCtx(p bulwark.Priority) context.Context {
	return bulwark.WithPriority(context.Background(), p)
}

// tiers lists the tiers from the least important, as Priority.Index does.
var tiers = [bulwark.NumPriorities]bulwark.Priority{
	bulwark.Sheddable, bulwark.SheddablePlus, bulwark.Critical, bulwark.CriticalPlus,
}
