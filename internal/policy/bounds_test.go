package policy

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"cel.dev/cel-go/cel"
)

// ordinaryRules are rules as users write them: the example Caddyfile's, the
// README's, and the common shapes over every attribute. Each must compile,
// and cost no more than the limit on the largest inputs the bounds allow.
var ordinaryRules = []string{
	`request.auth.principal.endsWith('@sre.example.com')`,
	`request.auth.principal == 'pipeline@ml-train.iam.gserviceaccount.com' && request.protocol in ['grpc', 'rpc'] && resource.name.startsWith('projects/ml-train/')`,
	`resource.name.contains('/prod-') && !('x-change-ticket' in request.headers)`,
	`request.headers['x-break-glass'] == 'incident'`,
	`request.auth.principal.matches('^[a-z.]+@(sre|ops)\\.example\\.com$')`,
	`resource.name.matches('^projects/[^/]+/locations/[^/]+/operations/[^/]+$')`,
	`request.auth.principal.lowerAscii().endsWith('@sre.example.com') && resource.name.split('/')[1].matches('^export-[0-9]+$')`,
	`'https://www.googleapis.com/auth/cloud-platform' in request.auth.scopes`,
	`request.auth.scopes.exists(s, s.endsWith('/ediscovery'))`,
	`request.auth.claims.hd == 'example.com'`,
	`'admin' in request.auth.claims.groups`,
	`request.auth.claims.groups.exists(g, g.startsWith('team-sre'))`,
	`has(request.auth.claims.org) && request.auth.claims.org.team == 'sre'`,
	`request.auth.claims.level >= 3.0`,
	`request.headers.exists(k, k.startsWith('x-debug-'))`,
	`request.time.getHours('Europe/Paris') >= 9 && request.time.getHours('Europe/Paris') < 18`,
	`request.client_ip.startsWith('10.') && request.auth.verifier == 'jwt'`,
	`resource.service == 'vault.googleapis.com' && resource.method.contains('operations')`,
}

// exampleRules reads the allow and deny lines of a Caddyfile.
func exampleRules(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rules []string
	for _, m := range regexp.MustCompile("(?m)^\\s*(?:allow|deny)\\s+\\S+\\s+`([^`]*)`").FindAllSubmatch(b, -1) {
		rules = append(rules, string(m[1]))
	}
	if len(rules) == 0 {
		t.Fatalf("no rules found in %s", path)
	}
	return rules
}

func TestOrdinaryRulesCompileAndStayUnderTheLimitOnTheLargestInputs(t *testing.T) {
	rules := append(exampleRules(t, "../../examples/policy.Caddyfile"), ordinaryRules...)
	worst := largestInput()
	for i, expr := range rules {
		t.Run(expr, func(t *testing.T) {
			if _, err := Compile([]Rule{deny(fmt.Sprintf("r%d", i), expr)}); err != nil {
				t.Fatalf("Compile: %v", err)
			}
			// The estimate is cel-go's, which can count a presence test
			// one unit short; the limit is what must hold.
			estimate, actual := costs(t, expr, worst)
			t.Logf("estimated %d, on the largest inputs %d", estimate, actual)
			if actual > CostLimit || estimate > CostLimit {
				t.Errorf("cost on the largest inputs %d, estimated %d, limit %d", actual, estimate, CostLimit)
			}
		})
	}
}

// costs is a rule's estimated worst case, and what evaluating it on in
// costs as cel-go's runtime tracking counts it.
func costs(t *testing.T, expr string, in *Input) (estimate, actual uint64) {
	t.Helper()
	env, err := environment()
	if err != nil {
		t.Fatal(err)
	}
	a, iss := env.Compile(expr)
	if iss.Err() != nil {
		t.Fatal(iss.Err())
	}
	est, err := env.EstimateCost(a, estimator{shadowed: shadowsRoot(a)})
	if err != nil {
		t.Fatal(err)
	}
	prg, err := env.Program(a, cel.EvalOptions(cel.OptOptimize, cel.OptTrackCost))
	if err != nil {
		t.Fatal(err)
	}
	_, det, _ := prg.Eval(activation{&evalState{in: in}}) // an error (a missing key) still has a cost
	return est.Max, *det.ActualCost()
}

