package bulwarkgrpc

import (
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/bulwark-go/bulwark/idempotency"
)

// Idempotency metadata keys.
const (
	// MetadataIdempotencyKey carries the client's idempotency key, in the
	// syntax of the HTTP Idempotency-Key field.
	MetadataIdempotencyKey = "idempotency-key"
	// MetadataReplayed is sent as a header, "true", with a replayed
	// response.
	MetadataReplayed = "idempotent-replayed"
)

// idemRecordType names the field of a stored OK response that holds the
// response message's full name.
const idemRecordType = "type"

// IdempotencyUnaryServerInterceptor returns a unary server interceptor
// that gives idempotency-key semantics to every unary method (or those of
// idempotency.WithMethods, by full method name), with the records in
// store: a call with the idempotency-key metadata executes at most once,
// and a duplicate gets the stored response, with the header
// idempotent-replayed: true, without running the handler. It takes the
// options of package idempotency, whose documentation has the rules and
// the HTTP and gRPC answers side by side:
//
//	no key                      passes through (INVALID_ARGUMENT with WithKeyRequired)
//	malformed key, request      INVALID_ARGUMENT
//	  over the size limit
//	key reused, other request   FAILED_PRECONDITION
//	duplicate in flight         ABORTED, RetryInfo 1 s and grpc-retry-pushback-ms
//	duplicate of an oversized   ALREADY_EXISTS
//	  response
//	store down or slow          UNAVAILABLE, RetryInfo 1 s (or executes, WithFailOpen)
//
// The fingerprint is the full method and the deterministic marshaling of
// the request message; the scope, by default, the authorization metadata.
// An OK response is stored marshaled, with its message type, and replayed
// as a new message of that type from the protobuf registry (so the type
// must be a registered generated message); an error is stored as its
// status with details. Stored: OK, INVALID_ARGUMENT, NOT_FOUND,
// ALREADY_EXISTS, PERMISSION_DENIED, FAILED_PRECONDITION, OUT_OF_RANGE and
// UNAUTHENTICATED (with idempotency.WithStoreServerErrors also UNKNOWN,
// INTERNAL, UNIMPLEMENTED and DATA_LOSS). Released, so a retry executes:
// other codes, an error of a bulwark class (a policy's refusal), a panic,
// and a handler that returned its context's error after the context ended
// (the client went away, or the lease ran out). Response metadata the
// handler set is not stored.
//
// The handler runs under a context that ends with the claim's lease.
func IdempotencyUnaryServerInterceptor(store idempotency.Store, opts ...idempotency.Option) grpc.UnaryServerInterceptor {
	g := idempotency.New(store, opts...)
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if !g.Applies(info.FullMethod, nil) {
			return handler(ctx, req)
		}
		md, _ := metadata.FromIncomingContext(ctx)
		key, err := g.Key(md[MetadataIdempotencyKey])
		if err != nil {
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
		if key == "" {
			return handler(ctx, req)
		}
		var fp idempotency.Fingerprint
		if g.Fingerprinted() {
			msg, ok := req.(proto.Message)
			if !ok {
				return nil, status.Error(codes.Internal, "bulwarkgrpc: idempotency: the request is not a protobuf message")
			}
			b, err := proto.MarshalOptions{Deterministic: true}.Marshal(msg)
			if err != nil {
				return nil, status.Error(codes.Internal, "bulwarkgrpc: idempotency: marshal the request: "+err.Error())
			}
			if int64(len(b)) > g.MaxRequestBytes() {
				return nil, status.Error(codes.InvalidArgument, g.Invalid(idempotency.ErrRequestTooLarge).Error())
			}
			h := sha256.New()
			h.Write([]byte(info.FullMethod))
			h.Write([]byte{0})
			h.Write(b)
			h.Sum(fp[:0])
		}
		scope := strings.Join(md["authorization"], "\n")

		call, rec, err := g.Begin(ctx, key, scope, fp)
		switch {
		case err != nil:
			return nil, idemStatus(ctx, err)
		case rec != nil:
			return idemReplayUnary(ctx, rec)
		}

		hctx, cancel := call.Context(ctx)
		defer cancel()
		normal := false
		defer func() {
			if !normal {
				_ = call.Release(ctx) // a panic: a retry executes
			}
		}()
		resp, herr := handler(hctx, req)
		normal = true

		if herr == nil {
			msg, ok := resp.(proto.Message)
			var b []byte
			if ok {
				b, err = proto.Marshal(msg)
			}
			if !ok || err != nil {
				_ = call.Release(ctx)
				return resp, nil
			}
			_ = call.Complete(ctx, &idempotency.Record{
				Header: []idempotency.Field{{Name: idemRecordType, Value: string(msg.ProtoReflect().Descriptor().FullName())}},
				Body:   b,
			})
			return resp, nil
		}
		if isClass(herr) || (hctx.Err() != nil && isContextErr(herr)) {
			_ = call.Release(ctx)
			return nil, herr
		}
		st := status.Convert(herr)
		if !idemStorableCode(st.Code(), g.StoresServerErrors()) {
			_ = call.Release(ctx)
			return nil, herr
		}
		b, err := proto.Marshal(st.Proto())
		if err != nil {
			_ = call.Release(ctx)
			return nil, herr
		}
		_ = call.Complete(ctx, &idempotency.Record{Status: int(st.Code()), Body: b})
		return nil, herr
	}
}

