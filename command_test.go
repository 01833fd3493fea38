package lrocancel

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

const (
	vaultScope   = "https://www.googleapis.com/auth/ediscovery"
	vaultCancel  = "https://vault.googleapis.com/v1/operations/export-1:cancel"
	androidScope = "https://www.googleapis.com/auth/androidmanagement"
	// androidCancel is a cancel of an API no host matcher below names.
	androidCancel = "https://androidmanagement.googleapis.com/v1/enterprises/e/devices/d/operations/o:cancel"
)

var alice = identity{Principal: "alice@example.com", Scopes: []string{vaultScope, androidScope}}

// servers is a config of the given servers' JSON, in that order.
func servers(srvs ...string) []byte {
	return []byte(`{"apps":{"http":{"servers":{` + strings.Join(srvs, ",") + `}}}}`)
}

// Handlers the walk must tell apart by what they decide.
const (
	answers501 = `{"handler":"lro_cancel","unimplemented":["*"]}`
	forwards   = `{"handler":"lro_cancel"}`
	respond    = `{"handler":"static_response","body":"ok"}`
)

// explainOut runs explain on one request and returns its exit status and
// its output's decision line.
func explainOut(t *testing.T, cfg []byte, method, url string, id identity) (int, string) {
	t.Helper()
	var out bytes.Buffer
	code, err := runExplain(&out, cfg, explainRequest{Method: method, URL: url}, id)
	if (code == exitForwards) != (err == nil) {
		t.Errorf("exit %d with error %v", code, err)
	}
	for l := range strings.Lines(out.String()) {
		if d, ok := strings.CutPrefix(l, "decision   "); ok {
			return code, strings.TrimSpace(d)
		}
	}
	if out.Len() > 0 {
		t.Errorf("no decision line in:\n%s", out.String())
	}
	return code, ""
}

func TestExplainDecidesWithTheFirstHandlerWhoseRouteAdmitsTheHost(t *testing.T) {
	cfg := servers(`"srv0":{"routes":[
		{"match":[{"host":["*.example.com"]}],"handle":[{"handler":"lro_cancel","unlisted":"deny"}],"terminal":true},
		{"match":[{"host":["vault.googleapis.com","vault.mtls.googleapis.com"]}],"handle":[
			{"handler":"subroute","routes":[{"handle":[` + answers501 + `]}]}],"terminal":true},
		{"handle":[` + forwards + `,` + respond + `]}]}`)
	tests := []struct {
		name, url, want string
		code            int
	}{
		{"a host matcher's host: the handler inside its subroute", vaultCancel,
			"unimplemented: 501 CANCEL_UNIMPLEMENTED", exitRefuses},
		{"letter case, scheme and port do not matter", "http://VAULT.googleapis.com:8443/v1/operations/export-1:cancel",
			"unimplemented: 501 CANCEL_UNIMPLEMENTED", exitRefuses},
		{"a route without host matchers admits every host", androidCancel, "forwarded", exitForwards},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, got := explainOut(t, cfg, "POST", tt.url, alice)
			if code != tt.code || got != tt.want {
				t.Errorf("exit %d, decision %q; want %d, %q", code, got, tt.code, tt.want)
			}
		})
	}
}

