package degrade

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"
	"golang.org/x/time/rate"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/internal/telemetry"
)

// Config is the document [Load], [LoadFile] and [Watch] apply:
//
//	{
//	  "switches": {"recommendations": {"on": true, "reason": "INC-1234"}},
//	  "shedders": {"api": {"level": 1, "reason": "black friday"}},
//	  "limiters": {"api": {"limit": 200, "burst": 50}}
//	}
//
// Every name must be registered in the [bulwark.Registry] as a value of
// the right kind: a *[Switch], a *[Shedder], a limiter with SetLimit and
// SetBurst ([Limiter]). Unknown fields are errors, so a typo is reported
// rather than ignored.
//
// The document is the whole config state of the registry's switches and
// shedders: a switch or shedder it no longer names loses its config value
// and goes back to its trigger (or off). A manual override beats any
// config value; config beats a trigger. Limiters keep the last values set.
type Config struct {
	Switches map[string]SwitchConfig  `json:"switches,omitempty"`
	Shedders map[string]ShedderConfig `json:"shedders,omitempty"`
	Limiters map[string]LimiterConfig `json:"limiters,omitempty"`
}

// SwitchConfig is a switch's entry in a [Config]. On is required.
type SwitchConfig struct {
	On     *bool  `json:"on"`
	Reason string `json:"reason,omitempty"`
}

// ShedderConfig is a shedder's entry in a [Config]. Level is required,
// 0 … 3.
type ShedderConfig struct {
	Level  *int   `json:"level"`
	Reason string `json:"reason,omitempty"`
}

// LimiterConfig is a limiter's entry in a [Config]: its rate in events per
// second (>= 0) and its burst (>= 0); at least one is required.
type LimiterConfig struct {
	Limit *float64 `json:"limit,omitempty"`
	Burst *int     `json:"burst,omitempty"`
}

// Limiter is what a limiter named in the "limiters" of a [Config] must
// implement; ratelimit's limiters do. degrade does not import ratelimit.
type Limiter interface {
	SetLimit(rate.Limit) error
	SetBurst(int) error
}

// ErrConfig is wrapped by the errors of a config document that was not
// applied: malformed, invalid or naming what is not registered.
var ErrConfig = errors.New("degrade: bad config")

// maxConfigSize bounds the document Load reads.
const maxConfigSize = 4 << 20

// loadMu serialises the loaders, so that concurrent loads end in the state
// of one document, never a mix.
var loadMu sync.Mutex

// Load reads a [Config] document from r and applies it to the switches,
// shedders and limiters registered in reg, as source "config". The whole
// document is checked before anything is applied: a malformed document, a
// bad value or an unknown name returns an error wrapping [ErrConfig] and
// changes nothing, so the last good state stays in force. Errors of a
// limiter's SetLimit or SetBurst are returned after the rest was applied.
// Every outcome is logged ([WithLogger]) and counted in
// bulwark.degrade.config.loads. It panics if reg is nil.
func Load(reg *bulwark.Registry, r io.Reader, opts ...LoadOption) error {
	o := newLoadOptions(opts)
	return load(reg, r, "", o)
}

// LoadFile is [Load] of the file at path; its changes' default reason
// names the file.
func LoadFile(reg *bulwark.Registry, path string, opts ...LoadOption) error {
	o := newLoadOptions(opts)
	data, err := readConfig(path)
	if err != nil {
		o.report(context.Background(), err, path)
		return err
	}
	return load(reg, bytes.NewReader(data), path, o)
}

func load(reg *bulwark.Registry, r io.Reader, path string, o loadOptions) error {
	if reg == nil {
		panic("degrade: Load: nil registry")
	}
	err := apply(reg, r, path)
	o.report(context.Background(), err, path)
	return err
}

