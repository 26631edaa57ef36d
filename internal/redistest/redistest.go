// Package redistest starts a real redis-server for tests: on a free loopback
// port, with persistence off, stopped by PID when the test ends. It can stop,
// restart, and hang (SIGSTOP) the server to test what a store does when
// Redis goes away mid-request.
//
// When redis-server is not on PATH the test is skipped — or fails under
// CI=true, where .ci/run installs it, so a missing install never passes
// silently.
package redistest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is one redis-server process owned by a test.
type Server struct {
	// Addr is the server's host:port on 127.0.0.1.
	Addr string

	tb     testing.TB
	mu     sync.Mutex
	cmd    *exec.Cmd
	paused bool
}

// Binary returns the path of redis-server, failing tb under CI=true and
// skipping it otherwise when there is none.
func Binary(tb testing.TB) string {
	tb.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("redistest: redis-server not found on PATH (CI=true: .ci/run must install it): %v", err)
		}
		tb.Skipf("redistest: redis-server not found on PATH: %v", err)
	}
	return path
}

// Start starts a redis-server on a free loopback port and stops it when the
// test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	bin := Binary(tb)
	s := &Server{tb: tb}
	var lastErr error
	for range 5 {
		s.Addr = freeAddr(tb)
		if lastErr = s.start(bin); lastErr == nil {
			tb.Cleanup(s.Stop)
			return s
		}
	}
	tb.Fatalf("redistest: start redis-server: %v", lastErr)
	return nil
}

func freeAddr(tb testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("redistest: find a free port: %v", err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func (s *Server) start(bin string) error {
	_, port, _ := net.SplitHostPort(s.Addr)
	cmd := exec.Command(bin,
		"--bind", "127.0.0.1", "--port", port,
		"--save", "", "--appendonly", "no", "--daemonize", "no",
		"--protected-mode", "yes", "--loglevel", "warning")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return err
	}
	// Keep draining the output so the server never blocks on a full pipe.
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", s.Addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			s.mu.Lock()
			s.cmd = cmd
			s.paused = false
			s.mu.Unlock()
			return nil
		}
		if cmd.ProcessState != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	return fmt.Errorf("redis-server on %s did not accept connections", s.Addr)
}

// PID returns the server's process id, or 0 when it is stopped.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Stop kills the server by PID and waits for it to exit. It is safe to call
// more than once.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd := s.cmd
	s.cmd = nil
	paused := s.paused
	s.paused = false
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	if paused {
		_ = cmd.Process.Signal(syscall.SIGCONT)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
}

// Restart starts the server again on the same address after [Server.Stop]
// (with an empty data set, as persistence is off).
func (s *Server) Restart() {
	s.tb.Helper()
	s.Stop()
	bin := Binary(s.tb)
	var err error
	for range 50 { // the port may linger for a moment
		if err = s.start(bin); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.tb.Fatalf("redistest: restart redis-server on %s: %v", s.Addr, err)
}

// Pause stops the process with SIGSTOP: connections stay open and every
// request hangs, as with a server stuck in a long command or a dead host
// behind a live TCP stack. [Server.Resume] continues it.
func (s *Server) Pause() {
	s.signal(syscall.SIGSTOP, true)
}

// Resume continues a paused server with SIGCONT.
func (s *Server) Resume() {
	s.signal(syscall.SIGCONT, false)
}

func (s *Server) signal(sig syscall.Signal, paused bool) {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		s.tb.Fatalf("redistest: signal %v to a stopped server", sig)
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.tb.Fatalf("redistest: signal %v: %v", sig, err)
	}
	s.paused = paused
}

// Client returns a go-redis client for the server with
// ContextTimeoutEnabled set (bulwark's stores require it), short dial and
// read timeouts, and no retries, closed when the test ends.
func (s *Server) Client() *redis.Client {
	c := redis.NewClient(Options(s.Addr))
	s.tb.Cleanup(func() { c.Close() })
	return c
}

// Options returns the client options [Server.Client] uses, for tests that
// adjust them.
func Options(addr string) *redis.Options {
	return &redis.Options{
		Addr:                  addr,
		ContextTimeoutEnabled: true,
		DialTimeout:           500 * time.Millisecond,
		ReadTimeout:           500 * time.Millisecond,
		WriteTimeout:          500 * time.Millisecond,
		MaxRetries:            -1,
		PoolSize:              32,
	}
}

// Counter is a go-redis hook that counts round trips: one per command
// processed alone, one per pipeline. Add it with client.AddHook.
type Counter struct {
	mu       sync.Mutex
	trips    int
	commands map[string]int
}

// NewCounter returns a Counter at zero.
func NewCounter() *Counter { return &Counter{commands: map[string]int{}} }

// DialHook implements redis.Hook.
func (c *Counter) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook implements redis.Hook.
func (c *Counter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if connInit(cmd) {
			return next(ctx, cmd)
		}
		c.mu.Lock()
		c.trips++
		c.commands[strings.ToLower(cmd.Name())]++
		c.mu.Unlock()
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook implements redis.Hook.
func (c *Counter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if !slices.ContainsFunc(cmds, func(cmd redis.Cmder) bool { return !connInit(cmd) }) {
			return next(ctx, cmds)
		}
		c.mu.Lock()
		c.trips++
		for _, cmd := range cmds {
			c.commands[strings.ToLower(cmd.Name())]++
		}
		c.mu.Unlock()
		return next(ctx, cmds)
	}
}

// connInit reports whether cmd is part of go-redis's connection set-up
// (HELLO, CLIENT SETINFO and the like), which is not a round trip of the caller's.
func connInit(cmd redis.Cmder) bool {
	switch strings.ToLower(cmd.Name()) {
	case "hello", "client", "auth", "select", "readonly":
		return true
	}
	return false
}

// Trips returns the round trips counted so far.
func (c *Counter) Trips() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.trips
}

// Commands returns how many times each command (lower case) was sent.
func (c *Counter) Commands() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.commands))
	for k, v := range c.commands {
		out[k] = v
	}
	return out
}

// Reset sets the counts to zero.
func (c *Counter) Reset() {
	c.mu.Lock()
	c.trips = 0
	c.commands = map[string]int{}
	c.mu.Unlock()
}

// Port returns the server's port number.
func (s *Server) Port() int {
	_, p, _ := net.SplitHostPort(s.Addr)
	n, _ := strconv.Atoi(p)
	return n
}
