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
	// plain reads the key straight from the Input when the expression is
	// one string attribute (the default key is): the same value, checked
	// against the same bounds, without an evaluation, on every cancel.
	plain *plainKey
}

// plainKey is a string attribute a key may name alone: where it is in the
// attribute table (for its bounds) and how to read it.
type plainKey struct {
	typeName, field string
	read            func(*Input) string
	check           func(*Input) error // the attribute's bounds, set by CompileKey
}

var plainKeys = map[string]plainKey{
	"request.auth.principal": {typeName: authType, field: "principal", read: func(in *Input) string { return in.Principal }},
	"request.auth.verifier":  {typeName: authType, field: "verifier", read: func(in *Input) string { return in.Verifier }},
	"request.client_ip":      {typeName: requestType, field: "client_ip", read: func(in *Input) string { return in.ClientIP }},
	"request.protocol":       {typeName: requestType, field: "protocol", read: func(in *Input) string { return in.Protocol }},
	"resource.service":       {typeName: resourceType, field: "service", read: func(in *Input) string { return in.Service }},
	"resource.method":        {typeName: resourceType, field: "method", read: func(in *Input) string { return in.Method }},
	"resource.name":          {typeName: resourceType, field: "name", read: func(in *Input) string { return in.Name }},
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
	if err := checkCost(env, ast); err != nil {
		return nil, err
	}
	prg, err := env.Program(ast, cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, fmt.Errorf("planning the key expression: %w", err)
	}
	k := &Key{expr: expr, prg: prg}
	if p, ok := plainKeys[strings.TrimSpace(expr)]; ok {
		p.check = attributes[p.typeName][p.field].check
		k.plain = &p
	}
	return k, nil
}

// String returns the expression as it was written.
func (k *Key) String() string { return k.expr }

// Eval computes the key for one cancel. An evaluation error (a missing
// claim, a value beyond the policy's bounds) is returned as it is; the
// caller fails closed.
func (k *Key) Eval(in *Input) (string, error) {
	if p := k.plain; p != nil {
		if p.check != nil {
			if err := p.check(in); err != nil {
				return "", err
			}
		}
		return p.read(in), nil
	}
	st := statePool.Get().(*evalState)
	st.in = in
	defer func() {
		*st = evalState{}
		statePool.Put(st)
	}()
	out, _, err := k.prg.Eval(activation{st})
	if err != nil {
		return "", err
	}
	s, ok := out.(types.String)
	if !ok { // the checker proved the type; this only guards the assertion
		return "", fmt.Errorf("the key gave %s, not a string", out.Type().TypeName())
	}
	return string(s), nil
}
