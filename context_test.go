package bulwark_test

import (
	"context"
	"testing"

	"github.com/bulwark-go/bulwark"
)

func TestLookupPriority(t *testing.T) {
	bg := context.Background()
	tests := []struct {
		name     string
		give     context.Context
		wantPrio bulwark.Priority
		wantSet  bool
	}{
		{"empty", bg, bulwark.Critical, false},
		{"key alone", bulwark.WithKey(bg, "tenant"), bulwark.Critical, false},
		{"attempt alone", bulwark.WithAttempt(bg, 2), bulwark.Critical, false},
		{"critical set", bulwark.WithPriority(bg, bulwark.Critical), bulwark.Critical, true},
		{"critical set, then key", bulwark.WithKey(bulwark.WithPriority(bg, bulwark.Critical), "k"), bulwark.Critical, true},
		{"sheddable set, then attempt", bulwark.WithAttempt(bulwark.WithPriority(bg, bulwark.Sheddable), 3), bulwark.Sheddable, true},
		{"CallInfo with a lower tier", bulwark.WithCallInfo(bg, bulwark.CallInfo{Priority: bulwark.SheddablePlus}), bulwark.SheddablePlus, true},
		{"CallInfo zero", bulwark.WithCallInfo(bg, bulwark.CallInfo{Key: "k"}), bulwark.Critical, false},
		{"CallInfo critical marked", bulwark.WithCallInfo(bg, bulwark.CallInfo{PrioritySet: true}), bulwark.Critical, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, ok := bulwark.LookupPriority(tt.give)
			if p != tt.wantPrio || ok != tt.wantSet {
				t.Errorf("LookupPriority() = %v, %v, want %v, %v", p, ok, tt.wantPrio, tt.wantSet)
			}
			if got := bulwark.PriorityFrom(tt.give); got != tt.wantPrio {
				t.Errorf("PriorityFrom() = %v, want %v", got, tt.wantPrio)
			}
		})
	}
	ctx := bulwark.WithPriority(bg, bulwark.Sheddable)
	if n := testing.AllocsPerRun(100, func() { _, _ = bulwark.LookupPriority(ctx) }); n != 0 {
		t.Errorf("LookupPriority allocs = %v, want 0", n)
	}
}

func TestCallContext(t *testing.T) {
	type key struct{}
	parent := context.WithValue(context.Background(), key{}, "v")
	var c bulwark.CallContext
	c.Init(parent, bulwark.CallInfo{Priority: bulwark.Sheddable, Key: "k"})
	if p, ok := bulwark.LookupPriority(&c); p != bulwark.Sheddable || !ok {
		t.Errorf("LookupPriority = %v, %v, want sheddable, true", p, ok)
	}
	if bulwark.KeyFrom(&c) != "k" || c.Value(key{}) != "v" {
		t.Error("CallContext lost its key or its parent's values")
	}
	// Later layers see through it, as through WithCallInfo's.
	ctx := bulwark.WithAttempt(&c, 2)
	if bulwark.PriorityFrom(ctx) != bulwark.Sheddable || bulwark.AttemptFrom(ctx) != 2 {
		t.Error("WithAttempt over a CallContext lost its info")
	}
}
