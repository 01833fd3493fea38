// Package policy decides, by CEL rules, which principals may cancel which
// operations through the gateway.
//
// A policy is a list of allow and deny rules, each a CEL expression over the
// attributes named as in Google's IAM Conditions and Envoy/Istio
// (request.auth.principal, resource.name, ...; see the SPEC's table). Rules
// are compiled once, by [Compile], and decided by [Policy.Evaluate]:
//
//   - deny rules first, in order: the first true one refuses;
//   - then, if any allow rule exists, the first true allow rule allows, and
//     when none is true the request is refused by the rule named "default";
//   - with no allow rule, what no deny rule refuses is allowed.
//
// Evaluation fails closed: a rule whose evaluation errs (a missing key, a
// type error, the cost limit) counts as true for a deny rule and false for an
// allow rule.
package policy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
)

// DefaultRule names the implicit rule that refuses a request no allow rule
// admits. No configured rule may take this name.
const DefaultRule = "default"

// CostLimit bounds the worst-case cost of one rule's evaluation, in CEL's
// cost units (roughly one per basic operation; a string function costs
// about a tenth of a unit per byte it reads). Realistic rules cost tens of
// units; the limit is there so that a client cannot make a rule scan a
// megabyte header against a regular expression on every cancel. It is
// enforced at compile time: [Compile] refuses a rule whose cost, estimated
// by cel-go's checker over inputs within the policy's bounds (see
// MaxStringLength and the other bounds), could exceed it; an input beyond
// the bounds is an evaluation error for the rules that read it, which
// fails closed.
const CostLimit = 10_000

// Effect is what a rule does when it is true.
type Effect uint8

// The zero Effect is Deny, so that a rule or decision whose effect was never
// set errs on the side of refusing.
const (
	Deny Effect = iota
	Allow
)

// String returns "allow" or "deny", as the audit record's policy_effect says.
func (e Effect) String() string {
	switch e {
	case Allow:
		return "allow"
	case Deny:
		return "deny"
	}
	return fmt.Sprintf("Effect(%d)", uint8(e))
}

// ParseEffect reads "allow" or "deny", as the Caddyfile and JSON write them.
func ParseEffect(s string) (Effect, error) {
	switch s {
	case "allow":
		return Allow, nil
	case "deny":
		return Deny, nil
	}
	return 0, fmt.Errorf("effect %q is neither allow nor deny", s)
}

// Rule is one named CEL expression and what it does when true.
type Rule struct {
	Effect Effect
	Name   string
	Expr   string
}

// RuleError is a rule that does not compile. Index is the rule's position
// (from 0) in the list given to [Compile], so that a caller that knows where each rule
// was written (a Caddyfile line) can say so even when the name is the
// problem.
type RuleError struct {
	Index int
	Name  string
	Err   error
}

func (e *RuleError) Error() string {
	if e.Name == "" {
		return fmt.Sprintf("rule #%d: %v", e.Index+1, e.Err)
	}
	return fmt.Sprintf("rule %q: %v", e.Name, e.Err)
}

func (e *RuleError) Unwrap() error { return e.Err }

// Policy is a compiled list of rules. It is immutable and safe for
// concurrent use.
type Policy struct {
	rules []Rule
	// order holds the programs in evaluation order: deny rules, then allow
	// rules, each in the order they were given.
	order  []compiled
	allows int
}

type compiled struct {
	name   string
	effect Effect
	prg    cel.Program
}

// Compile type-checks and plans every rule once. A rule must be bool-valued,
// name only known attributes, and carry a non-empty, unique name other than
// [DefaultRule]. The error, a *[RuleError], names the first rule that fails.
func Compile(rules []Rule) (*Policy, error) {
	env, err := environment()
	if err != nil {
		return nil, fmt.Errorf("setting up the CEL environment: %w", err)
	}
	p := &Policy{rules: slices.Clone(rules)}
	var denies, allows []compiled
	seen := make(map[string]bool, len(rules))
	for i, r := range rules {
		c, err := compileRule(env, r, seen)
		if err != nil {
			return nil, &RuleError{Index: i, Name: r.Name, Err: err}
		}
		seen[r.Name] = true
		if r.Effect == Allow {
			allows = append(allows, c)
		} else {
			denies = append(denies, c)
		}
	}
	p.order = append(denies, allows...)
	p.allows = len(allows)
	return p, nil
}

func compileRule(env *cel.Env, r Rule, seen map[string]bool) (compiled, error) {
	switch {
	case r.Name == "":
		return compiled{}, errors.New("a rule needs a name")
	case r.Name == DefaultRule:
		return compiled{}, fmt.Errorf("the name %q is reserved for the refusal when no allow rule matches", DefaultRule)
	case seen[r.Name]:
		return compiled{}, errors.New("the name is used by an earlier rule")
	case r.Effect != Allow && r.Effect != Deny:
		return compiled{}, fmt.Errorf("unknown effect %v", r.Effect)
	case strings.TrimSpace(r.Expr) == "":
		return compiled{}, errors.New("empty expression")
	}
	ast, iss := env.Compile(r.Expr)
	if iss.Err() != nil {
		return compiled{}, issuesError(r.Expr, iss)
	}
	if out := ast.OutputType(); !out.IsExactType(types.BoolType) {
		if out.IsExactType(types.DynType) {
			// A claim read as it is (request.auth.claims.admin) is dyn; the
			// rule has to say what it expects of it.
			return compiled{}, errors.New("the expression is dyn, a rule must be bool: compare the value, e.g. `== true`")
		}
		return compiled{}, fmt.Errorf("the expression is %s, a rule must be bool", out)
	}
	if err := checkCost(env, ast); err != nil {
		return compiled{}, err
	}
	// No cel.CostLimit: checkCost proved the bound, and tracking the cost
	// at run time was most of what a rule cost.
	prg, err := env.Program(ast, cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return compiled{}, fmt.Errorf("planning the expression: %w", err)
	}
	return compiled{name: r.Name, effect: r.Effect, prg: prg}, nil
}

