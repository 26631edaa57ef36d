package bulwarkgrpc

import (
	"context"
	"errors"
	"strconv"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/bulwark-go/bulwark"
)

// Metadata keys.
const (
	// MetadataPriority carries the effective priority tier
	// ("critical-plus", "critical", "sheddable-plus", "sheddable").
	MetadataPriority = "bulwark-priority"
	// MetadataAttempt carries the 1-based attempt number of a call.
	MetadataAttempt = "bulwark-attempt"
	// MetadataPushback is gRPC's retry pushback trailer (gRFC A6): the
	// milliseconds to wait before a retry; negative means do not retry.
	MetadataPushback = "grpc-retry-pushback-ms"
	// MetadataDrill marks synthetic traffic for an armed drill
	// ([bulwark.WithDrill]): read by the server interceptors, sent by the
	// client ones.
	MetadataDrill = "bulwark-drill"
	// MetadataDegraded names the degradation switch that refused a call
	// or degraded its answer (see [MarkDegraded]).
	MetadataDegraded = "bulwark-degraded"
)

// RemoteError is a downstream's UNAVAILABLE or RESOURCE_EXHAUSTED answer,
// classified for the policies: it wraps [bulwark.ErrRemoteUnavailable] or
// [bulwark.ErrRemoteRejected], carries the downstream's retry hint, and
// keeps the downstream's status, so status.FromError(err) returns the
// status the downstream sent (details included).
//
// When the downstream sent a grpc-retry-pushback-ms trailer, the error
// returned by the client interceptors wraps the RemoteError in an error
// whose Retryable reports whether the pushback allows a retry (a negative
// or unparseable value does not); errors.As still finds the RemoteError.
type RemoteError struct {
	st    *status.Status
	class error
	hint  time.Duration
}

// Error returns the status in grpc-go's format
// ("rpc error: code = Unavailable desc = …").
func (e *RemoteError) Error() string { return e.st.String() }

// Unwrap returns the class: [bulwark.ErrRemoteUnavailable] or
// [bulwark.ErrRemoteRejected].
func (e *RemoteError) Unwrap() error { return e.class }

// GRPCStatus returns the downstream's status, for status.FromError and
// status.Code.
func (e *RemoteError) GRPCStatus() *status.Status { return e.st }

// RetryAfter returns the downstream's hint (RetryInfo, else
// grpc-retry-pushback-ms), or 0 when it sent none.
func (e *RemoteError) RetryAfter() time.Duration { return e.hint }

// pushbackError is a RemoteError that came with a grpc-retry-pushback-ms
// trailer: the downstream said whether to retry.
type pushbackError struct {
	*RemoteError
	retry bool
}

func (e *pushbackError) Unwrap() error   { return e.RemoteError }
func (e *pushbackError) Retryable() bool { return e.retry }

// classify turns the error of one downstream call into what the policies
// see: UNAVAILABLE and RESOURCE_EXHAUSTED become RemoteErrors; anything else
// is returned as is. ok reports whether err was classified.
func classify(err error, trailer metadata.MD) (_ error, ok bool) {
	st, isStatus := status.FromError(err)
	if !isStatus {
		return err, false
	}
	var class error
	switch st.Code() {
	case codes.Unavailable:
		class = bulwark.ErrRemoteUnavailable
	case codes.ResourceExhausted:
		class = bulwark.ErrRemoteRejected
	default:
		// Not classified, but a pushback still says whether, and when,
		// to retry, for a retry policy that retries this code.
		if vs := trailer.Get(MetadataPushback); len(vs) > 0 {
			hint, retry := parsePushback(vs[0])
			return &pushbackStatusError{err: err, st: st, hint: hint, retry: retry}, false
		}
		return err, false
	}
	re := &RemoteError{st: st, class: class}
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay() != nil {
			if h := ri.GetRetryDelay().AsDuration(); h > 0 {
				re.hint = h
			}
			break
		}
	}
	vs := trailer.Get(MetadataPushback)
	if len(vs) == 0 {
		return re, true
	}
	hint, retry := parsePushback(vs[0])
	if re.hint == 0 {
		re.hint = hint
	}
	return &pushbackError{RemoteError: re, retry: retry}, true
}

// parsePushback parses a grpc-retry-pushback-ms value: the hint, and
// whether a retry is allowed (not for a negative or unparseable value,
// whose hint is 0).
func parsePushback(v string) (hint time.Duration, retry bool) {
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil || ms < 0 {
		return 0, false
	}
	return time.Duration(min(ms, int64(time.Duration(1<<63-1)/time.Millisecond))) * time.Millisecond, true
}

