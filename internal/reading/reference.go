package reading

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/lro-cancel/lro_cancel/internal/catalog"
	"github.com/lro-cancel/lro_cancel/internal/pathtemplate"
)

// Interpretation is what one reading of a request is, for the reference
// reader: Kind is "listed" (Method is its discovery id), "unlisted",
// "batch", "grpc" or "rpc".
type Interpretation struct {
	Kind, Service, Method string
}

// Reference is the reference reader: Read's slow, obvious twin. It
// enumerates every combination of the readings the package doc lists —
// each method (the request's, each override header's items, each
// $httpMethod, and every method when $httpHeaders may carry an override),
// each host (the pinned services, else the request's), each path (as
// written, without matrix parameters, %3B read as ';' too, without a
// fragment; cleaned as a lenient server reads it, with %2F read as '/') —
// and says what each combination is,
// with rules written from the contract rather than from Read's code: the
// catalog's builtin templates matched one by one, the unlisted rule on
// split segments, a batch path's first segment, the cancel RPCs' paths
// compared in any letter case. It uses no shortcut, so it is slow; the
// fuzz target FuzzReadAgreesWithReference holds Read to it: whatever Read
// passes has no interpretation here.
func Reference(services []string, r *http.Request) []Interpretation {
	hosts := services
	if len(hosts) == 0 {
		hosts = []string{r.Host}
	}
	var found []Interpretation
	add := func(in Interpretation) {
		if !slices.Contains(found, in) {
			found = append(found, in)
		}
	}
	for _, method := range referenceMethods(r) {
		for _, host := range hosts {
			for _, path := range referencePaths(r.URL.EscapedPath()) {
				for _, in := range interpret(method, host, path) {
					add(in)
				}
			}
		}
	}
	// The RPC paths name their method themselves, whatever the HTTP method.
	for _, path := range referencePaths(r.URL.EscapedPath()) {
		decoded, err := url.PathUnescape(path)
		if err != nil {
			continue
		}
		for _, rpc := range cancelRPCs {
			if strings.EqualFold(decoded, rpc) {
				add(Interpretation{Kind: "grpc"})
			}
			if strings.EqualFold(decoded, "/$rpc"+rpc) {
				add(Interpretation{Kind: "rpc"})
			}
		}
	}
	return found
}

// cancelRPCs are the gRPC method paths of the cancels, from the contract's
// table of front doors.
var cancelRPCs = []string{
	"/google.longrunning.Operations/CancelOperation",
	"/google.container.v1.ClusterManager/CancelOperation",
	"/google.container.v1beta1.ClusterManager/CancelOperation",
	"/google.cloud.sql.v1.SqlOperationsService/Cancel",
	"/google.cloud.sql.v1beta4.SqlOperationsService/Cancel",
}

// referenceMethods are the request's method readings, upper-cased.
func referenceMethods(r *http.Request) []string {
	methods := []string{strings.ToUpper(r.Method)}
	for _, name := range []string{"X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"} {
		for _, v := range r.Header.Values(name) {
			for _, item := range strings.Split(v, ",") {
				methods = append(methods, strings.ToUpper(strings.TrimSpace(item)))
			}
		}
	}
	for _, pair := range strings.FieldsFunc(r.URL.RawQuery, func(c rune) bool { return c == '&' || c == ';' }) {
		name, value, _ := strings.Cut(pair, "=")
		if n, err := url.QueryUnescape(name); err == nil && strings.EqualFold(n, "$httpMethod") {
			if v, err := url.QueryUnescape(value); err == nil {
				value = v
			}
			methods = append(methods, strings.ToUpper(strings.TrimSpace(value)))
		}
		if n, err := url.QueryUnescape(name); err == nil && strings.EqualFold(n, "$httpHeaders") {
			// Headers carried in the query may carry an override too.
			methods = append(methods, http.MethodPost, http.MethodGet)
		}
	}
	return methods
}

// referencePaths are the path readings of an escaped path.
func referencePaths(escaped string) []string {
	var paths []string
	noFragment, _, _ := strings.Cut(escaped, "#")
	for _, p := range []string{escaped, dropMatrix(escaped), noFragment, dropMatrix(strings.NewReplacer("%3B", ";", "%3b", ";").Replace(escaped))} {
		paths = append(paths, p, pathtemplate.Clean(p),
			pathtemplate.Clean(strings.NewReplacer("%2F", "/", "%2f", "/").Replace(p)))
	}
	return paths
}

// dropMatrix removes every ";..." up to the next '/'.
func dropMatrix(path string) string {
	segs := strings.Split(path, "/")
	for i, s := range segs {
		segs[i], _, _ = strings.Cut(s, ";")
	}
	return strings.Join(segs, "/")
}

var builtinTemplates = sync.OnceValue(func() []*pathtemplate.Template {
	var ts []*pathtemplate.Template
	for _, m := range catalog.Builtin() {
		ts = append(ts, pathtemplate.MustParse(m.Template))
	}
	return ts
})

// interpret says what one (method, host, path) reading is.
func interpret(method, host, path string) []Interpretation {
	var out []Interpretation
	cat := catalog.Default()
	service := cat.Service(host)
	listed := false
	for i, m := range catalog.Builtin() {
		if m.HTTPMethod != method || !slices.Contains(m.Hosts, service) {
			continue
		}
		if _, ok := builtinTemplates()[i].Match(path); ok {
			out = append(out, Interpretation{Kind: "listed", Service: m.Service, Method: m.ID})
			listed = true
		}
	}
	if !listed && method == http.MethodPost && isGoogleHost(host) && isUnlistedPath(path) {
		out = append(out, Interpretation{Kind: "unlisted", Service: service})
	}
	if method == http.MethodPost && isGoogleHost(host) {
		segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
		if strings.EqualFold(segs[0], "batch") || len(segs) > 1 && strings.EqualFold(segs[0], "upload") && strings.EqualFold(segs[1], "batch") {
			out = append(out, Interpretation{Kind: "batch", Service: service})
		}
	}
	return out
}

// isUnlistedPath is the unlisted rule: /<version>/<name>:cancel or
// /<version>/<name>/cancel, the name holding an "operations" segment with
// something after it.
func isUnlistedPath(path string) bool {
	segs := strings.Split(path, "/")
	if len(segs) < 4 || segs[0] != "" || segs[1] == "" {
		return false
	}
	name := segs[2:]
	last := name[len(name)-1]
	switch {
	case last == "cancel":
		name = name[:len(name)-1]
	case strings.HasSuffix(last, ":cancel") && !strings.Contains(strings.TrimSuffix(last, ":cancel"), ":"):
		name[len(name)-1] = strings.TrimSuffix(last, ":cancel")
	default:
		return false
	}
	for i, s := range name {
		if s == "operations" && strings.Join(name[i+1:], "") != "" {
			return true
		}
	}
	return false
}

// isGoogleHost is the contract's list of hosts Google serves.
func isGoogleHost(host string) bool {
	h := catalog.NormalizeHost(host)
	return catalog.Default().Serves(h) || h == "googleapis.com" ||
		strings.HasSuffix(h, ".googleapis.com") || strings.HasSuffix(h, ".clients6.google.com")
}
