package redistest

import (
	"errors"
	"net"
	"os"
	"os/exec"
)

// ErrNoBinary is returned by [StartMain] when redis-server is not on PATH
// and CI is not "true".
var ErrNoBinary = errors.New("redistest: redis-server not found on PATH")

// StartMain starts a redis-server on a free loopback port for a whole
// test binary, from TestMain, where there is no testing.TB: for runnable
// examples that need a Redis. The caller stops it with [Server.Stop] after
// m.Run. Only Addr, Stop and PID may be used on the returned Server.
//
// When redis-server is missing it returns ErrNoBinary, unless CI=true:
// then it returns an error that must fail the run, as [Start] would.
func StartMain() (*Server, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			return nil, errors.New("redistest: redis-server not found on PATH (CI=true: .ci/run must install it)")
		}
		return nil, ErrNoBinary
	}
	s := &Server{}
	for range 5 {
		l, lerr := netListen()
		if lerr != nil {
			return nil, lerr
		}
		s.Addr = l
		if err = s.start(bin); err == nil {
			return s, nil
		}
	}
	return nil, err
}

// netListen returns a free loopback address.
func netListen() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	l.Close()
	return addr, nil
}