// pushbackStatusError is a downstream's answer of a code that is not
// classified (INTERNAL, say) that came with a grpc-retry-pushback-ms
// trailer: it keeps the answer (errors.Is, status.FromError) and carries
// the pushback as RetryAfter and Retryable, for a retry policy that
// retries this code.
type pushbackStatusError struct {
	err   error
	st    *status.Status
	hint  time.Duration
	retry bool
}

func (e *pushbackStatusError) Error() string              { return e.err.Error() }
func (e *pushbackStatusError) Unwrap() error              { return e.err }
func (e *pushbackStatusError) GRPCStatus() *status.Status { return e.st }
func (e *pushbackStatusError) RetryAfter() time.Duration  { return e.hint }
func (e *pushbackStatusError) Retryable() bool            { return e.retry }

// statusError is an error from a policy (a local refusal, a timeout, an
// ended context) with the status the client interceptors give it, so that
// status.Code works on everything they return.
type statusError struct {
	err error
	st  *status.Status
}

func (e *statusError) Error() string              { return e.err.Error() }
func (e *statusError) Unwrap() error              { return e.err }
func (e *statusError) GRPCStatus() *status.Status { return e.st }

// hasStatus reports whether err carries a gRPC status.
func hasStatus(err error) bool {
	var gs interface{ GRPCStatus() *status.Status }
	return errors.As(err, &gs)
}

// clientError is what the client interceptors return for err, the error of
// the policy: an error with a status already (the downstream's, a
// RemoteError) as is; anything else wrapped with the status its class
// stands for.
func clientError(err error) error {
	if err == nil || hasStatus(err) {
		return err
	}
	st, _ := statusOf(err, codes.Unknown)
	return &statusError{err: err, st: st}
}

// statusOf maps err by its class; other is the code of an error of no class.
// The status carries a RetryInfo detail when err has a hint, which is also
// returned.
func statusOf(err error, other codes.Code) (*status.Status, time.Duration) {
	code := other
	switch {
	case errors.Is(err, bulwark.ErrRejected):
		code = codes.ResourceExhausted
	case errors.Is(err, bulwark.ErrUnavailable),
		errors.Is(err, bulwark.ErrRemoteRejected),
		errors.Is(err, bulwark.ErrRemoteUnavailable):
		code = codes.Unavailable
	case errors.Is(err, context.DeadlineExceeded): // bulwark.ErrTimeout wraps it
		code = codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	}
	msg := err.Error()
	var gs interface{ GRPCStatus() *status.Status }
	if errors.As(err, &gs) && gs.GRPCStatus() != nil {
		msg = gs.GRPCStatus().Message()
	}
	st := status.New(code, msg)
	hint, ok := bulwark.RetryAfter(err)
	if !ok {
		return st, 0
	}
	if withHint, derr := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(hint)}); derr == nil {
		st = withHint
	}
	return st, hint
}

// isClass reports whether err is of one of the classes or ErrTimeout: the
// errors the server interceptors map rather than pass through.
func isClass(err error) bool {
	return errors.Is(err, bulwark.ErrRejected) || errors.Is(err, bulwark.ErrUnavailable) ||
		errors.Is(err, bulwark.ErrRemoteRejected) || errors.Is(err, bulwark.ErrRemoteUnavailable) ||
		errors.Is(err, bulwark.ErrTimeout)
}

// pushbackValue is the grpc-retry-pushback-ms value for hint > 0, in whole
// milliseconds rounded up. It does not add before dividing, which would
// overflow into a negative ("never retry") for a hint near the largest
// Duration.
func pushbackValue(hint time.Duration) string {
	ms := int64(hint / time.Millisecond)
	if hint%time.Millisecond > 0 {
		ms++
	}
	return strconv.FormatInt(ms, 10)
}

// downstreamSaidNoRetry reports whether err carries a downstream's own
// "do not retry": a negative or unparseable grpc-retry-pushback-ms it
// sent. A retry policy that gave up, or a request that cannot be
// replayed, is not the downstream's word.
func downstreamSaidNoRetry(err error) bool {
	var pe *pushbackError
	if errors.As(err, &pe) && !pe.retry {
		return true
	}
	var pse *pushbackStatusError
	return errors.As(err, &pse) && !pse.retry
}

// validMarker reports whether s may be a drill or degradation marker: 1
// to 64 characters of visible ASCII.
func validMarker(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

const internalCode = codes.Internal

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

func errorsIsTimeout(err error) bool { return errors.Is(err, bulwark.ErrTimeout) }
