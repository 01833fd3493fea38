package credential

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Tokens of the flood tests: a gatedVerifier holds the calls for flood
// tokens until its gate opens, and rejects rejectedToken.
const (
	floodPrefix   = "ya29.flood-"
	cachedToken   = "ya29.cached"
	rejectedToken = "ya29.rejected"
)

// gatedVerifier is a verifier as slow as a test wants: a call for a flood
// token answers only once the gate is opened. It records how many calls
// ran at once.
type gatedVerifier struct {
	gate                 chan struct{}
	once                 sync.Once
	calls, running, peak atomic.Int64
}

// newGatedVerifier returns a shut gatedVerifier, opened when the test ends
// at the latest, so that no call outlives a failed test.
func newGatedVerifier(t *testing.T) *gatedVerifier {
	g := &gatedVerifier{gate: make(chan struct{})}
	t.Cleanup(g.open)
	return g
}

func (g *gatedVerifier) open() { g.once.Do(func() { close(g.gate) }) }

func (g *gatedVerifier) Verify(_ context.Context, token string) (*Info, error) {
	g.calls.Add(1)
	n := g.running.Add(1)
	defer g.running.Add(-1)
	for p := g.peak.Load(); n > p && !g.peak.CompareAndSwap(p, n); p = g.peak.Load() {
	}
	if strings.HasPrefix(token, floodPrefix) {
		<-g.gate
	}
	if token == rejectedToken {
		return nil, &InvalidError{Reason: ReasonInvalid, Detail: "tokeninfo answered 400"}
	}
	return &Info{Subject: token}, nil
}

// lookups counts what Observe was told.
type lookups [LookupShed + 1]atomic.Int64

func (l *lookups) observe(k Lookup) { l[k].Add(1) }

// verdict is one Verify's outcome and how long it took.
type verdict struct {
	token string
	info  *Info
	err   error
	took  time.Duration
}

func TestCacheShedsTokensBeyondMaxInFlight(t *testing.T) {
	tests := []struct {
		name        string
		maxInFlight int
		tokens      int
		wantCalls   int // calls the flood gets while the verifier is held
	}{
		{name: "a flood of 50 new tokens gets 4 calls and 46 refusals", maxInFlight: 4, tokens: 50, wantCalls: 4},
		{name: "a flood within the bound is not shed", maxInFlight: 64, tokens: 50, wantCalls: 50},
		{name: "zero MaxInFlight bounds the calls at 64", maxInFlight: 0, tokens: 100, wantCalls: 64},
		{name: "negative MaxInFlight bounds the calls at 64", maxInFlight: -1, tokens: 100, wantCalls: 64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newGatedVerifier(t)
			var seen lookups
			c := NewCache(v, CacheConfig{MaxInFlight: tt.maxInFlight, Observe: seen.observe})
			ctx := context.Background()
			cached, err := c.Verify(ctx, cachedToken)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Verify(ctx, rejectedToken); err == nil {
				t.Fatal("rejected token verified")
			}

			start := time.Now()
			results := make(chan verdict, tt.tokens)
			var wg sync.WaitGroup
			for i := range tt.tokens {
				token := fmt.Sprintf("%s%03d", floodPrefix, i)
				wg.Go(func() {
					info, err := c.Verify(ctx, token)
					results <- verdict{token: token, info: info, err: err, took: time.Since(start)}
				})
			}
			wantShed := tt.tokens - tt.wantCalls
			// The verifier is held: whatever returns now was refused
			// without waiting for it.
			var shed []verdict
			waitFor(t, "the shed lookups to return while the verifier is held", func() bool {
				for {
					select {
					case r := <-results:
						shed = append(shed, r)
						continue
					default:
					}
					return len(shed) >= wantShed && v.running.Load() == int64(tt.wantCalls)
				}
			})
			var slowest time.Duration
			for _, r := range shed {
				if r.info != nil || !errors.Is(r.err, ErrUnavailable) {
					t.Errorf("shed lookup of %s = %v, %v; want ErrUnavailable", r.token, r.info, r.err)
				}
				assertNoSecret(t, r.err, r.token)
				slowest = max(slowest, r.took)
			}
			t.Logf("%d lookups shed, the slowest after %v, with %d verifier calls held", len(shed), slowest, v.running.Load())

			// Remembered tokens do not wait for the bound.
			for range 100 {
				if info, err := c.Verify(ctx, cachedToken); info != cached || err != nil {
					t.Fatalf("cached token during the flood = %v, %v; want the remembered verdict", info, err)
				}
				var invalid *InvalidError
				if _, err := c.Verify(ctx, rejectedToken); !errors.As(err, &invalid) {
					t.Fatalf("rejected token during the flood = %v; want the remembered rejection", err)
				}
			}
			if got, want := c.Len(), 2; got != want {
				t.Errorf("cache holds %d verdicts during the flood, want %d (nothing shed is cached)", got, want)
			}

			v.open()
			wg.Wait()
			close(results)
			for r := range results {
				if r.err != nil {
					t.Errorf("lookup of %s that got a call = %v, want the verdict", r.token, r.err)
				}
			}
			if got := v.peak.Load(); got != int64(tt.wantCalls) {
				t.Errorf("verifier ran %d calls at once, want %d", got, tt.wantCalls)
			}
			for _, r := range shed {
				if info, err := c.Verify(ctx, r.token); err != nil || info.Subject != r.token {
					t.Errorf("retry of shed %s = %v, %v; want the verdict", r.token, info, err)
				}
			}
			s := c.Stats()
			if want := uint64(2 + tt.tokens); s.Calls != want || uint64(v.calls.Load()) != want {
				t.Errorf("Stats.Calls = %d, verifier calls = %d; want %d (each shed token retried once)", s.Calls, v.calls.Load(), want)
			}
			if s.Shed != uint64(wantShed) {
				t.Errorf("Stats.Shed = %d, want %d", s.Shed, wantShed)
			}
			want := [...]int64{LookupHit: 200, LookupMiss: int64(2 + tt.tokens), LookupShed: int64(wantShed)}
			for l, w := range want {
				if got := seen[l].Load(); got != w {
					t.Errorf("Observe told %s %d times, want %d", Lookup(l), got, w)
				}
			}
		})
	}
}

