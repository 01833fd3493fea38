package credential

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// fakeVerifier answers with verdict and counts calls.
type fakeVerifier struct {
	calls   atomic.Int64
	verdict func(token string) (*Info, error)
}

func (f *fakeVerifier) Verify(_ context.Context, token string) (*Info, error) {
	f.calls.Add(1)
	return f.verdict(token)
}

func valid(expiry time.Time) *fakeVerifier {
	return &fakeVerifier{verdict: func(string) (*Info, error) {
		return &Info{Subject: "1057", Scopes: []string{"s"}, Expiry: expiry}, nil
	}}
}

func failing(err error) *fakeVerifier {
	return &fakeVerifier{verdict: func(string) (*Info, error) { return nil, err }}
}

func TestCacheLifetimes(t *testing.T) {
	unavailable := fmt.Errorf("verify token: %w: status 503", ErrUnavailable)
	rejected := &InvalidError{Reason: ReasonInvalid, Detail: "tokeninfo answered 400"}
	tests := []struct {
		name      string
		verifier  *fakeVerifier
		cfg       CacheConfig
		after     time.Duration // time between the first and second Verify
		wantCalls int64
	}{
		{name: "hit within TTL", verifier: valid(epoch.Add(time.Hour)), after: 5*time.Minute - time.Second, wantCalls: 1},
		{name: "TTL ends a valid verdict", verifier: valid(epoch.Add(time.Hour)), after: 5 * time.Minute, wantCalls: 2},
		{name: "configured TTL", verifier: valid(epoch.Add(time.Hour)), cfg: CacheConfig{TTL: time.Minute}, after: time.Minute, wantCalls: 2},
		{name: "verdict without expiry lives for TTL", verifier: valid(time.Time{}), after: 4 * time.Minute, wantCalls: 1},
		{name: "token expiry ends a verdict before TTL", verifier: valid(epoch.Add(30 * time.Second)), after: 30 * time.Second, wantCalls: 2},
		{name: "negative TTL disables valid caching", verifier: valid(epoch.Add(time.Hour)), cfg: CacheConfig{TTL: -1}, wantCalls: 2},
		{name: "rejection is reused", verifier: failing(rejected), after: 10*time.Second - time.Millisecond, wantCalls: 1},
		{name: "rejection is reused for NegativeTTL only", verifier: failing(rejected), after: 10 * time.Second, wantCalls: 2},
		{name: "wrapped rejection is reused", verifier: failing(fmt.Errorf("jwt: %w", rejected)), cfg: CacheConfig{NegativeTTL: time.Minute}, after: 59 * time.Second, wantCalls: 1},
		{name: "negative NegativeTTL disables rejection caching", verifier: failing(rejected), cfg: CacheConfig{NegativeTTL: -1}, wantCalls: 2},
		{name: "unavailable is never cached", verifier: failing(unavailable), wantCalls: 2},
		{name: "other errors are never cached", verifier: failing(errors.New("boom")), wantCalls: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &clock{now: epoch}
			cfg := tt.cfg
			cfg.Now = clk.Now
			c := NewCache(tt.verifier, cfg)
			info1, err1 := c.Verify(context.Background(), testToken)
			clk.advance(tt.after)
			info2, err2 := c.Verify(context.Background(), testToken)
			if got := tt.verifier.calls.Load(); got != tt.wantCalls {
				t.Errorf("verifier called %d times, want %d", got, tt.wantCalls)
			}
			if tt.wantCalls == 1 && (info1 != info2 || err1 != err2) {
				t.Errorf("cached verdict (%v, %v) differs from the first (%v, %v)", info2, err2, info1, err1)
			}
			if s := c.Stats(); s.Calls != uint64(tt.wantCalls) || s.Hits+s.Misses != 2 || s.Hits != uint64(2-tt.wantCalls) {
				t.Errorf("Stats = %+v, want %d calls and %d hits", s, tt.wantCalls, 2-tt.wantCalls)
			}
		})
	}
}

