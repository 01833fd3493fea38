// Package rest is the REST front door: the catalog's path templates, the
// credential in the Authorization header or the query, the JSON body, and
// Google's JSON error envelope.
package rest

import (
	"bytes"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/lro-cancel/lro_cancel/internal/audit"
	"github.com/lro-cancel/lro_cancel/internal/body"
	"github.com/lro-cancel/lro_cancel/internal/catalog"
	"github.com/lro-cancel/lro_cancel/internal/credential"
	"github.com/lro-cancel/lro_cancel/internal/googleerr"
	"github.com/lro-cancel/lro_cancel/internal/govern"
)

// HasContentEncoding reports whether the request's body carries an
// encoding other than identity, on any Content-Encoding line.
func HasContentEncoding(h http.Header) bool {
	for _, v := range h["Content-Encoding"] {
		if v = strings.TrimSpace(v); v != "" && !strings.EqualFold(v, "identity") {
			return true
		}
	}
	return false
}

// Read prepares a recognised REST cancel for the core. Before anything
// else, no URL downstream (upstream, error log) may carry a credential: a
// query token moves into Authorization, a query API key into
// X-Goog-Api-Key, and anything unreadable is deleted. A request the reader
// refused (refusal) is not read further. Then the body is read (at most
// body.MaxBytes) and judged under the method's rules; the bytes read are
// put back for the upstream, unchanged.
func Read(r *http.Request, res *catalog.Result, strict bool, refusal *govern.Denial) govern.Cancel {
	x := govern.Cancel{
		Protocol:  govern.ProtocolHTTP,
		Kind:      res.Kind,
		Method:    res.Method,
		Service:   res.Service,
		Host:      catalog.NormalizeHost(r.Host),
		Operation: res.Operation,
	}
	x.Credential, x.CredentialErr = credential.Take(r)
	if x.Refusal = refusal; refusal != nil || x.CredentialErr != nil {
		// Refused before, or at, the credentials step: the body is never read.
		return x
	}
	if x.Body = queryViolation(r.URL.RawQuery, res.Method); x.Body == nil {
		x.Body = readBody(r, res, strict)
	}
	return x
}

// queryViolation refuses a query parameter that is neither one of
// Google's system parameters nor one of the method's own: with `body: "*"`
// no request field binds to the query. The credential parameters are
// already gone (Take). A name that does not decode is refused too.
func queryViolation(query string, m *catalog.Method) *body.Violation {
	name, refused := RefusedParam(query, func(name string) bool {
		return catalog.IsSystemParam(name) || m != nil && slices.Contains(m.Query, name)
	})
	if refused {
		return body.UnboundQuery(name)
	}
	return nil
}

// RefusedParam returns the first parameter of query (split at '&') whose
// name, decoded once, allowed refuses, or whose name does not decode (its
// raw name then); refused is false when allowed takes every one.
func RefusedParam(query string, allowed func(name string) bool) (name string, refused bool) {
	for query != "" {
		var pair string
		pair, query, _ = strings.Cut(query, "&")
		if pair == "" {
			continue
		}
		raw, _, _ := strings.Cut(pair, "=")
		name, err := url.QueryUnescape(raw)
		if err != nil {
			return raw, true
		}
		if !allowed(name) {
			return name, true
		}
	}
	return "", false
}

// readBody reads at most body.MaxBytes of the request body, judges it and
// puts the bytes read back for the upstream, unchanged.
func readBody(r *http.Request, res *catalog.Result, strict bool) *body.Violation {
	data, v := body.Take(r)
	if v != nil {
		return v
	}
	rules := body.Rules{Strict: strict}
	if bytes.IndexByte(data, '"') >= 0 {
		// Only a body that names a field (always quoted) has a value to
		// hold to the path's.
		rules.Vars = varsOf(res)
	}
	if res.Method != nil && res.Method.Body == catalog.BodyFields {
		rules.Fields = res.Method.Fields
	}
	// Every Content-Encoding line counts: a second one must not hide gzip.
	encoding := strings.Join(r.Header["Content-Encoding"], ", ")
	return body.Check(data, encoding, rules)
}

// varsOf gives the body check the path's variables. A body "name" must
// always equal the operation the path names, also where the template has
// no name variable (unlisted cancels, container's zone paths), so that the
// audited operation is the one the upstream acts on.
func varsOf(res *catalog.Result) map[string]string {
	vars := make(map[string]string, len(res.Vars())+1)
	for _, v := range res.Vars() {
		vars[v.Name] = v.Value
	}
	if _, ok := vars["name"]; !ok {
		vars["name"] = res.Operation
	}
	return vars
}

// Door writes REST answers: Google's JSON error envelope for a refusal.
type Door struct{}

// Refuse writes d as Google's JSON error envelope.
func (Door) Refuse(w http.ResponseWriter, d *govern.Denial, rec *audit.Record) {
	WriteEnvelope(w, d)
	rec.Status = d.HTTPStatus()
}

// WriteEnvelope writes d as Google's JSON error envelope, with its
// WWW-Authenticate challenge.
func WriteEnvelope(w http.ResponseWriter, d *govern.Denial) {
	d.SetChallenge(w.Header())
	googleerr.Write(w, d.Envelope())
}

// Forward runs the next handler and records its status.
func (Door) Forward(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, ex *govern.Exchange) error {
	return ex.Forward(w, r, next)
}

// Interface guards
var (
	_ govern.Door = Door{}
)
