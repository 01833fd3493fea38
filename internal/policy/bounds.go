package policy

import (
	"fmt"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/checker"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"
)

// The bounds of what a rule sees. A rule's cost is proven at compile time:
// cel-go's checker estimates its worst case from these sizes, and a rule
// whose worst case exceeds CostLimit is refused then, by caddy validate.
// Evaluation therefore needs no cost tracking (which was three quarters of
// its cost). The bounds hold at run time because an attribute that exceeds
// them is not handed to the rule: reading it is an evaluation error, which
// fails closed (true for a deny rule, false for an allow rule).
//
// Lengths are in bytes, which bounds CEL's size() of a string, counted in
// code points, from above. They are generous for what the attributes are
// (an email is at most 254 bytes, a scope URL about 60) and tight enough
// that a rule such as a regular expression over a header stays well under
// the limit.
const (
	// MaxStringLength bounds request.auth.principal, request.auth.verifier,
	// request.client_ip, request.protocol, request.reason,
	// request.user_project and resource.service, .method and .name.
	MaxStringLength = 2048
	// MaxHeaders and MaxHeaderLength bound request.headers: how many, and
	// the length of each name and value.
	MaxHeaders      = 64
	MaxHeaderLength = 4096
	// MaxScopes and MaxScopeLength bound request.auth.scopes.
	MaxScopes      = 64
	MaxScopeLength = 256
	// MaxClaimEntries bounds every object and array in request.auth.claims
	// (the claims themselves included), MaxClaimLength every string in
	// them, key or value.
	MaxClaimEntries = 128
	MaxClaimLength  = 1024
)

// estimator gives cel-go's checker the bounds above, by the attribute's
// path (request.auth.scopes is ["request", "auth", "scopes"]; its items
// add "@items", a map's keys and values "@keys" and "@values"). A path it
// does not know, such as a function's result, has no estimate, so the
// checker counts it as unbounded and a rule that depends on it is refused.
//
// shadowed is set when the rule names a comprehension variable request or
// resource: exprBound, which reads paths off the expression alone, then
// cannot tell the attribute from the variable and gives no estimate.
type estimator struct{ shadowed bool }

func (e estimator) EstimateSize(n checker.AstNode) *checker.SizeEstimate {
	switch n.Type().Kind() {
	case types.StringKind, types.BytesKind, types.ListKind, types.MapKind, types.DynKind:
	default:
		return nil // a scalar: the checker knows its size
	}
	max, ok := pathBound(n.Path())
	if !ok && !e.shadowed {
		max, ok = exprBound(n.Expr())
	}
	if !ok {
		return nil
	}
	return &checker.SizeEstimate{Min: 0, Max: max}
}

// pathBound is the bound of the attribute at path p.
func pathBound(p []string) (uint64, bool) {
	switch {
	case len(p) == 2 && p[0] == "request" && p[1] == "headers":
		return MaxHeaders, true
	case len(p) == 3 && p[0] == "request" && p[1] == "headers":
		return MaxHeaderLength, true
	case len(p) == 3 && p[0] == "request" && p[1] == "auth" && p[2] == "scopes":
		return MaxScopes, true
	case len(p) == 4 && p[0] == "request" && p[1] == "auth" && p[2] == "scopes":
		return MaxScopeLength, true
	case len(p) == 3 && p[0] == "request" && p[1] == "auth" && p[2] == "claims":
		return MaxClaimEntries, true
	case len(p) > 3 && p[0] == "request" && p[1] == "auth" && p[2] == "claims":
		// Anything inside: a string, or an object or array.
		return max(MaxClaimLength, MaxClaimEntries), true
	case len(p) == 2 && p[0] == "request" && p[1] != "auth", len(p) == 3 && p[0] == "request" && p[1] == "auth",
		len(p) == 2 && p[0] == "resource":
		return MaxStringLength, true
	}
	return 0, false
}

// exprBound bounds what the checker has no path for but the expression
// shows to be no longer than an attribute: a part of a split string
// (resource.name.split('/')[1]), a string transformed without growing
// (lowerAscii, upperAscii, trim, reverse, substring), a literal.
func exprBound(e ast.Expr) (uint64, bool) {
	switch e.Kind() {
	case ast.LiteralKind:
		if s, ok := e.AsLiteral().(types.String); ok {
			return uint64(len(s)), true
		}
	case ast.IdentKind, ast.SelectKind:
		if p, ok := selectPath(e); ok {
			return pathBound(p)
		}
	case ast.CallKind:
		call := e.AsCall()
		switch call.FunctionName() {
		case "lowerAscii", "upperAscii", "trim", "reverse", "substring":
			if call.IsMemberFunction() {
				return exprBound(call.Target())
			}
		case "_[_]":
			if args := call.Args(); len(args) == 2 && args[0].Kind() == ast.CallKind {
				if split := args[0].AsCall(); split.FunctionName() == "split" && split.IsMemberFunction() {
					return exprBound(split.Target())
				}
			}
		}
	}
	return 0, false
}

