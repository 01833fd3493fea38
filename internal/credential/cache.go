package credential

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"
)

// sharedCallLimit bounds a verification shared by several requests, in case
// the wrapped verifier sets no timeout of its own: the call outlives the
// request that started it, so nothing else would end it.
const sharedCallLimit = 30 * time.Second

// DefaultMaxInFlight is CacheConfig.MaxInFlight's default.
const DefaultMaxInFlight = 64

// DefaultMaxBytes is CacheConfig.MaxBytes's default.
const DefaultMaxBytes = 64 << 20

// MaxEntryBytes is the most one remembered verdict may weigh, as
// entryBytes accounts it. A verifier's answer is up to 64 KiB of JSON,
// which decodes to ten times that in claims when it is made of small
// values; an ordinary answer weighs 2 to 4 KiB. A verdict heavier than
// this is not remembered: the token is verified and its request goes on
// with everything the verifier said, but the next request with it asks the
// verifier again (within MaxInFlight, like any miss). Trimming the claims
// instead would change what the policy sees of the token.
const MaxEntryBytes = 32 << 10

// CacheConfig tunes a Cache. Zero values take the defaults.
type CacheConfig struct {
	// Size is the most tokens remembered (default 10000).
	Size int
	// TTL is the longest a valid verdict is reused (default 5m); it never
	// outlives the token's expiry. Negative: valid verdicts are not cached.
	TTL time.Duration
	// NegativeTTL is how long a rejection is reused (default 10s).
	// Negative: rejections are not cached.
	NegativeTTL time.Duration
	// Now tells the time (default time.Now); tests set it.
	Now func() time.Time
	// Observe, when set, is told how each verification was answered
	// (metrics); it must be cheap and safe for concurrent use.
	Observe func(Lookup)
	// MaxInFlight is the most calls to the wrapped Verifier that run at
	// once (default 64; zero or negative takes the default). A token that
	// needs a call beyond it is refused at once (LookupShed), never queued:
	// a flood of distinct unknown tokens is answered 503 instead of piling
	// up on the verifier, while remembered tokens are answered as ever.
	MaxInFlight int
	// MaxBytes is the most the remembered verdicts weigh together, as
	// entryBytes accounts them (default DefaultMaxBytes; zero or negative
	// takes the default): past it, the least recently used are forgotten,
	// whatever Size allows. A verdict heavier than MaxEntryBytes is never
	// remembered.
	MaxBytes int64
}

// Lookup is how the cache answered one verification.
type Lookup uint8

const (
	// LookupHit: from the cache.
	LookupHit Lookup = iota
	// LookupMiss: by a call to the wrapped Verifier made for this request.
	LookupMiss
	// LookupCoalesced: by a call another request made at the same time.
	LookupCoalesced
	// LookupShed: refused with ErrUnavailable, because the token needed a
	// call while MaxInFlight calls were running.
	LookupShed
)

// String returns "hit", "miss", "coalesced" or "shed".
func (l Lookup) String() string {
	switch l {
	case LookupHit:
		return "hit"
	case LookupMiss:
		return "miss"
	case LookupCoalesced:
		return "coalesced"
	case LookupShed:
		return "shed"
	}
	return "Lookup(" + strconv.Itoa(int(l)) + ")"
}

// Cache is a Verifier that remembers another Verifier's verdicts in a
// bounded LRU keyed by the token's SHA-256; the token itself is never kept.
// Concurrent first requests with one token share a single call, and at most
// MaxInFlight calls run at once. Failures to verify (ErrUnavailable), shed
// lookups among them, are never cached.
//
// The *Info a Cache returns is shared by every request with that token:
// callers must not modify it, nor its Scopes or Claims. A hit hands out
// the remembered *Info itself; nothing is copied.
type Cache struct {
	v           Verifier
	entries     *lru.Cache[[sha256.Size]byte, entry]
	ttl, negTTL time.Duration
	now         func() time.Time
	observe     func(Lookup)
	group       singleflight.Group
	// slots holds one element per running call: a send that would block
	// means MaxInFlight calls are running.
	slots chan struct{}
	// errShed is what a shed lookup gets; made once, so that shedding a
	// flood allocates no errors and is told apart by identity.
	errShed error

	// maxBytes bounds bytes, the weight of the entries held: added when an
	// entry is, taken off by the LRU's eviction callback when it leaves.
	maxBytes int64
	bytes    atomic.Int64

	hits, misses, coalesced, shed, calls atomic.Uint64
}

// entry is one remembered verdict: info, or the rejection err, and what it
// weighs.
type entry struct {
	info  *Info
	err   error
	until time.Time
	size  int64
}

