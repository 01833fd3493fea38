package audit

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	auditpb "google.golang.org/genproto/googleapis/cloud/audit"
	"google.golang.org/genproto/googleapis/rpc/context/attribute_context"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
)

// The reference below is the encoder the direct one replaced, kept as its
// slow, obvious twin: it builds the AuditLog message the record maps to and
// lets protojson write it. The direct encoder must write what protojson
// reads back as that same message, in the same place in the entry.

// referenceAuditLog is the AuditLog a record maps to.
func referenceAuditLog(r *Record) (*auditpb.AuditLog, error) {
	enc := zapcore.NewMapObjectEncoder()
	if err := r.MarshalLogObject(enc); err != nil {
		return nil, err
	}
	for _, k := range cloudMetadataSkips {
		delete(enc.Fields, k)
	}
	for k, v := range enc.Fields {
		enc.Fields[k] = referenceValid(v)
	}
	metadata, err := structpb.NewStruct(enc.Fields)
	if err != nil {
		return nil, err
	}
	al := &auditpb.AuditLog{
		ServiceName:  valid(r.Service),
		MethodName:   cloudMethodName,
		ResourceName: valid(r.Operation),
		Metadata:     metadata,
	}
	if r.Principal != "" {
		al.AuthenticationInfo = &auditpb.AuthenticationInfo{PrincipalEmail: valid(r.Principal)}
	}
	if r.ClientIP != "" || r.UserAgent != "" || r.Reason != "" {
		al.RequestMetadata = &auditpb.RequestMetadata{
			CallerIp:                valid(r.ClientIP),
			CallerSuppliedUserAgent: valid(r.UserAgent),
		}
		if r.Reason != "" {
			al.RequestMetadata.RequestAttributes = &attribute_context.AttributeContext_Request{Reason: valid(r.Reason)}
		}
	}
	if r.Stage == StageCompleted {
		al.Status = &status.Status{Code: int32(cloudCode(r)), Message: valid(string(r.Decision))}
		al.AuthorizationInfo = []*auditpb.AuthorizationInfo{{
			Resource:   al.ResourceName,
			Permission: valid(cloudPermission(r)),
			Granted:    r.Decision == Forwarded,
		}}
	}
	return al, nil
}

func referenceValid(v any) any {
	switch v := v.(type) {
	case string:
		return strings.ToValidUTF8(v, "\uFFFD")
	case []any:
		for i := range v {
			v[i] = referenceValid(v[i])
		}
	}
	return v
}

// referenceEntry writes the entry as the former encoder did: the top-level
// fields, then protojson's rendering of the AuditLog in an Any.
type referenceEntry Record

func (e *referenceEntry) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	r := (*Record)(e)
	enc.AddString("audit_id", r.AuditID)
	enc.AddString("stage", string(r.Stage))
	enc.AddString("insertId", r.AuditID)
	enc.AddString("logName", cloudLogName)
	enc.AddString("severity", cloudSeverity(r))
	al, err := referenceAuditLog(r)
	if err != nil {
		return err
	}
	payload, err := anypb.New(al)
	if err != nil {
		return err
	}
	raw, err := protojson.Marshal(payload)
	if err != nil {
		return err
	}
	return enc.AddReflected("protoPayload", json.RawMessage(raw))
}

// entryLine renders one entry as the journal does (and Caddy's default
// JSON encoder): zap's JSON encoder, a fixed time.
func entryLine(t testing.TB, m zapcore.ObjectMarshaler) []byte {
	t.Helper()
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	buf, err := enc.EncodeEntry(zapcore.Entry{Time: time.Unix(1, 0), Message: "lro_cancel"}, []zapcore.Field{zap.Inline(m)})
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	defer buf.Free()
	return bytes.Clone(buf.Bytes())
}

