// Package audit holds the audit record of a governed cancel and the sinks
// that write it: Logger (a zap logger, routed by Caddy's logging) and
// Journal (a durable, fsynced file; see Journal for its guarantees and how
// to rotate it). A record is shaped after Cloud Audit Logs (principal,
// method, resource, status) and Kubernetes audit events (audit id, stage).
// Both sinks write it in one of two formats: its own fields, flat
// (FormatJSON), or a Cloud Audit Logs entry whose protoPayload is a
// google.cloud.audit.AuditLog (FormatCloudAuditLog).
package audit

import (
	"sync"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// The record formats, for the log and the journal alike.
const (
	// FormatJSON is the record's own fields, flat (the default).
	FormatJSON = "json"
	// FormatCloudAuditLog shapes each record as a Cloud Audit Logs entry.
	FormatCloudAuditLog = "cloud_audit_log"
)

// Stage says when in a request's life a record was written.
type Stage string

// The stages of a record.
const (
	StageReceived  Stage = "received"
	StageCompleted Stage = "completed"
)

// Decision is what the gateway did with a recognised cancel.
type Decision string

// The decisions a completed record can carry.
const (
	Forwarded           Decision = "forwarded"
	Unimplemented       Decision = "unimplemented"
	Unauthenticated     Decision = "unauthenticated"
	ScopeInsufficient   Decision = "scope_insufficient"
	InvalidBody         Decision = "invalid_body"
	InvalidPath         Decision = "invalid_path"
	InvalidRequest      Decision = "invalid_request"
	VerifierUnavailable Decision = "verifier_unavailable"
	DeniedUnlisted      Decision = "denied_unlisted"
	JournalUnavailable  Decision = "journal_unavailable"
	// BatchRefused: the cancel passed, but another part of its batch was
	// refused, so the batch (this cancel with it) was not forwarded.
	BatchRefused   Decision = "batch_refused"
	DeniedByPolicy Decision = "denied_by_policy"
	// RateLimited: a fleet-wide limit's quota was used up (429).
	RateLimited Decision = "rate_limited"
	// LimitStoreUnavailable: the limits' store could not answer and
	// on_error is deny (503).
	LimitStoreUnavailable Decision = "limit_store_unavailable"
	// AmbiguousRequest: Google's front end could read the request two
	// ways, one of them a cancel; it was refused unread.
	AmbiguousRequest Decision = "ambiguous_request"
	// Interrupted completes, when the journal is next opened, a received
	// record whose request a crash cut short: nothing more is known.
	Interrupted Decision = "interrupted"
	// ClientClosed: the client went away while its token was verified
	// (status 499): not a verifier outage.
	ClientClosed Decision = "client_closed"
)

// Record is one audit record. Zero-valued optional fields are omitted.
// It never holds a credential: TokenID is a hash prefix.
type Record struct {
	AuditID        string
	Stage          Stage
	Decision       Decision
	Status         int
	UpstreamStatus int
	Service        string
	Method         string
	Operation      string
	Principal      string
	TokenID        string
	ScopesAccepted []string
	ScopeUsed      string
	ClientIP       string
	UserAgent      string
	Duration       time.Duration
	// Protocol is the front door the cancel came through: http, grpc,
	// grpc-web, rpc, batch.
	Protocol string
	// GRPCStatus is the gRPC code the client got, written only when
	// HasGRPCStatus is set (the gRPC-family doors): 0 is OK, not absent.
	GRPCStatus int
	// PolicyRule is the policy rule that decided ("default" when no allow
	// rule matched), PolicyEffect its effect, PolicyDryRun set under
	// dry_run; all empty without a policy.
	PolicyRule   string
	PolicyEffect string
	// LimitRule is the limit rule that refused the cancel (or would have,
	// under dry_run: LimitDryRun), LimitError set when the limit could not
	// be decided (a key that erred, the store unavailable); all empty
	// without limits.
	LimitRule string
	// Reason and UserProject are the request reason and quota project the
	// caller named (X-Goog-Request-Reason, X-Goog-User-Project, or their
	// system parameters), on every decision.
	Reason      string
	UserProject string

	// The flags of the fields above, together so that they share a word.
	HasGRPCStatus bool
	PolicyDryRun  bool
	LimitDryRun   bool
	LimitError    bool
}

// MarshalLogObject writes the record's fields flat, in a fixed order, so
// that a log line and a journal line carry the same keys.
func (r *Record) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddString("audit_id", r.AuditID)
	enc.AddString("stage", string(r.Stage))
	if r.Decision != "" {
		enc.AddString("decision", string(r.Decision))
	}
	if r.Status != 0 {
		enc.AddInt("status", r.Status)
	}
	if r.UpstreamStatus != 0 {
		enc.AddInt("upstream_status", r.UpstreamStatus)
	}
	enc.AddString("service", r.Service)
	enc.AddString("method", r.Method)
	enc.AddString("operation", r.Operation)
	if r.Principal != "" {
		enc.AddString("principal", r.Principal)
	}
	if r.TokenID != "" {
		enc.AddString("token_id", r.TokenID)
	}
	if err := enc.AddArray("scopes_accepted", (*stringArray)(&r.ScopesAccepted)); err != nil {
		return err
	}
	if r.ScopeUsed != "" {
		enc.AddString("scope_used", r.ScopeUsed)
	}
	enc.AddString("client_ip", r.ClientIP)
	enc.AddString("user_agent", r.UserAgent)
	if r.Protocol != "" {
		enc.AddString("protocol", r.Protocol)
	}
	if r.HasGRPCStatus {
		enc.AddInt("grpc_status", r.GRPCStatus)
	}
	if r.PolicyRule != "" {
		enc.AddString("policy_rule", r.PolicyRule)
	}
	if r.PolicyEffect != "" {
		enc.AddString("policy_effect", r.PolicyEffect)
	}
	if r.PolicyDryRun {
		enc.AddBool("policy_dry_run", true)
	}
	if r.LimitRule != "" {
		enc.AddString("limit_rule", r.LimitRule)
	}
	if r.LimitDryRun {
		enc.AddBool("limit_dry_run", true)
	}
	if r.LimitError {
		enc.AddBool("limit_error", true)
	}
	if r.Reason != "" {
		enc.AddString("reason", r.Reason)
	}
	if r.UserProject != "" {
		enc.AddString("user_project", r.UserProject)
	}
	if r.Stage == StageCompleted {
		enc.AddFloat64("duration", r.Duration.Seconds())
	}
	return nil
}

