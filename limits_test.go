package lrocancel

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/googleapis/gax-go/v2/apierror"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/api/googleapi"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/lro-cancel/lro_cancel/internal/audit"
	"github.com/lro-cancel/lro_cancel/internal/redistest"
)

// limited provisions a handler with the given limits, its records captured.
func limited(t *testing.T, lc *LimitsConfig, more func(*Handler)) (*Handler, *captureSink) {
	t.Helper()
	ti := scopedTokenInfo(t)
	h := &Handler{TokenInfo: &TokenInfoConfig{URL: ti.URL}, Limits: lc}
	if more != nil {
		more(h)
	}
	if err := h.Validate(); err != nil {
		t.Fatal(err)
	}
	h = provision(t, h)
	// Cleaned up, the handler lets go of the process's local store: the
	// next test starts from an empty one.
	t.Cleanup(func() { _ = h.Cleanup() })
	sink := &captureSink{}
	h.core.Sink = sink
	return h, sink
}

// restCancel sends a REST cancel of op through h and says whether the
// upstream got it.
func restCancel(t *testing.T, h *Handler, op string, header ...string) (*httptest.ResponseRecorder, bool) {
	t.Helper()
	r := request("POST", "vault.googleapis.com", "/v1/operations/"+op+":cancel", "")
	r.Header.Set("Authorization", "Bearer ya29.scoped")
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	called := false
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		called = true
		w.WriteHeader(http.StatusOK)
		return nil
	})
	w := httptest.NewRecorder()
	if err := h.ServeHTTP(w, r, next); err != nil {
		t.Fatal(err)
	}
	return w, called
}

func perPrincipal(count int, window time.Duration) LimitRule {
	return LimitRule{Name: "per-principal", Count: count, Window: caddy.Duration(window)}
}

// Over quota, a REST caller gets Google's 429 with QuotaFailure and
// RetryInfo, read by Google's own client; Retry-After in whole seconds;
// nothing forwarded; the record names the rule.
func TestOverQuotaIsRefused429WithQuotaFailureAndRetryInfo(t *testing.T) {
	h, sink := limited(t, &LimitsConfig{Rules: []LimitRule{perPrincipal(2, time.Hour)}}, nil)
	for i := range 2 {
		if w, fwd := restCancel(t, h, "x"+strconv.Itoa(i)); w.Code != 200 || !fwd {
			t.Fatalf("cancel %d: status %d, forwarded %v; want 200 and forwarded", i+1, w.Code, fwd)
		}
	}
	w, fwd := restCancel(t, h, "x3")
	if fwd {
		t.Error("the cancel over quota reached the upstream")
	}
	if ra := w.Header().Get("Retry-After"); ra != "3600" {
		t.Errorf("Retry-After %q, want 3600 (the hour, in whole seconds)", ra)
	}
	resp := w.Result()
	aerr, ok := apierror.FromError(googleapi.CheckResponse(resp))
	if !ok {
		t.Fatalf("Google's client cannot read the refusal: %s", w.Body.Bytes())
	}
	if aerr.HTTPCode() != 429 || aerr.Reason() != "CANCEL_RATE_LIMITED" || aerr.Domain() != "lro-cancel.gateway" {
		t.Errorf("refusal %d %s %s, want 429 CANCEL_RATE_LIMITED lro-cancel.gateway", aerr.HTTPCode(), aerr.Reason(), aerr.Domain())
	}
	md := aerr.Metadata()
	if md["rule"] != "per-principal" || md["service"] != "vault.googleapis.com" || md["method"] != "vault.operations.cancel" || md["audit_id"] == "" {
		t.Errorf("ErrorInfo metadata %v", md)
	}
	if qv := aerr.Details().QuotaFailure.GetViolations(); len(qv) != 1 || qv[0].GetSubject() != "rule:per-principal" {
		t.Errorf("QuotaFailure %v, want subject rule:per-principal", qv)
	}
	if d := aerr.Details().RetryInfo.GetRetryDelay().AsDuration(); d != time.Hour {
		t.Errorf("RetryInfo %v, want 1h", d)
	}
	if len(sink.recs) != 3 {
		t.Fatalf("%d records, want 3", len(sink.recs))
	}
	rec := sink.recs[2]
	if rec.Decision != audit.RateLimited || rec.Status != 429 || rec.LimitRule != "per-principal" || rec.LimitError || rec.LimitDryRun {
		t.Errorf("record %+v, want rate_limited 429 per-principal", rec)
	}
	if sink.recs[0].LimitRule != "" {
		t.Errorf("an admitted cancel's record names limit rule %q", sink.recs[0].LimitRule)
	}
}

