package integration

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	auditpb "google.golang.org/genproto/googleapis/cloud/audit"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

const cloudAuditDirective = "audit {\n format cloud_audit_log\n}"

// auditLogOf reads a cloud_audit_log record's protoPayload as a consumer of
// Google's audit logs does: protojson into an Any, then the AuditLog.
func auditLogOf(t testing.TB, rec record) *auditpb.AuditLog {
	t.Helper()
	if rec["protoPayload"] == nil {
		t.Fatalf("the record is not in the cloud_audit_log format (no protoPayload): %v", rec)
	}
	raw, err := json.Marshal(rec["protoPayload"])
	if err != nil {
		t.Fatal(err)
	}
	var payload anypb.Any
	if err := protojson.Unmarshal(raw, &payload); err != nil {
		t.Fatalf("protoPayload does not parse with protojson: %v\nrecord: %v", err, rec)
	}
	if payload.TypeUrl != "type.googleapis.com/google.cloud.audit.AuditLog" {
		t.Fatalf("protoPayload @type = %q", payload.TypeUrl)
	}
	var al auditpb.AuditLog
	if err := payload.UnmarshalTo(&al); err != nil {
		t.Fatal(err)
	}
	return &al
}

// cloudAuditWant is what a cancel's AuditLog must say.
type cloudAuditWant struct {
	service, resource, principal, userAgent, decision string
	code                                              codes.Code
}

func assertAuditLog(t *testing.T, al *auditpb.AuditLog, want cloudAuditWant) {
	t.Helper()
	if al.GetServiceName() != want.service || al.GetMethodName() != "google.longrunning.Operations.CancelOperation" ||
		al.GetResourceName() != want.resource {
		t.Errorf("serviceName, methodName, resourceName = %q, %q, %q; want %q, google.longrunning.Operations.CancelOperation, %q",
			al.GetServiceName(), al.GetMethodName(), al.GetResourceName(), want.service, want.resource)
	}
	if got := al.GetAuthenticationInfo().GetPrincipalEmail(); got != want.principal {
		t.Errorf("principalEmail = %q, want %q", got, want.principal)
	}
	if rm := al.GetRequestMetadata(); rm.GetCallerIp() != "127.0.0.1" ||
		(want.userAgent != "" && rm.GetCallerSuppliedUserAgent() != want.userAgent) {
		t.Errorf("requestMetadata = %v, want callerIp 127.0.0.1 and user agent %q", rm, want.userAgent)
	}
	if st := al.GetStatus(); st == nil || codes.Code(st.GetCode()) != want.code || st.GetMessage() != want.decision {
		t.Errorf("status = %v, want code %d (%v), message %s", st, want.code, want.code, want.decision)
	}
	granted := want.decision == "forwarded"
	if az := al.GetAuthorizationInfo(); len(az) != 1 || az[0].GetGranted() != granted || az[0].GetResource() != want.resource {
		t.Errorf("authorizationInfo = %v, want one for %s, granted %v", az, want.resource, granted)
	}
	if md := al.GetMetadata().AsMap(); md["decision"] != want.decision || md["stage"] != "completed" {
		t.Errorf("metadata = %v, want decision %s, stage completed", md, want.decision)
	}
}