func apply(reg *bulwark.Registry, r io.Reader, path string) error {
	data, err := io.ReadAll(io.LimitReader(r, maxConfigSize+1))
	if err != nil {
		return fmt.Errorf("degrade: config%s: %w", where(path), err)
	}
	if len(data) > maxConfigSize {
		return fmt.Errorf("degrade: config%s: larger than %d bytes: %w", where(path), maxConfigSize, ErrConfig)
	}
	var cfg Config
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return fmt.Errorf("degrade: config%s: %v: %w", where(path), err, ErrConfig)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("degrade: config%s: data after the document: %w", where(path), ErrConfig)
	}
	plan, err := check(reg, &cfg)
	if err != nil {
		return fmt.Errorf("degrade: config%s: %w", where(path), err)
	}
	defReason := "config"
	if path != "" {
		defReason = "config " + path
	}
	orDefault := func(s string) string {
		if s == "" {
			return defReason
		}
		return s
	}

	loadMu.Lock()
	defer loadMu.Unlock()
	// What the document names is set; what it does not name (under any
	// of its registered names) loses its config value.
	named := map[*core]bool{}
	for name, v := range reg.All() {
		switch v := v.(type) {
		case *Switch:
			if sc, ok := cfg.Switches[name]; ok {
				named[v.c] = true
				v.c.set(srcConfig, layer{set: true, level: b2i(*sc.On), reason: orDefault(sc.Reason)}, "")
			}
		case *Shedder:
			if sc, ok := cfg.Shedders[name]; ok {
				named[v.c] = true
				v.c.set(srcConfig, layer{set: true, level: *sc.Level, reason: orDefault(sc.Reason)}, "")
			}
		}
	}
	for _, v := range reg.All() {
		var c *core
		switch v := v.(type) {
		case *Switch:
			c = v.c
		case *Shedder:
			c = v.c
		}
		if c != nil && !named[c] {
			c.set(srcConfig, layer{}, "no longer in "+defReason)
		}
	}
	var errs []error
	for _, name := range plan.limiters {
		lc, l := cfg.Limiters[name], plan.lims[name]
		if lc.Limit != nil {
			if err := l.SetLimit(rate.Limit(*lc.Limit)); err != nil {
				errs = append(errs, fmt.Errorf("degrade: config%s: limiter %q: SetLimit(%v): %w", where(path), name, *lc.Limit, err))
			}
		}
		if lc.Burst != nil {
			if err := l.SetBurst(*lc.Burst); err != nil {
				errs = append(errs, fmt.Errorf("degrade: config%s: limiter %q: SetBurst(%d): %w", where(path), name, *lc.Burst, err))
			}
		}
	}
	return errors.Join(errs...)
}

type plan struct {
	limiters []string // sorted, for a deterministic order
	lims     map[string]Limiter
}

// check validates cfg against reg; every problem is reported at once.
func check(reg *bulwark.Registry, cfg *Config) (plan, error) {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format+": %w", append(args, ErrConfig)...))
	}
	for _, name := range sortedKeys(cfg.Switches) {
		v, ok := reg.Lookup(name)
		switch _, isSwitch := v.(*Switch); {
		case !ok:
			bad("switch %q is not registered", name)
		case !isSwitch:
			bad("%q is registered as a %T, not a *degrade.Switch", name, v)
		case cfg.Switches[name].On == nil:
			bad(`switch %q: "on" is required`, name)
		}
	}
	for _, name := range sortedKeys(cfg.Shedders) {
		v, ok := reg.Lookup(name)
		switch _, isShedder := v.(*Shedder); {
		case !ok:
			bad("shedder %q is not registered", name)
		case !isShedder:
			bad("%q is registered as a %T, not a *degrade.Shedder", name, v)
		case cfg.Shedders[name].Level == nil:
			bad(`shedder %q: "level" is required`, name)
		case *cfg.Shedders[name].Level < 0 || *cfg.Shedders[name].Level > MaxLevel:
			bad("shedder %q: level must be 0, 1, 2 or 3, got %d", name, *cfg.Shedders[name].Level)
		}
	}
	p := plan{lims: map[string]Limiter{}}
	for _, name := range sortedKeys(cfg.Limiters) {
		v, ok := reg.Lookup(name)
		l, isLimiter := v.(Limiter)
		lc := cfg.Limiters[name]
		switch {
		case !ok:
			bad("limiter %q is not registered", name)
		case !isLimiter:
			bad("%q is registered as a %T, which has no SetLimit(rate.Limit) error and SetBurst(int) error", name, v)
		case lc.Limit == nil && lc.Burst == nil:
			bad(`limiter %q: "limit" or "burst" is required`, name)
		case lc.Limit != nil && (!(*lc.Limit >= 0) || math.IsInf(*lc.Limit, 0)):
			bad("limiter %q: limit must be a number >= 0, got %v", name, *lc.Limit)
		case lc.Burst != nil && *lc.Burst < 0:
			bad("limiter %q: burst must be >= 0, got %d", name, *lc.Burst)
		default:
			p.limiters = append(p.limiters, name)
			p.lims[name] = l
		}
	}
	return p, errors.Join(errs...)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func where(path string) string {
	if path == "" {
		return ""
	}
	return " " + path
}

