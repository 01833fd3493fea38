// Package rpc is the $rpc front door: Google's fallback that carries a
// gRPC method over plain HTTP, POST /$rpc/<gRPC method path>, with the
// request message as application/x-protobuf or application/json. Refusals
// are the HTTP status of the code with a serialized google.rpc.Status or
// Google's JSON error envelope.
package rpc

import (
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"google.golang.org/protobuf/proto"

	"github.com/lro-cancel/lro_cancel/internal/audit"
	"github.com/lro-cancel/lro_cancel/internal/body"
	"github.com/lro-cancel/lro_cancel/internal/catalog"
	"github.com/lro-cancel/lro_cancel/internal/credential"
	"github.com/lro-cancel/lro_cancel/internal/door/grpc"
	"github.com/lro-cancel/lro_cancel/internal/door/rest"
	"github.com/lro-cancel/lro_cancel/internal/govern"
)

// Call is a request to a $rpc cancel path, as Recognize saw it.
type Call struct {
	RPC   *catalog.RPC
	Exact bool
	// Proto: application/x-protobuf; JSON: application/json; neither: a
	// body the door does not read.
	Proto, JSON bool
}

// CallFor is the $rpc call of rpc, which the request's path names (exactly
// or only loosely), sent with the content type Google's front end reads.
// It does not allocate.
func CallFor(rpc *catalog.RPC, exact bool, contentType string) Call {
	c := Call{RPC: rpc, Exact: exact}
	base, _, _ := strings.Cut(contentType, ";")
	base = strings.TrimSpace(base)
	c.Proto = strings.EqualFold(base, "application/x-protobuf")
	c.JSON = strings.EqualFold(base, "application/json")
	return c
}

// systemParams are the query parameters a $rpc call may carry: Google's
// system parameters that change neither the request nor the caller, and
// $ct, which the reader has read as the content type. Any other (a
// credential, $httpHeaders, a field) is refused: the gateway reads the
// credential from the Authorization header only.
var systemParams = []string{"alt", "$alt", "prettyPrint", "$prettyPrint", "$.xgafv", "$ct"}

// Read prepares a $rpc cancel for the core, like the gRPC door: the
// credential from the Authorization header only, the bounded message put
// back unchanged for the upstream, a call the door cannot read for certain
// refused before its credentials are looked at.
func Read(r *http.Request, c Call, cat *catalog.Catalog, services []string, refusal *govern.Denial) govern.Cancel {
	x := govern.Cancel{Protocol: govern.ProtocolRPC, Service: cat.Service(r.Host), Host: catalog.NormalizeHost(r.Host)}
	if refusal != nil {
		// Refused by the reader: nothing of it is read, and a credential in
		// its query is scrubbed before anything logs the URL.
		credential.Scrub(r)
		x.Refusal = refusal
		return x
	}
	if !grpcdoor.QueryOnly(r.URL.RawQuery, systemParams...) {
		credential.Scrub(r)
		x.Refusal = govern.InvalidRequest("QUERY_NOT_ALLOWED",
			"A $rpc cancel carries its credential in the Authorization header and no query parameters but alt, $.xgafv and $ct.")
		return x
	}
	x.Credential, x.CredentialErr = credential.Extract(r)
	if x.Refusal = grpcdoor.Screen(r, c.Exact, c.Proto || c.JSON, "$rpc"); x.Refusal != nil {
		return x
	}
	data, v := body.Take(r)
	if v != nil {
		x.Refusal = govern.InvalidBody(v)
		return x
	}
	var held [catalog.MaxFields]string
	values := held[:len(c.RPC.Fields)]
	if c.Proto {
		v = body.ReadProto(data, c.RPC.Fields, values)
	} else {
		v = body.ReadJSON(data, c.RPC.JSONNames, values)
	}
	return grpcdoor.ResolveMessage(x, v, values, c.RPC, cat, services, r.Host)
}

// Door answers $rpc calls: the code's HTTP status, with a serialized
// google.rpc.Status for x-protobuf callers and Google's JSON envelope for
// the others.
type Door struct{ proto bool }

var (
	protoDoor = Door{proto: true}
	jsonDoor  = Door{}
)

// Door returns the door that answers this call.
func (c Call) Door() *Door {
	if c.Proto {
		return &protoDoor
	}
	return &jsonDoor
}

// Refuse writes den in the caller's encoding.
func (d *Door) Refuse(w http.ResponseWriter, den *govern.Denial, rec *audit.Record) {
	rec.Status = den.HTTPStatus()
	rec.GRPCStatus, rec.HasGRPCStatus = int(den.Code), true
	if d.proto {
		if b, err := proto.Marshal(den.Status()); err == nil {
			den.SetChallenge(w.Header())
			w.Header().Set("Content-Type", "application/x-protobuf")
			w.Header().Set("X-Content-Type-Options", "nosniff")
			w.WriteHeader(rec.Status)
			_, _ = w.Write(b)
			return
		}
	}
	// JSON callers, and a Status that cannot be marshalled: the envelope.
	rest.WriteEnvelope(w, den)
}

// Forward runs the next handler and records its status, and the code a
// $rpc client reads from it.
func (d *Door) Forward(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, ex *govern.Exchange) error {
	rec := &ex.Record
	err := ex.Forward(w, r, next)
	rec.GRPCStatus, rec.HasGRPCStatus = int(govern.CodeForHTTP(rec.Status)), true
	return err
}

// Interface guards
var (
	_ govern.Door = (*Door)(nil)
)
