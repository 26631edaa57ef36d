package bulwarkgrpc

import (
	"context"
	"strconv"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// MarkDegraded tells the client that the answer of the call whose server
// context is ctx is degraded by the switch named name (a fallback answer,
// a feature left out): it adds name to the bulwark-degraded header
// metadata, with grpc.SetHeader. Call it from the handler before the
// header is sent (before the first message of a stream). It returns an
// error for a name that is empty, longer than 64 bytes or not visible
// ASCII, and grpc.SetHeader's error (ctx is not a server call's, or the
// header was already sent). The server interceptors themselves send
// bulwark-degraded (in the trailer) on a refusal by a degradation switch
// ([bulwark.Degraded]).
func MarkDegraded(ctx context.Context, name string) error {
	if !validMarker(name) {
		return &markerError{name: name}
	}
	return grpc.SetHeader(ctx, metadata.Pairs(MetadataDegraded, name))
}

type markerError struct{ name string }

func (e *markerError) Error() string {
	n := e.name
	if len(n) > 64 {
		n = n[:64] + "…"
	}
	return "bulwarkgrpc: MarkDegraded: invalid switch name " + strconv.Quote(n) + " (want 1 to 64 characters of visible ASCII)"
}
