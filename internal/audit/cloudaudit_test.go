package audit

import (
	"bytes"
	"encoding/json"
	"io"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	auditpb "google.golang.org/genproto/googleapis/cloud/audit"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/lro-cancel/lro_cancel/internal/credential"
)

// cloudToken is the credential the records below come from: an entry
// carries its token_id, never the token.
const cloudToken = "ya29.a0-cloud-audit-token"

// cloudLine writes r through a Logger in the cloud_audit_log format, as
// Caddy's default JSON encoder would, and returns the line.
func cloudLine(t testing.TB, r *Record) []byte {
	t.Helper()
	var buf bytes.Buffer
	core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&buf), zapcore.InfoLevel)
	sink := Logger{L: zap.New(core).Named("http.handlers.lro_cancel.audit"), Format: FormatCloudAuditLog}
	if err := sink.Write(r); err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(buf.Bytes(), []byte("\n")); n != 1 {
		t.Fatalf("Write logged %d lines, want 1:\n%s", n, buf.Bytes())
	}
	return buf.Bytes()
}

// cloudEntryOf parses a cloud_audit_log line: its top-level fields, and its
// protoPayload read with protojson, as a consumer of Google's audit logs
// would, into an Any and from there into an AuditLog.
func cloudEntryOf(t testing.TB, line []byte) (map[string]any, *auditpb.AuditLog) {
	t.Helper()
	var top map[string]json.RawMessage
	if err := json.Unmarshal(line, &top); err != nil {
		t.Fatalf("the line is not a JSON object: %v\n%s", err, line)
	}
	var fields map[string]any
	if err := json.Unmarshal(line, &fields); err != nil {
		t.Fatal(err)
	}
	var payload anypb.Any
	if err := protojson.Unmarshal(top["protoPayload"], &payload); err != nil {
		t.Fatalf("protoPayload does not parse with protojson: %v\n%s", err, top["protoPayload"])
	}
	if payload.TypeUrl != "type.googleapis.com/google.cloud.audit.AuditLog" {
		t.Fatalf("protoPayload @type = %q", payload.TypeUrl)
	}
	var al auditpb.AuditLog
	if err := payload.UnmarshalTo(&al); err != nil {
		t.Fatal(err)
	}
	return fields, &al
}

