package integration

import (
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/code"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

// httpStatusOf is the HTTP status Google's front end gives a gRPC code.
var httpStatusOf = map[codes.Code]int{
	codes.OK: 200, codes.InvalidArgument: 400, codes.Unauthenticated: 401,
	codes.PermissionDenied: 403, codes.Unimplemented: 501, codes.Unavailable: 503,
}

// $rpc cancels, as serialized protobuf or JSON, are governed as gRPC ones:
// refusals are the HTTP status with a google.rpc.Status or Google's JSON
// envelope, forwarded cancels reach the upstream byte for byte.
func TestRPCFallbackCancelsAreGoverned(t *testing.T) {
	g := startGateway(t, gatewayOptions{directive: "unimplemented dai.googleapis.com"})
	const path = "/$rpc" + lroCancelMethod
	for _, enc := range []string{"application/x-protobuf", "application/json"} {
		for _, c := range webDoorCases() {
			t.Run(strings.TrimPrefix(enc, "application/")+"/"+c.name, func(t *testing.T) {
				g.upstream.reset()
				g.tokeninfo.down.Store(c.verifierDown)
				defer g.tokeninfo.down.Store(false)
				body := c.json
				if enc == "application/x-protobuf" {
					body = string(c.msg)
				}
				resp, b := g.do(newRequest(t, "POST", apiURL(c.apiHost(), path), body, c.header(enc)...))
				if want := httpStatusOf[c.wantCode]; resp.StatusCode != want {
					t.Errorf("HTTP status %d, want %d: %.200q", resp.StatusCode, want, b)
				}
				if c.wantCode != codes.OK {
					if enc == "application/x-protobuf" {
						assertProtobufRefusal(t, resp.Header.Get("Content-Type"), b, c)
					} else {
						assertJSONRefusal(t, resp.Header.Get("Content-Type"), b, c)
					}
				}
				if rec := checkWebDoorOutcome(t, g, c, resp, "rpc", path, body); !rec.hasNumber("status", httpStatusOf[c.wantCode]) {
					t.Errorf("record status %v, want %d", rec["status"], httpStatusOf[c.wantCode])
				}
			})
		}
	}
}

func assertProtobufRefusal(t *testing.T, contentType string, b []byte, c webDoorCase) {
	t.Helper()
	if contentType != "application/x-protobuf" {
		t.Errorf("Content-Type %q, want application/x-protobuf", contentType)
	}
	st := &spb.Status{}
	if err := proto.Unmarshal(b, st); err != nil {
		t.Fatalf("the body is not a serialized google.rpc.Status: %v", err)
	}
	if st.GetCode() != int32(c.wantCode) || st.GetMessage() == "" {
		t.Errorf("status code %d message %q, want %d with a message", st.GetCode(), st.GetMessage(), c.wantCode)
	}
	if got := errorInfoReason(st); reasonMismatch(got, c.wantReason) {
		t.Errorf("ErrorInfo reason %q, want %q (any when empty)", got, c.wantReason)
	}
}

func assertJSONRefusal(t *testing.T, contentType string, b []byte, c webDoorCase) {
	t.Helper()
	if !strings.HasPrefix(contentType, "application/json") {
		t.Errorf("Content-Type %q, want Google's JSON envelope", contentType)
	}
	e := decodeError(t, b)
	if e.Error.Code != httpStatusOf[c.wantCode] || e.Error.Status != code.Code_name[int32(c.wantCode)] {
		t.Errorf("error %d %s, want %d %s", e.Error.Code, e.Error.Status, httpStatusOf[c.wantCode], code.Code_name[int32(c.wantCode)])
	}
	if got := e.reason(); reasonMismatch(got, c.wantReason) {
		t.Errorf("ErrorInfo reason %q, want %q (any when empty)", got, c.wantReason)
	}
}

// Every gRPC cancel method has its $rpc form, governed under the REST
// method it mirrors.
func TestRPCFallbackCoversGKEAndCloudSQL(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	tests := []struct {
		name, host, method string
		msg                []byte
		wantMethod, wantOp string
	}{
		{"GKE v1", "container.googleapis.com", gkeCancelMethod, gkeCancel("", "", "", "projects/p/locations/l/operations/o"),
			"container.projects.locations.operations.cancel", "projects/p/locations/l/operations/o"},
		{"GKE v1beta1 by project, zone and id", "container.googleapis.com", gkeBetaCancelMethod, gkeCancel("p", "z", "o", ""),
			"container.projects.zones.operations.cancel", "projects/p/zones/z/operations/o"},
		{"Cloud SQL v1beta4", "sqladmin.googleapis.com", sqlBetaCancelMethod, sqlCancel("o", "p"),
			"sql.operations.cancel", "projects/p/operations/o"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g.upstream.reset()
			resp, b := g.do(newRequest(t, "POST", apiURL(tt.host, "/$rpc"+tt.method), string(tt.msg),
				append(bearer(tokenEmail), "Content-Type", "application/x-protobuf")...))
			if resp.StatusCode != 403 {
				t.Errorf("HTTP status %d, want 403: %.200q", resp.StatusCode, b)
			}
			if n := len(g.upstream.requests()); n != 0 {
				t.Errorf("a refused cancel reached the upstream %d times", n)
			}
			id := resp.Header.Get("Audit-Id")
			if id == "" {
				t.Fatal("no Audit-Id header")
			}
			assertRecord(t, g.recordFor(id), map[string]any{
				"protocol": "rpc", "decision": "scope_insufficient", "status": 403,
				"service": tt.host, "method": tt.wantMethod, "operation": tt.wantOp,
			})
		})
	}
}