// issuesError keeps CEL's messages and their position in the expression, but
// not the echoed source and caret, which a Caddyfile error line cannot show.
func issuesError(expr string, iss *cel.Issues) error {
	multiline := strings.Contains(expr, "\n")
	var msgs []string
	for _, e := range iss.Errors() {
		msg := strings.TrimSuffix(e.Message, " (in container '')")
		loc := e.Location
		switch {
		case loc == nil || loc.Line() <= 0:
			msgs = append(msgs, msg)
		case multiline:
			msgs = append(msgs, fmt.Sprintf("line %d, column %d: %s", loc.Line(), loc.Column()+1, msg))
		default:
			msgs = append(msgs, fmt.Sprintf("column %d: %s", loc.Column()+1, msg))
		}
	}
	return errors.New(strings.Join(msgs, "; "))
}

// Len returns the number of rules.
func (p *Policy) Len() int { return len(p.rules) }

// Rules returns the rules as they were given to [Compile].
func (p *Policy) Rules() []Rule { return slices.Clone(p.rules) }

// Input is what the rules see of one cancel. Claims holds JSON-decoded
// values (string, float64, bool, []any, map[string]any, nil); Headers has
// lower-case names and never a credential.
type Input struct {
	Principal string
	Scopes    []string
	Claims    map[string]any
	Verifier  string
	Time      time.Time
	ClientIP  string
	Headers   map[string]string
	Protocol  string
	Service   string
	Method    string
	Name      string
	// Reason and UserProject are the caller's request reason and quota
	// project, "" when none.
	Reason, UserProject string
}

// Evaluation is one rule's outcome. Value is false when Err is set; the
// error then counts as true for a deny rule and false for an allow rule.
type Evaluation struct {
	Rule   string
	Effect Effect
	Value  bool
	Err    error
}

// Holds reports whether the rule takes effect: its value, or, when it erred,
// true for a deny rule and false for an allow rule (failing closed).
func (e Evaluation) Holds() bool {
	if e.Err != nil {
		return e.Effect == Deny
	}
	return e.Value
}

// Decision is the policy's answer for one cancel.
type Decision struct {
	Allowed bool
	// Rule is the deciding rule: the true deny rule, the true allow rule,
	// [DefaultRule] when allow rules exist and none was true, or "" when the
	// policy has no allow rule and no deny rule refused.
	Rule   string
	Effect Effect
	// Evaluations holds, from [Policy.Evaluate], the evaluations that erred
	// (each one decided by failing closed); from [Policy.Explain], every
	// rule. Either way in evaluation order: deny rules, then allow rules.
	Evaluations []Evaluation
}

// Evaluate decides in, evaluating rules only until the decision is known.
func (p *Policy) Evaluate(in *Input) Decision { return p.decide(in, false) }

// Explain decides in as [Policy.Evaluate] does, but evaluates every rule and
// reports each value or error, for `caddy lro-cancel explain`.
func (p *Policy) Explain(in *Input) Decision { return p.decide(in, true) }

// decide is the one decision logic; all only says whether to go on
// evaluating, and recording, once the decision is known.
func (p *Policy) decide(in *Input, all bool) Decision {
	d := Decision{Allowed: true, Effect: Allow}
	if p.allows > 0 {
		d = Decision{Rule: DefaultRule, Effect: Deny}
	}
	if all {
		d.Evaluations = make([]Evaluation, 0, len(p.order))
	}
	st := statePool.Get().(*evalState)
	st.in = in
	defer func() {
		*st = evalState{}
		statePool.Put(st)
	}()
	act := activation{st}
	decided := false
	for _, c := range p.order {
		if decided && !all {
			break
		}
		ev := c.eval(act)
		if all || ev.Err != nil {
			d.Evaluations = append(d.Evaluations, ev)
		}
		if !decided && ev.Holds() {
			decided = true
			d.Allowed, d.Rule, d.Effect = c.effect == Allow, c.name, c.effect
		}
	}
	return d
}

func (c *compiled) eval(act activation) Evaluation {
	ev := Evaluation{Rule: c.name, Effect: c.effect}
	out, _, err := c.prg.Eval(act)
	if err != nil {
		ev.Err = err
		return ev
	}
	b, ok := out.(types.Bool)
	if !ok { // the checker proved the type; this only guards the assertion
		ev.Err = fmt.Errorf("the rule gave %s, not a bool", out.Type().TypeName())
		return ev
	}
	ev.Value = bool(b)
	return ev
}

var _ error = (*RuleError)(nil)
