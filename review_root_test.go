package bulwark_test

import (
	"encoding/json"
	"math"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark"
)

// An EventLog whose Size changes after first use keeps the new number of
// events (the newest ones), rather than the size it started with.
func TestEventLogResize(t *testing.T) {
	l := bulwark.EventLog{Size: 3}
	for i := range 5 {
		l.Add(bulwark.Event{To: strconv.Itoa(i)})
	}
	l.Size = 5
	l.Add(bulwark.Event{To: "5"})
	l.Add(bulwark.Event{To: "6"})
	if got := tos(l.Events()); got != "2,3,4,5,6" {
		t.Errorf("Events() after growing to 5 = %s, want 2,3,4,5,6", got)
	}
	l.Size = 2
	if got := tos(l.Events()); got != "5,6" {
		t.Errorf("Events() after shrinking to 2 = %s, want 5,6", got)
	}
	if e, ok := l.Last(); !ok || e.To != "6" {
		t.Errorf("Last() = %v, %v, want 6, true", e, ok)
	}
	l.Add(bulwark.Event{To: "7"})
	if got := tos(l.Events()); got != "6,7" {
		t.Errorf("Events() = %s, want 6,7", got)
	}
	l.Size = -4 // below 1: the default
	for i := range bulwark.DefaultEventLogSize + 1 {
		l.Add(bulwark.Event{To: strconv.Itoa(100 + i)})
	}
	if n := len(l.Events()); n != bulwark.DefaultEventLogSize {
		t.Errorf("len(Events()) with a negative Size = %d, want %d", n, bulwark.DefaultEventLogSize)
	}
}

func TestEventLogConcurrent(t *testing.T) {
	var l bulwark.EventLog
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range 200 {
				l.Add(bulwark.Event{To: strconv.Itoa(g*1000 + i)})
			}
		}()
		go func() {
			defer wg.Done()
			for range 200 {
				if n := len(l.Events()); n > bulwark.DefaultEventLogSize {
					t.Errorf("len(Events()) = %d, want ≤ %d", n, bulwark.DefaultEventLogSize)
					return
				}
				l.Last()
			}
		}()
	}
	wg.Wait()
	if n := len(l.Events()); n != bulwark.DefaultEventLogSize {
		t.Errorf("len(Events()) = %d, want %d", n, bulwark.DefaultEventLogSize)
	}
}

func tos(evs []bulwark.Event) string {
	s := ""
	for i, e := range evs {
		if i > 0 {
			s += ","
		}
		s += e.To
	}
	return s
}

// A figure that is not a number (a ratio of 0 / 0) or infinite must not
// make a whole snapshot impossible to encode: JSON has no such numbers,
// so it is encoded as null.
func TestFigureNonFiniteJSON(t *testing.T) {
	snap := bulwark.Snapshot{Name: "x", Figures: []bulwark.Figure{
		{Name: "nan", Value: math.NaN()},
		{Name: "inf", Value: math.Inf(1), Unit: "s"},
		{Name: "-inf", Value: math.Inf(-1)},
		{Name: "ok", Value: 1.5, Unit: "1"},
	}}
	b, err := json.Marshal(snap)
	if err != nil {
		t.Fatalf("json.Marshal(snapshot with NaN) = %v, want no error", err)
	}
	const want = `"figures":[{"name":"nan","value":null},{"name":"inf","value":null,"unit":"s"},{"name":"-inf","value":null},{"name":"ok","value":1.5,"unit":"1"}]`
	if !contains(string(b), want) {
		t.Errorf("json = %s, want it to contain %s", b, want)
	}
	var back bulwark.Snapshot
	if err := json.Unmarshal(b, &back); err != nil || len(back.Figures) != 4 || back.Figures[3].Value != 1.5 {
		t.Errorf("round trip = %+v, %v", back, err)
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

type aliasSnap struct{ own string }

func (a *aliasSnap) Name() string { return a.own }
func (a *aliasSnap) Snapshot() bulwark.Snapshot {
	return bulwark.Snapshot{Name: a.own, Kind: "test", State: "ok"}
}

// A value registered under another name appears under the name it is
// registered as: that is the name Lookup (and the admin page's actions)
// find it by; two registrations of one value are two distinct rows.
func TestSnapshotsUseRegisteredNames(t *testing.T) {
	reg := bulwark.NewRegistry()
	v := &aliasSnap{own: "recs"}
	reg.Register(v)
	reg.RegisterAs("recommendations", v)
	reg.RegisterAs("other", &aliasSnap{own: "someone-else"})
	var got []string
	for _, s := range reg.Snapshots() {
		got = append(got, s.Name)
		if _, ok := reg.Lookup(s.Name); !ok {
			t.Errorf("snapshot %q: Lookup finds nothing by its name", s.Name)
		}
	}
	if want := "recs,recommendations,other"; join(got) != want {
		t.Errorf("Snapshots() names = %s, want %s", join(got), want)
	}
}

func join(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ","
		}
		out += x
	}
	return out
}

type ptrNamed struct{ name string }

func (p *ptrNamed) Name() string { return p.name }

// A typed nil pointer is a nil value too: Register says so, instead of
// dying in the value's Name method.
func TestRegisterTypedNil(t *testing.T) {
	for _, tt := range []struct {
		name string
		give func(*bulwark.Registry)
	}{
		{"Register", func(r *bulwark.Registry) { r.Register((*ptrNamed)(nil)) }},
		{"RegisterAs", func(r *bulwark.Registry) { r.RegisterAs("x", (*ptrNamed)(nil)) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				r := recover()
				s, _ := r.(string)
				if r == nil || !contains(s, "bulwark: Registry") || !contains(s, "nil") {
					t.Errorf("panic = %v, want bulwark's own message about a nil value", r)
				}
			}()
			tt.give(bulwark.NewRegistry())
		})
	}
}

// The JSON field names of a snapshot are documented as stable: this pins
// them, so a rename fails here before it breaks a dashboard.
func TestSnapshotJSONFields(t *testing.T) {
	at := mustTime("2026-12-04T10:00:00Z")
	snap := bulwark.Snapshot{
		Name: "n", Kind: "k", State: "s", Health: "warn",
		Figures: []bulwark.Figure{{Name: "f", Value: 2, Unit: "s"}},
		Changed: at, Source: "manual", Reason: "r",
		Events:  []bulwark.Event{{Time: at, From: "a", To: "b", Source: "automatic", Reason: "why"}},
		Actions: []bulwark.Action{{Name: "set", Label: "Set", Params: []bulwark.Param{{Name: "p", Label: "P", Kind: bulwark.ParamChoice, Choices: []string{"x"}, Required: true, Default: "x", Help: "h"}}}},
	}
	b, err := json.Marshal(snap)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"name":"n","kind":"k","state":"s","health":"warn","figures":[{"name":"f","value":2,"unit":"s"}],"changed":"2026-12-04T10:00:00Z","source":"manual","reason":"r","events":[{"time":"2026-12-04T10:00:00Z","from":"a","to":"b","source":"automatic","reason":"why"}],"actions":[{"name":"set","label":"Set","params":[{"name":"p","label":"P","kind":"choice","choices":["x"],"required":true,"default":"x","help":"h"}]}]}`
	if string(b) != want {
		t.Errorf("json =\n%s\nwant\n%s", b, want)
	}
	if b, _ := json.Marshal(bulwark.Snapshot{Name: "n"}); string(b) != `{"name":"n","kind":"","state":""}` {
		t.Errorf("empty snapshot json = %s, want the optional fields left out", b)
	}
}

func mustTime(s string) time.Time {
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return tm
}
