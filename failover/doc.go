// Package failover cuts a dependency's traffic over between redundant
// endpoints — regions, replicas, proxies — and brings it back when the
// preferred one heals.
//
// A [Set] is a [bulwark.Policy] over a list of endpoints, each behind its own
// circuit breaker (package breaker, named "<set>/<index>", so endpoint
// names never become metric attributes). Each call runs fn once, with the
// chosen endpoint in its context ([EndpointFrom]):
//
//   - [PriorityOrder] (the default, primary / standby): the first endpoint
//     whose breaker admits the call. When the primary's breaker opens,
//     traffic moves to the next; when it closes again, traffic returns
//     (fail-back) — not before [WithMinDwell] has passed on the standby, so
//     a flapping primary does not drag traffic back and forth.
//   - [RoundRobin] (equal replicas): each call starts at the next endpoint
//     in turn and takes the first whose breaker admits it.
//
// Operators cut over by hand with [Set.Pin] / [Set.Unpin] (or from the
// admin page: a Set is a [bulwark.Snapshotter] and [bulwark.Controller]).
// With every endpoint out, a call is refused with [ErrNoEndpoint] (a
// [bulwark.ErrUnavailable], HTTP 503) carrying the earliest retry hint among
// the breakers.
//
// [WithRetryOnNext] retries a call whose attempt failed (a failure the
// breakers count) once on each other healthy endpoint, within the caller's
// deadline — only when the attempt's error does not say "do not replay"
// ([bulwark.Retryable] false, which bulwarkhttp's transports set for a
// request that cannot be sent twice).
//
// [WithProbe] adds active recovery: when a call finds an endpoint's
// breaker open and the probe interval has passed, the Set checks that
// endpoint off the request path, on a goroutine of its own (at most one per
// endpoint at a time; [Set.Close] cancels and waits for them). A passing
// probe resets the endpoint's breaker to closed at once: gobreaker cannot
// enter half-open before its break ends, so a healed region takes traffic
// back without waiting out the break and without sacrificing user calls to
// find out; if it fails again, its breaker trips again by its own rules.
//
// # HTTP and gRPC
//
// bulwarkhttp.FailoverTransport(set, base) rewrites each request's scheme
// and host to the chosen endpoint, on a clone. With grpc-go, keep one
// ClientConn per endpoint (each resolves and balances its own addresses)
// and pick among them per call:
//
//	conns := map[string]pb.PaymentsClient{"eu": pb.NewPaymentsClient(euConn), "us": pb.NewPaymentsClient(usConn)}
//	err := set.Do(ctx, func(ctx context.Context) error {
//		ep, _ := failover.EndpointFrom(ctx)
//		_, err := conns[ep].Charge(ctx, req)
//		return err
//	})
//
// Give the ClientConns bulwarkgrpc.UnaryClientInterceptor so a downstream's
// UNAVAILABLE is classified (counted) and RESOURCE_EXHAUSTED is not.
//
// # Metrics
//
//   - bulwark.failover.active (observable gauge, {endpoint}): the index of
//     the endpoint taking traffic (the last one chosen).
//   - bulwark.failover.switches (observable counter, {switch}) by
//     bulwark.reason: breaker (moved off an endpoint whose breaker refused),
//     manual (pin, unpin), failback (back to a preferred endpoint).
//
// The per-endpoint breakers report their own bulwark.breaker.* metrics
// under their names.
package failover
