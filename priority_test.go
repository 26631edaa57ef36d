package bulwark_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/bulwark-go/bulwark"
)

func TestParsePriority(t *testing.T) {
	tests := []struct {
		give    string
		want    bulwark.Priority
		wantErr bool
	}{
		{"critical-plus", bulwark.CriticalPlus, false},
		{"critical", bulwark.Critical, false},
		{"sheddable-plus", bulwark.SheddablePlus, false},
		{"sheddable", bulwark.Sheddable, false},
		{"CRITICAL_PLUS", bulwark.CriticalPlus, false},
		{"Sheddable_Plus", bulwark.SheddablePlus, false},
		{"SHEDDABLE", bulwark.Sheddable, false},
		{"", bulwark.Critical, true},
		{"critical plus", bulwark.Critical, true},
		{"criticalplus", bulwark.Critical, true},
		{" critical", bulwark.Critical, true},
		{"high", bulwark.Critical, true},
		{"1", bulwark.Critical, true},
		{strings.Repeat("x", 10000), bulwark.Critical, true},
	}
	for _, tt := range tests {
		name := tt.give
		if len(name) > 20 {
			name = name[:20]
		}
		t.Run(name, func(t *testing.T) {
			got, err := bulwark.ParsePriority(tt.give)
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("ParsePriority(%.20q) = %v, %v, want %v, error %v", tt.give, got, err, tt.want, tt.wantErr)
			}
			if err != nil && !errors.Is(err, bulwark.ErrInvalidPriority) {
				t.Errorf("error %v does not wrap ErrInvalidPriority", err)
			}
			if err != nil && len(err.Error()) > 120 {
				t.Errorf("error message is %d bytes long, want it bounded", len(err.Error()))
			}
		})
	}
}

func TestPriorityOrderAndIndex(t *testing.T) {
	ps := bulwark.Priorities
	for i := 1; i < len(ps); i++ {
		if !(ps[i-1] > ps[i]) || ps[i-1].Index() != ps[i].Index()+1 {
			t.Errorf("%v vs %v: order or index wrong", ps[i-1], ps[i])
		}
	}
	if bulwark.Priority(0) != bulwark.Critical {
		t.Error("the zero Priority is not Critical")
	}
	if got := bulwark.Priority(9).Index(); got != bulwark.Critical.Index() {
		t.Errorf("Priority(9).Index() = %d, want Critical's %d", got, bulwark.Critical.Index())
	}
	if got := bulwark.Priority(9).String(); got != "Priority(9)" {
		t.Errorf("String() = %q", got)
	}
}

func TestParsePriorityAllocs(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { _, _ = bulwark.ParsePriority("Sheddable_Plus") }); n != 0 {
		t.Errorf("ParsePriority allocs = %v, want 0", n)
	}
}

func FuzzParsePriority(f *testing.F) {
	for _, s := range []string{"critical-plus", "CRITICAL_PLUS", "sheddable", "", "x", "critical-plu"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := bulwark.ParsePriority(s)
		if err != nil {
			if p != bulwark.Critical {
				t.Errorf("ParsePriority(%q) = %v with error, want Critical", s, p)
			}
			return
		}
		if !p.Valid() {
			t.Fatalf("ParsePriority(%q) = invalid %v", s, p)
		}
		norm := strings.ReplaceAll(strings.ToLower(s), "_", "-")
		if norm != p.String() {
			t.Errorf("ParsePriority(%q) = %v, but the normalised input is %q", s, p, norm)
		}
		// The wire form round-trips.
		if q, err := bulwark.ParsePriority(p.String()); err != nil || q != p {
			t.Errorf("round trip of %v = %v, %v", p, q, err)
		}
	})
}

func TestCallInfo(t *testing.T) {
	ctx := context.Background()
	if got := bulwark.CallInfoFrom(ctx); got != (bulwark.CallInfo{}) {
		t.Errorf("CallInfoFrom(empty) = %+v, want zero", got)
	}
	if bulwark.AttemptFrom(ctx) != 1 {
		t.Error("AttemptFrom(empty) != 1")
	}
	ctx = bulwark.WithPriority(ctx, bulwark.Sheddable)
	ctx = bulwark.WithKey(ctx, "tenant-a")
	ctx = bulwark.WithAttempt(ctx, 3)
	if p, k, a := bulwark.PriorityFrom(ctx), bulwark.KeyFrom(ctx), bulwark.AttemptFrom(ctx); p != bulwark.Sheddable || k != "tenant-a" || a != 3 {
		t.Errorf("got %v %q %d, want sheddable tenant-a 3", p, k, a)
	}
	ctx = bulwark.WithPriority(ctx, bulwark.CriticalPlus)
	if k := bulwark.KeyFrom(ctx); k != "tenant-a" {
		t.Errorf("WithPriority lost the key: %q", k)
	}
	if n := testing.AllocsPerRun(100, func() { _ = bulwark.CallInfoFrom(ctx) }); n != 0 {
		t.Errorf("CallInfoFrom allocs = %v, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { sinkCtx = bulwark.WithCallInfo(ctx, bulwark.CallInfo{Key: "k"}) }); n != 1 {
		t.Errorf("WithCallInfo allocs = %v, want 1", n)
	}
}

func TestQuotaRecorderKeepsLeastRemaining(t *testing.T) {
	var r bulwark.QuotaRecorder
	if _, ok := r.Quota(); ok {
		t.Fatal("empty recorder has a quota")
	}
	r.Record(bulwark.Quota{Name: "a", Remaining: 5})
	r.Record(bulwark.Quota{Name: "b", Remaining: 2})
	r.Record(bulwark.Quota{Name: "c", Remaining: 9})
	if q, ok := r.Quota(); !ok || q.Name != "b" {
		t.Errorf("Quota() = %+v, %v, want b", q, ok)
	}
}

var sinkCtx context.Context
