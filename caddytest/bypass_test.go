package integration

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Issue 10, "No way around it over REST": Google's front end takes a cancel
// in more shapes than the plain REST POST, and each one is a way around a
// gateway that governs only that. Every attempt below is sent once with a
// token that lacks the API's scope and once with one that holds it; it must
// be answered as the cancel it hides would be (or refused when the gateway
// cannot read it for certain), reach the upstream only when allowed and then
// exactly as sent, and leave exactly one completed record per cancel.
func TestBypassAttemptsAreGovernedAsTheCancelTheyHide(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	for _, c := range bypassCases() {
		runs := []struct {
			name, token string
			want        bypassAnswer
		}{
			{"token without the scope", tokenEmail, c.unscoped},
			{"token with the scope", c.scopedToken(), c.withScope},
		}
		for _, run := range runs {
			t.Run(c.name+"/"+run.name, func(t *testing.T) {
				checkBypass(t, g, c, run.token, run.want)
			})
		}
	}
}

// bypassCase is one attempt to cancel past the gateway.
type bypassCase struct {
	name string
	// host is the API the request is sent to; vault.googleapis.com when empty.
	host         string
	method, path string
	// header holds the request's headers besides the caller's credential,
	// which every run sends as Authorization.
	header []string
	// body is the request body for the run's token; none when nil.
	body func(token string) string
	// scoped is the token that holds the API's scope: tokenVault when empty.
	scoped string
	// cancels are the governed cancels the request holds, in order, each
	// with the record it must get. None: the request is no cancel and
	// passes untouched and unrecorded.
	cancels []bypassCancel
	// unscoped and withScope are the answers to each run.
	unscoped, withScope bypassAnswer
}

func (c bypassCase) apiHost() string {
	if c.host == "" {
		return vaultHost
	}
	return c.host
}

func (c bypassCase) scopedToken() string {
	if c.scoped == "" {
		return tokenVault
	}
	return c.scoped
}

// bypassCancel is one governed cancel and what its record must say.
type bypassCancel struct {
	// part is the cancel's 1-based position in a batch, whose record has
	// the audit id "<Audit-Id>#<part>" and protocol batch; 0 for a
	// request that is no batch (protocol http).
	part int
	// method and operation are not checked when empty: the gateway cannot
	// read them from an ambiguous path.
	service, method, operation string
	// principal is checked when set: whose credential the cancel ran under.
	principal string
}

// inPart places a cancel at a batch position, under the credential of
// principal when it is not empty.
func (c bypassCancel) inPart(n int, principal string) bypassCancel {
	c.part, c.principal = n, principal
	return c
}

// bypassAnswer is what one run must get.
type bypassAnswer struct {
	// status is the HTTP status; 200 means forwarded exactly as sent.
	status int
	// reason is the ErrorInfo reason; any when empty.
	reason string
	// message is a part of the error message; any when empty.
	message string
	// part is the ErrorInfo metadata "part" of a refused batch: the
	// refused part's Content-ID, else its position.
	part string
	// decision is every cancel's recorded decision, decisions one per
	// cancel where they differ. "a|b" accepts either; "!forwarded" any
	// decision but forwarded.
	decision  string
	decisions []string
	// unread marks a batch the gateway cannot read: refused whole, with
	// at least one record, none of them itemised.
	unread bool
	// untouched marks a request that is no cancel: forwarded, unrecorded.
	untouched bool
}

func forwarded() bypassAnswer { return bypassAnswer{status: 200, decision: "forwarded"} }

func untouched() bypassAnswer { return bypassAnswer{status: 200, untouched: true} }

func scopeRefused(part string) bypassAnswer {
	return bypassAnswer{status: 403, reason: "ACCESS_TOKEN_SCOPE_INSUFFICIENT", part: part, decision: "scope_insufficient"}
}

func overrideRefused(part string) bypassAnswer {
	return bypassAnswer{status: 400, reason: "METHOD_OVERRIDE_REFUSED", part: part, decision: "invalid_request"}
}

func ambiguousPath() bypassAnswer {
	return bypassAnswer{status: 400, reason: "AMBIGUOUS_PATH", decision: "invalid_path"}
}

// ambiguousRequest is the reader's refusal of what reads two ways.
func ambiguousRequest(part string) bypassAnswer {
	return bypassAnswer{status: 400, reason: "AMBIGUOUS_REQUEST", part: part, decision: "ambiguous_request"}
}