// idemStorableCode reports whether an answer with code is stored.
func idemStorableCode(c codes.Code, serverErrors bool) bool {
	switch c {
	case codes.OK, codes.InvalidArgument, codes.NotFound, codes.AlreadyExists, codes.PermissionDenied,
		codes.FailedPrecondition, codes.OutOfRange, codes.Unauthenticated:
		return true
	case codes.Unknown, codes.Internal, codes.Unimplemented, codes.DataLoss:
		return serverErrors
	}
	return false
}

// idemReplayUnary answers with a stored record.
func idemReplayUnary(ctx context.Context, rec *idempotency.Record) (any, error) {
	_ = grpc.SetHeader(ctx, metadata.Pairs(MetadataReplayed, "true"))
	if rec.Status != int(codes.OK) {
		var sp spb.Status
		if err := proto.Unmarshal(rec.Body, &sp); err != nil {
			return nil, status.Error(codes.Internal, "bulwarkgrpc: idempotency: corrupt stored status")
		}
		return nil, status.ErrorProto(&sp)
	}
	var name string
	for _, f := range rec.Header {
		if f.Name == idemRecordType {
			name = f.Value
		}
	}
	mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(name))
	if err != nil {
		return nil, status.Error(codes.Internal, "bulwarkgrpc: idempotency: stored response type "+name+" is not registered")
	}
	m := mt.New().Interface()
	if err := proto.Unmarshal(rec.Body, m); err != nil {
		return nil, status.Error(codes.Internal, "bulwarkgrpc: idempotency: corrupt stored response")
	}
	return m, nil
}

// idemStatus maps a refusal of the Guard to a status; a hint goes out as
// RetryInfo and the grpc-retry-pushback-ms trailer.
func idemStatus(ctx context.Context, err error) error {
	var (
		code = codes.Internal
		msg  = err.Error()
		hint time.Duration
	)
	switch {
	case errors.Is(err, idempotency.ErrInFlight):
		code, hint = codes.Aborted, time.Second
	case errors.Is(err, idempotency.ErrMismatch):
		code = codes.FailedPrecondition
	case errors.Is(err, idempotency.ErrNotReplayable):
		code = codes.AlreadyExists
		_ = grpc.SetHeader(ctx, metadata.Pairs(MetadataReplayed, "true"))
	case errors.Is(err, idempotency.ErrStoreUnavailable):
		// Not the store's own message: it may name hosts.
		code, msg, hint = codes.Unavailable, idempotency.ErrStoreUnavailable.Error(), time.Second
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	st := status.New(code, msg)
	if hint > 0 {
		if d, derr := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(hint)}); derr == nil {
			st = d
		}
		_ = grpc.SetTrailer(ctx, metadata.Pairs(MetadataPushback, pushbackValue(hint)))
	}
	return st.Err()
}
