package bulwark

import "context"

type endpointKey struct{}

type endpointCtx struct {
	context.Context
	endpoint string
}

func (c *endpointCtx) Value(key any) any {
	if key == (endpointKey{}) {
		return c
	}
	return c.Context.Value(key)
}

// WithEndpoint returns a copy of ctx naming the endpoint a call was routed
// to, in one allocation. A failover set sets it for fn; transports that
// route by it (bulwarkhttp.FailoverTransport) read it with [EndpointFrom].
func WithEndpoint(ctx context.Context, endpoint string) context.Context {
	return &endpointCtx{Context: ctx, endpoint: endpoint}
}

// EndpointFrom returns the endpoint in ctx, if a policy chose one. It
// allocates nothing.
func EndpointFrom(ctx context.Context) (string, bool) {
	c, ok := ctx.Value(endpointKey{}).(*endpointCtx)
	if !ok || c.endpoint == "" {
		return "", false
	}
	return c.endpoint, true
}

// EndpointPicker is a [Policy] that runs each call against one of several
// redundant endpoints, chosen per call and named in fn's context
// ([EndpointFrom]); failover.Set is one. The transports take it to route
// requests, knowing no policy package.
type EndpointPicker interface {
	Policy
	// Endpoints lists the endpoints the picker chooses from, in its
	// order of preference.
	Endpoints() []string
}