// A gRPC caller gets code 8 with the same details, read by apierror.
func TestOverQuotaOverGRPCIsResourceExhausted(t *testing.T) {
	h, sink := limited(t, &LimitsConfig{Rules: []LimitRule{perPrincipal(1, time.Minute)}}, nil)
	var last *httptest.ResponseRecorder
	for range 2 {
		r := request("POST", "vault.googleapis.com", lroPath, string(grpcFrame(cancelMessage(t, "operations/x"))))
		r.Header.Set("Content-Type", "application/grpc")
		r.Header.Set("Authorization", "Bearer ya29.scoped")
		last = httptest.NewRecorder()
		next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			w.Header().Set("Grpc-Status", "0")
			return nil
		})
		if err := h.ServeHTTP(last, r, next); err != nil {
			t.Fatal(err)
		}
	}
	if got := last.Header().Get("Grpc-Status"); got != "8" {
		t.Fatalf("grpc-status %q, want 8", got)
	}
	b, err := base64.RawStdEncoding.DecodeString(last.Header().Get("Grpc-Status-Details-Bin"))
	var st spb.Status
	if err != nil || proto.Unmarshal(b, &st) != nil {
		t.Fatalf("grpc-status-details-bin does not decode: %v", err)
	}
	aerr, ok := apierror.FromError(status.ErrorProto(&st))
	if !ok || aerr.GRPCStatus().Code() != codes.ResourceExhausted || aerr.Reason() != "CANCEL_RATE_LIMITED" {
		t.Fatalf("apierror reads %v", aerr)
	}
	if qv := aerr.Details().QuotaFailure.GetViolations(); len(qv) != 1 || qv[0].GetSubject() != "rule:per-principal" {
		t.Errorf("QuotaFailure %v", qv)
	}
	if d := aerr.Details().RetryInfo.GetRetryDelay().AsDuration(); d <= 0 || d > time.Minute {
		t.Errorf("RetryInfo %v, want at most the minute", d)
	}
	if rec := sink.recs[1]; rec.Decision != audit.RateLimited || rec.GRPCStatus != 8 || rec.LimitRule != "per-principal" {
		t.Errorf("record %+v", rec)
	}
}

// A key that cannot be computed counts as over quota (fail closed), and
// refuses before the store is asked.
func TestAKeyThatFailsCountsAsOverQuota(t *testing.T) {
	h, sink := limited(t, &LimitsConfig{Rules: []LimitRule{
		perPrincipal(10, time.Hour),
		{Name: "per-team", Count: 10, Window: caddy.Duration(time.Hour), Key: "request.headers['x-team']"},
	}}, nil)
	w, fwd := restCancel(t, h, "x")
	if w.Code != 429 || fwd {
		t.Fatalf("status %d forwarded %v, want 429 and not forwarded", w.Code, fwd)
	}
	if rec := sink.recs[0]; rec.Decision != audit.RateLimited || rec.LimitRule != "per-team" || !rec.LimitError {
		t.Errorf("record %+v, want rate_limited per-team limit_error", rec)
	}
	if w, fwd := restCancel(t, h, "y", "X-Team", "sre"); w.Code != 200 || !fwd {
		t.Errorf("with the header: %d forwarded %v", w.Code, fwd)
	}
	if n, _ := h.core.Limits.Limiter.Count(t.Context(), 0, "a@example.com"); n != 1 {
		t.Errorf("per-principal counts %d, want 1: the refused cancel consumed nothing", n)
	}
}

// Under dry_run nothing is refused; the record names the rule that would
// have refused.
func TestDryRunForwardsAndRecordsTheRuleThatWouldRefuse(t *testing.T) {
	h, sink := limited(t, &LimitsConfig{Rules: []LimitRule{perPrincipal(1, time.Hour)}, DryRun: true}, nil)
	// The counters are the process's: other tests count under this rule too.
	metric := func(result string) float64 {
		return testutil.ToFloat64(h.metrics.limitDecisions.WithLabelValues("per-principal", result))
	}
	before := map[string]float64{"admitted": metric("admitted"), "dry_run_limited": metric("dry_run_limited"), "limited": metric("limited")}
	for i := range 3 {
		if w, fwd := restCancel(t, h, "x"+strconv.Itoa(i)); w.Code != 200 || !fwd {
			t.Fatalf("cancel %d under dry_run: %d forwarded %v", i+1, w.Code, fwd)
		}
	}
	if r := sink.recs[0]; r.LimitRule != "" || r.LimitDryRun {
		t.Errorf("first record %+v names a rule", r)
	}
	for _, r := range sink.recs[1:] {
		if r.Decision != audit.Forwarded || r.LimitRule != "per-principal" || !r.LimitDryRun {
			t.Errorf("record %+v, want forwarded, limit_rule per-principal, limit_dry_run", r)
		}
	}
	for result, want := range map[string]float64{"admitted": 1, "dry_run_limited": 2, "limited": 0} {
		if got := metric(result) - before[result]; got != want {
			t.Errorf("caddy_lro_cancel_limit_decisions_total{rule=per-principal,result=%s} = %v, want %v", result, got, want)
		}
	}
}