// Only host matchers are read, so a route with another matcher may or may
// not run; a route that surely runs ends its group, and the walk when it is
// terminal, as it does in Caddy.
func TestExplainWalksRoutesAsCaddyRunsThem(t *testing.T) {
	tests := []struct {
		name string
		cfg  []byte
		url  string
		want string // the decision line; "" when no handler serves the host
	}{
		{"a terminal site without the handler ends the walk for its host",
			servers(`"srv0":{"routes":[{"match":[{"host":["vault.googleapis.com"]}],"handle":[` + respond + `],"terminal":true},
				{"handle":[` + forwards + `]}]}`), vaultCancel, ""},
		{"a terminal site of another host does not",
			servers(`"srv0":{"routes":[{"match":[{"host":["vault.googleapis.com"]}],"handle":[` + respond + `],"terminal":true},
				{"handle":[` + forwards + `]}]}`), androidCancel, "forwarded"},
		{"a terminal route with another matcher may not run: the walk goes on",
			servers(`"srv0":{"routes":[{"match":[{"host":["vault.googleapis.com"],"path":["/healthz"]}],"handle":[` + respond + `],"terminal":true},
				{"handle":[` + answers501 + `]}]}`), vaultCancel, "unimplemented: 501 CANCEL_UNIMPLEMENTED"},
		{"a matcher set without a host matcher admits every host",
			servers(`"srv0":{"routes":[{"match":[{"host":["other.example"]},{"path":["/v1/*"]}],"handle":[` + answers501 + `]}]}`),
			vaultCancel, "unimplemented: 501 CANCEL_UNIMPLEMENTED"},
		{"a group's route that surely runs hides the group's later routes",
			servers(`"srv0":{"routes":[{"handle":[{"handler":"subroute","routes":[
				{"group":"g","handle":[` + respond + `]},{"group":"g","handle":[` + forwards + `]}]}]}]}`), vaultCancel, ""},
		{"a group's route that may not run hides nothing",
			servers(`"srv0":{"routes":[{"handle":[{"handler":"subroute","routes":[
				{"group":"g","match":[{"path":["/healthz"]}],"handle":[` + respond + `]},{"group":"g","handle":[` + answers501 + `]}]}]}]}`),
			vaultCancel, "unimplemented: 501 CANCEL_UNIMPLEMENTED"},
		{"servers are walked in the config's order, not by name",
			servers(`"srv9":{"routes":[{"handle":[`+answers501+`]}]}`, `"srv0":{"routes":[{"handle":[`+forwards+`]}]}`),
			vaultCancel, "unimplemented: 501 CANCEL_UNIMPLEMENTED"},
		{"a wildcard host matches one label",
			servers(`"srv0":{"routes":[{"match":[{"host":["*.googleapis.com"]}],"handle":[` + answers501 + `]}]}`),
			vaultCancel, "unimplemented: 501 CANCEL_UNIMPLEMENTED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, got := explainOut(t, tt.cfg, "POST", tt.url, alice)
			if tt.want == "" {
				if code != exitUsage {
					t.Errorf("exit %d, decision %q; want exit 2: no handler serves the host", code, got)
				}
				return
			}
			if got != tt.want {
				t.Errorf("decision %q, want %q", got, tt.want)
			}
		})
	}
}

func TestExplainExitsZeroOnForwardOneOnRefusalTwoOnBadUsageOrConfig(t *testing.T) {
	site := func(handler string) []byte { return servers(`"srv0":{"routes":[{"handle":[` + handler + `]}]}`) }
	tests := []struct {
		name, method, url string
		cfg               []byte
		id                identity
		want              int
		body              string
	}{
		{"a cancel it would forward", "POST", vaultCancel, site(forwards), alice, exitForwards, ""},
		{"a request that is not a cancel", "GET", "https://vault.googleapis.com/v1/operations/export-1", site(forwards), alice, exitForwards, ""},
		{"a cancel it would refuse", "POST", vaultCancel, site(forwards), identity{Principal: "bob@example.com"}, exitRefuses, ""},
		// No token is given: the identity stands for one, so the body is
		// read and judged as it is for a request with a token.
		{"a cancel whose body the method does not take", "POST", vaultCancel, site(forwards), alice, exitRefuses, `{"force": true}`},
		{"a URL without a host", "POST", "/v1/operations/export-1:cancel", site(forwards), alice, exitUsage, ""},
		{"no method", "", vaultCancel, site(forwards), alice, exitUsage, ""},
		{"no handler at all", "POST", vaultCancel, site(respond), alice, exitUsage, ""},
		{"a config that is not JSON", "POST", vaultCancel, []byte("vault {"), alice, exitUsage, ""},
		{"an unknown handler field", "POST", vaultCancel, site(`{"handler":"lro_cancel","frobnicate":true}`), alice, exitUsage, ""},
		{"an invalid handler config", "POST", vaultCancel, site(`{"handler":"lro_cancel","unlisted":"maybe"}`), alice, exitUsage, ""},
		{"a policy rule that is not a bool", "POST", vaultCancel,
			site(`{"handler":"lro_cancel","policy":{"rules":[{"effect":"allow","name":"n","expr":"resource.name"}]}}`), alice, exitUsage, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			code, err := runExplain(&out, tt.cfg, explainRequest{Method: tt.method, URL: tt.url, Body: tt.body}, tt.id)
			if code != tt.want {
				t.Errorf("exit %d (%v), want %d; output:\n%s", code, err, tt.want, out.String())
			}
			if code != exitForwards && err == nil {
				t.Errorf("exit %d without a message", code)
			}
		})
	}
}