// largestInput has every attribute at its bound, with values that match
// nothing, so that every comprehension runs to its end.
func largestInput() *Input {
	pad := func(prefix string, n int) string { return prefix + strings.Repeat("z", n-len(prefix)) }
	headers := map[string]string{
		"x-change-ticket": pad("CHG-", MaxHeaderLength), "x-break-glass": pad("", MaxHeaderLength),
		"x-team": pad("", MaxHeaderLength),
	}
	for i := len(headers); i < MaxHeaders; i++ {
		headers[pad(fmt.Sprintf("h%d-", i), MaxHeaderLength)] = pad("", MaxHeaderLength)
	}
	scopes := make([]string, MaxScopes)
	for i := range scopes {
		scopes[i] = pad(fmt.Sprintf("https://www.googleapis.com/auth/s%d", i), MaxScopeLength)
	}
	groups := make([]any, MaxClaimEntries)
	for i := range groups {
		groups[i] = pad(fmt.Sprintf("g%d-", i), MaxClaimLength)
	}
	claims := map[string]any{"hd": pad("", MaxClaimLength), "groups": groups, "level": 1.0,
		"org": map[string]any{"team": pad("", MaxClaimLength)}}
	for i := len(claims); i < MaxClaimEntries; i++ {
		claims[pad(fmt.Sprintf("c%d-", i), MaxClaimLength)] = pad("", MaxClaimLength)
	}
	in := sre()
	in.Principal = pad("", MaxStringLength)
	in.Scopes, in.Claims, in.Headers = scopes, claims, headers
	in.ClientIP, in.Protocol, in.Verifier = pad("", MaxStringLength), pad("", MaxStringLength), pad("", MaxStringLength)
	in.Service, in.Method = pad("", MaxStringLength), pad("", MaxStringLength)
	in.Name = pad("projects/prod-", MaxStringLength)
	return in
}

func TestCompileRefusesARuleThatCouldRunAway(t *testing.T) {
	hugeList := "[" + strings.Repeat("'x', ", 15_000) + "'x']"
	tests := []struct {
		name, expr string
	}{
		{"a nested comprehension over the scopes", `request.auth.scopes.exists(a, request.auth.scopes.exists(b, a + b == 'never'))`},
		{"a nested comprehension over a claim", `request.auth.claims.groups.exists(g, request.auth.claims.groups.exists(h, g == h + 'x'))`},
		{"a comprehension over a huge list", hugeList + `.exists(x, x == request.auth.principal)`},
		{"a comprehension over a huge list built from the input", `request.auth.scopes.map(s, request.auth.scopes).exists(l, l.exists(s, s.contains(request.auth.principal)))`},
		// Read as the attribute, resource.name would be 2 KiB at most; the
		// variable holds 16 Ki parts of the joined scopes.
		{"a comprehension variable named resource does not take resource.name's bound",
			`[{'name': request.auth.scopes.join('').split('')}].exists(resource, resource.name.exists(l, false))`},
		{"a regular expression over every header against every claim", `request.headers.exists(k, request.auth.claims.groups.exists(g, request.headers[k].matches(g)))`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile([]Rule{allow("ok", `true`), deny("runaway", tt.expr)})
			if err == nil {
				t.Fatal("Compile accepted the rule")
			}
			const want = `rule "runaway": the expression may cost up to `
			if !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "more than the limit of 10000") {
				t.Errorf("Compile error = %q, want it to start with %q and name the limit", err, want)
			}
		})
	}
}

