// Package bulwarkhttp runs net/http servers and clients under bulwark
// policies: [Middleware] (or [Handler]) serves requests under a policy and
// [Transport] sends them under one.
//
// The package maps error classes and a few small interfaces, never a
// particular policy's errors, so any [bulwark.Policy] works and a new
// policy needs no change here.
//
// # Server
//
// [Middleware] puts the request's effective priority (the Bulwark-Priority
// header under a trust rule: an untrusted peer may only lower its tier) and
// key into the context as one [bulwark.CallInfo], runs the handler inside
// the policy, reports failure statuses (>= 500 by default) to the policy
// while the response goes out unchanged, and answers refusals:
//
//	error class                          status
//	bulwark.ErrRejected                  429 Too Many Requests
//	bulwark.ErrUnavailable               503 Service Unavailable
//	bulwark.ErrRemoteRejected            503 (a downstream's 429 is never relayed)
//	bulwark.ErrRemoteUnavailable         503
//	bulwark.ErrTimeout                   503
//	any other error                      500 Internal Server Error
//
// with Retry-After (whole seconds, rounded up, at least 1) when the refusal
// carries a hint, the RateLimit and RateLimit-Policy headers when it
// carries a quota, Bulwark-Degraded when a degradation switch refused
// ([bulwark.Degraded]; a handler marks its own degraded answers with
// [MarkDegraded]), and an RFC 9457 application/problem+json body. A
// handler that our own deadline ([bulwark.Timeout]) ended before it sent
// anything is answered the same way, as [bulwark.ErrTimeout] (503). A
// client that went away gets nothing written. A valid Bulwark-Drill marker
// goes into the context ([bulwark.WithDrill]).
//
// The handler's writer has exactly the optional interfaces of the one it
// wraps (http.Flusher, http.Hijacker, io.ReaderFrom, http.Pusher,
// http.CloseNotifier; one generated type per combination, see
// internal/genwriter) plus io.StringWriter and Unwrap, and records the
// status actually sent.
//
// # Client
//
// [Transport] classifies downstream answers for the policy — 502, 503, 504
// and unreachable downstreams as [bulwark.ErrRemoteUnavailable], 429 as
// [bulwark.ErrRemoteRejected], other 5xx as unclassified failures — in a
// [*StatusError] or [*TransportError] carrying the server's Retry-After and
// whether the request may be replayed; it rewinds bodies between attempts,
// sends Bulwark-Attempt, Bulwark-Priority and Bulwark-Drill, passes the
// refusals of a stacked Transport on as refusals, keeps response bodies
// readable after a per-attempt deadline, and holds an [bulwark.Admitter]'s
// admission until the body is closed.
//
// # Metrics
//
//	bulwark.http.server.requests  Int64ObservableCounter {request}
//	    {bulwark.policy.name, bulwark.outcome = success|failure|ignored|refused}
//	bulwark.http.client.requests  Int64ObservableCounter {request}
//	    {bulwark.policy.name, bulwark.outcome = success|failure|ignored|refused}
//
// The meter is named github.com/bulwark-go/bulwark/bulwarkhttp; counts are
// kept in atomics and exported through the observable counters.
package bulwarkhttp
