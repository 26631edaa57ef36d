package main

import (
	"context"
	"errors"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulwarkgrpc"
	"github.com/bulwark-go/bulwark/examples/checkout/checkoutpb"
)

// grpcServer is the service's gRPC interface: checkout.v1.Checkout under
// the same policies as HTTP, the standard health service and reflection.
func (s *service) grpcServer() *grpc.Server {
	perMethod := map[string][]grpc.UnaryServerInterceptor{
		checkoutpb.Checkout_CreateCharge_FullMethodName: append(s.idempotentGRPC(),
			bulwarkgrpc.UnaryServerInterceptor(s.charges, bulwarkgrpc.WithName("charges"))),
		checkoutpb.Checkout_ListCatalog_FullMethodName: {
			bulwarkgrpc.UnaryServerInterceptor(s.catalogPolicy(),
				bulwarkgrpc.WithName("catalog"),
				bulwarkgrpc.WithKeyFunc(grpcClientKey)),
		},
	}
	srv := grpc.NewServer(grpc.UnaryInterceptor(routeUnary(perMethod)))
	checkoutpb.RegisterCheckoutServer(srv, &checkoutServer{s: s})
	s.registerGRPCHealth(srv)
	reflection.Register(srv)
	return srv
}

// routeUnary runs each method's own interceptors (the first outermost);
// a method without any (health, reflection) runs as is.
func routeUnary(m map[string][]grpc.UnaryServerInterceptor) grpc.UnaryServerInterceptor {
	chained := make(map[string]grpc.UnaryServerInterceptor, len(m))
	for method, ics := range m {
		chained[method] = chainUnary(ics)
	}
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if ic, ok := chained[info.FullMethod]; ok {
			return ic(ctx, req, info, h)
		}
		return h(ctx, req)
	}
}

func chainUnary(ics []grpc.UnaryServerInterceptor) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		next := h
		for i := len(ics) - 1; i >= 0; i-- {
			ic, inner := ics[i], next
			next = func(ctx context.Context, req any) (any, error) { return ic(ctx, req, info, inner) }
		}
		return next(ctx, req)
	}
}

// grpcClientKey is the catalog quota's key of a gRPC call: the x-client-id
// metadata, else the peer's address.
func grpcClientKey(ctx context.Context, _ string) string {
	var id, addr string
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get("x-client-id"); len(v) > 0 {
			id = v[0]
		}
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		addr = p.Addr.String()
	}
	return clientKey(id, addr)
}

// checkoutServer implements checkout.v1.Checkout.
type checkoutServer struct {
	checkoutpb.UnimplementedCheckoutServer
	s *service
}

func (c *checkoutServer) CreateCharge(ctx context.Context, req *checkoutpb.CreateChargeRequest) (*checkoutpb.Charge, error) {
	c.s.executed.Add(1)
	if err := validateCharge(req.GetAmount(), req.GetCurrency()); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	var key string
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get("idempotency-key"); len(v) > 0 {
			key = v[0]
		}
	}
	ch, err := c.s.charge(ctx, key, req.GetAmount(), req.GetCurrency())
	if err != nil {
		if ctx.Err() != nil {
			return nil, status.FromContextError(ctx.Err()).Err()
		}
		c.s.log.Warn("charge failed", "err", err)
		// Errors of a bulwark class become UNAVAILABLE (with the hint) in
		// the interceptor; anything else is an internal error, whose text
		// (hosts, addresses) stays here.
		if errors.Is(err, bulwark.ErrUnavailable) || errors.Is(err, bulwark.ErrRemoteUnavailable) ||
			errors.Is(err, bulwark.ErrRemoteRejected) || errors.Is(err, bulwark.ErrTimeout) {
			return nil, err
		}
		return nil, status.Error(codes.Internal, "payment failed")
	}
	return &checkoutpb.Charge{Id: ch.ID, Amount: ch.Amount, Currency: ch.Currency, Status: ch.Status}, nil
}

func (c *checkoutServer) ListCatalog(ctx context.Context, _ *checkoutpb.ListCatalogRequest) (*checkoutpb.Catalog, error) {
	items, recs, degraded := c.s.catalogAnswer()
	if degraded {
		if err := bulwarkgrpc.MarkDegraded(ctx, "recommendations"); err != nil {
			return nil, err
		}
	}
	return &checkoutpb.Catalog{Items: pbItems(items), Recommendations: pbItems(recs)}, nil
}

func pbItems(items []item) []*checkoutpb.Item {
	out := make([]*checkoutpb.Item, len(items))
	for i, it := range items {
		out[i] = &checkoutpb.Item{Sku: it.SKU, Name: it.Name, Price: it.Price}
	}
	return out
}
