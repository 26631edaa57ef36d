package e2e_test

// The harness of the reference service's end-to-end tests: build the
// binary once, start instances on free loopback ports (read back from
// their log lines), find or install the command-line clients, start a
// real redis-server.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Tool versions the tests install when they are missing (.ci/run installs
// the same).
const (
	grpcurlPkg     = "github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.4"
	healthProbePkg = "github.com/grpc-ecosystem/grpc-health-probe@v0.4.61"
)

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
	buildDir  string
)

// checkoutBinary builds examples/checkout once per test binary.
func checkoutBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "checkout-e2e-")
		if err != nil {
			buildErr = err
			return
		}
		buildDir = dir
		buildPath = filepath.Join(dir, "checkout")
		cmd := exec.Command("go", "build", "-o", buildPath, "./examples/checkout")
		cmd.Dir = ".." // the main module
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./examples/checkout: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

// tool returns the path of a command-line client, installing pkg with go
// install when it is on neither PATH nor GOPATH/bin. When it cannot be had,
// the test is skipped, or fails under CI=true.
func tool(t *testing.T, name, pkg string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	gopath, _ := exec.Command("go", "env", "GOPATH").Output()
	bin := filepath.Join(strings.TrimSpace(string(gopath)), "bin", name)
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "install", pkg).CombinedOutput()
	if err == nil {
		if _, err = os.Stat(bin); err == nil {
			return bin
		}
	}
	msg := fmt.Sprintf("%s not found and go install %s failed: %v\n%s", name, pkg, err, out)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// instance is one running checkout process.
type instance struct {
	t        *testing.T
	cmd      *exec.Cmd
	base     string // http://127.0.0.1:port
	grpcAddr string
	client   *http.Client

	mu   sync.Mutex
	logs bytes.Buffer

	exited chan struct{}
	err    error // the process's exit error, once exited is closed
}

var listenRE = regexp.MustCompile(`msg=listening server=(http|grpc) addr=(\S+)`)

// startCheckout starts an instance with args on free loopback ports and
// waits until it serves; it is stopped (SIGKILL) at the end of the test
// unless it already exited.
func startCheckout(t *testing.T, args ...string) *instance {
	t.Helper()
	bin := checkoutBinary(t)
	all := append([]string{"-http", "127.0.0.1:0", "-grpc", "127.0.0.1:0"}, args...)
	cmd := exec.Command(bin, all...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	in := &instance{t: t, cmd: cmd, exited: make(chan struct{})}
	addrs := make(chan [2]string, 2)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			in.mu.Lock()
			in.logs.WriteString(line + "\n")
			in.mu.Unlock()
			if m := listenRE.FindStringSubmatch(line); m != nil {
				addrs <- [2]string{m[1], m[2]}
			}
		}
		in.err = cmd.Wait()
		close(in.exited)
	}()
	in.client = &http.Client{Timeout: 10 * time.Second}
	t.Cleanup(func() {
		select {
		case <-in.exited:
		default:
			_ = cmd.Process.Kill()
			<-in.exited
		}
		in.client.CloseIdleConnections()
		if t.Failed() {
			t.Logf("checkout %v logs:\n%s", all, in.Logs())
		}
	})
	deadline := time.After(15 * time.Second)
	for in.base == "" || in.grpcAddr == "" {
		select {
		case a := <-addrs:
			if a[0] == "http" {
				in.base = "http://" + a[1]
			} else {
				in.grpcAddr = a[1]
			}
		case <-in.exited:
			t.Fatalf("checkout %v exited at start: %v\n%s", all, in.err, in.Logs())
		case <-deadline:
			t.Fatalf("checkout %v did not log its listeners\n%s", all, in.Logs())
		}
	}
	return in
}

// Logs returns what the instance logged so far.
func (in *instance) Logs() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.logs.String()
}