func TestCloudAuditLogEntriesParseIntoTheAuditLogProto(t *testing.T) {
	vault := []string{"https://www.googleapis.com/auth/ediscovery"}
	tests := []struct {
		name string
		rec  *Record
		// What the entry must say.
		severity, resource, permission string
		code                           int32
		granted                        bool
	}{
		{
			name: "a forwarded REST cancel is a NOTICE with status OK and permission granted",
			rec: &Record{
				AuditID: "6f0c-1", Stage: StageCompleted, Decision: Forwarded, Status: 200, UpstreamStatus: 200,
				Service: "vault.googleapis.com", Method: "vault.operations.cancel", Operation: "operations/exports/123",
				Principal: "alice@example.com", TokenID: credential.TokenID(cloudToken), ScopesAccepted: vault, ScopeUsed: vault[0],
				ClientIP: "192.0.2.1", UserAgent: "google-api-go-client/0.5", Duration: 42 * time.Millisecond, Protocol: "http",
			},
			severity: "NOTICE", resource: "operations/exports/123", permission: "vault.operations.cancel",
			code: 0, granted: true,
		},
		{
			name: "a gRPC cancel refused for its scope is an ERROR with the gRPC code, not the HTTP 200's",
			rec: &Record{
				AuditID: "6f0c-2", Stage: StageCompleted, Decision: ScopeInsufficient, Status: 200,
				Service: "container.googleapis.com", Method: "container.projects.locations.operations.cancel",
				Operation: "projects/p/locations/us-central1-a/operations/op-1",
				Principal: "bob@example.com", TokenID: credential.TokenID(cloudToken), ScopesAccepted: []string{"https://www.googleapis.com/auth/cloud-platform"},
				ClientIP: "2001:db8::1", UserAgent: "grpc-go/1.83.2", Duration: time.Millisecond, Protocol: "grpc",
				GRPCStatus: 7, HasGRPCStatus: true,
			},
			severity: "ERROR", resource: "projects/p/locations/us-central1-a/operations/op-1", permission: "container.operations.cancel",
			code: 7,
		},
		{
			name: "a cancel the policy denies is an ERROR with PERMISSION_DENIED and the rule in metadata",
			rec: &Record{
				AuditID: "6f0c-3", Stage: StageCompleted, Decision: DeniedByPolicy, Status: 403,
				Service: "vault.googleapis.com", Method: "vault.operations.cancel", Operation: "operations/exports/9",
				Principal: "carol@example.com", TokenID: credential.TokenID(cloudToken), ScopesAccepted: vault, ScopeUsed: vault[0],
				ClientIP: "198.51.100.7", UserAgent: "curl/8.5.0", Protocol: "http",
				PolicyRule: "only-ops", PolicyEffect: "deny",
			},
			severity: "ERROR", resource: "operations/exports/9", permission: "vault.operations.cancel",
			code: 7,
		},
		{
			name: "a received record is INFO, with no outcome yet",
			rec: &Record{
				AuditID: "6f0c-4", Stage: StageReceived,
				Service: "foo.googleapis.com", Method: "unlisted", Operation: "projects/p/operations/o",
				ClientIP: "192.0.2.9", UserAgent: "test", Protocol: "http",
			},
			severity: "INFO", resource: "projects/p/operations/o",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			line := cloudLine(t, tt.rec)
			top, al := cloudEntryOf(t, line)
			if strings.Contains(string(line), cloudToken) {
				t.Errorf("the entry carries the token:\n%s", line)
			}

			wantTop := map[string]any{
				"insertId": tt.rec.AuditID, "logName": "lro_cancel/logs/cloudaudit.googleapis.com%2Factivity",
				"severity": tt.severity, "audit_id": tt.rec.AuditID, "stage": string(tt.rec.Stage),
				"level": "info", "logger": "http.handlers.lro_cancel.audit", "msg": "lro_cancel",
			}
			for k, want := range wantTop {
				if top[k] != want {
					t.Errorf("%s = %v, want %v", k, top[k], want)
				}
			}
			for _, k := range []string{"service", "method", "operation", "principal", "status", "decision"} {
				if v, ok := top[k]; ok {
					t.Errorf("top-level %s = %v: the json format's keys belong under protoPayload", k, v)
				}
			}

			if al.GetServiceName() != tt.rec.Service || al.GetMethodName() != "google.longrunning.Operations.CancelOperation" ||
				al.GetResourceName() != tt.resource {
				t.Errorf("serviceName, methodName, resourceName = %q, %q, %q", al.GetServiceName(), al.GetMethodName(), al.GetResourceName())
			}
			if got := al.GetAuthenticationInfo().GetPrincipalEmail(); got != tt.rec.Principal {
				t.Errorf("principalEmail = %q, want %q", got, tt.rec.Principal)
			}
			if rm := al.GetRequestMetadata(); rm.GetCallerIp() != tt.rec.ClientIP || rm.GetCallerSuppliedUserAgent() != tt.rec.UserAgent {
				t.Errorf("requestMetadata = %v", rm)
			}

			if tt.rec.Stage == StageReceived {
				if al.Status != nil || al.AuthorizationInfo != nil {
					t.Errorf("received entry has an outcome: status %v, authorizationInfo %v", al.Status, al.AuthorizationInfo)
				}
			} else {
				if al.GetStatus().GetCode() != tt.code || al.GetStatus().GetMessage() != string(tt.rec.Decision) {
					t.Errorf("status = %v, want code %d, message %s", al.GetStatus(), tt.code, tt.rec.Decision)
				}
				az := al.GetAuthorizationInfo()
				if len(az) != 1 || az[0].GetResource() != tt.resource || az[0].GetPermission() != tt.permission || az[0].GetGranted() != tt.granted {
					t.Errorf("authorizationInfo = %v, want resource %s, permission %s, granted %v", az, tt.resource, tt.permission, tt.granted)
				}
			}

			md := al.GetMetadata().AsMap()
			if md["decision"] != stringOrNil(string(tt.rec.Decision)) || md["token_id"] != stringOrNil(tt.rec.TokenID) ||
				md["stage"] != string(tt.rec.Stage) || md["method"] != tt.rec.Method || md["protocol"] != tt.rec.Protocol {
				t.Errorf("metadata = %v", md)
			}
			if tt.rec.PolicyRule != "" && (md["policy_rule"] != tt.rec.PolicyRule || md["policy_effect"] != tt.rec.PolicyEffect) {
				t.Errorf("metadata policy fields = %v, %v", md["policy_rule"], md["policy_effect"])
			}
			if tt.rec.HasGRPCStatus && md["grpc_status"] != float64(tt.rec.GRPCStatus) {
				t.Errorf("metadata grpc_status = %v, want %d", md["grpc_status"], tt.rec.GRPCStatus)
			}
		})
	}
}