// unbindable is Google's answer to a query parameter that no field of the
// request takes; the pipeline's step is the request's, so either decision.
func unbindable(part string) bypassAnswer {
	return bypassAnswer{status: 400, message: "Cannot bind query parameter", part: part, decision: "invalid_request|invalid_body"}
}

func unreadableBatch() bypassAnswer { return bypassAnswer{status: 400, unread: true} }

// perCancel sets one decision per cancel on an answer.
func (a bypassAnswer) perCancel(decisions ...string) bypassAnswer {
	a.decisions = decisions
	return a
}

const vaultHost = "vault.googleapis.com"

// The cancels the attempts hide.
var (
	vaultX = bypassCancel{service: vaultHost, method: "vault.operations.cancel", operation: "operations/x"}
	vaultY = bypassCancel{service: vaultHost, method: "vault.operations.cancel", operation: "operations/y"}
	// The outliers: no name variable, a literal cancel segment.
	storageO   = bypassCancel{service: "storage.googleapis.com", method: "storage.buckets.operations.cancel", operation: "b/bkt/operations/o"}
	sqlO       = bypassCancel{service: "sqladmin.googleapis.com", method: "sql.operations.cancel", operation: "projects/p/operations/o"}
	containerO = bypassCancel{service: "container.googleapis.com", method: "container.projects.locations.operations.cancel", operation: "projects/p/locations/l/operations/o"}
)

const (
	vaultCancelX  = "/v1/operations/x:cancel"
	sqlCancelO    = "/v1/projects/p/operations/o/cancel"
	batchBoundary = "batch_7d1f4c"
)

var batchHeader = []string{"Content-Type", "multipart/mixed; boundary=" + batchBoundary}

func fixed(s string) func(string) string { return func(string) string { return s } }

// overridden is a vault cancel path sent with a method override header:
// refused unread, with either token.
func overridden(name, method, header, value string) bypassCase {
	return bypassCase{name: name, method: method, path: vaultCancelX, header: []string{header, value},
		cancels: []bypassCancel{vaultX}, unscoped: overrideRefused(""), withScope: overrideRefused("")}
}

// governed is a cancel answered as the plain REST one: 403 without the
// scope, forwarded with it.
func governed(name, host, path, scoped string, cancel bypassCancel) bypassCase {
	return bypassCase{name: name, host: host, method: "POST", path: path, scoped: scoped,
		cancels: []bypassCancel{cancel}, unscoped: scopeRefused(""), withScope: forwarded()}
}

// unboundQuery is a vault cancel whose query holds a parameter no field
// takes: the scope is checked first, then the request.
func unboundQuery(name, query string) bypassCase {
	return bypassCase{name: name, method: "POST", path: vaultCancelX + "?" + query,
		cancels: []bypassCancel{vaultX}, unscoped: scopeRefused(""), withScope: unbindable("")}
}

// inBatch makes c a POST to path of parts as a multipart/mixed batch.
func inBatch(c bypassCase, path string, parts ...string) bypassCase {
	c.method, c.path = "POST", path
	c.header = append(slices.Clone(batchHeader), c.header...)
	body := multipartMixed(batchBoundary, parts...)
	c.body = fixed(body)
	return c
}

