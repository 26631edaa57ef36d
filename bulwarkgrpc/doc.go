// Package bulwarkgrpc runs gRPC calls under bulwark policies: unary and
// stream interceptors for servers and clients that keep gRPC's meaning of
// status codes, metadata and retry hints.
//
// # Server
//
// [UnaryServerInterceptor] and [StreamServerInterceptor] run each handler
// under a policy. Before the policy sees the call they put one
// [bulwark.CallInfo] into the context, keeping what an earlier interceptor
// (authentication, tenant) put there: the effective priority tier, read
// from the bulwark-priority metadata under the trust rule (a peer may only
// lower its tier: critical-plus is honoured only from peers that
// [WithTrustPriority] trusts; an absent or unparseable tier changes
// nothing, so the default is critical; and a tier already in the context
// may only be lowered), and the partition key of [WithKeyFunc] (a key
// already in the context is kept when it returns ""). A valid bulwark-drill
// marker (1 to 64 characters of visible ASCII) goes into the context with
// [bulwark.WithDrill].
//
// A handler's answer is a failure for the policies when its status code is
// one of the failure codes (default: Unavailable, DeadlineExceeded,
// Internal, Unknown, DataLoss; see [WithFailureCodes]); any other code is a
// successful call that happened to carry an error, and goes to the client
// untouched. A refusal is answered without running the handler:
//
//	error class                     status code
//	bulwark.ErrRejected             RESOURCE_EXHAUSTED
//	bulwark.ErrUnavailable          UNAVAILABLE
//	bulwark.ErrRemoteRejected       UNAVAILABLE (a downstream's quota is never relayed as ours)
//	bulwark.ErrRemoteUnavailable    UNAVAILABLE
//	bulwark.ErrTimeout              DEADLINE_EXCEEDED
//	any other policy error          INTERNAL
//
// A refusal with a retry hint ([bulwark.RetryAfter]) carries it twice: as a
// google.rpc.RetryInfo status detail and as the grpc-retry-pushback-ms
// trailer, which is the one grpc-go's own retry reads (in whole
// milliseconds, rounded up, never overflowing into a negative). A refusal
// by a degradation switch ([bulwark.Degraded]) carries its name in the
// bulwark-degraded trailer; a handler that degrades its own answer says so
// with [MarkDegraded]. When a handler's error carries a downstream's own
// "do not retry" (a negative or unparseable pushback it sent), the server
// relays it as grpc-retry-pushback-ms -1; nothing else (a retry that gave
// up, a request that cannot be replayed) is relayed so. A handler error of
// one of these classes is mapped the same way; any other handler error,
// status or not, passes through untouched. A caller that went away is
// answered CANCELED (or DEADLINE_EXCEEDED for its own deadline) and is
// counted as ignored. A panic in a handler passes through the interceptor
// untouched.
//
// # Client
//
// [UnaryClientInterceptor] runs each call under a policy (retry, breaker,
// bulkhead, per-attempt timeout). Every attempt sends the effective tier as
// bulwark-priority (unless [WithPriorityPropagation] says not to) and the
// 1-based attempt number ([bulwark.AttemptFrom]) as bulwark-attempt, in
// place of any value of either in the caller's outgoing metadata (a proxy
// that forwards its incoming metadata never passes a raw tier on). When
// the context has no tier ([bulwark.LookupPriority]), a tier the caller set
// in the outgoing metadata by hand is kept, capped at critical (an
// unparseable one becomes critical); a tier outside the four is sent as
// critical. The context's drill marker ([bulwark.DrillFrom]) is sent as
// bulwark-drill. The
// reserved grpc-previous-rpc-attempts header is never written: grpc-go sets
// it for its own transparent and configured retries, and a server may read
// both.
//
// A downstream's UNAVAILABLE becomes a [*RemoteError] wrapping
// [bulwark.ErrRemoteUnavailable], and RESOURCE_EXHAUSTED one wrapping
// [bulwark.ErrRemoteRejected]. Its RetryAfter comes from a RetryInfo detail
// or the grpc-retry-pushback-ms trailer; a negative or unparseable pushback
// means "do not retry" and the error's Retryable reports false. A pushback
// that comes with any other failure code (INTERNAL, say) is carried the
// same way, as RetryAfter and Retryable, for a retry policy told to retry
// that code. The error keeps the downstream's status: status.FromError and
// status.Code see the original answer. Codes that are not failure codes are successes for the
// policies and reach the caller unchanged. A local refusal reaches the
// caller as an error that still wraps the policy's error and carries a
// status (RESOURCE_EXHAUSTED for [bulwark.ErrRejected], UNAVAILABLE for
// [bulwark.ErrUnavailable], DEADLINE_EXCEEDED for [bulwark.ErrTimeout]), so
// status.Code stays meaningful.
//
// [StreamClientInterceptor] needs a policy that is a [bulwark.Admitter] (a
// breaker, a bulkhead, a Chain of admission policies): a stream outlives any
// call to Do, so admission is held from the stream's creation until
// RecvMsg returns io.EOF or an error, or the stream's context ends. It
// panics at construction when given anything else.
//
// # Metrics
//
// Meter github.com/bulwark-go/bulwark/bulwarkgrpc (see [WithMeterProvider]):
//
//	bulwark.grpc.server.calls  Int64ObservableCounter {call}
//	    {bulwark.policy.name, bulwark.outcome, bulwark.priority}
//	bulwark.grpc.client.calls  Int64ObservableCounter {call}
//	    {bulwark.policy.name, bulwark.outcome, bulwark.priority}
//
// bulwark.outcome is success, failure, ignored (the caller went away) or
// refused (a policy declined the call); bulwark.priority is the effective
// tier. Counts are kept in atomics and exported when the meter is read.
package bulwarkgrpc
