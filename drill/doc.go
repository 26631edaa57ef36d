// Package drill injects faults for rehearsals: added latency, errors and
// refusals, scoped to a slice of the traffic, expiring on their own, armed
// and disarmed at run time — so that a team can see its protections work in
// staging or in a controlled slice of production without a code change or a
// deploy.
//
// A [Drill] is a [bulwark.Policy] and a [bulwark.Admitter] that does
// nothing until it is armed: [Drill.Arm] takes a [Spec] (what to inject,
// with what probability, into which calls) and an expiry; [Drill.Disarm]
// ends it at once, calls waiting in an injected latency included. Put a
// Drill where the fault should appear: server side just in front of the
// handler (bulwarkhttp.Middleware(bulwark.Chain(limiter, compartment,
// drill)), so injected latency holds a slot as a slow handler would) to
// rehearse a slow or failing service, or client side inside the retry and
// breaker (bulwark.Chain(retrier, breaker, drill)) to rehearse a failing
// downstream.
//
// Faults, combinable, each with its own probability:
//
//   - latency: a fixed delay, or one drawn uniformly between two bounds,
//     before fn runs; it honours the caller's context (a caller that goes
//     away stops waiting and gets ctx.Err()) and ends early when the drill
//     is disarmed or expires;
//   - an error returned instead of running fn: any error, or a ready-made
//     one — [ErrRemoteUnavailable] (looks like a downstream's 503 /
//     UNAVAILABLE) or [ErrTimeout] (our own deadline);
//   - a refusal, [ErrRefused], which wraps [bulwark.ErrUnavailable] (503).
//
// Injected errors and refusals are wrapped in an [*InjectedError], so logs
// and metrics can tell them apart ([IsInjected]); errors.Is still sees the
// error inside.
//
// Scope ([Match]): only calls of the given tiers ([bulwark.PriorityFrom]),
// of the given keys ([bulwark.KeyFrom]), or carrying this drill's marker
// ([bulwark.DrillFrom]: the Bulwark-Drill header or bulwark-drill metadata
// a test client sends), so a drill can target synthetic traffic only.
//
// Safety: arming always carries an expiry ([DefaultExpiry], 5 min, when
// none is given), at most [WithMaxExpiry] (1 h by default). Expiry is
// checked lazily on use: no goroutine runs. A Drill is a
// [bulwark.Snapshotter] and a [bulwark.Controller]: it shows on the admin
// page and can be armed and disarmed there (actions "arm" and "disarm"),
// each change recorded with its source and reason.
//
// The disarmed path is one atomic load: it allocates nothing. The random
// source is injectable ([WithRand]) for deterministic tests.
//
// # Metrics
//
// Meter github.com/bulwark-go/bulwark/drill:
//
//   - bulwark.drill.armed (observable gauge, {drill}) {bulwark.policy.name}:
//     1 while the drill is armed, else 0;
//   - bulwark.drill.injected (counter, {fault}) {bulwark.policy.name,
//     bulwark.fault = latency|error|refusal}: the faults injected (a call
//     given latency and an error counts once for each).
package drill
