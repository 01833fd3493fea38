package policy

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func deny(name, expr string) Rule  { return Rule{Effect: Deny, Name: name, Expr: expr} }
func allow(name, expr string) Rule { return Rule{Effect: Allow, Name: name, Expr: expr} }

// sre is a cancel as the handler would describe it after verification.
func sre() *Input {
	return &Input{
		Principal: "alice@sre.example.com",
		Scopes:    []string{"https://www.googleapis.com/auth/cloud-platform", "https://www.googleapis.com/auth/ediscovery.readonly"},
		Claims: map[string]any{
			"hd":     "example.com",
			"level":  float64(3),
			"groups": []any{"admin", "oncall"},
			"org":    map[string]any{"team": "sre"},
		},
		Verifier: "jwt",
		Time:     time.Date(2026, 3, 2, 17, 30, 0, 0, time.UTC),
		ClientIP: "10.0.0.7",
		Headers:  map[string]string{"x-team": "sre", "user-agent": "gcloud/470"},
		Protocol: "grpc",
		Service:  "vault.googleapis.com",
		Method:   "vault.operations.cancel",
		Name:     "operations/export-42",
	}
}

func with(change func(*Input)) *Input {
	in := sre()
	change(in)
	return in
}

func manyScopes(n int) []string {
	s := make([]string, n)
	for i := range s {
		s[i] = fmt.Sprintf("https://www.googleapis.com/auth/scope-%d", i)
	}
	return s
}