// stringArray is used by pointer: a slice in an interface costs an
// allocation per record, a pointer none.
type stringArray []string

func (a *stringArray) MarshalLogArray(enc zapcore.ArrayEncoder) error {
	for _, s := range *a {
		enc.AppendString(s)
	}
	return nil
}

// Sink receives records. Write must be safe for concurrent use; an error
// means the record is not durable and the request must not go on.
type Sink interface {
	Write(r *Record) error
}

// Logger writes each record as one INFO entry of a zap logger, fields at
// the top level so that Caddy's log encoders and filters see them.
type Logger struct {
	L *zap.Logger
	// Format is the entries' shape: FormatJSON (the default when empty)
	// or FormatCloudAuditLog.
	Format string
}

// Write logs the record. It never fails: zap reports its own write errors.
func (l Logger) Write(r *Record) error {
	ce := l.L.Check(zapcore.InfoLevel, "lro_cancel")
	if ce == nil {
		return nil
	}
	// The field list comes from a pool: as a variadic argument it would
	// cost an allocation per record. Cores encode (or copy) the fields
	// before Write returns.
	f := fieldPool.Get().(*[1]zapcore.Field)
	f[0] = recordField(r, l.Format)
	ce.Write(f[:]...)
	f[0] = zapcore.Field{}
	fieldPool.Put(f)
	return nil
}

var fieldPool = sync.Pool{New: func() any { return new([1]zapcore.Field) }}

// Interface guards
var (
	_ zapcore.ObjectMarshaler = (*Record)(nil)
	_ Sink                    = Logger{}
)
