package idempotency

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bulwark-go/bulwark/internal/redisopt"
)

// RedisStore is a [Store] on Redis, shared by every instance of a fleet.
// One key per idempotency key, "<prefix>{<digest>}": the hash tag puts it
// in one Cluster slot, and it always expires — a claim after its lease, a
// record after the retention.
//
// Each call is one Lua script, so a new request costs two round trips
// (claim, complete) and a replay or a conflict one, in steady state: the
// scripts run by EVALSHA, and go-redis falls back to EVAL once when the
// server does not have them (after a restart or SCRIPT FLUSH). Completion
// and release are conditional on the caller's token still owning the
// claim, so the late completion of a claim that was taken over cannot
// overwrite the new owner's record.
//
// Redis's clock decides expiry (PX); the Guard bounds each call with
// [WithStoreTimeout], which go-redis honours only with
// ContextTimeoutEnabled: true in the client's options.
//
// A RedisStore is safe for concurrent use. The zero value is not usable:
// build one with [NewRedisStore].
type RedisStore struct {
	c      redis.UniversalClient
	prefix string
}

// Values start with 'C' for a claim ('C', token, fingerprint) and with
// recordVersion for a record.
const claimTag = 'C'

var (
	claimScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {1}
end
if string.byte(v, 1) == 67 then
  return {2, v, redis.call('PTTL', KEYS[1])}
end
return {3, v}
`)
	completeScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, 17) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
`)
	releaseScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, 17) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
`)
)

// NewRedisStore returns a store on c (a *redis.Client, *redis.ClusterClient,
// *redis.Ring, or what redis.NewUniversalClient returns). It does no I/O.
// It panics if c is nil or if its options do not set
// ContextTimeoutEnabled: without it go-redis ignores context deadlines on
// socket reads, and a hung Redis would hang requests past the store
// timeout.
func NewRedisStore(c redis.UniversalClient, opts ...StoreOption) *RedisStore {
	if c == nil {
		panic("idempotency: NewRedisStore: nil client")
	}
	if enabled, known := redisopt.ContextTimeoutEnabled(c); known && !enabled {
		panic("idempotency: NewRedisStore: the client's options must set ContextTimeoutEnabled: true " +
			"(without it go-redis does not honour the store timeout)")
	}
	o := newStoreOptions(opts)
	return &RedisStore{c: c, prefix: o.prefix}
}

func (s *RedisStore) key(key string) string {
	return s.prefix + "{" + key + "}"
}

// maxExpiry bounds PX arguments (about 35 years) so that Redis never
// refuses one as out of range.
const maxExpiry = 1 << 40

func ms(d time.Duration) int64 {
	return min(max(int64(d/time.Millisecond), 1), maxExpiry)
}

// Claim implements [Store]: one round trip.
func (s *RedisStore) Claim(ctx context.Context, key string, token Token, fp Fingerprint, lease time.Duration) (Claim, error) {
	var v [1 + len(Token{}) + len(Fingerprint{})]byte
	v[0] = claimTag
	copy(v[1:], token[:])
	copy(v[1+len(token):], fp[:])
	res, err := claimScript.Run(ctx, s.c, []string{s.key(key)}, v[:], ms(lease)).Slice()
	if err != nil {
		return Claim{}, err
	}
	state, _ := res[0].(int64)
	switch {
	case state == 1 && len(res) == 1:
		return Claim{State: Claimed}, nil
	case state == 2 && len(res) == 3:
		val, _ := res[1].(string)
		pttl, _ := res[2].(int64)
		if len(val) != len(v) {
			return Claim{}, errBadValue
		}
		c := Claim{State: InFlight, Lease: time.Duration(max(pttl, 0)) * time.Millisecond}
		copy(c.Fingerprint[:], val[1+len(token):])
		return c, nil
	case state == 3 && len(res) == 2:
		val, _ := res[1].(string)
		return Claim{State: Done, Record: []byte(val)}, nil
	}
	return Claim{}, fmt.Errorf("%w: %v", errBadValue, res)
}

var errBadValue = errors.New("idempotency: unexpected value in Redis")

func ownerTag(token Token) []byte {
	b := make([]byte, 1+len(token))
	b[0] = claimTag
	copy(b[1:], token[:])
	return b
}

// Complete implements [Store]: one round trip.
func (s *RedisStore) Complete(ctx context.Context, key string, token Token, record []byte, retention time.Duration) error {
	if len(record) > 0 && record[0] == claimTag {
		return errors.New("idempotency: a record must not start with the claim tag")
	}
	n, err := completeScript.Run(ctx, s.c, []string{s.key(key)}, ownerTag(token), record, ms(retention)).Int64()
	if err != nil {
		return err
	}
	if n != 1 {
		return ErrNotOwner
	}
	return nil
}

// Release implements [Store]: one round trip.
func (s *RedisStore) Release(ctx context.Context, key string, token Token) error {
	n, err := releaseScript.Run(ctx, s.c, []string{s.key(key)}, ownerTag(token)).Int64()
	if err != nil {
		return err
	}
	if n != 1 {
		return ErrNotOwner
	}
	return nil
}