// checkAgainstReference holds the direct encoder's entry for r against the
// reference's: the line is valid JSON with the same structure and values,
// and its protoPayload reads with protojson as the AuditLog the record maps
// to. It returns that AuditLog.
func checkAgainstReference(t testing.TB, r *Record) *auditpb.AuditLog {
	t.Helper()
	got := entryLine(t, (*cloudEntry)(r))
	want := entryLine(t, (*referenceEntry)(r))
	if !json.Valid(got) {
		t.Fatalf("the entry is not valid JSON:\n%s", got)
	}
	var gotTree, wantTree any
	if err := json.Unmarshal(got, &gotTree); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(want, &wantTree); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotTree, wantTree) {
		t.Fatalf("the entry differs from protojson's:\n got %s\nwant %s", got, want)
	}

	_, al := cloudEntryOf(t, got)
	ref, err := referenceAuditLog(r)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(al, ref) {
		t.Fatalf("protojson reads the payload as\n%v\nwant\n%v\nline %s", al, ref, got)
	}
	return al
}

func TestCloudAuditEntryIsWhatProtojsonWritesFieldForField(t *testing.T) {
	full := func() *Record {
		r := benchRecord()
		r.Protocol, r.HasGRPCStatus, r.GRPCStatus = "grpc", true, 9
		r.PolicyRule, r.PolicyEffect, r.PolicyDryRun = "only-ops", "deny", true
		r.ScopesAccepted = append(r.ScopesAccepted, "https://www.googleapis.com/auth/cloud-platform")
		return r
	}
	tests := []struct {
		name string
		edit func(r *Record)
	}{
		{"a forwarded cancel with every field set", func(r *Record) {}},
		{"a received record has no outcome", func(r *Record) { r.Stage = StageReceived }},
		{"a refused REST cancel maps its HTTP status", func(r *Record) {
			r.Decision, r.Status, r.HasGRPCStatus, r.GRPCStatus = ScopeInsufficient, 403, false, 0
		}},
		{"a gRPC OK leaves the status code out, as protojson does", func(r *Record) { r.GRPCStatus = 0 }},
		{"a completed record without a decision has an empty status message", func(r *Record) {
			r.Decision, r.Status, r.HasGRPCStatus = "", 200, false
		}},
		{"no principal, no client: no authenticationInfo, no requestMetadata", func(r *Record) {
			r.Principal, r.ClientIP, r.UserAgent = "", "", ""
		}},
		{"only a user agent", func(r *Record) { r.ClientIP = "" }},
		{"empty service and operation are left out", func(r *Record) { r.Service, r.Operation, r.Method = "", "", "" }},
		{"no scopes", func(r *Record) { r.ScopesAccepted = nil }},
		{"an unlisted cancel's permission comes from the host", func(r *Record) { r.Method = "unlisted" }},
		{"quotes, backslashes, control characters and HTML survive", func(r *Record) {
			r.UserAgent = "a\"b\\c\n\t\x00\x1f\x7f<script>&amp;"
			r.Operation = "operations/\"quoted\"\r\n"
			r.Principal = "\u2028\u2029@example.com"
		}},
		{"unicode survives exactly", func(r *Record) {
			r.Principal, r.UserAgent, r.PolicyRule = "ünïcødé@例え.jp", "🚀 agent/1 \uFFFD", "règle-✓"
			r.ScopesAccepted = []string{"𝔰𝔠𝔬𝔭𝔢"}
		}},
		{"invalid UTF-8 becomes one U+FFFD per run, in every field", func(r *Record) {
			r.Operation, r.UserAgent, r.ClientIP = "operations/\xff\xfe", "agent/\xfe1", "\xc3"
			r.Service, r.Principal, r.Method = "v\xffault.googleapis.com", "a\xe2\x82@x", "vault\xff.operations.cancel"
			r.TokenID, r.ScopeUsed, r.ScopesAccepted = "\x80", "s\xbf", []string{"\xff\xff\xff", "ok"}
			r.PolicyRule, r.Protocol = "\xed\xa0\x80", "h\xfftp"
		}},
		{"extreme numbers", func(r *Record) {
			r.Status, r.UpstreamStatus, r.Duration = -1<<62, 1<<62, time.Duration(1<<63-1)
			r.GRPCStatus = 1 << 40
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := full()
			tt.edit(r)
			al := checkAgainstReference(t, r)
			// The strings a user searches for are there, exactly.
			for _, f := range []struct{ got, in string }{
				{al.GetServiceName(), r.Service},
				{al.GetResourceName(), r.Operation},
				{al.GetAuthenticationInfo().GetPrincipalEmail(), r.Principal},
				{al.GetRequestMetadata().GetCallerSuppliedUserAgent(), r.UserAgent},
				{al.GetMetadata().GetFields()["method"].GetStringValue(), r.Method},
			} {
				if f.got != strings.ToValidUTF8(f.in, "\uFFFD") {
					t.Errorf("read back %q from %q", f.got, f.in)
				}
			}
		})
	}
}

