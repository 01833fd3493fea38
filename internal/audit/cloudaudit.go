package audit

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"unicode/utf8"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	auditpb "google.golang.org/genproto/googleapis/cloud/audit"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/anypb"

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
//
// The payload is written straight through zap's encoder, field by field,
// as protojson would write the AuditLog wrapped in an Any: no proto
// message is built, so a record costs what a log line costs. The tests
// hold it against protojson (the fuzz target reads every entry back into
// an auditpb.AuditLog and compares it with the message the record maps to).
type cloudEntry Record

// MarshalLogObject writes the entry.
func (e *cloudEntry) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	r := (*Record)(e)
	enc.AddString("audit_id", r.AuditID)
	enc.AddString("stage", string(r.Stage))
	enc.AddString("insertId", r.AuditID)
	enc.AddString("logName", cloudLogName)
	enc.AddString("severity", cloudSeverity(r))
	return enc.AddObject("protoPayload", (*cloudAuditLog)(r))
}

// cloudAuditLogType is the protoPayload's "@type", the Any type URL of an
// AuditLog.
const cloudAuditLogType = "type.googleapis.com/google.cloud.audit.AuditLog"

// cloudAuditLog writes the record as an AuditLog in an Any, in protojson's
// order and with its omissions (an empty string, a zero code and a false
// bool are left out). The fields AuditLog has a place for go there; the
// rest of the json format's fields go under metadata with their
// json-format keys. The outcome (status, authorizationInfo) is written on
// the completed record only.
//
// A new Record field goes in one place: under metadata it needs nothing
// here (cloudMetadata writes whatever Record.MarshalLogObject writes);
// one that has its own AuditLog field is written by the object below that
// holds it and named in cloudMetadataSkips.
type cloudAuditLog Record

func (a *cloudAuditLog) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	r := (*Record)(a)
	enc.AddString("@type", cloudAuditLogType)
	addString(enc, "serviceName", r.Service)
	enc.AddString("methodName", cloudMethodName)
	addString(enc, "resourceName", r.Operation)
	if r.Stage == StageCompleted {
		if err := enc.AddObject("status", (*cloudStatus)(r)); err != nil {
			return err
		}
	}
	if r.Principal != "" {
		if err := enc.AddObject("authenticationInfo", (*cloudAuthentication)(r)); err != nil {
			return err
		}
	}
	if r.Stage == StageCompleted {
		if err := enc.AddArray("authorizationInfo", (*cloudAuthorization)(r)); err != nil {
			return err
		}
	}
	if r.ClientIP != "" || r.UserAgent != "" || r.Reason != "" {
		if err := enc.AddObject("requestMetadata", (*cloudRequestMetadata)(r)); err != nil {
			return err
		}
	}
	m := metadataPool.Get().(*cloudMetadata)
	m.r = r
	err := enc.AddObject("metadata", (*cloudMetadataObject)(m))
	*m = cloudMetadata{}
	metadataPool.Put(m)
	return err
}

// cloudStatus is the AuditLog's status, a google.rpc.Status.
type cloudStatus Record

func (s *cloudStatus) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	r := (*Record)(s)
	if c := int32(cloudCode(r)); c != 0 {
		enc.AddInt32("code", c)
	}
	addString(enc, "message", string(r.Decision))
	return nil
}

// cloudAuthentication is the AuditLog's authenticationInfo.
type cloudAuthentication Record

func (a *cloudAuthentication) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	addString(enc, "principalEmail", a.Principal)
	return nil
}

// cloudAuthorization is the AuditLog's authorizationInfo: one entry, the
// cancel's permission on the operation.
type cloudAuthorization Record

func (a *cloudAuthorization) MarshalLogArray(enc zapcore.ArrayEncoder) error {
	return enc.AppendObject((*cloudAuthorizationInfo)(a))
}

type cloudAuthorizationInfo Record

func (a *cloudAuthorizationInfo) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	r := (*Record)(a)
	addString(enc, "resource", r.Operation)
	addString(enc, "permission", cloudPermission(r))
	if r.Decision == Forwarded {
		enc.AddBool("granted", true)
	}
	return nil
}

// cloudRequestMetadata is the AuditLog's requestMetadata.
type cloudRequestMetadata Record