func TestAnAttributeBeyondItsBoundFailsTheRulesThatReadItClosed(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	manyGroups := make([]any, MaxClaimEntries+1)
	for i := range manyGroups {
		manyGroups[i] = "g"
	}
	manyHeaders := map[string]string{}
	for i := range MaxHeaders + 1 {
		manyHeaders[fmt.Sprintf("x-h%d", i)] = "v"
	}
	tests := []struct {
		name   string
		expr   string // a deny rule reading the attribute: refuses when it errs
		change func(*Input)
		attr   string
	}{
		{"a principal too long", `request.auth.principal == 'x'`, func(in *Input) { in.Principal = long(MaxStringLength + 1) }, "request.auth.principal"},
		{"an operation name too long", `resource.name == 'x'`, func(in *Input) { in.Name = long(MaxStringLength + 1) }, "resource.name"},
		{"a service too long", `resource.service == 'x'`, func(in *Input) { in.Service = long(MaxStringLength + 1) }, "resource.service"},
		{"a method too long", `resource.method == 'x'`, func(in *Input) { in.Method = long(MaxStringLength + 1) }, "resource.method"},
		{"a client address too long", `request.client_ip == 'x'`, func(in *Input) { in.ClientIP = long(MaxStringLength + 1) }, "request.client_ip"},
		{"a protocol too long", `request.protocol == 'x'`, func(in *Input) { in.Protocol = long(MaxStringLength + 1) }, "request.protocol"},
		{"a verifier too long", `request.auth.verifier == 'x'`, func(in *Input) { in.Verifier = long(MaxStringLength + 1) }, "request.auth.verifier"},
		{"a header value too long", `'x' in request.headers`, func(in *Input) { in.Headers["x-big"] = long(MaxHeaderLength + 1) }, "request.headers"},
		{"a header name too long", `'x' in request.headers`, func(in *Input) { in.Headers[long(MaxHeaderLength+1)] = "v" }, "request.headers"},
		{"too many headers", `'x' in request.headers`, func(in *Input) { in.Headers = manyHeaders }, "request.headers"},
		{"a scope too long", `'x' in request.auth.scopes`, func(in *Input) { in.Scopes = append(in.Scopes, long(MaxScopeLength+1)) }, "request.auth.scopes"},
		{"too many scopes", `'x' in request.auth.scopes`, func(in *Input) { in.Scopes = manyScopes(MaxScopes + 1) }, "request.auth.scopes"},
		{"a claim too long", `has(request.auth.claims.x)`, func(in *Input) { in.Claims["big"] = long(MaxClaimLength + 1) }, "request.auth.claims"},
		{"a claim key too long", `has(request.auth.claims.x)`, func(in *Input) { in.Claims[long(MaxClaimLength+1)] = true }, "request.auth.claims"},
		{"a claim array too long", `has(request.auth.claims.x)`, func(in *Input) { in.Claims["groups"] = manyGroups }, "request.auth.claims"},
		{"a string deep in a claim too long", `has(request.auth.claims.x)`, func(in *Input) {
			in.Claims["org"] = map[string]any{"teams": []any{map[string]any{"name": long(MaxClaimLength + 1)}}}
		}, "request.auth.claims"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Compile([]Rule{deny("reads", tt.expr), deny("other", `resource.name == 'never'`)})
			if err != nil {
				t.Fatal(err)
			}
			if d := p.Evaluate(sre()); !d.Allowed {
				t.Fatalf("within the bounds the rule refuses: %+v", d)
			}
			d := p.Evaluate(with(tt.change))
			if d.Allowed || d.Rule != "reads" || len(d.Evaluations) != 1 ||
				!strings.HasPrefix(fmt.Sprint(d.Evaluations[0].Err), tt.attr+" exceeds the policy's bounds") {
				t.Errorf("Evaluate = %+v, want refused by rule reads, failing closed on %s", d, tt.attr)
			}
		})
	}
}

func TestAttributesAtTheirBoundsAreRead(t *testing.T) {
	worst := largestInput()
	p, err := Compile([]Rule{allow("all", `size(request.auth.principal) == 2048 && size(request.headers) == 64 && `+
		`size(request.auth.scopes) == 64 && size(request.auth.claims) == 128 && size(request.auth.claims.groups) == 128 && `+
		`size(request.auth.claims.groups[0]) == 1024 && size(resource.name) == 2048`)})
	if err != nil {
		t.Fatal(err)
	}
	if d := p.Evaluate(worst); !d.Allowed {
		t.Errorf("Evaluate = %+v, want allowed", d)
	}
}
