package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const vaultCancel = "/v1/operations/export-1:cancel"

func bearer(token string) []string { return []string{"Authorization", "Bearer " + token} }

// Every bad input of the spec: the exact status and reason, the headers a
// client relies on, nothing forwarded, and one completed record with the
// right decision.
func TestRefusalsAreGoogleErrorsAndNeverForwarded(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	big := `{"name": "operations/export-1", "pad": "` + strings.Repeat("x", 5000) + `"}`
	tests := []struct {
		name         string
		method, path string
		body         string
		header       []string
		wantStatus   int
		wantReason   string
		wantDecision string
		wantWWWAuth  string
	}{
		{"no credential", "POST", vaultCancel, "", nil,
			401, "CREDENTIALS_MISSING", "unauthenticated", `Bearer realm="https://accounts.google.com/"`},
		{"API key in the query alone", "POST", vaultCancel + "?key=AIzaSyDemoKey", "", nil,
			401, "CREDENTIALS_MISSING", "unauthenticated", `Bearer realm="https://accounts.google.com/"`},
		{"API key header alone", "POST", vaultCancel, "", []string{"X-Goog-Api-Key", "AIzaSyDemoKey"},
			401, "CREDENTIALS_MISSING", "unauthenticated", `Bearer realm="https://accounts.google.com/"`},
		{"basic credentials are not OAuth", "POST", vaultCancel, "", []string{"Authorization", "Basic dXNlcjpwYXNz"},
			401, "CREDENTIALS_MISSING", "unauthenticated", `Bearer realm="https://accounts.google.com/"`},
		{"unknown token", "POST", vaultCancel, "", bearer(tokenUnknown),
			401, "ACCESS_TOKEN_TYPE_UNSUPPORTED", "unauthenticated", `Bearer realm="https://accounts.google.com/", error="invalid_token"`},
		{"two different credentials", "POST", vaultCancel + "?access_token=" + tokenCloud, "", bearer(tokenVault),
			400, "CREDENTIALS_CONFLICT", "unauthenticated", ""},
		{"unreadable query credential", "POST", vaultCancel + "?access_token=ya29.bad%zz", "", nil,
			400, "CREDENTIALS_MALFORMED", "unauthenticated", ""},
		{"token without the API's scope", "POST", vaultCancel, "", bearer(tokenEmail),
			403, "ACCESS_TOKEN_SCOPE_INSUFFICIENT", "scope_insufficient",
			`Bearer realm="https://accounts.google.com/", error="insufficient_scope", scope="` + scopeVault + `"`},
		{"body with another field", "POST", vaultCancel, `{"force": true}`, bearer(tokenVault),
			400, "INVALID_CANCEL_BODY", "invalid_body", ""},
		{"body naming another operation", "POST", vaultCancel, `{"name": "operations/other"}`, bearer(tokenVault),
			400, "INVALID_CANCEL_BODY", "invalid_body", ""},
		{"malformed JSON body", "POST", vaultCancel, `{"name":`, bearer(tokenVault),
			400, "INVALID_CANCEL_BODY", "invalid_body", ""},
		{"array body", "POST", vaultCancel, `[]`, bearer(tokenVault),
			400, "INVALID_CANCEL_BODY", "invalid_body", ""},
		{"two JSON values", "POST", vaultCancel, `{} {}`, bearer(tokenVault),
			400, "INVALID_CANCEL_BODY", "invalid_body", ""},
		{"compressed body", "POST", vaultCancel, `{}`, append(bearer(tokenVault), "Content-Encoding", "gzip"),
			400, "INVALID_CANCEL_BODY", "invalid_body", ""},
		{"body over the limit", "POST", vaultCancel, big, bearer(tokenVault),
			400, "INVALID_CANCEL_BODY", "invalid_body", ""},
		{"dot-dot segment", "POST", "/v1/operations/../operations/x:cancel", "", bearer(tokenVault),
			400, "AMBIGUOUS_PATH", "invalid_path", ""},
		{"encoded dot segment", "POST", "/v1/operations/%2e/x:cancel", "", bearer(tokenVault),
			400, "AMBIGUOUS_PATH", "invalid_path", ""},
		{"empty segment", "POST", "/v1/operations//x:cancel", "", bearer(tokenVault),
			400, "AMBIGUOUS_PATH", "invalid_path", ""},
		{"encoded backslash", "POST", "/v1/operations%5Cx:cancel", "", bearer(tokenVault),
			400, "AMBIGUOUS_PATH", "invalid_path", ""},
		{"encoded verb colon", "POST", "/v1/operations/x%3Acancel", "", bearer(tokenVault),
			400, "AMBIGUOUS_PATH", "invalid_path", ""},
		{"method override", "POST", vaultCancel, "", append(bearer(tokenVault), "X-HTTP-Method-Override", "GET"),
			400, "METHOD_OVERRIDE_REFUSED", "invalid_request", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g.upstream.reset()
			req := newRequest(t, tt.method, apiURL("vault.googleapis.com", tt.path), tt.body, tt.header...)
			resp, b := g.do(req)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, tt.wantStatus, b)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=UTF-8" {
				t.Errorf("Content-Type = %q", ct)
			}
			e := decodeError(t, b)
			if e.Error.Code != tt.wantStatus || e.reason() != tt.wantReason {
				t.Errorf("error = %d %s, want %d %s: %s", e.Error.Code, e.reason(), tt.wantStatus, tt.wantReason, b)
			}
			if got := resp.Header.Get("WWW-Authenticate"); got != tt.wantWWWAuth {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tt.wantWWWAuth)
			}
			if n := len(g.upstream.requests()); n != 0 {
				t.Errorf("the refused request reached the upstream %d times", n)
			}
			id := resp.Header.Get("Audit-Id")
			if id == "" {
				t.Fatal("no Audit-Id header")
			}
			rec := g.recordFor(id)
			if rec.str("decision") != tt.wantDecision || rec.num("status") != tt.wantStatus {
				t.Errorf("audit record = %v, want %s %d", rec, tt.wantDecision, tt.wantStatus)
			}
		})
	}
}

