// Package limit bounds how many cancels a key (a principal, an API, any
// CEL key the gateway computes) may make: at most Count admissions in any
// window of Window, a sliding window, not fixed buckets.
//
// # The window
//
// A rule admits a cancel at time t when fewer than Count admissions lie in
// (t-Window, t]. That holds exactly when the Count-th most recent admission
// is at or before t-Window, so a store needs to keep only the Count most
// recent admission times of a key: a full log of the window would decide
// the same. A refused cancel is not an admission and is not kept. The time
// until a refused cancel would be admitted is when that Count-th most
// recent admission leaves the window.
//
// # Several rules, one decision
//
// A cancel is checked against every rule at once and recorded only when
// every rule admits it: a cancel one rule refuses consumes no other rule's
// quota. Stores make the check and the record one atomic step (the local
// store under one lock, Redis in one Lua script), so that any number of
// gateways and concurrent cancels sharing a store admit exactly Count.
// Under a dry run (Take's force) every cancel is recorded, and the result
// still says which rule would have refused it.
//
// # Keys
//
// Keys are hashed (SHA-256 of the rule's name and the key, in hex) before
// they reach a store: the store never holds a principal or anything else of
// the request in clear.
package limit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Rule is one limit: at most Count admissions per key in any Window.
type Rule struct {
	Name   string
	Count  int
	Window time.Duration
}

// Hash is a key as a store knows it (see HashKey).
type Hash [sha256.Size]byte

// Entry is one rule's share of a Take: the hashed key and the rule's
// bounds.
type Entry struct {
	Key    Hash
	Count  int
	Window time.Duration
}

// Result is a store's answer to Take.
type Result struct {
	// Refused is the index of the first entry over its quota, -1 when
	// every entry admits the cancel.
	Refused int
	// RetryAfter is, when Refused >= 0, the time until that entry's
	// oldest counted admission leaves its window and frees a slot.
	RetryAfter time.Duration
}

// Store keeps the admissions. Implementations are safe for concurrent use.
type Store interface {
	// Take checks every entry and, when all admit the cancel (or force is
	// set), records one admission for each, atomically: no other Take on
	// the same keys, from this process or another, sees a state between
	// the check and the record.
	Take(ctx context.Context, entries []Entry, force bool) (Result, error)
	// Count returns the admissions a key has in its current window.
	Count(ctx context.Context, key Hash, window time.Duration) (int, error)
	// Close releases the store's connections.
	Close() error
}

// ErrStoreLost is what a store reports when it finds that it lost the
// admissions it held (a Redis restart without persistence): until the
// longest window has passed since, its counts are too low to be exact.
var ErrStoreLost = errors.New("the limit store lost its counts (restarted without persistence?)")

// Limiter applies rules through a store.
type Limiter struct {
	rules []Rule
	store Store
}

// New returns a limiter of rules over store. Every rule needs a name, a
// positive count and a positive window.
func New(rules []Rule, store Store) (*Limiter, error) {
	seen := make(map[string]bool, len(rules))
	for _, r := range rules {
		switch {
		case r.Name == "":
			return nil, errors.New("a limit rule needs a name")
		case seen[r.Name]:
			return nil, fmt.Errorf("limit rule %q: the name is used by an earlier rule", r.Name)
		case r.Count <= 0:
			return nil, fmt.Errorf("limit rule %q: the count must be positive, not %d", r.Name, r.Count)
		case r.Window <= 0:
			return nil, fmt.Errorf("limit rule %q: the window must be positive, not %s", r.Name, r.Window)
		}
		seen[r.Name] = true
	}
	return &Limiter{rules: rules, store: store}, nil
}

// Rules returns the limiter's rules; shared, do not modify.
func (l *Limiter) Rules() []Rule { return l.rules }

// Store returns the limiter's store.
func (l *Limiter) Store() Store { return l.store }

// Take checks a cancel whose key under rule i is keys[i] against every
// rule whose keys[i] is not "" (the others are left out: the caller has
// refused or excused them), and records it as Store.Take does. Result's
// Refused is the index of a rule.
func (l *Limiter) Take(ctx context.Context, keys []string, force bool) (Result, error) {
	// A few rules fit on the stack; more spill to the heap. The local
	// store is called as itself: entries passed through the interface
	// would escape to the heap on every cancel.
	var entryBuf [4]Entry
	var idxBuf [4]int
	entries, idx := l.entries(entryBuf[:0], idxBuf[:0], keys)
	if len(entries) == 0 {
		return Result{Refused: -1}, nil
	}
	var res Result
	var err error
	if local, ok := l.store.(*Local); ok {
		res, err = local.Take(ctx, entries, force)
	} else {
		res, err = l.take(ctx, entries, force)
	}
	if err != nil {
		return Result{Refused: -1}, err
	}
	if res.Refused >= 0 {
		res.Refused = idx[res.Refused]
	}
	return res, nil
}

// take calls the store through its interface, with a copy of entries:
// the caller's stay on its stack.
func (l *Limiter) take(ctx context.Context, entries []Entry, force bool) (Result, error) {
	return l.store.Take(ctx, slices.Clone(entries), force)
}

// entries appends each keyed rule's entry, and its index, to the buffers.
func (l *Limiter) entries(entries []Entry, idx []int, keys []string) ([]Entry, []int) {
	for i, k := range keys {
		if k == "" {
			continue
		}
		r := l.rules[i]
		entries = append(entries, Entry{Key: HashKey(r.Name, k), Count: r.Count, Window: r.Window})
		idx = append(idx, i)
	}
	return entries, idx
}

// Count returns the admissions key has under rule i in its current
// window.
func (l *Limiter) Count(ctx context.Context, i int, key string) (int, error) {
	r := l.rules[i]
	return l.store.Count(ctx, HashKey(r.Name, key), r.Window)
}

// HashKey is a rule's key as a store knows it: the SHA-256 of the rule's
// name, a zero byte and the key. The rule's name keeps two rules over the
// same key apart.
func HashKey(rule, key string) Hash {
	var in [256]byte // most keys fit: hashing them then allocates nothing
	return sha256.Sum256(append(append(append(in[:0], rule...), 0), key...))
}

// String is the hash in hex, as Redis keys carry it.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }
