package integration

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"
)

// outcome is one kind of request in the load mix, with what its completed
// record must say.
type outcome struct {
	name         string
	host, op     string // op gets the request's index appended
	header       []string
	body         string
	hangUp       bool // the client gives up before the (slow) upstream answers
	wantDecision string
	wantStatus   int // 0: not checked (a client that hung up never saw one)
}

// At least 5,000 recognised cancels at concurrency 50, with every outcome
// mixed in: each has exactly one completed record, in the log and in the
// journal, with the right decision and status.
func TestEveryCancelUnderLoadHasExactlyOneCompletedRecord(t *testing.T) {
	journal := filepath.Join(t.TempDir(), "audit.journal")
	g := startGateway(t, gatewayOptions{directive: "unimplemented dai.googleapis.com\naudit {\n journal " + journal + "\n}"})
	g.upstream.failPrefix.Store("op-fail")
	g.upstream.slowPrefix.Store("op-slow")
	g.upstream.delay.Store(int64(300 * time.Millisecond))

	mix := []outcome{
		{name: "forwarded", host: "vault.googleapis.com", op: "op-ok", header: bearer(tokenVault), wantDecision: "forwarded", wantStatus: 200},
		{name: "forwarded {}", host: "vault.googleapis.com", op: "op-ok-body", header: bearer(tokenVault), body: "{}", wantDecision: "forwarded", wantStatus: 200},
		{name: "no token", host: "vault.googleapis.com", op: "op-anon", wantDecision: "unauthenticated", wantStatus: 401},
		{name: "invalid token", host: "vault.googleapis.com", op: "op-revoked", header: bearer(tokenUnknown), wantDecision: "unauthenticated", wantStatus: 401},
		{name: "wrong scope", host: "vault.googleapis.com", op: "op-scope", header: bearer(tokenEmail), wantDecision: "scope_insufficient", wantStatus: 403},
		{name: "bad body", host: "vault.googleapis.com", op: "op-body", header: bearer(tokenVault), body: `{"force":true}`, wantDecision: "invalid_body", wantStatus: 400},
		{name: "unimplemented", host: "dai.googleapis.com", op: "op-dai", header: bearer(tokenVault), wantDecision: "unimplemented", wantStatus: 501},
		{name: "upstream failing", host: "vault.googleapis.com", op: "op-fail", header: bearer(tokenVault), wantDecision: "forwarded", wantStatus: 503},
		{name: "client hangs up", host: "vault.googleapis.com", op: "op-slow", header: bearer(tokenVault), hangUp: true, wantDecision: "forwarded"},
		{name: "ambiguous path", host: "vault.googleapis.com", op: "x/../op-amb", header: bearer(tokenVault), wantDecision: "invalid_path", wantStatus: 400},
	}
	const total, concurrency = 5000, 50
	// Hang-ups are slow by design: keep them to one request in fifty.
	kindOf := func(i int) outcome {
		if i%50 == 0 {
			return mix[8]
		}
		k := mix[i%len(mix)]
		if k.hangUp {
			return mix[0]
		}
		return k
	}

	client := &http.Client{Transport: caddytest.CreateTestingTransport(), Timeout: 10 * time.Second}
	client.Transport.(*http.Transport).MaxIdleConnsPerHost = concurrency
	deadline, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	work := make(chan int)
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for i := range work {
				k := kindOf(i)
				ctx, stop := context.WithTimeout(deadline, 5*time.Second)
				if k.hangUp {
					ctx, stop = context.WithTimeout(deadline, 50*time.Millisecond)
				}
				req := newRequest(t, "POST", apiURL(k.host, fmt.Sprintf("/v1/operations/%s-%d:cancel", k.op, i)), k.body, k.header...)
				resp, err := client.Do(req.WithContext(ctx))
				switch {
				case err == nil:
					resp.Body.Close()
					if k.wantStatus != 0 && resp.StatusCode != k.wantStatus {
						t.Errorf("%s #%d: status %d, want %d", k.name, i, resp.StatusCode, k.wantStatus)
					}
				case !k.hangUp:
					t.Errorf("%s #%d: %v", k.name, i, err)
				}
				stop()
			}
		})
	}
	for i := range total {
		work <- i
	}
	close(work)
	wg.Wait()

	// Records are written as each request finishes; a hung-up request
	// finishes when its upstream answers. Wait until Caddy's access log,
	// written last, stops growing.
	for last, wait := -1, time.Now().Add(10*time.Second); time.Now().Before(wait); time.Sleep(400 * time.Millisecond) {
		n := len(readRecordFile(t, filepath.Join(g.dir, "access.log")))
		if n == last {
			break
		}
		last = n
	}
	var logged, journaled map[string][]record
	complete := func(recs map[string][]record) int {
		n := 0
		for _, rs := range recs {
			n += len(rs)
		}
		return n
	}
	for wait := time.Now().Add(10 * time.Second); ; {
		logged = completedByOperation(t, filepath.Join(g.dir, "audit.log"))
		journaled = completedByOperation(t, journal)
		if complete(logged) >= total-total/50 && complete(journaled) >= total-total/50 || time.Now().After(wait) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	// A client that hangs up early may do so before Caddy has read its
	// request: such a request never reached the gateway and has no record.
	// Caddy's access log says which requests it handled.
	handled := map[string]bool{}
	for _, r := range readRecordFile(t, filepath.Join(g.dir, "access.log")) {
		req, _ := r["request"].(map[string]any)
		uri, _ := req["uri"].(string)
		handled[strings.TrimSuffix(strings.TrimPrefix(uri, "/v1/"), ":cancel")] = true
	}
	unseen := 0
	for i := range total {
		if k := kindOf(i); k.hangUp && !handled[fmt.Sprintf("operations/%s-%d", k.op, i)] {
			unseen++
		}
	}
	t.Logf("%d hung-up requests never reached the gateway", unseen)

	for _, got := range []struct {
		where string
		recs  map[string][]record
	}{{"log", logged}, {"journal", journaled}} {
		// Ambiguous paths name no operation: they share the key "".
		ambiguous := 0
		for i := range total {
			if kindOf(i).wantDecision == "invalid_path" {
				ambiguous++
			}
		}
		if want := total - ambiguous - unseen + 1; len(got.recs) != want {
			t.Errorf("%s: completed records under %d operations, want %d", got.where, len(got.recs), want)
		}
		for i := range total {
			k := kindOf(i)
			if k.wantDecision == "invalid_path" {
				continue // counted below
			}
			op := fmt.Sprintf("operations/%s-%d", k.op, i)
			recs := got.recs[op]
			if k.hangUp && !handled[op] {
				if len(recs) != 0 {
					t.Errorf("%s: %s never reached the gateway but has %d records", got.where, op, len(recs))
				}
				continue
			}
			if len(recs) != 1 {
				t.Errorf("%s: %s (%s) has %d completed records, want 1", got.where, op, k.name, len(recs))
				continue
			}
			if recs[0].str("decision") != k.wantDecision || k.wantStatus != 0 && recs[0].num("status") != k.wantStatus {
				t.Errorf("%s: %s (%s): record %v, want %s %d", got.where, op, k.name, recs[0], k.wantDecision, k.wantStatus)
			}
		}
		if n := len(got.recs[""]); n != ambiguous {
			t.Errorf("%s: %d invalid_path records, want %d", got.where, n, ambiguous)
		}
	}
}

// completedByOperation groups the completed records of a file by operation.
func completedByOperation(t *testing.T, path string) map[string][]record {
	t.Helper()
	out := map[string][]record{}
	for _, r := range readRecordFile(t, path) {
		if r.str("stage") == "completed" {
			out[r.str("operation")] = append(out[r.str("operation")], r)
		}
	}
	return out
}
