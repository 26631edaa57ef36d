package health_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/bulwark-go/bulwark/health"
)

func Example() {
	c := health.New()
	defer c.Close()

	// A readiness check (the default): a failure takes the instance out of
	// rotation.
	c.Register("db", func(ctx context.Context) error { return nil }, health.WithComponentType("datastore"))
	// A dependency this instance survives without: reported, never failing
	// the probe. Register a breaker's b.HealthCheck like this.
	c.Register("recommendations", func(ctx context.Context) error {
		return errors.New("breaker open")
	}, health.WithCritical(false))
	// A liveness check: only what a restart fixes.
	c.Register("event-loop", func(ctx context.Context) error { return nil }, health.WithKind(health.Liveness))

	rep := c.Check(context.Background(), health.Readiness)
	fmt.Println("readiness:", rep.Status)
	for _, r := range rep.Checks {
		fmt.Printf("  %s %s %v\n", r.Name, r.Status, r.Err)
	}
	fmt.Println("liveness:", c.Check(context.Background(), health.Liveness).Status)
	// Output:
	// readiness: warn
	//   db pass <nil>
	//   recommendations warn breaker open
	// liveness: pass
}

// Drain on SIGTERM: readiness fails at once, the server keeps serving for
// the delay so that load balancers stop sending, then it shuts down under a
// deadline.
func Example_drain() {
	c := health.New(
		health.WithDrainDelay(50*time.Millisecond), // 5 s by default
		health.WithDrainTimeout(time.Second),       // 20 s by default
	)
	defer c.Close()
	c.Register("db", func(ctx context.Context) error { return nil })

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := &http.Server{Handler: http.NotFoundHandler()}
	go srv.Serve(ln)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	c.OnDrain(func() {
		fmt.Println("readiness:", c.Check(context.Background(), health.Readiness).Status)
		fmt.Println("liveness:", c.Check(context.Background(), health.Liveness).Status)
	})

	// The platform (kubelet, systemd) sends SIGTERM; here we send it.
	self, _ := os.FindProcess(os.Getpid())
	_ = self.Signal(syscall.SIGTERM)

	<-ctx.Done()
	stop() // from now on a second signal ends the process at once
	graceful, err := c.Drain(context.Background(), srv)
	fmt.Println("graceful:", graceful, err)
	// Output:
	// readiness: fail
	// liveness: pass
	// graceful: true <nil>
}

func ExamplePingCheck() {
	// db.PingContext (database/sql) and rdb.Ping (go-redis) fit as they are;
	// here, a stand-in.
	ping := func(ctx context.Context) error { return errors.New("connection refused") }
	c := health.New()
	defer c.Close()
	c.Register("db", health.PingCheck(ping), health.WithComponentType("datastore"))
	r, _ := c.CheckOne(context.Background(), health.Readiness, "db")
	fmt.Println(r.Status, r.Err)
	// Output: fail connection refused
}

func ExampleObserve() {
	c := health.New()
	defer c.Close()
	c.Register("queue", func(ctx context.Context) error {
		depth := 1200
		health.Observe(ctx, depth, "{job}")
		if depth > 1000 {
			return health.Warning(fmt.Errorf("%d jobs queued", depth))
		}
		return nil
	})
	r, _ := c.CheckOne(context.Background(), health.Readiness, "queue")
	fmt.Println(r.Status, r.Err, r.ObservedValue, r.ObservedUnit)
	// Output: warn 1200 jobs queued 1200 {job}
}
