package ratelimit_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulwarktest"
	"github.com/bulwark-go/bulwark/internal/metrictest"
	"github.com/bulwark-go/bulwark/internal/redistest"
	"github.com/bulwark-go/bulwark/ratelimit"
)

// redisTime is Redis's clock.
func redisTime(t *testing.T, c *redis.Client) time.Time {
	t.Helper()
	now, err := c.Time(context.Background()).Result()
	if err != nil {
		t.Fatalf("TIME: %v", err)
	}
	return now
}

// answerWithin fails t when f takes longer than max: a decision must never
// hang on a dead or stuck Redis (max is far above the 50 ms timeout, for a
// loaded machine).
func answerWithin[T any](t *testing.T, what string, max time.Duration, f func() T) T {
	t.Helper()
	start := time.Now()
	v := f()
	if d := time.Since(start); d > max {
		t.Errorf("%s took %v, want an answer within %v (timeout 50 ms)", what, d, max)
	}
	return v
}

// patient gives decisions that must come from Redis time enough on a
// loaded machine: with the default 50 ms, a slow round trip fails open.
var patient = ratelimit.WithTimeout(10 * time.Second)

var redisNames atomic.Int64

// uniqueName gives every limiter of a test its own Redis key.
func uniqueName(prefix string) string {
	return prefix + "-" + strconv.FormatInt(redisNames.Add(1), 10)
}

func TestRedisSharedBudget(t *testing.T) {
	srv := redistest.Start(t)
	c1, c2 := srv.Client(), srv.Client()
	const limit, burst = 10, 10
	a := ratelimit.NewRedis("fleet", c1, limit, burst, patient)
	b := ratelimit.NewRedis("fleet", c2, limit, burst, patient)
	ctx := tierCtx(bulwark.CriticalPlus)
	// Each admission is bracketed by Redis times read before and after it:
	// the first and last admissions' own times lie within their brackets,
	// whatever the test's stalls.
	var firstBefore, firstAfter, lastBefore, lastAfter time.Time
	admitted := 0
	deadline := time.Now().Add(time.Second)
	for n := 0; time.Now().Before(deadline) && n < 100_000; n++ {
		l := a
		if n%2 == 1 {
			l = b
		}
		before := redisTime(t, c1)
		if !l.Allow(ctx) {
			continue
		}
		after := redisTime(t, c1)
		if admitted == 0 {
			firstBefore, firstAfter = before, after
		}
		lastBefore, lastAfter = before, after
		admitted++
	}
	// From the first admission to the last, the bucket gives its burst and
	// the whole tokens of limit × the time between them.
	most := burst + limit*lastAfter.Sub(firstBefore).Seconds()
	least := burst + math.Floor(limit*lastBefore.Sub(firstAfter).Seconds())
	t.Logf("admitted %d between %v and %v of Redis time: want [%.2f, %.2f] ± 1", admitted,
		lastBefore.Sub(firstAfter), lastAfter.Sub(firstBefore), least, most)
	if float64(admitted) > most+1 || float64(admitted) < least-1 {
		t.Errorf("two instances admitted %d, want burst + limit × elapsed within ±1: [%.2f, %.2f]", admitted, least, most)
	}
}

