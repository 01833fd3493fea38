// Package grpcdoor is the gRPC and gRPC-Web front door: what a call to a
// cancel RPC's path carries, read with package frame (the wire format),
// refused or forwarded in the caller's own encoding.
package grpcdoor

import (
	"net/http"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"google.golang.org/grpc/codes"

	"github.com/lro-cancel/lro_cancel/internal/audit"
	"github.com/lro-cancel/lro_cancel/internal/body"
	"github.com/lro-cancel/lro_cancel/internal/catalog"
	"github.com/lro-cancel/lro_cancel/internal/credential"
	"github.com/lro-cancel/lro_cancel/internal/door/grpc/frame"
	"github.com/lro-cancel/lro_cancel/internal/door/rest"
	"github.com/lro-cancel/lro_cancel/internal/govern"
	"github.com/lro-cancel/lro_cancel/internal/reading"
)

// Call is a request to a cancel RPC's path, as the reader read it.
type Call struct {
	RPC *catalog.RPC
	// Exact is false for a path that names the RPC only loosely.
	Exact bool
	// Wire is how the message is framed; Readable is false for a content
	// type this door does not read (application/grpc+json, none, ...).
	Wire     frame.Wire
	Readable bool
	// web is set for a gRPC-Web content type: its refusals are gRPC-Web.
	web bool
}

// CallFor is the call of rpc, which the request's path names (exactly or
// only loosely), sent with the content type Google's front end reads (its
// only say is how to read and answer the call). It does not allocate.
func CallFor(rpc *catalog.RPC, exact bool, contentType string) Call {
	c := Call{RPC: rpc, Exact: exact}
	c.Wire, c.Readable, c.web = wireOf(contentType)
	return c
}

// wireOf reads a gRPC content type: application/grpc, -web and -web-text,
// bare or +proto, with parameters ignored.
func wireOf(contentType string) (w frame.Wire, readable, web bool) {
	base, _, _ := strings.Cut(contentType, ";")
	base = strings.TrimSpace(base)
	switch {
	case strings.EqualFold(base, "application/grpc"), strings.EqualFold(base, "application/grpc+proto"):
		return frame.WireGRPC, true, false
	case strings.EqualFold(base, "application/grpc-web"), strings.EqualFold(base, "application/grpc-web+proto"):
		return frame.WireWeb, true, true
	case strings.EqualFold(base, "application/grpc-web-text"), strings.EqualFold(base, "application/grpc-web-text+proto"):
		return frame.WireWebText, true, true
	}
	lower := strings.ToLower(base)
	switch {
	case strings.HasPrefix(lower, "application/grpc-web-text"):
		return frame.WireWebText, false, true
	case strings.HasPrefix(lower, "application/grpc-web"):
		return frame.WireWeb, false, true
	}
	return frame.WireGRPC, false, false
}

// Read prepares a gRPC or gRPC-Web cancel for the core. The credential is
// the authorization metadata only. The one request message is read
// (bounded, gzip decoded within the bound) and put back as the client
// sent it, so the upstream receives the client's bytes unchanged; its
// fields name the operation, and the operation the method. A call the
// door cannot read for certain is refused before its credentials are
// looked at: what it cancels, and so which scopes it needs, is not known.
func Read(r *http.Request, c Call, cat *catalog.Catalog, services []string, refusal *govern.Denial) govern.Cancel {
	x := govern.Cancel{Protocol: govern.ProtocolGRPC, Service: cat.Service(r.Host), Host: catalog.NormalizeHost(r.Host)}
	if c.web {
		x.Protocol = govern.ProtocolGRPCWeb
	}
	if refusal != nil {
		// Refused by the reader: nothing of it is read, and a credential in
		// its query is scrubbed before anything logs the URL.
		credential.Scrub(r)
		x.Refusal = refusal
		return x
	}
	if !QueryOnly(r.URL.RawQuery, "$ct") || r.URL.ForceQuery && r.URL.RawQuery == "" {
		// No gRPC client sends a query but $ct, which the reader has read
		// as the content type; a credential in it is scrubbed before
		// anything logs the URL, and the call is refused.
		credential.Scrub(r)
		x.Refusal = govern.InvalidRequest("QUERY_NOT_ALLOWED", "A gRPC call carries no query parameters but $ct.")
		return x
	}
	x.Credential, x.CredentialErr = credential.Extract(r)
	if x.Refusal = Screen(r, c.Exact, c.Readable, "gRPC"); x.Refusal != nil {
		return x
	}
	// The frame is read into the Replay's own memory: one allocation for
	// both, unless the message is longer than a cancel's.
	replay := body.NewReplay()
	raw, msg, v := frame.ReadMessage(r.Body, c.Wire, strings.Join(r.Header.Values("Grpc-Encoding"), ", "), body.MaxBytes, replay.Spare())
	replay.Hold(raw)
	r.Body = replay
	if v != nil {
		x.Refusal = govern.InvalidBody(v)
		return x
	}
	var held [catalog.MaxFields]string
	values := held[:len(c.RPC.Fields)]
	return ResolveMessage(x, body.ReadProto(msg, c.RPC.Fields, values), values, c.RPC, cat, services, r.Host)
}