// stringOrNil is what a Struct holds for a field omitted when empty.
func stringOrNil(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func TestCloudAuditMetadataHoldsTheJSONFieldsTheAuditLogHasNoPlaceFor(t *testing.T) {
	rec := &Record{
		AuditID: "7a", Stage: StageCompleted, Decision: Forwarded, Status: 200, UpstreamStatus: 200,
		Service: "vault.googleapis.com", Method: "vault.operations.cancel", Operation: "operations/x",
		Principal: "ops@example.com", TokenID: "0123456789abcdef",
		ScopesAccepted: []string{"https://www.googleapis.com/auth/ediscovery", "https://www.googleapis.com/auth/cloud-platform"},
		ScopeUsed:      "https://www.googleapis.com/auth/ediscovery",
		ClientIP:       "192.0.2.1", UserAgent: "ua", Duration: 1500 * time.Millisecond, Protocol: "grpc-web",
		GRPCStatus: 0, HasGRPCStatus: true, PolicyRule: "default", PolicyEffect: "allow", PolicyDryRun: true,
		LimitRule: "per-principal", LimitDryRun: true, LimitError: true,
	}
	var flat bytes.Buffer
	core := zapcore.NewCore(zapcore.NewJSONEncoder(zapcore.EncoderConfig{}), zapcore.AddSync(&flat), zapcore.InfoLevel)
	if err := (Logger{L: zap.New(core)}).Write(rec); err != nil {
		t.Fatal(err)
	}
	var want map[string]any
	if err := json.Unmarshal(flat.Bytes(), &want); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"audit_id", "service", "operation", "principal", "client_ip", "user_agent"} {
		delete(want, k)
	}

	_, al := cloudEntryOf(t, cloudLine(t, rec))
	got := al.GetMetadata().AsMap()
	if got["limit_rule"] != "per-principal" || got["limit_dry_run"] != true || got["limit_error"] != true {
		t.Errorf("metadata limit fields %v %v %v", got["limit_rule"], got["limit_dry_run"], got["limit_error"])
	}
	if !maps.EqualFunc(got, want, func(a, b any) bool { return jsonEqual(t, a, b) }) {
		t.Errorf("metadata keys %v\nwant the json format's %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
		for k, v := range want {
			if !jsonEqual(t, got[k], v) {
				t.Errorf("metadata %s = %v, want %v", k, got[k], v)
			}
		}
	}
}

func jsonEqual(t testing.TB, a, b any) bool {
	t.Helper()
	x, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(x, y)
}

func TestCloudAuditStatusCodeIsTheGRPCCodeElseTheHTTPStatusMapped(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		grpc    int
		hasGRPC bool
		want    int32
	}{
		{name: "200 is OK", status: 200, want: 0},
		{name: "204 is OK", status: 204, want: 0},
		{name: "400 is INVALID_ARGUMENT", status: 400, want: 3},
		{name: "401 is UNAUTHENTICATED", status: 401, want: 16},
		{name: "403 is PERMISSION_DENIED", status: 403, want: 7},
		{name: "404 is NOT_FOUND", status: 404, want: 5},
		{name: "499 is CANCELLED", status: 499, want: 1},
		{name: "500 is INTERNAL", status: 500, want: 13},
		{name: "501 is UNIMPLEMENTED", status: 501, want: 12},
		{name: "503 is UNAVAILABLE", status: 503, want: 14},
		{name: "504 is DEADLINE_EXCEEDED", status: 504, want: 4},
		{name: "a status code.proto does not name is UNKNOWN", status: 502, want: 2},
		{name: "no status at all (interrupted by a crash) is UNKNOWN", status: 0, want: 2},
		{name: "a gRPC door's code wins over the HTTP 200 it travelled in", status: 200, grpc: 14, hasGRPC: true, want: 14},
		{name: "a gRPC door's OK is OK", status: 200, grpc: 0, hasGRPC: true, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &Record{AuditID: "s", Stage: StageCompleted, Decision: "d", Status: tt.status,
				GRPCStatus: tt.grpc, HasGRPCStatus: tt.hasGRPC, Service: "vault.googleapis.com", Method: "vault.operations.cancel"}
			_, al := cloudEntryOf(t, cloudLine(t, rec))
			if got := al.GetStatus().GetCode(); got != tt.want {
				t.Errorf("status.code = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestCloudAuditEntryReplacesInvalidUTF8InsteadOfLosingTheRecord(t *testing.T) {
	rec := &Record{
		AuditID: "u", Stage: StageCompleted, Decision: InvalidPath, Status: 400,
		Service: "vault.googleapis.com", Method: "vault.operations.cancel",
		Operation: "operations/\xff", UserAgent: "agent/\xfe1", ClientIP: "192.0.2.1",
	}
	_, al := cloudEntryOf(t, cloudLine(t, rec))
	if al.GetResourceName() != "operations/\uFFFD" || al.GetRequestMetadata().GetCallerSuppliedUserAgent() != "agent/\uFFFD1" {
		t.Errorf("resourceName %q, user agent %q; want the invalid bytes replaced by U+FFFD",
			al.GetResourceName(), al.GetRequestMetadata().GetCallerSuppliedUserAgent())
	}
}

func TestLoggerWithoutAFormatWritesTheJSONFormat(t *testing.T) {
	rec := &Record{AuditID: "j", Stage: StageCompleted, Decision: Forwarded, Status: 200, Service: "vault.googleapis.com"}
	for _, format := range []string{"", FormatJSON} {
		var buf bytes.Buffer
		core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&buf), zapcore.InfoLevel)
		if err := (Logger{L: zap.New(core), Format: format}).Write(rec); err != nil {
			t.Fatal(err)
		}
		var line map[string]any
		if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
			t.Fatal(err)
		}
		if line["decision"] != "forwarded" || line["service"] != "vault.googleapis.com" || line["protoPayload"] != nil {
			t.Errorf("format %q wrote %s, want the flat json format", format, buf.Bytes())
		}
	}
}

func TestCloudIdentityReadsBackWhatAReceivedRecordKnows(t *testing.T) {
	received := Record{
		AuditID: "r1", Stage: StageReceived,
		Service: "vault.googleapis.com", Method: "vault.operations.cancel", Operation: "operations/exports/1",
		Principal: "ops@example.com", TokenID: credential.TokenID(cloudToken),
		ScopesAccepted: []string{"https://www.googleapis.com/auth/ediscovery", "https://www.googleapis.com/auth/cloud-platform"},
		ScopeUsed:      "https://www.googleapis.com/auth/ediscovery",
		ClientIP:       "192.0.2.1", UserAgent: "ua/1", Protocol: "grpc-web",
	}
	var line struct {
		ProtoPayload json.RawMessage `json:"protoPayload"`
	}
	if err := json.Unmarshal(cloudLine(t, &received), &line); err != nil {
		t.Fatal(err)
	}
	got, err := cloudIdentity(line.ProtoPayload)
	if err != nil {
		t.Fatal(err)
	}
	want := received
	want.AuditID, want.Stage = "", ""
	if !reflect.DeepEqual(got, want) {
		t.Errorf("cloudIdentity = %+v\nwant %+v", got, want)
	}
}

func BenchmarkLoggerWrite(b *testing.B) {
	for _, format := range []string{FormatJSON, FormatCloudAuditLog} {
		b.Run(format, func(b *testing.B) {
			core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(io.Discard), zapcore.InfoLevel)
			sink := Logger{L: zap.New(core), Format: format}
			rec := benchRecord()
			b.ReportAllocs()
			for b.Loop() {
				_ = sink.Write(rec)
			}
		})
	}
}