func bypassCases() []bypassCase {
	cancelX := embedded("POST "+vaultCancelX+" HTTP/1.1", "")
	return []bypassCase{
		// The plain REST cancel, for comparison.
		governed("plain REST cancel", "", vaultCancelX, "", vaultX),

		// Method override.
		overridden("GET overridden to POST", "GET", "X-HTTP-Method-Override", "POST"),
		overridden("PUT overridden to POST", "PUT", "X-HTTP-Method-Override", "POST"),
		overridden("PATCH overridden to POST", "PATCH", "X-HTTP-Method-Override", "POST"),
		overridden("DELETE overridden to POST", "DELETE", "X-HTTP-Method-Override", "POST"),
		overridden("POST overridden to POST", "POST", "X-HTTP-Method-Override", "POST"),
		overridden("GET overridden with X-HTTP-Method", "GET", "X-HTTP-Method", "POST"),
		overridden("GET overridden with X-Method-Override", "GET", "X-Method-Override", "POST"),
		overridden("override value in lower case", "GET", "X-HTTP-Method-Override", "post"),
		overridden("override value in mixed case", "PUT", "X-HTTP-Method-Override", "Post"),
		overridden("POST cancel overridden to GET, which is no cancel on vault", "POST", "X-HTTP-Method-Override", "GET"),
		overridden("POST cancel overridden to GET with X-Method-Override", "POST", "X-Method-Override", "GET"),
		{name: "override on an operation get, which is no cancel under POST either", method: "GET", path: "/v1/operations/x",
			header: []string{"X-HTTP-Method-Override", "POST"}, unscoped: untouched(), withScope: untouched()},
		{name: "override on a path that is no cancel under any method", method: "PUT", path: "/v1/matters/m",
			header: []string{"X-HTTP-Method-Override", "POST"}, unscoped: untouched(), withScope: untouched()},

		// Alias hosts are governed as the API they alias.
		governed("APIs Explorer alias content-vault", "content-vault.googleapis.com", vaultCancelX, "", vaultX),
		governed("web console alias vault.clients6.google.com", "vault.clients6.google.com", vaultCancelX, "", vaultX),
		governed("Private Service Connect alias vault-corp.p.googleapis.com", "vault-corp.p.googleapis.com", vaultCancelX, "", vaultX),

		// Query parameters: only Google's system parameters and the method's own.
		unboundQuery("name in the query", "name=operations/other"),
		unboundQuery("request field in the query", "force=true"),
		unboundQuery("unknown parameter in the query", "foo=bar"),
		unboundQuery("unknown parameter beside a system one", "alt=json&foo=bar"),
		governed("system parameter alt", "", vaultCancelX+"?alt=json", "", vaultX),
		governed("system parameter prettyPrint", "", vaultCancelX+"?prettyPrint=false", "", vaultX),
		governed("system parameter $.xgafv", "", vaultCancelX+"?$.xgafv=2", "", vaultX),
		governed("system parameter fields", "", vaultCancelX+"?fields=done", "", vaultX),
		governed("system parameter quotaUser", "", vaultCancelX+"?quotaUser=x", "", vaultX),
		governed("system parameter in its $ form", "", vaultCancelX+"?$alt=json", "", vaultX),
		governed("sqladmin's own location parameter", "sqladmin.googleapis.com", sqlCancelO+"?location=us-central1", tokenCloud, sqlO),

		// Encoded slashes and other ambiguous paths.
		{name: "encoded slash before the name", method: "POST", path: "/v1/operations%2Fx:cancel",
			cancels: []bypassCancel{{service: vaultHost}}, unscoped: ambiguousPath(), withScope: ambiguousPath()},
		{name: "lower-case encoded slash before the name", method: "POST", path: "/v1/operations%2fx:cancel",
			cancels: []bypassCancel{{service: vaultHost}}, unscoped: ambiguousPath(), withScope: ambiguousPath()},
		{name: "encoded slash in sqladmin's literal path", host: "sqladmin.googleapis.com", method: "POST",
			path: "/v1/projects/p/operations%2Fo/cancel", scoped: tokenCloud,
			cancels: []bypassCancel{{service: "sqladmin.googleapis.com"}}, unscoped: ambiguousPath(), withScope: ambiguousPath()},
		{name: "dot-dot segment", method: "POST", path: "/v1/operations/../operations/x:cancel",
			cancels: []bypassCancel{{service: vaultHost}}, unscoped: ambiguousPath(), withScope: ambiguousPath()},
		governed("encoded slash inside a name that matches", "", "/v1/operations/a%2Fb:cancel", "",
			bypassCancel{service: vaultHost, method: "vault.operations.cancel", operation: "operations/a%2Fb"}),

		// HTTP batch.
		inBatch(bypassCase{name: "batch of one REST cancel",
			cancels: []bypassCancel{vaultX.inPart(1, "")}, unscoped: scopeRefused("cancel-x"), withScope: forwarded()},
			"/batch", httpPart("cancel-x", cancelX)),
		inBatch(bypassCase{name: "batch on the legacy per-API batch path",
			cancels: []bypassCancel{vaultX.inPart(1, "")}, unscoped: scopeRefused("1"), withScope: forwarded()},
			"/batch/vault/v1", httpPart("", cancelX)),
		{name: "batch as Google's Python client writes it", method: "POST", path: "/batch",
			header: []string{"Content-Type", `multipart/mixed; boundary="` + pythonBoundary + `"`}, body: pythonBatch,
			cancels: []bypassCancel{
				{part: 1, service: vaultHost, method: "vault.operations.cancel", operation: "operations/export-1"},
				{part: 2, service: vaultHost, method: "vault.operations.cancel", operation: "operations/export-2"},
			},
			unscoped: scopeRefused("<" + pythonBaseID + " + 1>"), withScope: forwarded()},
		{name: "batch as Google's Java client writes it", method: "POST", path: "/batch",
			header: []string{"Content-Type", "multipart/mixed; boundary=" + javaBoundary}, body: javaBatch,
			cancels:  []bypassCancel{vaultX.inPart(1, ""), vaultY.inPart(2, "")},
			unscoped: scopeRefused("1"), withScope: forwarded()},
		inBatch(bypassCase{name: "part's own scoped credential wins over the outer one",
			cancels:  []bypassCancel{vaultX.inPart(1, principalA)},
			unscoped: forwarded(), withScope: forwarded()},
			"/batch", httpPart("own", embedded("POST "+vaultCancelX+" HTTP/1.1\nAuthorization: Bearer "+tokenVault, ""))),
		inBatch(bypassCase{name: "part's own unscoped credential wins over the outer one",
			cancels:  []bypassCancel{vaultX.inPart(1, principalNone)},
			unscoped: scopeRefused("own"), withScope: scopeRefused("own")},
			"/batch", httpPart("own", embedded("POST "+vaultCancelX+" HTTP/1.1\nAuthorization: Bearer "+tokenEmail, ""))),
		inBatch(bypassCase{name: "second of two cancels carries its own token without the scope",
			cancels:  []bypassCancel{vaultX.inPart(1, ""), vaultY.inPart(2, principalNone)},
			unscoped: scopeRefused("a"), withScope: scopeRefused("b").perCancel("!forwarded", "scope_insufficient")},
			"/batch", httpPart("a", cancelX),
			httpPart("b", embedded("POST /v1/operations/y:cancel HTTP/1.1\nAuthorization: Bearer "+tokenEmail, ""))),
		inBatch(bypassCase{name: "batch part with a method override",
			cancels: []bypassCancel{vaultX.inPart(1, "")}, unscoped: overrideRefused("1"), withScope: overrideRefused("1")},
			"/batch", httpPart("", embedded("GET "+vaultCancelX+" HTTP/1.1\nX-HTTP-Method-Override: POST", ""))),
		inBatch(bypassCase{name: "cancel as the second of two parts",
			cancels: []bypassCancel{vaultX.inPart(2, "")}, unscoped: scopeRefused("2"), withScope: forwarded()},
			"/batch", httpPart("", embedded("GET /v1/operations/y HTTP/1.1", "")), httpPart("", cancelX)),
		inBatch(bypassCase{name: "batch part with a $rpc cancel",
			cancels: []bypassCancel{vaultX.inPart(1, "")}, unscoped: scopeRefused("rpc"), withScope: forwarded()},
			"/batch", httpPart("rpc", embedded("POST /$rpc"+lroCancelMethod+" HTTP/1.1\nContent-Type: application/json", `{"name":"operations/x"}`))),
		inBatch(bypassCase{name: "outer query parameter applies to every part",
			cancels: []bypassCancel{vaultX.inPart(1, "")}, unscoped: scopeRefused("1"), withScope: unbindable("1")},
			"/batch?foo=bar", httpPart("", cancelX)),
		inBatch(bypassCase{name: "outer system parameter applies to every part",
			cancels: []bypassCancel{vaultX.inPart(1, "")}, unscoped: scopeRefused("1"), withScope: forwarded()},
			"/batch?alt=json", httpPart("", cancelX)),
		// A part naming another API than its batch reads two ways (which
		// API's batch governs it?), except on the global batch endpoint.
		inBatch(bypassCase{name: "part with an absolute URL to another API", scoped: tokenCloud,
			cancels: []bypassCancel{sqlO.inPart(1, "")}, unscoped: ambiguousRequest("1"), withScope: ambiguousRequest("1")},
			"/batch", httpPart("", embedded("POST https://sqladmin.googleapis.com"+sqlCancelO+" HTTP/1.1", ""))),
		inBatch(bypassCase{name: "part with a Host naming another API", scoped: tokenCloud,
			cancels: []bypassCancel{sqlO.inPart(1, "")}, unscoped: ambiguousRequest("1"), withScope: ambiguousRequest("1")},
			"/batch", httpPart("", embedded("POST "+sqlCancelO+" HTTP/1.1\nHost: sqladmin.googleapis.com", ""))),
		inBatch(bypassCase{name: "part naming its API on the global batch endpoint", host: "www.googleapis.com", scoped: tokenCloud,
			cancels: []bypassCancel{sqlO.inPart(1, "")}, unscoped: scopeRefused("1"), withScope: forwarded()},
			"/batch", httpPart("", embedded("POST https://sqladmin.googleapis.com"+sqlCancelO+" HTTP/1.1", ""))),
		inBatch(bypassCase{name: "storage cancel via storage's batch path", host: "storage.googleapis.com", scoped: tokenCloud,
			cancels: []bypassCancel{storageO.inPart(1, "")}, unscoped: scopeRefused("1"), withScope: forwarded()},
			"/batch/storage/v1", httpPart("", embedded("POST /storage/v1/b/bkt/operations/o/cancel HTTP/1.1", ""))),
		inBatch(bypassCase{name: "sqladmin cancel in a batch", host: "sqladmin.googleapis.com", scoped: tokenCloud,
			cancels: []bypassCancel{sqlO.inPart(1, "")}, unscoped: scopeRefused("1"), withScope: forwarded()},
			"/batch", httpPart("", embedded("POST "+sqlCancelO+" HTTP/1.1", ""))),
		inBatch(bypassCase{name: "container cancel in a batch", host: "container.googleapis.com", scoped: tokenCloud,
			cancels: []bypassCancel{containerO.inPart(1, "")}, unscoped: scopeRefused("1"), withScope: forwarded()},
			"/batch", httpPart("", embedded("POST /v1/projects/p/locations/l/operations/o:cancel HTTP/1.1\nContent-Type: application/json", "{}"))),
		inBatch(bypassCase{name: "batch without a cancel", unscoped: untouched(), withScope: untouched()},
			"/batch", httpPart("1", embedded("GET /v1/matters/m HTTP/1.1", "")),
			httpPart("2", embedded("GET /v1/operations/x HTTP/1.1", ""))),

		// Batches the gateway cannot read for certain.
		{name: "batch without its closing boundary", method: "POST", path: "/batch", header: batchHeader,
			body:     fixed("--" + batchBoundary + "\r\n" + httpPart("1", cancelX)),
			unscoped: unreadableBatch(), withScope: unreadableBatch()},
		{name: "batch whose Content-Type names no boundary", method: "POST", path: "/batch",
			header:   []string{"Content-Type", "multipart/mixed"},
			body:     fixed(multipartMixed(batchBoundary, httpPart("1", cancelX))),
			unscoped: unreadableBatch(), withScope: unreadableBatch()},
		inBatch(bypassCase{name: "nested multipart part", unscoped: unreadableBatch(), withScope: unreadableBatch()},
			"/batch", "Content-Type: multipart/mixed; boundary=inner\r\n\r\n"+multipartMixed("inner", httpPart("1", cancelX))),
		inBatch(bypassCase{name: "nested batch request", unscoped: unreadableBatch(), withScope: unreadableBatch()},
			"/batch", httpPart("1", embedded("POST /batch HTTP/1.1\nContent-Type: multipart/mixed; boundary=inner",
				multipartMixed("inner", httpPart("1", cancelX))))),
		inBatch(bypassCase{name: "base64 part", unscoped: unreadableBatch(), withScope: unreadableBatch()},
			"/batch", "Content-Type: application/http\r\nContent-Transfer-Encoding: base64\r\n\r\n"+
				base64.StdEncoding.EncodeToString([]byte(cancelX))),
		inBatch(bypassCase{name: "quoted-printable part", unscoped: unreadableBatch(), withScope: unreadableBatch()},
			"/batch", "Content-Type: application/http\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"+
				embedded("POST /v1/operations/x=3Acancel HTTP/1.1", "")),
		// A request line without a version is what Google's .NET client
		// writes, and is read; one naming HTTP/2 inside a batch is not.
		inBatch(bypassCase{name: "part with a bad request line", unscoped: unreadableBatch(), withScope: unreadableBatch()},
			"/batch", httpPart("1", embedded("POST "+vaultCancelX+" HTTP/2.0", ""))),
		{name: "batch over 10 MiB with its cancel last", method: "POST", path: "/batch", header: batchHeader,
			body: fixed(oversizedBatch()), unscoped: unreadableBatch(), withScope: unreadableBatch()},
		{name: "batch of 1001 parts with its cancel last", method: "POST", path: "/batch", header: batchHeader,
			body: fixed(crowdedBatch(1001)), unscoped: unreadableBatch(), withScope: unreadableBatch()},
	}
}

