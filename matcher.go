package lrocancel

import (
	"net/http"
	"reflect"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types/ref"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/lro-cancel/lro_cancel/internal/catalog"
)

// Matcher matches the requests lro_cancel governs: listed and unlisted
// cancels, and would-be cancels with an ambiguous path. On a match it sets
// the placeholders {http.lro_cancel.operation}, .service and .method.
//
// Caddyfile:
//
//	@cancel lro_cancel [<host>...]
//
// CEL: lro_cancel('*') or lro_cancel('vault.googleapis.com', ...).
type Matcher struct {
	// Services pins the API hosts, as the handler's service does; when
	// empty (or "*"), the API is the request's Host.
	Services []string `json:"services,omitempty"`

	catalog  *catalog.Catalog
	services []string
}

// CaddyModule returns the Caddy module information.
func (Matcher) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.matchers.lro_cancel",
		New: func() caddy.Module { return new(Matcher) },
	}
}

// UnmarshalCaddyfile sets up the matcher from Caddyfile tokens.
func (m *Matcher) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	for d.Next() {
		m.Services = append(m.Services, d.RemainingArgs()...)
		if d.NextBlock(0) {
			return d.Err("malformed lro_cancel matcher: blocks are not supported")
		}
	}
	return nil
}

// Provision normalizes the hosts and takes the built-in catalog.
func (m *Matcher) Provision(caddy.Context) error {
	m.catalog = catalog.Default()
	var hosts []string
	for _, s := range m.Services {
		if s != "*" && s != "" {
			hosts = append(hosts, s)
		}
	}
	m.services = normalizeHosts(hosts)
	return nil
}

// Match returns true if r is a cancel lro_cancel governs.
func (m Matcher) Match(r *http.Request) bool {
	match, _ := m.MatchWithError(r)
	return match
}

// MatchWithError returns true if r is a cancel lro_cancel governs.
func (m Matcher) MatchWithError(r *http.Request) (bool, error) {
	res := recognize(m.catalog, m.services, r)
	if res.Kind == catalog.NotCancel {
		return false, nil
	}
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
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

// recognize looks the request up in the catalog, under the pinned
// services or else under the request's Host. With several pinned services
// the strongest result wins: listed, then ambiguous, then unlisted.
func recognize(cat *catalog.Catalog, services []string, r *http.Request) catalog.Result {
	// Every reading of a cancel's path (as written, or decoded once) has
	// "cancel" in the fully decoded path: without it, skip escaping the
	// path for the catalog.
	if !strings.Contains(r.URL.Path, "cancel") {
		return catalog.Result{}
	}
	path := r.URL.EscapedPath()
	if len(services) == 0 {
		return cat.Recognize(r.Host, r.Method, path)
	}
	var best catalog.Result
	for _, s := range services {
		res := cat.Recognize(s, r.Method, path)
		if rank(res.Kind) > rank(best.Kind) {
			best = res
		}
		if best.Kind == catalog.Listed {
			break
		}
	}
	return best
}

func rank(k catalog.Kind) int {
	switch k {
	case catalog.Listed:
		return 3
	case catalog.Ambiguous:
		return 2
	case catalog.Unlisted:
		return 1
	}
	return 0
}

func setPlaceholders(repl *caddy.Replacer, res *catalog.Result) {
	repl.Set("http.lro_cancel.operation", res.Operation)
	repl.Set("http.lro_cancel.service", res.Service)
	repl.Set("http.lro_cancel.method", methodID(res))
}

func normalizeHosts(hosts []string) []string {
	if len(hosts) == 0 {
		return nil
	}
	out := make([]string, len(hosts))
	for i, h := range hosts {
		out[i] = catalog.NormalizeHost(h)
	}
	return out
}

func newCatalog(templates, services []string) (*catalog.Catalog, error) {
	if len(templates) == 0 {
		return catalog.Default(), nil
	}
	extra := make([]catalog.Method, len(templates))
	for i, t := range templates {
		extra[i] = catalog.Method{
			ID:         "custom",
			Hosts:      services,
			HTTPMethod: http.MethodPost,
			Template:   t,
			Body:       catalog.BodyEmpty,
		}
	}
	return catalog.New(extra)
}

var stringSliceType = reflect.TypeFor[[]string]()

// Interface guards
var (
	_ caddy.Provisioner                 = (*Matcher)(nil)
	_ caddyhttp.RequestMatcherWithError = (*Matcher)(nil)
	_ caddyfile.Unmarshaler             = (*Matcher)(nil)
	_ caddyhttp.CELLibraryProducer      = (*Matcher)(nil)
)
