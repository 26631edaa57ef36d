package ratelimit_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/ratelimit"
)

func figures(s bulwark.Snapshot) map[string]float64 {
	m := map[string]float64{}
	for _, f := range s.Figures {
		m[f.Name] = f.Value
	}
	return m
}

func TestLimiterSnapshot(t *testing.T) {
	l := ratelimit.New("api", rate.Every(time.Hour), 10)
	s := l.Snapshot()
	if s.Name != "api" || s.Kind != "ratelimit" || s.State != "ok" || s.Health != "" {
		t.Errorf("Snapshot() = %q %q %q %q, want api ratelimit ok", s.Name, s.Kind, s.State, s.Health)
	}
	for range 7 {
		_ = l.Allow(tierCtx(bulwark.Sheddable)) // 5 admitted, 2 refused
	}
	s = l.Snapshot()
	f := figures(s)
	want := map[string]float64{"burst": 10, "allowed": 5, "refused": 2, "refused sheddable": 2, "refused critical": 0}
	for name, w := range want {
		if f[name] != w {
			t.Errorf("figure %s = %v, want %v", name, f[name], w)
		}
	}
	if f["tokens"] < 5 || f["tokens"] > 5.01 {
		t.Errorf("figure tokens = %v, want 5", f["tokens"])
	}
	if f["limit"] != float64(rate.Every(time.Hour)) {
		t.Errorf("figure limit = %v, want %v", f["limit"], float64(rate.Every(time.Hour)))
	}
	if s.State != "shedding" || s.Health != "warn" {
		t.Errorf("state = %q/%q with Sheddable refused, want shedding/warn", s.State, s.Health)
	}
	for range 5 {
		_ = l.Allow(tierCtx(bulwark.CriticalPlus))
	}
	if s := l.Snapshot(); s.State != "empty" || s.Health != "fail" {
		t.Errorf("state = %q/%q with nothing left, want empty/fail", s.State, s.Health)
	}
	if s := ratelimit.New("free", rate.Inf, 1).Snapshot(); s.State != "unlimited" {
		t.Errorf("rate.Inf state = %q, want unlimited", s.State)
	}
}

func TestKeyedSnapshot(t *testing.T) {
	k := ratelimit.NewKeyed("tenants", rate.Every(time.Hour), 1, ratelimit.WithMaxKeys(1))
	_ = k.Allow(keyCtx("a"))
	_ = k.Allow(keyCtx("b")) // overflow, admitted
	_ = k.Allow(keyCtx("c")) // overflow, refused
	s := k.Snapshot()
	f := figures(s)
	want := map[string]float64{"keys": 1, "max keys": 1, "overflow": 2, "allowed": 2, "refused": 1, "burst": 1}
	for name, w := range want {
		if f[name] != w {
			t.Errorf("figure %s = %v, want %v", name, f[name], w)
		}
	}
	if s.Kind != "ratelimit" || s.State != "overflow" || s.Health != "warn" {
		t.Errorf("Snapshot() kind %q state %q/%q, want ratelimit overflow/warn", s.Kind, s.State, s.Health)
	}
}

func TestControl(t *testing.T) {
	type controlled interface {
		bulwark.Controller
		bulwark.Snapshotter
		bulwark.Named
		Limit() rate.Limit
		Burst() int
	}
	for _, l := range []controlled{ratelimit.New("api", 10, 20), ratelimit.NewKeyed("api", 10, 20)} {
		reg := bulwark.NewRegistry()
		reg.Register(l)
		acts := l.Actions()
		if len(acts) != 1 || acts[0].Name != "set-limit" || len(acts[0].Params) != 2 ||
			acts[0].Params[0].Name != "limit" || acts[0].Params[0].Kind != bulwark.ParamFloat ||
			acts[0].Params[1].Name != "burst" || acts[0].Params[1].Kind != bulwark.ParamInt {
			t.Fatalf("Actions() = %+v, want set-limit(limit float, burst int)", acts)
		}
		ctx := context.Background()
		for _, bad := range []struct {
			action string
			args   map[string]string
		}{
			{"force-open", nil},
			{"set-limit", nil},
			{"set-limit", map[string]string{"limit": "abc"}},
			{"set-limit", map[string]string{"limit": "-1"}},
			{"set-limit", map[string]string{"limit": "0"}},
			{"set-limit", map[string]string{"limit": "NaN"}},
			{"set-limit", map[string]string{"limit": "-Inf"}},
			{"set-limit", map[string]string{"burst": "0"}},
			{"set-limit", map[string]string{"burst": "1.5"}},
			{"set-limit", map[string]string{"burst": "99999999999999999999999"}},
			{"set-limit", map[string]string{"limit": "5", "burst": "-1"}},
			{"set-limit", map[string]string{"rate": "5"}},
		} {
			if err := l.Control(ctx, bad.action, bad.args, "x"); !errors.Is(err, bulwark.ErrInvalidControl) {
				t.Errorf("Control(%s, %v) = %v, want ErrInvalidControl", bad.action, bad.args, err)
			}
		}
		if l.Limit() != 10 || l.Burst() != 20 || len(l.Snapshot().Events) != 0 {
			t.Fatalf("bad controls changed the limiter: %v, %d, %d events", l.Limit(), l.Burst(), len(l.Snapshot().Events))
		}
		if err := l.Control(ctx, "set-limit", map[string]string{"limit": "5", "burst": "3"}, "incident 42"); err != nil {
			t.Fatalf("Control() = %v", err)
		}
		if l.Limit() != 5 || l.Burst() != 3 {
			t.Errorf("after set-limit: Limit(), Burst() = %v, %d, want 5, 3", l.Limit(), l.Burst())
		}
		if err := l.Control(ctx, "set-limit", map[string]string{"limit": "inf", "burst": ""}, "load test"); err != nil {
			t.Fatalf("Control(limit inf) = %v", err)
		}
		if l.Limit() != rate.Inf || l.Burst() != 3 {
			t.Errorf("after set-limit inf: Limit(), Burst() = %v, %d, want Inf, 3", l.Limit(), l.Burst())
		}
		s := reg.Snapshots()
		if len(s) != 1 {
			t.Fatalf("Registry.Snapshots() = %d snapshots, want 1", len(s))
		}
		if s[0].Source != "manual" || s[0].Reason != "load test" || len(s[0].Events) != 2 {
			t.Fatalf("snapshot source %q reason %q events %+v, want manual, load test, 2 events", s[0].Source, s[0].Reason, s[0].Events)
		}
		e := s[0].Events[0]
		if e.From != "limit 10/s, burst 20" || e.To != "limit 5/s, burst 3" || e.Source != "manual" || e.Reason != "incident 42" {
			t.Errorf("event = %+v, want limit 10/s, burst 20 → limit 5/s, burst 3, manual, incident 42", e)
		}
		// A change made in code is recorded with source config.
		_ = l.(interface{ SetBurst(int) error }).SetBurst(4)
		if s := l.Snapshot(); s.Source != "config" || s.Events[len(s.Events)-1].To != "limit inf/s, burst 4" {
			t.Errorf("after SetBurst: source %q, last event %+v, want config, limit inf/s, burst 4", s.Source, s.Events[len(s.Events)-1])
		}
	}
}
