// Package govern is lro_cancel's transport-neutral core: what a cancel is
// (Cancel), the decision on it (Core.Decide: credentials, verification,
// scope, body, policy, unlisted, limits, unimplemented, in Google's own
// order), a refusal
// as a google.rpc.Code with its reason and details (Denial), and the audit
// lifecycle of each governed cancel (Core.Serve, Core.Receive,
// Core.Complete).
//
// A front door (REST, gRPC, gRPC-Web, $rpc) recognises a cancel in its wire
// format, reads it into a Cancel, and writes the core's answer back in that
// format (Door). Nothing about a wire format lives here.
package govern

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/lro-cancel/lro_cancel/internal/audit"
	"github.com/lro-cancel/lro_cancel/internal/body"
	"github.com/lro-cancel/lro_cancel/internal/catalog"
	"github.com/lro-cancel/lro_cancel/internal/credential"
	"github.com/lro-cancel/lro_cancel/internal/policy"
)

// The front doors, as the record's protocol field names them.
const (
	ProtocolHTTP    = "http"
	ProtocolGRPC    = "grpc"
	ProtocolGRPCWeb = "grpc-web"
	ProtocolRPC     = "rpc"
	ProtocolBatch   = "batch"
)

// Cancel is one recognised cancel as a door read it.
type Cancel struct {
	// Protocol is the door, one of the Protocol constants.
	Protocol string
	// Kind is Listed, Unlisted or Ambiguous.
	Kind catalog.Kind
	// Method is the catalog's method (Listed only); shared, do not modify.
	Method *catalog.Method
	// Service is the API host the cancel is governed under.
	Service string
	// Host is the request's own normalized host, which `unimplemented` may
	// name as well as the service.
	Host string
	// Operation is the decoded operation name.
	Operation string
	// Credential is the caller's OAuth token, or CredentialErr why there
	// is none that can be used.
	Credential    credential.Credential
	CredentialErr error
	// Refusal is the door's refusal of a request it cannot read for
	// certain (an ambiguous path, a method override, an unreadable
	// message): it is answered before credentials are looked at, since
	// what the request is, and so which scopes it needs, is not known.
	Refusal *Denial
	// Body is what is wrong with the request message, judged at the
	// pipeline's body step; nil when the message is acceptable.
	Body *body.Violation
	// Headers are the request's headers and Time when it arrived, for
	// the policy.
	Headers http.Header
	Time    time.Time
	// Reason and UserProject are the request reason and the quota project
	// the caller named (see Caller), recorded and offered to the policy.
	Reason, UserProject string
}

// MethodID is the record's method: the discovery id, "unlisted", or ""
// when the request was refused before it could be told.
func (c *Cancel) MethodID() string {
	if c.Method != nil {
		return c.Method.ID
	}
	if c.Kind == catalog.Unlisted {
		return "unlisted"
	}
	return ""
}

// Unlisted modes.
const (
	UnlistedEnforce = "enforce"
	UnlistedDeny    = "deny"
	UnlistedPass    = "pass"
)

// Core decides on cancels and keeps their audit trail. It is built once
// at provisioning and never changes afterwards.
type Core struct {
	// JWT verifies JWT-shaped tokens when set; Opaque verifies the others.
	JWT, Opaque credential.Verifier
	// Scopes, when set, replace the catalog's accepted scopes.
	Scopes []string
	// Unlisted is UnlistedEnforce, UnlistedDeny or UnlistedPass.
	Unlisted string
	// Unimplemented lists the services (or request hosts) answered
	// UNIMPLEMENTED; "*" is every service.
	Unimplemented []string
	// Policy decides who may cancel what; nil when none is configured.
	// Under DryRun it refuses nothing, and records what it would have done.
	Policy *policy.Policy
	DryRun bool
	// Limits bound how many cancels a key may make; nil when none are
	// configured.
	Limits *Limits

	// Stages are the stages the audit log receives; the journal, when
	// set, receives both.
	Stages  []audit.Stage
	Sink    audit.Sink
	Journal *audit.Journal
	// Count observes every completed record (the metrics).
	Count  func(*audit.Record)
	Logger *zap.Logger
	// OutageLog paces the warning about a verifier outage (once per burst,
	// not per refused cancel); nil logs every one.
	OutageLog *rate.Sometimes
}