// selectPath is the attribute path of request.auth.principal and the
// like, as the checker writes it.
func selectPath(e ast.Expr) ([]string, bool) {
	switch e.Kind() {
	case ast.IdentKind:
		return []string{e.AsIdent()}, true
	case ast.SelectKind:
		sel := e.AsSelect()
		if sel.IsTestOnly() {
			return nil, false
		}
		p, ok := selectPath(sel.Operand())
		return append(p, sel.FieldName()), ok
	}
	return nil, false
}

func (estimator) EstimateCallCost(function, overloadID string, target *checker.AstNode, args []checker.AstNode) *checker.CallEstimate {
	return nil
}

// checkCost refuses a rule whose estimated worst case exceeds CostLimit.
func checkCost(env *cel.Env, a *cel.Ast) error {
	est, err := env.EstimateCost(a, estimator{shadowed: shadowsRoot(a)})
	if err != nil {
		return fmt.Errorf("estimating the expression's cost: %w", err)
	}
	if est.Max > CostLimit {
		return fmt.Errorf("the expression may cost up to %s CEL cost units on inputs within the policy's bounds, more than the limit of %d: "+
			"iterate over fewer or smaller values (a nested comprehension multiplies its sizes)", costString(est.Max), CostLimit)
	}
	return nil
}

// shadowsRoot reports whether a comprehension in the rule names a variable
// request or resource.
func shadowsRoot(a *cel.Ast) bool {
	shadowed := false
	ast.PreOrderVisit(a.NativeRep().Expr(), ast.NewExprVisitor(func(e ast.Expr) {
		if e.Kind() != ast.ComprehensionKind {
			return
		}
		c := e.AsComprehension()
		for _, v := range []string{c.IterVar(), c.IterVar2(), c.AccuVar()} {
			if v == "request" || v == "resource" {
				shadowed = true
			}
		}
	}))
	return shadowed
}

func costString(c uint64) string {
	if c == ^uint64(0) {
		return "an unbounded number of"
	}
	return fmt.Sprint(c)
}

// boundsError is the evaluation error of an attribute beyond its bound.
func boundsError(attr string, limit string) error {
	return fmt.Errorf("%s exceeds the policy's bounds (%s), so no rule may read it", attr, limit)
}

// checkString is nil when s is within MaxStringLength.
func checkString(attr, s string) error {
	if len(s) > MaxStringLength {
		return boundsError(attr, fmt.Sprintf("at most %d bytes", MaxStringLength))
	}
	return nil
}

func checkHeaders(h map[string]string) error {
	if len(h) > MaxHeaders {
		return boundsError("request.headers", fmt.Sprintf("at most %d headers", MaxHeaders))
	}
	for k, v := range h {
		if len(k) > MaxHeaderLength || len(v) > MaxHeaderLength {
			return boundsError("request.headers", fmt.Sprintf("names and values of at most %d bytes", MaxHeaderLength))
		}
	}
	return nil
}

func checkScopes(scopes []string) error {
	if len(scopes) > MaxScopes {
		return boundsError("request.auth.scopes", fmt.Sprintf("at most %d scopes", MaxScopes))
	}
	for _, s := range scopes {
		if len(s) > MaxScopeLength {
			return boundsError("request.auth.scopes", fmt.Sprintf("scopes of at most %d bytes", MaxScopeLength))
		}
	}
	return nil
}

// checkClaims walks the claims once, stopping at the first value beyond a
// bound.
func checkClaims(claims map[string]any) error {
	if !claimWithin(claims) {
		return boundsError("request.auth.claims",
			fmt.Sprintf("objects and arrays of at most %d entries, strings of at most %d bytes", MaxClaimEntries, MaxClaimLength))
	}
	return nil
}

func claimWithin(v any) bool {
	switch v := v.(type) {
	case string:
		return len(v) <= MaxClaimLength
	case []any:
		if len(v) > MaxClaimEntries {
			return false
		}
		for _, e := range v {
			if !claimWithin(e) {
				return false
			}
		}
	case map[string]any:
		if len(v) > MaxClaimEntries {
			return false
		}
		for k, e := range v {
			if len(k) > MaxClaimLength || !claimWithin(e) {
				return false
			}
		}
	}
	return true
}

var _ checker.CostEstimator = estimator{}