func TestExplainShowsRecognitionChecksAndEveryRuleValue(t *testing.T) {
	cfg := servers(`"srv0":{"routes":[{"handle":[{"handler":"lro_cancel","policy":{"rules":[
		{"effect":"deny","name":"contractors","expr":"request.auth.principal.endsWith('@contractors.example.com')"},
		{"effect":"allow","name":"sre","expr":"request.auth.principal.endsWith('@sre.example.com')"},
		{"effect":"allow","name":"ticketed","expr":"request.headers['x-change-ticket'].startsWith('CHG-')"}]}}]}]}`)
	var out bytes.Buffer
	// The same token twice (header and query) is one credential; neither
	// copy may show in the output.
	req := explainRequest{Method: "POST", URL: vaultCancel + "?access_token=ya29.same-secret",
		Header: map[string]string{"Authorization": "Bearer ya29.same-secret"}}
	code, _ := runExplain(&out, cfg, req, identity{Principal: "eve@contractors.example.com", Scopes: []string{vaultScope}})
	if code != exitRefuses {
		t.Errorf("exit %d, want 1", code)
	}
	got := out.String()
	for _, want := range []string{
		"door       http\n",
		"service    vault.googleapis.com\n",
		"method     vault.operations.cancel\n",
		"operation  operations/export-1\n",
		"scopes     " + vaultScope + "\n",
		"credentials  given (eve@contractors.example.com, scopes " + vaultScope + "), not verified\n",
		"scope        ok (" + vaultScope + ")\n",
		"policy       deny (rule contractors)\n",
		"  deny  contractors  true\n",
		"  allow sre          false\n",
		"  allow ticketed     error (counts as false): ",
		"decision   denied_by_policy (rule contractors): 403 CANCEL_DENIED_BY_POLICY\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "secret") {
		t.Errorf("output shows a token:\n%s", got)
	}
}

