package e2e_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/interop"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulwarkgrpc"
)

// The child process's environment.
const (
	envCase = "BULWARK_E2E_CASE"
	envAddr = "BULWARK_E2E_ADDR"
)

// cases are grpc-go's interop cases run here, by their interop names.
var cases = map[string]func(ctx context.Context, conn *grpc.ClientConn){
	"empty_unary": func(ctx context.Context, conn *grpc.ClientConn) {
		interop.DoEmptyUnaryCall(ctx, testgrpc.NewTestServiceClient(conn))
	},
	"large_unary": func(ctx context.Context, conn *grpc.ClientConn) {
		interop.DoLargeUnaryCall(ctx, testgrpc.NewTestServiceClient(conn))
	},
	"client_streaming": func(ctx context.Context, conn *grpc.ClientConn) {
		interop.DoClientStreaming(ctx, testgrpc.NewTestServiceClient(conn))
	},
	"server_streaming": func(ctx context.Context, conn *grpc.ClientConn) {
		interop.DoServerStreaming(ctx, testgrpc.NewTestServiceClient(conn))
	},
	"ping_pong": func(ctx context.Context, conn *grpc.ClientConn) {
		interop.DoPingPong(ctx, testgrpc.NewTestServiceClient(conn))
	},
	"empty_stream": func(ctx context.Context, conn *grpc.ClientConn) {
		interop.DoEmptyStream(ctx, testgrpc.NewTestServiceClient(conn))
	},
	"custom_metadata": func(ctx context.Context, conn *grpc.ClientConn) {
		interop.DoCustomMetadata(ctx, testgrpc.NewTestServiceClient(conn))
	},
	"status_code_and_message": func(ctx context.Context, conn *grpc.ClientConn) {
		interop.DoStatusCodeAndMessage(ctx, testgrpc.NewTestServiceClient(conn))
	},
	"special_status_message": func(ctx context.Context, conn *grpc.ClientConn) {
		interop.DoSpecialStatusMessage(ctx, testgrpc.NewTestServiceClient(conn))
	},
	"timeout_on_sleeping_server": func(ctx context.Context, conn *grpc.ClientConn) {
		interop.DoTimeoutOnSleepingServer(ctx, testgrpc.NewTestServiceClient(conn))
	},
	"cancel_after_begin": func(ctx context.Context, conn *grpc.ClientConn) {
		interop.DoCancelAfterBegin(ctx, testgrpc.NewTestServiceClient(conn))
	},
	"cancel_after_first_response": func(ctx context.Context, conn *grpc.ClientConn) {
		interop.DoCancelAfterFirstResponse(ctx, testgrpc.NewTestServiceClient(conn))
	},
	"unimplemented_method": func(ctx context.Context, conn *grpc.ClientConn) {
		interop.DoUnimplementedMethod(ctx, conn)
	},
	"unimplemented_service": func(ctx context.Context, conn *grpc.ClientConn) {
		interop.DoUnimplementedService(ctx, testgrpc.NewUnimplementedServiceClient(conn))
	},
}

func TestMain(m *testing.M) {
	if name := os.Getenv(envCase); name != "" {
		os.Exit(runCase(name, os.Getenv(envAddr)))
	}
	// The reference service's binary (checkout_harness_test.go) is built
	// once per run into a directory removed here.
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) {
		if buildDir != "" {
			_ = os.RemoveAll(buildDir)
		}
	}))
}

// counter is a pass-through policy and Admitter that counts admissions and
// releases.
type counter struct {
	calls, admitted, released atomic.Int64
	changed                   chan struct{} // a release happened (size 1)
}

func newCounter() *counter { return &counter{changed: make(chan struct{}, 1)} }

// waitReleased waits until every admission was released, or for d.
func (c *counter) waitReleased(d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for c.released.Load() != c.admitted.Load() {
		select {
		case <-c.changed:
		case <-timer.C:
			return false
		}
	}
	return true
}

func (c *counter) Do(ctx context.Context, fn func(context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.calls.Add(1)
	return fn(ctx)
}

func (c *counter) Admit(ctx context.Context) (func(error), error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.admitted.Add(1)
	var once atomic.Bool
	return func(error) {
		if once.CompareAndSwap(false, true) {
			c.released.Add(1)
			select {
			case c.changed <- struct{}{}:
			default:
			}
		}
	}, nil
}

// runCase is the child process: one interop case through both client
// interceptors, then a check that every stream admission was released.
// The interop helpers exit the process themselves on failure.
func runCase(name, addr string) int {
	run, ok := cases[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "e2e: unknown case %q\n", name)
		return 2
	}
	unary, stream := newCounter(), newCounter()
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithChainUnaryInterceptor(bulwarkgrpc.UnaryClientInterceptor(bulwark.Chain(unary, bulwark.Timeout(time.Minute)))),
		grpc.WithChainStreamInterceptor(bulwarkgrpc.StreamClientInterceptor(stream)),
	)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run(ctx, conn)
	// Every case makes at least one call: one that reached neither client
	// interceptor means they were not wired in, and the case proved nothing.
	if unary.calls.Load() == 0 && stream.admitted.Load() == 0 {
		fmt.Fprintf(os.Stderr, "e2e: %s: no call went through the client interceptors\n", name)
		return 1
	}
	// A stream ended by its context is released by context.AfterFunc, on
	// its own goroutine.
	if !stream.waitReleased(10 * time.Second) {
		a, r := stream.admitted.Load(), stream.released.Load()
		fmt.Fprintf(os.Stderr, "e2e: %s: %d stream admissions, %d released\n", name, a, r)
		return 1
	}
	fmt.Printf("e2e: %s: ok (unary calls %d, streams %d)\n", name, unary.calls.Load(), stream.admitted.Load())
	return 0
}

func TestInterop(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a child process per case")
	}
	server := newCounter()
	srv := grpc.NewServer(
		grpc.ChainUnaryInterceptor(bulwarkgrpc.UnaryServerInterceptor(bulwark.Chain(server, bulwark.Timeout(time.Minute)))),
		grpc.ChainStreamInterceptor(bulwarkgrpc.StreamServerInterceptor(server)),
	)
	testgrpc.RegisterTestServiceServer(srv, interop.NewTestServer())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(lis)
	}()
	defer func() {
		srv.Stop()
		<-served
	}()

	names := make([]string, 0, len(cases))
	for name := range cases {
		names = append(names, name)
	}
	for _, name := range sorted(names) {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), envCase+"="+name, envAddr+"="+lis.Addr().String())
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("case %s failed: %v\n%s", name, err, out)
			}
			if want := "e2e: " + name + ": ok"; !strings.Contains(string(out), want) {
				t.Fatalf("case %s: output lacks %q:\n%s", name, want, out)
			}
			t.Logf("%s", strings.TrimSpace(string(out)))
		})
	}
	if server.calls.Load() == 0 {
		t.Error("the server interceptors saw no call")
	}
}

func sorted(s []string) []string {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s
}
