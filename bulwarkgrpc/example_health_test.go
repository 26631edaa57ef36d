package bulwarkgrpc_test

import (
	"context"
	"fmt"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/bulwark-go/bulwark/bulwarkgrpc"
	"github.com/bulwark-go/bulwark/health"
)

// The standard gRPC health service, fed by a Checker: "" for the whole
// server, a group per gRPC service it gates, and the drain.
func ExampleRegisterHealth() {
	c := health.New(health.WithDrainDelay(0))
	defer c.Close()
	c.Register("db", func(ctx context.Context) error { return nil },
		health.WithGroup("shop.v1.Checkout"))

	srv := grpc.NewServer()
	bulwarkgrpc.RegisterHealth(srv, c)
	lis, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(lis)

	conn, _ := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	defer conn.Close()
	hc := healthpb.NewHealthClient(conn)
	check := func(svc string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil {
			return err.Error()
		}
		return resp.GetStatus().String()
	}
	for check("") != "SERVING" { // the first evaluation runs at once, on the Checker's loop
		time.Sleep(time.Millisecond)
	}
	fmt.Println(`""`, check(""))
	fmt.Println("shop.v1.Checkout", check("shop.v1.Checkout"))
	fmt.Println("nope", check("nope"))

	c.StartDrain() // what Drain does first
	fmt.Println("draining:", check(""), "livez", check("livez"))
	graceful, _ := c.Drain(context.Background(), health.GracefulStopper(srv))
	fmt.Println("graceful:", graceful)
	// Output:
	// "" SERVING
	// shop.v1.Checkout SERVING
	// nope rpc error: code = NotFound desc = unknown service
	// draining: NOT_SERVING livez SERVING
	// graceful: true
}
