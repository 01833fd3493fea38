package integration

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// The caller's reason and quota project are recorded, decided on by the
// policy and forwarded unchanged; two different reasons are refused.
func TestRequestReasonIsRecordedDecidedOnAndForwarded(t *testing.T) {
	g := startGateway(t, gatewayOptions{directive: `policy {
		deny needs-ticket ` + "`!request.reason.matches('^CHG-[0-9]+')`" + `
	}`})
	for _, tc := range []struct {
		name             string
		header           []string
		status           int
		decision, reason string
		project          string
	}{
		{"a ticket in the header", []string{"X-Goog-Request-Reason", "CHG-42: stuck export", "X-Goog-User-Project", "prod-billing"}, 200, "forwarded", "CHG-42: stuck export", "prod-billing"},
		{"no reason", nil, 403, "denied_by_policy", "", ""},
		{"a reason that is no ticket", []string{"X-Goog-Request-Reason", "why not"}, 403, "denied_by_policy", "why not", ""},
		{"two different reasons", []string{"X-Goog-Request-Reason", "CHG-1", "X-Goog-Request-Reason", "CHG-2"}, 400, "ambiguous_request", "CHG-1", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g.upstream.reset()
			resp, b := g.do(newRequest(t, "POST", apiURL("vault.googleapis.com", vaultCancel), "", append(bearer(tokenVault), tc.header...)...))
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d %s, want %d", resp.StatusCode, b, tc.status)
			}
			if tc.status == 400 && decodeError(t, b).reason() != "AMBIGUOUS_REQUEST" {
				t.Errorf("refusal %s, want AMBIGUOUS_REQUEST", b)
			}
			rec := g.recordFor(resp.Header.Get("Audit-Id"))
			if rec.str("decision") != tc.decision || rec.str("reason") != tc.reason || rec.str("user_project") != tc.project {
				t.Errorf("record %v, want decision %s, reason %q, user_project %q", rec, tc.decision, tc.reason, tc.project)
			}
			ups := g.upstream.requests()
			if tc.status != 200 {
				if len(ups) != 0 {
					t.Errorf("a refused cancel reached the upstream")
				}
				return
			}
			if len(ups) != 1 || ups[0].Header.Get("X-Goog-Request-Reason") != tc.reason || ups[0].Header.Get("X-Goog-User-Project") != tc.project {
				t.Errorf("the upstream got %+v, want the reason and project unchanged", ups)
			}
		})
	}
}

// A client that hangs up while its token is being verified is recorded
// client_closed with status 499, and no verifier outage is logged.
func TestAClientHangingUpDuringVerificationIsNotAVerifierOutage(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	g.tokeninfo.delay.Store(int64(2 * time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	req := newRequest(t, "POST", apiURL("vault.googleapis.com", vaultCancel), "", bearer(tokenVault)...).WithContext(ctx)
	if resp, err := g.tester.Client.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("the client got %s, want to have hung up first", resp.Status)
	}
	recs := g.waitRecords(1)
	if r := recs[0]; r.str("decision") != "client_closed" || r.num("status") != 499 {
		t.Fatalf("record %v, want decision client_closed, status 499", r)
	}
	if bytes.Contains(g.logs(), []byte("token verifier unavailable")) {
		t.Errorf("a hang-up was logged as a verifier outage:\n%s", g.logs())
	}
	if n := len(g.upstream.requests()); n != 0 {
		t.Errorf("the upstream got %d requests", n)
	}
}

// Through Google's gRPC client, the reason travels as x-goog-request-reason
// metadata: recorded, and refused when given twice differently.
func TestRequestReasonAsGRPCMetadata(t *testing.T) {
	g := startGRPCGateway(t, "")
	c := operationsClient(t, "vault.googleapis.com", tokenVault)
	cancel := func(md ...string) (string, error) {
		ctx, stop := context.WithTimeout(metadata.AppendToOutgoingContext(context.Background(), md...), 5*time.Second)
		defer stop()
		var header, trailer metadata.MD
		err := c.CancelOperation(ctx, &longrunningpb.CancelOperationRequest{Name: "operations/why"},
			gax.WithRetry(func() gax.Retryer { return nil }),
			gax.WithGRPCOptions(grpc.Header(&header), grpc.Trailer(&trailer)))
		return auditIDOf(header, trailer), err
	}
	id, err := cancel("x-goog-request-reason", "CHG-7", "x-goog-user-project", "prod-billing")
	if err != nil {
		t.Fatalf("cancel: %v", err)
	}
	if rec := g.recordFor(id); rec.str("reason") != "CHG-7" || rec.str("user_project") != "prod-billing" || rec.str("protocol") != "grpc" {
		t.Errorf("record %v, want reason CHG-7 and user_project prod-billing", rec)
	}
	id, err = cancel("x-goog-request-reason", "CHG-7", "x-goog-request-reason", "CHG-8")
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "more than one way") {
		t.Fatalf("two reasons: %v, want INVALID_ARGUMENT, ambiguous", err)
	}
	if rec := g.recordFor(id); rec.str("decision") != "ambiguous_request" {
		t.Errorf("record %v, want decision ambiguous_request", rec)
	}
}
