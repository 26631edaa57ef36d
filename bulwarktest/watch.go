package bulwarktest

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/bulwark-go/bulwark"
)

// suite is one run of TestPolicy: its options and what the watched
// policies saw.
type suite struct {
	o          options
	newRaw     func() bulwark.Policy
	concurrent bool // the policy declares bulwark.Concurrent

	consumableOnce sync.Once
	isConsumable   bool

	late  atomic.Int64 // calls of fn after Do returned
	other atomic.Int64 // calls of fn on a goroutine other than Do's caller's
}

func newSuite(newPolicy func() bulwark.Policy, opts []Option) *suite {
	o := options{maxWait: DefaultMaxWait, lateWatch: DefaultLateCallWatch}
	for _, opt := range opts {
		if opt != nil {
			opt.apply(&o)
		}
	}
	s := &suite{o: o, newRaw: newPolicy}
	if c, ok := newPolicy().(bulwark.Concurrent); ok && c.ConcurrentFn() {
		s.concurrent = true
	}
	return s
}

// newPolicy returns a fresh policy whose Do watches every call of fn.
func (s *suite) newPolicy() bulwark.Policy {
	p := s.newRaw()
	w := &watched{s: s, p: p}
	if a, ok := p.(bulwark.Admitter); ok {
		return &watchedAdmitter{watched: w, a: a}
	}
	return w
}

// watched is a policy under test; its Do records calls of fn made late or
// on another goroutine.
type watched struct {
	s *suite
	p bulwark.Policy
}

// errLate is what a late call of fn gets: the suite's fn does not run.
var errLate = errors.New("bulwarktest: fn called after Do returned")

func (w *watched) Do(ctx context.Context, fn func(context.Context) error) error {
	caller := goid()
	var returned atomic.Bool
	defer returned.Store(true) // also on panic and Goexit
	return w.p.Do(ctx, func(ctx context.Context) error {
		if returned.Load() {
			if !w.s.concurrent {
				w.s.late.Add(1)
			}
			return errLate
		}
		if !w.s.concurrent && goid() != caller {
			w.s.other.Add(1)
		}
		return fn(ctx)
	})
}

type watchedAdmitter struct {
	*watched
	a bulwark.Admitter
}

func (w *watchedAdmitter) Admit(ctx context.Context) (func(error), error) { return w.a.Admit(ctx) }

// goid is the id of the calling goroutine, from its stack header
// ("goroutine 18 [running]:").
func goid() int64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	if i := bytes.IndexByte(b, ' '); i > 0 {
		b = b[:i]
	}
	id, _ := strconv.ParseInt(string(b), 10, 64)
	return id
}