// Refusals earlier in the pipeline consume no quota; unimplemented, after
// the limits, does.
func TestOnlyCancelsTheLimitsAdmitCount(t *testing.T) {
	h, _ := limited(t, &LimitsConfig{Rules: []LimitRule{perPrincipal(2, time.Hour)}}, func(h *Handler) {
		h.Policy = &PolicyConfig{Rules: []PolicyRule{{Effect: "deny", Name: "no-prod", Expr: "resource.name.startsWith('operations/prod-')"}}}
		h.Unimplemented = []string{"dai.googleapis.com"}
	})
	for range 5 {
		if w, _ := restCancel(t, h, "prod-1"); w.Code != 403 {
			t.Fatalf("policy: %d, want 403", w.Code)
		}
	}
	if w, _ := restCancel(t, h, "x"); w.Code != 200 {
		t.Fatalf("after five policy refusals: %d, want 200", w.Code)
	}
	r := request("POST", "dai.googleapis.com", "/v1/operations/x:cancel", "")
	r.Header.Set("Authorization", "Bearer ya29.scoped")
	w := httptest.NewRecorder()
	_ = h.ServeHTTP(w, r, caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil }))
	if w.Code != 501 {
		t.Fatalf("unimplemented: %d", w.Code)
	}
	if w, _ := restCancel(t, h, "y"); w.Code != 429 {
		t.Errorf("third admitted cancel (one forwarded, one 501): %d, want 429", w.Code)
	}
}

// A store that cannot answer: on_error deny refuses 503 and forwards
// nothing; allow forwards and records limit_error.
func TestAnUnavailableStoreDeniesOrAllowsAsConfigured(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens: the store is down
	for _, tc := range []struct {
		onError string
		status  int
		fwd     bool
		want    audit.Decision
	}{
		{"", 503, false, audit.LimitStoreUnavailable},
		{"allow", 200, true, audit.Forwarded},
	} {
		t.Run("on_error "+tc.onError, func(t *testing.T) {
			h, sink := limited(t, &LimitsConfig{Store: "redis", Redis: &RedisConfig{Address: addr}, OnError: tc.onError,
				Rules: []LimitRule{perPrincipal(2, time.Hour)}}, nil)
			w, fwd := restCancel(t, h, "x")
			if w.Code != tc.status || fwd != tc.fwd {
				t.Fatalf("status %d forwarded %v, want %d %v; body %s", w.Code, fwd, tc.status, tc.fwd, w.Body.Bytes())
			}
			if !tc.fwd {
				if reason, _ := reasonOf(t, w); reason != "LIMIT_STORE_UNAVAILABLE" {
					t.Errorf("reason %q", reason)
				}
			}
			if rec := sink.recs[0]; rec.Decision != tc.want || rec.LimitError != (tc.onError == "allow") {
				t.Errorf("record %+v", rec)
			}
		})
	}
}

// explain shows each rule's key and, with a local store, its count; a key
// that fails refuses as the gateway would; it counts nothing.
func TestExplainShowsEachLimitsKeyAndCount(t *testing.T) {
	cfg := servers(`"srv0":{"routes":[{"handle":[{"handler":"lro_cancel","limits":{"rules":[
		{"name":"per-principal","count":20,"window":3600000000000},
		{"name":"per-team","count":5,"window":600000000000,"key":"request.headers['x-team']"}]}}]}]}`)
	var out bytes.Buffer
	req := explainRequest{Method: "POST", URL: vaultCancel, Header: map[string]string{"x-team": "sre"}}
	if code, err := runExplain(&out, cfg, req, alice); code != exitForwards {
		t.Fatalf("exit %d (%v), want %d:\n%s", code, err, exitForwards, out.String())
	}
	for _, want := range []string{
		`per-principal: key "alice@example.com" (request.auth.principal): 0 of 20 in 1h0m0s`,
		`per-team: key "sre" (request.headers['x-team']): 0 of 5 in 10m0s`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("explain does not say %q:\n%s", want, out.String())
		}
	}
	code, decision := explainOut(t, cfg, "POST", vaultCancel, alice)
	if code != exitRefuses || decision != "rate_limited (limit per-team): 429 CANCEL_RATE_LIMITED" {
		t.Errorf("without the team header: exit %d, decision %q", code, decision)
	}
}

