package bulwarkgrpc_test

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	"github.com/bulwark-go/bulwark/bulwarkgrpc"
	"github.com/bulwark-go/bulwark/health"
	"github.com/bulwark-go/bulwark/internal/policytest"
)

const (
	hServing    = healthpb.HealthCheckResponse_SERVING
	hNotServing = healthpb.HealthCheckResponse_NOT_SERVING
	hUnknown    = healthpb.HealthCheckResponse_SERVICE_UNKNOWN
)

// healthToggle is a check whose result the test sets.
type healthToggle struct{ failing atomic.Bool }

func (tg *healthToggle) check(context.Context) error {
	if tg.failing.Load() {
		return errors.New("down")
	}
	return nil
}

// healthEventually polls f every few milliseconds for at most 5 s.
func healthEventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5 s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func healthStatus(t *testing.T, cl healthpb.HealthClient, svc string) (healthpb.HealthCheckResponse_ServingStatus, codes.Code) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := cl.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
	return resp.GetStatus(), status.Code(err)
}

// startHealth serves c's health (and the test service, when svc is not
// nil) on a loopback gRPC server.
func startHealth(t *testing.T, c *health.Checker, svc testpb.TestServiceServer, opts ...health.Option) (*grpc.Server, *grpc.ClientConn) {
	t.Helper()
	return policytest.ServeGRPC(t, func(s *grpc.Server) {
		bulwarkgrpc.RegisterHealth(s, c, opts...)
		if svc != nil {
			testpb.RegisterTestServiceServer(s, svc)
		}
	}, nil)
}

func TestHealthCheckRPC(t *testing.T) {
	c := health.New(health.WithPollInterval(20 * time.Millisecond))
	defer c.Close()
	db, cache := &healthToggle{}, &healthToggle{}
	cache.failing.Store(true)
	c.Register("db", db.check, health.WithMinInterval(0), health.WithGroup("shop.v1.Checkout"))
	c.Register("cache", cache.check, health.WithCritical(false), health.WithGroup("shop.v1.Checkout", "shop.v1.Search"))
	c.Register("loop", func(context.Context) error { return nil }, health.WithKind(health.Liveness))
	_, conn := startHealth(t, c, nil)
	cl := healthpb.NewHealthClient(conn)

	healthEventually(t, `Check("") SERVING`, func() bool { st, _ := healthStatus(t, cl, ""); return st == hServing })
	for _, svc := range []string{"", "readyz", "livez", "startupz", "shop.v1.Checkout", "shop.v1.Search"} {
		if st, code := healthStatus(t, cl, svc); st != hServing || code != codes.OK {
			t.Errorf("Check(%q) = %v, %v; want SERVING (warnings serve)", svc, st, code)
		}
	}
	for _, svc := range []string{"nope", "db", "shop.v1"} {
		if _, code := healthStatus(t, cl, svc); code != codes.NotFound {
			t.Errorf("Check(%q) = %v, want NOT_FOUND", svc, code)
		}
	}

	db.failing.Store(true)
	healthEventually(t, `Check("") NOT_SERVING`, func() bool { st, _ := healthStatus(t, cl, ""); return st == hNotServing })
	for svc, want := range map[string]healthpb.HealthCheckResponse_ServingStatus{
		"readyz": hNotServing, "shop.v1.Checkout": hNotServing, "shop.v1.Search": hServing, "livez": hServing, "startupz": hServing,
	} {
		if st, _ := healthStatus(t, cl, svc); st != want {
			t.Errorf("with db down: Check(%q) = %v, want %v", svc, st, want)
		}
	}
	db.failing.Store(false)
	healthEventually(t, `Check("") SERVING again`, func() bool { st, _ := healthStatus(t, cl, ""); return st == hServing })
}