func TestRedisTiersFleetWide(t *testing.T) {
	srv := redistest.Start(t)
	a := ratelimit.NewRedis("tiers", srv.Client(), rate.Every(time.Hour), 20, patient)
	b := ratelimit.NewRedis("tiers", srv.Client(), rate.Every(time.Hour), 20, patient)
	count := func(l *ratelimit.Redis, p bulwark.Priority) int {
		n := 0
		for l.Allow(tierCtx(p)) {
			if n++; n > 100 {
				t.Fatal("no end")
			}
		}
		return n
	}
	// Reserves of 20: Sheddable 10, SheddablePlus 5, Critical 1.
	for _, tt := range []struct {
		name string
		l    *ratelimit.Redis
		tier bulwark.Priority
		want int
	}{
		{"a sheddable", a, bulwark.Sheddable, 10},
		{"b sheddable", b, bulwark.Sheddable, 0},
		{"b sheddable-plus", b, bulwark.SheddablePlus, 5},
		{"a sheddable-plus", a, bulwark.SheddablePlus, 0},
		{"a critical", a, bulwark.Critical, 4},
		{"b critical-plus", b, bulwark.CriticalPlus, 1},
		{"a critical-plus", a, bulwark.CriticalPlus, 0},
	} {
		if got := count(tt.l, tt.tier); got != tt.want {
			t.Errorf("%s: admitted %d, want %d", tt.name, got, tt.want)
		}
	}
	// The refusal carries the local limiter's error, hint and quota.
	err := a.Do(tierCtx(bulwark.Sheddable), okFn)
	var le *ratelimit.LimitedError
	if !errors.As(err, &le) || !errors.Is(err, ratelimit.ErrLimited) || !errors.Is(err, bulwark.ErrUnavailable) || le.Priority() != bulwark.Sheddable {
		t.Fatalf("Do() = %v, want a Sheddable *LimitedError wrapping ErrLimited and ErrUnavailable", err)
	}
	q, _ := bulwark.QuotaFrom(err)
	// 11 tokens short of Sheddable's 10 + 1 at one per hour.
	if d, _ := bulwark.RetryAfter(err); d < 10*time.Hour || d > 11*time.Hour || q.Limit != 20 || q.Remaining != 0 || q.Reset != d || q.Window != 20*time.Hour {
		t.Errorf("RetryAfter() = %v, Quota() = %+v, want ~11h, q=20, r=0, w=20h", d, q)
	}
}

func TestRedisHintAndQuota(t *testing.T) {
	srv := redistest.Start(t)
	l := ratelimit.NewRedis("hint", srv.Client(), 10, 5, patient)
	var rec bulwark.QuotaRecorder
	ctx := bulwark.WithCallInfo(context.Background(), bulwark.CallInfo{Priority: bulwark.CriticalPlus, Quota: &rec})
	if !l.Allow(ctx) {
		t.Fatal("first call refused")
	}
	if q, ok := rec.Quota(); !ok || q.Limit != 5 || q.Remaining != 4 || q.Window != 500*time.Millisecond {
		t.Errorf("recorded quota = %+v, %v, want q=5, r=4, w=500ms", q, ok)
	}
	for l.Allow(tierCtx(bulwark.CriticalPlus)) {
	}
	err := l.Do(tierCtx(bulwark.CriticalPlus), okFn)
	if d, ok := bulwark.RetryAfter(err); !ok || d <= 0 || d > 100*time.Millisecond {
		t.Errorf("RetryAfter() = %v, %v, want (0, 100ms]: one token at 10/s", d, ok)
	}
}

func TestRedisCost(t *testing.T) {
	srv := redistest.Start(t)
	l := ratelimit.NewKeyedRedis("cost", srv.Client(), rate.Every(time.Hour), 10, ratelimit.WithCost(costOf), patient)
	if !l.Allow(costCtx(bulwark.Sheddable, "a", 3)) || l.Allow(costCtx(bulwark.Sheddable, "a", 3)) {
		t.Error("cost 3 of Sheddable (reserve 5 of 10): want one admitted, then refused")
	}
	if !l.Allow(costCtx(bulwark.CriticalPlus, "a", 7)) {
		t.Error("cost 7 of CriticalPlus with 7 left refused, want admitted")
	}
	err := l.Do(costCtx(bulwark.CriticalPlus, "a", 11), okFn)
	if !errors.Is(err, ratelimit.ErrCost) || !errors.Is(err, bulwark.ErrRejected) {
		t.Errorf("cost above the burst: Do() = %v, want ErrCost", err)
	}
	if err := l.Wait(costCtx(bulwark.CriticalPlus, "a", 11)); !errors.Is(err, ratelimit.ErrCost) {
		t.Errorf("cost above the burst: Wait() = %v, want ErrCost at once", err)
	}
	// Another key has its own bucket, fleet-wide.
	if !l.Allow(costCtx(bulwark.CriticalPlus, "b", 10)) {
		t.Error("b's first call of cost 10 refused, want its own full bucket")
	}
	err = l.Do(costCtx(bulwark.CriticalPlus, "b", 1), okFn)
	if !errors.Is(err, bulwark.ErrRejected) || !errors.Is(err, ratelimit.ErrLimited) {
		t.Errorf("keyed refusal = %v, want ErrLimited and ErrRejected (429)", err)
	}
}