// checkBypass sends one run of an attempt and checks what its caller, the
// upstream and the audit log got.
func checkBypass(t *testing.T, g *gateway, c bypassCase, token string, want bypassAnswer) {
	g.upstream.reset()
	auditLog := filepath.Join(g.dir, "audit.log")
	recordsBefore := completed(readRecordFile(t, auditLog))
	var body string
	if c.body != nil {
		body = c.body(token)
	}
	req := newRequest(t, c.method, apiURL(c.apiHost(), c.path), body, append(bearer(token), c.header...)...)
	sent := req.Clone(req.Context())
	resp, got := exchange(t, g, req)
	reqs := g.upstream.requests()
	if resp.StatusCode != want.status {
		t.Fatalf("status %d, want %d; the upstream got %d request(s); body %.300s", resp.StatusCode, want.status, len(reqs), got)
	}
	if want.status == http.StatusOK {
		checkForwardedAsSent(t, reqs, sent, body)
	} else {
		if len(reqs) != 0 {
			t.Errorf("the refused request reached the upstream %d time(s)", len(reqs))
		}
		checkEnvelope(t, resp, got, want)
	}

	id := resp.Header.Get("Audit-Id")
	if want.untouched {
		if id != "" {
			t.Errorf("a request that is no cancel has an Audit-Id %q", id)
		}
		time.Sleep(50 * time.Millisecond)
		if n := completed(readRecordFile(t, auditLog)) - recordsBefore; n != 0 {
			t.Errorf("a request that is no cancel wrote %d record(s)", n)
		}
		return
	}
	if id == "" {
		t.Fatal("no Audit-Id header: the gateway did not govern the request")
	}
	if want.unread {
		for _, r := range waitCompleted(t, auditLog, id, 1) {
			if r.str("protocol") != "batch" || r.str("decision") == "forwarded" {
				t.Errorf("record %v, want protocol batch and a refusal", r)
			}
		}
		return
	}
	recs := waitCompleted(t, auditLog, id, len(c.cancels))
	if len(recs) != len(c.cancels) {
		t.Errorf("%d completed records under audit id %s, want %d (one per cancel): %v", len(recs), id, len(c.cancels), recs)
	}
	for i, cancel := range c.cancels {
		checkCancelRecord(t, recs, id, cancel, want, i, resp.StatusCode)
	}
}

