package integration

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

// Issue 19, item 5: the adversarial suite. The SPEC's rule ("Reading a
// request as Google's front end reads it"): for every request to a host
// Google serves, every reading Google's front end could make of it counts;
// if one is a cancel the request is governed as that cancel; if readings
// disagree it is refused 400 AMBIGUOUS_REQUEST (audited ambiguous_request,
// never forwarded); only a request that is no cancel under every reading
// passes untouched. Each shape below is sent over HTTP/1.1 (raw bytes),
// h2c, TLS HTTP/2 and HTTP/3 to one gateway, and must get its answer in the
// caller's encoding, reach the upstream only when it passes (then exactly
// as sent), and leave exactly one completed record when it does not pass,
// none when it does.
//
// The shapes are also the table testdata/adversarial_shapes.json, a seed
// corpus for the reader's fuzz targets; TestAdversarialShapesFileIsCurrent
// keeps it in step (-update-adversarial-shapes rewrites it).

var updateAdversarialShapes = flag.Bool("update-adversarial-shapes", false, "rewrite testdata/adversarial_shapes.json from the suite's table")

const adversarialShapesFile = "testdata/adversarial_shapes.json"

// advShape is one request shape and what the gateway must make of it.
type advShape struct {
	Name  string `json:"name"`
	Class string `json:"class"`
	// Method, Host and Target are the request line and Host as sent, byte
	// for byte (Target: path and query, or an absolute URL).
	Method string `json:"method"`
	Host   string `json:"host"`
	Target string `json:"target"`
	// Headers are sent in name order; a name with several values is sent
	// on several lines. The caller's credential is among them, when any.
	Headers map[string][]string `json:"headers,omitempty"`
	// Body is the request body when it is UTF-8, else BodyBase64 holds it.
	Body       string `json:"body,omitempty"`
	BodyBase64 string `json:"body_base64,omitempty"`
	// Want is the answer: "pass" (no cancel under any reading: forwarded
	// untouched, unrecorded), "cancel" (governed: 403
	// ACCESS_TOKEN_SCOPE_INSUFFICIENT with the credential every shape
	// sends, a token without the API's scope, or 401 CREDENTIALS_MISSING
	// for a shape sent without one), "ambiguous" (400 AMBIGUOUS_REQUEST),
	// or "refused:<REASON>" (400 with that ErrorInfo reason; QUERY_BINDING
	// stands for Google's "Cannot bind query parameter", whatever the
	// reason). "A|B" after refused: accepts either reason, and " or "
	// separates whole answers, where the SPEC admits more than one (see
	// Unclear).
	Want string `json:"want"`
	// Expect is what the record (and the answer's encoding) must say.
	Expect advExpect `json:"expect,omitzero"`
	// RawOnly: Go's HTTP/2 and HTTP/3 clients cannot send it as written;
	// it runs over HTTP/1.1 only.
	RawOnly bool `json:"raw_http1_only,omitempty"`
	// NotHTTP1: a gRPC stream, which needs HTTP/2 or HTTP/3 end to end.
	NotHTTP1 bool `json:"not_http1,omitempty"`
	// Unclear says where the SPEC does not settle the answer, and why the
	// suite expects what it does.
	Unclear string `json:"spec_unclear,omitempty"`
}

// advExpect is what a governed or refused shape's record and answer say;
// an empty field is not checked; "a|b" accepts either.
type advExpect struct {
	Protocol  string `json:"protocol,omitempty"`
	Service   string `json:"service,omitempty"`
	Method    string `json:"method,omitempty"`
	Operation string `json:"operation,omitempty"`
	// Encoding of the answer: json (Google's envelope), grpc, grpc-web,
	// grpc-web-text, rpc-proto; "any" when the SPEC leaves it open.
	// Default: what the request's Content-Type (or $ct) asks for.
	Encoding string `json:"encoding,omitempty"`
	// Part is the ErrorInfo metadata "part" of a refused batch.
	Part string `json:"part,omitempty"`
}

// bytes is the request body; the table's own base64 always decodes.
func (s advShape) bytes() []byte {
	if s.BodyBase64 == "" {
		return []byte(s.Body)
	}
	b, err := base64.StdEncoding.DecodeString(s.BodyBase64)
	if err != nil {
		panic(fmt.Sprintf("shape %q: body_base64: %v", s.Name, err))
	}
	return b
}

func (s advShape) hasToken() bool { return len(s.Headers["Authorization"]) > 0 }

// encoding is the answer's encoding the shape must get.
func (s advShape) encoding() string {
	if s.Expect.Encoding != "" {
		return s.Expect.Encoding
	}
	ct := strings.ToLower(firstOf(s.Headers["Content-Type"]))
	if ct == "" {
		if u, err := url.Parse(s.Target); err == nil {
			ct = strings.ToLower(u.Query().Get("$ct"))
		}
	}
	switch {
	case strings.HasPrefix(ct, "application/grpc-web-text"):
		return "grpc-web-text"
	case strings.HasPrefix(ct, "application/grpc-web"):
		return "grpc-web"
	case strings.HasPrefix(ct, "application/grpc"):
		return "grpc"
	case strings.HasPrefix(ct, "application/x-protobuf") && strings.Contains(s.Target, "$rpc"):
		return "rpc-proto"
	}
	return "json"
}

// The shape builders. Every shape carries a token without the scope of any
// API in the catalog unless it says noToken().
type advOpt func(*advShape)

func hdr(kv ...string) advOpt {
	return func(s *advShape) {
		for i := 0; i+1 < len(kv); i += 2 {
			s.Headers[kv[i]] = append(s.Headers[kv[i]], kv[i+1])
		}
	}
}

func withBody(b string) advOpt { return func(s *advShape) { s.setBody([]byte(b)) } }

func (s *advShape) setBody(b []byte) {
	if utf8.Valid(b) {
		s.Body, s.BodyBase64 = string(b), ""
	} else {
		s.Body, s.BodyBase64 = "", base64.StdEncoding.EncodeToString(b)
	}
}

func noToken() advOpt            { return func(s *advShape) { delete(s.Headers, "Authorization") } }
func expect(e advExpect) advOpt  { return func(s *advShape) { s.Expect = e } }
func rawOnly() advOpt            { return func(s *advShape) { s.RawOnly = true } }
func unclear(why string) advOpt  { return func(s *advShape) { s.Unclear = why } }
func encoding(enc string) advOpt { return func(s *advShape) { s.Expect.Encoding = enc } }

// batchOf makes the shape a multipart/mixed batch of parts.
func batchOf(parts ...string) advOpt {
	return func(s *advShape) {
		s.Headers["Content-Type"] = []string{"multipart/mixed; boundary=" + batchBoundary}
		s.setBody([]byte(multipartMixed(batchBoundary, parts...)))
	}
}

func grpcBody(msg []byte) advOpt {
	return func(s *advShape) { s.setBody(grpcFrame(0, msg)) }
}

func shape(class, name, want, method, host, target string, opts ...advOpt) advShape {
	s := advShape{Name: class + "/" + name, Class: class, Method: method, Host: host, Target: target, Want: want,
		Headers: map[string][]string{"Authorization": {"Bearer " + tokenEmail}}}
	for _, o := range opts {
		o(&s)
	}
	if len(s.Headers) == 0 {
		s.Headers = nil
	}
	return s
}

// The answers the suite names more than once.
const (
	wantOverride = "refused:METHOD_OVERRIDE_REFUSED|AMBIGUOUS_REQUEST"
	// overrideUnclear is why an override outside the three headers may be
	// refused under either reason.
	overrideUnclear = "the SPEC keeps METHOD_OVERRIDE_REFUSED for the override headers and calls an override given " +
		"twice, or by $httpMethod, a reading that reads two ways (AMBIGUOUS_REQUEST): either reason is accepted"
	// A gRPC-family door refuses a query it does not read (QUERY_NOT_ALLOWED),
	// an undocumented signal included: as safe as AMBIGUOUS_REQUEST.
	wantAmbiguousOrQuery = "ambiguous or refused:QUERY_NOT_ALLOWED"
	queryUnclear         = "the gRPC-family doors refuse any query but alt and $.xgafv (QUERY_NOT_ALLOWED); the SPEC " +
		"does not say whether the reader's AMBIGUOUS_REQUEST comes first, so either refusal is accepted"
)

const (
	wwwHost      = "www.googleapis.com"
	unknownHost  = "foo.googleapis.com"
	sqlHost      = "sqladmin.googleapis.com"
	storageHost  = "storage.googleapis.com"
	containerAPI = "container.googleapis.com"
	otherHost    = "example.com"
	lroGetMethod = "/google.longrunning.Operations/GetOperation"
)

var (
	vaultExpect   = advExpect{Protocol: "http", Service: vaultHost, Method: "vault.operations.cancel", Operation: "operations/x"}
	storageExpect = advExpect{Protocol: "http", Service: storageHost, Method: "storage.buckets.operations.cancel", Operation: "b/bkt/operations/o"}
	sqlExpect     = advExpect{Protocol: "http", Service: sqlHost, Method: "sql.operations.cancel", Operation: "projects/p/operations/o"}
)

func unlistedExpect(protocol, service, operation string) advExpect {
	return advExpect{Protocol: protocol, Service: service, Method: "unlisted", Operation: operation}
}

// inPart is e for the first part of a batch.
func inPart(e advExpect, part string) advExpect {
	e.Protocol, e.Part = "batch", part
	return e
}

