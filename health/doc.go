// Package health answers liveness, readiness and startup probes from a
// service's health checks, and runs the drain sequence that takes an
// instance out of rotation before it shuts down.
//
// It is the server-side half of cut-over: a load balancer stops sending to
// an instance because its readiness says so, before any user sees an
// error. The package is transport-neutral (it imports neither net/http nor
// gRPC); its faces are bulwarkhttp.Health (/livez, /readyz, /startupz,
// Kubernetes' ?verbose and ?exclude, application/health+json) and
// bulwarkgrpc.RegisterHealth (the standard grpc.health.v1.Health service).
//
// # The model
//
// A [Checker] holds named checks; a check is any func(context.Context)
// error, registered with [Checker.Register] for one or more kinds of probe
// ([Liveness], [Readiness] — the default — and [Startup]). A probe of a
// kind ([Checker.Check]) runs that kind's checks concurrently, each under
// its timeout (1 s: a hanging check fails, it never hangs the probe), and
// answers with the worst status: [StatusFail] when a critical check failed,
// [StatusWarn] when a non-critical one ([WithCritical](false)) failed or a
// check returned a [Warning], [StatusPass] otherwise.
//
// Results are cached per check: a check with [WithInterval] runs on a loop
// the Checker owns and probes read its last result; any other check runs
// on demand, at most once per minimum interval ([WithMinInterval], 1 s),
// and concurrent probes share one run. A probe storm costs a dependency at
// most one check a second.
//
// Policies that can speak for readiness expose a check: a breaker's
// b.HealthCheck fails while it is open. Register it as non-critical —
// a downstream outage should not take this instance out of rotation, which
// would turn a partial outage into a full one:
//
//	c.Register("payments", b.HealthCheck, health.WithCritical(false))
//
// [PingCheck] makes a check of anything with a Ping (database/sql, Redis).
//
// A Checker is a bulwark.Snapshotter: registered with the admin page's
// Registry (reg.RegisterAs("health", c)) it shows each check's last result
// and the recent changes, without running any check.
//
// # Drain
//
// [Checker.Drain] is the shutdown sequence: readiness fails at once while
// liveness keeps passing; after a delay (5 s) for load balancers to notice,
// the servers stop accepting and finish in-flight work within a deadline
// (20 s, under Kubernetes' 30 s grace period), after which they are forced
// closed. Drain reports whether it was graceful. Wire it to SIGTERM with
// signal.NotifyContext (see the example).
//
// # Metrics
//
// On the meter "github.com/bulwark-go/bulwark/health" ([WithMeterProvider]):
//
//   - bulwark.health.status (observable gauge, unit 1; bulwark.check,
//     bulwark.check.kind = liveness|readiness|startup): each check's last
//     result, 1 pass, 0.5 warn, 0 fail; a check not yet run is not
//     reported.
//   - bulwark.health.check.duration (histogram, s, 1 ms – 30 s buckets;
//     bulwark.check): how long each run took; a timed-out run counts as
//     its timeout.
//   - bulwark.health.draining (observable gauge, unit 1): 1 once a drain
//     started, else 0.
package health
