package bulwark_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark"
)

type named struct {
	name  string
	state string
}

func (n *named) Name() string { return n.name }
func (n *named) Snapshot() bulwark.Snapshot {
	return bulwark.Snapshot{Name: n.name, Kind: "test", State: n.state}
}

func TestRegistry(t *testing.T) {
	reg := bulwark.NewRegistry()
	a, b := &named{name: "a", state: "on"}, &named{name: "b", state: "off"}
	reg.Register(a, b)
	reg.RegisterAs("plain", 42)
	reg.RegisterAs("renamed", &named{state: "x"})

	var names []string
	for n := range reg.All() {
		names = append(names, n)
	}
	if want := []string{"a", "b", "plain", "renamed"}; !slices.Equal(names, want) {
		t.Errorf("All() names = %v, want %v", names, want)
	}
	if v, ok := reg.Lookup("b"); !ok || v != b {
		t.Errorf("Lookup(b) = %v, %v, want %v, true", v, ok, b)
	}
	snaps := reg.Snapshots()
	var got []string
	for _, s := range snaps {
		got = append(got, s.Name+"="+s.State)
	}
	if want := []string{"a=on", "b=off", "renamed=x"}; !slices.Equal(got, want) {
		t.Errorf("Snapshots() = %v, want %v (non-snapshotters skipped, empty names filled)", got, want)
	}
	reg.Unregister("a")
	reg.Unregister("missing")
	if _, ok := reg.Lookup("a"); ok {
		t.Error("Lookup(a) after Unregister found it")
	}
	// The loop body may change the registry.
	for n := range reg.All() {
		reg.Unregister(n)
	}
	if n := len(reg.Snapshots()); n != 0 {
		t.Errorf("len(Snapshots()) after unregistering all = %d, want 0", n)
	}
}

func TestRegistryPanics(t *testing.T) {
	tests := []struct {
		name string
		give func(*bulwark.Registry)
	}{
		{"nil value", func(r *bulwark.Registry) { r.RegisterAs("x", nil) }},
		{"nil named", func(r *bulwark.Registry) { r.Register(nil) }},
		{"empty name", func(r *bulwark.Registry) { r.RegisterAs("", 1) }},
		{"duplicate", func(r *bulwark.Registry) { r.RegisterAs("x", 1); r.RegisterAs("x", 2) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic, want one")
				}
			}()
			tt.give(bulwark.NewRegistry())
		})
	}
}

func TestEventLog(t *testing.T) {
	var l bulwark.EventLog
	if _, ok := l.Last(); ok {
		t.Error("Last() on an empty log found an event")
	}
	l.Size = 3
	t0 := time.Unix(0, 0)
	for i := range 5 {
		l.Add(bulwark.Event{Time: t0.Add(time.Duration(i) * time.Second), To: fmt.Sprint(i)})
	}
	var got []string
	for _, e := range l.Events() {
		got = append(got, e.To)
	}
	if want := []string{"2", "3", "4"}; !slices.Equal(got, want) {
		t.Errorf("Events() = %v, want %v", got, want)
	}
	if e, ok := l.Last(); !ok || e.To != "4" {
		t.Errorf("Last() = %v, %v, want 4, true", e.To, ok)
	}
	var d bulwark.EventLog
	for i := range bulwark.DefaultEventLogSize + 7 {
		d.Add(bulwark.Event{To: fmt.Sprint(i)})
	}
	if ev := d.Events(); len(ev) != bulwark.DefaultEventLogSize || ev[0].To != "7" {
		t.Errorf("zero EventLog kept %d events starting at %q, want %d starting at 7", len(ev), ev[0].To, bulwark.DefaultEventLogSize)
	}
}

type degradedErr struct{ name string }

func (e degradedErr) Error() string    { return "degraded" }
func (e degradedErr) Degraded() string { return e.name }

func TestDegradedAndDrill(t *testing.T) {
	err := fmt.Errorf("wrapped: %w", errors.Join(bulwark.ErrUnavailable, degradedErr{"recs"}))
	if n, ok := bulwark.Degraded(err); !ok || n != "recs" {
		t.Errorf("Degraded() = %q, %v, want recs, true", n, ok)
	}
	if _, ok := bulwark.Degraded(bulwark.ErrUnavailable); ok {
		t.Error("Degraded(ErrUnavailable) found a name")
	}
	if _, ok := bulwark.Degraded(degradedErr{}); ok {
		t.Error("Degraded() of an empty name = ok, want not ok")
	}
	ctx := context.Background()
	if got := bulwark.DrillFrom(ctx); got != "" {
		t.Errorf("DrillFrom(background) = %q, want empty", got)
	}
	if got := bulwark.DrillFrom(bulwark.WithDrill(ctx, "d1")); got != "d1" {
		t.Errorf("DrillFrom() = %q, want d1", got)
	}
}