// In a batch each embedded cancel is limited as if sent alone; the first
// over quota refuses the whole batch with its 429, the part named, and
// nothing is forwarded.
func TestABatchIsRefusedByItsFirstCancelOverQuota(t *testing.T) {
	h, sink := limited(t, &LimitsConfig{Rules: []LimitRule{perPrincipal(2, time.Hour)}}, nil)
	var body strings.Builder
	for i := range 3 {
		fmt.Fprintf(&body, "--b\r\nContent-Type: application/http\r\nContent-ID: c%d\r\n\r\n"+
			"POST /v1/operations/batch-%d:cancel HTTP/1.1\r\nHost: vault.googleapis.com\r\nAuthorization: Bearer ya29.scoped\r\n\r\n\r\n", i+1, i)
	}
	body.WriteString("--b--\r\n")
	r := request("POST", "vault.googleapis.com", "/batch", body.String())
	r.Header.Set("Content-Type", "multipart/mixed; boundary=b")
	called := false
	w := httptest.NewRecorder()
	_ = h.ServeHTTP(w, r, caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { called = true; return nil }))
	if w.Code != 429 || called {
		t.Fatalf("batch: %d, forwarded %v; want 429 and nothing forwarded", w.Code, called)
	}
	if w.Header().Get("Retry-After") == "" {
		t.Error("the batch's 429 has no Retry-After")
	}
	aerr, ok := apierror.FromError(googleapi.CheckResponse(w.Result()))
	if !ok || aerr.Reason() != "CANCEL_RATE_LIMITED" || aerr.Metadata()["part"] != "c3" {
		t.Errorf("batch refusal %v (metadata %v), want CANCEL_RATE_LIMITED naming part c3", aerr, aerr.Metadata())
	}
	var decisions []audit.Decision
	for _, rec := range sink.recs {
		decisions = append(decisions, rec.Decision)
	}
	if fmt.Sprint(decisions) != "[batch_refused batch_refused rate_limited]" {
		t.Errorf("records %v, want the two admitted parts batch_refused and the third rate_limited", decisions)
	}
}

// The redis store's password comes from password_file; a wrong one makes
// the store unavailable (503 under deny), the right one admits.
func TestTheRedisPasswordComesFromItsFile(t *testing.T) {
	if testing.Short() {
		t.Skip("runs redis-server")
	}
	srv := redistest.Start(t, "--requirepass", "s3cret")
	dir := t.TempDir()
	for _, tc := range []struct {
		password string
		status   int
	}{{"wrong\n", 503}, {"s3cret\n", 200}} {
		file := filepath.Join(dir, "pass")
		if err := os.WriteFile(file, []byte(tc.password), 0o600); err != nil {
			t.Fatal(err)
		}
		h, _ := limited(t, &LimitsConfig{Store: "redis", Redis: &RedisConfig{Address: srv.Addr, PasswordFile: file, Timeout: caddy.Duration(2 * time.Second)},
			Rules: []LimitRule{perPrincipal(2, time.Hour)}}, nil)
		if w, _ := restCancel(t, h, "x"); w.Code != tc.status {
			t.Errorf("password %q: %d, want %d", strings.TrimSpace(tc.password), w.Code, tc.status)
		}
	}
}