func TestClaimValuesAreJSONWhenTheyParseElseStrings(t *testing.T) {
	got, err := parseClaims([]string{
		"hd=example.com", "email_verified=true", `groups=["sre","ops"]`, "n=5",
		"note=a=b", `quoted="x"`, "empty=", `obj={"k":1}`,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"hd": "example.com", "email_verified": true, "groups": []any{"sre", "ops"}, "n": float64(5),
		"note": "a=b", "quoted": "x", "empty": "", "obj": map[string]any{"k": float64(1)},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("claims %#v, want %#v", got, want)
	}
	for _, bad := range []string{"novalue", "=v"} {
		if _, err := parseClaims([]string{bad}); err == nil {
			t.Errorf("--claim %q accepted", bad)
		}
	}
	if _, err := parseHeaders([]string{"X-A=1", "x-a=2"}); err == nil {
		t.Error("a header given twice accepted")
	}
	if _, err := (explainRequest{Method: "POST", URL: vaultCancel, Header: map[string]string{"Host": "x"}}).build(); err == nil {
		t.Error("a Host header accepted: the host is the URL's")
	}
}

func TestTestCommandPrintsEachCaseAndExitsOneOnAFailure(t *testing.T) {
	cfg := servers(`"srv0":{"routes":[{"handle":[{"handler":"lro_cancel","policy":{"rules":[
		{"effect":"allow","name":"exports","expr":"resource.name.startsWith('operations/export-')"}]}}]}]}`)
	cases, err := parseCases([]byte(`[
		{"name": "exports pass", "request": {"method": "POST", "url": "` + vaultCancel + `"},
		 "identity": {"principal": "alice@example.com", "scopes": ["` + vaultScope + `"]},
		 "want": {"decision": "forwarded", "rule": "exports"}},
		{"name": "wrong decision", "request": {"method": "POST", "url": "https://vault.googleapis.com/v1/operations/import-1:cancel"},
		 "identity": {"principal": "alice@example.com", "scopes": ["` + vaultScope + `"]},
		 "want": {"decision": "forwarded", "rule": "exports"}},
		{"name": "wrong rule", "request": {"method": "POST", "url": "` + vaultCancel + `"},
		 "identity": {"principal": "alice@example.com", "scopes": ["` + vaultScope + `"]},
		 "want": {"decision": "forwarded", "rule": ""}},
		{"name": "not a cancel", "request": {"method": "GET", "url": "https://vault.googleapis.com/v1/operations"},
		 "identity": {}, "want": {"decision": "not_governed"}}
	]`))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	code, err := runTest(&out, cfg, cases)
	want := "PASS exports pass\n" +
		"FAIL wrong decision: decision got denied_by_policy want forwarded; rule got default want exports\n" +
		"FAIL wrong rule: rule got exports want (none)\n" +
		"PASS not a cancel\n" +
		"2 passed, 2 failed\n"
	if code != exitRefuses || err == nil || out.String() != want {
		t.Errorf("exit %d (%v), output:\n%s\nwant exit 1 and:\n%s", code, err, out.String(), want)
	}

	out.Reset()
	if code, err := runTest(&out, cfg, cases[:1]); code != exitForwards || err != nil || out.String() != "PASS exports pass\n1 passed, 0 failed\n" {
		t.Errorf("all passing: exit %d (%v), output:\n%s", code, err, out.String())
	}
	if code, _ := runTest(&out, servers(`"srv0":{"routes":[]}`), cases[:1]); code != exitUsage {
		t.Errorf("a host no handler serves: exit %d, want 2", code)
	}
}

func TestCasesFileIsReadStrictly(t *testing.T) {
	ok := `"request": {"method": "POST", "url": "` + vaultCancel + `"}, "want": {"decision": "forwarded"}`
	for name, file := range map[string]string{
		"not an array":         `{"name": "x", ` + ok + `}`,
		"no cases":             `[]`,
		"a misspelt field":     `[{"name": "x", "identity": {"principle": "a@example.com"}, ` + ok + `}]`,
		"a case without name":  `[{` + ok + `}]`,
		"no decision wanted":   `[{"name": "x", "request": {"method": "POST", "url": "` + vaultCancel + `"}, "want": {}}]`,
		"a relative URL":       `[{"name": "x", "request": {"method": "POST", "url": "/v1/x:cancel"}, "want": {"decision": "forwarded"}}]`,
		"data after the array": `[{"name": "x", ` + ok + `}] []`,
	} {
		if _, err := parseCases([]byte(file)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestCatalogListsTheMethodsOfAServiceByNameHostOrAlias(t *testing.T) {
	for _, service := range []string{"vault.googleapis.com", "vault.mtls.googleapis.com", "content-vault.googleapis.com", "VAULT.googleapis.com."} {
		var out bytes.Buffer
		if code, err := runCatalog(&out, service, false); code != exitForwards {
			t.Fatalf("%s: exit %d: %v", service, code, err)
		}
		want := "vault.operations.cancel\n" +
			"  path     POST /v1/{name=operations/**}:cancel\n" +
			"  service  vault.googleapis.com\n"
		if !strings.HasPrefix(out.String(), want) || !strings.Contains(out.String(), "  scopes   "+vaultScope+"\n  body     empty\n") {
			t.Errorf("%s: catalog:\n%s", service, out.String())
		}
	}

	var out bytes.Buffer
	if code, err := runCatalog(&out, "", true); code != exitForwards {
		t.Fatalf("exit %d: %v", code, err)
	}
	var all []catalogMethod
	if err := json.Unmarshal(out.Bytes(), &all); err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, m := range all {
		ids[m.ID] = true
		if m.Template == "" || m.HTTPMethod == "" || m.Hosts == nil || m.Scopes == nil || m.Body == "" {
			t.Errorf("incomplete method %+v", m)
		}
	}
	if !ids["vault.operations.cancel"] || !ids["dai.operations.cancel"] || len(all) < 300 {
		t.Errorf("%d methods, want the whole catalog", len(all))
	}
	if code, _ := runCatalog(&out, "nothing.example.com", false); code != exitRefuses {
		t.Errorf("an unknown service: exit %d, want 1", code)
	}
}

// explain judges the credential a request does carry as the gateway
// would: two different tokens are refused, whatever the given identity.
func TestExplainRefusesConflictingCredentialsAsTheGatewayDoes(t *testing.T) {
	cfg := servers(`"srv0":{"routes":[{"handle":[{"handler":"lro_cancel"}]}]}`)
	var out bytes.Buffer
	req := explainRequest{Method: "POST", URL: vaultCancel + "?access_token=ya29.query-one",
		Header: map[string]string{"Authorization": "Bearer ya29.header-two"}}
	code, _ := runExplain(&out, cfg, req, identity{Principal: "alice@example.com", Scopes: []string{vaultScope}})
	if code != exitRefuses || !strings.Contains(out.String(), "400 CREDENTIALS_CONFLICT") {
		t.Errorf("exit %d, output:\n%s\nwant exit 1 and 400 CREDENTIALS_CONFLICT", code, out.String())
	}
	if strings.Contains(out.String(), "ya29.") {
		t.Errorf("a token reached the output:\n%s", out.String())
	}
}

// explain reads a request with the gateway's own reader: what reads two
// ways is refused as the gateway would refuse it, and a batch whose bytes
// hold no cancel is forwarded unparsed.
func TestExplainReadsEveryReadingAsTheGatewayDoes(t *testing.T) {
	cfg := servers(`"srv0":{"routes":[{"handle":[` + forwards + `]}]}`)
	batchOf := func(target string) string {
		return "--b\r\nContent-Type: application/http\r\n\r\n" + target + " HTTP/1.1\r\n\r\n\r\n--b--\r\n"
	}
	tests := []struct {
		name, method, url, body string
		header                  map[string]string
		want                    int
		wantOut                 string
	}{
		{"an override in the query", "GET", vaultCancel + "?$httpMethod=POST", "", nil, exitRefuses, "METHOD_OVERRIDE_REFUSED"},
		{"an override given twice", "GET", vaultCancel + "?$httpMethod=POST", "", map[string]string{"X-HTTP-Method": "POST"},
			exitRefuses, "AMBIGUOUS_REQUEST"},
		{"the legacy host's storage cancel", "POST", "https://www.googleapis.com/storage/v1/b/bkt/operations/o/cancel", "", nil,
			exitRefuses, "storage.buckets.operations.cancel"},
		{"a batch whose bytes hold no cancel", "POST", "https://vault.googleapis.com/batch", batchOf("GET /v1/matters"),
			map[string]string{"Content-Type": "multipart/mixed; boundary=b"}, exitForwards, "forwarded unparsed"},
		{"a batch holding a cancel, with $httpHeaders", "POST", "https://vault.googleapis.com/batch?$httpHeaders=x",
			batchOf("POST /v1/operations/x:cancel"), map[string]string{"Content-Type": "multipart/mixed; boundary=b"}, exitRefuses, "AMBIGUOUS_REQUEST"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			code, err := runExplain(&out, cfg, explainRequest{Method: tt.method, URL: tt.url, Header: tt.header, Body: tt.body}, alice)
			if code != tt.want || !strings.Contains(out.String(), tt.wantOut) {
				t.Errorf("exit %d (%v), want %d and %q in the output:\n%s", code, err, tt.want, tt.wantOut, out.String())
			}
		})
	}
}
