package integration

import (
	"encoding/base64"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
)

// webDoorCase is one request of the refusal table the gRPC-Web and $rpc
// doors share.
type webDoorCase struct {
	name string
	// host is the API; vault.googleapis.com when empty.
	host          string
	token         string
	verifierDown  bool
	msg           []byte // the request message (json: the JSON body)
	json          string
	wantCode      codes.Code
	wantReason    string // "" with INVALID_ARGUMENT: any reason
	wantDecisions []string
	wantMethod    string // vault.operations.cancel when empty
	wantOperation string // "" for a request whose name is not read
	// unread: the gateway cannot read what the request cancels, so it is
	// refused before its credentials: no method, no principal.
	unread        bool
	wantPrincipal any
	wantForwarded bool
}

// webDoorCases are the cancels each of those doors must govern alike. The
// gateway runs `unimplemented dai.googleapis.com`.
func webDoorCases() []webDoorCase {
	big := padded(64 << 10)
	return []webDoorCase{
		{name: "scoped token", token: tokenVault, msg: lroCancel("operations/x"), json: `{"name":"operations/x"}`,
			wantCode: codes.OK, wantDecisions: []string{"forwarded"}, wantOperation: "operations/x", wantPrincipal: principalA,
			wantForwarded: true},
		{name: "token without vault's scope", token: tokenEmail, msg: lroCancel("operations/x"), json: `{"name":"operations/x"}`,
			wantCode: codes.PermissionDenied, wantReason: "ACCESS_TOKEN_SCOPE_INSUFFICIENT", wantDecisions: []string{"scope_insufficient"},
			wantOperation: "operations/x", wantPrincipal: principalNone},
		{name: "no token", msg: lroCancel("operations/x"), json: `{"name":"operations/x"}`,
			wantCode: codes.Unauthenticated, wantReason: "CREDENTIALS_MISSING", wantDecisions: []string{"unauthenticated"},
			wantOperation: "operations/x"},
		// tokenAndroid is never cached by the gateway: the verifier is asked.
		{name: "verifier down", token: tokenAndroid, verifierDown: true, msg: lroCancel("operations/x"), json: `{"name":"operations/x"}`,
			wantCode: codes.Unavailable, wantReason: "TOKEN_VERIFIER_UNAVAILABLE", wantDecisions: []string{"verifier_unavailable"},
			wantOperation: "operations/x"},
		{name: "unimplemented", host: "dai.googleapis.com", token: tokenVault, msg: lroCancel("operations/x"), json: `{"name":"operations/x"}`,
			wantCode: codes.Unimplemented, wantReason: "CANCEL_UNIMPLEMENTED", wantDecisions: []string{"unimplemented"},
			wantMethod: "dai.operations.cancel", wantOperation: "operations/x", wantPrincipal: principalA},
		// Like a REST body with an extra field: refused at the body step,
		// after credentials and scope, with the operation it names.
		{name: "unknown field", token: tokenVault,
			msg: message(field{1, "operations/x"}, field{2, "x"}), json: `{"name":"operations/x","force":true}`,
			wantCode: codes.InvalidArgument, wantReason: "INVALID_CANCEL_BODY", wantDecisions: []string{"invalid_body"},
			wantOperation: "operations/x", wantPrincipal: principalA},
		{name: "unknown field with a token without vault's scope", token: tokenEmail,
			msg: message(field{1, "operations/x"}, field{2, "x"}), json: `{"name":"operations/x","force":true}`,
			wantCode: codes.PermissionDenied, wantReason: "ACCESS_TOKEN_SCOPE_INSUFFICIENT", wantDecisions: []string{"scope_insufficient"},
			wantOperation: "operations/x", wantPrincipal: principalNone},
		{name: "oversized message", token: tokenVault, msg: lroCancel(big), json: `{"name":"` + big + `"}`,
			wantCode: codes.InvalidArgument, wantReason: "INVALID_CANCEL_BODY", wantDecisions: []string{"invalid_body"}, unread: true},
	}
}

func (c webDoorCase) apiHost() string {
	if c.host == "" {
		return "vault.googleapis.com"
	}
	return c.host
}

func (c webDoorCase) method() string {
	if c.wantMethod == "" {
		return "vault.operations.cancel"
	}
	return c.wantMethod
}

func (c webDoorCase) header(contentType string) []string {
	h := []string{"Content-Type", contentType}
	if c.token != "" {
		h = append(h, bearer(c.token)...)
	}
	return h
}

