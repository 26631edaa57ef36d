package idempotency

import (
	"context"
	"time"
)

// Token identifies one claim: the owner passes it back to complete or
// release, so a claim that was taken over cannot be completed by its late
// first owner.
type Token [16]byte

// Fingerprint identifies the request a key was first used with (by
// default a SHA-256 of method, path and body).
type Fingerprint [32]byte

// State is what [Store.Claim] found.
type State uint8

// The states of a claim.
const (
	// Claimed: the key was free (or its claim had expired); the caller
	// owns it now and must complete or release it.
	Claimed State = iota + 1
	// InFlight: a live claim of another caller holds the key.
	InFlight
	// Done: a record is stored for the key.
	Done
)

// Claim is the answer of [Store.Claim].
type Claim struct {
	State State
	// Fingerprint is the owner's, when State is InFlight.
	Fingerprint Fingerprint
	// Lease is what remains of the owner's lease, when State is InFlight.
	Lease time.Duration
	// Record is the stored record, when State is Done, as given to
	// Complete. The caller must not modify it.
	Record []byte
}

// Store keeps claims and records. Keys are opaque, at most 64 bytes of
// [0-9a-f] (a digest of scope and client key), and the same key always
// maps to the same claim. Implementations must be safe for concurrent use
// and must honour ctx's deadline: the [Guard] gives every call
// [WithStoreTimeout].
//
// [NewMemoryStore] and [NewRedisStore] are the two implementations.
type Store interface {
	// Claim atomically takes key for the owner token with fingerprint fp
	// for lease, unless a live claim or a record holds it: then it
	// reports that one. A claim whose lease ended is taken over.
	Claim(ctx context.Context, key string, token Token, fp Fingerprint, lease time.Duration) (Claim, error)

	// Complete replaces token's claim on key with record, kept for
	// retention. It returns [ErrNotOwner] when token no longer holds the
	// claim, and leaves the key as it is. The store may keep record; the
	// caller does not modify it afterwards.
	Complete(ctx context.Context, key string, token Token, record []byte, retention time.Duration) error

	// Release deletes token's claim on key, so a retry executes. It
	// returns [ErrNotOwner] when token no longer holds the claim.
	Release(ctx context.Context, key string, token Token) error
}

// local is implemented by stores that never block (the memory store): the
// Guard calls them without a timeout context.
type local interface{ local() }