// What Google's clients send for an empty message is accepted, and the
// upstream receives the client's bytes unchanged.
func TestEmptyBodiesAreForwardedByteForByte(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	for _, body := range []string{"", " \r\n\t", "{}", " { } ", "null", `{"name": "operations/export-1"}`, `{"name":"operations\/export-1"}`} {
		t.Run(fmt.Sprintf("%q", body), func(t *testing.T) {
			g.upstream.reset()
			resp, b := g.do(newRequest(t, "POST", apiURL("vault.googleapis.com", vaultCancel), body, bearer(tokenVault)...))
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, b)
			}
			reqs := g.upstream.requests()
			if len(reqs) != 1 || string(reqs[0].Body) != body {
				t.Fatalf("upstream got %d requests, body %q; want the client's %q", len(reqs), reqs[0].Body, body)
			}
		})
	}
}

func TestStrictBodyAcceptsZeroBytesOnly(t *testing.T) {
	g := startGateway(t, gatewayOptions{directive: "body strict"})
	for body, want := range map[string]int{"": 200, "{}": 400, " ": 400} {
		resp, b := g.do(newRequest(t, "POST", apiURL("vault.googleapis.com", vaultCancel), body, bearer(tokenVault)...))
		if resp.StatusCode != want {
			t.Errorf("body %q: status %d, want %d: %s", body, resp.StatusCode, want, b)
		}
	}
}