// adversarialShapes is the suite's table.
func adversarialShapes(t testing.TB) []advShape {
	cancelPart := httpPart("1", embedded("POST "+vaultCancelX+" HTTP/1.1", ""))
	getPart := httpPart("1", embedded("GET /v1/operations/x HTTP/1.1", ""))
	lroMsg := lroCancel("operations/x")
	grpcWebX := advExpect{Protocol: "grpc-web", Service: vaultHost, Method: "vault.operations.cancel", Operation: "operations/x"}
	grpcX := advExpect{Protocol: "grpc", Service: vaultHost, Method: "vault.operations.cancel", Operation: "operations/x"}
	rpcX := advExpect{Protocol: "rpc", Service: vaultHost, Method: "vault.operations.cancel", Operation: "operations/x"}
	batchCT := "multipart/mixed; boundary=" + batchBoundary

	return []advShape{
		// The plain cancel, as the yardstick.
		shape("baseline", "plain REST cancel", "cancel", "POST", vaultHost, vaultCancelX, expect(vaultExpect)),
		shape("baseline", "plain REST cancel without a token", "cancel", "POST", vaultHost, vaultCancelX, noToken(), expect(vaultExpect)),
		shape("baseline", "REST cancel with an empty JSON body", "cancel", "POST", vaultHost, vaultCancelX,
			hdr("Content-Type", "application/json"), withBody("{}"), expect(vaultExpect)),

		// Method override in the query: $httpMethod, plain and %24-encoded.
		shape("override-query", "GET with $httpMethod=POST", wantOverride, "GET", vaultHost, vaultCancelX+"?$httpMethod=POST", unclear(overrideUnclear)),
		shape("override-query", "GET with %24httpMethod=POST", wantOverride, "GET", vaultHost, vaultCancelX+"?%24httpMethod=POST", unclear(overrideUnclear)),
		shape("override-query", "GET with $httpMethod=post", wantOverride, "GET", vaultHost, vaultCancelX+"?$httpMethod=post", unclear(overrideUnclear)),
		shape("override-query", "PUT with %24httpMethod=Post", wantOverride, "PUT", vaultHost, vaultCancelX+"?%24httpMethod=Post", unclear(overrideUnclear)),
		shape("override-query", "POST with $httpMethod=POST", wantOverride, "POST", vaultHost, vaultCancelX+"?$httpMethod=POST", unclear(overrideUnclear)),
		shape("override-query", "POST cancel with $httpMethod=GET", wantOverride, "POST", vaultHost, vaultCancelX+"?$httpMethod=GET", unclear(overrideUnclear)),
		shape("override-query", "$httpMethod given twice", wantOverride, "GET", vaultHost, vaultCancelX+"?$httpMethod=POST&$httpMethod=GET", unclear(overrideUnclear)),
		shape("override-query", "$httpMethod and %24httpMethod", wantOverride, "GET", vaultHost, vaultCancelX+"?$httpMethod=GET&%24httpMethod=POST", unclear(overrideUnclear)),
		shape("override-query", "$httpMethod=POST beside alt=json", wantOverride, "GET", vaultHost, vaultCancelX+"?alt=json&$httpMethod=POST", unclear(overrideUnclear)),
		shape("override-query", "$httpMethod on a $rpc cancel", wantOverride+"|QUERY_NOT_ALLOWED", "GET", vaultHost, "/$rpc"+lroCancelMethod+"?$httpMethod=POST",
			hdr("Content-Type", "application/json"), withBody(`{"name":"operations/x"}`), unclear(overrideUnclear+"; "+queryUnclear)),
		shape("override-query", "$httpMethod=POST on a GET batch holding a cancel", wantOverride, "GET", vaultHost, "/batch?$httpMethod=POST",
			batchOf(cancelPart), unclear(overrideUnclear+"; the record may be the batch's or the part's")),
		shape("override-query", "$httpMethod=POST on an operation get", "pass", "GET", vaultHost, "/v1/operations/x?$httpMethod=POST"),
		shape("override-query", "$httpMethod=DELETE on an operation get", "pass", "GET", vaultHost, "/v1/operations/x?%24httpMethod=DELETE"),
		shape("override-query", "$httpMethod=POST on a path no method cancels", "pass", "GET", vaultHost, "/v1/matters/m?$httpMethod=POST"),

		// Method override in the headers, given more than once.
		shape("override-header", "GET with X-HTTP-Method-Override: POST", "refused:METHOD_OVERRIDE_REFUSED", "GET", vaultHost, vaultCancelX,
			hdr("X-HTTP-Method-Override", "POST"), expect(advExpect{Protocol: "http", Service: vaultHost})),
		shape("override-header", "GET with X-HTTP-Method: POST", "refused:METHOD_OVERRIDE_REFUSED", "GET", vaultHost, vaultCancelX,
			hdr("X-HTTP-Method", "POST"), expect(advExpect{Protocol: "http", Service: vaultHost})),
		shape("override-header", "GET with X-Method-Override: POST", "refused:METHOD_OVERRIDE_REFUSED", "GET", vaultHost, vaultCancelX,
			hdr("X-Method-Override", "POST"), expect(advExpect{Protocol: "http", Service: vaultHost})),
		shape("override-header", "override header name in lower case", "refused:METHOD_OVERRIDE_REFUSED", "GET", vaultHost, vaultCancelX,
			hdr("x-http-method-override", "POST"), rawOnly()),
		shape("override-header", "repeated X-HTTP-Method-Override", wantOverride, "GET", vaultHost, vaultCancelX,
			hdr("X-HTTP-Method-Override", "POST", "X-HTTP-Method-Override", "POST"), unclear(overrideUnclear)),
		shape("override-header", "repeated X-HTTP-Method-Override, GET first", wantOverride, "POST", vaultHost, vaultCancelX,
			hdr("X-HTTP-Method-Override", "GET", "X-HTTP-Method-Override", "POST"), unclear(overrideUnclear)),
		shape("override-header", "override list value POST, GET", wantOverride, "GET", vaultHost, vaultCancelX,
			hdr("X-HTTP-Method-Override", "POST, GET"), unclear(overrideUnclear)),
		shape("override-header", "override list value GET, POST", wantOverride, "GET", vaultHost, vaultCancelX,
			hdr("X-HTTP-Method-Override", "GET, POST"), unclear(overrideUnclear)),
		shape("override-header", "override header and $httpMethod both", wantOverride, "GET", vaultHost, vaultCancelX+"?$httpMethod=POST",
			hdr("X-HTTP-Method-Override", "POST"), unclear(overrideUnclear)),
		shape("override-header", "override header GET, $httpMethod POST", wantOverride, "GET", vaultHost, vaultCancelX+"?$httpMethod=POST",
			hdr("X-HTTP-Method-Override", "GET"), unclear(overrideUnclear)),
		shape("override-header", "two different override headers", wantOverride, "GET", vaultHost, vaultCancelX,
			hdr("X-HTTP-Method", "POST", "X-Method-Override", "GET"), unclear(overrideUnclear)),
		shape("override-header", "all three override headers", wantOverride, "PUT", vaultHost, vaultCancelX,
			hdr("X-HTTP-Method-Override", "POST", "X-HTTP-Method", "POST", "X-Method-Override", "POST"), unclear(overrideUnclear)),
		shape("override-header", "override on a gRPC-Web cancel", wantOverride, "POST", vaultHost, lroCancelMethod,
			hdr("Content-Type", "application/grpc-web+proto", "X-HTTP-Method-Override", "GET"), grpcBody(lroMsg),
			unclear(overrideUnclear+"; the refusal is the gRPC-Web trailer either way")),
		shape("override-header", "override to POST on a GET batch holding a cancel", wantOverride, "GET", vaultHost, "/batch",
			hdr("X-HTTP-Method-Override", "POST"), batchOf(cancelPart), unclear(overrideUnclear)),
		shape("override-header", "override on a get that no method makes a cancel", "pass", "GET", vaultHost, "/v1/operations/x",
			hdr("X-HTTP-Method-Override", "POST", "X-HTTP-Method", "GET")),

		// A method that equals a real one only in another letter case.
		shape("method-case", "post", "ambiguous", "post", vaultHost, vaultCancelX, expect(advExpect{Service: vaultHost})),
		shape("method-case", "Post", "ambiguous", "Post", vaultHost, vaultCancelX, expect(advExpect{Service: vaultHost})),
		shape("method-case", "pOST on sqladmin's /cancel", "ambiguous", "pOST", sqlHost, sqlCancelO, expect(advExpect{Service: sqlHost})),
		shape("method-case", "post on an unlisted cancel", "ambiguous", "post", unknownHost, "/v1/projects/p/operations/o:cancel", noToken()),
		shape("method-case", "post batch holding a cancel", "ambiguous", "post", vaultHost, "/batch", batchOf(cancelPart),
			unclear("the record may be the batch's or the part's")),
		shape("method-case", "post $rpc cancel", "ambiguous or refused:METHOD_NOT_POST", "post", vaultHost, "/$rpc"+lroCancelMethod,
			hdr("Content-Type", "application/x-protobuf"), withBody(string(lroMsg)),
			unclear("the $rpc door refuses a method other than POST (METHOD_NOT_POST): as safe as AMBIGUOUS_REQUEST")),
		shape("method-case", "get on an operation get", "pass", "get", vaultHost, "/v1/operations/x"),
		shape("method-case", "post on a path no method cancels", "pass", "post", vaultHost, "/v1/matters/m"),

		// Content type: $ct replaces Content-Type (documented: read that
		// way); $ct beside a disagreeing Content-Type, and $httpHeaders, are
		// not documented: ambiguous on a request that may be a cancel.
		shape("content-type", "$ct makes a body gRPC-Web", "cancel", "POST", vaultHost, lroCancelMethod+"?$ct=application/grpc-web",
			grpcBody(lroMsg), expect(grpcWebX)),
		shape("content-type", "%24ct makes a body gRPC-Web+proto", "cancel", "POST", vaultHost, lroCancelMethod+"?%24ct=application%2Fgrpc-web%2Bproto",
			grpcBody(lroMsg), expect(grpcWebX)),
		shape("content-type", "$ct makes a body gRPC-Web text", "cancel", "POST", vaultHost, lroCancelMethod+"?$ct=application/grpc-web-text",
			withBody(base64.StdEncoding.EncodeToString(grpcFrame(0, lroMsg))), expect(grpcWebX)),
		shape("content-type", "$ct makes a body gRPC", "cancel", "POST", vaultHost, lroCancelMethod+"?$ct=application/grpc",
			grpcBody(lroMsg), expect(grpcX)),
		shape("content-type", "$ct makes a $rpc body protobuf", "cancel", "POST", vaultHost, "/$rpc"+lroCancelMethod+"?$ct=application/x-protobuf",
			withBody(string(lroMsg)), expect(advExpect{Protocol: "rpc", Service: vaultHost, Method: "vault.operations.cancel", Operation: "operations/x", Encoding: "rpc-proto"})),
		shape("content-type", "$ct gRPC-Web beside Content-Type JSON", wantAmbiguousOrQuery, "POST", vaultHost, lroCancelMethod+"?$ct=application/grpc-web",
			hdr("Content-Type", "application/json"), grpcBody(lroMsg), encoding("any"), unclear(queryUnclear)),
		shape("content-type", "$ct JSON beside Content-Type protobuf on $rpc", wantAmbiguousOrQuery, "POST", vaultHost, "/$rpc"+lroCancelMethod+"?$ct=application/json",
			hdr("Content-Type", "application/x-protobuf"), withBody(string(lroMsg)), encoding("any"), unclear(queryUnclear)),
		shape("content-type", "$ct gRPC beside Content-Type gRPC-Web", wantAmbiguousOrQuery, "POST", vaultHost, lroCancelMethod+"?$ct=application/grpc",
			hdr("Content-Type", "application/grpc-web"), grpcBody(lroMsg), encoding("any"), unclear(queryUnclear)),
		shape("content-type", "$ct JSON on a REST cancel", "cancel", "POST", vaultHost, vaultCancelX+"?$ct=application/json",
			withBody("{}"), expect(vaultExpect)),
		shape("content-type", "$ct JSON beside Content-Type text/plain on a REST cancel", "ambiguous", "POST", vaultHost, vaultCancelX+"?$ct=application/json",
			hdr("Content-Type", "text/plain"), withBody("{}")),
		shape("content-type", "$ct given twice", wantAmbiguousOrQuery, "POST", vaultHost, lroCancelMethod+"?$ct=application/grpc-web&$ct=application/json",
			grpcBody(lroMsg), encoding("any"), unclear(queryUnclear)),
		shape("content-type", "$ct makes a body a batch", "cancel", "POST", vaultHost, "/batch?$ct=multipart%2Fmixed%3B%20boundary%3D"+batchBoundary,
			withBody(multipartMixed(batchBoundary, cancelPart)), expect(inPart(vaultExpect, "1"))),
		shape("content-type", "$ct makes a body a batch, its ; unescaped", "ambiguous", "POST", vaultHost, "/batch?$ct=multipart/mixed;boundary="+batchBoundary,
			withBody(multipartMixed(batchBoundary, cancelPart)),
			unclear("';' separates the query (another reading) here, so $ct reads as multipart/mixed without a boundary: two readings")),
		shape("content-type", "$ct names another boundary than Content-Type", "ambiguous", "POST", vaultHost, "/batch?$ct=multipart%2Fmixed%3B%20boundary%3Dother",
			hdr("Content-Type", batchCT), withBody(multipartMixed("other", cancelPart)),
			unclear("the record may be the batch's or the part's")),
		shape("content-type", "$ct multipart/mixed on a batch path without Content-Type", "cancel", "POST", unknownHost, "/batch?%24ct=multipart%2Fmixed%3Bboundary%3D"+batchBoundary,
			noToken(), withBody(multipartMixed(batchBoundary, httpPart("1", embedded("POST /v1/projects/p/operations/o:cancel HTTP/1.1", "")))),
			expect(inPart(unlistedExpect("", unknownHost, "projects/p/operations/o"), "1"))),
		shape("content-type", "$httpHeaders on a REST cancel", "ambiguous", "POST", vaultHost, vaultCancelX+"?$httpHeaders=X-Goog-Api-Client%3Agl-js",
			expect(advExpect{Service: vaultHost})),
		shape("content-type", "$httpHeaders carrying an override", wantOverride, "GET", vaultHost, vaultCancelX+"?$httpHeaders=X-HTTP-Method-Override%3APOST",
			unclear("an override hidden in $httpHeaders: undocumented, so ambiguous, or a method override: either reason")),
		shape("content-type", "$httpHeaders on a batch holding a cancel", "ambiguous", "POST", vaultHost, "/batch?$httpHeaders=Content-Type%3Atext%2Fplain",
			batchOf(cancelPart), unclear("the record may be the batch's or the part's")),
		shape("content-type", "$httpHeaders on a gRPC-Web cancel", wantAmbiguousOrQuery, "POST", vaultHost, lroCancelMethod+"?$httpHeaders=X-Foo%3Abar",
			hdr("Content-Type", "application/grpc-web"), grpcBody(lroMsg), unclear(queryUnclear)),
		shape("content-type", "$ct gRPC-Web on a method that is no cancel", "pass", "POST", vaultHost, lroGetMethod+"?$ct=application/grpc-web",
			grpcBody(lroCancel("operations/x"))),
		shape("content-type", "$httpHeaders on an operation get", "pass", "GET", vaultHost, "/v1/operations/x?$httpHeaders=X-Foo%3Abar"),

		// Two values of a signal the record carries.
		shape("signals", "user project in header and query, different", "ambiguous", "POST", vaultHost, vaultCancelX+"?$userProject=b",
			hdr("X-Goog-User-Project", "a"), withToken(tokenVault), expect(advExpect{Service: vaultHost}),
			unclear("sent with vault's scope: the SPEC does not order this refusal before the scope check")),
		shape("signals", "request reason twice, different", "ambiguous", "POST", vaultHost, vaultCancelX,
			hdr("X-Goog-Request-Reason", "ticket-1", "X-Goog-Request-Reason", "ticket-2"), withToken(tokenVault), expect(advExpect{Service: vaultHost}),
			unclear("the SPEC names AMBIGUOUS_REQUEST for a user project given twice; a reason given twice is read alike here, sent with vault's scope")),

		// The legacy shared host www.googleapis.com, under discovery servicePaths.
		shape("legacy-host", "Cloud Storage cancel on www", "cancel", "POST", wwwHost, "/storage/v1/b/bkt/operations/o/cancel",
			expect(advExpect{Protocol: "http", Service: storageHost + "|" + wwwHost, Method: "storage.buckets.operations.cancel", Operation: "b/bkt/operations/o"}),
			unclear("the record's service on the legacy host: the API's own host, as for aliases, or www.googleapis.com")),
		shape("legacy-host", "Cloud SQL v1beta4 cancel on www", "cancel", "POST", wwwHost, "/sql/v1beta4/projects/p/operations/o/cancel",
			expect(advExpect{Protocol: "http", Service: sqlHost + "|" + wwwHost, Method: "sql.operations.cancel", Operation: "projects/p/operations/o"}),
			unclear("the record's service on the legacy host: the API's own host, as for aliases, or www.googleapis.com")),
		shape("legacy-host", "Cloud Storage cancel on WWW.GOOGLEAPIS.COM:443", "cancel", "POST", "WWW.GOOGLEAPIS.COM:443", "/storage/v1/b/bkt/operations/o/cancel",
			expect(advExpect{Protocol: "http", Method: "storage.buckets.operations.cancel", Operation: "b/bkt/operations/o"})),
		shape("legacy-host", "Cloud Storage cancel on www. with a trailing dot", "cancel", "POST", wwwHost+".", "/storage/v1/b/bkt/operations/o/cancel?alt=json",
			expect(advExpect{Protocol: "http", Method: "storage.buckets.operations.cancel", Operation: "b/bkt/operations/o"})),
		shape("legacy-host", "Cloud Storage cancel on www without a token", "cancel", "POST", wwwHost, "/storage/v1/b/bkt/operations/o/cancel",
			noToken(), expect(advExpect{Protocol: "http", Method: "storage.buckets.operations.cancel", Operation: "b/bkt/operations/o"})),
		shape("legacy-host", "Cloud Storage cancel on www, GET overridden", "refused:METHOD_OVERRIDE_REFUSED", "GET", wwwHost, "/storage/v1/b/bkt/operations/o/cancel",
			hdr("X-HTTP-Method-Override", "POST")),
		shape("legacy-host", "Cloud Storage cancel on www with $httpMethod", wantOverride, "GET", wwwHost, "/storage/v1/b/bkt/operations/o/cancel?$httpMethod=POST",
			unclear(overrideUnclear)),
		shape("legacy-host", "Cloud Storage cancel on www, encoded slash", "refused:AMBIGUOUS_PATH", "POST", wwwHost, "/storage/v1/b/bkt/operations%2Fo/cancel"),
		shape("legacy-host", "Cloud Storage cancel on its own host", "cancel", "POST", storageHost, "/storage/v1/b/bkt/operations/o/cancel", expect(storageExpect)),
		shape("legacy-host", "Cloud SQL v1beta4 cancel on its own host", "cancel", "POST", sqlHost, "/sql/v1beta4/projects/p/operations/o/cancel", expect(sqlExpect)),
		shape("legacy-host", "an API without servicePath under its name on www", "cancel", "POST", wwwHost, "/vault/v1/operations/x:cancel",
			noToken(), expect(advExpect{Protocol: "http", Service: wwwHost + "|" + vaultHost}),
			unclear("vault has no servicePath: an unlisted cancel of www (its name holds operations/x), or vault's own cancel if the reader tries every API's name as a prefix")),
		shape("legacy-host", "unlisted cancel on www", "cancel", "POST", wwwHost, "/v1/projects/p/operations/o:cancel",
			noToken(), expect(unlistedExpect("http", wwwHost, "projects/p/operations/o"))),
		shape("legacy-host", "unlisted /cancel on www", "cancel", "POST", wwwHost, "/v2/projects/p/operations/o/cancel",
			noToken(), expect(unlistedExpect("http", wwwHost, "projects/p/operations/o"))),
		shape("legacy-host", "object get on www", "pass", "GET", wwwHost, "/storage/v1/b/bkt/o/obj"),
		shape("legacy-host", "operation get on www", "pass", "GET", wwwHost, "/storage/v1/b/bkt/operations/o"),
		shape("legacy-host", "upload on www", "pass", "POST", wwwHost, "/upload/storage/v1/b/bkt/o?uploadType=media&name=obj",
			hdr("Content-Type", "text/plain"), withBody("hello")),
		shape("legacy-host", "discovery on www", "pass", "GET", wwwHost, "/discovery/v1/apis/vault/v1/rest"),

		// Unlisted cancels, both path styles, every Google-served host kind.
		shape("unlisted", "colon style on an unknown googleapis.com host", "cancel", "POST", unknownHost, "/v1/projects/p/operations/o:cancel",
			noToken(), expect(unlistedExpect("http", unknownHost, "projects/p/operations/o"))),
		shape("unlisted", "slash style on an unknown googleapis.com host", "cancel", "POST", unknownHost, "/v1/projects/p/operations/o/cancel",
			noToken(), expect(unlistedExpect("http", unknownHost, "projects/p/operations/o"))),
		shape("unlisted", "slash style, operations/x, on an unknown host", "cancel", "POST", unknownHost, "/v1/operations/x/cancel",
			noToken(), expect(unlistedExpect("http", unknownHost, "operations/x"))),
		shape("unlisted", "mixed-case unknown host", "cancel", "POST", "Foo.GoogleApis.Com", "/v1/projects/p/operations/o/cancel",
			noToken(), expect(unlistedExpect("http", unknownHost, "projects/p/operations/o"))),
		shape("unlisted", "regional unknown host", "cancel", "POST", "us-east1-foo.googleapis.com", "/v1/projects/p/locations/l/operations/o/cancel",
			noToken(), expect(unlistedExpect("http", "us-east1-foo.googleapis.com", "projects/p/locations/l/operations/o"))),
		shape("unlisted", "slash style on vault, whose cancel is :cancel", "cancel", "POST", vaultHost, "/v1/operations/x/cancel",
			noToken(), expect(unlistedExpect("http", vaultHost, "operations/x"))),
		shape("unlisted", "a vault version the catalog lacks", "cancel", "POST", vaultHost, "/v9/operations/x:cancel",
			noToken(), expect(unlistedExpect("http", vaultHost, "operations/x"))),
		shape("unlisted", "colon style on sqladmin, whose cancel is /cancel", "cancel", "POST", sqlHost, "/v1/projects/p/operations/o:cancel",
			noToken(), expect(unlistedExpect("http", sqlHost, "projects/p/operations/o"))),
		shape("unlisted", "colon style on storage", "cancel", "POST", storageHost, "/storage/v1/b/bkt/operations/o:cancel",
			noToken(), expect(advExpect{Protocol: "http", Service: storageHost, Method: "unlisted"})),
		shape("unlisted", "slash style on an unknown clients6.google.com host", "cancel", "POST", "foo.clients6.google.com", "/v1/projects/p/operations/o/cancel",
			noToken(), expect(advExpect{Protocol: "http", Service: unknownHost + "|foo.clients6.google.com", Method: "unlisted", Operation: "projects/p/operations/o"}),
			unclear("the record's service for an alias of an API the catalog does not know: the aliased name or the host")),
		shape("unlisted", "colon style on an unknown p.googleapis.com host", "cancel", "POST", "foo-corp.p.googleapis.com", "/v1/projects/p/operations/o:cancel",
			noToken(), expect(advExpect{Protocol: "http", Service: unknownHost + "|foo-corp.p.googleapis.com", Method: "unlisted", Operation: "projects/p/operations/o"}),
			unclear("the record's service for an alias of an API the catalog does not know: the aliased name or the host")),
		shape("unlisted", "slash style on an unknown content- host", "cancel", "POST", "content-foo.googleapis.com", "/v1/projects/p/operations/o/cancel",
			noToken(), expect(advExpect{Protocol: "http", Service: unknownHost + "|content-foo.googleapis.com", Method: "unlisted", Operation: "projects/p/operations/o"}),
			unclear("the record's service for an alias of an API the catalog does not know: the aliased name or the host")),
		shape("unlisted", "jobs cancel on an unknown host is no operation cancel", "pass", "POST", unknownHost, "/v1/projects/p/jobs/j:cancel"),
		shape("unlisted", "operations with nothing after it", "pass", "POST", unknownHost, "/v1/operations:cancel"),
		shape("unlisted", "cancel-shaped path on a host Google does not serve", "pass", "POST", otherHost, "/v1/projects/p/operations/o:cancel",
			unclear("the SPEC recognises unlisted cancels on Google-served hosts only; governing this one would be stricter, not a bypass")),

		// Alias hosts of catalog APIs, and host spellings.
		shape("alias", "APIs Explorer content-vault", "cancel", "POST", "content-vault.googleapis.com", vaultCancelX, expect(vaultExpect)),
		shape("alias", "web console vault.clients6.google.com", "cancel", "POST", "vault.clients6.google.com", vaultCancelX, expect(vaultExpect)),
		shape("alias", "Private Service Connect vault-corp", "cancel", "POST", "vault-corp.p.googleapis.com", vaultCancelX, expect(vaultExpect)),
		shape("alias", "sqladmin /cancel on its console alias", "cancel", "POST", "sqladmin.clients6.google.com", sqlCancelO, expect(sqlExpect)),
		shape("alias", "upper-case host with a port", "cancel", "POST", "VAULT.GOOGLEAPIS.COM:443", vaultCancelX, expect(vaultExpect)),
		shape("alias", "host with a trailing dot", "cancel", "POST", "vault.googleapis.com.", vaultCancelX, expect(vaultExpect)),
		shape("alias", "absolute-form target naming vault", "cancel", "POST", vaultHost, "http://vault.googleapis.com"+vaultCancelX, rawOnly(), expect(vaultExpect)),
		shape("alias", "absolute-form target naming vault, Host another API", "cancel or ambiguous", "POST", "example.com", "http://vault.googleapis.com"+vaultCancelX, rawOnly(),
			expect(advExpect{Service: vaultHost}),
			unclear("HTTP/1.1 takes the absolute-form target's authority over Host (RFC 9112 3.2.2), so it is vault's cancel; a reader may also call it two readings")),

		// Matrix parameters and ';' in the query.
		shape("matrix", "matrix parameter after the verb", "ambiguous", "POST", vaultHost, vaultCancelX+";a=b", expect(advExpect{Service: vaultHost})),
		shape("matrix", "matrix parameter before the verb", "ambiguous", "POST", vaultHost, "/v1/operations/x;a=b:cancel", expect(advExpect{Service: vaultHost})),
		shape("matrix", "matrix parameter after sqladmin's /cancel", "ambiguous", "POST", sqlHost, sqlCancelO+";a=b", expect(advExpect{Service: sqlHost})),
		shape("matrix", "matrix parameter on the name before /cancel", "ambiguous", "POST", sqlHost, "/v1/projects/p/operations/o;a=b/cancel",
			expect(advExpect{Service: sqlHost}), unclear("the SPEC names the last segment; the name's own segment is read alike here")),
		shape("matrix", "matrix parameter on an unlisted cancel", "ambiguous", "POST", unknownHost, "/v1/projects/p/operations/o:cancel;x", noToken()),
		shape("matrix", "matrix parameter on the storage cancel on www", "ambiguous", "POST", wwwHost, "/storage/v1/b/bkt/operations/o/cancel;a=b"),
		shape("matrix", "bare ; after the verb", "ambiguous", "POST", vaultHost, vaultCancelX+";", expect(advExpect{Service: vaultHost})),
		shape("matrix", "matrix parameter in an inner segment", "ambiguous", "POST", vaultHost, "/v1/operations;a=b/x:cancel",
			unclear("the SPEC names matrix parameters in the last segment only; without them this inner segment makes a cancel, so it reads two ways")),
		shape("matrix", "matrix parameter on an operation get", "pass", "GET", vaultHost, "/v1/operations/x;a=b"),
		shape("query-separator", "; as a query separator, name after it", "ambiguous", "POST", vaultHost, vaultCancelX+"?a=1;name=x", expect(advExpect{Service: vaultHost})),
		shape("query-separator", "; hides a name in a system parameter", "ambiguous", "POST", vaultHost, vaultCancelX+"?alt=json;name=operations/y", expect(advExpect{Service: vaultHost})),
		shape("query-separator", "; hides $httpMethod", "ambiguous or "+wantOverride, "GET", vaultHost, vaultCancelX+"?alt=json;$httpMethod=POST",
			unclear(overrideUnclear)),
		shape("query-separator", "; in the outer query of a batch", "ambiguous", "POST", vaultHost, "/batch?alt=json;fields=x", batchOf(cancelPart),
			unclear("the record may be the batch's or the part's")),
		shape("query-separator", "; in the query of a non-cancel", "pass", "GET", vaultHost, "/v1/matters?a=1;b=2"),
		shape("query-binding", "name in the query", "refused:QUERY_BINDING", "POST", vaultHost, vaultCancelX+"?name=operations/y",
			withToken(tokenVault), expect(vaultExpect)),

		// Percent-encoding: decoded once, never twice.
		shape("encoding", "encoded slash before the name", "refused:AMBIGUOUS_PATH", "POST", vaultHost, "/v1/operations%2Fx:cancel"),
		shape("encoding", "encoded colon before the verb", "refused:AMBIGUOUS_PATH|AMBIGUOUS_REQUEST", "POST", vaultHost, "/v1/operations/x%3Acancel",
			unclear("AMBIGUOUS_PATH names a percent-encoded verb; a reader may call it AMBIGUOUS_REQUEST")),
		shape("encoding", "encoded letter in operations", "refused:AMBIGUOUS_PATH|AMBIGUOUS_REQUEST", "POST", vaultHost, "/v1/%6Fperations/x:cancel",
			unclear("a path that is a cancel only decoded: AMBIGUOUS_PATH today, AMBIGUOUS_REQUEST by the reading rule")),
		shape("encoding", "encoded letter in the verb", "refused:AMBIGUOUS_PATH|AMBIGUOUS_REQUEST", "POST", vaultHost, "/v1/operations/x:%63ancel",
			unclear("a path that is a cancel only decoded: AMBIGUOUS_PATH today, AMBIGUOUS_REQUEST by the reading rule")),
		shape("encoding", "encoded letter in sqladmin's /cancel", "refused:AMBIGUOUS_PATH|AMBIGUOUS_REQUEST", "POST", sqlHost, "/v1/projects/p/operations/o/%63ancel",
			unclear("a path that is a cancel only decoded: AMBIGUOUS_PATH today, AMBIGUOUS_REQUEST by the reading rule")),
		shape("encoding", "encoded letter in an unlisted /cancel on www", "refused:AMBIGUOUS_PATH|AMBIGUOUS_REQUEST", "POST", wwwHost, "/storage/v1/b/bkt/operations/o/c%61ncel",
			unclear("a path that is a cancel only decoded: AMBIGUOUS_PATH today, AMBIGUOUS_REQUEST by the reading rule")),
		shape("encoding", "encoded semicolon after the verb", "refused:AMBIGUOUS_PATH|AMBIGUOUS_REQUEST", "POST", vaultHost, vaultCancelX+"%3Ba=b",
			unclear("decoded once it carries a matrix parameter: either reason")),
		shape("encoding", "encoded dot-dot segment", "refused:AMBIGUOUS_PATH", "POST", vaultHost, "/v1/operations/%2e%2e/operations/x:cancel"),
		shape("encoding", "dot segment", "refused:AMBIGUOUS_PATH", "POST", vaultHost, "/v1/./operations/x:cancel"),
		shape("encoding", "empty segment", "refused:AMBIGUOUS_PATH", "POST", vaultHost, "/v1//operations/x:cancel"),
		shape("encoding", "backslash", "refused:AMBIGUOUS_PATH", "POST", vaultHost, `/v1\operations\x:cancel`, rawOnly()),
		shape("encoding", "encoded backslash", "refused:AMBIGUOUS_PATH", "POST", vaultHost, "/v1%5Coperations/x:cancel"),
		shape("encoding", "dot-dot into /cancel on an unknown host", "refused:AMBIGUOUS_PATH", "POST", unknownHost, "/v1/projects/p/operations/o/x/../cancel", noToken()),
		shape("encoding", "trailing slash after sqladmin's /cancel", "refused:AMBIGUOUS_PATH", "POST", sqlHost, sqlCancelO+"/"),
		shape("encoding", "double-encoded slash inside a name that matches", "cancel", "POST", vaultHost, "/v1/operations/a%252Fb:cancel",
			expect(advExpect{Protocol: "http", Service: vaultHost, Method: "vault.operations.cancel", Operation: "operations/a%2Fb"})),
		shape("encoding", "double-encoded slash before the name", "pass", "POST", vaultHost, "/v1/operations%252Fx:cancel",
			unclear("decoded once it is operations%2Fx, one segment that is not operations: never decoding twice, it is no cancel")),
		shape("encoding", "double-encoded verb", "pass", "POST", vaultHost, "/v1/operations/x%253Acancel",
			unclear("decoded once the last segment is x%3Acancel, no verb: never decoding twice, it is no cancel")),
		shape("encoding", "fragment after the verb", "ambiguous", "POST", vaultHost, vaultCancelX+"#frag", rawOnly(),
			unclear("a request target holds no fragment (RFC 9112 3.2): a server that drops it reads a cancel, one that keeps it (Go's) does not; "+
				"Caddy forwards it as x:cancel%23frag, which Google would not read as a cancel, so passing it is arguable; refusing is the safe reading")),
		shape("encoding", "upper-case verb", "pass", "POST", vaultHost, "/v1/operations/x:CANCEL",
			unclear("the SPEC is silent on the letter case of a path; Google's paths and verbs are case-sensitive")),

		// Batches: every Google-served host, every batch path.
		shape("batch", "cancel in a batch on vault", "cancel", "POST", vaultHost, "/batch", batchOf(cancelPart), expect(inPart(vaultExpect, "1"))),
		shape("batch", "batch path spelling cancel", "cancel", "POST", vaultHost, "/batch/cancel/v1", batchOf(cancelPart), expect(inPart(vaultExpect, "1"))),
		shape("batch", "batch path naming another API", "cancel", "POST", vaultHost, "/batch/storage/v1", batchOf(cancelPart), expect(inPart(vaultExpect, "1")),
			unclear("the batch path names storage, the Host vault; the part's path is vault's: governed as vault's cancel")),
		shape("batch", "batch path with extra words", "cancel", "POST", vaultHost, "/batch/vault/v1/extra", batchOf(cancelPart), expect(inPart(vaultExpect, "1"))),
		shape("batch", "upload batch path", "cancel", "POST", vaultHost, "/upload/batch", batchOf(cancelPart), expect(inPart(vaultExpect, "1")),
			unclear("the SPEC says every batch path Google accepts, whatever else the path holds; /upload/batch is read as one")),
		shape("batch", "batch path in capitals", "cancel", "POST", vaultHost, "/BATCH", batchOf(cancelPart), expect(inPart(vaultExpect, "1"))),
		shape("batch", "batch path with a trailing slash", "cancel", "POST", vaultHost, "/batch/", batchOf(cancelPart), expect(inPart(vaultExpect, "1"))),
		shape("batch", "batch path with a query", "cancel", "POST", vaultHost, "/batch?alt=json", batchOf(cancelPart), expect(inPart(vaultExpect, "1"))),
		shape("batch", "batch on an unknown googleapis.com host", "cancel", "POST", unknownHost, "/batch", noToken(),
			batchOf(httpPart("1", embedded("POST /v1/projects/p/operations/o:cancel HTTP/1.1", ""))),
			expect(inPart(unlistedExpect("", unknownHost, "projects/p/operations/o"), "1"))),
		shape("batch", "/cancel batch on an unknown host's per-API path", "cancel", "POST", unknownHost, "/batch/foo/v1", noToken(),
			batchOf(httpPart("1", embedded("POST /v1/projects/p/operations/o/cancel HTTP/1.1", ""))),
			expect(inPart(unlistedExpect("", unknownHost, "projects/p/operations/o"), "1"))),
		shape("batch", "batch on an unknown clients6 host", "cancel", "POST", "foo.clients6.google.com", "/batch", noToken(),
			batchOf(httpPart("1", embedded("POST /v1/projects/p/operations/o:cancel HTTP/1.1", ""))),
			expect(advExpect{Protocol: "batch", Method: "unlisted", Operation: "projects/p/operations/o"})),
		shape("batch", "batch on vault's console alias", "cancel", "POST", "vault.clients6.google.com", "/batch", batchOf(cancelPart), expect(inPart(vaultExpect, "1"))),
		shape("batch", "global batch endpoint, part names vault by URL", "cancel", "POST", wwwHost, "/batch",
			batchOf(httpPart("1", embedded("POST https://vault.googleapis.com"+vaultCancelX+" HTTP/1.1", ""))), expect(inPart(vaultExpect, "1"))),
		shape("batch", "global batch endpoint, part names vault by Host", "cancel", "POST", wwwHost, "/batch",
			batchOf(httpPart("1", embedded("POST "+vaultCancelX+" HTTP/1.1\nHost: vault.googleapis.com", ""))), expect(inPart(vaultExpect, "1"))),
		shape("batch", "global batch endpoint, part's Host one Google does not serve", "ambiguous", "POST", wwwHost, "/batch",
			batchOf(httpPart("1", embedded("POST "+vaultCancelX+" HTTP/1.1\nHost: vault.gopgleapis.com", "")))),
		shape("batch", "global batch endpoint, storage cancel by servicePath", "cancel", "POST", wwwHost, "/batch",
			batchOf(httpPart("1", embedded("POST /storage/v1/b/bkt/operations/o/cancel HTTP/1.1", ""))),
			expect(advExpect{Protocol: "batch", Method: "storage.buckets.operations.cancel", Operation: "b/bkt/operations/o", Part: "1"})),
		shape("batch", "storage's own batch path on www", "cancel", "POST", wwwHost, "/batch/storage/v1",
			batchOf(httpPart("1", embedded("POST /storage/v1/b/bkt/operations/o/cancel HTTP/1.1", ""))),
			expect(advExpect{Protocol: "batch", Method: "storage.buckets.operations.cancel", Operation: "b/bkt/operations/o", Part: "1"})),
		shape("batch", "part's absolute URL names another API", "ambiguous", "POST", vaultHost, "/batch",
			batchOf(httpPart("1", embedded("POST https://sqladmin.googleapis.com"+sqlCancelO+" HTTP/1.1", ""))),
			unclear("TestBypassAttempts still governs this as sqladmin's cancel; the SPEC now calls it ambiguous")),
		shape("batch", "part's Host names another API", "ambiguous", "POST", vaultHost, "/batch",
			batchOf(httpPart("1", embedded("POST "+sqlCancelO+" HTTP/1.1\nHost: sqladmin.googleapis.com", "")))),
		shape("batch", "part's Host names another API, path vault's", "ambiguous", "POST", vaultHost, "/batch",
			batchOf(httpPart("1", embedded("POST "+vaultCancelX+" HTTP/1.1\nHost: sqladmin.googleapis.com", "")))),
		shape("batch", "part's URL names www.googleapis.com", "ambiguous", "POST", vaultHost, "/batch",
			batchOf(httpPart("1", embedded("POST https://www.googleapis.com/storage/v1/b/bkt/operations/o/cancel HTTP/1.1", "")))),
		shape("batch", "part's Host is the batch's own API", "cancel", "POST", vaultHost, "/batch",
			batchOf(httpPart("1", embedded("POST "+vaultCancelX+" HTTP/1.1\nHost: vault.googleapis.com", ""))), expect(inPart(vaultExpect, "1"))),
		shape("batch", "part is a $rpc cancel", "cancel", "POST", vaultHost, "/batch",
			batchOf(httpPart("1", embedded("POST /$rpc"+lroCancelMethod+" HTTP/1.1\nContent-Type: application/json", `{"name":"operations/x"}`))),
			expect(inPart(vaultExpect, "1"))),
		shape("batch", "part is a gRPC-Web cancel", "cancel", "POST", vaultHost, "/batch",
			batchOf(httpPart("1", embedded("POST "+lroCancelMethod+" HTTP/1.1\nContent-Type: application/grpc-web+proto", string(grpcFrame(0, lroMsg))))),
			expect(inPart(vaultExpect, "1"))),
		shape("batch", "part is a gRPC cancel", "cancel", "POST", vaultHost, "/batch",
			batchOf(httpPart("1", embedded("POST "+lroCancelMethod+" HTTP/1.1\nContent-Type: application/grpc", string(grpcFrame(0, lroMsg))))),
			expect(inPart(vaultExpect, "1")), unclear("gRPC needs HTTP/2, but the SPEC governs a part that is a cancel in any door's form")),
		shape("batch", "part with $httpMethod", wantOverride, "POST", vaultHost, "/batch",
			batchOf(httpPart("1", embedded("GET "+vaultCancelX+"?$httpMethod=POST HTTP/1.1", ""))), unclear(overrideUnclear)),
		shape("batch", "part with its method in lower case", "ambiguous or refused:INVALID_BATCH", "POST", vaultHost, "/batch",
			batchOf(httpPart("1", embedded("post "+vaultCancelX+" HTTP/1.1", ""))),
			unclear("the SPEC refuses a part with a bad request line as INVALID_BATCH, which a lower-case method may be")),
		shape("batch", "part with a matrix parameter", "ambiguous", "POST", vaultHost, "/batch",
			batchOf(httpPart("1", embedded("POST "+vaultCancelX+";a=b HTTP/1.1", "")))),
		shape("batch", "part with two override headers", wantOverride, "POST", vaultHost, "/batch",
			batchOf(httpPart("1", embedded("GET "+vaultCancelX+" HTTP/1.1\nX-HTTP-Method: POST\nX-Method-Override: POST", ""))), unclear(overrideUnclear)),
		shape("batch", "part with $ct making it gRPC-Web", "cancel", "POST", vaultHost, "/batch",
			batchOf(httpPart("1", embedded("POST "+lroCancelMethod+"?$ct=application/grpc-web HTTP/1.1", string(grpcFrame(0, lroMsg))))),
			expect(inPart(vaultExpect, "1"))),
		shape("batch", "nested batch on an unknown host", "refused:INVALID_BATCH", "POST", unknownHost, "/batch", noToken(),
			batchOf(httpPart("1", embedded("POST /batch HTTP/1.1\nContent-Type: multipart/mixed; boundary=inner",
				multipartMixed("inner", httpPart("1", embedded("POST /v1/projects/p/operations/o:cancel HTTP/1.1", ""))))))),
		shape("batch", "nested batch at an extra-word path", "refused:INVALID_BATCH", "POST", vaultHost, "/batch/cancel/v1",
			batchOf(httpPart("1", embedded("POST /batch HTTP/1.1\nContent-Type: multipart/mixed; boundary=inner",
				multipartMixed("inner", cancelPart))))),
		shape("batch", "batch without a cancel on vault", "pass", "POST", vaultHost, "/batch", batchOf(getPart)),
		shape("batch", "batch without a cancel on an unknown host", "pass", "POST", unknownHost, "/batch",
			batchOf(httpPart("1", embedded("GET /v1/things/t HTTP/1.1", "")), httpPart("2", embedded("POST /v1/things HTTP/1.1\nContent-Type: application/json", `{"a":1}`)))),
		shape("batch", "batch without a cancel on www", "pass", "POST", wwwHost, "/batch/storage/v1",
			batchOf(httpPart("1", embedded("GET /storage/v1/b/bkt/o/obj HTTP/1.1", "")))),
		shape("batch", "batch without a cancel at a path spelling cancel", "pass", "POST", vaultHost, "/batch/cancel/v1", batchOf(getPart)),
		shape("batch", "batch holding a cancel on a host Google does not serve", "pass", "POST", otherHost, "/batch", batchOf(cancelPart)),

		// gRPC, gRPC-Web and $rpc.
		shape("grpc", "gRPC cancel", "cancel", "POST", vaultHost, lroCancelMethod, hdr("Content-Type", "application/grpc"), grpcBody(lroMsg), expect(grpcX)),
		shape("grpc", "gRPC cancel without a token", "cancel", "POST", vaultHost, lroCancelMethod, noToken(), hdr("Content-Type", "application/grpc+proto"), grpcBody(lroMsg), expect(grpcX)),
		shape("grpc", "gRPC content type in capitals", "cancel", "POST", vaultHost, lroCancelMethod, hdr("Content-Type", "Application/GRPC"), grpcBody(lroMsg),
			expect(grpcX), unclear("media types are case-insensitive (RFC 9110 8.3.1): Google reads it as gRPC")),
		shape("grpc", "gRPC content type with a parameter", "cancel", "POST", vaultHost, lroCancelMethod, hdr("Content-Type", "application/grpc; charset=utf-8"), grpcBody(lroMsg),
			expect(grpcX)),
		shape("grpc", "gRPC cancel with a query", "cancel or refused:QUERY_NOT_ALLOWED", "POST", vaultHost, lroCancelMethod+"?alt=json", hdr("Content-Type", "application/grpc"), grpcBody(lroMsg), expect(grpcX),
			unclear(queryUnclear)),
		shape("grpc", "gRPC cancel with $httpMethod in its query", "cancel or "+wantOverride+"|QUERY_NOT_ALLOWED", "POST", vaultHost, lroCancelMethod+"?$httpMethod=POST",
			hdr("Content-Type", "application/grpc"), grpcBody(lroMsg), expect(grpcX), unclear("gRPC has no method but POST; the override agrees; "+queryUnclear)),
		shape("grpc", "gzip-compressed gRPC cancel", "cancel", "POST", vaultHost, lroCancelMethod,
			hdr("Content-Type", "application/grpc", "Grpc-Encoding", "gzip"), func(s *advShape) { s.setBody(grpcFrame(1, gzipped(t, lroMsg))) }, expect(grpcX)),
		shape("grpc", "unlisted gRPC cancel on an unknown host", "cancel", "POST", unknownHost, lroCancelMethod, noToken(),
			hdr("Content-Type", "application/grpc"), grpcBody(lroCancel("projects/p/operations/o")), expect(unlistedExpect("grpc", unknownHost, "projects/p/operations/o"))),
		shape("grpc", "GKE gRPC cancel", "cancel", "POST", containerAPI, gkeCancelMethod, hdr("Content-Type", "application/grpc"),
			grpcBody(gkeCancel("", "", "", "projects/p/locations/l/operations/o")),
			expect(advExpect{Protocol: "grpc", Service: containerAPI, Method: "container.projects.locations.operations.cancel", Operation: "projects/p/locations/l/operations/o"})),
		shape("grpc", "Cloud SQL gRPC cancel on www", "cancel", "POST", wwwHost, sqlBetaCancelMethod, noToken(), hdr("Content-Type", "application/grpc"),
			grpcBody(sqlCancel("o", "p")), expect(advExpect{Protocol: "grpc", Service: wwwHost + "|" + sqlHost, Operation: "projects/p/operations/o"}),
			unclear("gRPC on the legacy host: an unlisted cancel of www (a servicePath prefixes REST paths, not gRPC methods) or sqladmin's; sent without a token, either is 401")),
		shape("grpc", "gRPC cancel on vault's PSC alias", "cancel", "POST", "vault-corp.p.googleapis.com", lroCancelMethod, hdr("Content-Type", "application/grpc"),
			grpcBody(lroMsg), expect(grpcX)),
		shape("grpc", "gRPC-Web cancel", "cancel", "POST", vaultHost, lroCancelMethod, hdr("Content-Type", "application/grpc-web+proto"), grpcBody(lroMsg), expect(grpcWebX)),
		shape("grpc", "gRPC-Web content type in capitals", "cancel", "POST", vaultHost, lroCancelMethod, hdr("Content-Type", "APPLICATION/GRPC-WEB"), grpcBody(lroMsg),
			expect(grpcWebX), unclear("media types are case-insensitive: Google reads it as gRPC-Web")),
		shape("grpc", "gRPC-Web text cancel", "cancel", "POST", vaultHost, lroCancelMethod, hdr("Content-Type", "application/grpc-web-text"),
			withBody(base64.StdEncoding.EncodeToString(grpcFrame(0, lroMsg))), expect(grpcWebX)),
		shape("grpc", "gRPC-Web cancel on an unknown host", "cancel", "POST", unknownHost, lroCancelMethod, noToken(), hdr("Content-Type", "application/grpc-web"),
			grpcBody(lroCancel("projects/p/operations/o")), expect(unlistedExpect("grpc-web", unknownHost, "projects/p/operations/o"))),
		shape("grpc", "$rpc protobuf cancel", "cancel", "POST", vaultHost, "/$rpc"+lroCancelMethod, hdr("Content-Type", "application/x-protobuf"),
			withBody(string(lroMsg)), expect(rpcX)),
		shape("grpc", "$rpc JSON cancel", "cancel", "POST", vaultHost, "/$rpc"+lroCancelMethod, hdr("Content-Type", "application/json"),
			withBody(`{"name":"operations/x"}`), expect(rpcX)),
		shape("grpc", "$rpc JSON cancel on an unknown host", "cancel", "POST", unknownHost, "/$rpc"+lroCancelMethod, noToken(), hdr("Content-Type", "application/json"),
			withBody(`{"name":"projects/p/operations/o"}`), expect(unlistedExpect("rpc", unknownHost, "projects/p/operations/o"))),
		shape("grpc", "%24rpc cancel", "cancel or refused:AMBIGUOUS_PATH|AMBIGUOUS_REQUEST", "POST", vaultHost, "/%24rpc"+lroCancelMethod,
			hdr("Content-Type", "application/json"), withBody(`{"name":"operations/x"}`), expect(advExpect{Service: vaultHost}),
			unclear("decoded once it is the $rpc door: governed as that cancel, or refused as a path that reads two ways")),
		shape("grpc", "$rpc JSON cancel with $ct protobuf", wantAmbiguousOrQuery, "POST", vaultHost, "/$rpc"+lroCancelMethod+"?$ct=application/x-protobuf",
			hdr("Content-Type", "application/json"), withBody(`{"name":"operations/x"}`), encoding("any"), unclear(queryUnclear)),
		shape("grpc", "gRPC stream that is no cancel", "pass", "POST", vaultHost, "/google.pubsub.v1.Subscriber/StreamingPull",
			hdr("Content-Type", "application/grpc"), func(s *advShape) {
				s.setBody(append(grpcFrame(0, message(field{1, "projects/p/subscriptions/s"})), grpcFrame(0, message(field{2, "ack-1"}))...))
				s.NotHTTP1 = true
			}),
		shape("grpc", "gRPC operation get", "pass", "POST", vaultHost, lroGetMethod, hdr("Content-Type", "application/grpc"), grpcBody(lroMsg),
			func(s *advShape) { s.NotHTTP1 = true }),
		shape("grpc", "gRPC-Web operation get", "pass", "POST", vaultHost, lroGetMethod, hdr("Content-Type", "application/grpc-web+proto"), grpcBody(lroMsg)),
		shape("grpc", "$rpc operation get", "pass", "POST", vaultHost, "/$rpc"+lroGetMethod, hdr("Content-Type", "application/json"), withBody(`{"name":"operations/x"}`)),

		// Ordinary traffic on every host kind passes, byte for byte.
		shape("ordinary", "operation get on vault", "pass", "GET", vaultHost, "/v1/operations/x"),
		shape("ordinary", "operation list on vault", "pass", "GET", vaultHost, "/v1/operations?filter=done%3Dfalse&pageSize=10"),
		shape("ordinary", "matter create on vault", "pass", "POST", vaultHost, "/v1/matters", hdr("Content-Type", "application/json"), withBody(`{"name":"m"}`)),
		shape("ordinary", "operation delete on vault", "pass", "DELETE", vaultHost, "/v1/operations/x"),
		shape("ordinary", "GET on vault's cancel path", "pass", "GET", vaultHost, vaultCancelX),
		shape("ordinary", "CORS preflight of a cancel", "pass", "OPTIONS", vaultHost, vaultCancelX,
			hdr("Origin", "https://console.cloud.google.com", "Access-Control-Request-Method", "POST"), noToken()),
		shape("ordinary", "a verb that merely starts with cancel", "pass", "POST", vaultHost, "/v1/operations/x:cancelAll"),
		shape("ordinary", "an operation named cancel", "pass", "GET", vaultHost, "/v1/operations/cancel"),
		shape("ordinary", "instance restart on sqladmin", "pass", "POST", sqlHost, "/v1/projects/p/instances/i/restart"),
		shape("ordinary", "GET on an alias", "pass", "GET", "content-vault.googleapis.com", "/v1/operations/x"),
		shape("ordinary", "POST on a console alias", "pass", "POST", "vault.clients6.google.com", "/v1/matters", hdr("Content-Type", "application/json"), withBody("{}")),
		shape("ordinary", "object upload on storage", "pass", "PUT", storageHost, "/upload/storage/v1/b/bkt/o?uploadType=resumable&upload_id=u",
			hdr("Content-Type", "application/octet-stream"), func(s *advShape) { s.setBody([]byte{0x00, 0xff, 0xfe, 'c', 'a', 'n', 'c', 'e', 'l'}) }),
		shape("ordinary", "GET on an unknown googleapis.com host", "pass", "GET", unknownHost, "/v1/things/t"),
		shape("ordinary", "POST on an unknown googleapis.com host", "pass", "POST", unknownHost, "/v1/things:run", hdr("Content-Type", "application/json"), withBody(`{"x":1}`)),
		shape("ordinary", "POST with a cancel-ish name on an unknown host", "pass", "POST", unknownHost, "/v1/cancellations/c:approve"),
		shape("ordinary", "GET on a host Google does not serve", "pass", "GET", otherHost, "/v1/operations/x:cancel"),
		shape("ordinary", "POST on a host Google does not serve", "pass", "POST", otherHost, "/api/cancel", withBody("cancel=1")),
	}
}