func TestEvaluate(t *testing.T) {
	// tooMany holds more scopes than the policy's bounds let a rule see.
	tooMany := with(func(in *Input) { in.Scopes = manyScopes(MaxScopes + 1) })

	tests := []struct {
		name    string
		rules   []Rule
		in      *Input
		allowed bool
		rule    string
		effect  Effect
		errs    []string // substrings of the evaluation errors, in order
	}{
		{
			name:    "a true allow rule allows, naming the rule",
			rules:   []Rule{allow("sre", `request.auth.principal.endsWith('@sre.example.com')`)},
			in:      sre(),
			allowed: true, rule: "sre", effect: Allow,
		},
		{
			name: "deny rules are evaluated before allow rules, wherever they are written",
			rules: []Rule{
				allow("sre", `request.auth.principal.endsWith('@sre.example.com')`),
				deny("no-grpc", `request.protocol == 'grpc'`),
			},
			in:   sre(),
			rule: "no-grpc", effect: Deny,
		},
		{
			name: "the first true deny rule in order decides",
			rules: []Rule{
				deny("contractors", `request.auth.principal.endsWith('@contractors.example.com')`),
				deny("exports", `resource.name.startsWith('operations/export-')`),
				deny("vault", `resource.service == 'vault.googleapis.com'`),
			},
			in:   sre(),
			rule: "exports", effect: Deny,
		},
		{
			name: "the first true allow rule in order decides",
			rules: []Rule{
				allow("contractors", `request.auth.principal.endsWith('@contractors.example.com')`),
				allow("own-exports", `resource.service == 'vault.googleapis.com' && resource.name.startsWith('operations/export-')`),
				allow("sre", `request.auth.principal.endsWith('@sre.example.com')`),
			},
			in:      sre(),
			allowed: true, rule: "own-exports", effect: Allow,
		},
		{
			name: "when no allow rule is true the request is refused by rule default",
			rules: []Rule{
				deny("contractors", `request.auth.principal.endsWith('@contractors.example.com')`),
				allow("ops", `request.auth.principal.endsWith('@ops.example.com')`),
			},
			in:   sre(),
			rule: "default", effect: Deny,
		},
		{
			name:    "without allow rules what no deny rule refuses is allowed",
			rules:   []Rule{deny("contractors", `request.auth.principal.endsWith('@contractors.example.com')`)},
			in:      sre(),
			allowed: true, rule: "", effect: Allow,
		},
		{
			name:  "without allow rules a true deny rule still refuses",
			rules: []Rule{deny("contractors", `request.auth.principal.endsWith('@contractors.example.com')`)},
			in:    with(func(in *Input) { in.Principal = "bob@contractors.example.com" }),
			rule:  "contractors", effect: Deny,
		},
		{
			name:    "an empty policy allows",
			in:      sre(),
			allowed: true, effect: Allow,
		},
		{
			name:    "a header rule compares a lower-case header",
			rules:   []Rule{allow("team", `request.headers['x-team'] == 'sre' && request.headers['user-agent'].startsWith('gcloud/')`)},
			in:      sre(),
			allowed: true, rule: "team", effect: Allow,
		},
		{
			name:  "a header rule can test for the header first",
			rules: []Rule{allow("team", `'x-team' in request.headers && request.headers['x-team'] == 'sre'`)},
			in:    with(func(in *Input) { in.Headers = nil }),
			rule:  "default", effect: Deny,
		},
		{
			name:    "a string claim is read by index",
			rules:   []Rule{allow("domain", `request.auth.claims['hd'] == 'example.com'`)},
			in:      sre(),
			allowed: true, rule: "domain", effect: Allow,
		},
		{
			name:    "a nested claim is read by field selection",
			rules:   []Rule{allow("team", `request.auth.claims.org.team == 'sre'`)},
			in:      sre(),
			allowed: true, rule: "team", effect: Allow,
		},
		{
			name:    "a list claim supports membership",
			rules:   []Rule{allow("admins", `'admin' in request.auth.claims.groups`)},
			in:      sre(),
			allowed: true, rule: "admins", effect: Allow,
		},
		{
			name:  "a list claim without the member does not allow",
			rules: []Rule{allow("admins", `'admin' in request.auth.claims.groups`)},
			in:    with(func(in *Input) { in.Claims["groups"] = []any{"oncall"} }),
			rule:  "default", effect: Deny,
		},
		{
			name:    "a JSON number claim compares with an int literal",
			rules:   []Rule{allow("senior", `request.auth.claims.level >= 3`)},
			in:      sre(),
			allowed: true, rule: "senior", effect: Allow,
		},
		{
			name:  "has() tells whether a claim is present",
			rules: []Rule{deny("no-domain", `!has(request.auth.claims.hd)`)},
			in:    with(func(in *Input) { delete(in.Claims, "hd") }),
			rule:  "no-domain", effect: Deny,
		},
		{
			name:    "a time rule reads the request's hour in UTC",
			rules:   []Rule{allow("office-hours", `request.time.getHours() < 18`)},
			in:      sre(),
			allowed: true, rule: "office-hours", effect: Allow,
		},
		{
			name:  "a time rule refuses after hours",
			rules: []Rule{allow("office-hours", `request.time.getHours() < 18`)},
			in:    with(func(in *Input) { in.Time = time.Date(2026, 3, 2, 18, 0, 0, 0, time.UTC) }),
			rule:  "default", effect: Deny,
		},
		{
			name:  "a time rule can read the hour at an offset",
			rules: []Rule{allow("office-hours", `request.time.getHours('+01:00') < 18`)},
			in:    sre(),
			rule:  "default", effect: Deny,
		},
		{
			name:  "a time rule compares with a timestamp literal",
			rules: []Rule{deny("freeze", `request.time >= timestamp('2026-03-01T00:00:00Z') && request.time < timestamp('2026-03-08T00:00:00Z')`)},
			in:    sre(),
			rule:  "freeze", effect: Deny,
		},
		{
			name:    "a scope rule tests membership",
			rules:   []Rule{allow("platform", `'https://www.googleapis.com/auth/cloud-platform' in request.auth.scopes`)},
			in:      sre(),
			allowed: true, rule: "platform", effect: Allow,
		},
		{
			name:  "a scope rule can use a macro",
			rules: []Rule{deny("read-only", `request.auth.scopes.all(s, s.endsWith('.readonly'))`)},
			in:    with(func(in *Input) { in.Scopes = []string{"https://www.googleapis.com/auth/ediscovery.readonly"} }),
			rule:  "read-only", effect: Deny,
		},
		{
			name:  "a protocol rule reads the front door",
			rules: []Rule{deny("no-batch", `request.protocol == 'batch'`)},
			in:    with(func(in *Input) { in.Protocol = "batch" }),
			rule:  "no-batch", effect: Deny,
		},
		{
			name: "the strings extension is available",
			rules: []Rule{allow("strings",
				`request.auth.principal.lowerAscii().endsWith('@sre.example.com') && resource.name.split('/')[1].matches('^export-[0-9]+$') && resource.method.contains('operations')`)},
			in:      with(func(in *Input) { in.Principal = "Alice@SRE.example.com" }),
			allowed: true, rule: "strings", effect: Allow,
		},
		{
			name:    "verifier and client address are attributes",
			rules:   []Rule{allow("internal-jwt", `request.auth.verifier == 'jwt' && request.client_ip.startsWith('10.')`)},
			in:      sre(),
			allowed: true, rule: "internal-jwt", effect: Allow,
		},
		{
			name:  "a deny rule reading a missing header fails closed and refuses",
			rules: []Rule{deny("contractor-team", `request.headers['x-contractor'] == 'yes'`)},
			in:    sre(),
			rule:  "contractor-team", effect: Deny,
			errs: []string{"no such key: x-contractor"},
		},
		{
			name:  "an allow rule reading a missing header fails closed and does not allow",
			rules: []Rule{allow("team", `request.headers['x-team'] == 'sre'`)},
			in:    with(func(in *Input) { delete(in.Headers, "x-team") }),
			rule:  "default", effect: Deny,
			errs: []string{"no such key: x-team"},
		},
		{
			name:  "a deny rule meeting a claim of another type fails closed and refuses",
			rules: []Rule{deny("outsiders", `!request.auth.claims.hd.endsWith('example.com')`)},
			in:    with(func(in *Input) { in.Claims["hd"] = float64(7) }),
			rule:  "outsiders", effect: Deny,
			errs: []string{"no such overload"},
		},
		{
			name:  "an allow rule meeting a claim of another type fails closed and does not allow",
			rules: []Rule{allow("insiders", `request.auth.claims.hd.endsWith('example.com')`)},
			in:    with(func(in *Input) { in.Claims["hd"] = []any{"example.com"} }),
			rule:  "default", effect: Deny,
			errs: []string{"no such overload"},
		},
		{
			name:  "an allow rule reading a claim of a token without claims fails closed",
			rules: []Rule{allow("insiders", `request.auth.claims.hd == 'example.com'`)},
			in:    with(func(in *Input) { in.Claims = nil }),
			rule:  "default", effect: Deny,
			errs: []string{"no such key: hd"},
		},
		{
			name:  "a deny rule reading an attribute beyond the policy's bounds fails closed and refuses",
			rules: []Rule{deny("no-admin-scope", `'https://www.googleapis.com/auth/admin' in request.auth.scopes`)},
			in:    tooMany,
			rule:  "no-admin-scope", effect: Deny,
			errs: []string{"request.auth.scopes exceeds the policy's bounds"},
		},
		{
			name:  "an allow rule reading an attribute beyond the policy's bounds fails closed and does not allow",
			rules: []Rule{allow("cloud", `request.auth.scopes.exists(s, s.endsWith('/cloud-platform'))`)},
			in:    tooMany,
			rule:  "default", effect: Deny,
			errs: []string{"request.auth.scopes exceeds the policy's bounds"},
		},
		{
			name: "an erring allow rule does not keep a later true one from allowing",
			rules: []Rule{
				allow("team", `request.headers['x-missing'] == 'sre'`),
				allow("sre", `request.auth.principal.endsWith('@sre.example.com')`),
			},
			in:      sre(),
			allowed: true, rule: "sre", effect: Allow,
			errs: []string{"no such key: x-missing"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Compile(tt.rules)
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			for _, f := range []struct {
				name string
				eval func(*Input) Decision
			}{{"Evaluate", p.Evaluate}, {"Explain", p.Explain}} {
				d := f.eval(tt.in)
				if d.Allowed != tt.allowed || d.Rule != tt.rule || d.Effect != tt.effect {
					t.Errorf("%s = allowed %v by %q (%v), want allowed %v by %q (%v); evaluations %+v",
						f.name, d.Allowed, d.Rule, d.Effect, tt.allowed, tt.rule, tt.effect, d.Evaluations)
				}
				var errs []error
				for _, ev := range d.Evaluations {
					if ev.Err != nil {
						errs = append(errs, ev.Err)
						if ev.Value || ev.Holds() != (ev.Effect == Deny) {
							t.Errorf("%s: rule %q erred with value %v, holds %v: not failing closed", f.name, ev.Rule, ev.Value, ev.Holds())
						}
					}
				}
				if len(errs) != len(tt.errs) {
					t.Fatalf("%s: evaluation errors %v, want %q", f.name, errs, tt.errs)
				}
				for i, want := range tt.errs {
					if !strings.Contains(errs[i].Error(), want) {
						t.Errorf("%s: evaluation error %q, want it to contain %q", f.name, errs[i], want)
					}
				}
			}
		})
	}
}