// A complete record of a forwarded cancel, field by field.
func TestForwardedCancelWritesACompleteAuditRecord(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	req := newRequest(t, "POST", apiURL("vault.googleapis.com", vaultCancel), "{}", bearer(tokenVault)...)
	req.Header.Set("User-Agent", "audit-test/1.0")
	resp, _ := g.do(req)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	id := resp.Header.Get("Audit-Id")
	rec := g.recordFor(id)
	sum := sha256.Sum256([]byte(tokenVault))
	want := map[string]any{
		"audit_id": id, "stage": "completed", "decision": "forwarded", "status": 200.0, "upstream_status": 200.0,
		"service": "vault.googleapis.com", "method": "vault.operations.cancel", "operation": "operations/export-1",
		"principal": principalA, "token_id": hex.EncodeToString(sum[:])[:16], "scope_used": scopeVault,
		"client_ip": "127.0.0.1", "user_agent": "audit-test/1.0",
		"logger": "http.handlers.lro_cancel.audit", "level": "info",
	}
	for k, v := range want {
		if rec[k] != v {
			t.Errorf("record[%q] = %v, want %v", k, rec[k], v)
		}
	}
	if sa, ok := rec["scopes_accepted"].([]any); !ok || len(sa) != 1 || sa[0] != scopeVault {
		t.Errorf("scopes_accepted = %v, want [%s]", rec["scopes_accepted"], scopeVault)
	}
	if d, ok := rec["duration"].(float64); !ok || d <= 0 {
		t.Errorf("duration = %v, want a positive number of seconds", rec["duration"])
	}
}

func TestReceivedStageIsWrittenBeforeForwarding(t *testing.T) {
	g := startGateway(t, gatewayOptions{directive: "audit {\n stages received completed\n}"})
	resp, _ := g.do(newRequest(t, "POST", apiURL("vault.googleapis.com", vaultCancel), "", bearer(tokenVault)...))
	id := resp.Header.Get("Audit-Id")
	recs := g.waitRecords(2)
	if recs[0].str("stage") != "received" || recs[0].str("audit_id") != id ||
		recs[1].str("stage") != "completed" || recs[1].str("audit_id") != id {
		t.Errorf("records = %v, want received then completed for %s", recs, id)
	}
}

// A query credential is moved into the Authorization header (an API key
// into X-Goog-Api-Key): the upstream URL keeps every other parameter byte
// for byte and no log carries it.
func TestQueryCredentialIsMovedIntoTheHeader(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	for _, param := range []string{"access_token", "oauth_token", "bearer_token"} {
		t.Run(param, func(t *testing.T) {
			g.upstream.reset()
			url := apiURL("vault.googleapis.com", vaultCancel+"?alt=json&"+param+"="+tokenVault+"&prettyPrint=false&fields=a%2Fb")
			resp, b := g.do(newRequest(t, "POST", url, ""))
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, b)
			}
			reqs := g.upstream.requests()
			if len(reqs) != 1 {
				t.Fatalf("upstream got %d requests", len(reqs))
			}
			if reqs[0].RawQuery != "alt=json&prettyPrint=false&fields=a%2Fb" {
				t.Errorf("upstream query = %q", reqs[0].RawQuery)
			}
			if reqs[0].Header.Get("Authorization") != "Bearer "+tokenVault {
				t.Errorf("upstream Authorization = %q", reqs[0].Header.Get("Authorization"))
			}
		})
	}
	t.Run("key", func(t *testing.T) {
		g.upstream.reset()
		url := apiURL("vault.googleapis.com", vaultCancel+"?key=AIzaSyQuotaKey&alt=json")
		resp, b := g.do(newRequest(t, "POST", url, "", bearer(tokenVault)...))
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, b)
		}
		reqs := g.upstream.requests()
		if len(reqs) != 1 || reqs[0].RawQuery != "alt=json" || reqs[0].Header.Get("X-Goog-Api-Key") != "AIzaSyQuotaKey" {
			t.Errorf("upstream got %+v; want query alt=json and the key in X-Goog-Api-Key", reqs)
		}
	})
	if bytes.Contains(g.logs(), []byte(tokenVault)) || bytes.Contains(g.logs(), []byte("AIzaSyQuotaKey")) {
		t.Errorf("a log carries a query credential")
	}
}