// withToken sends token as the shape's credential.
func withToken(token string) advOpt {
	return func(s *advShape) { s.Headers["Authorization"] = []string{"Bearer " + token} }
}

// The suite itself. It is expected to fail on main for the shapes the one
// reader (issue 19) fixes; the failures name the shape and what it got.
func TestAdversarialShapesAreGovernedRefusedOrPassedAsGoogleReadsThem(t *testing.T) {
	g, standIn := startAdversarialGateway(t)
	tail := newAuditTail(g)
	shapes := adversarialShapes(t)
	for _, tr := range advTransports(t) {
		t.Run(tr.name, func(t *testing.T) {
			// A transport that cannot reach the gateway fails once, not
			// once per shape.
			if !t.Run("the gateway answers", func(t *testing.T) {
				tr.send(t, shape("ready", "ready", "pass", "GET", vaultHost, "/v1/operations/x"))
			}) {
				t.FailNow()
			}
			for _, s := range shapes {
				if (s.RawOnly && !tr.raw) || (s.NotHTTP1 && tr.raw) {
					continue
				}
				t.Run(s.Name, func(t *testing.T) {
					checkAdvShape(t, g, standIn, tail, tr, s)
				})
			}
		})
	}
}

// advAnswer is what the caller got, read in whatever encoding it came.
type advAnswer struct {
	encoding string
	// status is the HTTP status, or the one a gRPC-family code stands for.
	status          int
	grpcCode        int
	reason, message string
	part            string
}

