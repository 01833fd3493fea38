package policy

import (
	"fmt"
	"reflect"
	"slices"
	"sync"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/ext"
	"cel.dev/cel-go/interpreter"
)

// The attributes are fields of three object types rather than dotted
// variable names: a misspelt request.auth.princpal is then CEL's "undefined
// field 'princpal'" at its column, where a dotted declaration would only say
// that 'request' is undeclared.
const (
	requestType  = "lro_cancel.Request"
	authType     = "lro_cancel.Auth"
	resourceType = "lro_cancel.Resource"
)

// attribute is one field of those types; get reads it from the Input, set
// answers has() (set when not the zero value), and check, when not nil,
// refuses a value beyond the policy's bounds (see bounds.go) before get.
type attribute struct {
	typ   *types.Type
	get   func(*Input) ref.Val
	set   func(*Input) bool
	check func(*Input) error
}

var attributes = map[string]map[string]attribute{
	requestType: {
		"auth": {authCELType, nil, func(*Input) bool { return true }, nil},
		"time": {types.TimestampType, func(in *Input) ref.Val { return types.Timestamp{Time: in.Time} }, func(in *Input) bool { return !in.Time.IsZero() }, nil},
		"client_ip": {types.StringType, func(in *Input) ref.Val { return types.String(in.ClientIP) }, func(in *Input) bool { return in.ClientIP != "" },
			func(in *Input) error { return checkString("request.client_ip", in.ClientIP) }},
		"headers": {types.NewMapType(types.StringType, types.StringType),
			func(in *Input) ref.Val { return types.NewStringStringMap(types.DefaultTypeAdapter, in.Headers) },
			func(in *Input) bool { return len(in.Headers) > 0 },
			func(in *Input) error { return checkHeaders(in.Headers) }},
		"protocol": {types.StringType, func(in *Input) ref.Val { return types.String(in.Protocol) }, func(in *Input) bool { return in.Protocol != "" },
			func(in *Input) error { return checkString("request.protocol", in.Protocol) }},
		// Always set, "" when the caller gave none, so that a rule can
		// require one without has().
		"reason": {types.StringType, func(in *Input) ref.Val { return types.String(in.Reason) }, func(*Input) bool { return true },
			func(in *Input) error { return checkString("request.reason", in.Reason) }},
		"user_project": {types.StringType, func(in *Input) ref.Val { return types.String(in.UserProject) }, func(*Input) bool { return true },
			func(in *Input) error { return checkString("request.user_project", in.UserProject) }},
	},
	authType: {
		"principal": {types.StringType, func(in *Input) ref.Val { return types.String(in.Principal) }, func(in *Input) bool { return in.Principal != "" },
			func(in *Input) error { return checkString("request.auth.principal", in.Principal) }},
		"scopes": {types.NewListType(types.StringType),
			func(in *Input) ref.Val { return types.NewStringList(types.DefaultTypeAdapter, in.Scopes) },
			func(in *Input) bool { return len(in.Scopes) > 0 },
			func(in *Input) error { return checkScopes(in.Scopes) }},
		"claims": {types.NewMapType(types.StringType, types.DynType),
			func(in *Input) ref.Val { return types.NewStringInterfaceMap(types.DefaultTypeAdapter, in.Claims) },
			func(in *Input) bool { return len(in.Claims) > 0 },
			func(in *Input) error { return checkClaims(in.Claims) }},
		"verifier": {types.StringType, func(in *Input) ref.Val { return types.String(in.Verifier) }, func(in *Input) bool { return in.Verifier != "" },
			func(in *Input) error { return checkString("request.auth.verifier", in.Verifier) }},
	},
	resourceType: {
		"service": {types.StringType, func(in *Input) ref.Val { return types.String(in.Service) }, func(in *Input) bool { return in.Service != "" },
			func(in *Input) error { return checkString("resource.service", in.Service) }},
		"method": {types.StringType, func(in *Input) ref.Val { return types.String(in.Method) }, func(in *Input) bool { return in.Method != "" },
			func(in *Input) error { return checkString("resource.method", in.Method) }},
		"name": {types.StringType, func(in *Input) ref.Val { return types.String(in.Name) }, func(in *Input) bool { return in.Name != "" },
			func(in *Input) error { return checkString("resource.name", in.Name) }},
	},
}

var (
	requestCELType  = types.NewObjectType(requestType)
	authCELType     = types.NewObjectType(authType)
	resourceCELType = types.NewObjectType(resourceType)
)

// object is request, request.auth or resource as a CEL value. All three
// view the same Input (through its evalState), and a struct of one pointer goes into an interface
// without allocating, so reading request.auth.principal allocates only the
// string's box. Being a ref.Val keeps CEL from ever printing the Input (its
// claims and headers) in an error, as it would a Go value it cannot convert.
type object[K objectKind] struct{ st *evalState }

type objectKind interface{ celType() *types.Type }

type (
	requestKind  struct{}
	authKind     struct{}
	resourceKind struct{}
)

