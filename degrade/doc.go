// Package degrade gives up the non-essential first when a dependency or the
// service itself is in trouble — skip recommendations, serve cached data,
// refuse batch traffic — by switches an operator flips or that flip
// themselves, instead of falling over as a whole.
//
// # Switches, shedders, triggers
//
// A [Switch] is one named thing the service can do without. Code paths ask
// [Switch.On] and degrade their own answer ("no recommendations"); as a
// [bulwark.Policy] the switch refuses whole calls while on, with
// [ErrDegraded] (503 / UNAVAILABLE), or runs a fallback ([WithFallback]).
// Use a switch for a feature or a dependency you can live without.
//
// A [Shedder] refuses work by priority tier ([bulwark.PriorityFrom]): level
// 1 sheds Sheddable, 2 also SheddablePlus, 3 also Critical; CriticalPlus is
// never shed by a level, and no tier is refused while a lower one is
// served. Use a shedder in front of a whole service under load.
//
// A [Trigger] steers either from the process's own view: [When] a
// condition holds (a breaker is open:
// degrade.When(func() bool { return b.State() == breaker.StateOpen })),
// [WhenAbove] a signal crosses a threshold with hysteresis, or
// [LevelsAbove] one level per threshold. [CPUUsage] (cgroup v2 aware) and
// [GoroutineCount] are ready-made signals; a shedder on
// WhenAbove(degrade.CPUUsage(), 0.9, 0.8) is the resource-pressure
// shedding of go-zero and Sentinel. Triggers run no goroutine: they are
// evaluated lazily on use, at most once per sampling interval, and keep a
// raised state for a minimum hold time.
//
// Three sources steer a switch or shedder, the first with a say wins:
// manual ([Switch.Set], [Shedder.SetLevel], the admin page through
// [bulwark.Controller]) until released; config ([Load], [LoadFile],
// [Watch] over the switches and shedders of a [bulwark.Registry]); then the
// trigger. Every change is recorded with its source, reason and time
// ([Switch.Status], the admin page's [bulwark.Snapshot], [WithOnChange]).
//
// # In a server
//
// Put degradation first, so that what is given up costs nothing:
// degrade → ratelimit → bulkhead → handler, as in
// bulwarkhttp.Handler(h, bulwark.Chain(shedder, sw, limiter, bulkhead)).
// Refusals carry the switch's or shedder's name ([bulwark.Degraded]), which
// the server adapters send as Bulwark-Degraded (gRPC metadata
// bulwark-degraded), with Retry-After when a hint is known
// ([WithRetryAfter], or the rest of a trigger's hold time).
//
// # Metrics
//
// Under the meter "github.com/bulwark-go/bulwark/degrade", every
// instrument with bulwark.policy.name:
//
//   - bulwark.degrade.switch.state (observable gauge, 1): 1 while a switch
//     is on, 0 while off.
//   - bulwark.degrade.shed.level (observable gauge, 1): a shedder's level.
//   - bulwark.degrade.refused (observable counter, {call}, bulwark.priority,
//     bulwark.reason = refused|fallback): calls not run because of the
//     state; fallback counts those the fallback answered.
//   - bulwark.degrade.changes (observable counter, {change},
//     bulwark.source = manual|config|automatic): recorded changes.
//
// and, without bulwark.policy.name, bulwark.degrade.config.loads (counter,
// {load}, bulwark.reason = applied|invalid|error): attempts of [Load],
// [LoadFile] and [Watch] to apply a document.
//
// # Defaults
//
// A new switch is off and a new shedder at level 0; a trigger samples at
// most once a second ([DefaultInterval]) with no hold time; refusals carry
// no retry hint unless a trigger holds the state or [WithRetryAfter] is
// given.
package degrade
