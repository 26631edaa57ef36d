package scenarios

import (
	"fmt"
	"io"
)

// Options configure a run.
type Options struct {
	// Quick runs every scenario briefly, for CI.
	Quick bool
	// Log receives progress lines; nil discards them.
	Log io.Writer
	// RedisAddr is a redis-server for the idempotency scenario; empty
	// skips that scenario (its table says so).
	RedisAddr string
}

func (o Options) logf(format string, args ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, format+"\n", args...)
	}
}