func TestRedisRoundTrips(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client()
	counter := redistest.NewCounter()
	c.AddHook(counter)
	l := ratelimit.NewKeyedRedis("trips", c, 1e6, 1<<20, patient)
	if n := counter.Trips(); n != 0 {
		t.Fatalf("construction made %d round trips, want none", n)
	}
	ctx := keyCtx("a")
	if !l.Allow(ctx) {
		t.Fatal("refused")
	}
	// The first decision loads the script: EVALSHA, NOSCRIPT, EVAL.
	if n := counter.Trips(); n > 2 {
		t.Errorf("first decision took %d round trips, want at most 2", n)
	}
	counter.Reset()
	const n = 200
	for range n {
		_ = l.Allow(ctx)
	}
	if got := counter.Trips(); got != n {
		t.Errorf("%d decisions took %d round trips, want %d (one each)", n, got, n)
	}
	if cmds := counter.Commands(); cmds["evalsha"] != n || len(cmds) != 1 {
		t.Errorf("commands = %v, want only %d evalsha", cmds, n)
	}
	// After a restart the script is gone: the first decision that reaches
	// Redis costs one extra trip (NOSCRIPT, then EVAL), the next ones one.
	srv.Restart()
	for i := 0; ; i++ {
		counter.Reset()
		_ = l.Allow(ctx)
		if counter.Commands()["eval"] == 1 {
			if got := counter.Trips(); got != 2 {
				t.Errorf("the decision that reloaded the script took %d round trips, want 2", got)
			}
			break
		}
		if i == 5 {
			t.Fatal("no decision reloaded the script after a restart")
		}
	}
	counter.Reset()
	for range 10 {
		_ = l.Allow(ctx)
	}
	if got := counter.Trips(); got != 10 {
		t.Errorf("10 decisions after the reload took %d round trips, want 10", got)
	}
}

func TestRedisKeys(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client()
	ctx := context.Background()
	l := ratelimit.NewRedis("ttl", c, 10, 10, patient)
	k := ratelimit.NewKeyedRedis("ttl", c, 10, 10, ratelimit.WithPrefix("app:"), patient)
	_ = l.Allow(ctx)
	_ = k.Allow(keyCtx("tenant-1"))
	for _, tt := range []struct {
		key  string
		want time.Duration // the time to refill what was taken
	}{
		{"bulwark:ratelimit:{ttl}", 100 * time.Millisecond},
		{"app:{ttl:tenant-1}", 100 * time.Millisecond},
	} {
		ttl, err := c.PTTL(ctx, tt.key).Result()
		if err != nil || ttl <= 0 || ttl > tt.want {
			t.Errorf("PTTL(%s) = %v, %v, want in (0, %v]: expire once refilled", tt.key, ttl, err, tt.want)
		}
	}
	// Once refilled, the keys are gone.
	time.Sleep(150 * time.Millisecond)
	if n, err := c.Exists(ctx, "bulwark:ratelimit:{ttl}", "app:{ttl:tenant-1}").Result(); err != nil || n != 0 {
		t.Errorf("EXISTS after the refill = %d, %v, want 0", n, err)
	}
}

