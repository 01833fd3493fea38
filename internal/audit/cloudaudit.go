package audit

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	auditpb "google.golang.org/genproto/googleapis/cloud/audit"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/genproto/googleapis/rpc/context/attribute_context"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/lro-cancel/lro_cancel/internal/googleerr"
)

// The constant parts of a Cloud Audit Logs entry.
const (
	// cloudMethodName is the AuditLog methodName of every cancel, whatever
	// door or service-specific RPC it came through (metadata.method keeps
	// the discovery id).
	cloudMethodName = "google.longrunning.Operations.CancelOperation"

	// cloudLogName ends in the log id of Google's Admin Activity audit
	// logs, which parsers match on, but does not start with projects/, so
	// that no entry passes for one of a Google Cloud project's own logs.
	cloudLogName = "lro_cancel/logs/cloudaudit.googleapis.com%2Factivity"
)

// recordField is the record as the one zap field of its log entry in the
// given format; an unknown format is the default, FormatJSON. The log sink
// and the journal both encode through it, so that their lines agree.
func recordField(r *Record, format string) zapcore.Field {
	if format == FormatCloudAuditLog {
		return zap.Inline((*cloudEntry)(r))
	}
	return zap.Inline(r)
}

// cloudEntry writes a record as the top-level fields of a Cloud Audit Logs
// LogEntry: insertId, logName, severity and protoPayload, an AuditLog in
// its protojson form. zap's own ts, level, logger and msg stay beside them,
// as do audit_id and stage, which the gateway's own tools (the journal's
// recovery, log filters) key on in either format.
//
// A top-level key means one thing in both formats, since one file can hold
// both (a journal shared across a reload that changed the format): so no
// LogEntry operation, whose key is the json format's operation name.
type cloudEntry Record

// MarshalLogObject writes the entry. Its only error is the payload's
// encoding failing, which sanitized strings rule out.
func (e *cloudEntry) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	r := (*Record)(e)
	enc.AddString("audit_id", r.AuditID)
	enc.AddString("stage", string(r.Stage))
	enc.AddString("insertId", r.AuditID)
	enc.AddString("logName", cloudLogName)
	enc.AddString("severity", cloudSeverity(r))
	payload, err := cloudPayload(r)
	if err != nil {
		return fmt.Errorf("encode audit record %s as a Cloud Audit Logs entry: %w", r.AuditID, err)
	}
	// A json.RawMessage is written as the JSON object it holds, not as a
	// string, by zap's JSON encoder and Caddy's encoders built on it.
	return enc.AddReflected("protoPayload", payload)
}

// cloudSeverity is the LogEntry severity, as Google's Admin Activity logs
// set it: NOTICE for a cancel that succeeded, ERROR for one refused or
// failed. A received record, before any outcome, is INFO.
func cloudSeverity(r *Record) string {
	switch {
	case r.Stage != StageCompleted:
		return "INFO"
	case cloudCode(r) == code.Code_OK:
		return "NOTICE"
	}
	return "ERROR"
}

// cloudPayload is the record's AuditLog as the protojson form of an Any,
// the way a LogEntry's protoPayload is written: its "@type" first, then
// the AuditLog's fields.
func cloudPayload(r *Record) (json.RawMessage, error) {
	al, err := cloudAuditLog(r)
	if err != nil {
		return nil, err
	}
	payload, err := anypb.New(al)
	if err != nil {
		return nil, err
	}
	return protojson.Marshal(payload)
}

// cloudAuditLog maps the record onto an AuditLog. The fields AuditLog has
// a place for go there; the rest of the json format's fields go under
// metadata with their json-format keys. The outcome (status,
// authorizationInfo) is written on the completed record only.
func cloudAuditLog(r *Record) (*auditpb.AuditLog, error) {
	metadata, err := cloudMetadata(r)
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
			// Where Google's own audit logs put the caller's justification.
			al.RequestMetadata.RequestAttributes = &attribute_context.AttributeContext_Request{Reason: valid(r.Reason)}
		}
	}
	if r.Stage == StageCompleted {
		al.Status = &status.Status{Code: int32(cloudCode(r)), Message: string(r.Decision)}
		al.AuthorizationInfo = []*auditpb.AuthorizationInfo{{
			Resource:   al.ResourceName,
			Permission: valid(cloudPermission(r)),
			Granted:    r.Decision == Forwarded,
		}}
	}
	return al, nil
}