// checkWebDoorOutcome asserts what the upstream got and the record, for
// a case answered with resp, and returns the record.
func checkWebDoorOutcome(t *testing.T, g *gateway, c webDoorCase, resp *http.Response, protocol, path, sent string) record {
	t.Helper()
	reqs := g.upstream.requests()
	switch {
	case c.wantForwarded && len(reqs) != 1:
		t.Errorf("the upstream got %d requests, want 1", len(reqs))
	case c.wantForwarded && (reqs[0].Path != path || string(reqs[0].Body) != sent):
		t.Errorf("the upstream got %s with %d bytes, want %s with the client's %d bytes unchanged",
			reqs[0].Path, len(reqs[0].Body), path, len(sent))
	case !c.wantForwarded && len(reqs) != 0:
		t.Errorf("a refused cancel reached the upstream %d times", len(reqs))
	}
	id := resp.Header.Get("Audit-Id")
	if id == "" {
		t.Fatal("no Audit-Id header")
	}
	rec := g.recordFor(id)
	want := map[string]any{"protocol": protocol, "service": c.apiHost(), "method": c.method(), "principal": c.wantPrincipal}
	if c.unread {
		want["method"], want["operation"], want["token_id"] = "", "", nil
	}
	if c.wantOperation != "" {
		want["operation"] = c.wantOperation
	}
	assertRecord(t, rec, want)
	if d := rec.str("decision"); !slices.Contains(c.wantDecisions, d) {
		t.Errorf("decision %q, want one of %v", d, c.wantDecisions)
	}
	return rec
}

// gRPC-Web cancels, binary and base64 text, are governed as gRPC ones:
// refusals are a trailer frame a gRPC-Web client reads, forwarded cancels
// reach the upstream byte for byte.
func TestGRPCWebCancelsAreGoverned(t *testing.T) {
	g := startGateway(t, gatewayOptions{directive: "unimplemented dai.googleapis.com"})
	encodings := []struct {
		name, contentType string
		text              bool
	}{
		{"binary", "application/grpc-web+proto", false},
		{"binary without +proto", "application/grpc-web", false},
		{"text", "application/grpc-web-text", true},
	}
	for _, enc := range encodings {
		for _, c := range webDoorCases() {
			t.Run(enc.name+"/"+c.name, func(t *testing.T) {
				g.upstream.reset()
				g.tokeninfo.down.Store(c.verifierDown)
				defer g.tokeninfo.down.Store(false)
				body := string(grpcFrame(0, c.msg))
				if enc.text {
					body = base64.StdEncoding.EncodeToString([]byte(body))
				}
				h := append(c.header(enc.contentType), "X-Grpc-Web", "1", "Accept", enc.contentType)
				resp, b := g.do(newRequest(t, "POST", apiURL(c.apiHost(), lroCancelMethod), body, h...))
				if c.wantCode != codes.OK {
					if resp.StatusCode != 200 {
						t.Errorf("HTTP status %d, want 200 (gRPC-Web carries the status in its trailer frame)", resp.StatusCode)
					}
					ct := resp.Header.Get("Content-Type")
					if !strings.HasPrefix(ct, "application/grpc-web") || strings.HasPrefix(ct, "application/grpc-web-text") != enc.text {
						t.Errorf("Content-Type %q, want the request's gRPC-Web encoding %s", ct, enc.contentType)
					}
					tr := grpcWebTrailers(t, b, enc.text)
					if tr["grpc-status"] != strconv.Itoa(int(c.wantCode)) || tr["grpc-message"] == "" {
						t.Errorf("trailers %v, want grpc-status %d with a message", tr, c.wantCode)
					}
					st := decodeStatusDetails(t, tr["grpc-status-details-bin"])
					if st.GetCode() != int32(c.wantCode) {
						t.Errorf("grpc-status-details-bin code %d, want %d", st.GetCode(), c.wantCode)
					}
					if got := errorInfoReason(st); reasonMismatch(got, c.wantReason) {
						t.Errorf("ErrorInfo reason %q, want %q (any when empty)", got, c.wantReason)
					}
				}
				rec := checkWebDoorOutcome(t, g, c, resp, "grpc-web", lroCancelMethod, body)
				if c.wantCode != codes.OK && (!rec.hasNumber("grpc_status", int(c.wantCode)) || !rec.hasNumber("status", 200)) {
					t.Errorf("record grpc_status %v status %v, want %d and 200", rec["grpc_status"], rec["status"], c.wantCode)
				}
			})
		}
	}
}
