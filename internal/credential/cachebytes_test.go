package credential

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// An answer shape fills a tokeninfo answer with claims made to weigh as
// much heap as their JSON allows: what an adversarial (or careless)
// verifier can answer.
type answerShape struct {
	name string
	item string // one repeated element, comma-separated
	open string // what comes before the items, after the fixed fields
	shut string
}

var answerShapes = []answerShape{
	{name: "many small keys", item: `"k%06d":0`},
	{name: "many keys holding empty objects", item: `"k%06d":{}`},
	{name: "an array of zeros", open: `"a":[`, item: `0`, shut: `]`},
	{name: "an array of empty objects", open: `"a":[`, item: `{}`, shut: `]`},
	{name: "an array of one-key objects", open: `"a":[`, item: `{"a":0}`, shut: `]`},
	{name: "an array of nine-key objects", open: `"a":[`, item: `{"a":0,"b":0,"c":0,"d":0,"e":0,"f":0,"g":0,"h":0,"i":0}`, shut: `]`},
	{name: "an array of empty arrays", open: `"a":[`, item: `[]`, shut: `]`},
	{name: "an array of short strings", open: `"a":[`, item: `"ab"`, shut: `]`},
	{name: "an array of true", open: `"a":[`, item: `true`, shut: `]`},
	{name: "one long string", open: `"a":"`, item: `xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx`, shut: `"`},
}

// body is a valid tokeninfo answer of at most size bytes in this shape.
func (s answerShape) body(size int) string {
	var b strings.Builder
	b.WriteString(`{"azp":"1170","aud":"1170","sub":"1057","scope":"https://www.googleapis.com/auth/cloud-platform",` +
		`"expires_in":"3599","email":"svc@project.iam.gserviceaccount.com","email_verified":"true",`)
	b.WriteString(s.open)
	for i := 0; ; i++ {
		item := s.item
		if strings.Contains(item, "%") {
			item = fmt.Sprintf(item, i)
		}
		sep := ","
		if i == 0 || s.shut == `"` {
			sep = ""
		}
		if b.Len()+len(sep)+len(item)+len(s.shut)+1 > size {
			break
		}
		b.WriteString(sep + item)
	}
	b.WriteString(s.shut + "}")
	return b.String()
}

// tokenInfoServing returns the real tokeninfo verifier asking a loopback
// server that answers body to every token.
func tokenInfoServing(t testing.TB, body string) *TokenInfo {
	srv := serveTB(t, &answer{status: http.StatusOK, body: body})
	return &TokenInfo{URL: srv.URL, Client: srv.Client()}
}