// ResolveMessage finds the method the request message's field values name
// (parallel to rpc.Fields; v is what reading them found wrong) and fills
// in the cancel's kind, method, service and operation. A message whose
// fields could be read but that holds unknown ones is judged at the body
// step, like a REST body, with its method known; any other problem means
// the gateway cannot tell what the call cancels, and refuses it before
// its credentials. An ambiguous name is refused as an ambiguous path.
func ResolveMessage(x govern.Cancel, v *body.Violation, values []string, rpc *catalog.RPC, cat *catalog.Catalog, services []string, host string) govern.Cancel {
	if v != nil && !v.ValuesRead {
		x.Refusal = govern.InvalidBody(v)
		return x
	}
	res, problem := cat.RecognizeRPC(services, host, rpc, values)
	if problem != "" {
		x.Refusal = govern.InvalidBody(&body.Violation{Description: problem})
		return x
	}
	x.Kind, x.Method, x.Service, x.Operation = res.Kind, res.Method, res.Service, res.Operation
	x.Body = v
	if res.Kind == catalog.Ambiguous {
		x.Refusal = govern.AmbiguousPath()
	}
	return x
}

// QueryOnly reports whether every parameter of query has one of names, as
// decoded once ("%24ct" is "$ct"); an empty query has none.
func QueryOnly(query string, names ...string) bool {
	_, refused := rest.RefusedParam(query, func(name string) bool { return slices.Contains(names, name) })
	return !refused
}

// Screen refuses a gRPC-family call (gRPC, gRPC-Web, $rpc: what names it)
// that the gateway cannot read for certain, before anything of it is read:
// a path that names the RPC only loosely, a method other than POST, a
// content type the door does not read, a method override, a whole-body
// Content-Encoding (gRPC compresses per message; one over the body would
// hide the message). nil means the call may be read.
func Screen(r *http.Request, exact, readable bool, what string) *govern.Denial {
	switch {
	case !exact:
		return govern.AmbiguousPath()
	case r.Method != http.MethodPost:
		return govern.InvalidRequest("METHOD_NOT_POST", "A "+what+" call is an HTTP POST.")
	case !readable || len(r.Header.Values("Content-Type")) > 1:
		return govern.InvalidRequest("UNSUPPORTED_CONTENT_TYPE", "The gateway cannot read this "+what+
			" call's content type: gRPC as application/grpc, application/grpc-web or application/grpc-web-text, "+
			"$rpc as application/x-protobuf or application/json.")
	case reading.HasOverride(r.Header):
		return govern.MethodOverride()
	case rest.HasContentEncoding(r.Header):
		return govern.InvalidBody(&body.Violation{
			Description: "Content-Encoding is not supported; send the message unencoded (gRPC: grpc-encoding gzip).",
		})
	}
	return nil
}

// Door answers in the call's own wire format.
type Door struct {
	wire frame.Wire
	// envelope: the caller did not speak gRPC at all, so a refusal is
	// Google's JSON envelope, never an HTTP 200 it would take for success.
	envelope bool
}

var (
	grpcDoor     = Door{wire: frame.WireGRPC}
	webDoor      = Door{wire: frame.WireWeb}
	webTextDoor  = Door{wire: frame.WireWebText}
	envelopeDoor = Door{envelope: true}
)

// Door returns the door that answers this call.
func (c Call) Door() *Door {
	switch {
	case !c.Readable && !c.web:
		return &envelopeDoor
	case c.Wire == frame.WireWebText:
		return &webTextDoor
	case c.Wire == frame.WireWeb:
		return &webDoor
	}
	return &grpcDoor
}

// Refuse writes d as a trailers-only gRPC response or a gRPC-Web trailer
// frame; the client gets HTTP 200 and the code in grpc-status.
func (d *Door) Refuse(w http.ResponseWriter, den *govern.Denial, rec *audit.Record) {
	rec.GRPCStatus, rec.HasGRPCStatus = int(den.Code), true
	if d.envelope {
		rest.WriteEnvelope(w, den)
		rec.Status = den.HTTPStatus()
		return
	}
	den.SetChallenge(w.Header())
	switch d.wire {
	case frame.WireGRPC:
		frame.WriteTrailersOnly(w, den.Status())
	default:
		frame.WriteWeb(w, den.Status(), d.wire == frame.WireWebText)
	}
	rec.Status = http.StatusOK
}

// Forward runs the next handler and records the gRPC status the client
// got: the upstream's grpc-status, or what a gRPC client makes of an
// answer without one.
func (d *Door) Forward(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, ex *govern.Exchange) error {
	rec := &ex.Record
	var err error
	code, ok := 0, false
	if d.wire == frame.WireGRPC {
		err = ex.Forward(w, r, next)
		code, ok = frame.StatusFromHeader(w.Header())
	} else {
		sr := frame.NewWebStatusRecorder(w, d.wire == frame.WireWebText)
		err = ex.Forward(sr, r, next)
		code, ok = sr.Status()
	}
	if !ok {
		code = int(codeFromHTTP(rec.Status))
	}
	rec.GRPCStatus, rec.HasGRPCStatus = code, true
	return err
}

// codeFromHTTP is the code a gRPC client reports for an HTTP answer
// without grpc-status (gRPC's http-grpc-status-mapping.md); a 200 without
// one is a broken stream, INTERNAL.
func codeFromHTTP(status int) codes.Code {
	switch status {
	case http.StatusBadRequest, http.StatusOK:
		return codes.Internal
	case http.StatusUnauthorized:
		return codes.Unauthenticated
	case http.StatusForbidden:
		return codes.PermissionDenied
	case http.StatusNotFound:
		return codes.Unimplemented
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return codes.Unavailable
	}
	return codes.Unknown
}

// Interface guards
var (
	_ govern.Door = (*Door)(nil)
)