func TestExplainReportsEveryRuleAndEvaluateStopsAtTheDecision(t *testing.T) {
	p, err := Compile([]Rule{
		allow("sre", `request.auth.principal.endsWith('@sre.example.com')`),
		deny("contractors", `request.auth.principal.endsWith('@contractors.example.com')`),
		allow("team", `request.headers['x-missing'] == 'sre'`),
		allow("vault", `resource.service == 'vault.googleapis.com'`),
		deny("batch", `request.protocol == 'batch'`),
	})
	if err != nil {
		t.Fatal(err)
	}
	type outcome struct {
		rule   string
		effect Effect
		value  bool
		erred  bool
	}
	outcomes := func(d Decision) []outcome {
		var out []outcome
		for _, ev := range d.Evaluations {
			out = append(out, outcome{ev.Rule, ev.Effect, ev.Value, ev.Err != nil})
		}
		return out
	}

	explained := p.Explain(sre())
	want := []outcome{
		{"contractors", Deny, false, false},
		{"batch", Deny, false, false},
		{"sre", Allow, true, false},
		{"team", Allow, false, true},
		{"vault", Allow, true, false},
	}
	if got := outcomes(explained); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Explain evaluations = %v, want %v", got, want)
	}
	if !explained.Allowed || explained.Rule != "sre" {
		t.Errorf("Explain = allowed %v by %q, want allowed by sre", explained.Allowed, explained.Rule)
	}

	// Evaluate decides at "sre": the erring "team" after it is never run,
	// and the false rules before it are not recorded.
	evaluated := p.Evaluate(sre())
	if got := outcomes(evaluated); len(got) != 0 {
		t.Errorf("Evaluate evaluations = %v, want none", got)
	}
	if !evaluated.Allowed || evaluated.Rule != "sre" {
		t.Errorf("Evaluate = allowed %v by %q, want allowed by sre", evaluated.Allowed, evaluated.Rule)
	}
}

