package limit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lro-cancel/lro_cancel/internal/redistest"
)

// stores runs a test against the local store and against a real Redis.
// newStore returns a fresh client of the same store each time it is
// called, as each gateway of a fleet has its own.
func stores(t *testing.T, test func(t *testing.T, newStore func() Store)) {
	t.Run("local", func(t *testing.T) {
		s := NewLocal()
		test(t, func() Store { return s })
	})
	t.Run("redis", func(t *testing.T) {
		if testing.Short() {
			t.Skip("runs redis-server")
		}
		srv := redistest.Start(t)
		test(t, func() Store { return newRedis(t, srv.Addr, "") })
	})
}

func newRedis(t *testing.T, addr, password string) *Redis {
	t.Helper()
	s, err := NewRedis(RedisConfig{Addr: addr, Password: password, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newLimiter(t *testing.T, s Store, rules ...Rule) *Limiter {
	t.Helper()
	l, err := New(rules, s)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestARuleAdmitsItsCountThenRefusesUntilTheOldestLeavesTheWindow(t *testing.T) {
	stores(t, func(t *testing.T, newStore func() Store) {
		l := newLimiter(t, newStore(), Rule{Name: "per-principal", Count: 3, Window: time.Hour})
		ctx := context.Background()
		for i := range 3 {
			res, err := l.Take(ctx, []string{"alice@example.com"}, false)
			if err != nil || res.Refused != -1 {
				t.Fatalf("cancel %d: %+v, %v; want admitted", i+1, res, err)
			}
		}
		res, err := l.Take(ctx, []string{"alice@example.com"}, false)
		if err != nil || res.Refused != 0 {
			t.Fatalf("4th cancel: %+v, %v; want refused by rule 0", res, err)
		}
		if res.RetryAfter <= 59*time.Minute || res.RetryAfter > time.Hour {
			t.Errorf("retry after %s, want just under the hour the first admission has left", res.RetryAfter)
		}
		// Another principal has a quota of its own.
		if res, err := l.Take(ctx, []string{"bob@example.com"}, false); err != nil || res.Refused != -1 {
			t.Errorf("bob's first cancel: %+v, %v; want admitted", res, err)
		}
		if n, err := l.Count(ctx, 0, "alice@example.com"); err != nil || n != 3 {
			t.Errorf("alice's count %d, %v; want 3 (refusals do not count)", n, err)
		}
	})
}

// The window slides: with a count of 2, cancels at 0 and W/2 fill it; at a
// little past W the first has left and exactly one more is admitted. A
// fixed-bucket counter fails this wherever its buckets fall: a boundary
// between the first two cancels admits a third at W/2, and one after them
// frees both slots at once.
func TestTheWindowSlides(t *testing.T) {
	const window = 2 * time.Second
	check := func(t *testing.T, l *Limiter, wait func(time.Duration)) {
		ctx := context.Background()
		take := func(want int, when string) Result {
			t.Helper()
			res, err := l.Take(ctx, []string{"alice"}, false)
			if err != nil || res.Refused != want {
				t.Fatalf("%s: %+v, %v; want refused %d", when, res, err, want)
			}
			return res
		}
		take(-1, "at 0")
		wait(window / 2)
		take(-1, "at W/2")
		res := take(0, "at W/2, a third")
		if res.RetryAfter > window/2+window/10 || res.RetryAfter < window/2-window/10 {
			t.Errorf("retry after %s at W/2, want about W/2", res.RetryAfter)
		}
		wait(res.RetryAfter + window/20)
		take(-1, "just past W")
		take(0, "just past W, another")
	}
	t.Run("local", func(t *testing.T) {
		s := NewLocal()
		var now time.Duration
		s.now = func() time.Duration { return now }
		check(t, newLimiter(t, s, Rule{Name: "r", Count: 2, Window: window}), func(d time.Duration) { now += d })
	})
	t.Run("redis", func(t *testing.T) {
		if testing.Short() {
			t.Skip("runs redis-server")
		}
		srv := redistest.Start(t)
		check(t, newLimiter(t, newRedis(t, srv.Addr, ""), Rule{Name: "r", Count: 2, Window: window}), time.Sleep)
	})
}

// A thousand concurrent cancels of one principal through four gateways'
// clients admit exactly the count; a second rule over each cancel's own
// key refuses some, and those consume nothing of the first rule's quota.
func TestConcurrentCancelsAcrossClientsAdmitExactlyTheCount(t *testing.T) {
	stores(t, func(t *testing.T, newStore func() Store) {
		rules := []Rule{{Name: "per-principal", Count: 37, Window: time.Hour}, {Name: "per-api", Count: 25, Window: time.Hour}}
		var limiters []*Limiter
		for range 4 {
			limiters = append(limiters, newLimiter(t, newStore(), rules...))
		}
		var admitted, byPrincipal, byAPI atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, 1000)
		for i := range 1000 {
			wg.Go(func() {
				// Half the cancels go to an API whose own quota (25) runs
				// out first.
				api := "vault"
				if i%2 == 0 {
					api = "dataproc"
				}
				res, err := limiters[i%4].Take(context.Background(), []string{"mallory@example.com", api}, false)
				switch {
				case err != nil:
					errs <- err
				case res.Refused == -1:
					admitted.Add(1)
				case res.Refused == 0:
					byPrincipal.Add(1)
				default:
					byAPI.Add(1)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if admitted.Load() != 37 {
			t.Errorf("admitted %d of 1000 concurrent cancels, want exactly 37 (refused %d by principal, %d by api)",
				admitted.Load(), byPrincipal.Load(), byAPI.Load())
		}
		ctx := context.Background()
		n, err := limiters[0].Count(ctx, 0, "mallory@example.com")
		if err != nil || n != 37 {
			t.Errorf("the principal's count is %d, %v; want 37", n, err)
		}
		v, _ := limiters[0].Count(ctx, 1, "vault")
		d, _ := limiters[0].Count(ctx, 1, "dataproc")
		if v+d != 37 || v > 25 || d > 25 {
			t.Errorf("the APIs' counts are %d and %d; want at most 25 each, 37 together", v, d)
		}
	})
}

// Under a dry run every cancel is admitted and counted; the result still
// names the rule that would have refused it.
func TestForceAdmitsAndCountsWhatWouldBeRefused(t *testing.T) {
	stores(t, func(t *testing.T, newStore func() Store) {
		l := newLimiter(t, newStore(), Rule{Name: "a", Count: 5, Window: time.Hour}, Rule{Name: "b", Count: 2, Window: time.Hour})
		ctx := context.Background()
		var would []int
		for range 4 {
			res, err := l.Take(ctx, []string{"k", "k"}, true)
			if err != nil {
				t.Fatal(err)
			}
			would = append(would, res.Refused)
		}
		if want := []int{-1, -1, 1, 1}; !slices.Equal(would, want) {
			t.Errorf("would refuse %v, want %v", would, want)
		}
		if n, _ := l.Count(ctx, 0, "k"); n != 4 {
			t.Errorf("rule a counts %d, want all 4", n)
		}
		// Rule a is now at 4 of 5: one more, then a refusal.
		if res, _ := l.Take(ctx, []string{"k", ""}, false); res.Refused != -1 {
			t.Errorf("5th under rule a alone: %+v, want admitted", res)
		}
		if res, _ := l.Take(ctx, []string{"k", ""}, false); res.Refused != 0 {
			t.Errorf("6th under rule a alone: %+v, want refused by a", res)
		}
	})
}

func TestRedisHoldsOnlyHashedKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("runs redis-server")
	}
	srv := redistest.Start(t)
	l := newLimiter(t, newRedis(t, srv.Addr, ""), Rule{Name: "per-principal", Count: 3, Window: time.Hour})
	if _, err := l.Take(context.Background(), []string{"alice@example.com"}, false); err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer c.Close()
	keys, err := c.Keys(context.Background(), "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	hashed := regexp.MustCompile(`^\{lro_cancel\}:[0-9a-f]{64}$`)
	var sawHashed bool
	for _, k := range keys {
		if strings.Contains(k, "alice") || strings.Contains(k, "per-principal") {
			t.Errorf("key %q holds the principal or rule in clear", k)
		}
		if hashed.MatchString(k) {
			sawHashed = true
			members, _ := c.ZRange(context.Background(), k, 0, -1).Result()
			for _, m := range members {
				if strings.Contains(m, "alice") {
					t.Errorf("member %q holds the principal", m)
				}
			}
		} else if k != epochKey {
			t.Errorf("unexpected key %q", k)
		}
	}
	if !sawHashed {
		t.Errorf("no hashed key among %q", keys)
	}
}

// Store outages are errors, at once: a server that is gone, one that
// accepts and never answers (slow past the timeout), one that refuses the
// password, and one that restarted without its data.
func TestRedisOutagesAreErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("runs redis-server")
	}
	rule := Rule{Name: "r", Count: 3, Window: time.Second}
	take := func(s Store) error {
		_, err := newLimiter(t, s, rule).Take(context.Background(), []string{"k"}, false)
		return err
	}
	t.Run("gone", func(t *testing.T) {
		l, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := l.Addr().String()
		l.Close()
		if err := take(newRedis(t, addr, "")); err == nil {
			t.Error("a store nothing listens on admitted a cancel")
		}
	})
	t.Run("silent", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				defer c.Close()
			}
		}()
		s, err := NewRedis(RedisConfig{Addr: l.Addr().String(), Timeout: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := take(s); err == nil {
			t.Error("a silent store admitted a cancel")
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		srv := redistest.Start(t, "--requirepass", "right")
		if err := take(newRedis(t, srv.Addr, "wrong")); err == nil {
			t.Error("a store refusing the password admitted a cancel")
		}
		if err := take(newRedis(t, srv.Addr, "right")); err != nil {
			t.Errorf("with the right password: %v", err)
		}
	})
	t.Run("restarted empty", func(t *testing.T) {
		srv := redistest.Start(t)
		s := newRedis(t, srv.Addr, "")
		if err := take(s); err != nil {
			t.Fatal(err)
		}
		srv.Restart()
		var err error
		for range 3 { // the first may meet the broken pooled connection
			if err = take(s); errors.Is(err, ErrStoreLost) {
				break
			}
		}
		if !errors.Is(err, ErrStoreLost) {
			t.Fatalf("after a restart that lost the counts: %v, want ErrStoreLost", err)
		}
		// Exact again once the window has passed since the loss; a fresh
		// gateway, which never knew the old epoch, learns it from the store.
		if err := take(newRedis(t, srv.Addr, "")); !errors.Is(err, ErrStoreLost) {
			t.Errorf("a new client within the window: %v, want ErrStoreLost", err)
		}
		time.Sleep(rule.Window + 100*time.Millisecond)
		if err := take(s); err != nil {
			t.Errorf("a window after the loss: %v, want admitted", err)
		}
	})
}

// A stream of distinct keys does not grow the local store past what its
// windows hold.
func TestLocalForgetsKeysWhoseWindowHasPassed(t *testing.T) {
	s := NewLocal()
	var now time.Duration
	s.now = func() time.Duration { return now }
	l := newLimiter(t, s, Rule{Name: "r", Count: 1, Window: time.Second})
	for i := range 100_000 {
		now += time.Millisecond
		if _, err := l.Take(context.Background(), []string{string(rune(i))}, false); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(s.keys); n > 2*sweepFloor+1000 {
		t.Errorf("the store holds %d keys; a window holds 1000", n)
	}
}

func TestNewRefusesBadRules(t *testing.T) {
	for _, rules := range [][]Rule{
		{{Name: "", Count: 1, Window: time.Second}},
		{{Name: "a", Count: 0, Window: time.Second}},
		{{Name: "a", Count: 1, Window: 0}},
		{{Name: "a", Count: 1, Window: time.Second}, {Name: "a", Count: 2, Window: time.Second}},
	} {
		if _, err := New(rules, NewLocal()); err == nil {
			t.Errorf("New(%+v) accepted", rules)
		}
	}
}

// A local limit's check and count, the key hashing included: admitted
// (the window so short that a busy key's oldest has always left it) and
// refused (the key's count used up).
func BenchmarkLocalTake(b *testing.B) {
	for _, bc := range []struct {
		name   string
		window time.Duration
	}{{"admitted", time.Nanosecond}, {"refused", time.Hour}} {
		b.Run(bc.name, func(b *testing.B) {
			l, err := New([]Rule{{Name: "per-principal", Count: 20, Window: bc.window}}, NewLocal())
			if err != nil {
				b.Fatal(err)
			}
			keys := []string{"alice@example.com"}
			ctx := context.Background()
			for range 20 {
				_, _ = l.Take(ctx, keys, false)
			}
			b.ReportAllocs()
			for b.Loop() {
				_, _ = l.Take(ctx, keys, false)
			}
		})
	}
}

// One cancel's round trip to a loopback Redis: the script, its keys and
// arguments, the client's reply parsing.
func BenchmarkRedisTake(b *testing.B) {
	l := benchLimiter(b)
	keys := []string{"alice@example.com"}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.Take(ctx, keys, false); err != nil {
			b.Fatal(err)
		}
	}
}

// Cancels in flight at once, as on a busy gateway: 32 Takes at a time
// share the sender's round trips.
func BenchmarkRedisTakeParallel(b *testing.B) {
	l := benchLimiter(b)
	ctx := context.Background()
	b.SetParallelism(16)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		keys := []string{"alice@example.com"}
		for pb.Next() {
			if _, err := l.Take(ctx, keys, false); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// Takes sent together each run, and each answers its own caller; a Take
// whose caller stopped waiting before it was sent admits nothing.
func TestRedisTakesInFlightTogether(t *testing.T) {
	if testing.Short() {
		t.Skip("runs redis-server")
	}
	srv := redistest.Start(t)
	s := newRedis(t, srv.Addr, "")
	l := newLimiter(t, s, Rule{Name: "per-principal", Count: 5, Window: time.Hour})
	ctx := context.Background()

	gone, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := l.Take(gone, []string{"carol@example.com"}, false); !errors.Is(err, context.Canceled) {
		t.Errorf("a Take given up before it was sent: %v, want context.Canceled", err)
	}
	if n, err := s.Count(ctx, HashKey("per-principal", "carol@example.com"), time.Hour); err != nil || n != 0 {
		t.Errorf("after a Take given up before it was sent, the store counts %d (%v), want 0", n, err)
	}

	// 40 principals, 8 cancels each at once: each admits exactly 5.
	var wg sync.WaitGroup
	var mu sync.Mutex
	admitted := map[string]int{}
	for p := range 40 {
		who := fmt.Sprintf("p%d@example.com", p)
		for range 8 {
			wg.Go(func() {
				res, err := l.Take(ctx, []string{who}, false)
				if err != nil {
					t.Error(err)
					return
				}
				if res.Refused < 0 {
					mu.Lock()
					admitted[who]++
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	for p := range 40 {
		who := fmt.Sprintf("p%d@example.com", p)
		if admitted[who] != 5 {
			t.Errorf("%s: %d admitted, want 5", who, admitted[who])
		}
		if n, err := s.Count(ctx, HashKey("per-principal", who), time.Hour); err != nil || n != 5 {
			t.Errorf("%s: the store counts %d (%v), want 5", who, n, err)
		}
	}
}

// benchLimiter is a limiter on a Redis of its own whose rule admits every
// Take: its window is a nanosecond.
func benchLimiter(b *testing.B) *Limiter {
	srv := redistest.Start(b)
	s, err := NewRedis(RedisConfig{Addr: srv.Addr, Timeout: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	l, err := New([]Rule{{Name: "per-principal", Count: 20, Window: time.Nanosecond}}, s)
	if err != nil {
		b.Fatal(err)
	}
	return l
}