// TestRedisManyKeysExpire: a keyed limiter's 100 000 keys (20 000 under
// the race detector) all carry a TTL.
func TestRedisManyKeysExpire(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client()
	keys := 100_000
	if raceEnabled || testing.Short() {
		keys = 20_000
	}
	l := ratelimit.NewKeyedRedis("many", c, rate.Every(time.Hour), 5, patient)
	var wg sync.WaitGroup
	var refused atomic.Int64
	const workers = 16
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < keys; i += workers {
				if !l.Allow(keyCtx("k" + strconv.Itoa(i))) {
					refused.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if n := refused.Load(); n != 0 {
		t.Errorf("%d first calls refused, want none", n)
	}
	ctx := context.Background()
	if n, _ := c.DBSize(ctx).Result(); n != int64(keys) {
		t.Errorf("DBSIZE = %d, want %d", n, keys)
	}
	var cursor uint64
	seen, noTTL := 0, 0
	for {
		batch, next, err := c.Scan(ctx, cursor, "bulwark:ratelimit:{many:*", 1000).Result()
		if err != nil {
			t.Fatal(err)
		}
		pipe := c.Pipeline()
		cmds := make([]*redis.DurationCmd, len(batch))
		for i, key := range batch {
			cmds[i] = pipe.PTTL(ctx, key)
		}
		if _, err := pipe.Exec(ctx); err != nil && len(batch) > 0 {
			t.Fatal(err)
		}
		for _, cmd := range cmds {
			seen++
			if cmd.Val() <= 0 {
				noTTL++
			}
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	if seen != keys || noTTL != 0 {
		t.Errorf("scanned %d keys, %d without a TTL, want %d keys, all with one", seen, noTTL, keys)
	}
}

func TestRedisStopped(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client()
	open := ratelimit.NewRedis("down", c, 1, 1)
	closed := ratelimit.NewRedis("down", c, 1, 1, ratelimit.WithFailClosed())
	fallback := ratelimit.NewRedis("down", c, 1, 1, ratelimit.WithFallback(ratelimit.New("local", rate.Every(time.Hour), 2)))
	ctx := tierCtx(bulwark.CriticalPlus)
	_ = open.Allow(ctx) // the script is loaded, the bucket spent
	if open.Allow(ctx) {
		t.Fatal("second call admitted with Redis up, want refused")
	}
	srv.Stop()
	for i := range 3 {
		if err := answerWithin(t, "fail-open Do", time.Second, func() error { return open.Do(ctx, okFn) }); err != nil {
			t.Errorf("fail-open call %d with Redis stopped: Do() = %v, want admitted", i, err)
		}
		err := answerWithin(t, "fail-closed Do", time.Second, func() error { return closed.Do(ctx, okFn) })
		var se *ratelimit.StoreError
		if !errors.As(err, &se) || !errors.Is(err, ratelimit.ErrStore) || !errors.Is(err, bulwark.ErrUnavailable) || errors.Is(err, ratelimit.ErrLimited) {
			t.Errorf("fail-closed call %d with Redis stopped: Do() = %v, want a *StoreError wrapping ErrStore and ErrUnavailable", i, err)
		}
	}
	// The fallback decides: its burst of 2, then its own refusal.
	var got []bool
	for range 3 {
		got = append(got, answerWithin(t, "fallback Allow", time.Second, func() bool { return fallback.Allow(ctx) }))
	}
	if fmt.Sprint(got) != "[true true false]" {
		t.Errorf("fallback decisions = %v, want [true true false]", got)
	}
	for _, l := range []*ratelimit.Redis{open, closed, fallback} {
		if f := figures(l.Snapshot()); f["store errors"]+f["store timeouts"] < 1 {
			t.Errorf("snapshot figures %v, want the store failures counted", f)
		}
	}
	if s := closed.Snapshot(); s.State != "store failing" || s.Health != "fail" {
		t.Errorf("fail-closed snapshot state %q/%q, want store failing/fail", s.State, s.Health)
	}
	// Restart: decisions come from Redis again (an empty Redis: a full
	// bucket of 1, then a refusal).
	srv.Restart()
	resumed := false
	for range 10 {
		if !open.Allow(ctx) { // only Redis refuses: its fresh bucket of 1 is spent
			resumed = true
			break
		}
	}
	if !resumed {
		t.Error("after a restart, decisions did not come from Redis again")
	}
}

func TestRedisPaused(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client()
	r := metrictest.New(t)
	open := ratelimit.NewRedis("hung", c, 1, 1, ratelimit.WithMeterProvider(r.Provider))
	closed := ratelimit.NewKeyedRedis("hung", c, 1, 1, ratelimit.WithFailClosed(), ratelimit.WithTimeout(30*time.Millisecond))
	r.Keep(open, closed)
	ctx := keyCtx("a")
	_ = open.Allow(ctx)
	_ = closed.Allow(ctx)
	srv.Pause()
	for range 3 {
		if !answerWithin(t, "fail-open Allow on a hung Redis", time.Second, func() bool { return open.Allow(ctx) }) {
			t.Error("fail-open Allow on a hung Redis = false, want true")
		}
		err := answerWithin(t, "fail-closed Do on a hung Redis", time.Second, func() error { return closed.Do(ctx, okFn) })
		if !errors.Is(err, ratelimit.ErrStore) || errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("fail-closed Do on a hung Redis = %v, want ErrStore, not the caller's DeadlineExceeded", err)
		}
	}
	// The caller's own deadline is answered as the caller's.
	cctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	err := answerWithin(t, "Do with a short deadline", time.Second, func() error { return closed.Do(cctx, okFn) })
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Do() past the caller's deadline = %v, want context.DeadlineExceeded", err)
	}
	if got := r.Int64Where("bulwark.ratelimit.store.errors", "bulwark.policy.name", "hung", "bulwark.reason", "timeout"); sumValues(got) < 3 {
		t.Errorf("store.errors{reason=timeout} = %v, want at least 3", got)
	}
	srv.Resume()
	resumed := false
	for range 20 {
		if !open.Allow(ctx) { // refused: Redis decided again (bucket spent)
			resumed = true
			break
		}
	}
	if !resumed {
		t.Error("after Resume, decisions did not come from Redis again")
	}
}

func sumValues(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

func TestRedisMetrics(t *testing.T) {
	srv := redistest.Start(t)
	r := metrictest.New(t)
	l := ratelimit.NewRedis("m", srv.Client(), rate.Every(time.Hour), 2, ratelimit.WithMeterProvider(r.Provider), patient)
	r.Keep(l)
	for range 3 {
		_ = l.Allow(context.Background())
	}
	got := sums(t, r, "bulwark.ratelimit.decisions")
	if got[decision("allowed", bulwark.Critical)] != 2 || got[decision("limited", bulwark.Critical)] != 1 {
		t.Errorf("decisions = %v, want 2 allowed, 1 limited (critical)", got)
	}
	if n := r.Int64Total("bulwark.ratelimit.store.errors"); n != 0 {
		t.Errorf("store.errors = %d, want 0", n)
	}
	h := r.HistogramWhere("bulwark.ratelimit.store.duration", "bulwark.policy.name", "m")
	var count uint64
	for _, p := range h {
		count += p.Count
	}
	if count != 3 {
		t.Errorf("store.duration count = %d, want 3", count)
	}
}

func TestRedisValidates(t *testing.T) {
	srv := redistest.Start(t)
	noTimeout := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer noTimeout.Close()
	for _, tt := range []struct {
		name string
		give func()
		want string
	}{
		{"no ContextTimeoutEnabled", func() { ratelimit.NewRedis("x", noTimeout, 1, 1) }, "NewRedis: the Redis client must be built with ContextTimeoutEnabled"},
		{"keyed no ContextTimeoutEnabled", func() { ratelimit.NewKeyedRedis("x", noTimeout, 1, 1) }, "NewKeyedRedis: the Redis client must be built with ContextTimeoutEnabled"},
		{"nil client", func() { ratelimit.NewRedis("x", nil, 1, 1) }, "NewRedis: nil Redis client"},
		{"limit 0", func() { ratelimit.NewRedis("x", srv.Client(), 0, 1) }, "NewRedis: limit"},
		{"burst 0", func() { ratelimit.NewKeyedRedis("x", srv.Client(), 1, 0) }, "NewKeyedRedis: burst"},
		{"timeout 0", func() { ratelimit.WithTimeout(0) }, "WithTimeout"},
		{"timeout negative", func() { ratelimit.WithTimeout(-time.Second) }, "WithTimeout"},
		{"prefix with a brace", func() { ratelimit.WithPrefix("a{b") }, "WithPrefix"},
		{"prefix with a closing brace", func() { ratelimit.WithPrefix("a}") }, "WithPrefix"},
		{"local batch 0", func() { ratelimit.WithLocalBatch(0) }, "WithLocalBatch"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := func() (msg string) {
				defer func() {
					if r := recover(); r != nil {
						msg = fmtAny(r)
					}
				}()
				tt.give()
				return ""
			}()
			if !strings.Contains(got, "ratelimit: "+tt.want) {
				t.Errorf("panic = %q, want one naming %q", got, "ratelimit: "+tt.want)
			}
		})
	}
}

func TestRedisControl(t *testing.T) {
	srv := redistest.Start(t)
	l := ratelimit.NewRedis("ctl", srv.Client(), rate.Every(time.Hour), 1, patient)
	if !l.Allow(context.Background()) || l.Allow(context.Background()) {
		t.Fatal("want one admitted, then refused")
	}
	if err := l.Control(context.Background(), "set-limit", map[string]string{"burst": "3"}, "more"); err != nil {
		t.Fatal(err)
	}
	if l.Burst() != 3 || !l.Allow(context.Background()) {
		t.Errorf("after set-limit burst 3: Burst() = %d, want 3 and a call admitted", l.Burst())
	}
	if err := l.SetLimit(-1); err == nil {
		t.Error("SetLimit(-1) = nil, want an error")
	}
	if s := l.Snapshot(); s.Kind != "ratelimit" || s.Source != "manual" || s.Reason != "more" {
		t.Errorf("snapshot %q %q %q, want ratelimit manual more", s.Kind, s.Source, s.Reason)
	}
}

func TestRedisContract(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client()
	// A budget the suite's 1024-deep probe cannot drain: with a burst of
	// 1000, whether the probe saw a refusal depended on how much refilled
	// while the round trips ran, and a drained bucket then failed the
	// later checks (the local limiters' contract tests cover a drained one).
	const limit, burst = 1 << 16, 1 << 16
	bulwarktest.TestPolicy(t, func() bulwark.Policy {
		return ratelimit.NewRedis(uniqueName("contract"), c, limit, burst, patient)
	})
	t.Run("Keyed", func(t *testing.T) {
		bulwarktest.TestPolicy(t, func() bulwark.Policy {
			return ratelimit.NewKeyedRedis(uniqueName("contract"), c, limit, burst, patient)
		})
	})
}

// TestRedisPipelined: concurrent decisions ride in shared pipelines, fewer
// round trips than decisions, and stay exact: a bucket of 100 admits 100
// of 320 calls from 16 goroutines. Callers that give up (cancelled
// contexts, some of them leaders) never make others' decisions fail.
func TestRedisPipelined(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client()
	counter := redistest.NewCounter()
	c.AddHook(counter)
	r := metrictest.New(t)
	l := ratelimit.NewKeyedRedis("pipe", c, rate.Every(time.Hour), 100, ratelimit.WithMeterProvider(r.Provider), patient)
	r.Keep(l)
	_ = l.Allow(keyCtx("warm")) // the script is loaded
	counter.Reset()
	var admitted, calls atomic.Int64
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				ctx := keyCtx("k")
				if (w+i)%5 == 0 {
					// A caller that gives up at once, maybe while leading.
					cctx, cancel := context.WithCancel(ctx)
					go cancel()
					_ = l.Allow(cctx)
					continue
				}
				calls.Add(1)
				if l.Allow(ctx) {
					admitted.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if n := r.Int64Total("bulwark.ratelimit.store.errors"); n != 0 {
		t.Errorf("store.errors = %d with a healthy Redis, want 0 (a cancelled leader failed others' decisions?)", n)
	}
	// The cancelled callers may have taken tokens too; the others took the
	// rest, never more than the bucket.
	if got := admitted.Load(); got > 100 || got < 100-64 {
		t.Errorf("admitted %d of %d calls from a bucket of 100, want at most 100 (and most of it)", got, calls.Load())
	}
	if trips := counter.Trips(); trips >= 320 {
		t.Errorf("%d round trips for 320 concurrent decisions, want fewer (pipelined)", trips)
	} else {
		t.Logf("%d round trips for 320 concurrent decisions", trips)
	}
	if n, _ := c.Get(context.Background(), "bulwark:ratelimit:{pipe:k}").Result(); n == "" {
		t.Error("the key's bucket is not in Redis")
	}
}

func TestRedisWait(t *testing.T) {
	srv := redistest.Start(t)
	l := ratelimit.NewRedis("wait", srv.Client(), 20, 1, patient)
	ctx := tierCtx(bulwark.CriticalPlus)
	if err := l.Wait(ctx); err != nil {
		t.Fatalf("first Wait() = %v, want nil", err)
	}
	// The next token is 50 ms away: a deadline before it is refused at
	// once with the hint.
	short, cancel := context.WithTimeout(ctx, 5*time.Millisecond)
	err := l.Wait(short)
	cancel()
	var le *ratelimit.LimitedError
	if !errors.As(err, &le) {
		t.Errorf("Wait() with a deadline before the next token = %v, want a *LimitedError", err)
	}
	// Without a deadline it waits for the token.
	if err := l.Wait(ctx); err != nil {
		t.Errorf("Wait() = %v, want nil after the refill", err)
	}
	if l.Allow(ctx) {
		t.Error("Allow() right after a Wait admitted, want the bucket spent")
	}
	// A cancelled context ends a Wait with its error.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := l.Wait(cctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait(cancelled) = %v, want context.Canceled", err)
	}
}

// TestRedisKeysAreDistinct: keys with braces, long keys and keys that look
// like another limiter's never share a bucket.
func TestRedisKeysAreDistinct(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client()
	k := ratelimit.NewKeyedRedis("odd", c, rate.Every(time.Hour), 1, patient)
	other := ratelimit.NewKeyedRedis("odd:x", c, rate.Every(time.Hour), 1, patient)
	keys := []string{"a}b", "a}c", "{", "}", strings.Repeat("k", 64<<10), "x}", "x}y", "名前"}
	for _, key := range keys {
		if !k.Allow(keyCtx(key)) {
			t.Errorf("first call of key %.20q refused, want its own bucket", key)
		}
	}
	for _, key := range keys {
		if k.Allow(keyCtx(key)) {
			t.Errorf("second call of key %.20q admitted, want its bucket spent", key)
		}
	}
	// "odd:x" with key "y" and "odd" with key "x}y"... are different keys in Redis.
	if !other.Allow(keyCtx("y")) {
		t.Error("another limiter's key shared a bucket with this one's")
	}
}

// TestRedisNested: a Redis limiter chained with itself takes two tokens a
// call, and passes the contract suite.
func TestRedisNested(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client()
	l := ratelimit.NewRedis("nested", c, rate.Every(time.Hour), 4, patient)
	p := bulwark.Chain(l, l)
	n := 0
	for p.Do(tierCtx(bulwark.CriticalPlus), okFn) == nil {
		if n++; n > 10 {
			t.Fatal("no end")
		}
	}
	if n != 2 {
		t.Errorf("Chain(l, l) admitted %d calls from a bucket of 4, want 2", n)
	}
	bulwarktest.TestPolicy(t, func() bulwark.Policy {
		l := ratelimit.NewRedis(uniqueName("nested"), c, 1<<16, 1<<16, patient)
		return bulwark.Chain(l, ratelimit.NewKeyedRedis(uniqueName("nested"), c, 1<<16, 1<<16, patient), l)
	})
}

func TestRedisLocalBatch(t *testing.T) {
	srv := redistest.Start(t)
	t.Run("RoundTrips", func(t *testing.T) {
		c := srv.Client()
		counter := redistest.NewCounter()
		c.AddHook(counter)
		l := ratelimit.NewRedis(uniqueName("batch"), c, 1e6, 1<<20, ratelimit.WithLocalBatch(10), patient)
		_ = l.Allow(tierCtx(bulwark.CriticalPlus)) // the script is loaded
		counter.Reset()
		for range 100 {
			if !l.Allow(tierCtx(bulwark.CriticalPlus)) {
				t.Fatal("refused")
			}
		}
		if n := counter.Trips(); n < 9 || n > 11 {
			t.Errorf("100 decisions with a local batch of 10 took %d round trips, want about 10", n)
		}
	})
	t.Run("Exact", func(t *testing.T) {
		// Two instances with leases of 5 drain a bucket of 20: exactly 20
		// between them, the leases included.
		name := uniqueName("batch")
		a := ratelimit.NewRedis(name, srv.Client(), rate.Every(time.Hour), 20, ratelimit.WithLocalBatch(5), patient)
		b := ratelimit.NewRedis(name, srv.Client(), rate.Every(time.Hour), 20, ratelimit.WithLocalBatch(5), patient)
		ctx := tierCtx(bulwark.CriticalPlus)
		admitted, refusedInARow := 0, 0
		for n := 0; refusedInARow < 4 && n < 100; n++ {
			l := a
			if n%3 == 0 {
				l = b
			}
			if l.Allow(ctx) {
				admitted++
				refusedInARow = 0
			} else {
				refusedInARow++
			}
		}
		if admitted != 20 {
			t.Errorf("two batching instances admitted %d from a bucket of 20, want exactly 20", admitted)
		}
	})
	t.Run("Reserves", func(t *testing.T) {
		// Sheddable leases never dip into its reserve (10 of 20); what is
		// left of them serves Sheddable calls (or more important ones).
		name := uniqueName("batch")
		a := ratelimit.NewRedis(name, srv.Client(), rate.Every(time.Hour), 20, ratelimit.WithLocalBatch(4), patient)
		b := ratelimit.NewRedis(name, srv.Client(), rate.Every(time.Hour), 20, ratelimit.WithLocalBatch(4), patient)
		shed := 0
		for range 30 {
			if a.Allow(tierCtx(bulwark.Sheddable)) {
				shed++
			}
			if b.Allow(tierCtx(bulwark.Sheddable)) {
				shed++
			}
		}
		if shed > 10 {
			t.Errorf("Sheddable took %d of 20, want at most 10 (its reserve is 10)", shed)
		}
		plus := 0
		for range 30 {
			if b.Allow(tierCtx(bulwark.CriticalPlus)) {
				plus++
			}
			if a.Allow(tierCtx(bulwark.CriticalPlus)) {
				plus++
			}
		}
		if shed+plus != 20 {
			t.Errorf("Sheddable %d + CriticalPlus %d = %d, want the whole bucket of 20", shed, plus, shed+plus)
		}
	})
}