// Fifty concurrent first requests with one token make one tokeninfo call.
func TestConcurrentFirstRequestsShareOneTokenInfoCall(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	g.tokeninfo.delay.Store(int64(300 * time.Millisecond))
	var wg sync.WaitGroup
	statuses := make([]int, 50)
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := newRequest(t, "POST", apiURL("vault.googleapis.com", fmt.Sprintf("/v1/operations/op-%d:cancel", i)), "", bearer(tokenVault)...)
			resp, err := g.tester.Client.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			statuses[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	for i, s := range statuses {
		if s != 200 {
			t.Errorf("request %d: status %d", i, s)
		}
	}
	if n := g.tokeninfo.calls.Load(); n != 1 {
		t.Errorf("tokeninfo called %d times, want 1", n)
	}
	if n := len(g.upstream.requests()); n != 50 {
		t.Errorf("upstream got %d requests, want 50", n)
	}
}

// While tokeninfo is down every cancel is refused with 503 and nothing is
// forwarded; when it is back, cancels go through again.
func TestTokenInfoDownFailsClosed(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	g.tokeninfo.down.Store(true)
	resp, b := g.do(newRequest(t, "POST", apiURL("vault.googleapis.com", vaultCancel), "", bearer(tokenVault)...))
	if resp.StatusCode != 503 || decodeError(t, b).Error.Status != "UNAVAILABLE" {
		t.Fatalf("status %d %s, want 503 UNAVAILABLE", resp.StatusCode, b)
	}
	if n := len(g.upstream.requests()); n != 0 {
		t.Errorf("upstream got %d requests while the verifier was down", n)
	}
	if rec := g.recordFor(resp.Header.Get("Audit-Id")); rec.str("decision") != "verifier_unavailable" {
		t.Errorf("record = %v", rec)
	}
	for range 4 {
		if resp, _ := g.do(newRequest(t, "POST", apiURL("vault.googleapis.com", vaultCancel), "", bearer(tokenVault)...)); resp.StatusCode != 503 {
			t.Errorf("status %d while tokeninfo is down, want 503", resp.StatusCode)
		}
	}
	if n := bytes.Count(g.logs(), []byte("refusing cancels with 503")); n != 1 {
		t.Errorf("the outage was logged %d times for 5 refusals, want once per burst", n)
	}
	g.tokeninfo.down.Store(false)
	resp, _ = g.do(newRequest(t, "POST", apiURL("vault.googleapis.com", vaultCancel), "", bearer(tokenVault)...))
	if resp.StatusCode != 200 {
		t.Errorf("after recovery: status %d, want 200", resp.StatusCode)
	}
}

// A verifier that does not answer at all (a black hole) times out into 503.
func TestTokenInfoTimeoutFailsClosed(t *testing.T) {
	hole, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hole.Close()
	g := startGateway(t, gatewayOptions{directive: "tokeninfo http://" + hole.Addr().String() + "/tokeninfo {\n timeout 300ms\n}"})
	resp, _ := g.do(newRequest(t, "POST", apiURL("vault.googleapis.com", vaultCancel), "", bearer(tokenVault)...))
	if resp.StatusCode != 503 {
		t.Errorf("status %d, want 503", resp.StatusCode)
	}
	if n := len(g.upstream.requests()); n != 0 {
		t.Errorf("upstream got %d requests", n)
	}
}

func TestUnlistedModes(t *testing.T) {
	const path = "/v3/projects/p/operations/o:cancel"
	tests := []struct {
		mode         string
		token        string
		wantStatus   int
		wantRecorded string
	}{
		{"enforce", "", 401, "unauthenticated"},
		{"enforce", tokenEmail, 200, "forwarded"},
		{"deny", tokenEmail, 403, "denied_unlisted"},
		{"pass", "", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.mode+"/"+tt.wantRecorded, func(t *testing.T) {
			g := startGateway(t, gatewayOptions{directive: "unlisted " + tt.mode})
			var h []string
			if tt.token != "" {
				h = bearer(tt.token)
			}
			resp, b := g.do(newRequest(t, "POST", apiURL("unknown-api.googleapis.com", path), "", h...))
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.wantStatus, b)
			}
			if tt.wantRecorded == "" {
				time.Sleep(50 * time.Millisecond)
				if n := len(g.readRecords()); n != 0 || resp.Header.Get("Audit-Id") != "" {
					t.Errorf("an ungoverned request was recorded")
				}
				return
			}
			rec := g.recordFor(resp.Header.Get("Audit-Id"))
			if rec.str("decision") != tt.wantRecorded || rec.str("method") != "unlisted" || rec.str("operation") != "projects/p/operations/o" {
				t.Errorf("record = %v", rec)
			}
		})
	}
}