func checkAdvShape(t *testing.T, g *gateway, standIn *grpcStandIn, tail *auditTail, tr advTransport, s advShape) {
	g.upstream.reset()
	standIn.reset()
	tail.poll(t)
	before := len(tail.recs)
	resp, body := tr.send(t, s)
	if resp.ProtoMajor != tr.proto {
		t.Fatalf("answered over HTTP/%d, want HTTP/%d", resp.ProtoMajor, tr.proto)
	}
	id := resp.Header.Get("Audit-Id")
	ups, calls := g.upstream.requests(), standIn.calls()
	var recs []record
	if id != "" {
		recs = tail.wait(t, id)
	} else {
		time.Sleep(40 * time.Millisecond)
		tail.poll(t)
		for _, r := range tail.recs[before:] {
			if r.str("stage") == "completed" {
				recs = append(recs, r)
			}
		}
	}
	ans := readAdvAnswer(t, resp, body)

	var problems []string
	for _, want := range strings.Split(s.Want, " or ") {
		p := judgeAdvShape(s, want, resp, body, id, ans, ups, calls, recs)
		if len(p) == 0 {
			return
		}
		problems = append(problems, fmt.Sprintf("as %q: %s", want, strings.Join(p, "; ")))
	}
	t.Errorf("%s %s (Host %s): got HTTP %d %s %s, upstream %d, records %d\n%s",
		s.Method, s.Target, s.Host, resp.StatusCode, ans.encoding, ans.reason, len(ups)+len(calls), len(recs), strings.Join(problems, "\n"))
}