func TestCacheCoalescedFirstRequestsShareOneSlot(t *testing.T) {
	v := newGatedVerifier(t)
	var seen lookups
	c := NewCache(v, CacheConfig{MaxInFlight: 1, Observe: seen.observe})
	const n = 20
	token := floodPrefix + "shared"
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			_, err := c.Verify(context.Background(), token)
			errs <- err
		})
	}
	waitFor(t, "all requests to miss", func() bool { return c.Stats().Misses == n && v.running.Load() == 1 })
	// The one slot is the shared call's: another new token is refused.
	if _, err := c.Verify(context.Background(), floodPrefix+"other"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("second token while the slot is held = %v, want ErrUnavailable", err)
	}
	v.open()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("coalesced request = %v, want the shared verdict", err)
		}
	}
	if s := c.Stats(); s.Calls != 1 || s.Coalesced != n-1 || s.Shed != 1 {
		t.Errorf("Stats = %+v, want 1 call, %d coalesced, 1 shed", s, n-1)
	}
	if got := seen[LookupShed].Load(); got != 1 {
		t.Errorf("Observe told shed %d times, want 1", got)
	}
}

func TestCacheGivesTheSlotBackWhenTheCallEnds(t *testing.T) {
	tests := []struct {
		name    string
		verdict func(token string) (*Info, error)
	}{
		{name: "a verdict gives the slot back", verdict: func(string) (*Info, error) { return &Info{Subject: "1057"}, nil }},
		{name: "a rejection gives the slot back", verdict: func(string) (*Info, error) {
			return nil, &InvalidError{Reason: ReasonInvalid, Detail: "tokeninfo answered 400"}
		}},
		{name: "an unavailable verifier gives the slot back", verdict: func(string) (*Info, error) {
			return nil, fmt.Errorf("verify token: %w: status 503", ErrUnavailable)
		}},
		{name: "a panicking verifier gives the slot back", verdict: func(token string) (*Info, error) { panic("cannot parse " + token) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewCache(&fakeVerifier{verdict: tt.verdict}, CacheConfig{MaxInFlight: 1})
			for i := range 3 {
				_, _ = c.Verify(context.Background(), fmt.Sprint(testToken, i))
			}
			if s := c.Stats(); s.Calls != 3 || s.Shed != 0 {
				t.Errorf("Stats = %+v, want 3 calls and none shed", s)
			}
		})
	}
}

func TestLookupNamesTheMetricLabel(t *testing.T) {
	tests := []struct {
		lookup Lookup
		want   string
	}{
		{LookupHit, "hit"},
		{LookupMiss, "miss"},
		{LookupCoalesced, "coalesced"},
		{LookupShed, "shed"},
		{LookupShed + 1, "Lookup(4)"},
	}
	for _, tt := range tests {
		if got := tt.lookup.String(); got != tt.want {
			t.Errorf("Lookup(%d).String() = %q, want %q", uint8(tt.lookup), got, tt.want)
		}
	}
}

// BenchmarkCacheShed measures refusing a new token while MaxInFlight calls
// are held: what each request of a flood costs the gateway.
func BenchmarkCacheShed(b *testing.B) {
	b.ReportAllocs()
	v := &gatedVerifier{gate: make(chan struct{})}
	defer v.open()
	c := NewCache(v, CacheConfig{MaxInFlight: 1})
	go func() { _, _ = c.Verify(context.Background(), floodPrefix+"held") }()
	for v.running.Load() != 1 {
		time.Sleep(time.Millisecond)
	}
	tokens := make([]string, 1<<10)
	for i := range tokens {
		tokens[i] = fmt.Sprint(floodPrefix, i)
	}
	ctx := context.Background()
	i := 0
	for b.Loop() {
		if _, err := c.Verify(ctx, tokens[i%len(tokens)]); !errors.Is(err, ErrUnavailable) {
			b.Fatalf("Verify = %v, want ErrUnavailable", err)
		}
		i++
	}
}