// checkForwardedAsSent checks that the upstream got the request exactly as
// the client sent it: method, target, Host, headers and body.
func checkForwardedAsSent(t *testing.T, reqs []upstreamRequest, sent *http.Request, body string) {
	t.Helper()
	if len(reqs) != 1 {
		t.Fatalf("the upstream got %d requests, want exactly the client's", len(reqs))
	}
	r := reqs[0]
	if r.Method != sent.Method || r.RequestURI != sent.URL.RequestURI() || r.Host != sent.Host {
		t.Errorf("the upstream got %s %s (Host %s), want %s %s (Host %s)", r.Method, r.RequestURI, r.Host, sent.Method, sent.URL.RequestURI(), sent.Host)
	}
	if string(r.Body) != body {
		t.Errorf("the upstream got a body of %d bytes, want the client's %d bytes unchanged", len(r.Body), len(body))
	}
	for k, v := range sent.Header {
		if got := r.Header.Values(k); !slices.Equal(got, v) {
			t.Errorf("the upstream got %s %q, want %q", k, got, v)
		}
	}
}

// checkEnvelope checks a refusal as Google's JSON error envelope.
func checkEnvelope(t *testing.T, resp *http.Response, b []byte, want bypassAnswer) {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=UTF-8" {
		t.Errorf("Content-Type %q, want Google's JSON envelope", ct)
	}
	e := decodeError(t, b)
	if e.Error.Code != want.status || e.Error.Status != statusName[want.status] {
		t.Errorf("error %d %s, want %d %s: %s", e.Error.Code, e.Error.Status, want.status, statusName[want.status], b)
	}
	if want.message != "" && !strings.Contains(e.Error.Message, want.message) {
		t.Errorf("message %q, want it to say %q", e.Error.Message, want.message)
	}
	reason, domain, metadata := errorInfo(e)
	if want.reason != "" && reason != want.reason {
		t.Errorf("ErrorInfo reason %q, want %q: %s", reason, want.reason, b)
	}
	if d, ok := reasonDomain[want.reason]; ok && domain != d {
		t.Errorf("ErrorInfo domain %q, want %q", domain, d)
	}
	if want.part != "" {
		// A Content-ID is named as written, or without its angle brackets.
		if p := metadata["part"]; p != want.part && p != strings.Trim(want.part, "<>") {
			t.Errorf("ErrorInfo metadata part %q, want %q", p, want.part)
		}
	}
}