// Door writes the core's answer in one front door's wire format.
type Door interface {
	// Refuse writes d to the client; nothing is forwarded. It sets the
	// record's status (and gRPC status) to what the client gets.
	Refuse(w http.ResponseWriter, d *Denial, rec *audit.Record)
	// Forward runs the next handler (through ex.Forward) and records what
	// the client got in ex.Record.
	Forward(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, ex *Exchange) error
}

// Passes reports whether a recognised cancel is not governed at all
// (`unlisted pass`).
func (c *Core) Passes(x *Cancel) bool {
	return x.Kind == catalog.Unlisted && c.Unlisted == UnlistedPass && x.Refusal == nil
}

// Serve governs one cancel that arrived alone: it gives the request its
// audit id (the Audit-Id header, the {http.lro_cancel.*} placeholders),
// writes the received record, decides, and then refuses through the door
// or forwards; the completed record is written whatever happens,
// including when a later handler fails or panics.
func (c *Core) Serve(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, x *Cancel, d Door) error {
	start := x.Time // when the door read it
	if start.IsZero() {
		start = time.Now()
	}
	ex := &Exchange{Record: NewRecord(r, AuditID(r), x)}
	rec := &ex.Record
	ex.auditID[0] = rec.AuditID
	w.Header()["Audit-Id"] = ex.auditID[:]
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		repl.Map(placeholders(rec))
	}
	defer c.Complete(rec, start)
	if den := c.Check(r.Context(), x, rec); den != nil {
		d.Refuse(w, den, rec)
		return nil
	}
	return d.Forward(w, r, next, ex)
}

// Check writes the received record and decides: the denial to answer
// (its decision recorded, its ErrorInfo naming the service and method),
// or nil with the record's decision forwarded.
func (c *Core) Check(ctx context.Context, x *Cancel, rec *audit.Record) *Denial {
	var den *Denial
	if err := c.Receive(rec); err != nil {
		den = JournalUnavailable()
	} else {
		den = c.Decide(ctx, x, rec)
	}
	if den == nil {
		rec.Decision = audit.Forwarded
		return nil
	}
	return Refused(den, rec)
}

// Refused records a denial's decision and names the service and method in
// its ErrorInfo metadata, unless the denial names its own.
func Refused(den *Denial, rec *audit.Record) *Denial {
	rec.Decision = den.Decision
	if den.Metadata == nil {
		den.Metadata = map[string]string{"service": rec.Service, "method": rec.Method}
	}
	return den
}

// AuditID is the request's audit id: Caddy's request UUID.
func AuditID(r *http.Request) string {
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		id, _ := repl.GetString("http.request.uuid")
		return id
	}
	return ""
}

// NewRecord starts the audit record of a cancel.
func NewRecord(r *http.Request, auditID string, x *Cancel) audit.Record {
	clientIP, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
	return audit.Record{
		AuditID:   auditID,
		Service:   x.Service,
		Method:    x.MethodID(),
		Operation: x.Operation,
		ClientIP:  clientIP,
		UserAgent: r.UserAgent(),
		Protocol:  x.Protocol,

		Reason:      x.Reason,
		UserProject: x.UserProject,
	}
}

// Receive writes the received record: to the journal, where it is on disk
// when Receive returns (an error means it is not, and the cancel must be
// refused), and to the log when configured.
func (c *Core) Receive(rec *audit.Record) error {
	return c.emit(rec, audit.StageReceived)
}

// Complete writes the completed record; it joins the journal's next group
// commit without holding up the response.
func (c *Core) Complete(rec *audit.Record, start time.Time) {
	rec.Duration = time.Since(start)
	if c.Count != nil {
		c.Count(rec)
	}
	_ = c.emit(rec, audit.StageCompleted)
}

// emit writes the record at the given stage to the journal, which holds
// both stages, and to the audit log if the stage is one of its configured
// stages. Sinks never see a credential: the record holds only a token hash
// prefix. The journal and the log report their own failures.
func (c *Core) emit(rec *audit.Record, stage audit.Stage) error {
	rec.Stage = stage
	var err error
	switch {
	case c.Journal == nil:
	case stage == audit.StageReceived:
		err = c.Journal.Write(rec)
	default:
		err = c.Journal.Append(rec)
	}
	if slices.Contains(c.Stages, stage) {
		_ = c.Sink.Write(rec)
	}
	return err
}

