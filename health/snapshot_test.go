package health_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/health"
)

var _ bulwark.Snapshotter = (*health.Checker)(nil)

func TestSnapshot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := health.New()
		defer c.Close()
		db := &errBox{}
		c.Register("db", func(context.Context) error { return db.err }, health.WithMinInterval(0))
		c.Register("cache", fail, health.WithCritical(false))
		c.Register("never", pass)
		c.Register("loop", fail, health.WithKind(health.Liveness))

		if s := c.Snapshot(); s.State != "ready" || s.Health != "ok" || len(s.Figures) != 0 || len(s.Events) != 0 {
			t.Errorf("before any run: %+v, want ready, ok, nothing", s)
		}
		ctx := context.Background()
		c.Check(ctx, health.Readiness, "never")
		c.Check(ctx, health.Liveness)
		s := c.Snapshot()
		if s.Name != "health" || s.Kind != "health" || s.State != "ready" || s.Health != "warn" {
			t.Errorf("warn: %+v, want health/health ready warn (a liveness failure is not readiness)", s)
		}
		want := map[string]float64{"db": 1, "cache": 0.5, "loop": 0}
		if len(s.Figures) != len(want) {
			t.Errorf("Figures = %+v, want %v", s.Figures, want)
		}
		for _, f := range s.Figures {
			if want[f.Name] != f.Value || f.Unit != "1" {
				t.Errorf("figure %+v, want %v", f, want[f.Name])
			}
		}
		time.Sleep(time.Second)
		db.err = errBoom
		c.Check(ctx, health.Readiness, "never")
		s = c.Snapshot()
		if s.State != "not ready" || s.Health != "fail" {
			t.Errorf("db failing: %s %s, want not ready, fail", s.State, s.Health)
		}
		// cache and loop began failing (first results that are not a pass),
		// db went from pass to fail; db's first pass is no event.
		if len(s.Events) != 3 {
			t.Fatalf("Events = %+v, want 3", s.Events)
		}
		last := s.Events[2]
		if last.From != "pass" || last.To != "fail" || last.Reason != "db: boom" || last.Source != "automatic" || !last.Time.Equal(time.Now()) {
			t.Errorf("last event = %+v, want pass → fail, db: boom, automatic, now", last)
		}
		if s.Changed != last.Time || s.Reason != "db: boom" {
			t.Errorf("Changed %v, Reason %q; want the last event's", s.Changed, s.Reason)
		}
		c.StartDrain()
		if s := c.Snapshot(); s.State != "draining" || s.Health != "fail" || s.Events[len(s.Events)-1].To != "draining" {
			t.Errorf("draining: %+v", s)
		}
	})
}

type errBox struct{ err error }