// The completed record is written when the upstream fails and when the
// client hangs up before the answer.
func TestRecordWrittenWhenUpstreamFailsOrClientLeaves(t *testing.T) {
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()
	g := startGateway(t, gatewayOptions{site: "lro_cancel {\n tokeninfo TOKENINFO\n}\nreverse_proxy " + deadAddr})
	resp, _ := g.do(newRequest(t, "POST", apiURL("vault.googleapis.com", vaultCancel), "", bearer(tokenVault)...))
	if resp.StatusCode != 502 {
		t.Errorf("status %d, want 502", resp.StatusCode)
	}
	rec := g.recordFor(resp.Header.Get("Audit-Id"))
	if rec.str("decision") != "forwarded" || rec.num("status") != 502 || rec["upstream_status"] != nil {
		t.Errorf("record = %v, want forwarded, status 502, no upstream_status", rec)
	}

	// The client leaves while its token is being verified.
	slow := startGateway(t, gatewayOptions{})
	slow.tokeninfo.delay.Store(int64(time.Second))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req := newRequest(t, "POST", apiURL("vault.googleapis.com", vaultCancel), "", bearer(tokenVault)...).WithContext(ctx)
	left := make(chan error, 1)
	go func() {
		_, err := slow.tester.Client.Do(req)
		left <- err
	}()
	eventually(t, "tokeninfo is asked", func() bool { return slow.tokeninfo.calls.Load() == 1 })
	cancel()
	if err := <-left; err == nil {
		t.Fatal("the client was meant to give up")
	}
	recs := slow.waitRecords(1)
	if len(recs) != 1 || recs[0].str("stage") != "completed" {
		t.Errorf("records = %v, want one completed record", recs)
	}
	if n := len(slow.upstream.requests()); n != 0 {
		t.Errorf("a cancel whose client left reached the upstream %d times", n)
	}

	// The client leaves once the upstream is working on the cancel.
	busy := startGateway(t, gatewayOptions{})
	busy.upstream.delay.Store(int64(2 * time.Second))
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	req = newRequest(t, "POST", apiURL("vault.googleapis.com", vaultCancel), "", bearer(tokenVault)...).WithContext(ctx2)
	gone := make(chan error, 1)
	go func() {
		_, err := busy.tester.Client.Do(req)
		gone <- err
	}()
	eventually(t, "the upstream has the cancel", func() bool { return len(busy.upstream.requests()) == 1 })
	cancel2()
	if err := <-gone; err == nil {
		t.Fatal("the client was meant to give up")
	}
	recs = busy.waitRecords(1)
	if len(recs) != 1 || recs[0].str("decision") != "forwarded" || recs[0].num("status") == 200 {
		t.Errorf("records = %v, want one forwarded record whose status is not the upstream's 200", recs)
	}
	if n := len(busy.upstream.requests()); n != 1 {
		t.Errorf("upstream got %d requests, want 1", n)
	}
}

