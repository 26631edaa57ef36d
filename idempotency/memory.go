package idempotency

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/bulwark-go/bulwark/internal/telemetry"
)

// entryOverhead is what one entry is counted for beyond its key and
// record: the map slot and the entry itself.
const entryOverhead = 160

// MemoryStore is a [Store] in this process's memory, bounded by entries
// and bytes ([WithMaxEntries], [WithMaxBytes]). Records expire after the
// Guard's retention; when the store is full, the oldest completed records
// go first. An in-flight claim is never evicted: when the store is full of
// them, new keys get [ErrStoreFull] (HTTP 503). A claim whose lease ended
// is dropped when its key is claimed again or when room is needed.
//
// It starts no goroutine: expiry happens on each call. Records are shared
// by the Guards of this process only; use [NewRedisStore] for a fleet.
//
// It exports bulwark.idempotency.store.entries and
// bulwark.idempotency.store.bytes (observable) until it is dropped or
// [MemoryStore.Close] is called.
//
// A MemoryStore is safe for concurrent use. The zero value is not
// usable: build one with [NewMemoryStore].
type MemoryStore struct {
	mu         sync.Mutex
	m          map[string]*entry
	done       entry // sentinel of the list of records, oldest first
	bytes      int64
	maxEntries int
	maxBytes   int64
	swept      time.Time // last scan for dead claims
	reg        *telemetry.Registration
}

type entry struct {
	key        string
	claim      bool
	token      Token
	fp         Fingerprint
	expires    time.Time // end of the lease, or of the retention
	record     []byte
	prev, next *entry // in done, for records
}

func (e *entry) size() int64 { return int64(entryOverhead + len(e.key) + len(e.record)) }

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore(opts ...StoreOption) *MemoryStore {
	o := newStoreOptions(opts)
	s := &MemoryStore{m: map[string]*entry{}, maxEntries: o.maxEntries, maxBytes: o.maxBytes}
	s.done.prev, s.done.next = &s.done, &s.done
	m := telemetry.Meter(o.mp, "idempotency")
	entries := telemetry.Int64ObservableUpDownCounter(m, "bulwark.idempotency.store.entries",
		"Entries (claims and records) in the memory store.", "{entry}")
	bytes := telemetry.Int64ObservableUpDownCounter(m, "bulwark.idempotency.store.bytes",
		"Bytes held by the memory store (keys, records and a fixed overhead per entry).", "By")
	s.reg = telemetry.Register(m, s, func(s *MemoryStore, o metric.Observer) {
		n, b := s.Len()
		o.ObserveInt64(entries, int64(n))
		o.ObserveInt64(bytes, b)
	}, entries, bytes)
	return s
}

func (*MemoryStore) local() {}

// Close ends the export of the store's metrics. The store keeps working.
func (s *MemoryStore) Close() error {
	s.reg.Unregister()
	return nil
}

// Len returns the entries (claims and records) and the bytes the store
// holds.
func (s *MemoryStore) Len() (entries int, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m), s.bytes
}

// Claim implements [Store].
func (s *MemoryStore) Claim(ctx context.Context, key string, token Token, fp Fingerprint, lease time.Duration) (Claim, error) {
	if err := ctx.Err(); err != nil {
		return Claim{}, err
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked(now)
	if e, ok := s.m[key]; ok {
		switch {
		case !now.Before(e.expires):
			s.removeLocked(e) // a dead owner's claim, or an expired record
		case e.claim:
			return Claim{State: InFlight, Fingerprint: e.fp, Lease: e.expires.Sub(now)}, nil
		default:
			return Claim{State: Done, Record: e.record}, nil
		}
	}
	e := &entry{key: key, claim: true, token: token, fp: fp, expires: now.Add(lease)}
	if !s.roomLocked(now, 1, e.size()) {
		return Claim{}, ErrStoreFull
	}
	s.m[key] = e
	s.bytes += e.size()
	return Claim{State: Claimed}, nil
}

// Complete implements [Store].
func (s *MemoryStore) Complete(ctx context.Context, key string, token Token, record []byte, retention time.Duration) error {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[key]
	if !ok || !e.claim || e.token != token || !now.Before(e.expires) {
		return ErrNotOwner
	}
	if e.size()+int64(len(record)) > s.maxBytes || !s.roomLocked(now, 0, int64(len(record))) {
		return ErrStoreFull
	}
	e.claim = false
	e.record = record
	e.expires = now.Add(retention)
	s.bytes += int64(len(record))
	// Append to the list of records: completion order is expiry order
	// for one retention.
	e.prev, e.next = s.done.prev, &s.done
	s.done.prev.next = e
	s.done.prev = e
	return nil
}

// Release implements [Store].
func (s *MemoryStore) Release(ctx context.Context, key string, token Token) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[key]
	if !ok || !e.claim || e.token != token {
		return ErrNotOwner
	}
	s.removeLocked(e)
	return nil
}

// expireLocked drops the expired records at the head of the list.
func (s *MemoryStore) expireLocked(now time.Time) {
	for e := s.done.next; e != &s.done && !now.Before(e.expires); e = s.done.next {
		s.removeLocked(e)
	}
}

// roomLocked makes room for entries more entries and bytes more bytes:
// it evicts the oldest records, then claims whose lease ended; never a
// live claim. It reports whether there is room.
func (s *MemoryStore) roomLocked(now time.Time, entries int, bytes int64) bool {
	fits := func() bool { return len(s.m)+entries <= s.maxEntries && s.bytes+bytes <= s.maxBytes }
	for !fits() && s.done.next != &s.done {
		s.removeLocked(s.done.next)
	}
	if fits() {
		return true
	}
	// Only claims are left: drop those whose owner died, scanning at most
	// once a second so that a store full of live claims costs each new
	// key a map lookup, not a scan.
	if now.Sub(s.swept) < time.Second {
		return false
	}
	s.swept = now
	for _, e := range s.m {
		if e.claim && !now.Before(e.expires) {
			s.removeLocked(e)
		}
	}
	return fits()
}

func (s *MemoryStore) removeLocked(e *entry) {
	delete(s.m, e.key)
	s.bytes -= e.size()
	if e.prev != nil {
		e.prev.next = e.next
		e.next.prev = e.prev
		e.prev, e.next = nil, nil
	}
}