// Decide runs the pipeline's checks in Google's order (credentials,
// scope, request, policy, method) and returns the first denial, or nil
// when the cancel may go on. It fills in the record as it learns who is
// calling.
func (c *Core) Decide(ctx context.Context, x *Cancel, rec *audit.Record) *Denial {
	if x.Refusal != nil {
		return x.Refusal
	}
	if den := CredentialRefusal(x); den != nil {
		return den
	}
	token := x.Credential.Token
	info, err := c.verify(ctx, token)
	if info != nil && info.TokenID != "" {
		rec.TokenID = info.TokenID // the cache's, computed once per token
	} else {
		rec.TokenID = credential.TokenID(token)
	}
	if err != nil {
		if invalid, ok := errors.AsType[*credential.InvalidError](err); ok {
			return invalidToken(invalid.Reason)
		}
		if ctx.Err() != nil {
			// The client hung up: the verifier did nothing wrong, and an
			// outage warning now would cry wolf.
			return clientClosed()
		}
		warn := func() {
			c.Logger.Warn("token verifier unavailable; refusing cancels with 503 (logged at most every 10s)",
				zap.String("audit_id", rec.AuditID), zap.Error(err))
		}
		if c.OutageLog != nil {
			c.OutageLog.Do(warn)
		} else {
			warn()
		}
		return verifierUnavailable()
	}
	return c.Authorize(ctx, x, rec, info, nil)
}

// CredentialRefusal is the refusal of a cancel whose credential is
// missing, doubled or unreadable; nil when it carries one token.
func CredentialRefusal(x *Cancel) *Denial {
	switch err := x.CredentialErr; {
	case err == nil:
		return nil
	case errors.Is(err, credential.ErrMissing):
		return credentialsMissing(x.Credential.APIKeyOnly)
	case errors.Is(err, credential.ErrConflict):
		return badCredentials("Request carries more than one credential; send exactly one OAuth 2 access token.",
			"CREDENTIALS_CONFLICT")
	}
	return badCredentials("Request carries a credential that cannot be read unambiguously.",
		"CREDENTIALS_MALFORMED")
}

// Step is one check of the pipeline as `caddy lro-cancel explain` shows
// it: its name and what it found.
type Step struct{ Check, Outcome string }

// Trace is what Authorize found at each step, and every policy rule's
// value, for `caddy lro-cancel explain`.
type Trace struct {
	Steps  []Step
	Policy *policy.Decision // nil without a policy
}

func (t *Trace) step(check, outcome string) {
	if t != nil {
		t.Steps = append(t.Steps, Step{check, outcome})
	}
}

// Authorize runs the checks that follow a verified token: scope, body,
// policy, unlisted, limits, unimplemented. The running handler reaches it
// through Decide; `caddy lro-cancel explain` and `test` with the identity
// they are given, so that both decide with the same code. t, when not nil,
// gets every step's outcome and every policy rule's value, and the limits
// count nothing.
func (c *Core) Authorize(ctx context.Context, x *Cancel, rec *audit.Record, info *credential.Info, t *Trace) *Denial {
	rec.Principal = info.Principal()

	rec.ScopesAccepted = c.acceptedScopes(x)
	used, ok := info.HasScope(rec.ScopesAccepted)
	if !ok {
		t.step("scope", "none of the accepted scopes")
		return scopeInsufficient(rec.ScopesAccepted)
	}
	rec.ScopeUsed = used
	if t != nil {
		t.step("scope", "ok ("+cmp.Or(used, "any verified token")+")")
	}

	if x.Body != nil {
		t.step("body", x.Body.Description)
		return InvalidBody(x.Body)
	}
	t.step("body", "ok")

	var in *policy.Input // what the policy and the limits' keys see
	if c.Policy != nil || c.Limits != nil {
		in = policyInput(x, rec, info)
	}
	if c.Policy != nil {
		if den := c.applyPolicy(rec, in, t); den != nil {
			return den
		}
	}
	if x.Kind == catalog.Unlisted && c.Unlisted == UnlistedDeny {
		t.step("unlisted", "deny")
		return deniedUnlisted()
	}
	if c.Limits != nil {
		if den := c.applyLimits(ctx, rec, in, t); den != nil {
			return den
		}
	}
	if c.unimplemented(x.Service, x.Host) {
		t.step("action", "unimplemented")
		return unimplemented(x.Service)
	}
	t.step("action", "forward")
	return nil
}