// signal sends sig to the instance.
func (in *instance) signal(sig syscall.Signal) {
	in.t.Helper()
	if err := in.cmd.Process.Signal(sig); err != nil {
		in.t.Fatalf("signal %v: %v", sig, err)
	}
}

// waitExit waits up to d for the process to exit and returns its exit
// code.
func (in *instance) waitExit(d time.Duration) int {
	in.t.Helper()
	select {
	case <-in.exited:
	case <-time.After(d):
		in.t.Fatalf("checkout did not exit within %v\n%s", d, in.Logs())
	}
	return in.cmd.ProcessState.ExitCode()
}

// response is an answer read in full.
type response struct {
	code   int
	header http.Header
	body   []byte
}

func (r response) String() string {
	return fmt.Sprintf("%d %v %s", r.code, r.header, r.body)
}

// json decodes the body into v, failing the test when it cannot.
func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
}

// do sends a request to the instance; hdr is name, value pairs.
func (in *instance) do(method, path, body string, hdr ...string) response {
	in.t.Helper()
	r, err := in.try(method, path, body, hdr...)
	if err != nil {
		in.t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// try is do returning the error instead of failing.
func (in *instance) try(method, path, body string, hdr ...string) (response, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, in.base+path, rd)
	if err != nil {
		return response{}, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := in.client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	return response{code: resp.StatusCode, header: resp.Header, body: b}, nil
}

// stats reads GET /v1/stats.
func (in *instance) stats() (executed, paymentCalls int64) {
	in.t.Helper()
	r := in.do("GET", "/v1/stats", "")
	var s map[string]int64
	r.json(in.t, &s)
	if len(s) != 2 {
		in.t.Fatalf("/v1/stats = %s, want exactly charges_executed and payment_calls", r.body)
	}
	return s["charges_executed"], s["payment_calls"]
}

// eventually polls cond every 50 ms for up to d.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// run runs a command-line client and returns its combined output and
// exit code.
func run(t *testing.T, name string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("%s %v: %v", name, args, err)
		}
		code = ee.ExitCode()
	}
	return string(out), code
}

// redisServer is a redis-server on a free loopback port, stopped at the
// end of the test. (e2e cannot import the main module's internal/redistest.)
func redisServer(t *testing.T) *redisProc {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis-server not on PATH (CI=true: .ci/run installs it): %v", err)
		}
		t.Skipf("redis-server not on PATH: %v", err)
	}
	r := &redisProc{t: t, bin: bin}
	t.Cleanup(r.stop)
	for range 5 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		r.addr = l.Addr().String()
		l.Close()
		if r.start() {
			return r
		}
	}
	t.Fatal("redis-server did not start")
	return nil
}

// redisProc is one redis-server, which a test may stop and start again on
// its address.
type redisProc struct {
	t    *testing.T
	bin  string
	addr string
	cmd  *exec.Cmd
	done chan struct{}
}

// start starts the server on r.addr and reports whether it answers.
func (r *redisProc) start() bool {
	_, port, _ := net.SplitHostPort(r.addr)
	cmd := exec.Command(r.bin, "--bind", "127.0.0.1", "--port", port,
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning")
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	r.cmd, r.done = cmd, make(chan struct{})
	done := r.done
	go func() { _ = cmd.Wait(); close(done) }()
	if redisUp(r.addr, done) {
		return true
	}
	r.stop()
	return false
}

// stop kills the server, if running, and waits for it to exit.
func (r *redisProc) stop() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	<-r.done
	r.cmd = nil
}

// redisUp waits until the server at addr answers PING, or exited closes.
func redisUp(addr string, exited <-chan struct{}) bool {
	for range 100 {
		select {
		case <-exited:
			return false
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			_ = c.SetDeadline(time.Now().Add(time.Second))
			_, _ = c.Write([]byte("PING\r\n"))
			buf := make([]byte, 7)
			n, _ := io.ReadFull(c, buf)
			c.Close()
			if string(buf[:n]) == "+PONG\r\n" {
				return true
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}
