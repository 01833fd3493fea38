package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// floodTokenInfo is a slow tokeninfo that records how many calls it serves
// at once: each answer takes delay, and a call for any token but the known
// one is also held until release is closed, so that a test can look at a
// flood while the verifier is saturated.
type floodTokenInfo struct {
	srv                      *httptest.Server
	release                  chan struct{}
	once                     sync.Once
	running, peak, held      atomic.Int64
	knownCalls, unknownCalls atomic.Int64
}

func newFloodTokenInfo(t *testing.T, known string, delay time.Duration) *floodTokenInfo {
	f := &floodTokenInfo{release: make(chan struct{})}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := f.running.Add(1)
		defer f.running.Add(-1)
		for p := f.peak.Load(); n > p && !f.peak.CompareAndSwap(p, n); p = f.peak.Load() {
		}
		token := r.PostFormValue("access_token")
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		if token != known {
			f.unknownCalls.Add(1)
			f.held.Add(1)
			<-f.release
			f.held.Add(-1)
			time.Sleep(delay)
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"error":"invalid_token","error_description":"Invalid Value"}`)
			return
		}
		f.knownCalls.Add(1)
		time.Sleep(delay)
		_ = json.NewEncoder(w).Encode(map[string]string{
			"azp": "client.apps.googleusercontent.com", "aud": "client.apps.googleusercontent.com",
			"sub": "1001", "scope": scopeVault, "email": principalA, "email_verified": "true",
			"expires_in": "3599", "exp": fmt.Sprint(time.Now().Unix() + 3599), "access_type": "online",
		})
	}))
	// Closed before the server, whose Close waits for the held calls.
	t.Cleanup(f.srv.Close)
	t.Cleanup(f.open)
	return f
}

func (f *floodTokenInfo) open() { f.once.Do(func() { close(f.release) }) }

// floodResult is what one client of the flood got.
type floodResult struct {
	status  int
	auditID string
	body    []byte
	took    time.Duration
	err     error
}

// A flood of distinct unknown tokens cannot pile up on the verifier: at
// most max_in_flight tokeninfo calls run at once, every other new token is
// refused 503 without waiting for one, and a caller whose token is cached
// goes on being verified and forwarded throughout.
func TestTokenFloodIsShedWhileCachedTokensGoOn(t *testing.T) {
	const (
		bound   = 8
		clients = 64
		tokens  = 512
		cached  = 50
		// latencyBound is generous: a cached token waits for no verifier.
		latencyBound = 2 * time.Second
	)
	tokeninfo := newFloodTokenInfo(t, tokenVault, 200*time.Millisecond)
	g := startGateway(t, gatewayOptions{directive: fmt.Sprintf("tokeninfo %s/tokeninfo {\n max_in_flight %d\n}", tokeninfo.srv.URL, bound)})
	// Loopback only, with a connection per client kept open.
	client := &http.Client{
		Timeout: 20 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, network, fmt.Sprintf("127.0.0.1:%d", gatewayPort))
			},
			MaxIdleConnsPerHost: clients + 1,
		},
	}
	t.Cleanup(client.CloseIdleConnections)
	// send runs on the flood's goroutines too: it reports, never fails.
	send := func(token string) floodResult {
		req, err := http.NewRequest("POST", apiURL("vault.googleapis.com", vaultCancel), nil)
		if err != nil {
			return floodResult{err: err}
		}
		req.Header.Set("Authorization", "Bearer "+token)
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return floodResult{err: err}
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return floodResult{status: resp.StatusCode, auditID: resp.Header.Get("Audit-Id"), body: b, took: time.Since(start), err: err}
	}

	warm := send(tokenVault)
	if warm.err != nil || warm.status != 200 {
		t.Fatalf("warming the cached token: status %d, %v", warm.status, warm.err)
	}

	queue := make(chan int, tokens)
	for i := range tokens {
		queue <- i
	}
	close(queue)
	flood := make([]floodResult, tokens)
	var done atomic.Int64
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for i := range queue {
				flood[i] = send(fmt.Sprintf("ya29.a0-flood-%04d", i))
				done.Add(1)
			}
		})
	}
	// Every token of the flood is either answered or held in a call:
	// those answered were refused without waiting for the verifier.
	settled := func() bool { return done.Load()+tokeninfo.held.Load() == tokens }
	for deadline := time.Now().Add(10 * time.Second); !settled(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			answered, held := done.Load(), tokeninfo.held.Load()
			tokeninfo.open()
			wg.Wait()
			t.Fatalf("the flood did not settle: %d answered, %d held in tokeninfo calls (peak %d), want %d in all",
				answered, held, tokeninfo.peak.Load(), tokens)
		}
	}
	refusedWhileHeld := done.Load()

	// The verifier is saturated now, and stays so while the cached caller
	// sends its requests.
	var steady []floodResult
	for range cached {
		steady = append(steady, send(tokenVault))
	}
	if held := tokeninfo.held.Load(); held == 0 {
		t.Error("the flood's tokeninfo calls ended before the cached caller was done")
	}
	tokeninfo.open()
	wg.Wait()

	if got := tokeninfo.peak.Load(); got > bound {
		t.Errorf("tokeninfo served %d calls at once, want at most %d", got, bound)
	}
	if got := tokeninfo.knownCalls.Load(); got != 1 {
		t.Errorf("tokeninfo was asked about the cached token %d times, want once", got)
	}

	wantDecision := map[string]string{warm.auditID: "forwarded"}
	var slowestCached time.Duration
	for i, r := range steady {
		if r.err != nil || r.status != 200 {
			t.Errorf("cached caller's request %d during the flood: status %d, %v; want 200", i, r.status, r.err)
			continue
		}
		if r.took > latencyBound {
			t.Errorf("cached caller's request %d took %v, want under %v", i, r.took, latencyBound)
		}
		slowestCached = max(slowestCached, r.took)
		wantDecision[r.auditID] = "forwarded"
	}

	var shed, verified int
	var shedTook []time.Duration
	for i, r := range flood {
		switch {
		case r.err != nil:
			t.Errorf("flood token %d: %v", i, r.err)
			continue
		case r.status == 503:
			if reason := decodeError(t, r.body).reason(); reason != "TOKEN_VERIFIER_UNAVAILABLE" {
				t.Errorf("flood token %d refused 503 with reason %q, want TOKEN_VERIFIER_UNAVAILABLE", i, reason)
			}
			shed++
			shedTook = append(shedTook, r.took)
			wantDecision[r.auditID] = "verifier_unavailable"
		case r.status == 401:
			verified++
			wantDecision[r.auditID] = "unauthenticated"
		default:
			t.Errorf("flood token %d: status %d, want 503 or 401", i, r.status)
		}
	}
	if int64(shed) != refusedWhileHeld || int64(verified) != tokeninfo.unknownCalls.Load() {
		t.Errorf("flood: %d refused 503 (%d while tokeninfo was held), %d verified 401 (%d tokeninfo calls); want the 503s to be the ones refused while held, and a 401 per call",
			shed, refusedWhileHeld, verified, tokeninfo.unknownCalls.Load())
	}
	slices.Sort(shedTook)
	if len(shedTook) > 0 {
		t.Logf("tokeninfo peak concurrency %d (bound %d); %d tokens refused 503 (median %v, slowest %v), %d verified; cached caller's slowest of %d: %v",
			tokeninfo.peak.Load(), bound, shed, shedTook[len(shedTook)/2], shedTook[len(shedTook)-1], verified, cached, slowestCached)
	}

	ups := g.upstream.requests()
	if len(ups) != 1+cached {
		t.Errorf("upstream received %d requests, want %d (the cached caller's)", len(ups), 1+cached)
	}
	for _, u := range ups {
		if got := u.Header.Get("Authorization"); got != "Bearer "+tokenVault {
			t.Error("upstream received a request without the cached caller's credential")
		}
	}

	// One completed record per request that reached Caddy, with the
	// decision its answer shows.
	g.waitRecords(len(wantDecision))
	completed := map[string][]string{}
	for _, r := range g.readRecords() {
		if r.str("stage") == "completed" {
			completed[r.str("audit_id")] = append(completed[r.str("audit_id")], r.str("decision"))
		}
	}
	if len(completed) != len(wantDecision) {
		t.Errorf("%d audit ids have completed records, want %d", len(completed), len(wantDecision))
	}
	for id, want := range wantDecision {
		if got := completed[id]; len(got) != 1 || got[0] != want {
			t.Errorf("audit id %s: completed records %q, want one %q", id, got, want)
		}
	}
	if strings.Contains(string(g.logs()), "ya29.a0-flood-") {
		t.Error("a flood token appears in the gateway's logs")
	}
}
