package degrade_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/degrade"
	"github.com/bulwark-go/bulwark/internal/metrictest"
)

// fakeLimiter records SetLimit and SetBurst, as ratelimit's limiters would
// take them.
type fakeLimiter struct {
	mu       sync.Mutex
	limit    rate.Limit
	burst    int
	failWith error
}

func (l *fakeLimiter) Name() string { return "api-limit" }

func (l *fakeLimiter) SetLimit(r rate.Limit) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failWith != nil {
		return l.failWith
	}
	l.limit = r
	return nil
}

func (l *fakeLimiter) SetBurst(b int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.burst = b
	return nil
}

func (l *fakeLimiter) get() (rate.Limit, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.limit, l.burst
}

type fixture struct {
	reg  *bulwark.Registry
	sw   *degrade.Switch
	sh   *degrade.Shedder
	lim  *fakeLimiter
	logs *bytes.Buffer
	mr   *metrictest.Reader
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{reg: bulwark.NewRegistry(), sw: degrade.NewSwitch("recommendations"),
		sh: degrade.NewShedder("api"), lim: &fakeLimiter{limit: 10, burst: 5}, logs: &bytes.Buffer{}, mr: metrictest.New(t)}
	f.reg.Register(f.sw, f.sh)
	f.reg.RegisterAs("api-limiter", f.lim)
	f.reg.RegisterAs("plain", struct{ x int }{1})
	return f
}

func (f *fixture) opts() []degrade.LoadOption {
	return []degrade.LoadOption{degrade.WithLogger(slog.New(slog.NewTextHandler(f.logs, nil))), degrade.WithMeterProvider(f.mr.Provider), nil}
}

func (f *fixture) load(doc string) error {
	return degrade.Load(f.reg, strings.NewReader(doc), f.opts()...)
}

const goodDoc = `{
	"switches": {"recommendations": {"on": true, "reason": "INC-7"}},
	"shedders": {"api": {"level": 2}},
	"limiters": {"api-limiter": {"limit": 200.5, "burst": 50}}
}`

func TestLoadGood(t *testing.T) {
	f := newFixture(t)
	if err := f.load(goodDoc); err != nil {
		t.Fatalf("Load() = %v, want nil", err)
	}
	if st := f.sw.Status(); !st.On || st.Source != "config" || st.Reason != "INC-7" || !st.Overridden {
		t.Errorf("switch Status() = %+v, want on from config, INC-7", st)
	}
	if st := f.sh.Status(); st.Level != 2 || st.Source != "config" || st.Reason != "config" {
		t.Errorf("shedder Status() = %+v, want level 2 from config, reason config", st)
	}
	if l, b := f.lim.get(); l != 200.5 || b != 50 {
		t.Errorf("limiter = %v, %d, want 200.5, 50", l, b)
	}
	if got := f.mr.Int64Total("bulwark.degrade.config.loads", "bulwark.reason", "applied"); got != 1 {
		t.Errorf("config.loads{applied} = %d, want 1", got)
	}
	if !strings.Contains(f.logs.String(), "config applied") {
		t.Errorf("log = %q, want it to say the config was applied", f.logs.String())
	}
	// Loading the same document again records nothing new.
	n := len(f.sw.Snapshot().Events)
	if err := f.load(goodDoc); err != nil {
		t.Fatal(err)
	}
	if m := len(f.sw.Snapshot().Events); m != n {
		t.Errorf("reloading the same document recorded %d events, want none", m-n)
	}
	// A document without the switch hands it back.
	if err := f.load(`{"limiters": {"api-limiter": {"burst": 7}}}`); err != nil {
		t.Fatal(err)
	}
	if st := f.sw.Status(); st.On || st.Source != "" {
		t.Errorf("switch after a document without it = %+v, want off, no source", st)
	}
	if l, b := f.lim.get(); l != 200.5 || b != 7 {
		t.Errorf("limiter = %v, %d, want the limit kept (200.5) and burst 7", l, b)
	}
}