func TestCompileRefusesBadRules(t *testing.T) {
	ok := allow("sre", `request.auth.principal.endsWith('@sre.example.com')`)
	tests := []struct {
		name  string
		rules []Rule
		index int
		want  string
	}{
		{
			name:  "a string expression is not a rule",
			rules: []Rule{allow("who", `request.auth.principal`)},
			want:  `rule "who": the expression is string, a rule must be bool`,
		},
		{
			name:  "a bare claim is dyn and must be compared",
			rules: []Rule{allow("admins", `request.auth.claims.admin`)},
			want:  `rule "admins": the expression is dyn, a rule must be bool: compare the value, e.g. ` + "`== true`",
		},
		{
			name:  "a misspelt attribute is an undefined field at its column",
			rules: []Rule{ok, deny("contractors", `request.auth.princpal.endsWith('@contractors.example.com')`)},
			index: 1,
			want:  `rule "contractors": column 13: undefined field 'princpal'`,
		},
		{
			name:  "an unknown root is an undeclared reference",
			rules: []Rule{deny("typo", `requst.auth.principal == ''`)},
			want:  `rule "typo": column 1: undeclared reference to 'requst'`,
		},
		{
			name:  "an attribute of another object is an undefined field",
			rules: []Rule{deny("mixed", `resource.principal == ''`)},
			want:  `rule "mixed": column 9: undefined field 'principal'`,
		},
		{
			name:  "an unknown function is refused",
			rules: []Rule{deny("case", `request.auth.principal.endswith('x')`)},
			want:  `rule "case": column 32: undeclared reference to 'endswith'`,
		},
		{
			name:  "a syntax error keeps CEL's message",
			rules: []Rule{deny("cut", `request.auth.principal ==`)},
			want:  `rule "cut": column 26: Syntax error: mismatched input '<EOF>'`,
		},
		{
			name:  "a multi-line expression gives line and column",
			rules: []Rule{deny("long", "request.protocol == 'grpc' &&\n  request.auth.scope == ''")},
			want:  `rule "long": line 2, column 15: undefined field 'scope'`,
		},
		{
			name:  "a duplicate name is refused at its second use",
			rules: []Rule{ok, deny("other", `true`), allow("sre", `false`)},
			index: 2,
			want:  `rule "sre": the name is used by an earlier rule`,
		},
		{
			name:  "the name default is reserved",
			rules: []Rule{ok, deny("default", `true`)},
			index: 1,
			want:  `rule "default": the name "default" is reserved for the refusal when no allow rule matches`,
		},
		{
			name:  "an unnamed rule is refused by position",
			rules: []Rule{ok, allow("", `true`)},
			index: 1,
			want:  `rule #2: a rule needs a name`,
		},
		{
			name:  "an empty expression is refused",
			rules: []Rule{deny("blank", " \t")},
			want:  `rule "blank": empty expression`,
		},
		{
			name:  "an unknown effect is refused",
			rules: []Rule{{Effect: 7, Name: "odd", Expr: `true`}},
			want:  `rule "odd": unknown effect Effect(7)`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Compile(tt.rules)
			if err == nil {
				t.Fatalf("Compile = %d rules, want error %q", p.Len(), tt.want)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("Compile error = %q, want it to start with %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("Compile error spans lines: %q", err)
			}
			var re *RuleError
			if !errors.As(err, &re) || re.Index != tt.index {
				t.Errorf("Compile error = %#v, want a *RuleError at index %d", err, tt.index)
			}
		})
	}
}

