package policy

import (
	"errors"
	"fmt"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
)

// DefaultKey is a limit's key when its rule names none: one quota per
// principal.
const DefaultKey = "request.auth.principal"

// Key is a compiled string-valued CEL expression over the same attributes
// as the rules: what a fleet-wide limit counts by. It is immutable and safe
// for concurrent use.
type Key struct {
	expr string
	prg  cel.Program
	// field reads the key straight from the Input when the expression is
	// one string attribute (the default key is): the same value, without
	// an evaluation, on every cancel.
	field func(*Input) string
}

// plainKeys are the string attributes a key may name alone.
var plainKeys = map[string]func(*Input) string{
	"request.auth.principal": func(in *Input) string { return in.Principal },
	"request.auth.verifier":  func(in *Input) string { return in.Verifier },
	"request.client_ip":      func(in *Input) string { return in.ClientIP },
	"request.protocol":       func(in *Input) string { return in.Protocol },
	"resource.service":       func(in *Input) string { return in.Service },
	"resource.method":        func(in *Input) string { return in.Method },
	"resource.name":          func(in *Input) string { return in.Name },
}

// CompileKey type-checks and plans a key expression once. It must yield a
// string (a claim read as it is is dyn: convert it with string()) and name
// only known attributes.
func CompileKey(expr string) (*Key, error) {
	if strings.TrimSpace(expr) == "" {
		return nil, errors.New("empty key expression")
	}
	env, err := environment()
	if err != nil {
		return nil, fmt.Errorf("setting up the CEL environment: %w", err)
	}
	ast, iss := env.Compile(expr)
	if iss.Err() != nil {
		return nil, issuesError(expr, iss)
	}
	if out := ast.OutputType(); !out.IsExactType(types.StringType) {
		if out.IsExactType(types.DynType) {
			return nil, errors.New("the key is dyn, it must be a string: convert it, e.g. string(request.auth.claims.hd)")
		}
		return nil, fmt.Errorf("the key is %s, it must be a string", out)
	}
	prg, err := env.Program(ast, cel.EvalOptions(cel.OptOptimize), cel.CostLimit(CostLimit))
	if err != nil {
		return nil, fmt.Errorf("planning the key expression: %w", err)
	}
	return &Key{expr: expr, prg: prg, field: plainKeys[strings.TrimSpace(expr)]}, nil
}

// String returns the expression as it was written.
func (k *Key) String() string { return k.expr }

// Eval computes the key for one cancel. An evaluation error (a missing
// claim, the cost limit) is returned as it is; the caller fails closed.
func (k *Key) Eval(in *Input) (string, error) {
	if k.field != nil {
		return k.field(in), nil
	}
	out, _, err := k.prg.Eval(activation{in})
	if err != nil {
		return "", err
	}
	s, ok := out.(types.String)
	if !ok { // the checker proved the type; this only guards the assertion
		return "", fmt.Errorf("the key gave %s, not a string", out.Type().TypeName())
	}
	return string(s), nil
}
