package ratelimit_test

import (
	"context"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/internal/metrictest"
	"github.com/bulwark-go/bulwark/ratelimit"
)

// FuzzInvariants drives a limiter with a random mix of tiers at explicit,
// non-decreasing times and checks:
//
//   - at any instant a tier is refused only if every lower tier would be
//     too (each refusal is followed by tries of the lower tiers at the same
//     instant, which must all be refused);
//   - over any interval the calls admitted are at most burst + limit ×
//     elapsed;
//   - every decision is the one a reference token bucket makes: a tier is
//     admitted exactly when the bucket holds its reserve + 1.
//
// The limit is 4 tokens/s and times move in steps of 62.5 ms, so every
// token count is a multiple of 1/4, exact in binary: the reference needs no
// tolerance.
func FuzzInvariants(f *testing.F) {
	f.Add(uint8(10), []byte{0, 1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add(uint8(100), []byte{0x30, 0x31, 0x02, 0x03, 0x40, 0x01, 0xff, 0x10, 0x20, 0x30})
	f.Add(uint8(1), []byte{3, 3, 3, 0x13, 0x12, 0x11, 0x10})
	f.Add(uint8(20), []byte{2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 0x81, 0x80})
	f.Fuzz(func(t *testing.T, burstByte uint8, ops []byte) {
		const limit = 4.0
		const step = 62500 * time.Microsecond
		burst := int(burstByte)%100 + 1
		if len(ops) > 300 {
			ops = ops[:300]
		}
		l := ratelimit.New("fuzz", limit, burst)
		// The reference bucket, with the reserves of the defaults.
		reserve := [4]float64{}
		for i, fr := range [4]float64{0.50, 0.25, 0.05, 0} { // the defaults
			reserve[i] = float64(int(fr * float64(burst)))
		}
		for i := 2; i >= 0; i-- { // never below the tier above
			reserve[i] = max(reserve[i], reserve[i+1])
		}
		tokens, last := float64(burst), t0
		refTake := func(i int, at time.Time) bool {
			cur := min(float64(burst), tokens+at.Sub(last).Seconds()*limit)
			if cur >= reserve[i]+1 {
				tokens, last = cur-1, at
				return true
			}
			return false
		}

		now := t0
		var admitted []time.Time
		for n, op := range ops {
			// Low two bits: the tier; the rest: steps to move on.
			i := int(op & 3)
			now = now.Add(time.Duration(op>>2) * step)
			got := l.AllowAt(tierCtx(tiers[i]), now)
			if want := refTake(i, now); got != want {
				t.Fatalf("op %d: %v at +%v: AllowAt() = %v, want %v (reference holds %v tokens)",
					n, tiers[i], now.Sub(t0), got, want, tokens)
			}
			if got {
				admitted = append(admitted, now)
				continue
			}
			for j := i - 1; j >= 0; j-- {
				if l.AllowAt(tierCtx(tiers[j]), now) {
					t.Fatalf("op %d: %v refused but the lower %v admitted at the same instant", n, tiers[i], tiers[j])
				}
			}
		}
		// Over any interval [a, b] of admissions: count ≤ burst + limit × (b − a).
		for a := range admitted {
			for b := a; b < len(admitted); b++ {
				count := b - a + 1
				bound := float64(burst) + admitted[b].Sub(admitted[a]).Seconds()*limit
				if float64(count) > bound {
					t.Fatalf("%d calls admitted in %v, want at most %v", count, admitted[b].Sub(admitted[a]), bound)
				}
			}
		}
	})
}

// TestInvariantsConcurrent hammers one limiter from several goroutines with
// every tier at one frozen instant: the admitted count never exceeds the
// burst, and each tier took no more than its reserve allows.
func TestInvariantsConcurrent(t *testing.T) {
	const burst = 200
	l := ratelimit.New("race", 1e-9, burst)
	var counts [bulwark.NumPriorities]int64
	done := make(chan [bulwark.NumPriorities]int64)
	for w := 0; w < 8; w++ {
		go func(w int) {
			var c [bulwark.NumPriorities]int64
			for n := 0; n < 200; n++ {
				i := (w + n) % bulwark.NumPriorities
				if l.AllowAt(tierCtx(tiers[i]), t0) {
					c[i]++
				}
			}
			done <- c
		}(w)
	}
	for w := 0; w < 8; w++ {
		c := <-done
		for i := range c {
			counts[i] += c[i]
		}
	}
	total := counts[0] + counts[1] + counts[2] + counts[3]
	if total != burst {
		t.Errorf("admitted %d calls from a bucket of %d at one instant, want exactly %d", total, burst, burst)
	}
	// A tier stops once the tokens left reach its reserve (100, 50, 10, 0
	// of 200), so it and the tiers below it took at most burst − reserve.
	if got, max := counts[0], int64(burst-100); got > max {
		t.Errorf("Sheddable took %d, want at most %d", got, max)
	}
	if got, max := counts[0]+counts[1], int64(burst-50); got > max {
		t.Errorf("Sheddable and SheddablePlus took %d, want at most %d", got, max)
	}
	if got, max := counts[0]+counts[1]+counts[2], int64(burst-10); got > max {
		t.Errorf("all but CriticalPlus took %d, want at most %d", got, max)
	}
}

// FuzzKeyedInvariants drives a keyed limiter with a table of 1 to 3 keys
// and 4 keys in use, with random tiers at explicit, non-decreasing times,
// and checks that eviction never grants more than a bucket would have:
//
//   - over any interval, the calls of one key admitted by its own buckets
//     (through evictions and returns) and by the overflow bucket together
//     are at most burst + limit × elapsed, and so are the calls admitted by
//     the overflow bucket;
//   - the table never holds more keys than its cap;
//   - at any instant a tier of a key is refused only if every lower tier of
//     that key would be too.
//
// Which bucket admitted a call is read from the overflow metric.
func FuzzKeyedInvariants(f *testing.F) {
	f.Add(uint8(2), uint8(1), []byte{0x03, 0x07, 0x0b, 0x0f, 0x13, 0x03, 0x07, 0x0b, 0xff, 0x0f})
	f.Add(uint8(5), uint8(2), []byte{0x0f, 0x0f, 0x0b, 0x0b, 0x07, 0x03, 0x43, 0x47, 0x4b, 0x4f, 0x00, 0x01})
	f.Add(uint8(1), uint8(3), []byte{0x00, 0x04, 0x08, 0x0c, 0x10, 0x14, 0x18, 0x1c, 0x20, 0x24})
	// Burst 4, one key: b drains the overflow bucket, then evicts the full
	// a and must not get a fresh full bucket (issue 14, item 8).
	f.Add(uint8(3), uint8(0), []byte{0x03, 0x07, 0x07, 0x07, 0x07, 0x47, 0x07, 0x07, 0x07})
	f.Fuzz(func(t *testing.T, burstByte, maxKeysByte uint8, ops []byte) {
		const limit = 4.0
		const step = 62500 * time.Microsecond
		burst := int(burstByte)%8 + 1
		maxKeys := int(maxKeysByte)%3 + 1
		if len(ops) > 200 {
			ops = ops[:200]
		}
		r := metrictest.New(t)
		k := ratelimit.NewKeyed("m", limit, burst, ratelimit.WithMaxKeys(maxKeys), ratelimit.WithMeterProvider(r.Provider))
		overflowed := func() int64 { return sums(t, r, "bulwark.ratelimit.overflow")[""] }
		keys := []string{"a", "b", "c", "d"}
		own := map[string][]time.Time{}
		var over []time.Time
		now := t0
		for n, op := range ops {
			// Bits 0-1: the tier; 2-3: the key; 4-7: steps to move on.
			i, key := int(op&3), keys[op>>2&3]
			now = now.Add(time.Duration(op>>4) * step)
			before := overflowed()
			ctx := bulwark.WithCallInfo(context.Background(), bulwark.CallInfo{Priority: tiers[i], Key: key})
			got := k.AllowAt(ctx, now)
			if k.Keys() > maxKeys {
				t.Fatalf("op %d: Keys() = %d, want at most %d", n, k.Keys(), maxKeys)
			}
			if got {
				if overflowed() > before {
					over = append(over, now)
				}
				// A key's quota covers what it took from either bucket.
				own[key] = append(own[key], now)
				continue
			}
			for j := i - 1; j >= 0; j-- {
				ctx := bulwark.WithCallInfo(context.Background(), bulwark.CallInfo{Priority: tiers[j], Key: key})
				if k.AllowAt(ctx, now) {
					t.Fatalf("op %d: %s: %v refused but the lower %v admitted at the same instant", n, key, tiers[i], tiers[j])
				}
			}
		}
		check := func(what string, admitted []time.Time) {
			for a := range admitted {
				for b := a; b < len(admitted); b++ {
					count := b - a + 1
					bound := float64(burst) + admitted[b].Sub(admitted[a]).Seconds()*limit
					if float64(count) > bound {
						t.Fatalf("%s: %d calls admitted in %v, want at most %v", what, count, admitted[b].Sub(admitted[a]), bound)
					}
				}
			}
		}
		for key, admitted := range own {
			check("key "+key, admitted)
		}
		check("overflow", over)
	})
}