func (requestKind) celType() *types.Type  { return requestCELType }
func (authKind) celType() *types.Type     { return authCELType }
func (resourceKind) celType() *types.Type { return resourceCELType }

func (o object[K]) Type() ref.Type { var k K; return k.celType() }

// Value is what the fields' GetFrom receive.
func (o object[K]) Value() any { return o.st }

func (o object[K]) Equal(other ref.Val) ref.Val {
	p, ok := other.(object[K])
	return types.Bool(ok && p.st == o.st)
}

func (o object[K]) ConvertToNative(t reflect.Type) (any, error) {
	return nil, fmt.Errorf("%s has no native form", o.Type().TypeName())
}

func (o object[K]) ConvertToType(t ref.Type) ref.Val {
	switch t.TypeName() {
	case types.TypeType.TypeName():
		return o.Type().(*types.Type)
	case o.Type().TypeName():
		return o
	}
	return types.NewErr("type conversion error from '%s' to '%s'", o.Type().TypeName(), t.TypeName())
}

// environment is built once per process: a cel.Env is immutable and safe
// for concurrent use, and building one costs far more than a rule.
var environment = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(
		ext.Strings(),
		func(e *cel.Env) (*cel.Env, error) {
			return cel.CustomTypeProvider(newProvider(e.CELTypeProvider()))(e)
		},
		cel.Variable("request", requestCELType),
		cel.Variable("resource", resourceCELType),
	)
})

// provider adds the three object types to CEL's own provider.
type provider struct {
	types.Provider
	fields map[string]map[string]*types.FieldType
	names  map[string][]string
}

func newProvider(base types.Provider) *provider {
	p := &provider{
		Provider: base,
		fields:   make(map[string]map[string]*types.FieldType, len(attributes)),
		names:    make(map[string][]string, len(attributes)),
	}
	index := 0
	for typeName, attrs := range attributes {
		fields := make(map[string]*types.FieldType, len(attrs))
		for name, a := range attrs {
			if index == attributeSlots {
				panic("policy: more attributes than attributeSlots")
			}
			fields[name] = fieldType(typeName, name, a, index)
			index++
			p.names[typeName] = append(p.names[typeName], name)
		}
		slices.Sort(p.names[typeName])
		p.fields[typeName] = fields
	}
	return p
}

func fieldType(typeName, name string, a attribute, index int) *types.FieldType {
	return &types.FieldType{
		Type: a.typ,
		IsSet: func(target any) bool {
			st, ok := target.(*evalState)
			return ok && a.set(st.in)
		},
		GetFrom: func(target any) (any, error) {
			st, ok := target.(*evalState)
			if !ok {
				return nil, fmt.Errorf("reading %s.%s from %T", typeName, name, target)
			}
			if a.get == nil { // request.auth, a view like request
				return object[authKind]{st}, nil
			}
			return st.read(index, a)
		},
	}
}

// evalState is one decision's view of its Input: each attribute is
// checked against its bounds and converted to a CEL value once, however
// many rules read it, and kept here rather than in the Input, which the
// caller may share. It is pooled, so a decision allocates only the values
// its rules read.
type evalState struct {
	in   *Input
	vals [attributeSlots]ref.Val
	errs [attributeSlots]error
}

// attributeSlots is room for every attribute (newProvider checks).
const attributeSlots = 16

var statePool = sync.Pool{New: func() any { return new(evalState) }}

func (st *evalState) read(index int, a attribute) (ref.Val, error) {
	if v := st.vals[index]; v != nil {
		return v, nil
	}
	if err := st.errs[index]; err != nil {
		return nil, err
	}
	if a.check != nil {
		if err := a.check(st.in); err != nil {
			st.errs[index] = err
			return nil, err
		}
	}
	v := a.get(st.in)
	st.vals[index] = v
	return v, nil
}

func (p *provider) FindStructType(name string) (*types.Type, bool) {
	if _, ok := p.fields[name]; ok {
		return types.NewTypeTypeWithParam(types.NewObjectType(name)), true
	}
	return p.Provider.FindStructType(name)
}

func (p *provider) FindStructFieldNames(name string) ([]string, bool) {
	if names, ok := p.names[name]; ok {
		return slices.Clone(names), true
	}
	return p.Provider.FindStructFieldNames(name)
}

func (p *provider) FindStructFieldType(typeName, field string) (*types.FieldType, bool) {
	if fields, ok := p.fields[typeName]; ok {
		ft, ok := fields[field]
		return ft, ok
	}
	return p.Provider.FindStructFieldType(typeName, field)
}

// activation resolves request and resource to views of the Input, as Caddy's
// celHTTPRequest does for its request: no map is built per evaluation, and
// each attribute is converted only when a rule reads it.
type activation struct{ st *evalState }

func (a activation) ResolveName(name string) (any, bool) {
	switch name {
	case "request":
		return object[requestKind](a), true
	case "resource":
		return object[resourceKind](a), true
	}
	return nil, false
}

func (activation) Parent() interpreter.Activation { return nil }

var (
	_ types.Provider         = (*provider)(nil)
	_ interpreter.Activation = activation{}
	_ ref.Val                = object[authKind]{}
)