func TestHealthWatchRPC(t *testing.T) {
	c := health.New(health.WithPollInterval(20 * time.Millisecond))
	defer c.Close()
	db := &healthToggle{}
	c.Register("db", db.check, health.WithMinInterval(0))
	_, conn := startHealth(t, c, nil)
	cl := healthpb.NewHealthClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	watch := func(svc string) <-chan healthpb.HealthCheckResponse_ServingStatus {
		stream, err := cl.Watch(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil {
			t.Fatal(err)
		}
		ch := make(chan healthpb.HealthCheckResponse_ServingStatus, 16)
		go func() {
			defer close(ch)
			for {
				resp, err := stream.Recv()
				if err != nil {
					return
				}
				ch <- resp.GetStatus()
			}
		}()
		return ch
	}
	await := func(ch <-chan healthpb.HealthCheckResponse_ServingStatus, want healthpb.HealthCheckResponse_ServingStatus) {
		t.Helper()
		for {
			select {
			case st, ok := <-ch:
				if !ok {
					t.Fatalf("stream ended waiting for %v", want)
				}
				if st == want {
					return
				}
			case <-ctx.Done():
				t.Fatalf("no %v", want)
			}
		}
	}
	all := watch("")
	await(all, hServing)
	db.failing.Store(true)
	await(all, hNotServing)
	db.failing.Store(false)
	await(all, hServing)

	// Unknown: SERVICE_UNKNOWN, and the stream stays open — the service
	// may appear later (here: a check joins the group).
	later := watch("shop.v1.Later")
	if st := <-later; st != hUnknown {
		t.Fatalf("Watch(unknown) first sent %v, want SERVICE_UNKNOWN", st)
	}
	select {
	case st, ok := <-later:
		t.Fatalf("Watch(unknown) went on with %v, %v; want the stream open and quiet", st, ok)
	case <-time.After(100 * time.Millisecond):
	}
	c.Register("late", func(context.Context) error { return nil }, health.WithGroup("shop.v1.Later"))
	await(later, hServing)
}

// TestHealthWatchSeesChangeWithinCheckInterval: with a poll interval of an
// hour, a background check's change still reaches Watch at once.
func TestHealthWatchSeesChangeWithinCheckInterval(t *testing.T) {
	c := health.New(health.WithPollInterval(time.Hour))
	defer c.Close()
	db := &healthToggle{}
	c.Register("db", db.check, health.WithInterval(20*time.Millisecond))
	_, conn := startHealth(t, c, nil)
	cl := healthpb.NewHealthClient(conn)
	healthEventually(t, "SERVING", func() bool { st, _ := healthStatus(t, cl, ""); return st == hServing })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stream, err := cl.Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := stream.Recv(); err != nil || resp.GetStatus() != hServing {
		t.Fatalf("first = %v, %v; want SERVING", resp, err)
	}
	db.failing.Store(true)
	if resp, err := stream.Recv(); err != nil || resp.GetStatus() != hNotServing {
		t.Fatalf("after the change = %v, %v; want NOT_SERVING", resp, err)
	}
}

func TestHealthDrainFlipsAtOnce(t *testing.T) {
	c := health.New(health.WithPollInterval(time.Hour))
	defer c.Close()
	c.Register("db", func(context.Context) error { return nil }, health.WithGroup("shop.v1.Checkout"))
	c.Register("loop", func(context.Context) error { return nil }, health.WithKind(health.Liveness))
	_, conn := startHealth(t, c, nil)
	cl := healthpb.NewHealthClient(conn)
	healthEventually(t, "SERVING", func() bool { st, _ := healthStatus(t, cl, "shop.v1.Checkout"); return st == hServing })
	c.StartDrain()
	// No waiting: OnDrain ran before StartDrain returned.
	for svc, want := range map[string]healthpb.HealthCheckResponse_ServingStatus{
		"": hNotServing, "readyz": hNotServing, "shop.v1.Checkout": hNotServing, "livez": hServing, "startupz": hServing,
	} {
		if st, _ := healthStatus(t, cl, svc); st != want {
			t.Errorf("right after StartDrain: Check(%q) = %v, want %v", svc, st, want)
		}
	}
}

func TestRegisterHealthNil(t *testing.T) {
	for name, f := range map[string]func(){
		"nil server":  func() { bulwarkgrpc.RegisterHealth(nil, health.New()) },
		"nil checker": func() { bulwarkgrpc.RegisterHealth(grpc.NewServer(), nil) },
	} {
		func() {
			defer func() {
				if v, _ := recover().(string); !strings.HasPrefix(v, "bulwarkgrpc: ") {
					t.Errorf("%s: panicked with %q, want a bulwarkgrpc message", name, v)
				}
			}()
			f()
		}()
	}
}

// healthProbe returns the path of grpc-health-probe: on PATH or in
// $(go env GOPATH)/bin. Missing, the test fails under CI=true (.ci/run
// installs it) and is skipped elsewhere.
func healthProbe(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("grpc-health-probe"); err == nil {
		return p
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		for _, dir := range filepath.SplitList(strings.TrimSpace(string(out))) {
			p := filepath.Join(dir, "bin", "grpc-health-probe")
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	const msg = "grpc-health-probe not found; install it: go install github.com/grpc-ecosystem/grpc-health-probe@v0.4.61"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// TestHealthProbeBinary runs the real grpc-health-probe against the bridge:
// exit 0 while serving, 3 for an unknown service, 4 once a drain began.
func TestHealthProbeBinary(t *testing.T) {
	bin := healthProbe(t)
	c := health.New(health.WithPollInterval(20 * time.Millisecond))
	defer c.Close()
	c.Register("db", func(context.Context) error { return nil }, health.WithGroup("shop.v1.Checkout"))
	_, conn := startHealth(t, c, nil)
	healthEventually(t, "SERVING", func() bool {
		st, _ := healthStatus(t, healthpb.NewHealthClient(conn), "shop.v1.Checkout")
		return st == hServing
	})
	probe := func(args ...string) int {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, append([]string{"-addr=" + conn.Target(), "-connect-timeout=5s", "-rpc-timeout=5s"}, args...)...)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		switch {
		case err == nil:
			return 0
		case errors.As(err, &ee):
			t.Logf("grpc-health-probe %v: %s", args, strings.TrimSpace(string(out)))
			return ee.ExitCode()
		}
		t.Fatalf("grpc-health-probe %v: %v", args, err)
		return -1
	}
	for _, tt := range []struct {
		args []string
		want int
	}{
		{nil, 0},
		{[]string{"-service=readyz"}, 0},
		{[]string{"-service=livez"}, 0},
		{[]string{"-service=shop.v1.Checkout"}, 0},
		{[]string{"-service=nope"}, 3},
	} {
		if got := probe(tt.args...); got != tt.want {
			t.Errorf("grpc-health-probe %v exited %d, want %d", tt.args, got, tt.want)
		}
	}
	c.StartDrain()
	for _, tt := range []struct {
		args []string
		want int
	}{
		{nil, 4},
		{[]string{"-service=shop.v1.Checkout"}, 4},
		{[]string{"-service=livez"}, 0},
		{[]string{"-service=nope"}, 3},
	} {
		if got := probe(tt.args...); got != tt.want {
			t.Errorf("draining: grpc-health-probe %v exited %d, want %d", tt.args, got, tt.want)
		}
	}
}

// healthLoadService answers UnaryCall after a short pause, or a long one for a
// request whose payload says "slow", or blocks until released for
// "block".
type healthLoadService struct {
	testpb.UnimplementedTestServiceServer
	slow        time.Duration
	slowStarted chan struct{}
	release     chan struct{}
}

func (s *healthLoadService) UnaryCall(ctx context.Context, in *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	switch string(in.GetPayload().GetBody()) {
	case "slow":
		close(s.slowStarted)
		time.Sleep(s.slow)
	case "block":
		close(s.slowStarted)
		select { // bounded: the test releases it
		case <-s.release:
		case <-time.After(10 * time.Second):
		}
	default:
		time.Sleep(2 * time.Millisecond)
	}
	return &testpb.SimpleResponse{Payload: in.GetPayload()}, nil
}

func healthCall(ctx context.Context, cl testpb.TestServiceClient, body string) error {
	_, err := cl.UnaryCall(ctx, &testpb.SimpleRequest{Payload: &testpb.Payload{Body: []byte(body)}})
	return err
}

// healthServeLoopback serves srv on a fresh loopback listener; served is closed
// when Serve returns.
func healthServeLoopback(t *testing.T, srv *grpc.Server) (addr string, served <-chan struct{}) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	t.Cleanup(func() { srv.Stop(); <-done })
	return lis.Addr().String(), done
}

func healthDial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// TestHealthDrainLoopbackGRPC drains a real loopback gRPC server under
// bounded load, with a health Watch stream open as a client-side health
// checker keeps one. The workers play the load balancer: they stop once
// the prober sees NOT_SERVING. Every call they made must succeed —
// including a slow one in flight when GracefulStop begins — readiness must
// answer NOT_SERVING for the whole delay, and the drain must be graceful:
// the open Watch is ended when the delay ends instead of holding
// GracefulStop.
func TestHealthDrainLoopbackGRPC(t *testing.T) {
	const delay = 300 * time.Millisecond
	c := health.New(health.WithPollInterval(20*time.Millisecond), health.WithDrainDelay(delay), health.WithDrainTimeout(5*time.Second))
	defer c.Close()
	c.Register("db", func(context.Context) error { return nil })
	svc := &healthLoadService{slow: delay + 200*time.Millisecond, slowStarted: make(chan struct{})}
	srv := grpc.NewServer()
	bulwarkgrpc.RegisterHealth(srv, c)
	testpb.RegisterTestServiceServer(srv, svc)
	addr, served := healthServeLoopback(t, srv)
	work := testpb.NewTestServiceClient(healthDial(t, addr))
	hc := healthpb.NewHealthClient(healthDial(t, addr))
	healthEventually(t, "SERVING", func() bool { st, _ := healthStatus(t, hc, ""); return st == hServing })

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	watch, err := hc.Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	watchEnd := make(chan error, 1)
	var watched []healthpb.HealthCheckResponse_ServingStatus
	go func() {
		for {
			resp, err := watch.Recv()
			if err != nil {
				watchEnd <- err
				return
			}
			watched = append(watched, resp.GetStatus())
		}
	}()

	var lbOut atomic.Bool
	type outcome struct {
		sent time.Time
		err  error
	}
	var (
		mu    sync.Mutex
		calls []outcome
	)
	record := func(body string) {
		sent := time.Now()
		err := healthCall(ctx, work, body)
		mu.Lock()
		calls = append(calls, outcome{sent, err})
		mu.Unlock()
	}
	var wg sync.WaitGroup
	deadline := time.Now().Add(10 * time.Second)
	for range 4 { // bounded: 4 workers × at most 300 calls, 10 s
		wg.Go(func() {
			for i := 0; i < 300 && !lbOut.Load() && time.Now().Before(deadline); i++ {
				record("fast")
			}
		})
	}
	type sample struct {
		sent, at time.Time
		st       healthpb.HealthCheckResponse_ServingStatus
		code     codes.Code
	}
	var samples []sample
	probeDone := make(chan struct{})
	probeConn := healthDial(t, addr) // its own connection, as a kubelet's
	go func() {
		defer close(probeDone)
		pc := healthpb.NewHealthClient(probeConn)
		for i := 0; i < 1000 && time.Now().Before(deadline); i++ {
			pctx, pcancel := context.WithTimeout(ctx, time.Second)
			sent := time.Now()
			resp, err := pc.Check(pctx, &healthpb.HealthCheckRequest{})
			pcancel()
			s := sample{sent: sent, at: time.Now(), st: resp.GetStatus(), code: status.Code(err)}
			samples = append(samples, s)
			if s.st == hNotServing {
				lbOut.Store(true)
			}
			if err != nil {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()

	time.Sleep(50 * time.Millisecond)
	wg.Go(func() { record("slow") })
	<-svc.slowStarted
	drainStart := time.Now()
	graceful, derr := c.Drain(context.Background(), health.GracefulStopper(srv))
	wg.Wait()
	<-probeDone
	<-served
	if !graceful || derr != nil {
		t.Errorf("Drain() = %v, %v; want graceful (the open Watch must not hold GracefulStop)", graceful, derr)
	}
	if len(calls) < 10 {
		t.Errorf("only %d calls under load", len(calls))
	}
	for _, o := range calls {
		// The workers stop within milliseconds of the flip; one sent late
		// by a stalled machine, when the listener may be closing, proves
		// nothing either way.
		if o.err != nil && o.sent.Before(drainStart.Add(delay/2)) {
			t.Errorf("a call sent %v into the drain failed: %v", o.sent.Sub(drainStart), o.err)
		}
	}
	var sawNotServing bool
	for _, s := range samples {
		switch {
		case s.at.Before(drainStart):
			if s.st != hServing {
				t.Errorf("before the drain: %v %v, want SERVING", s.st, s.code)
			}
		case s.code != codes.OK:
			if s.at.Sub(drainStart) < delay {
				t.Errorf("health failed with %v %v into the drain, want NOT_SERVING until the %v delay ended", s.code, s.at.Sub(drainStart), delay)
			}
		case s.st == hNotServing:
			sawNotServing = true
		case s.sent.After(drainStart): // a probe in flight at the flip may pass
			t.Errorf("sent %v into the drain: %v, want NOT_SERVING", s.sent.Sub(drainStart), s.st)
		}
	}
	if !sawNotServing {
		t.Error("no NOT_SERVING during the delay")
	}
	select {
	case err := <-watchEnd:
		if status.Code(err) != codes.Unavailable {
			t.Errorf("Watch ended with %v, want UNAVAILABLE", err)
		}
		if len(watched) < 2 || watched[len(watched)-1] != hNotServing {
			t.Errorf("Watch saw %v, want SERVING … NOT_SERVING", watched)
		}
	case <-time.After(5 * time.Second):
		t.Error("the Watch stream did not end")
	}
	t.Logf("%d calls under load, %d health samples", len(calls), len(samples))
}

// TestHealthDrainForcedGRPC: a call that outlives the drain timeout is cut
// off by Stop, and Drain says it was not graceful.
func TestHealthDrainForcedGRPC(t *testing.T) {
	c := health.New(health.WithDrainDelay(0), health.WithDrainTimeout(100*time.Millisecond))
	defer c.Close()
	svc := &healthLoadService{slowStarted: make(chan struct{}), release: make(chan struct{})}
	srv := grpc.NewServer()
	bulwarkgrpc.RegisterHealth(srv, c)
	testpb.RegisterTestServiceServer(srv, svc)
	addr, served := healthServeLoopback(t, srv)
	work := testpb.NewTestServiceClient(healthDial(t, addr))
	callErr := make(chan error, 1)
	go func() { callErr <- healthCall(context.Background(), work, "block") }()
	<-svc.slowStarted
	graceful, err := c.Drain(context.Background(), health.GracefulStopper(srv))
	<-served
	if graceful || err != nil {
		t.Errorf("Drain() = %v, %v; want not graceful, nil", graceful, err)
	}
	if err := <-callErr; status.Code(err) != codes.Unavailable {
		t.Errorf("the cut-off healthCall = %v, want UNAVAILABLE", err)
	}
	close(svc.release)
}
