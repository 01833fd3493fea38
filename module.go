// Package lrocancel governs Google API long-running-operation cancels
// (google.longrunning.Operations.CancelOperation, REST
// POST /v1/{name=operations/**}:cancel) as they cross a Caddy egress gateway.
//
// The handler http.handlers.lro_cancel recognises the cancel methods of every
// Google API (a catalog generated from Google's discovery documents), verifies
// the caller's OAuth token and its scope, requires the empty body the method
// defines, writes one audit record per recognised request and then forwards
// it to the next handler or answers UNIMPLEMENTED. The matcher
// http.matchers.lro_cancel recognises the same requests for other directives.
// Every other request passes through untouched and unrecorded.
package lrocancel

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

func init() {
	caddy.RegisterModule(Handler{})
	caddy.RegisterModule(Matcher{})
	httpcaddyfile.RegisterHandlerDirective("lro_cancel", parseCaddyfile)
	httpcaddyfile.RegisterDirectiveOrder("lro_cancel", httpcaddyfile.Before, "reverse_proxy")
}
