package integration

import (
	"net/http"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/googleapis/gax-go/v2/apierror"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The policies the decision table runs under.
const (
	policyMain = "policy {\n" +
		" deny contractors `request.auth.principal.endsWith('@contractors.example.com')`\n" +
		" deny no-ticket-in-prod `resource.name.contains('/prod-') && !('x-change-ticket' in request.headers)`\n" +
		" allow sre `request.auth.principal.endsWith('@sre.example.com')`\n" +
		" allow own-exports `resource.service == 'vault.googleapis.com' && resource.name.startsWith('operations/export-')`\n" +
		" allow break-glass `request.headers['x-break-glass'] == 'yes'`\n" +
		"}"
	policyDenyOnly = "policy {\n deny contractors `request.auth.principal.endsWith('@contractors.example.com')`\n}"
	policyDryRun   = "policy {\n" +
		" deny contractors `request.auth.principal.endsWith('@contractors.example.com')`\n" +
		" allow own-exports `resource.name.startsWith('operations/export-')`\n" +
		" dry_run\n}"
	policyFailing    = "policy {\n deny failing `request.auth.claims['groups'].exists(g, g == 'contractors')`\n}"
	policyAttributes = "policy {\n" +
		" deny grpc-only-for-sre `request.protocol == 'grpc' && !request.auth.principal.endsWith('@sre.example.com')`\n" +
		" allow verified-email `request.auth.claims['email_verified'] == 'true' && request.auth.verifier == 'tokeninfo'`\n" +
		" allow jwt-domain `request.auth.verifier == 'jwt' && request.auth.claims['hd'] == 'example.com'`\n" +
		" allow after-2020 `request.time > timestamp('2020-01-01T00:00:00Z') && 'https://www.googleapis.com/auth/ediscovery' in request.auth.scopes && request.client_ip == '127.0.0.1'`\n" +
		" allow sees-credentials `'authorization' in request.headers`\n" +
		"}"
)

const (
	tokenContractor = "ya29.a0-contractor-token-0010"
	tokenSRE        = "ya29.a0-sre-token-0011"
	principalCon    = "dana@contractors.example.com"
	principalSRE    = "erin@sre.example.com"
)

// policyCase is one decision of the table: a request, who sends it, and
// what the caller, the upstream and the record must see.
type policyCase struct {
	name      string
	policy    string
	token     string
	op        string
	header    []string
	forwarded bool
	rule      string // policy_rule of the record ("" for none)
	effect    string // policy_effect of the record
	dryRun    bool
	reason    string // the refusal's reason, when refused
}

var policyCases = []policyCase{
	{name: "an allow rule admits its principal's own exports", policy: policyMain, token: tokenVault, op: "operations/export-1",
		forwarded: true, rule: "own-exports", effect: "allow"},
	{name: "with allow rules, what none admits is denied by rule default", policy: policyMain, token: tokenVault, op: "operations/other",
		rule: "default", effect: "deny", reason: "CANCEL_DENIED_BY_POLICY"},
	{name: "deny rules come first, even where an allow rule would admit", policy: policyMain, token: tokenContractor, op: "operations/export-1",
		rule: "contractors", effect: "deny", reason: "CANCEL_DENIED_BY_POLICY"},
	{name: "the first true allow rule decides", policy: policyMain, token: tokenSRE, op: "operations/anything",
		forwarded: true, rule: "sre", effect: "allow"},
	{name: "a prod operation without a change ticket is denied", policy: policyMain, token: tokenSRE, op: "operations/prod-7",
		rule: "no-ticket-in-prod", effect: "deny", reason: "CANCEL_DENIED_BY_POLICY"},
	{name: "a change ticket header lets SRE cancel in prod", policy: policyMain, token: tokenSRE, op: "operations/prod-7",
		header: []string{"X-Change-Ticket", "CHG-1234"}, forwarded: true, rule: "sre", effect: "allow"},
	{name: "a break-glass header admits anyone not denied", policy: policyMain, token: tokenVault, op: "operations/other",
		header: []string{"X-Break-Glass", "yes"}, forwarded: true, rule: "break-glass", effect: "allow"},
	{name: "an allow rule whose header is missing errs and admits nothing", policy: policyMain, token: tokenVault, op: "operations/other",
		header: []string{"X-Something", "else"}, rule: "default", effect: "deny", reason: "CANCEL_DENIED_BY_POLICY"},
	{name: "without allow rules, what no deny rule refuses is allowed", policy: policyDenyOnly, token: tokenVault, op: "operations/other",
		forwarded: true},
	{name: "without allow rules, a deny rule still refuses", policy: policyDenyOnly, token: tokenContractor, op: "operations/other",
		rule: "contractors", effect: "deny", reason: "CANCEL_DENIED_BY_POLICY"},
	{name: "dry run forwards what default would deny, and says so", policy: policyDryRun, token: tokenVault, op: "operations/other",
		forwarded: true, rule: "default", effect: "deny", dryRun: true},
	{name: "dry run forwards what a deny rule would refuse, and says so", policy: policyDryRun, token: tokenContractor, op: "operations/export-1",
		forwarded: true, rule: "contractors", effect: "deny", dryRun: true},
	{name: "dry run records an allow as an allow", policy: policyDryRun, token: tokenVault, op: "operations/export-2",
		forwarded: true, rule: "own-exports", effect: "allow", dryRun: true},
	{name: "a deny rule whose claim is missing errs and denies", policy: policyFailing, token: tokenVault, op: "operations/x",
		rule: "failing", effect: "deny", reason: "CANCEL_DENIED_BY_POLICY"},
}

func grantPolicyTokens(g *gateway) {
	g.tokeninfo.grant(tokenContractor, tokenGrant{Email: principalCon, Sub: "2001", Scope: scopeVault})
	g.tokeninfo.grant(tokenSRE, tokenGrant{Email: principalSRE, Sub: "2002", Scope: scopeVault})
}

// Every decision of the table through a real Caddy: status and reason,
// the rule in the refusal and the record, and whether the upstream saw
// the cancel.
func TestPolicyDecidesWhoMayCancelWhat(t *testing.T) {
	byPolicy := map[string][]policyCase{}
	var order []string
	for _, c := range policyCases {
		if _, ok := byPolicy[c.policy]; !ok {
			order = append(order, c.policy)
		}
		byPolicy[c.policy] = append(byPolicy[c.policy], c)
	}
	for _, p := range order {
		g := startGateway(t, gatewayOptions{directive: p})
		grantPolicyTokens(g)
		for _, c := range byPolicy[p] {
			t.Run(c.name, func(t *testing.T) {
				g.upstream.reset()
				header := append(bearer(c.token), c.header...)
				resp, b := g.do(newRequest(t, "POST", apiURL("vault.googleapis.com", "/v1/"+c.op+":cancel"), "", header...))
				checkPolicyOutcome(t, g, c, resp, b)
			})
		}
	}
}

func checkPolicyOutcome(t *testing.T, g *gateway, c policyCase, resp *http.Response, b []byte) {
	t.Helper()
	if got := len(g.upstream.requests()); got != map[bool]int{true: 1, false: 0}[c.forwarded] {
		t.Errorf("the upstream got %d requests, want forwarded: %v", got, c.forwarded)
	}
	if c.forwarded && resp.StatusCode != 200 || !c.forwarded && resp.StatusCode != 403 {
		t.Errorf("status %d: %s", resp.StatusCode, b)
	}
	if !c.forwarded {
		e := decodeError(t, b)
		if e.reason() != c.reason || e.Error.Status != "PERMISSION_DENIED" {
			t.Errorf("reason %q status %q, want %q PERMISSION_DENIED", e.reason(), e.Error.Status, c.reason)
		}
		md := e.Error.Details[0].Metadata
		if md["rule"] != c.rule || md["service"] != "vault.googleapis.com" || md["method"] != "vault.operations.cancel" ||
			md["audit_id"] != resp.Header.Get("Audit-Id") {
			t.Errorf("ErrorInfo metadata %v, want rule %q, the service, method and audit id", md, c.rule)
		}
	}
	rec := g.recordFor(resp.Header.Get("Audit-Id"))
	wantDecision := "forwarded"
	if !c.forwarded {
		wantDecision = "denied_by_policy"
	}
	if rec.str("decision") != wantDecision || rec.str("policy_rule") != c.rule || rec.str("policy_effect") != c.effect {
		t.Errorf("record decision %q rule %q effect %q, want %q %q %q",
			rec.str("decision"), rec.str("policy_rule"), rec.str("policy_effect"), wantDecision, c.rule, c.effect)
	}
	if dry, _ := rec["policy_dry_run"].(bool); dry != c.dryRun {
		t.Errorf("record policy_dry_run %v, want %v", rec["policy_dry_run"], c.dryRun)
	}
}

// The attributes: claims from tokeninfo and from a JWT, the verifier, the
// time, the scopes, the client address, the protocol; and credentials
// never show among the headers.
func TestPolicyAttributes(t *testing.T) {
	k := newJWTKeys(t)
	jwks := newFakeJWKS(t, publicKey("k1", k.rsa))
	// The rules name tokeninfo, so the harness would not add its line.
	g := startGateway(t, gatewayOptions{directive: "tokeninfo TOKENINFO\n" + jwtDirective(jwks.srv.URL) + "\n" + policyAttributes})
	jwtToken := sign(t, jose.RS256, k.rsa, "k1", claims(map[string]any{"hd": "example.com", "scope": scopeEmail}))

	for _, c := range []struct {
		name, token string
		wantRule    string
	}{
		{"a tokeninfo claim and the verifier", tokenVault, "verified-email"},
		{"a JWT claim and the verifier", jwtToken, "jwt-domain"},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, b := g.do(newRequest(t, "POST", apiURL("unknown-api.googleapis.com", "/v1/operations/x:cancel"), "", bearer(c.token)...))
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, b)
			}
			if rec := g.recordFor(resp.Header.Get("Audit-Id")); rec.str("policy_rule") != c.wantRule {
				t.Errorf("policy_rule %q, want %q", rec.str("policy_rule"), c.wantRule)
			}
		})
	}

	t.Run("a policy-denied gRPC cancel is PermissionDenied with the reason and rule", func(t *testing.T) {
		g := startGRPCGateway(t, policyAttributes)
		g.tokeninfo.grant(tokenSRE, tokenGrant{Email: principalSRE, Sub: "2002", Scope: scopeVault})
		c := operationsClient(t, "vault.googleapis.com", tokenVault)
		a := cancelOperation(c, "operations/x")
		if status.Code(a.err) != codes.PermissionDenied {
			t.Fatalf("code %v, want PermissionDenied: %v", status.Code(a.err), a.err)
		}
		ae, ok := apierror.FromError(a.err)
		if !ok || ae.Reason() != "CANCEL_DENIED_BY_POLICY" || ae.Metadata()["rule"] != "grpc-only-for-sre" {
			t.Fatalf("apierror %v, want reason CANCEL_DENIED_BY_POLICY, rule grpc-only-for-sre", ae)
		}
		if n := len(g.standIn.calls()); n != 0 {
			t.Errorf("the stand-in got %d calls", n)
		}
		if rec := g.recordFor(a.auditID); rec.str("protocol") != "grpc" || rec.str("decision") != "denied_by_policy" {
			t.Errorf("record %v", rec)
		}
		sre := operationsClient(t, "vault.googleapis.com", tokenSRE)
		if a := cancelOperation(sre, "operations/x"); a.err != nil {
			t.Fatalf("SRE's gRPC cancel refused: %v", a.err)
		}
		if n := len(g.standIn.calls()); n != 1 {
			t.Errorf("the stand-in got %d calls, want SRE's one", n)
		}
	})
	t.Run("the time, the scopes and the client address", func(t *testing.T) {
		g2 := startGateway(t, gatewayOptions{directive: "policy {\n allow after-2020 `request.time > timestamp('2020-01-01T00:00:00Z') && 'https://www.googleapis.com/auth/ediscovery' in request.auth.scopes && request.client_ip == '127.0.0.1'`\n}"})
		resp, b := g2.do(newRequest(t, "POST", apiURL("vault.googleapis.com", "/v1/operations/x:cancel"), "", bearer(tokenVault)...))
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, b)
		}
		resp, _ = g2.do(newRequest(t, "POST", apiURL("vault.googleapis.com", "/v1/operations/x:cancel"), "", bearer(tokenCloud)...))
		if resp.StatusCode != 403 {
			t.Errorf("a token without the scope the rule names: status %d, want 403", resp.StatusCode)
		}
	})
	t.Run("the Authorization header never shows among the headers", func(t *testing.T) {
		g3 := startGateway(t, gatewayOptions{directive: "policy {\n allow sees-credentials `'authorization' in request.headers || 'cookie' in request.headers`\n}"})
		resp, b := g3.do(newRequest(t, "POST", apiURL("vault.googleapis.com", "/v1/operations/x:cancel"), "", append(bearer(tokenVault), "Cookie", "SID=x")...))
		if resp.StatusCode != 403 {
			t.Fatalf("status %d, want 403 by rule default: %s", resp.StatusCode, b)
		}
	})
}
