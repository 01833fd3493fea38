package credential

import (
	"context"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// BenchmarkCacheMemory fills a cache with 100,000 distinct verified tokens
// (each with an email and two scopes, as tokeninfo answers) and reports the
// heap it holds: bytes per token and in all.
func BenchmarkCacheMemory(b *testing.B) {
	const tokens = 100_000
	v := &fakeVerifier{verdict: func(token string) (*Info, error) {
		return &Info{
			Subject: token[len(token)-12:], Email: "svc-" + token[len(token)-6:] + "@project.iam.gserviceaccount.com",
			Scopes: []string{"https://www.googleapis.com/auth/cloud-platform", "https://www.googleapis.com/auth/ediscovery"},
			Expiry: time.Now().Add(time.Hour),
		}, nil
	}}
	b.ReportAllocs()
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		c := NewCache(v, CacheConfig{Size: tokens})
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
		b.ReportMetric(held/(1<<20), "heapMiB")
		runtime.KeepAlive(c)
	}
}