func TestCompileKeepsTheRulesAsGiven(t *testing.T) {
	rules := []Rule{
		allow("sre", `request.auth.principal.endsWith('@sre.example.com')`),
		deny("contractors", `request.auth.principal.endsWith('@contractors.example.com')`),
	}
	p, err := Compile(rules)
	if err != nil {
		t.Fatal(err)
	}
	rules[0].Name = "changed"
	if p.Len() != 2 {
		t.Errorf("Len = %d, want 2", p.Len())
	}
	got := p.Rules()
	if got[0].Name != "sre" || got[1].Name != "contractors" || got[1].Effect != Deny {
		t.Errorf("Rules = %+v, want sre then contractors, unaffected by the caller's slice", got)
	}
}

func TestEffectsReadAndWriteAsTheRecordsWords(t *testing.T) {
	for e, want := range map[Effect]string{Allow: "allow", Deny: "deny", 9: "Effect(9)"} {
		if got := e.String(); got != want {
			t.Errorf("Effect(%d).String() = %q, want %q", uint8(e), got, want)
		}
	}
	for _, e := range []Effect{Allow, Deny} {
		if got, err := ParseEffect(e.String()); got != e || err != nil {
			t.Errorf("ParseEffect(%q) = %v, %v; want %v", e.String(), got, err, e)
		}
	}
	for _, s := range []string{"", "Allow", "permit"} {
		if _, err := ParseEffect(s); err == nil {
			t.Errorf("ParseEffect(%q) succeeded, want an error", s)
		}
	}
}

func BenchmarkEvaluate(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		// n-1 rules that are false for the input, and a true allow rule last,
		// so that every rule runs: the worst case for a request that passes.
		var rules []Rule
		for i := 0; i < n-1; i++ {
			switch i % 3 {
			case 0:
				rules = append(rules, deny(fmt.Sprintf("contractor-%d", i), fmt.Sprintf(`request.auth.principal.endsWith('@contractor-%d.example.com')`, i)))
			case 1:
				rules = append(rules, allow(fmt.Sprintf("exports-%d", i), fmt.Sprintf(`resource.name.startsWith('operations/export-%d-')`, i)))
			default:
				rules = append(rules, allow(fmt.Sprintf("team-%d", i), fmt.Sprintf(`request.headers['x-team'] == 'team-%d'`, i)))
			}
		}
		rules = append(rules, allow("sre", `request.auth.principal.endsWith('@sre.example.com') && request.headers['x-team'] == 'sre'`))
		p, err := Compile(rules)
		if err != nil {
			b.Fatal(err)
		}
		in := sre()
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if d := p.Evaluate(in); !d.Allowed {
					b.Fatalf("refused by %q: %+v", d.Rule, d.Evaluations)
				}
			}
		})
	}
}
