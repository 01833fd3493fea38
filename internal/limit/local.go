package limit

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Local is a store in this process's memory: exact for one gateway, and
// what `caddy lro-cancel explain` can read. Its counts start again at zero
// when the process does.
type Local struct {
	mu    sync.Mutex
	keys  map[Hash]*ring
	now   func() time.Duration
	swept int // len(keys) after the last sweep
}

// ring holds a key's most recent admissions, at most its rule's count,
// as times since the store's start (monotonic: a wall-clock step cannot
// free or fill a window). at[head] is the oldest.
type ring struct {
	at     []time.Duration
	head   int
	window time.Duration
}

// NewLocal returns an empty local store.
func NewLocal() *Local {
	start := time.Now()
	return &Local{keys: make(map[Hash]*ring), now: func() time.Duration { return time.Since(start) }}
}

// sweepFloor is the number of keys below which the store never sweeps.
const sweepFloor = 1024

// Take implements Store.
func (s *Local) Take(_ context.Context, entries []Entry, force bool) (Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	res := Result{Refused: -1}
	for i, e := range entries {
		r := s.keys[e.Key]
		if r == nil || len(r.at) < e.Count {
			continue
		}
		if kth := r.recent(e.Count); kth > now-e.Window {
			res.Refused, res.RetryAfter = i, kth+e.Window-now
			break
		}
	}
	if res.Refused >= 0 && !force {
		return res, nil
	}
	for _, e := range entries {
		r := s.keys[e.Key]
		if r == nil {
			r = &ring{at: make([]time.Duration, 0, min(e.Count, 64))}
			s.keys[e.Key] = r
		}
		r.window = e.Window
		r.add(now, e.Count)
	}
	if len(s.keys) > max(sweepFloor, 2*s.swept) {
		s.sweep(now)
	}
	return res, nil
}

// recent returns the k-th most recent admission kept (k <= len(r.at)).
func (r *ring) recent(k int) time.Duration {
	return r.at[(r.head+len(r.at)-k)%len(r.at)]
}

// add records an admission at now, forgetting the oldest once count are
// kept. A ring kept for a larger count (before a reload lowered it) keeps
// its size: more than count times decide the same.
func (r *ring) add(now time.Duration, count int) {
	if len(r.at) < count {
		if r.head != 0 { // wrapped, then the count grew: put it in order
			r.at, r.head = slices.Concat(r.at[r.head:], r.at[:r.head]), 0
		}
		r.at = append(r.at, now)
		return
	}
	r.at[r.head] = now
	r.head = (r.head + 1) % len(r.at)
}

// newest is the time of the key's last admission.
func (r *ring) newest() time.Duration { return r.recent(1) }

// sweep forgets the keys whose every admission has left its window, so
// that a stream of distinct keys does not grow the store without bound.
func (s *Local) sweep(now time.Duration) {
	for k, r := range s.keys {
		if r.newest() <= now-r.window {
			delete(s.keys, k)
		}
	}
	s.swept = len(s.keys)
}

// Count implements Store.
func (s *Local) Count(_ context.Context, key Hash, window time.Duration) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.keys[key]
	if r == nil {
		return 0, nil
	}
	now, n := s.now(), 0
	for _, t := range r.at {
		if t > now-window {
			n++
		}
	}
	return n, nil
}

// Close implements Store; a local store holds nothing to release.
func (s *Local) Close() error { return nil }

var _ Store = (*Local)(nil)