// FuzzCloudAuditEntry holds the direct encoder against protojson for any
// record: any string (unicode, control characters, quotes, invalid UTF-8)
// and any number in any field.
func FuzzCloudAuditEntry(f *testing.F) {
	r := benchRecord()
	f.Add(r.AuditID, true, "", string(r.Decision), r.Status, r.UpstreamStatus, r.Service, r.Method, r.Operation,
		r.Principal, r.TokenID, "https://www.googleapis.com/auth/ediscovery", "", r.ScopeUsed, r.ClientIP, r.UserAgent,
		int64(r.Duration), "http", 0, false, "", "", false, "TICKET-42 rollback", "billing-proj", "per-principal", false, false)
	f.Add("a\"b", false, "received", "", 0, 0, "\xff", "unlisted", "operations/\x00\n", "\u2028", "\\", "\xfe\xff",
		"ü", "", "::1", "<&>", int64(-1), "grpc", 14, true, "rule\t", "deny", true, "\xff\x00", "", "", true, true)
	f.Add("", true, "", "forwarded", 204, 0, "", "", "", "", "", "", "", "", "", "\x7f\x1b[0m", int64(0), "", -7, true, "🚀", "", false, "", "p\"", "r", false, true)
	f.Fuzz(func(t *testing.T, auditID string, completed bool, stage, decision string, st, upstream int,
		service, method, operation, principal, tokenID, scope1, scope2, scopeUsed, clientIP, userAgent string,
		duration int64, protocol string, grpcStatus int, hasGRPC bool, rule, effect string, dryRun bool,
		reason, userProject, limitRule string, limitDryRun, limitError bool) {
		r := &Record{
			AuditID: auditID, Stage: Stage(stage), Decision: Decision(decision), Status: st, UpstreamStatus: upstream,
			Service: service, Method: method, Operation: operation, Principal: principal, TokenID: tokenID,
			ScopeUsed: scopeUsed, ClientIP: clientIP, UserAgent: userAgent, Duration: time.Duration(duration),
			Protocol: protocol, GRPCStatus: grpcStatus, HasGRPCStatus: hasGRPC,
			PolicyRule: rule, PolicyEffect: effect, PolicyDryRun: dryRun,
			Reason: reason, UserProject: userProject, LimitRule: limitRule, LimitDryRun: limitDryRun, LimitError: limitError,
		}
		if completed {
			r.Stage = StageCompleted
		}
		if scope1 != "" {
			r.ScopesAccepted = append(r.ScopesAccepted, scope1)
		}
		if scope2 != "" {
			r.ScopesAccepted = append(r.ScopesAccepted, scope2)
		}
		checkAgainstReference(t, r)
	})
}

// BenchmarkCloudAuditRecord is the cost of encoding one record into its
// log line (zap's JSON encoder, as Caddy's and the journal's): the json
// format, the cloud_audit_log format, and the protojson reference the
// cloud_audit_log encoder replaced.
func BenchmarkCloudAuditRecord(b *testing.B) {
	for _, bm := range []struct {
		name string
		m    func(*Record) zapcore.ObjectMarshaler
	}{
		{FormatJSON, func(r *Record) zapcore.ObjectMarshaler { return r }},
		{FormatCloudAuditLog, func(r *Record) zapcore.ObjectMarshaler { return (*cloudEntry)(r) }},
		{"protojson_reference", func(r *Record) zapcore.ObjectMarshaler { return (*referenceEntry)(r) }},
	} {
		b.Run(bm.name, func(b *testing.B) {
			enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
			r := benchRecord()
			r.Protocol = "http"
			fields := []zapcore.Field{zap.Inline(bm.m(r))}
			entry := zapcore.Entry{Time: time.Now(), LoggerName: journalLoggerName, Message: journalMessage}
			b.ReportAllocs()
			for b.Loop() {
				buf, err := enc.EncodeEntry(entry, fields)
				if err != nil {
					b.Fatal(err)
				}
				buf.Free()
			}
		})
	}
}
