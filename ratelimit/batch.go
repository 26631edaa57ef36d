package ratelimit

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// batcher pipelines the decisions of concurrent callers of one Redis
// limiter: while one caller's round trip is in flight, the callers that
// arrive queue, and when it ends the first of them sends the whole queue
// in one pipeline (a round trip for many decisions). No goroutine of its
// own: the callers take turns leading. A caller alone, or the first after
// a quiet spell, sends its decision at once.
type batcher struct {
	mu      sync.Mutex
	busy    bool     // a leader is sending; pending is only non-empty while busy
	pending []*pcall // queued, in arrival order
}

// pcall is one queued decision.
type pcall struct {
	key  string
	args []any
	// Set under the batcher's mu.
	res      []any
	err      error
	finished bool // res and err are set
	lead     bool // made the leader: it sends the pending queue
	gone     bool // stopped waiting
	wake     chan struct{}
}

// run decides key with args in the next round trip: at once when no other
// round trip is in flight, else in the pipeline of the next leader. It
// gives up when tctx ends. A leader sends its pipeline until deadline (its
// own decision's timeout) whatever becomes of its caller's context: the
// other callers' decisions ride on it.
func (b *batcher) run(tctx context.Context, deadline time.Time, client redis.UniversalClient, key string, args []any) ([]any, error) {
	b.mu.Lock()
	if !b.busy {
		b.busy = true
		b.mu.Unlock()
		res, err := gcra.Run(tctx, client, []string{key}, args...).Slice()
		b.handOff()
		return res, err
	}
	c := &pcall{key: key, args: args, wake: make(chan struct{})}
	b.pending = append(b.pending, c)
	b.mu.Unlock()

	select {
	case <-c.wake:
	case <-tctx.Done():
	}
	b.mu.Lock()
	switch {
	case c.finished:
		b.mu.Unlock()
		return c.res, c.err
	case c.lead && tctx.Err() == nil:
		batch := b.pending
		b.pending = nil
		b.mu.Unlock()
		fctx, cancel := context.WithDeadline(context.WithoutCancel(tctx), deadline)
		b.send(fctx, client, batch)
		cancel()
		b.handOff()
		return c.res, c.err // c is in batch: send set them
	case c.lead:
		// Made the leader just as it gave up: pass the lead on.
		b.pending = slices.DeleteFunc(b.pending, func(p *pcall) bool { return p == c })
		b.mu.Unlock()
		b.handOff()
		return nil, tctx.Err()
	}
	// Gave up while queued or while its pipeline was in flight.
	c.gone = true
	b.pending = slices.DeleteFunc(b.pending, func(p *pcall) bool { return p == c })
	b.mu.Unlock()
	return nil, tctx.Err()
}

// handOff ends a leader's turn: the first queued caller leads next, or
// nobody is busy.
func (b *batcher) handOff() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.pending) == 0 {
		b.busy = false
		return
	}
	next := b.pending[0]
	next.lead = true
	close(next.wake)
}

// send runs batch in one pipeline (and the decisions that found the script
// gone in a second, with EVAL), then sets every call's result and wakes
// the callers still waiting.
func (b *batcher) send(ctx context.Context, client redis.UniversalClient, batch []*pcall) {
	cmds := make([]*redis.Cmd, len(batch))
	pipe := client.Pipeline()
	for i, c := range batch {
		cmds[i] = gcra.EvalSha(ctx, pipe, []string{c.key}, c.args...)
	}
	_, _ = pipe.Exec(ctx)
	var again []int
	for i, cmd := range cmds {
		if redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
			again = append(again, i)
		}
	}
	if len(again) > 0 {
		pipe := client.Pipeline()
		for _, i := range again {
			cmds[i] = gcra.Eval(ctx, pipe, []string{batch[i].key}, batch[i].args...)
		}
		_, _ = pipe.Exec(ctx)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, c := range batch {
		c.res, c.err = cmds[i].Slice()
		c.finished = true
		if !c.gone && !c.lead {
			close(c.wake)
		}
	}
}