// No log the gateway writes carries a token, an API key or a cookie, in
// whatever place the caller put it.
func TestNoCredentialInAnyLog(t *testing.T) {
	g := startGateway(t, gatewayOptions{directive: "audit {\n stages received completed\n}"})
	const key, cookie, ambiguousToken = "AIzaSyLeakCheckKey000", "SID=leak-check-cookie", "ya29.ambiguous-path-token"
	const dollarToken = "ya29.dollar-form-token"
	requests := []*http.Request{
		newRequest(t, "POST", apiURL("vault.googleapis.com", vaultCancel), "", bearer(tokenVault)...),
		newRequest(t, "POST", apiURL("vault.googleapis.com", vaultCancel+"?access_token="+tokenCloud), ""),
		newRequest(t, "POST", apiURL("vault.googleapis.com", vaultCancel+"?oauth_token="+tokenEmail), ""),
		newRequest(t, "POST", apiURL("vault.googleapis.com", vaultCancel+"?bearer_token="+tokenUnknown), ""),
		newRequest(t, "POST", apiURL("vault.googleapis.com", vaultCancel+"?key="+key), "", "Cookie", cookie),
		newRequest(t, "POST", apiURL("vault.googleapis.com", vaultCancel), "", "X-Goog-Api-Key", key),
		newRequest(t, "POST", apiURL("vault.googleapis.com", "/v1/operations/../x:cancel?access_token="+ambiguousToken), ""),
		newRequest(t, "GET", apiURL("vault.googleapis.com", "/v1/operations/x?access_token="+tokenAndroid+"&key="+key), ""),
		newRequest(t, "POST", apiURL("vault.googleapis.com", vaultCancel+"?$access_token="+dollarToken), ""),
	}
	for _, r := range requests {
		g.do(r)
	}
	g.waitRecords(2 * 8)
	eventually(t, "the access log has every request", func() bool {
		return len(readRecordFile(t, filepath.Join(g.dir, "access.log"))) >= len(requests)
	})
	logs := g.logs()
	if !bytes.Contains(logs, []byte(`"uri"`)) {
		t.Fatal("the access log wrote nothing: the check would prove nothing")
	}
	for _, secret := range []string{tokenVault, tokenCloud, tokenEmail, tokenUnknown, tokenAndroid, ambiguousToken, dollarToken, key, "leak-check-cookie"} {
		if bytes.Contains(logs, []byte(secret)) {
			t.Errorf("a log carries %q", secret)
		}
	}
}

// The handler's placeholders reach what runs after it, e.g. headers that
// reverse_proxy sends upstream.
func TestHandlerPlaceholdersReachTheUpstream(t *testing.T) {
	g := startGateway(t, gatewayOptions{site: `lro_cancel {
		tokeninfo TOKENINFO
	}
	reverse_proxy UPSTREAM {
		header_up X-Lro "{http.lro_cancel.method} {http.lro_cancel.operation} {http.lro_cancel.service} {http.lro_cancel.principal} {http.lro_cancel.decision}"
		header_up X-Lro-Audit-Id {http.lro_cancel.audit_id}
	}`})
	resp, b := g.do(newRequest(t, "POST", apiURL("vault.googleapis.com", vaultCancel), "", bearer(tokenVault)...))
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	reqs := g.upstream.requests()
	if len(reqs) != 1 {
		t.Fatalf("upstream got %d requests", len(reqs))
	}
	want := "vault.operations.cancel operations/export-1 vault.googleapis.com " + principalA + " forwarded"
	if got := reqs[0].Header.Get("X-Lro"); got != want {
		t.Errorf("X-Lro = %q, want %q", got, want)
	}
	if got := reqs[0].Header.Get("X-Lro-Audit-Id"); got != resp.Header.Get("Audit-Id") || got == "" {
		t.Errorf("X-Lro-Audit-Id = %q, want the Audit-Id %q", got, resp.Header.Get("Audit-Id"))
	}
}