// judgeAdvShape lists what differs from one wanted answer.
func judgeAdvShape(s advShape, want string, resp *http.Response, body []byte, id string, ans advAnswer,
	ups []upstreamRequest, calls []grpcCall, recs []record) []string {
	var p []string
	fail := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }

	if want == "pass" {
		if id != "" {
			fail("governed (Audit-Id %s), want passed untouched", id)
		}
		if len(recs) != 0 {
			fail("%d record(s), want none: first %v", len(recs), recs[0])
		}
		if s.NotHTTP1 && s.Headers["Content-Type"] != nil && isGRPCContentType(s.Headers["Content-Type"][0]) {
			return append(p, checkGRPCPassed(s, ups, calls)...)
		}
		if len(calls) != 0 || len(ups) != 1 {
			return append(p, fmt.Sprintf("the upstream got %d request(s), want exactly the client's", len(ups)+len(calls)))
		}
		if resp.StatusCode != http.StatusOK || string(body) != "{}\n" {
			fail("answer %d %.100q, want the upstream's 200 {}", resp.StatusCode, body)
		}
		u := ups[0]
		target := s.Target
		if strings.Contains(target, "://") {
			if pu, err := url.Parse(target); err == nil {
				target = pu.RequestURI()
			}
		}
		if u.Method != s.Method || u.RequestURI != target || !strings.EqualFold(u.Host, s.Host) {
			fail("the upstream got %s %s (Host %s), want %s %s (Host %s)", u.Method, u.RequestURI, u.Host, s.Method, target, s.Host)
		}
		if want := s.bytes(); !bytes.Equal(u.Body, want) {
			fail("the upstream got a body of %d bytes, want the client's %d bytes unchanged", len(u.Body), len(want))
		}
		for k, vs := range s.Headers {
			if got := u.Header.Values(k); !slices.Equal(got, vs) {
				fail("the upstream got %s %q, want %q", k, got, vs)
			}
		}
		return p
	}

	// Governed or refused: never forwarded, one completed record, the
	// answer in the caller's encoding.
	if len(ups)+len(calls) != 0 {
		fail("reached the upstream %d time(s)", len(ups)+len(calls))
	}
	if id == "" {
		fail("no Audit-Id: not governed")
	}
	wantStatus, reasons := 0, []string(nil)
	switch {
	case want == "cancel" && s.hasToken():
		wantStatus, reasons = http.StatusForbidden, []string{"ACCESS_TOKEN_SCOPE_INSUFFICIENT"}
	case want == "cancel":
		wantStatus, reasons = http.StatusUnauthorized, []string{"CREDENTIALS_MISSING"}
	case want == "ambiguous":
		wantStatus, reasons = http.StatusBadRequest, []string{"AMBIGUOUS_REQUEST"}
	case strings.HasPrefix(want, "refused:"):
		wantStatus, reasons = http.StatusBadRequest, strings.Split(strings.TrimPrefix(want, "refused:"), "|")
	default:
		return append(p, "the table's want "+want+" is unknown")
	}
	if enc := s.encoding(); enc != "any" && ans.encoding != enc {
		fail("answer encoded as %s, want %s", ans.encoding, enc)
	}
	if ans.status != wantStatus {
		fail("status %d, want %d", ans.status, wantStatus)
	}
	gotReason := ans.reason
	if slices.Contains(reasons, "QUERY_BINDING") && strings.Contains(ans.message, "Cannot bind query parameter") {
		gotReason = "QUERY_BINDING"
	}
	if !slices.Contains(reasons, gotReason) {
		fail("reason %q (message %q), want %s", ans.reason, ans.message, strings.Join(reasons, " or "))
	}
	if s.Expect.Part != "" && ans.part != s.Expect.Part {
		fail("ErrorInfo part %q, want %q", ans.part, s.Expect.Part)
	}
	if len(recs) != 1 {
		return append(p, fmt.Sprintf("%d completed records, want exactly one", len(recs)))
	}
	rec := recs[0]
	if d := rec.str("decision"); !decisionMatches(d, reasonDecision[gotReason]) {
		fail("record decision %q, want %s", d, reasonDecision[gotReason])
	}
	if !rec.hasNumber("status", resp.StatusCode) {
		fail("record status %v, want the %d the client got", rec["status"], resp.StatusCode)
	}
	if strings.HasPrefix(ans.encoding, "grpc") && !rec.hasNumber("grpc_status", ans.grpcCode) {
		fail("record grpc_status %v, want %d", rec["grpc_status"], ans.grpcCode)
	}
	e := s.Expect
	if !slices.Contains([]string{"http", "grpc", "grpc-web", "rpc", "batch"}, rec.str("protocol")) {
		fail("record protocol %q is no door", rec.str("protocol"))
	}
	if want == "cancel" {
		for k, v := range map[string]string{"protocol": e.Protocol, "method": e.Method, "operation": e.Operation} {
			if v != "" && rec.str(k) != v {
				fail("record %s %q, want %q", k, rec.str(k), v)
			}
		}
		if e.Part != "" && rec.str("audit_id") != id+"#"+e.Part {
			fail("record audit_id %q, want %s#%s", rec.str("audit_id"), id, e.Part)
		}
	}
	if e.Service != "" && !slices.Contains(strings.Split(e.Service, "|"), rec.str("service")) {
		fail("record service %q, want %s", rec.str("service"), e.Service)
	}
	return p
}