// checkCancelRecord checks the record of the n-th cancel of a request.
func checkCancelRecord(t *testing.T, recs []record, id string, c bypassCancel, want bypassAnswer, n, status int) {
	t.Helper()
	auditID, protocol := id, "http"
	if c.part > 0 {
		auditID, protocol = id+"#"+strconv.Itoa(c.part), "batch"
	}
	i := slices.IndexFunc(recs, func(r record) bool { return r.str("audit_id") == auditID })
	if i < 0 {
		t.Errorf("no completed record with audit id %s", auditID)
		return
	}
	fields := map[string]any{"protocol": protocol, "service": c.service}
	if c.method != "" {
		fields["method"], fields["operation"] = c.method, c.operation
	}
	if c.principal != "" {
		fields["principal"] = c.principal
	}
	if c.part == 0 {
		fields["status"] = status
	}
	assertRecord(t, recs[i], fields)
	decision := want.decision
	if want.decisions != nil {
		decision = want.decisions[n]
	}
	if got := recs[i].str("decision"); !decisionMatches(got, decision) {
		t.Errorf("record %s: decision %q, want %s", auditID, got, decision)
	}
}

// decisionMatches reads a wanted decision: "a|b" accepts either,
// "!forwarded" any decision but forwarded.
func decisionMatches(got, want string) bool {
	if not, ok := strings.CutPrefix(want, "!"); ok {
		return got != "" && got != not
	}
	return slices.Contains(strings.Split(want, "|"), got)
}

