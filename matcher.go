package lrocancel

import (
	"net/http"
	"reflect"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types/ref"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/lro-cancel/lro_cancel/internal/catalog"
	"github.com/lro-cancel/lro_cancel/internal/reading"
)

// Matcher matches the requests lro_cancel governs: every request that some
// reading makes a cancel or a batch to a Google host (the reader's answer,
// the same the handler acts on), refused ones included. On a match it sets
// the placeholders {http.lro_cancel.operation}, .service and .method.
//
// Caddyfile:
//
//	@cancel lro_cancel [<host>...] [{ template <path-template> }]
//
// CEL: lro_cancel('*') or lro_cancel('vault.googleapis.com', ...).
type Matcher struct {
	// Services pins the API hosts, as the handler's service does; when
	// empty (or "*"), the API is the request's Host.
	Services []string `json:"services,omitempty"`

	// Templates add cancel methods, as the handler's template does, so
	// that the matcher recognises what a handler so configured governs.
	Templates []string `json:"templates,omitempty"`

	recognizer recognizer
}

// CaddyModule returns the Caddy module information.
func (Matcher) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.matchers.lro_cancel",
		New: func() caddy.Module { return new(Matcher) },
	}
}

// UnmarshalCaddyfile sets up the matcher from Caddyfile tokens:
//
//	lro_cancel [<host>...] {
//		template <path-template>
//	}
func (m *Matcher) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	for d.Next() {
		m.Services = append(m.Services, d.RemainingArgs()...)
		for nesting := d.Nesting(); d.NextBlock(nesting); {
			if d.Val() != "template" {
				return d.Errf("unrecognized lro_cancel matcher option '%s'", d.Val())
			}
			var t string
			if !d.AllArgs(&t) {
				return d.ArgErr()
			}
			if err := validateTemplate(t); err != nil {
				return d.Errf("bad template: %v", err)
			}
			m.Templates = append(m.Templates, t)
		}
	}
	return nil
}

// Provision builds the same recognition the handler uses.
func (m *Matcher) Provision(caddy.Context) error {
	return m.recognizer.provision(m.Templates, m.Services)
}

// Match returns true if r is a cancel lro_cancel governs.
func (m Matcher) Match(r *http.Request) bool {
	match, _ := m.MatchWithError(r)
	return match
}

// MatchWithError returns true if r is a cancel lro_cancel governs.
func (m Matcher) MatchWithError(r *http.Request) (bool, error) {
	if reading.Passes(r) {
		return false, nil
	}
	rd := m.recognizer.reader.Read(r)
	if rd.Door == reading.None {
		return false, nil
	}
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		res := rd.REST
		if rd.Door != reading.REST || rd.Refusal != reading.NoRefusal {
			// The operation, and so the method, is in the RPC's message
			// or a batch's parts, which a matcher does not read; a refused
			// request names none.
			res = catalog.Result{Service: rd.Service}
		}
		setPlaceholders(repl, &res)
	}
	return true, nil
}

// CELLibrary exposes the matcher to CEL expressions:
//
//	expression lro_cancel('*')
func (Matcher) CELLibrary(ctx caddy.Context) (cel.Library, error) {
	return caddyhttp.CELMatcherImpl(
		"lro_cancel",
		"lro_cancel_request_list",
		[]*cel.Type{cel.ListType(cel.StringType)},
		func(data ref.Val) (caddyhttp.RequestMatcherWithError, error) {
			list, err := data.ConvertToNative(stringSliceType)
			if err != nil {
				return nil, err
			}
			m := &Matcher{Services: list.([]string)}
			err = m.Provision(ctx)
			return m, err
		},
	)
}

func setPlaceholders(repl *caddy.Replacer, res *catalog.Result) {
	repl.Set("http.lro_cancel.operation", res.Operation)
	repl.Set("http.lro_cancel.service", res.Service)
	repl.Set("http.lro_cancel.method", methodID(res))
}

func methodID(res *catalog.Result) string {
	if res.Method != nil {
		return res.Method.ID
	}
	if res.Kind == catalog.Unlisted {
		return "unlisted"
	}
	return ""
}

var stringSliceType = reflect.TypeFor[[]string]()

// Interface guards
var (
	_ caddy.Provisioner                 = (*Matcher)(nil)
	_ caddyhttp.RequestMatcherWithError = (*Matcher)(nil)
	_ caddyfile.Unmarshaler             = (*Matcher)(nil)
	_ caddyhttp.CELLibraryProducer      = (*Matcher)(nil)
)
