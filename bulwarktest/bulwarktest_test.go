package bulwarktest_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulwarktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestGoodPolicyPasses(t *testing.T) {
	bulwarktest.TestPolicy(t, func() bulwark.Policy { return bulwark.Timeout(time.Second) })
}

// slotPolicy is a one-slot bulkhead; its broken variants each break one
// rule of the contract.
type slotPolicy struct {
	busy          atomic.Bool
	ignoreCtx     bool // calls fn under an ended context
	leakOnPanic   bool // forgets to free the slot when fn panics
	swallowPanic  bool // recovers fn's panic
	wrapErrors    bool // changes fn's error
	leakGoroutine bool // leaves a goroutine behind
}

func (p *slotPolicy) Do(ctx context.Context, fn func(context.Context) error) error {
	if !p.ignoreCtx {
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	if !p.busy.CompareAndSwap(false, true) {
		return bulwark.ErrUnavailable
	}
	if p.leakGoroutine {
		go func() { select {} }()
	}
	if p.swallowPanic {
		defer func() { _ = recover() }()
	}
	if !p.leakOnPanic {
		defer p.busy.Store(false)
	}
	err := fn(ctx)
	if p.leakOnPanic {
		p.busy.Store(false)
	}
	if err != nil && p.wrapErrors {
		return context.Canceled
	}
	return err
}

var broken = map[string]func() *slotPolicy{
	"ignoresEndedContext": func() *slotPolicy { return &slotPolicy{ignoreCtx: true} },
	"leaksSlotOnPanic":    func() *slotPolicy { return &slotPolicy{leakOnPanic: true} },
	"swallowsPanic":       func() *slotPolicy { return &slotPolicy{swallowPanic: true} },
	"changesFnError":      func() *slotPolicy { return &slotPolicy{wrapErrors: true} },
	"leaksGoroutine":      func() *slotPolicy { return &slotPolicy{leakGoroutine: true} },
}

func TestSlotPolicyPasses(t *testing.T) {
	bulwarktest.TestPolicy(t, func() bulwark.Policy { return &slotPolicy{} })
}

// TestBrokenPolicy runs the suite on one broken policy when asked to by
// TestBrokenPoliciesFail, in a child process.
func TestBrokenPolicy(t *testing.T) {
	name := os.Getenv("BULWARKTEST_BROKEN")
	if name == "" {
		t.Skip("run by TestBrokenPoliciesFail")
	}
	bulwarktest.TestPolicy(t, func() bulwark.Policy { return broken[name]() })
}

func TestBrokenPoliciesFail(t *testing.T) {
	for name := range broken {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenPolicy$", "-test.count=1")
			cmd.Env = append(os.Environ(), "BULWARKTEST_BROKEN="+name)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the contract suite passed a policy that %s:\n%s", name, out)
			}
			if !strings.Contains(string(out), "--- FAIL: TestBrokenPolicy/") {
				t.Errorf("the child failed without a failing subtest:\n%s", out)
			}
		})
	}
}
