package bulwark_test

import (
	"context"
	"testing"

	"github.com/bulwark-go/bulwark"
)

func passThrough() bulwark.Policy {
	return bulwark.PolicyFunc(func(ctx context.Context, fn func(context.Context) error) error { return fn(ctx) })
}

func nop(context.Context) error { return nil }

// BenchmarkChain measures three no-op policies in a chain next to calling
// them nested by hand (which allocates a closure per level).
func BenchmarkChain(b *testing.B) {
	ctx := context.Background()
	b.Run("Chain3", func(b *testing.B) {
		p := bulwark.Chain(passThrough(), passThrough(), passThrough())
		b.ReportAllocs()
		for b.Loop() {
			_ = p.Do(ctx, nop)
		}
	})
	b.Run("Chain3Parallel", func(b *testing.B) {
		p := bulwark.Chain(passThrough(), passThrough(), passThrough())
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_ = p.Do(ctx, nop)
			}
		})
	})
	b.Run("Direct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = nop(ctx)
		}
	})
}

func TestChainAllocatesNothing(t *testing.T) {
	p := bulwark.Chain(passThrough(), passThrough(), passThrough())
	ctx := context.Background()
	if n := testing.AllocsPerRun(1000, func() { _ = p.Do(ctx, nop) }); n != 0 {
		t.Errorf("Chain.Do allocs = %v, want 0", n)
	}
}
