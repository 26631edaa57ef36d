// Package policytest holds the fake policies and the gRPC test server that
// the tests of several bulwark packages share.
//
// [PassThrough] runs every call as is; a [Recorder] runs it and records what
// it returned; [Refuse] refuses every call with one error; a [Gate] is a counting Admitter (a bulkhead of Limit slots) that
// records how each admission ended; [ServeGRPC] starts a real gRPC server on
// 127.0.0.1 and connects a client to it, both stopped when the test ends.
// It is for tests only: nothing in it is tuned for speed.
package policytest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/bulwark-go/bulwark"
)

// PassThrough is a policy that runs fn as is.
var PassThrough bulwark.Policy = bulwark.PolicyFunc(func(ctx context.Context, fn func(context.Context) error) error {
	return fn(ctx)
})

// Refuse returns a policy that never runs fn: it returns the context's error
// when ctx has ended, else err.
func Refuse(err error) bulwark.Policy {
	return bulwark.PolicyFunc(func(ctx context.Context, _ func(context.Context) error) error {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		return err
	})
}

// ErrNeverRan is what [Recorder.Last] returns before fn has returned once.
var ErrNeverRan = errors.New("policytest: fn never returned")

// Recorder is a pass-through policy that records what fn returned. Under an
// ended context it returns the context's error without running fn.
type Recorder struct {
	mu   sync.Mutex
	errs []error
}

// Do runs fn and records what it returned.
func (r *Recorder) Do(ctx context.Context, fn func(context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := fn(ctx)
	r.mu.Lock()
	r.errs = append(r.errs, err)
	r.mu.Unlock()
	return err
}

// Last returns what fn returned last, or [ErrNeverRan].
func (r *Recorder) Last() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.errs) == 0 {
		return ErrNeverRan
	}
	return r.errs[len(r.errs)-1]
}

// ErrGateFull is what a full [Gate] refuses with; it wraps
// [bulwark.ErrUnavailable].
var ErrGateFull = fmt.Errorf("policytest: gate full: %w", bulwark.ErrUnavailable)

// ErrPanicked is what a [Gate] records when fn, run by its Do, panicked or
// ended its goroutine.
var ErrPanicked = errors.New("policytest: fn panicked or exited")

// Gate is a bulkhead of Limit slots: an Admitter (and a Policy) that
// records how each admission ended. Its zero Limit admits nothing.
type Gate struct {
	Limit int
	// Notify, when not nil, receives what every done was given, after the
	// slot is free.
	Notify chan error

	mu       sync.Mutex
	inUse    int
	released []error
}

// Admit takes a slot, or refuses with the context's error or [ErrGateFull].
// The done it returns frees the slot and records its argument once; later
// calls do nothing.
func (g *Gate) Admit(ctx context.Context) (func(error), error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.inUse >= g.Limit {
		return nil, ErrGateFull
	}
	g.inUse++
	var once sync.Once
	return func(err error) {
		once.Do(func() {
			g.mu.Lock()
			g.inUse--
			g.released = append(g.released, err)
			g.mu.Unlock()
			if g.Notify != nil {
				g.Notify <- err
			}
		})
	}, nil
}

// Do runs fn in a slot; a panic or Goexit of fn frees the slot and is
// recorded as [ErrPanicked].
func (g *Gate) Do(ctx context.Context, fn func(context.Context) error) error {
	done, err := g.Admit(ctx)
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			done(ErrPanicked)
		}
	}()
	err = fn(ctx)
	ok = true
	done(err)
	return err
}

// State returns the slots in use and what each done received so far, in
// order.
func (g *Gate) State() (inUse int, released []error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.inUse, append([]error(nil), g.released...)
}

// ServeGRPC starts a gRPC server with sopts on 127.0.0.1:0, lets register
// add its services, and returns it with a client connection to it, dialled
// with insecure credentials and then copts. When the test ends the
// connection is closed and the server stopped and waited for.
func ServeGRPC(t testing.TB, register func(*grpc.Server), sopts []grpc.ServerOption, copts ...grpc.DialOption) (*grpc.Server, *grpc.ClientConn) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(sopts...)
	register(srv)
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(lis)
	}()
	copts = append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, copts...)
	conn, err := grpc.NewClient(lis.Addr().String(), copts...)
	if err != nil {
		srv.Stop()
		<-served
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		srv.Stop()
		<-served
	})
	return srv, conn
}
