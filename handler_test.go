package lrocancel

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/lro-cancel/lro_cancel/internal/audit"
)

// countingNext is a no-op next handler that counts its calls.
type countingNext struct{ calls atomic.Int64 }

func (n *countingNext) ServeHTTP(w http.ResponseWriter, _ *http.Request) error {
	n.calls.Add(1)
	w.WriteHeader(http.StatusOK)
	return nil
}

// nopWriter is a ResponseWriter that costs nothing, so that a
// benchmark's allocations are the module's: httptest's recorder copies the
// header map on WriteHeader.
type nopWriter struct {
	h    http.Header
	code int
}

func (w *nopWriter) Header() http.Header { return w.h }
func (w *nopWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}

func (w *nopWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return len(b), nil
}

// reset readies the writer for the next request.
func (w *nopWriter) reset() {
	clear(w.h)
	w.code = 0
}

// fakeTokenInfo answers every token with the given scope.
func fakeTokenInfo(tb testing.TB, scope string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"sub":"1","email":"bench@example.com","scope":%q,"expires_in":"3599"}`, scope)
	}))
	tb.Cleanup(srv.Close)
	return srv
}

func provision(tb testing.TB, h *Handler) *Handler {
	tb.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	tb.Cleanup(cancel)
	if err := h.Provision(ctx); err != nil {
		tb.Fatal(err)
	}
	return h
}

// request builds a request as Caddy hands it to handlers: with a replacer
// and the request vars in its context.
func request(method, host, target, body string) *http.Request {
	var rb io.Reader = http.NoBody
	if body != "" {
		rb = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, target, rb)
	r.Host = host
	return caddyhttp.PrepareRequest(r, caddy.NewReplacer(), httptest.NewRecorder(), nil)
}

// discardAudit keeps the audit record's encoding cost in a benchmark but
// writes it nowhere.
func discardAudit(h *Handler) {
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	h.core.Sink = audit.Logger{L: zap.New(zapcore.NewCore(enc, zapcore.AddSync(io.Discard), zap.InfoLevel))}
}

// A request that is not a cancel costs a match and nothing more: no
// allocation, and it reaches the next handler untouched.
func TestNotCancelPassesThroughWithoutAllocating(t *testing.T) {
	h := provision(t, &Handler{})
	m := &Matcher{}
	if err := m.Provision(caddy.Context{}); err != nil {
		t.Fatal(err)
	}
	next := &countingNext{}
	w := httptest.NewRecorder()
	for _, tc := range []struct{ method, host, path string }{
		{"GET", "storage.googleapis.com", "/storage/v1/b/bucket/o/object"},
		{"POST", "vault.googleapis.com", "/v1/matters/m1/holds"},
		{"GET", "vault.googleapis.com", "/v1/operations/x:cancel"},
		{"POST", "batch.googleapis.com", "/v1/projects/p/locations/l/jobs/j:cancel"},
	} {
		r := request(tc.method, tc.host, tc.path, "")
		before := next.calls.Load()
		allocs := testing.AllocsPerRun(100, func() {
			if err := h.ServeHTTP(w, r, next); err != nil {
				t.Fatal(err)
			}
			if ok, _ := m.MatchWithError(r); ok {
				t.Fatalf("%s %s%s matched", tc.method, tc.host, tc.path)
			}
		})
		if allocs != 0 {
			t.Errorf("%s %s%s: %v allocations, want 0", tc.method, tc.host, tc.path, allocs)
		}
		if next.calls.Load() == before {
			t.Errorf("%s %s%s did not reach the next handler", tc.method, tc.host, tc.path)
		}
		if w.Header().Get("Audit-Id") != "" {
			t.Errorf("%s %s%s got an Audit-Id", tc.method, tc.host, tc.path)
		}
	}
}

func BenchmarkServeHTTPNotCancel(b *testing.B) {
	h := provision(b, &Handler{})
	next := &countingNext{}
	w := httptest.NewRecorder()
	r := request("GET", "storage.googleapis.com", "/storage/v1/b/bucket/o/object?alt=media", "")
	b.ReportAllocs()
	for b.Loop() {
		_ = h.ServeHTTP(w, r, next)
	}
}

func BenchmarkMatcher(b *testing.B) {
	m := &Matcher{}
	_ = m.Provision(caddy.Context{})
	for _, bc := range []struct{ name, method, host, path string }{
		{"not_cancel", "GET", "storage.googleapis.com", "/storage/v1/b/bucket/o/object"},
		{"cancel_vault", "POST", "vault.googleapis.com", "/v1/operations/export-1:cancel"},
		{"cancel_aiplatform_regional", "POST", "asia-east1-aiplatform.googleapis.com",
			"/v1/projects/p/locations/asia-east1/trainingPipelines/t/operations/o:cancel"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := request(bc.method, bc.host, bc.path, "")
			b.ReportAllocs()
			for b.Loop() {
				_, _ = m.MatchWithError(r)
			}
		})
	}
}

// The module's own work for a governed cancel with a cached token and
// body {}: recognition, credential, cache hit, scope, body, record.
func BenchmarkServeHTTPCancelCachedToken(b *testing.B) {
	ti := fakeTokenInfo(b, "https://www.googleapis.com/auth/ediscovery")
	h := provision(b, &Handler{TokenInfo: &TokenInfoConfig{URL: ti.URL}})
	discardAudit(h)
	next := &countingNext{}
	newCancel := func() (*http.Request, *httptest.ResponseRecorder) {
		r := request("POST", "vault.googleapis.com", "/v1/operations/export-1:cancel", "{}")
		r.Header.Set("Authorization", "Bearer ya29.bench-token")
		return r, httptest.NewRecorder()
	}
	r, rw := newCancel()
	if _ = h.ServeHTTP(rw, r, next); rw.Code != http.StatusOK {
		b.Fatalf("warm-up: status %d", rw.Code)
	}
	w := &nopWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		// Building the request is Caddy's work and the test's, not the module's.
		b.StopTimer()
		r, _ := newCancel()
		w.reset()
		b.StartTimer()
		_ = h.ServeHTTP(w, r, next)
	}
	if w.code != http.StatusOK {
		b.Fatalf("status %d", w.code)
	}
}

// Throughput of governed cancels (cached token, body {}) with 32 requests
// in flight, with the audit journal off and on: the journal's cost is one
// shared fsync per batch of concurrent records.
func BenchmarkServeHTTPCancelJournal(b *testing.B) {
	ti := fakeTokenInfo(b, "https://www.googleapis.com/auth/ediscovery")
	for _, bc := range []struct {
		name    string
		journal bool
	}{{"journal_off", false}, {"journal_on", true}} {
		b.Run(bc.name, func(b *testing.B) {
			h := &Handler{TokenInfo: &TokenInfoConfig{URL: ti.URL}}
			if bc.journal {
				h.Audit = &AuditConfig{Journal: b.TempDir() + "/journal"}
			}
			provision(b, h)
			b.Cleanup(func() { _ = h.Cleanup() })
			discardAudit(h)
			next := &countingNext{}
			serve := func() int {
				r := request("POST", "vault.googleapis.com", "/v1/operations/export-1:cancel", "{}")
				r.Header.Set("Authorization", "Bearer ya29.bench-token")
				w := httptest.NewRecorder()
				_ = h.ServeHTTP(w, r, next)
				return w.Code
			}
			if code := serve(); code != http.StatusOK {
				b.Fatalf("warm-up: status %d", code)
			}
			b.SetParallelism(16) // 32 goroutines on 2 cores
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if code := serve(); code != http.StatusOK {
						b.Errorf("status %d", code)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		})
	}
}

// A governed cancel with a cached token costs at most 10 allocations on
// REST (14 on gRPC), Caddy's own request UUID (7 of them, made when the
// audit id is first asked for) included. What building the request costs
// is measured apart and taken off.
func TestCachedCancelAllocations(t *testing.T) {
	ti := fakeTokenInfo(t, "https://www.googleapis.com/auth/ediscovery")
	h := provision(t, &Handler{TokenInfo: &TokenInfoConfig{URL: ti.URL}})
	discardAudit(h)
	next := &countingNext{}
	frame := string(grpcFrame(cancelMessage(t, "operations/export-1")))
	for _, tc := range []struct {
		name      string
		build     func() *http.Request
		maxAllocs float64
	}{
		{"rest", func() *http.Request {
			r := request("POST", "vault.googleapis.com", "/v1/operations/export-1:cancel", "{}")
			r.Header.Set("Authorization", "Bearer ya29.alloc-token")
			return r
		}, 10},
		{"grpc", func() *http.Request {
			r := request("POST", "vault.googleapis.com", lroPath, frame)
			r.Header.Set("Content-Type", "application/grpc")
			r.Header.Set("Authorization", "Bearer ya29.alloc-token")
			return r
		}, 12},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := &nopWriter{h: http.Header{}}
			serve := func() {
				w.reset()
				_ = h.ServeHTTP(w, tc.build(), next)
			}
			serve() // the token is verified once and cached
			if w.code != http.StatusOK || w.h.Get("Grpc-Status") != "" || w.h.Get("Audit-Id") == "" {
				t.Fatalf("status %d, grpc-status %q, audit id %q", w.code, w.h.Get("Grpc-Status"), w.h.Get("Audit-Id"))
			}
			before := next.calls.Load()
			building := testing.AllocsPerRun(200, func() { _ = tc.build() })
			serving := testing.AllocsPerRun(200, serve)
			if got := serving - building; got > tc.maxAllocs {
				t.Errorf("a cached-token cancel costs %.0f allocations, want at most %.0f", got, tc.maxAllocs)
			}
			if next.calls.Load() == before || w.code != http.StatusOK {
				t.Errorf("the cancels were not forwarded: status %d", w.code)
			}
		})
	}
}

// A burst of new tokens reuses connections to tokeninfo: 16 cancels at a
// time, each with a token of its own, open about as many connections as
// there are calls at once, not one per call (http.DefaultTransport keeps
// only two idle connections per host).
func TestTokenInfoConnectionsAreReused(t *testing.T) {
	var dialed atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `{"sub":"1","email":"burst@example.com","scope":"https://www.googleapis.com/auth/ediscovery","expires_in":"3599"}`)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			dialed.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	h := provision(t, &Handler{TokenInfo: &TokenInfoConfig{URL: srv.URL}})
	t.Cleanup(func() { _ = h.Cleanup() })
	discardAudit(h)
	const workers, rounds = 16, 20
	var wg sync.WaitGroup
	var refused atomic.Int64
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				r := request("POST", "vault.googleapis.com", "/v1/operations/burst:cancel", "{}")
				r.Header.Set("Authorization", fmt.Sprintf("Bearer ya29.burst-%d-%d", w, i))
				rw := &nopWriter{h: http.Header{}}
				if _ = h.ServeHTTP(rw, r, &countingNext{}); rw.code != http.StatusOK {
					refused.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if refused.Load() != 0 {
		t.Fatalf("%d of %d cancels refused", refused.Load(), workers*rounds)
	}
	if got := dialed.Load(); got > 2*workers {
		t.Errorf("%d connections to tokeninfo for %d verifications, %d at a time; want at most %d", got, workers*rounds, workers, 2*workers)
	}
}
