// Package scenario holds end-to-end tests that run bulwark's policies and
// adapters together, the way a service uses them, over real HTTP and gRPC
// stacks on 127.0.0.1, and check /work/shared/SPEC.md as a caller sees it
// on the wire.
//
// The package has no code of its own: everything is in its tests.
//
//   - A server stack sheds sheddable work first, refuses one tenant's
//     quota with 429 while another tenant is served, and treats an
//     untrusted critical-plus as critical.
//   - A client stack retries a flaky downstream, honours its hints, keeps
//     one tenant's 429 from opening the breaker, fails fast once the
//     breaker is open, and never sends a non-idempotent request twice.
//   - A two-hop call graph answers 503 for a downstream's 503 or 429 and
//     propagates the effective tier.
//   - gRPC interceptors map refusals to RESOURCE_EXHAUSTED and UNAVAILABLE,
//     retry honours pushback, and streams hold admission until they end.
//   - A handler that our own timeout ended before it wrote is answered 503
//     and counted by the server's breaker; drill and degraded markers
//     cross two hops; stacked transports keep an inner refusal a refusal.
//   - The metrics agree with what the tests saw on the wire.
//
// Timing rules (exact hints, the breaker's break, per-attempt deadlines)
// are also checked in testing/synctest bubbles, with the HTTP handler
// served in process instead of over the network.
package scenario