func TestCacheTurnsExpiredVerdictIntoRejection(t *testing.T) {
	clk := &clock{now: epoch}
	v := valid(epoch.Add(30 * time.Second))
	c := NewCache(v, CacheConfig{Now: clk.Now})
	if _, err := c.Verify(context.Background(), testToken); err != nil {
		t.Fatal(err)
	}
	clk.advance(30 * time.Second)
	for range 2 {
		info, err := c.Verify(context.Background(), testToken)
		var invalid *InvalidError
		if info != nil || !errors.As(err, &invalid) || invalid.Reason != ReasonExpired {
			t.Fatalf("Verify after expiry = %v, %v; want ReasonExpired", info, err)
		}
	}
	if got := v.calls.Load(); got != 2 {
		t.Errorf("verifier called %d times, want 2 (the expiry verdict is cached)", got)
	}
}

func TestCacheSizeBound(t *testing.T) {
	v := valid(time.Time{})
	c := NewCache(v, CacheConfig{Size: 3})
	for i := range 10 {
		if _, err := c.Verify(context.Background(), "tok"+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	if c.Len() != 3 {
		t.Errorf("Len = %d, want 3", c.Len())
	}
	if _, err := c.Verify(context.Background(), "tok9"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Verify(context.Background(), "tok0"); err != nil {
		t.Fatal(err)
	}
	if got := v.calls.Load(); got != 11 {
		t.Errorf("verifier called %d times, want 11 (tok9 remembered, tok0 evicted)", got)
	}
}

func TestCacheDefaultSize(t *testing.T) {
	c := NewCache(valid(time.Time{}), CacheConfig{})
	for i := range 10001 {
		if _, err := c.Verify(context.Background(), strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	if c.Len() != 10000 {
		t.Errorf("Len = %d, want 10000", c.Len())
	}
}

func TestCacheRecoversVerifierPanic(t *testing.T) {
	v := &fakeVerifier{verdict: func(token string) (*Info, error) { panic("cannot parse " + token) }}
	c := NewCache(v, CacheConfig{})
	for range 2 {
		info, err := c.Verify(context.Background(), testToken)
		if info != nil || !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Verify = %v, %v; want ErrUnavailable", info, err)
		}
		assertNoSecret(t, err, testToken)
	}
	if got := v.calls.Load(); got != 2 {
		t.Errorf("verifier called %d times, want 2 (a panic is not cached)", got)
	}
}

func TestCacheRejectsNilInfo(t *testing.T) {
	c := NewCache(failing(nil), CacheConfig{})
	if info, err := c.Verify(context.Background(), testToken); info != nil || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Verify = %v, %v; want ErrUnavailable", info, err)
	}
}

// blockingTokenInfo is a tokeninfo server that holds every request until
// released, counting them.
type blockingTokenInfo struct {
	hits    atomic.Int64
	release chan struct{}
}

func newBlockingTokenInfo(t *testing.T) (*blockingTokenInfo, *TokenInfo) {
	b := &blockingTokenInfo{release: make(chan struct{})}
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		<-b.release
		io.WriteString(w, `{"azp":"c","sub":"1057","scope":"s","expires_in":"3599"}`)
	}))
	return b, &TokenInfo{URL: srv.URL}
}

// waitFor polls cond until it holds or the test has waited too long.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestCacheCoalescesConcurrentMisses(t *testing.T) {
	srv, v := newBlockingTokenInfo(t)
	c := NewCache(v, CacheConfig{})
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			info, err := c.Verify(context.Background(), testToken)
			if err == nil && info.Subject != "1057" {
				err = fmt.Errorf("info = %+v", info)
			}
			errs <- err
		})
	}
	waitFor(t, "all requests to miss", func() bool { return c.Stats().Misses == n })
	close(srv.release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if got := srv.hits.Load(); got != 1 {
		t.Errorf("tokeninfo received %d requests, want 1", got)
	}
	if s := c.Stats(); s.Calls != 1 || s.Coalesced != n-1 {
		t.Errorf("Stats = %+v, want 1 call and %d coalesced", s, n-1)
	}
}

func TestCacheTellsObserveHowEachVerificationWasAnswered(t *testing.T) {
	srv, v := newBlockingTokenInfo(t)
	var mu sync.Mutex
	seen := map[Lookup]int{}
	c := NewCache(v, CacheConfig{Observe: func(l Lookup) {
		mu.Lock()
		seen[l]++
		mu.Unlock()
	}})
	const n = 10
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { _, _ = c.Verify(context.Background(), testToken) })
	}
	waitFor(t, "all requests to miss", func() bool { return c.Stats().Misses == n })
	close(srv.release)
	wg.Wait()
	if _, err := c.Verify(context.Background(), testToken); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := map[Lookup]int{LookupMiss: 1, LookupCoalesced: n - 1, LookupHit: 1}
	for l, w := range want {
		if seen[l] != w {
			t.Errorf("%s observed %d times, want %d (all: %v)", l, seen[l], w, seen)
		}
	}
}