func (m *cloudRequestMetadata) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	addString(enc, "callerIp", m.ClientIP)
	addString(enc, "callerSuppliedUserAgent", m.UserAgent)
	if m.Reason != "" {
		// Where Google's own audit logs put the caller's justification.
		return enc.AddObject("requestAttributes", (*cloudRequestAttributes)(m))
	}
	return nil
}

// cloudRequestAttributes is requestMetadata.requestAttributes, a
// google.rpc.context.AttributeContext.Request: the request reason.
type cloudRequestAttributes Record

func (a *cloudRequestAttributes) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	addString(enc, "reason", a.Reason)
	return nil
}

// cloudMetadataSkips are the json format's keys that the LogEntry or the
// AuditLog carries in a field of its own, and so are not repeated under
// metadata.
var cloudMetadataSkips = [...]string{"audit_id", "service", "operation", "principal", "client_ip", "user_agent", "reason"}

// cloudMetadata is the AuditLog's metadata, a google.protobuf.Struct: the
// json format's fields (Record.MarshalLogObject) less cloudMetadataSkips,
// under the same keys, their strings made valid UTF-8 as everywhere in the
// payload. It is an ObjectEncoder that passes the record's fields on to
// the real one, minus the skipped, and is pooled: a wrapper per record
// would be an allocation per record. The record writes strings, numbers,
// bools and arrays of strings; a nested object would pass unchecked.
type cloudMetadata struct {
	zapcore.ObjectEncoder
	r *Record
	// array is the array AddArray is writing, arrayEnc the encoder its
	// strings go through.
	array    zapcore.ArrayMarshaler
	arrayEnc validArrayEncoder
}

var metadataPool = sync.Pool{New: func() any { return new(cloudMetadata) }}

func (m *cloudMetadata) AddString(key, value string) {
	for _, k := range cloudMetadataSkips {
		if k == key {
			return
		}
	}
	m.ObjectEncoder.AddString(key, valid(value))
}

func (m *cloudMetadata) AddArray(key string, a zapcore.ArrayMarshaler) error {
	m.array = a
	err := m.ObjectEncoder.AddArray(key, (*cloudMetadataArray)(m))
	m.array = nil
	return err
}

// cloudMetadataObject writes the metadata object: the record's fields
// through the filtering encoder.
type cloudMetadataObject cloudMetadata

func (o *cloudMetadataObject) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	m := (*cloudMetadata)(o)
	m.ObjectEncoder = enc
	return m.r.MarshalLogObject(m)
}

// cloudMetadataArray writes the array given to AddArray with its strings
// made valid.
type cloudMetadataArray cloudMetadata

func (a *cloudMetadataArray) MarshalLogArray(enc zapcore.ArrayEncoder) error {
	a.arrayEnc.ArrayEncoder = enc
	return a.array.MarshalLogArray(&a.arrayEnc)
}

type validArrayEncoder struct{ zapcore.ArrayEncoder }

func (e *validArrayEncoder) AppendString(s string) { e.ArrayEncoder.AppendString(valid(s)) }

// addString adds a string field as protojson writes a proto3 string: left
// out when empty, invalid UTF-8 replaced.
func addString(enc zapcore.ObjectEncoder, key, value string) {
	if value != "" {
		enc.AddString(key, valid(value))
	}
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
// a path, and which protobuf refuses to marshal: each run of invalid bytes
// becomes one U+FFFD, as strings.ToValidUTF8 does (zap's encoder would
// replace each byte). A valid string, the usual case, is not copied.
func valid(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// Interface guards
var (
	_ zapcore.ObjectMarshaler = (*cloudEntry)(nil)
	_ zapcore.ObjectMarshaler = (*cloudAuditLog)(nil)
	_ zapcore.ObjectMarshaler = (*cloudStatus)(nil)
	_ zapcore.ObjectMarshaler = (*cloudAuthentication)(nil)
	_ zapcore.ArrayMarshaler  = (*cloudAuthorization)(nil)
	_ zapcore.ObjectMarshaler = (*cloudAuthorizationInfo)(nil)
	_ zapcore.ObjectMarshaler = (*cloudRequestMetadata)(nil)
	_ zapcore.ObjectMarshaler = (*cloudRequestAttributes)(nil)
	_ zapcore.ObjectEncoder   = (*cloudMetadata)(nil)
	_ zapcore.ObjectMarshaler = (*cloudMetadataObject)(nil)
	_ zapcore.ArrayMarshaler  = (*cloudMetadataArray)(nil)
	_ zapcore.ArrayEncoder    = (*validArrayEncoder)(nil)
)