// Stats counts what a Cache did since it was made.
type Stats struct {
	// Hits are verifications answered from the cache.
	Hits uint64
	// Misses are verifications the cache could not answer.
	Misses uint64
	// Coalesced are misses answered by a call another request made.
	Coalesced uint64
	// Shed are misses refused because MaxInFlight calls were running.
	Shed uint64
	// Calls are calls to the wrapped Verifier.
	Calls uint64
	// Bytes is what the verdicts held weigh, as entryBytes accounts them.
	Bytes int64
}

// NewCache returns a Cache in front of v.
func NewCache(v Verifier, cfg CacheConfig) *Cache {
	c := &Cache{v: v, ttl: cfg.TTL, negTTL: cfg.NegativeTTL, now: cfg.Now, observe: cfg.Observe}
	size := cfg.Size
	if size <= 0 {
		size = 10000
	}
	if c.ttl == 0 {
		c.ttl = 5 * time.Minute
	}
	if c.negTTL == 0 {
		c.negTTL = 10 * time.Second
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.observe == nil {
		c.observe = func(Lookup) {}
	}
	limit := cfg.MaxInFlight
	if limit <= 0 {
		limit = DefaultMaxInFlight
	}
	c.slots = make(chan struct{}, limit)
	c.errShed = fmt.Errorf("verify token: %w: %d verifier calls already in flight", ErrUnavailable, limit)
	c.maxBytes = cfg.MaxBytes
	if c.maxBytes <= 0 {
		c.maxBytes = DefaultMaxBytes
	}
	// lru.NewWithEvict fails only for a size below 1. The callback runs for
	// every entry that leaves: evicted, removed, or expired.
	c.entries, _ = lru.NewWithEvict(size, func(_ [sha256.Size]byte, e entry) { c.bytes.Add(-e.size) })
	return c
}

// Verify returns the verdict remembered for token, or asks the wrapped
// Verifier, once for all concurrent requests with that token. When
// MaxInFlight calls are already running, a token that needs a call gets
// an error wrapping ErrUnavailable at once. The shared call does not end
// when the request that started it is cancelled; a request whose ctx ends
// while it waits gets an error wrapping ErrUnavailable.
func (c *Cache) Verify(ctx context.Context, token string) (*Info, error) {
	key := sha256.Sum256([]byte(token))
	if e, ok := c.lookup(key); ok {
		c.hits.Add(1)
		c.observe(LookupHit)
		return e.info, e.err
	}
	c.misses.Add(1)
	return c.verifyMiss(ctx, key, token)
}

// verifyMiss answers a token the cache does not hold. It is apart from
// Verify so that only a miss pays for the key the shared call captures.
func (c *Cache) verifyMiss(ctx context.Context, key [sha256.Size]byte, token string) (*Info, error) {
	// called is written by the shared call's goroutine before the result
	// is sent on the channel, and read only after it is received.
	called := false
	ch := c.group.DoChan(string(key[:]), func() (any, error) {
		// A call that ended between our lookup and DoChan has already
		// stored its verdict.
		if e, ok := c.lookup(key); ok {
			return e, nil
		}
		// The slot is taken here, by the one request that makes the call,
		// so that requests coalesced onto it share it.
		select {
		case c.slots <- struct{}{}:
		default:
			return entry{err: c.errShed}, nil
		}
		defer func() { <-c.slots }()
		called = true
		c.calls.Add(1)
		return c.call(context.WithoutCancel(ctx), key, token), nil
	})
	select {
	case res := <-ch:
		e := res.Val.(entry)
		switch {
		case e.err == c.errShed:
			// Requests coalesced onto a shed call are shed with it.
			c.shed.Add(1)
			c.observe(LookupShed)
		case called:
			c.observe(LookupMiss)
		default:
			c.coalesced.Add(1)
			c.observe(LookupCoalesced)
		}
		return e.info, e.err
	case <-ctx.Done():
		return nil, fmt.Errorf("verify token: %w: %w", ErrUnavailable, context.Cause(ctx))
	}
}

// lookup returns the unexpired entry for key.
func (c *Cache) lookup(key [sha256.Size]byte) (entry, bool) {
	e, ok := c.entries.Get(key)
	if !ok {
		return entry{}, false
	}
	if !c.now().Before(e.until) {
		c.entries.Remove(key)
		return entry{}, false
	}
	return e, true
}

// call asks the wrapped Verifier and remembers the verdict.
func (c *Cache) call(ctx context.Context, key [sha256.Size]byte, token string) (e entry) {
	ctx, cancel := context.WithTimeout(ctx, sharedCallLimit)
	defer cancel()
	defer func() {
		// The call runs in singleflight's goroutine, where a panic would
		// end the process rather than the request.
		if p := recover(); p != nil {
			e = entry{err: fmt.Errorf("verify token: %w: verifier panicked: %s", ErrUnavailable, redact(fmt.Sprint(p), token))}
		}
	}()
	info, err := c.v.Verify(ctx, token)
	now := c.now()
	if err == nil && info == nil {
		return entry{err: fmt.Errorf("verify token: %w: verifier returned no answer", ErrUnavailable)}
	}
	if err == nil {
		if err = expired(info, now, "verifier"); err != nil {
			info = nil
		} else {
			// Every request answered from the cache reuses the id.
			tagged := *info
			tagged.TokenID = tokenID(key)
			info = &tagged
		}
	}
	e = entry{info: info, err: err}
	var invalid *InvalidError
	switch {
	case err == nil && c.ttl > 0:
		e.until = now.Add(c.ttl)
		if !info.Expiry.IsZero() && info.Expiry.Before(e.until) {
			e.until = info.Expiry
		}
		c.remember(key, e)
	case errors.As(err, &invalid) && c.negTTL > 0:
		e.until = now.Add(c.negTTL)
		c.remember(key, e)
	}
	return e
}

// remember adds e, unless it is too heavy, and forgets the least recently
// used entries until the whole is within maxBytes again.
func (c *Cache) remember(key [sha256.Size]byte, e entry) {
	e.size = entryBytes(e)
	if e.size > MaxEntryBytes || e.size > c.maxBytes {
		return
	}
	// An entry replaced by Add would leave without the callback.
	c.entries.Remove(key)
	c.bytes.Add(e.size)
	c.entries.Add(key, e)
	for c.bytes.Load() > c.maxBytes {
		if _, _, ok := c.entries.RemoveOldest(); !ok {
			break
		}
	}
}

// Len returns the number of verdicts held, expired ones not yet evicted
// included.
func (c *Cache) Len() int { return c.entries.Len() }

// Stats returns the cache's counters.
func (c *Cache) Stats() Stats {
	return Stats{
		Hits:      c.hits.Load(),
		Misses:    c.misses.Load(),
		Coalesced: c.coalesced.Load(),
		Shed:      c.shed.Load(),
		Calls:     c.calls.Load(),
		Bytes:     c.bytes.Load(),
	}
}

// What a remembered verdict weighs beyond its strings' bytes, in bytes of
// heap, rounded up from what Go 1.26 allocates on amd64 (checked by
// TestCacheAccountsAtLeastTheHeapItsEntriesHold): an entry with its key,
// LRU element, index slot and the Info copy; a string, a number and a
// slice boxed in an interface; a slot of a []any; a map's header, and a
// group of eight slots of a map[string]any (a key and a value each, and
// the group's control word).
const (
	entryOverhead = 512
	boxedString   = 16
	boxedNumber   = 8
	boxedSlice    = 32
	sliceSlot     = 16
	mapHeader     = 64
	mapGroup      = 8*32 + 8
)

// entryBytes is what e weighs on the heap, an upper estimate: its
// strings, scopes and claims walked once, at the cost of a verification.
func entryBytes(e entry) int64 {
	n := int64(entryOverhead)
	if e.err != nil {
		return n + stringBytes(e.err.Error())
	}
	i := e.info
	n += stringBytes(i.Subject) + stringBytes(i.Email) + stringBytes(i.Audience) +
		stringBytes(i.ClientID) + stringBytes(i.Verifier) + stringBytes(i.TokenID)
	n += int64(cap(i.Scopes)) * sliceSlot
	for _, s := range i.Scopes {
		n += stringBytes(s)
	}
	return n + valueBytes(i.Claims)
}

// valueBytes is what a JSON-decoded value weighs, boxed in an interface.
func valueBytes(v any) int64 {
	switch v := v.(type) {
	case nil, bool:
		return 0 // not boxed: Go keeps static values for these
	case string:
		return boxedString + stringBytes(v)
	case []any:
		n := boxedSlice + int64(cap(v))*sliceSlot
		for _, e := range v {
			n += valueBytes(e)
		}
		return n
	case map[string]any:
		n := mapBytes(len(v))
		for k, e := range v {
			n += stringBytes(k) + valueBytes(e)
		}
		return n
	}
	return boxedNumber // a float64, or a number of another kind
}

// mapBytes is what a map of n entries weighs without its keys' and values'
// own allocations: a header, then groups of eight slots filled to at most
// seven eighths, their count a power of two (the table as grown by
// inserting one entry at a time, as a JSON decoder does).
func mapBytes(n int) int64 {
	if n == 0 {
		return mapHeader
	}
	groups := 1
	for groups*7 < n {
		groups *= 2
	}
	// A table that has grown past one group has a header of its own, and
	// past 128 groups is split in several under a directory, which grow
	// apart (a quarter more, measured at 6,000 entries).
	extra := int64(0)
	if groups > 1 {
		extra = 64 + int64(groups/128+1)*64
	}
	if groups > 128 {
		groups += groups / 4
	}
	return mapHeader + int64(groups)*mapGroup + extra
}

// stringBytes is a string's bytes as allocated: rounded up to 8.
func stringBytes(s string) int64 {
	return (int64(len(s)) + 7) &^ 7
}

var _ Verifier = (*Cache)(nil)