func TestCacheCancelledFirstCallerDoesNotFailOthers(t *testing.T) {
	srv, v := newBlockingTokenInfo(t)
	c := NewCache(v, CacheConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	firstErr := make(chan error, 1)
	go func() {
		_, err := c.Verify(ctx, testToken)
		firstErr <- err
	}()
	waitFor(t, "the first request to reach tokeninfo", func() bool { return srv.hits.Load() == 1 })
	second := make(chan error, 1)
	go func() {
		_, err := c.Verify(context.Background(), testToken)
		second <- err
	}()
	waitFor(t, "the second request to miss", func() bool { return c.Stats().Misses == 2 })
	cancel()
	err := <-firstErr
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled caller got %v, want ErrUnavailable wrapping context.Canceled", err)
	}
	close(srv.release)
	if err := <-second; err != nil {
		t.Errorf("second caller got %v, want the shared verdict", err)
	}
	if _, err := c.Verify(context.Background(), testToken); err != nil {
		t.Errorf("later caller got %v, want the cached verdict", err)
	}
	if got := srv.hits.Load(); got != 1 {
		t.Errorf("tokeninfo received %d requests, want 1", got)
	}
}

func BenchmarkCacheHit(b *testing.B) {
	b.ReportAllocs()
	c := NewCache(valid(time.Time{}), CacheConfig{})
	ctx := context.Background()
	if _, err := c.Verify(ctx, testToken); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := c.Verify(ctx, testToken); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCacheMiss(b *testing.B) {
	b.ReportAllocs()
	c := NewCache(valid(time.Time{}), CacheConfig{})
	ctx := context.Background()
	tokens := make([]string, 1<<16)
	for i := range tokens {
		tokens[i] = testToken + strconv.Itoa(i)
	}
	i := 0
	for b.Loop() {
		// A fresh cache for every 64Ki tokens keeps each Verify a miss.
		if i%len(tokens) == 0 {
			b.StopTimer()
			c = NewCache(valid(time.Time{}), CacheConfig{})
			b.StartTimer()
		}
		if _, err := c.Verify(ctx, tokens[i%len(tokens)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkCacheCoalesced measures a burst of 16 concurrent first requests
// with one token against a verifier that takes 100µs.
func BenchmarkCacheCoalesced(b *testing.B) {
	b.ReportAllocs()
	v := &fakeVerifier{verdict: func(string) (*Info, error) {
		time.Sleep(100 * time.Microsecond)
		return &Info{Subject: "1057"}, nil
	}}
	c := NewCache(v, CacheConfig{})
	ctx := context.Background()
	i := 0
	for b.Loop() {
		token := testToken + strconv.Itoa(i)
		i++
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				if _, err := c.Verify(ctx, token); err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
	}
	s := c.Stats()
	b.ReportMetric(float64(s.Calls)/float64(i), "calls/op")
	b.ReportMetric(float64(s.Coalesced)/float64(i), "coalesced/op")
}

// A cached verdict carries the token's record id, so that a request
// answered from the cache does not hash the token again; the verifier's
// own Info is left as it was.
func TestCacheTagsVerdictWithTokenID(t *testing.T) {
	shared := &Info{Subject: "1057", Scopes: []string{"s"}}
	v := &fakeVerifier{verdict: func(string) (*Info, error) { return shared, nil }}
	c := NewCache(v, CacheConfig{})
	for range 2 {
		info, err := c.Verify(context.Background(), "ya29.tagged")
		if err != nil {
			t.Fatal(err)
		}
		if info.TokenID != TokenID("ya29.tagged") || info.Subject != "1057" {
			t.Errorf("TokenID %q, subject %q; want %q, 1057", info.TokenID, info.Subject, TokenID("ya29.tagged"))
		}
	}
	if shared.TokenID != "" || v.calls.Load() != 1 {
		t.Errorf("verifier's Info TokenID %q, calls %d; want untouched and 1 call", shared.TokenID, v.calls.Load())
	}
}
