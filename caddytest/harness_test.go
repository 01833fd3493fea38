// Package integration runs lro_cancel inside a real Caddy (caddytest), with
// loopback fakes standing in only for Google's servers: the API upstream and
// the tokeninfo endpoint. The tests are skipped under -short; CI runs them
// without it and fails on any skip.
package integration

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	_ "github.com/lro-cancel/lro_cancel"
)

// gatewayURL is where caddytest's Caddy serves plain HTTP. caddytest's
// client dials 127.0.0.1 whatever the host, so a URL may name any API host.
const gatewayPort = 9080

func apiURL(host, pathAndQuery string) string {
	return fmt.Sprintf("http://%s:%d%s", host, gatewayPort, pathAndQuery)
}

// upstreamRequest is what the fake Google API server received.
type upstreamRequest struct {
	Method, Host, Path, RawPath, RawQuery, RequestURI string
	Header                                            http.Header
	Body                                              []byte
}

// fakeUpstream stands in for Google's API servers.
type fakeUpstream struct {
	srv    *httptest.Server
	mu     sync.Mutex
	seen   []upstreamRequest
	status atomic.Int32
	delay  atomic.Int64 // nanoseconds before answering
	// slowPrefix, when set, limits the delay to paths containing it;
	// failPrefix makes paths containing it answer 503; resetPrefix makes
	// them reset the connection without an answer.
	slowPrefix, failPrefix, resetPrefix atomic.Value
}

func contains(v *atomic.Value, path string) (set, found bool) {
	s, _ := v.Load().(string)
	return s != "", s != "" && strings.Contains(path, s)
}

func newFakeUpstream(t testing.TB) *fakeUpstream {
	f := &fakeUpstream{}
	f.status.Store(http.StatusOK)
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.seen = append(f.seen, upstreamRequest{
			Method: r.Method, Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath,
			RawQuery: r.URL.RawQuery, RequestURI: r.RequestURI, Header: r.Header.Clone(), Body: b,
		})
		f.mu.Unlock()
		if _, found := contains(&f.resetPrefix, r.URL.Path); found {
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				if tcp, ok := conn.(*net.TCPConn); ok {
					_ = tcp.SetLinger(0) // RST, not FIN
				}
				conn.Close()
			}
			return
		}
		if set, found := contains(&f.slowPrefix, r.URL.Path); found || !set {
			time.Sleep(time.Duration(f.delay.Load()))
		}
		status := int(f.status.Load())
		if _, found := contains(&f.failPrefix, r.URL.Path); found {
			status = http.StatusServiceUnavailable
		}
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, "{}\n")
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeUpstream) addr() string { return strings.TrimPrefix(f.srv.URL, "http://") }

func (f *fakeUpstream) requests() []upstreamRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]upstreamRequest(nil), f.seen...)
}

func (f *fakeUpstream) reset() {
	f.mu.Lock()
	f.seen = nil
	f.mu.Unlock()
}

// tokenGrant is what the fake tokeninfo says of a token.
type tokenGrant struct {
	Email, Sub, Scope string
	ExpiresIn         int
}

// fakeTokenInfo stands in for https://oauth2.googleapis.com/tokeninfo,
// answering as Google does: numbers as strings, 400 invalid_token for any
// unknown token.
type fakeTokenInfo struct {
	srv    *httptest.Server
	mu     sync.Mutex
	grants map[string]tokenGrant
	calls  atomic.Int64
	down   atomic.Bool
	delay  atomic.Int64 // nanoseconds
}