func TestLoadRejected(t *testing.T) {
	tests := []struct {
		name string
		give string
		want string // in the error
	}{
		{"empty", ``, "EOF"},
		{"not JSON", `switches: on`, "invalid character"},
		{"truncated", `{"switches": {"recommendations": {"on": tr`, "unexpected"},
		{"two documents", `{} {}`, "data after the document"},
		{"array", `[]`, "cannot unmarshal"},
		{"unknown field", `{"switchs": {}}`, "unknown field"},
		{"unknown entry field", `{"switches": {"recommendations": {"on": true, "reson": "x"}}}`, "unknown field"},
		{"unknown switch", `{"switches": {"nope": {"on": true}}}`, `switch "nope" is not registered`},
		{"unknown shedder", `{"shedders": {"nope": {"level": 1}}}`, `shedder "nope" is not registered`},
		{"unknown limiter", `{"limiters": {"nope": {"limit": 1}}}`, `limiter "nope" is not registered`},
		{"switch is a shedder", `{"switches": {"api": {"on": true}}}`, "not a *degrade.Switch"},
		{"shedder is a switch", `{"shedders": {"recommendations": {"level": 1}}}`, "not a *degrade.Shedder"},
		{"limiter is a switch", `{"limiters": {"recommendations": {"limit": 1}}}`, "no SetLimit"},
		{"limiter is a plain value", `{"limiters": {"plain": {"limit": 1}}}`, "no SetLimit"},
		{"switch without on", `{"switches": {"recommendations": {"reason": "x"}}}`, `"on" is required`},
		{"on not bool", `{"switches": {"recommendations": {"on": "yes"}}}`, "cannot unmarshal"},
		{"shedder without level", `{"shedders": {"api": {}}}`, `"level" is required`},
		{"level 4", `{"shedders": {"api": {"level": 4}}}`, "level must be"},
		{"level -1", `{"shedders": {"api": {"level": -1}}}`, "level must be"},
		{"level float", `{"shedders": {"api": {"level": 1.5}}}`, "cannot unmarshal"},
		{"level huge", `{"shedders": {"api": {"level": 99999999999999999999999}}}`, "cannot unmarshal"},
		{"limiter empty", `{"limiters": {"api-limiter": {}}}`, `"limit" or "burst" is required`},
		{"limit negative", `{"limiters": {"api-limiter": {"limit": -1}}}`, "limit must be"},
		{"limit huge", `{"limiters": {"api-limiter": {"limit": 1e400}}}`, "cannot unmarshal"},
		{"burst negative", `{"limiters": {"api-limiter": {"burst": -1}}}`, "burst must be"},
		{"good part and bad part", `{"switches": {"recommendations": {"on": false}}, "shedders": {"api": {"level": 9}}}`, "level must be"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			if err := f.load(goodDoc); err != nil {
				t.Fatal(err)
			}
			err := f.load(tt.give)
			if !errors.Is(err, degrade.ErrConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Load() = %v, want ErrConfig saying %q", err, tt.want)
			}
			// The last good state is kept.
			if st := f.sw.Status(); !st.On || st.Reason != "INC-7" {
				t.Errorf("switch = %+v, want the last good state (on, INC-7)", st)
			}
			if l := f.sh.Level(); l != 2 {
				t.Errorf("shedder level = %d, want the last good 2", l)
			}
			if l, b := f.lim.get(); l != 200.5 || b != 50 {
				t.Errorf("limiter = %v, %d, want the last good 200.5, 50", l, b)
			}
			if got := f.mr.Int64Total("bulwark.degrade.config.loads", "bulwark.reason", "invalid"); got != 1 {
				t.Errorf("config.loads{invalid} = %d, want 1", got)
			}
			if !strings.Contains(f.logs.String(), "last good state kept") {
				t.Errorf("log = %q, want the rejection logged", f.logs.String())
			}
		})
	}
}

func TestLoadReportsEveryProblem(t *testing.T) {
	f := newFixture(t)
	err := f.load(`{"switches": {"a": {"on": true}, "b": {"on": true}}, "shedders": {"api": {"level": 7}}}`)
	for _, want := range []string{`"a" is not registered`, `"b" is not registered`, "level must be"} {
		if !strings.Contains(fmt.Sprint(err), want) {
			t.Errorf("Load() = %v, want it to say %s", err, want)
		}
	}
}

func TestLoadLimiterError(t *testing.T) {
	f := newFixture(t)
	f.lim.failWith = errors.New("limit too high")
	err := f.load(goodDoc)
	if err == nil || errors.Is(err, degrade.ErrConfig) || !strings.Contains(err.Error(), "limit too high") {
		t.Fatalf("Load() = %v, want the limiter's error, not ErrConfig", err)
	}
	if !f.sw.On() {
		t.Error("the switch was not applied alongside a failing limiter")
	}
	if _, b := f.lim.get(); b != 50 {
		t.Errorf("burst = %d, want 50 (SetBurst applied though SetLimit failed)", b)
	}
}

func TestLoadTooLarge(t *testing.T) {
	f := newFixture(t)
	doc := `{"switches": {}}` + strings.Repeat(" ", 4<<20)
	if err := f.load(doc); !errors.Is(err, degrade.ErrConfig) || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("Load() = %v, want ErrConfig: larger than", err)
	}
}

