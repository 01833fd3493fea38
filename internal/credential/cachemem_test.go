package credential

import (
	"context"
	"encoding/json"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// BenchmarkCacheMemory fills a cache with 100,000 distinct verified tokens
// (each with an email, two scopes and the claims of the tokeninfo answer
// they came from, as the tokeninfo verifier keeps them for the policy) and
// reports the heap it holds: bytes per token and in all.
func BenchmarkCacheMemory(b *testing.B) {
	const tokens = 100_000
	v := &fakeVerifier{verdict: func(token string) (*Info, error) {
		sub, email := token[len(token)-12:], "svc-"+token[len(token)-6:]+"@project.iam.gserviceaccount.com"
		answer := `{"azp":"1170` + sub + `","aud":"1170` + sub + `","sub":"` + sub + `",` +
			`"scope":"https://www.googleapis.com/auth/cloud-platform https://www.googleapis.com/auth/ediscovery",` +
			`"exp":"1796169600","expires_in":"3599","email":"` + email + `","email_verified":"true","access_type":"online"}`
		var claims map[string]any
		if err := json.Unmarshal([]byte(answer), &claims); err != nil {
			return nil, err
		}
		return &Info{
			Subject: sub, Email: email,
			Scopes: []string{"https://www.googleapis.com/auth/cloud-platform", "https://www.googleapis.com/auth/ediscovery"},
			Expiry: time.Now().Add(time.Hour),
			Claims: claims,
		}, nil
	}}
	b.ReportAllocs()
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		// A budget that holds them all: this measures what a token weighs.
		c := NewCache(v, CacheConfig{Size: tokens, MaxBytes: 1 << 40})
		for i := range tokens {
			if _, err := c.Verify(context.Background(), "ya29.a0AfB_byC"+strconv.Itoa(1_000_000_000+i)); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if c.Len() != tokens {
			b.Fatalf("cache holds %d tokens, want %d", c.Len(), tokens)
		}
		held := float64(after.HeapAlloc) - float64(before.HeapAlloc)
		b.ReportMetric(held/tokens, "heapB/token")
		b.ReportMetric(float64(c.Stats().Bytes)/tokens, "accountedB/token")
		b.ReportMetric(held/(1<<20), "heapMiB")
		runtime.KeepAlive(c)
	}
}