// cloudCode is the google.rpc.Code the client got: the gRPC status when a
// gRPC-family door answered, else the HTTP status read through
// google/rpc/code.proto's mapping. A record with no status (interrupted by
// a crash) is UNKNOWN.
func cloudCode(r *Record) code.Code {
	switch {
	case r.HasGRPCStatus:
		return code.Code(r.GRPCStatus)
	case r.Status >= http.StatusOK && r.Status < http.StatusMultipleChoices:
		return code.Code_OK
	}
	return code.Code(code.Code_value[googleerr.StatusFor(r.Status)])
}

// cloudPermission names what a cancel exercises in IAM's style,
// <api>.operations.cancel, as in dataproc.operations.cancel: the API is the
// discovery id's first segment, or the host's first label for a cancel the
// catalog does not list. The gateway checks scopes and its policy, not IAM;
// the name is there for the parsers that group entries by permission.
func cloudPermission(r *Record) string {
	api, _, _ := strings.Cut(r.Method, ".")
	if api == "" || api == "unlisted" {
		api, _, _ = strings.Cut(r.Service, ".")
	}
	return api + ".operations.cancel"
}

// cloudMetadata holds the gateway's own fields: the json format's fields
// less those the LogEntry or AuditLog carries (audit id, service,
// operation, principal, client IP, user agent), under the same keys.
func cloudMetadata(r *Record) (*structpb.Struct, error) {
	enc := zapcore.NewMapObjectEncoder()
	if err := r.MarshalLogObject(enc); err != nil {
		return nil, err
	}
	for _, k := range []string{"audit_id", "service", "operation", "principal", "client_ip", "user_agent", "reason"} {
		delete(enc.Fields, k)
	}
	for k, v := range enc.Fields {
		enc.Fields[k] = validAny(v)
	}
	return structpb.NewStruct(enc.Fields)
}

// cloudIdentity reads back, from the protoPayload of a cloud_audit_log
// line, the fields a received record has (service, method, operation,
// principal, token id, scopes, client IP, user agent, protocol): what the
// journal's recovery carries into the interrupted record it completes.
func cloudIdentity(payload json.RawMessage) (Record, error) {
	var a anypb.Any
	if err := protojson.Unmarshal(payload, &a); err != nil {
		return Record{}, fmt.Errorf("read a Cloud Audit Logs protoPayload: %w", err)
	}
	var al auditpb.AuditLog
	if err := a.UnmarshalTo(&al); err != nil {
		return Record{}, fmt.Errorf("read a Cloud Audit Logs protoPayload: %w", err)
	}
	md := al.GetMetadata().GetFields()
	r := Record{
		Service:   al.GetServiceName(),
		Method:    md["method"].GetStringValue(),
		Operation: al.GetResourceName(),
		Principal: al.GetAuthenticationInfo().GetPrincipalEmail(),
		TokenID:   md["token_id"].GetStringValue(),
		ScopeUsed: md["scope_used"].GetStringValue(),
		ClientIP:  al.GetRequestMetadata().GetCallerIp(),
		UserAgent: al.GetRequestMetadata().GetCallerSuppliedUserAgent(),
		Protocol:  md["protocol"].GetStringValue(),
	}
	for _, v := range md["scopes_accepted"].GetListValue().GetValues() {
		r.ScopesAccepted = append(r.ScopesAccepted, v.GetStringValue())
	}
	return r, nil
}

// valid replaces invalid UTF-8, which a client can put in its user agent or
// a path, and which protobuf refuses to marshal.
func valid(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

func validAny(v any) any {
	switch v := v.(type) {
	case string:
		return valid(v)
	case []any:
		for i := range v {
			v[i] = validAny(v[i])
		}
	}
	return v
}

// Interface guards
var (
	_ zapcore.ObjectMarshaler = (*cloudEntry)(nil)
)
