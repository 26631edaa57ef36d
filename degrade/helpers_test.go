package degrade_test

import (
	"io"
	"log/slog"
	"math"
	"strings"
	"sync/atomic"

	"github.com/bulwark-go/bulwark/degrade"
)

func stringsReader(s string) io.Reader { return strings.NewReader(s) }

// quiet is a LoadOption that discards the loaders' logs.
func quiet() degrade.LoadOption {
	return degrade.WithLogger(slog.New(slog.DiscardHandler))
}

// gauge is a settable signal.
type gauge struct{ bits atomic.Uint64 }

func (g *gauge) set(v float64)          { g.bits.Store(math.Float64bits(v)) }
func (g *gauge) read() float64          { return math.Float64frombits(g.bits.Load()) }
func (g *gauge) signal() func() float64 { return g.read }

// flag is a settable condition that counts its calls.
type flag struct {
	on    atomic.Bool
	calls atomic.Int64
}

func (f *flag) cond() bool { f.calls.Add(1); return f.on.Load() }
