// Package idempotency implements Idempotency-Key semantics
// (draft-ietf-httpapi-idempotency-key-header, and Stripe's documented
// practice): a request carrying a key executes at most once; a duplicate
// gets the stored response, byte for byte, without running the handler.
//
// It is the transport-neutral engine — key rules, scoping, claim /
// complete / release, fingerprints, the [Store] interface and two stores,
// [NewMemoryStore] and [NewRedisStore]. Its faces are
// bulwarkhttp.Idempotency and bulwarkgrpc.IdempotencyUnaryServerInterceptor,
// which take this package's options:
//
//	mux := http.NewServeMux()
//	h := bulwarkhttp.Idempotency(idempotency.NewMemoryStore())(mux)
//
// # The model
//
// A request the key applies to (POST and PATCH on HTTP, every unary method
// on gRPC; [WithMethods]) is looked at only when it carries a key
// ([WithKeyRequired] refuses it otherwise). The key is an RFC 8941
// sf-string or the bare form clients commonly send ([ParseKey]). The
// stored key is a digest of the key and a scope — by default the
// Authorization header (gRPC: authorization metadata), so one principal
// never receives another's response; [WithScope] reads it from the
// context instead. Without credentials, all anonymous callers share one
// scope.
//
// The first request claims the key for a lease and runs. When it ends, the
// face stores its response (status, the headers that describe the body,
// the body) or releases the claim, before the response is complete: a
// duplicate sent right after the answer replays it. Which responses are
// stored:
//
//	stored                              released (a retry executes)
//	2xx, 3xx, 4xx except below          408, 409, 425, 429, 5xx
//	gRPC OK, INVALID_ARGUMENT,          CANCELLED, DEADLINE_EXCEEDED,
//	NOT_FOUND, ALREADY_EXISTS,          RESOURCE_EXHAUSTED, ABORTED,
//	PERMISSION_DENIED, FAILED_          UNAVAILABLE, UNKNOWN, INTERNAL,
//	PRECONDITION, OUT_OF_RANGE,         UNIMPLEMENTED, DATA_LOSS, and any
//	UNAUTHENTICATED                     error of a bulwark class (a refusal)
//
// and, on both, a handler panic and a client that went away before
// anything was written (the handler returned because of its context). A
// handler that finished and wrote a status is stored even if its client
// left: a payment that ran must not run twice. [WithStoreServerErrors]
// stores server errors too, Stripe-style (HTTP 5xx except 503; gRPC
// UNKNOWN, INTERNAL, UNIMPLEMENTED, DATA_LOSS).
//
// # The lease
//
// The lease is bound to the handler's deadline rather than renewed: the
// handler runs under a context that ends with its lease ([WithLease],
// default 30 s, or the request's deadline if that comes first), and the
// store keeps the claim for the lease plus two store timeouts, the time to
// complete it. So a live claim is never taken over while a handler that
// honours its context runs, and no goroutine renews anything. A claim
// whose owner died is taken over by the next duplicate once its lease
// ends; the dead owner's late completion (its token no longer owns the
// key) is discarded. A handler that ignores its context and runs past its
// lease loses its claim.
//
// # On the wire
//
//	case                             HTTP                                gRPC
//	no key                           passes through (400 if required)    passes (INVALID_ARGUMENT if required)
//	malformed, empty, > 255 chars,   400 problem+json                    INVALID_ARGUMENT
//	  several fields, a list
//	body over the request limit      413 problem+json                    INVALID_ARGUMENT
//	first request                    executes; response stored           executes; response stored
//	duplicate, completed             stored status, headers, body,       stored response (or error status),
//	                                 Idempotent-Replayed: true           header idempotent-replayed: true
//	duplicate, in flight             409 problem+json, Retry-After: 1    ABORTED, RetryInfo 1 s
//	same key, other request          422 problem+json                    FAILED_PRECONDITION
//	duplicate of an oversized        409 problem+json, no Retry-After,   ALREADY_EXISTS
//	  response                         Idempotent-Replayed: true
//	store down or slow               503 problem+json, Retry-After: 1    UNAVAILABLE, RetryInfo 1 s
//	                                 (WithFailOpen: executes)            (WithFailOpen: executes)
//
// Refusals before the handler (400, 409, 413, 422, 503) store nothing.
// The headers stored and replayed with a body are Content-Type,
// Content-Encoding, Content-Language, Content-Disposition,
// Content-Location, Location, ETag, Last-Modified, Cache-Control, Expires,
// Vary and Link. gRPC replays the response message (found by its type in
// the protobuf registry) or the error status with its details; response
// metadata set by the handler is not replayed.
//
// A response larger than [WithMaxResponseBytes] (default 1 MiB) is sent to
// the first caller in full and not stored; its duplicates do not execute
// and get [ErrNotReplayable]. Nothing is silently truncated.
//
// Every store call runs under [WithStoreTimeout] (default 100 ms). A store
// that fails or is slower refuses the request with [ErrStoreUnavailable]
// (exactly-once cannot be promised), unless [WithFailOpen].
//
// # Metrics
//
//	bulwark.idempotency.requests        counter {request}  bulwark.policy.name, bulwark.result
//	                                    (executed|replayed|conflict|mismatch|invalid|store_error)
//	bulwark.idempotency.store.duration  histogram s        bulwark.policy.name
//	bulwark.idempotency.store.entries   up-down counter    (memory store, observable)
//	bulwark.idempotency.store.bytes     up-down counter By (memory store, observable)
//
// A request that carried no key, or that the key does not apply to, is not
// counted.
package idempotency