// A JSON config gets the checks a Caddyfile gets.
func TestJSONLimitsAreValidated(t *testing.T) {
	good := func() *LimitsConfig { return &LimitsConfig{Rules: []LimitRule{perPrincipal(20, time.Hour)}} }
	for name, tc := range map[string]struct {
		change func(*LimitsConfig)
		want   string
	}{
		"unknown store":          {func(lc *LimitsConfig) { lc.Store = "memcached" }, "store must be"},
		"redis without address":  {func(lc *LimitsConfig) { lc.Store = "redis" }, "needs the server's address"},
		"redis address, no port": {func(lc *LimitsConfig) { lc.Store, lc.Redis = "redis", &RedisConfig{Address: "10.0.0.5"} }, "<host>:<port>"},
		"unknown on_error":       {func(lc *LimitsConfig) { lc.OnError = "shrug" }, "on_error must be"},
		"no rule":                {func(lc *LimitsConfig) { lc.Rules = nil }, "at least one rule"},
		"zero count":             {func(lc *LimitsConfig) { lc.Rules[0].Count = 0 }, "count must be positive"},
		"zero window":            {func(lc *LimitsConfig) { lc.Rules[0].Window = 0 }, "window must be positive"},
		"key not a string":       {func(lc *LimitsConfig) { lc.Rules[0].Key = "request.auth.scopes" }, "must be a string"},
	} {
		t.Run(name, func(t *testing.T) {
			lc := good()
			tc.change(lc)
			err := (&Handler{Limits: lc}).Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
	if err := (&Handler{Limits: good()}).Validate(); err != nil {
		t.Errorf("a good config: %v", err)
	}
}

// gRPC-Web and $rpc callers get the refusal in their encodings.
func TestOverQuotaInEveryGRPCFamilyEncoding(t *testing.T) {
	h, _ := limited(t, &LimitsConfig{Rules: []LimitRule{perPrincipal(1, time.Hour)}}, nil)
	if w, _ := restCancel(t, h, "spend"); w.Code != 200 {
		t.Fatalf("the first cancel: %d", w.Code)
	}
	msg := cancelMessage(t, "operations/x")
	for _, tc := range []struct {
		name, path, contentType string
		body                    []byte
		status                  int
		grpcStatus              string
	}{
		{"gRPC-Web", lroPath, "application/grpc-web+proto", grpcFrame(msg), 200, "8"},
		{"$rpc protobuf", "/$rpc" + lroPath, "application/x-protobuf", msg, 429, ""},
		{"$rpc JSON", "/$rpc" + lroPath, "application/json", []byte(`{"name":"operations/x"}`), 429, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := request("POST", "vault.googleapis.com", tc.path, string(tc.body))
			r.Header.Set("Content-Type", tc.contentType)
			r.Header.Set("Authorization", "Bearer ya29.scoped")
			w := httptest.NewRecorder()
			if err := h.ServeHTTP(w, r, caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error {
				t.Error("forwarded")
				return nil
			})); err != nil {
				t.Fatal(err)
			}
			reason, code := reasonOf(t, w)
			if w.Code != tc.status || code != tc.grpcStatus || reason != "CANCEL_RATE_LIMITED" {
				t.Errorf("status %d grpc-status %q reason %q, want %d %q CANCEL_RATE_LIMITED", w.Code, code, reason, tc.status, tc.grpcStatus)
			}
		})
	}
}

// {http.lro_cancel.limit_rule} names the rule that refused, for access
// logs and later handlers.
func TestTheLimitRulePlaceholder(t *testing.T) {
	h, _ := limited(t, &LimitsConfig{Rules: []LimitRule{perPrincipal(1, time.Hour)}}, nil)
	var got []string
	for range 2 {
		r := request("POST", "vault.googleapis.com", "/v1/operations/x:cancel", "")
		r.Header.Set("Authorization", "Bearer ya29.scoped")
		_ = h.ServeHTTP(httptest.NewRecorder(), r, caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil }))
		repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
		v, _ := repl.GetString("http.lro_cancel.limit_rule")
		got = append(got, v)
	}
	if fmt.Sprint(got) != "[ per-principal]" {
		t.Errorf("limit_rule placeholder %q, want empty then per-principal", got)
	}
}

// A reload hands the process's local store from the old handler to the
// new: the counts go on. Once no handler uses it, it is gone.
func TestLocalCountsSurviveAReload(t *testing.T) {
	lc := func() *LimitsConfig { return &LimitsConfig{Rules: []LimitRule{perPrincipal(1, time.Hour)}} }
	old, _ := limited(t, lc(), nil)
	if w, _ := restCancel(t, old, "x"); w.Code != 200 {
		t.Fatalf("first cancel: %d", w.Code)
	}
	reloaded, _ := limited(t, lc(), nil) // provisioned before the old one is cleaned up, as Caddy reloads
	_ = old.Cleanup()
	if w, _ := restCancel(t, reloaded, "y"); w.Code != 429 {
		t.Errorf("after the reload: %d, want 429 (the count survived)", w.Code)
	}
	_ = reloaded.Cleanup()
	fresh, _ := limited(t, lc(), nil)
	if w, _ := restCancel(t, fresh, "z"); w.Code != 200 {
		t.Errorf("with no handler left in between: %d, want 200 (a new store)", w.Code)
	}
}