// heapInUse is the live heap after a collection.
func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// fill verifies n distinct tokens through c and returns the heap they left.
func fill(t testing.TB, c *Cache, prefix string, n int) int64 {
	t.Helper()
	before := heapInUse()
	for i := range n {
		if _, err := c.Verify(context.Background(), prefix+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	return heapInUse() - before
}

func TestCacheAccountsAtLeastTheHeapItsEntriesHold(t *testing.T) {
	const tokens = 300
	for _, s := range answerShapes {
		t.Run(s.name, func(t *testing.T) {
			body := s.body(512)
			c := NewCache(tokenInfoServing(t, body), CacheConfig{Size: tokens + 1, MaxBytes: 1 << 30})
			// One token first, so that the client's connection and
			// buffers are not counted.
			fill(t, c, "ya29.warm-", 1)
			base := c.Stats().Bytes
			held := fill(t, c, "ya29.a0-", tokens)
			accounted := c.Stats().Bytes - base
			if c.Len() != tokens+1 {
				t.Fatalf("cache holds %d tokens, want %d", c.Len(), tokens+1)
			}
			t.Logf("%d-byte answer: heap %d, accounted %d bytes per token", len(body), held/tokens, accounted/tokens)
			if held > accounted {
				t.Errorf("the entries hold %d bytes of heap, more than the %d accounted", held, accounted)
			}
			if accounted > 4*held {
				t.Errorf("the entries hold %d bytes of heap, a quarter of the %d accounted: the budget would be wasted", held, accounted)
			}
		})
	}
}

func TestCacheDoesNotRememberAnAnswerHeavierThanMaxEntryBytes(t *testing.T) {
	for _, s := range answerShapes {
		t.Run(s.name, func(t *testing.T) {
			body := s.body(maxAnswer)
			v := tokenInfoServing(t, body)
			c := NewCache(v, CacheConfig{})
			info, err := c.Verify(context.Background(), "ya29.heavy")
			if err != nil {
				t.Fatal(err)
			}
			if info.Email != "svc@project.iam.gserviceaccount.com" || len(info.Claims) == 0 || info.TokenID == "" {
				t.Errorf("the token's Info = %+v (%d claims), want it verified with its claims", info.Email, len(info.Claims))
			}
			w := entryBytes(entry{info: info})
			if w <= MaxEntryBytes {
				// Not every shape is heavy at 64 KiB of JSON: a long string
				// weighs what it says.
				t.Skipf("a %d-byte answer of this shape weighs %d, within MaxEntryBytes", len(body), w)
			}
			if _, err := c.Verify(context.Background(), "ya29.heavy"); err != nil {
				t.Fatal(err)
			}
			if s := c.Stats(); c.Len() != 0 || s.Bytes != 0 || s.Calls != 2 {
				t.Errorf("after two requests with a %d-byte answer weighing %d: %d tokens held, %d bytes, %d calls; want none held and a call each",
					len(body), w, c.Len(), s.Bytes, s.Calls)
			}
		})
	}
}

func TestCacheStaysWithinItsByteBudgetWhateverTheVerifierAnswers(t *testing.T) {
	const budget = 2 << 20
	// Answers as heavy as can be remembered, and heavier, for many tokens.
	heavy := answerShapes[4].body(maxAnswer) // an array of one-key objects
	light := answerShapes[4].body(768)
	v := &fakeVerifier{}
	tokenInfo := tokenInfoServing(t, light)
	heavyInfo := tokenInfoServing(t, heavy)
	v.verdict = func(token string) (*Info, error) {
		if strings.HasSuffix(token, "3") { // one token in ten
			return heavyInfo.Verify(context.Background(), token)
		}
		return tokenInfo.Verify(context.Background(), token)
	}
	c := NewCache(v, CacheConfig{Size: 100_000, MaxBytes: budget})
	fill(t, c, "ya29.warm-", 1)
	if w := c.Stats().Bytes; w < MaxEntryBytes/2 || w > MaxEntryBytes {
		t.Fatalf("a light answer weighs %d, want it heavy but rememberable", w)
	}
	held := fill(t, c, "ya29.flood-", 2000)
	s := c.Stats()
	t.Logf("2000 tokens: %d held, %d bytes accounted, heap grew %d bytes", c.Len(), s.Bytes, held)
	if s.Bytes > budget || s.Bytes < budget/2 {
		t.Errorf("%d bytes accounted, want the budget %d filled but not exceeded", s.Bytes, budget)
	}
	// The slack is for what the test's own server and client keep.
	if held > budget+256<<10 {
		t.Errorf("the heap grew %d bytes, over the %d-byte budget", held, budget)
	}
	if c.Len() == 0 || c.Len() >= 2000 {
		t.Errorf("cache holds %d tokens, want the budget to have evicted some", c.Len())
	}
	// The most recent token is still held; the first have been forgotten.
	calls := s.Calls
	if _, err := c.Verify(context.Background(), "ya29.flood-1999"); err != nil || c.Stats().Calls != calls {
		t.Errorf("the most recent token was not answered from the cache (err %v)", err)
	}
	if _, err := c.Verify(context.Background(), "ya29.flood-1"); err != nil || c.Stats().Calls != calls+1 {
		t.Errorf("an early token was answered from the cache (err %v), want it forgotten", err)
	}
}

func TestCacheAccountingReturnsToZeroAsEntriesLeave(t *testing.T) {
	now := time.Now()
	down := false
	v := &fakeVerifier{verdict: func(token string) (*Info, error) {
		switch {
		case down:
			return nil, fmt.Errorf("verify token: %w: status 503", ErrUnavailable)
		case token == rejectedToken:
			return nil, &InvalidError{Reason: ReasonInvalid, Detail: "tokeninfo answered 400"}
		}
		return &Info{Subject: token, Scopes: []string{"s"}, Expiry: now.Add(time.Hour), Claims: map[string]any{"sub": token}}, nil
	}}
	clock := now
	c := NewCache(v, CacheConfig{Size: 3, Now: func() time.Time { return clock }})
	tokens := []string{"a", "b", "c", "d", rejectedToken, "a"}
	for _, tok := range tokens {
		c.Verify(context.Background(), tok)
	}
	if c.Len() != 3 || c.Stats().Bytes <= 0 {
		t.Fatalf("%d held, %d bytes", c.Len(), c.Stats().Bytes)
	}
	// Every verdict expires, and is forgotten when next asked for, while
	// the verifier is down (so nothing new is remembered).
	clock, down = now.Add(2*time.Hour), true
	for _, tok := range tokens {
		c.Verify(context.Background(), tok)
	}
	if c.Len() != 0 || c.Stats().Bytes != 0 {
		t.Errorf("with no entry left, %d held and %d bytes accounted, want 0", c.Len(), c.Stats().Bytes)
	}
}

// serveTB is serve for benchmarks too.
func serveTB(t testing.TB, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// BenchmarkCacheMemoryBounded fills a cache with the default budget with
// distinct tokens, each answered with claims of the given weight,
// and reports what it holds: tokens, accounted bytes, heap, and the
// process's resident memory.
func BenchmarkCacheMemoryBounded(b *testing.B) {
	for _, bm := range []struct {
		name   string
		tokens int
		body   string
	}{
		{"ordinary answer", 100_000, `{"azp":"1170","aud":"1170","sub":"1057","scope":"https://www.googleapis.com/auth/cloud-platform https://www.googleapis.com/auth/ediscovery",` +
			`"exp":"1796169600","expires_in":"3599","email":"svc@project.iam.gserviceaccount.com","email_verified":"true","access_type":"online"}`},
		{"adversarial 768-byte answer", 100_000, answerShapes[4].body(768)},
		// Each of these costs milliseconds to decode: fewer tokens.
		{"adversarial 64 KiB answer", 10_000, answerShapes[0].body(maxAnswer)},
	} {
		b.Run(bm.name, func(b *testing.B) {
			tokens := bm.tokens
			v := &fakeVerifier{verdict: func(token string) (*Info, error) {
				var a tokenInfoAnswer
				if err := decodeObject([]byte(bm.body), &a); err != nil {
					return nil, err
				}
				claims, err := decodeClaims([]byte(bm.body), token)
				return &Info{Subject: a.Sub, Email: a.Email, Audience: a.Aud, ClientID: a.Azp, Scopes: strings.Fields(a.Scope),
					Expiry: time.Now().Add(time.Hour), Verifier: VerifierTokenInfo, Claims: claims}, err
			}}
			b.ReportAllocs()
			for b.Loop() {
				c := NewCache(v, CacheConfig{Size: tokens})
				held := fill(b, c, "ya29.a0AfB_byC", tokens)
				b.ReportMetric(float64(c.Len()), "tokens_held")
				b.ReportMetric(float64(c.Stats().Bytes)/(1<<20), "accountedMiB")
				b.ReportMetric(float64(held)/(1<<20), "heapMiB")
				b.ReportMetric(rssMiB(), "rssMiB")
				runtime.KeepAlive(c)
			}
		})
	}
}

// rssMiB is the process's resident memory, from /proc (0 elsewhere).
func rssMiB() float64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return float64(kb) / 1024
		}
	}
	return 0
}
