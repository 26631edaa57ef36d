package idempotency_test

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/bulwark-go/bulwark/internal/redistest"
)

// redisAddr is the address of the redis-server the examples use, started
// for the whole test binary.
var redisAddr string

func TestMain(m *testing.M) {
	flag.Parse()
	srv, err := redistest.StartMain()
	switch {
	case errors.Is(err, redistest.ErrNoBinary):
		// Not under CI: the Redis example cannot run here.
		skip := "ExampleNewRedisStore"
		if f := flag.Lookup("test.skip"); f != nil && f.Value.String() != "" {
			skip = f.Value.String() + "|" + skip
		}
		_ = flag.Set("test.skip", skip)
	case err != nil:
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	default:
		redisAddr = srv.Addr
	}
	code := m.Run()
	if srv != nil {
		srv.Stop()
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