func newFakeTokenInfo(t testing.TB, grants map[string]tokenGrant) *fakeTokenInfo {
	f := &fakeTokenInfo{grants: grants}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.calls.Add(1)
		time.Sleep(time.Duration(f.delay.Load()))
		if f.down.Load() {
			http.Error(w, `{"error":"backend_error"}`, http.StatusServiceUnavailable)
			return
		}
		token := r.PostFormValue("access_token")
		f.mu.Lock()
		g, ok := f.grants[token]
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		if !ok {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"error":"invalid_token","error_description":"Invalid Value"}`)
			return
		}
		exp := g.ExpiresIn
		if exp == 0 {
			exp = 3599
		}
		_ = json.NewEncoder(w).Encode(map[string]string{
			"azp": "client.apps.googleusercontent.com", "aud": "client.apps.googleusercontent.com",
			"sub": g.Sub, "scope": g.Scope, "email": g.Email, "email_verified": "true",
			"expires_in": fmt.Sprint(exp), "exp": fmt.Sprint(time.Now().Unix() + int64(exp)),
			"access_type": "online",
		})
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeTokenInfo) url() string { return f.srv.URL + "/tokeninfo" }

// grant makes the fake tokeninfo know one more token.
func (f *fakeTokenInfo) grant(token string, g tokenGrant) {
	f.mu.Lock()
	f.grants[token] = g
	f.mu.Unlock()
}

// Scopes used across the tests.
const (
	scopeVault    = "https://www.googleapis.com/auth/ediscovery"
	scopeAndroid  = "https://www.googleapis.com/auth/androidmanagement"
	scopeCloud    = "https://www.googleapis.com/auth/cloud-platform"
	scopeEmail    = "https://www.googleapis.com/auth/userinfo.email"
	tokenVault    = "ya29.a0-vault-token-0001"
	tokenAndroid  = "ya29.a0-android-token-0002"
	tokenCloud    = "ya29.a0-cloud-token-0003"
	tokenEmail    = "ya29.a0-email-only-token-0004"
	tokenUnknown  = "ya29.a0-revoked-token-0005"
	principalA    = "alice@example.com"
	principalB    = "bob@example.com"
	principalSvc  = "svc@project.iam.gserviceaccount.com"
	principalNone = "carol@example.com"
)

func defaultGrants() map[string]tokenGrant {
	return map[string]tokenGrant{
		tokenVault:   {Email: principalA, Sub: "1001", Scope: scopeVault + " " + scopeEmail},
		tokenAndroid: {Email: principalB, Sub: "1002", Scope: scopeAndroid},
		tokenCloud:   {Email: principalSvc, Sub: "1003", Scope: scopeCloud},
		tokenEmail:   {Email: principalNone, Sub: "1004", Scope: scopeEmail},
	}
}

// gateway is one running Caddy configuration with its fakes and log files.
type gateway struct {
	t         *testing.T
	tester    *caddytest.Tester
	upstream  *fakeUpstream
	tokeninfo *fakeTokenInfo
	dir       string
}

// gatewayOptions shape the Caddyfile a test runs.
type gatewayOptions struct {
	// directive is the lro_cancel block's body (subdirectives); the
	// tokeninfo line pointing at the fake is added unless it names one.
	directive string
	// servers holds extra options of the global servers block.
	servers string
	// logs holds extra global log blocks.
	logs string
	// site replaces the whole site body when set; UPSTREAM stands for the
	// upstream's address and TOKENINFO for the tokeninfo URL.
	site string
}

// credentialFilter is the log encoder the README prescribes: Caddy logs a
// request's URI before any handler runs, so query credentials are deleted
// from Caddy's own logs here.
const credentialFilter = `format filter {
			wrap json
			request>uri query {
				delete access_token
				delete oauth_token
				delete bearer_token
				delete key
				delete $access_token
				delete $oauth_token
				delete $bearer_token
				delete $key
			}
			request>headers>X-Goog-Api-Key delete
		}`

func startGateway(t *testing.T, opts gatewayOptions) *gateway {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs a real Caddy")
	}
	g := &gateway{
		t:         t,
		upstream:  newFakeUpstream(t),
		tokeninfo: newFakeTokenInfo(t, defaultGrants()),
		dir:       t.TempDir(),
	}
	g.tester = caddytest.NewTester(t)
	g.tester.InitServer(g.config(opts), "caddyfile")
	return g
}

// config is the gateway's Caddyfile for opts.
func (g *gateway) config(opts gatewayOptions) string {
	site := opts.site
	if site == "" {
		directive := opts.directive
		if !strings.Contains(directive, "tokeninfo") && !strings.Contains(directive, "introspection") {
			directive = "tokeninfo TOKENINFO\n" + directive
		}
		site = "lro_cancel {\n" + directive + "\n}\nreverse_proxy UPSTREAM"
	}
	site = strings.NewReplacer("UPSTREAM", g.upstream.addr(), "TOKENINFO", g.tokeninfo.url()).Replace(site)
	return fmt.Sprintf(`{
	admin localhost:2999
	http_port %[1]d
	https_port 9443
	grace_period 1ns
	skip_install_trust
	servers {
		%[5]s
	}
	log default {
		output file %[2]s/default.log
		%[4]s
		exclude http.handlers.lro_cancel.audit http.log.access
	}
	log audit {
		output file %[2]s/audit.log
		format json
		include http.handlers.lro_cancel.audit
	}
	%[6]s
}

:%[1]d {
	log {
		output file %[2]s/access.log
		%[4]s
	}
	%[3]s
}
`, gatewayPort, g.dir, site, credentialFilter, opts.servers, opts.logs)
}

// do sends one request through the gateway and returns the response and
// its body.
func (g *gateway) do(req *http.Request) (*http.Response, []byte) {
	g.t.Helper()
	resp, err := g.tester.Client.Do(req)
	if err != nil {
		g.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		g.t.Fatalf("reading response: %v", err)
	}
	return resp, b
}

func newRequest(t testing.TB, method, url, body string, header ...string) *http.Request {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	return req
}

// record is one audit record as written to the audit log.
type record map[string]any

func (r record) str(k string) string {
	s, _ := r[k].(string)
	return s
}

func (r record) num(k string) int {
	f, _ := r[k].(float64)
	return int(f)
}

// readRecords returns the audit records written so far.
func (g *gateway) readRecords() []record {
	g.t.Helper()
	return readRecordFile(g.t, filepath.Join(g.dir, "audit.log"))
}

// readRecordFile reads a file of JSON records (audit log or journal), in
// order; every line must be JSON. A missing file holds none.
func readRecordFile(t testing.TB, path string) []record {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []record
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%s: a line is not JSON: %q: %v", path, sc.Text(), err)
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// waitRecords waits (bounded) until at least n audit records were written
// and returns them all; a record is written as the request finishes, which
// can be a moment after the client has the response.
func (g *gateway) waitRecords(n int) []record {
	g.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		recs := g.readRecords()
		if len(recs) >= n || time.Now().After(deadline) {
			if len(recs) < n {
				g.t.Fatalf("got %d audit records, want at least %d", len(recs), n)
			}
			return recs
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// recordFor finds the completed record of an audit id.
func (g *gateway) recordFor(auditID string) record {
	g.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, r := range g.readRecords() {
			if r.str("audit_id") == auditID && r.str("stage") == "completed" {
				return r
			}
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("no completed audit record for audit id %q", auditID)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// logs returns everything the gateway wrote to its log files.
func (g *gateway) logs() []byte {
	g.t.Helper()
	var all bytes.Buffer
	for _, name := range []string{"default.log", "access.log", "audit.log"} {
		b, err := os.ReadFile(filepath.Join(g.dir, name))
		if err != nil && !os.IsNotExist(err) {
			g.t.Fatal(err)
		}
		all.Write(b)
	}
	return all.Bytes()
}

// googleError is the decoded error envelope.
type googleError struct {
	Error struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Status  string `json:"status"`
		Details []struct {
			Type            string            `json:"@type"`
			Reason          string            `json:"reason"`
			Domain          string            `json:"domain"`
			Metadata        map[string]string `json:"metadata"`
			FieldViolations []struct {
				Field       string `json:"field"`
				Description string `json:"description"`
			} `json:"fieldViolations"`
		} `json:"details"`
	} `json:"error"`
}

func decodeError(t testing.TB, b []byte) googleError {
	t.Helper()
	var e googleError
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("body is not Google's error envelope: %q: %v", b, err)
	}
	return e
}

func (e googleError) reason() string {
	for _, d := range e.Error.Details {
		if d.Type == "type.googleapis.com/google.rpc.ErrorInfo" {
			return d.Reason
		}
	}
	return ""
}