// policyInput is what the policy's rules and the limits' keys see of a
// cancel.
func policyInput(x *Cancel, rec *audit.Record, info *credential.Info) *policy.Input {
	return &policy.Input{
		Principal: rec.Principal,
		Scopes:    info.Scopes,
		Claims:    info.Claims,
		Verifier:  info.Verifier,
		Time:      x.Time,
		ClientIP:  rec.ClientIP,
		Headers:   policyHeaders(x.Headers),
		Protocol:  x.Protocol,
		Service:   x.Service,
		Method:    rec.Method,
		Name:      x.Operation,

		Reason:      x.Reason,
		UserProject: x.UserProject,
	}
}

// applyPolicy evaluates the policy for the cancel and records what it
// decided, or, under dry_run, what it would have.
func (c *Core) applyPolicy(rec *audit.Record, in *policy.Input, t *Trace) *Denial {
	var d policy.Decision
	if t != nil {
		d = c.Policy.Explain(in)
		t.Policy = &d
	} else {
		d = c.Policy.Evaluate(in)
	}
	rec.PolicyRule, rec.PolicyEffect, rec.PolicyDryRun = d.Rule, d.Effect.String(), c.DryRun
	if d.Rule == "" {
		// Allowed with no allow rules: no rule decided.
		rec.PolicyEffect = ""
	}
	if d.Allowed || c.DryRun {
		if t != nil { // the step's text is built only for explain
			if d.Allowed {
				t.step("policy", "allow"+ruleSuffix(d.Rule))
			} else {
				t.step("policy", "would deny (rule "+d.Rule+"), dry run")
			}
		}
		return nil
	}
	if t != nil {
		t.step("policy", "deny (rule "+d.Rule+")")
	}
	return deniedByPolicy(d.Rule, rec)
}

func ruleSuffix(rule string) string {
	if rule == "" {
		return ""
	}
	return " (rule " + rule + ")"
}

// policyHeaders are the request's headers as the policy sees them:
// lower-case names, the first value, and never a credential.
func policyHeaders(h http.Header) map[string]string {
	m := make(map[string]string, len(h))
	for k, v := range h {
		k = strings.ToLower(k)
		switch k {
		case "authorization", "cookie", "x-goog-api-key", "proxy-authorization":
			continue
		}
		if len(v) > 0 {
			m[k] = v[0]
		}
	}
	return m
}

// verify sends a JWT-shaped token to the jwt verifier when one is
// configured, any other to tokeninfo or introspection.
func (c *Core) verify(ctx context.Context, token string) (*credential.Info, error) {
	if c.JWT != nil && credential.LooksLikeJWT(token) {
		return c.JWT.Verify(ctx, token)
	}
	return c.Opaque.Verify(ctx, token)
}

func (c *Core) acceptedScopes(x *Cancel) []string {
	if len(c.Scopes) > 0 {
		return c.Scopes
	}
	if x.Method != nil {
		return x.Method.Scopes
	}
	return nil
}

func (c *Core) unimplemented(service, host string) bool {
	return slices.ContainsFunc(c.Unimplemented, func(s string) bool {
		return s == "*" || s == service || s == host
	})
}

// placeholders serves {http.lro_cancel.*} from the request's record as it
// stands when a placeholder is evaluated: one provider instead of a value
// per key, and the principal and decision are always current.
func placeholders(rec *audit.Record) caddy.ReplacerFunc {
	return func(key string) (any, bool) {
		switch key {
		case "http.lro_cancel.operation":
			return rec.Operation, true
		case "http.lro_cancel.service":
			return rec.Service, true
		case "http.lro_cancel.method":
			return rec.Method, true
		case "http.lro_cancel.audit_id":
			return rec.AuditID, true
		case "http.lro_cancel.principal":
			return rec.Principal, true
		case "http.lro_cancel.decision":
			return string(rec.Decision), true
		case "http.lro_cancel.policy_rule":
			return rec.PolicyRule, true
		case "http.lro_cancel.limit_rule":
			return rec.LimitRule, true
		}
		return nil, false
	}
}