// checkGRPCPassed checks a gRPC call that is no cancel reached the gRPC
// stand-in with the client's messages, byte for byte.
func checkGRPCPassed(s advShape, ups []upstreamRequest, calls []grpcCall) []string {
	if len(ups) != 0 || len(calls) != 1 {
		return []string{fmt.Sprintf("the gRPC stand-in got %d call(s) and the HTTP upstream %d, want the one call at the stand-in", len(calls), len(ups))}
	}
	var want []byte
	for _, m := range calls[0].Messages {
		want = append(want, grpcFrame(0, m)...)
	}
	if c := calls[0]; c.Method != s.Target || !bytes.Equal(want, s.bytes()) {
		return []string{fmt.Sprintf("the stand-in got %s with %d message bytes, want %s with the client's %d", c.Method, len(want), s.Target, len(s.bytes()))}
	}
	return nil
}

// reasonDecision is the record's decision for each answer's reason.
var reasonDecision = map[string]string{
	"ACCESS_TOKEN_SCOPE_INSUFFICIENT": "scope_insufficient",
	"CREDENTIALS_MISSING":             "unauthenticated",
	"AMBIGUOUS_REQUEST":               "ambiguous_request",
	"AMBIGUOUS_PATH":                  "invalid_path",
	"METHOD_OVERRIDE_REFUSED":         "invalid_request",
	"INVALID_BATCH":                   "invalid_request",
	"QUERY_NOT_ALLOWED":               "invalid_request",
	"METHOD_NOT_POST":                 "invalid_request",
	"QUERY_BINDING":                   "invalid_request|invalid_body",
}

