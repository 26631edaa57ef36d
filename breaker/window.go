package breaker

import (
	"sync"
	"time"
)

// ring is a rolling window of k counters kept in n buckets of equal width,
// on a caller-given monotonic clock (a core's since). Outcomes age out one
// bucket at a time. It is safe for concurrent use; every method takes its
// mutex for a few dozen nanoseconds and never calls out.
type ring struct {
	mu     sync.Mutex
	width  time.Duration
	n, k   int
	head   int64    // number of the newest bucket (now / width)
	vals   []uint64 // n*k
	totals []uint64 // k, the sums over the buckets
}

func newRing(window time.Duration, buckets, k int) *ring {
	w := window / time.Duration(buckets)
	if w <= 0 {
		w = 1
	}
	return &ring{width: w, n: buckets, k: k, vals: make([]uint64, buckets*k), totals: make([]uint64, k)}
}

// advanceLocked drops the buckets that aged out by now. r.mu is held.
func (r *ring) advanceLocked(now time.Duration) {
	e := int64(now / r.width)
	if e <= r.head {
		return
	}
	if e-r.head >= int64(r.n) {
		clear(r.vals)
		clear(r.totals)
	} else {
		for x := r.head + 1; x <= e; x++ {
			b := int(x%int64(r.n)) * r.k
			for i := range r.k {
				r.totals[i] -= r.vals[b+i]
				r.vals[b+i] = 0
			}
		}
	}
	r.head = e
}

// add adds d to counter i at now and returns the counter's total.
func (r *ring) add(now time.Duration, i int, d uint64) uint64 {
	r.mu.Lock()
	r.advanceLocked(now)
	r.vals[int(r.head%int64(r.n))*r.k+i] += d
	r.totals[i] += d
	t := r.totals[i]
	r.mu.Unlock()
	return t
}

// sum returns counter i's total at now.
func (r *ring) sum(now time.Duration, i int) uint64 {
	r.mu.Lock()
	r.advanceLocked(now)
	t := r.totals[i]
	r.mu.Unlock()
	return t
}

// reset clears every bucket.
func (r *ring) reset() {
	r.mu.Lock()
	clear(r.vals)
	clear(r.totals)
	r.mu.Unlock()
}