// With `format cloud_audit_log`, the records of a forwarded and a refused
// REST cancel are Cloud Audit Logs entries whose protoPayload parses into
// Google's AuditLog proto, and no line carries a token.
func TestCloudAuditLogRecordsOfRESTCancelsParseAsAuditLogs(t *testing.T) {
	g := startGateway(t, gatewayOptions{directive: cloudAuditDirective})
	tests := []struct {
		name   string
		token  string
		status int
		want   cloudAuditWant
	}{
		{"forwarded", tokenVault, 200, cloudAuditWant{
			service: "vault.googleapis.com", resource: "operations/export-1", principal: principalA,
			userAgent: "cloud-audit-test/1.0", decision: "forwarded", code: codes.OK,
		}},
		{"refused for its scope", tokenEmail, 403, cloudAuditWant{
			service: "vault.googleapis.com", resource: "operations/export-1", principal: principalNone,
			userAgent: "cloud-audit-test/1.0", decision: "scope_insufficient", code: codes.PermissionDenied,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := newRequest(t, "POST", apiURL("vault.googleapis.com", vaultCancel), "", bearer(tt.token)...)
			req.Header.Set("User-Agent", tt.want.userAgent)
			resp, _ := g.do(req)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			id := resp.Header.Get("Audit-Id")
			rec := g.recordFor(id)
			if rec.str("insertId") != id || rec.str("logger") != "http.handlers.lro_cancel.audit" || rec.str("level") != "info" {
				t.Errorf("insertId, logger, level = %v, %v, %v; want %s, http.handlers.lro_cancel.audit, info",
					rec["insertId"], rec["logger"], rec["level"], id)
			}
			assertAuditLog(t, auditLogOf(t, rec), tt.want)
		})
	}
	logs := string(g.logs())
	for _, token := range []string{tokenVault, tokenEmail} {
		if strings.Contains(logs, token) {
			t.Errorf("a log carries the token %s", token)
		}
	}
}

// A cancel refused through the gRPC door travels in an HTTP 200; its
// AuditLog status is the gRPC code the client got.
func TestCloudAuditLogRecordOfAGRPCRefusalCarriesTheGRPCCode(t *testing.T) {
	g := startGRPCGateway(t, cloudAuditDirective)
	a := cancelOperation(operationsClient(t, "vault.googleapis.com", tokenEmail), "operations/x")
	assertGRPCError(t, a.err, codes.PermissionDenied, "ACCESS_TOKEN_SCOPE_INSUFFICIENT")
	if a.auditID == "" {
		t.Fatal("no audit-id metadata")
	}
	assertAuditLog(t, auditLogOf(t, g.recordFor(a.auditID)), cloudAuditWant{
		service: "vault.googleapis.com", resource: "operations/x", principal: principalNone,
		decision: "scope_insufficient", code: codes.PermissionDenied,
	})
}

// The journal writes the format too: a received and a completed entry,
// the completed one's AuditLog the log's.
func TestCloudAuditLogFormatReachesTheJournal(t *testing.T) {
	journal := filepath.Join(t.TempDir(), "audit.journal")
	g := startGateway(t, gatewayOptions{directive: "audit {\n format cloud_audit_log\n journal " + journal + "\n}"})
	resp, _ := g.do(newRequest(t, "POST", apiURL("vault.googleapis.com", vaultCancel), "", bearer(tokenVault)...))
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	id := resp.Header.Get("Audit-Id")
	logged := auditLogOf(t, g.recordFor(id))
	var recs []record
	eventually(t, "the journal has both records", func() bool {
		recs = readRecordFile(t, journal)
		return len(recs) >= 2
	})
	if len(recs) != 2 {
		t.Fatalf("journal holds %d records, want 2", len(recs))
	}
	for i, stage := range []string{"received", "completed"} {
		rec := recs[i]
		if rec.str("stage") != stage || rec.str("insertId") != id || rec.str("audit_id") != id {
			t.Errorf("journal line %d = %v, want the %s entry of %s", i+1, rec, stage, id)
		}
		al := auditLogOf(t, rec)
		if al.GetServiceName() != "vault.googleapis.com" || al.GetResourceName() != "operations/export-1" {
			t.Errorf("journal line %d: serviceName %q, resourceName %q", i+1, al.GetServiceName(), al.GetResourceName())
		}
	}
	// The log and the journal encode the one completed record apart: the
	// same AuditLog.
	if journaled := auditLogOf(t, recs[1]); !proto.Equal(journaled, logged) {
		t.Errorf("journal's completed AuditLog\n%v\nlog's\n%v", journaled, logged)
	}
}