// readAdvAnswer reads an answer by its Content-Type: Google's JSON
// envelope, a gRPC status in headers or trailers, a gRPC-Web trailer
// frame, or a serialized google.rpc.Status.
func readAdvAnswer(t *testing.T, resp *http.Response, body []byte) advAnswer {
	ct := strings.ToLower(resp.Header.Get("Content-Type"))
	a := advAnswer{encoding: "none", status: resp.StatusCode, grpcCode: -1}
	fromStatus := func(code int, st *spb.Status) {
		a.grpcCode = code
		a.status = httpStatusOf[codes.Code(code)]
		if st != nil {
			a.reason, a.message = errorInfoReason(st), st.GetMessage()
		}
	}
	switch {
	case strings.HasPrefix(ct, "application/json"):
		a.encoding = "json"
		var e googleError
		if json.Unmarshal(body, &e) == nil && e.Error.Code != 0 {
			a.status, a.message = e.Error.Code, e.Error.Message
			var md map[string]string
			a.reason, _, md = errorInfo(e)
			a.part = md["part"]
		}
	case strings.HasPrefix(ct, "application/grpc-web"):
		text := strings.HasPrefix(ct, "application/grpc-web-text")
		a.encoding = map[bool]string{true: "grpc-web-text", false: "grpc-web"}[text]
		tr := grpcWebTrailers(t, body, text)
		code, err := strconv.Atoi(tr["grpc-status"])
		if err == nil {
			var st *spb.Status
			if bin := tr["grpc-status-details-bin"]; bin != "" {
				st = decodeStatusDetails(t, bin)
			}
			fromStatus(code, st)
		}
	case strings.HasPrefix(ct, "application/grpc"):
		a.encoding = "grpc"
		get := func(k string) string {
			if v := resp.Trailer.Get(k); v != "" {
				return v
			}
			return resp.Header.Get(k)
		}
		if code, err := strconv.Atoi(get("Grpc-Status")); err == nil {
			var st *spb.Status
			if bin := get("Grpc-Status-Details-Bin"); bin != "" {
				st = decodeStatusDetails(t, bin)
			}
			fromStatus(code, st)
		}
	case strings.HasPrefix(ct, "application/x-protobuf"):
		a.encoding = "rpc-proto"
		st := &spb.Status{}
		if proto.Unmarshal(body, st) == nil {
			a.reason, a.message, a.grpcCode = errorInfoReason(st), st.GetMessage(), int(st.GetCode())
		}
	}
	return a
}

// The table is also a data file, for the reader's fuzz seed corpus.
func TestAdversarialShapesFileIsCurrent(t *testing.T) {
	shapes := adversarialShapes(t)
	if n := len(shapes); n < 120 {
		t.Errorf("the suite has %d shapes, want at least 120", n)
	}
	seen := map[string]bool{}
	for _, s := range shapes {
		if seen[s.Name] {
			t.Errorf("two shapes are named %q", s.Name)
		}
		seen[s.Name] = true
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(shapes); err != nil {
		t.Fatal(err)
	}
	path := filepath.FromSlash(adversarialShapesFile)
	if *updateAdversarialShapes {
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./caddytest/ -run TestAdversarialShapesFileIsCurrent -update-adversarial-shapes writes it)", err)
	}
	if !bytes.Equal(got, b.Bytes()) {
		t.Errorf("%s is not the suite's table: rerun with -update-adversarial-shapes", path)
	}
	var back []advShape
	if err := json.Unmarshal(got, &back); err != nil || len(back) != len(shapes) {
		t.Errorf("%s does not read back as %d shapes: %v", path, len(shapes), err)
	}
}