// exchange sends one request through the gateway, failing the subtest
// (not the whole table) when it cannot.
func exchange(t *testing.T, g *gateway, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := g.tester.Client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	return resp, b
}

// waitCompleted waits (bounded) until at least n completed records carry
// the audit id or one of its batch parts' ids (<id>#<n>), and returns them.
func waitCompleted(t *testing.T, path, id string, n int) []record {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var recs []record
		for _, r := range readRecordFile(t, path) {
			if a := r.str("audit_id"); r.str("stage") == "completed" && (a == id || strings.HasPrefix(a, id+"#")) {
				recs = append(recs, r)
			}
		}
		if len(recs) >= n {
			return recs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d completed records under audit id %s within 5s, want %d", len(recs), id, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// statusName is google.rpc.Code's name of the HTTP statuses refusals use.
var statusName = map[int]string{400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED"}

// reasonDomain is the ErrorInfo domain of the reasons the table names.
var reasonDomain = map[string]string{
	"ACCESS_TOKEN_SCOPE_INSUFFICIENT": "googleapis.com",
	"METHOD_OVERRIDE_REFUSED":         "lro-cancel.gateway",
	"AMBIGUOUS_PATH":                  "lro-cancel.gateway",
}

func errorInfo(e googleError) (reason, domain string, metadata map[string]string) {
	for _, d := range e.Error.Details {
		if d.Type == "type.googleapis.com/google.rpc.ErrorInfo" {
			return d.Reason, d.Domain, d.Metadata
		}
	}
	return "", "", nil
}

// multipartMixed joins parts into a multipart/mixed body, CRLF-delimited.
func multipartMixed(boundary string, parts ...string) string {
	var b strings.Builder
	for _, p := range parts {
		b.WriteString("--" + boundary + "\r\n" + p + "\r\n")
	}
	b.WriteString("--" + boundary + "--\r\n")
	return b.String()
}

// httpPart is an application/http batch part holding one embedded
// request, with its Content-ID when not empty.
func httpPart(contentID, request string) string {
	h := "Content-Type: application/http\r\n"
	if contentID != "" {
		h += "Content-ID: " + contentID + "\r\n"
	}
	return h + "\r\n" + request
}

// embedded is an HTTP/1.1 request as a batch part carries it: head is
// the request line and headers, "\n"-separated; a body gets its
// Content-Length.
func embedded(head, body string) string {
	if body != "" {
		head += "\nContent-Length: " + strconv.Itoa(len(body))
	}
	return strings.ReplaceAll(head, "\n", "\r\n") + "\r\n\r\n" + body
}

const (
	pythonBoundary = "===============7330845974216740156=="
	pythonBaseID   = "4f6c3e1a-9b2d-4c7e-8a51-0d2f6b9e3c71"
	javaBoundary   = "__END_OF_PART__2b5f0e4c-8d1a-4c3e-9f6b-7a0d2e1c5b94__"
)

// pythonBatch is a batch of two vault cancels as google-api-python-client's
// BatchHttpRequest writes it (googleapiclient/http.py, _execute and
// _serialize_request): the email package's generator with "\n" line ends
// and a quoted boundary, Content-ID "<uuid + n>", the request line holding
// the path and query (alt=json on every request), the credential applied
// to every part, then the Host header and content-length.
func pythonBatch(token string) string {
	var b strings.Builder
	for n, name := range []string{"export-1", "export-2"} {
		fmt.Fprintf(&b, "--%s\n", pythonBoundary)
		b.WriteString("Content-Type: application/http\nMIME-Version: 1.0\nContent-Transfer-Encoding: binary\n")
		fmt.Fprintf(&b, "Content-ID: <%s + %d>\n\n", pythonBaseID, n+1)
		fmt.Fprintf(&b, "POST /v1/operations/%s:cancel?alt=json HTTP/1.1\n", name)
		b.WriteString("Content-Type: application/json\nMIME-Version: 1.0\naccept: application/json\n" +
			"accept-encoding: gzip, deflate\nuser-agent: (gzip)\nx-goog-api-client: gdcl/2.154.0 gl-python/3.11.2\n")
		fmt.Fprintf(&b, "authorization: Bearer %s\nHost: vault.googleapis.com\ncontent-length: 2\n\n{}\n", token)
	}
	fmt.Fprintf(&b, "--%s--\n", pythonBoundary)
	return b.String()
}

// javaBatch is a batch of two vault cancels as google-api-java-client's
// BatchRequest writes it (BatchRequest.java, HttpRequestContent.java, and
// google-http-java-client's MultipartContent): CRLF, Content-ID 1..n in
// lower case beside Content-Length and content-transfer-encoding binary,
// the absolute URL in the request line, the credential's Authorization on
// every part.
func javaBatch(token string) string {
	var b strings.Builder
	for n, name := range []string{"x", "y"} {
		req := "POST https://vault.googleapis.com/v1/operations/" + name + ":cancel HTTP/1.1\r\n" +
			"Authorization: Bearer " + token + "\r\nContent-Length: 2\r\n" +
			"Content-Type: application/json; charset=UTF-8\r\n" +
			"x-goog-api-client: gl-java/17.0.9 gdcl/2.7.0 linux/6.1\r\n\r\n{}"
		fmt.Fprintf(&b, "--%s\r\nContent-Length: %d\r\nContent-Type: application/http\r\n"+
			"content-id: %d\r\ncontent-transfer-encoding: binary\r\n\r\n%s\r\n", javaBoundary, len(req), n+1, req)
	}
	fmt.Fprintf(&b, "--%s--\r\n", javaBoundary)
	return b.String()
}

// maxBatchBytes is the most of a batch the gateway reads.
const maxBatchBytes = 10 << 20

// oversizedBatch hides a cancel behind a first part that alone fills the
// read limit.
func oversizedBatch() string {
	pad := `{"description":"` + strings.Repeat("a", maxBatchBytes) + `"}`
	return multipartMixed(batchBoundary,
		httpPart("1", embedded("POST /v1/matters HTTP/1.1\nContent-Type: application/json", pad)),
		httpPart("2", embedded("POST "+vaultCancelX+" HTTP/1.1", "")))
}

// crowdedBatch is n parts, the last a cancel, the others operation gets.
func crowdedBatch(n int) string {
	parts := make([]string, n)
	for i := range n - 1 {
		parts[i] = httpPart(strconv.Itoa(i+1), embedded("GET /v1/operations/y HTTP/1.1", ""))
	}
	parts[n-1] = httpPart(strconv.Itoa(n), embedded("POST "+vaultCancelX+" HTTP/1.1", ""))
	return multipartMixed(batchBoundary, parts...)
}