// Watch applies the config file at path ([LoadFile]) and then reads it
// again every interval, applying it when its content changed, until ctx
// ends; it returns ctx's error then. (It compares content rather than
// modification times, which file systems keep too coarsely to see two
// quick edits of the same size.) An invalid
// file or an unknown name is reported (logged, counted, passed to
// [WithOnLoad]) and the last good state kept; a missing file too, once
// per new error. A file touched without a change of content is not applied
// again. Manual overrides made meanwhile stay in force whatever the file
// says (see [Config]).
//
// Watch blocks: run it on a goroutine that the context owns. It panics if
// reg is nil or interval is not positive.
func Watch(ctx context.Context, reg *bulwark.Registry, path string, interval time.Duration, opts ...LoadOption) error {
	if reg == nil {
		panic("degrade: Watch: nil registry")
	}
	if interval <= 0 {
		panic("degrade: Watch: interval must be > 0, got " + interval.String())
	}
	o := newLoadOptions(opts)
	w := &watcher{reg: reg, path: path, o: o}
	w.check(ctx)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			w.check(ctx)
		}
	}
}

type watcher struct {
	reg     *bulwark.Registry
	path    string
	o       loadOptions
	content []byte // the last content tried
	// readFailed and applyFailed say how the last check ended.
	readFailed, applyFailed bool
	lastErr                 string // the last error reported, so a broken file is reported once
}

func (w *watcher) check(ctx context.Context) {
	data, err := readConfig(w.path)
	if err != nil {
		w.readFailed = true
		w.fail(ctx, err)
		return
	}
	readFailed := w.readFailed
	w.readFailed = false
	if w.content != nil && bytes.Equal(data, w.content) {
		if !readFailed || w.applyFailed {
			return
		}
		// The file is back as it was applied: nothing to apply, but
		// the error is over.
	} else {
		w.content = data
		if err := apply(w.reg, bytes.NewReader(data), w.path); err != nil {
			w.applyFailed = true
			w.fail(ctx, err)
			return
		}
	}
	w.applyFailed = false
	w.lastErr = ""
	w.o.report(ctx, nil, w.path)
	if w.o.onLoad != nil {
		w.o.onLoad(nil)
	}
}

// readConfig reads the file at path, at most maxConfigSize+1 bytes.
func readConfig(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("degrade: config %s: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("degrade: config %s: %w", path, err)
	}
	return data, nil
}

// fail reports err unless it is the one reported last.
func (w *watcher) fail(ctx context.Context, err error) {
	if err.Error() == w.lastErr {
		return
	}
	w.lastErr = err.Error()
	w.o.report(ctx, err, w.path)
	if w.o.onLoad != nil {
		w.o.onLoad(err)
	}
}

// report logs and counts one load attempt.
func (o loadOptions) report(ctx context.Context, err error, path string) {
	result := "applied"
	switch {
	case err == nil:
		o.logger.LogAttrs(ctx, slog.LevelInfo, "degrade: config applied", slog.String("path", path))
	case errors.Is(err, ErrConfig):
		result = "invalid"
	default:
		result = "error"
	}
	if err != nil {
		o.logger.LogAttrs(ctx, slog.LevelError, "degrade: config rejected, last good state kept",
			slog.String("path", path), slog.String("error", err.Error()))
	}
	loadCounter(o.mp).Add(ctx, 1, metric.WithAttributes(keyResult.String(result)))
}

var keyResult = telemetry.KeyReason // bulwark.reason: applied|invalid|error

// loadCounter returns the bulwark.degrade.config.loads counter of mp (the
// global provider when nil); instruments are made once per provider.
func loadCounter(mp metric.MeterProvider) metric.Int64Counter {
	meter := telemetry.Meter(mp, "degrade")
	return telemetry.Int64Counter(meter, "bulwark.degrade.config.loads",
		"Attempts to apply a degrade config document, by result (bulwark.reason = applied|invalid|error).", "{load}")
}