func TestLoadFile(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "degrade.json")
	if err := degrade.LoadFile(f.reg, path, f.opts()...); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadFile(missing) = %v, want os.ErrNotExist", err)
	}
	if err := os.WriteFile(path, []byte(`{"shedders": {"api": {"level": 1}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := degrade.LoadFile(f.reg, path, f.opts()...); err != nil {
		t.Fatal(err)
	}
	if st := f.sh.Status(); st.Level != 1 || st.Reason != "config "+path {
		t.Errorf("Status() = %+v, want level 1, reason naming the file", st)
	}
	if got := f.mr.Int64Total("bulwark.degrade.config.loads", "bulwark.reason", "error"); got != 1 {
		t.Errorf("config.loads{error} = %d, want 1 for the missing file", got)
	}
}

func TestConcurrentLoad(t *testing.T) {
	f := newFixture(t)
	docs := []string{
		`{"switches": {"recommendations": {"on": true}}, "shedders": {"api": {"level": 1}}}`,
		`{"switches": {"recommendations": {"on": false}}, "shedders": {"api": {"level": 3}}}`,
		`{"shedders": {"api": {"level": 9}}}`,
		`{}`,
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 50 {
				_ = degrade.Load(f.reg, strings.NewReader(docs[(w+i)%len(docs)]), quiet())
				_ = f.sw.On()
				_ = f.sh.Snapshot()
				if i%7 == 0 {
					f.sw.Set(true, "race")
					f.sw.Release()
				}
			}
		})
	}
	wg.Wait()
	// The end state is that of one good document, never a mix.
	on, lvl := f.sw.On(), f.sh.Level()
	ok := on && lvl == 1 || !on && f.sw.Status().Source == "config" && lvl == 3 || !on && lvl == 0
	if !ok {
		t.Errorf("after concurrent loads: switch on %v, level %d: a mix of documents", on, lvl)
	}
}

func TestWatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		path := filepath.Join(t.TempDir(), "degrade.json")
		write := func(s string) {
			t.Helper()
			if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		write(`{"switches": {"recommendations": {"on": true, "reason": "v1"}}}`)
		var (
			mu    sync.Mutex
			loads []string
		)
		opts := append(f.opts(), degrade.WithOnLoad(func(err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				loads = append(loads, "error")
			} else {
				loads = append(loads, "ok")
			}
		}))
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- degrade.Watch(ctx, f.reg, path, time.Second, opts...) }()
		synctest.Wait()
		if st := f.sw.Status(); !st.On || st.Reason != "v1" {
			t.Fatalf("after Watch started: %+v, want on, v1", st)
		}
		step := func() { time.Sleep(time.Second); synctest.Wait() }

		write(`{"switches": {"recommendations": {"on": false, "reason": "v2"}}}`)
		step()
		if st := f.sw.Status(); st.On || st.Reason != "v2" {
			t.Fatalf("after an edit: %+v, want off, v2", st)
		}
		write(`{"switches": {"recommendations": {"on": tru`) // broken
		step()
		step() // reported once
		if st := f.sw.Status(); st.On || st.Reason != "v2" {
			t.Fatalf("after a broken edit: %+v, want the last good state (off, v2)", st)
		}
		f.sw.Set(true, "operator")
		write(`{"switches": {"recommendations": {"on": false, "reason": "v3"}}}`)
		step()
		if st := f.sw.Status(); !st.On || st.Source != "manual" {
			t.Fatalf("a reload beat the manual override: %+v", st)
		}
		f.sw.Release()
		if st := f.sw.Status(); st.On || st.Reason != "v3" {
			t.Fatalf("after release: %+v, want off, v3 from the file", st)
		}
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		step()
		step()
		if st := f.sw.Status(); st.Reason != "v3" {
			t.Fatalf("a missing file changed the state: %+v", st)
		}
		write(`{"switches": {"recommendations": {"on": false, "reason": "v3"}}}`) // back, same content
		step()
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Watch() = %v, want context.Canceled", err)
		}
		mu.Lock()
		defer mu.Unlock()
		if got, want := strings.Join(loads, ","), "ok,ok,error,ok,error,ok"; got != want {
			t.Errorf("loads = %s, want %s", got, want)
		}
		if got := f.mr.Int64Total("bulwark.degrade.config.loads", "bulwark.reason", "invalid"); got != 1 {
			t.Errorf("config.loads{invalid} = %d, want 1 (a broken file is reported once)", got)
		}
	})
}

func TestLoadOneSwitchUnderTwoNames(t *testing.T) {
	reg := bulwark.NewRegistry()
	sw := degrade.NewSwitch("recs")
	reg.Register(sw)
	reg.RegisterAs("recommendations", sw)
	for range 3 {
		if err := degrade.Load(reg, strings.NewReader(`{"switches": {"recs": {"on": true}}}`), quiet()); err != nil {
			t.Fatal(err)
		}
		if !sw.On() {
			t.Fatal("a switch named in the document under one of its names was turned off by the other")
		}
	}
}
