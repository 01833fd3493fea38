package govern

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/lro-cancel/lro_cancel/internal/audit"
	"github.com/lro-cancel/lro_cancel/internal/body"
	"github.com/lro-cancel/lro_cancel/internal/credential"
	"github.com/lro-cancel/lro_cancel/internal/googleerr"
)

// Denial is a refusal decided by the pipeline, independent of the wire it
// is written on: a google.rpc.Code, Google's ErrorInfo reason and domain,
// an optional google.rpc.BadRequest, and the audit decision. Each door
// writes it in its caller's encoding (REST's JSON envelope, gRPC status).
type Denial struct {
	Decision audit.Decision
	Code     codes.Code
	Message  string
	// Reason and Domain form the google.rpc.ErrorInfo detail; Domain ""
	// means Google's own (googleerr.DefaultDomain).
	Reason, Domain string
	// Metadata is the ErrorInfo metadata; Refusal fills in service and
	// method.
	Metadata        map[string]string
	FieldViolations []googleerr.FieldViolation
	// WWWAuthenticate is the challenge an HTTP-family door sends.
	WWWAuthenticate string
	// QuotaViolations form a google.rpc.QuotaFailure detail, RetryDelay
	// (when positive) a google.rpc.RetryInfo and the Retry-After header.
	QuotaViolations []googleerr.QuotaViolation
	RetryDelay      time.Duration
}

// SetChallenge sets the denial's WWW-Authenticate challenge and its
// Retry-After, if it has them, on a response's header: every door's
// refusal carries them.
func (d *Denial) SetChallenge(h http.Header) {
	if d.WWWAuthenticate != "" {
		h.Set("WWW-Authenticate", d.WWWAuthenticate)
	}
	if d.RetryDelay > 0 {
		h.Set("Retry-After", strconv.FormatInt(googleerr.RetrySeconds(d.RetryDelay), 10))
	}
}

// HTTPStatus is the HTTP status of the denial's code (google/rpc/code.proto's
// "HTTP Mapping").
func (d *Denial) HTTPStatus() int { return HTTPStatus(d.Code) }

// HTTPStatus maps a google.rpc.Code to its HTTP status.
func HTTPStatus(c codes.Code) int {
	switch c {
	case codes.OK:
		return http.StatusOK
	case codes.Canceled:
		return 499
	case codes.InvalidArgument, codes.FailedPrecondition, codes.OutOfRange:
		return http.StatusBadRequest
	case codes.DeadlineExceeded:
		return http.StatusGatewayTimeout
	case codes.NotFound:
		return http.StatusNotFound
	case codes.AlreadyExists, codes.Aborted:
		return http.StatusConflict
	case codes.PermissionDenied:
		return http.StatusForbidden
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	case codes.ResourceExhausted:
		return http.StatusTooManyRequests
	case codes.Unimplemented:
		return http.StatusNotImplemented
	case codes.Unavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// Envelope is the denial as Google's REST error envelope.
func (d *Denial) Envelope() *googleerr.Error {
	return &googleerr.Error{
		Code:            d.HTTPStatus(),
		Message:         d.Message,
		Reason:          d.Reason,
		Domain:          d.Domain,
		Metadata:        d.Metadata,
		FieldViolations: d.FieldViolations,
		QuotaViolations: d.QuotaViolations,
		RetryDelay:      d.RetryDelay,
	}
}

// GatewayDomain is the ErrorInfo domain of reasons this gateway adds;
// reasons Google's own front end uses keep Google's domain.
const GatewayDomain = "lro-cancel.gateway"

const bearerRealm = `Bearer realm="https://accounts.google.com/"`

// Google's own wording, so that callers see what they would see from Google.
const (
	msgMissing = "Request is missing required authentication credential. Expected OAuth 2 access token, " +
		"login cookie or other valid authentication credential. " +
		"See https://developers.google.com/identity/sign-in/web/devconsole-project."
	msgAPIKey = "API keys are not supported by this API. Expected OAuth2 access token or other " +
		"authentication credentials that assert a principal. See https://cloud.google.com/docs/authentication"
	msgInvalid = "Request had invalid authentication credentials. Expected OAuth 2 access token, " +
		"login cookie or other valid authentication credential. " +
		"See https://developers.google.com/identity/sign-in/web/devconsole-project."
	msgScope       = "Request had insufficient authentication scopes."
	msgUnavailable = "The service is currently unavailable."
)

// gatewayDenial is a denial for a reason of this gateway's own, under its
// ErrorInfo domain.
func gatewayDenial(decision audit.Decision, code codes.Code, reason, message string) *Denial {
	return &Denial{Decision: decision, Code: code, Message: message, Reason: reason, Domain: GatewayDomain}
}

func credentialsMissing(apiKeyOnly bool) *Denial {
	msg := msgMissing
	if apiKeyOnly {
		msg = msgAPIKey
	}
	return &Denial{
		Decision: audit.Unauthenticated, Code: codes.Unauthenticated, Message: msg,
		Reason: "CREDENTIALS_MISSING", WWWAuthenticate: bearerRealm,
	}
}

// badCredentials refuses credentials that are there but unusable: two
// different ones, or one that servers could read differently.
func badCredentials(message, reason string) *Denial {
	return gatewayDenial(audit.Unauthenticated, codes.InvalidArgument, reason, message)
}

func invalidToken(reason credential.Reason) *Denial {
	r := "ACCESS_TOKEN_TYPE_UNSUPPORTED"
	if reason == credential.ReasonExpired {
		r = "ACCESS_TOKEN_EXPIRED"
	}
	return &Denial{
		Decision: audit.Unauthenticated, Code: codes.Unauthenticated, Message: msgInvalid,
		Reason: r, WWWAuthenticate: bearerRealm + `, error="invalid_token"`,
	}
}

// JournalUnavailable refuses a cancel whose received record could not be
// made durable.
func JournalUnavailable() *Denial {
	return gatewayDenial(audit.JournalUnavailable, codes.Unavailable, "AUDIT_JOURNAL_UNAVAILABLE", msgUnavailable)
}

// clientClosed is the record of a cancel whose client went away before
// it was decided; nobody reads the answer.
func clientClosed() *Denial {
	return gatewayDenial(audit.ClientClosed, codes.Canceled, "CLIENT_CLOSED_REQUEST", "The client closed the request.")
}

func verifierUnavailable() *Denial {
	return gatewayDenial(audit.VerifierUnavailable, codes.Unavailable, "TOKEN_VERIFIER_UNAVAILABLE", msgUnavailable)
}

func scopeInsufficient(accepted []string) *Denial {
	return &Denial{
		Decision: audit.ScopeInsufficient, Code: codes.PermissionDenied, Message: msgScope,
		Reason:          "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
		WWWAuthenticate: bearerRealm + `, error="insufficient_scope", scope="` + strings.Join(accepted, " ") + `"`,
	}
}

// InvalidBody refuses a request message that is not the empty (or
// field-restricted) message the method defines.
func InvalidBody(v *body.Violation) *Denial {
	d := gatewayDenial(audit.InvalidBody, codes.InvalidArgument, "INVALID_CANCEL_BODY", v.Description)
	d.FieldViolations = []googleerr.FieldViolation{{Field: v.Field, Description: v.Description}}
	return d
}

// AmbiguousPath refuses a would-be cancel whose path servers could read
// differently.
func AmbiguousPath() *Denial {
	return gatewayDenial(audit.InvalidPath, codes.InvalidArgument, "AMBIGUOUS_PATH",
		"The request path is ambiguous: it holds a dot segment, an empty segment, "+
			"a backslash or a percent-encoded verb.")
}

// MethodOverride refuses a cancel that carries an HTTP method override.
func MethodOverride() *Denial {
	return gatewayDenial(audit.InvalidRequest, codes.InvalidArgument, "METHOD_OVERRIDE_REFUSED",
		"A method override (X-HTTP-Method-Override, X-HTTP-Method, X-Method-Override) is not allowed on an operation cancel.")
}

// AmbiguousRequest refuses a request that Google's front end could read
// two ways, one of them a cancel or a batch; why says how, in Google's
// tone, without quoting the request.
func AmbiguousRequest(why string) *Denial {
	return gatewayDenial(audit.AmbiguousRequest, codes.InvalidArgument, "AMBIGUOUS_REQUEST",
		"The request can be read in more than one way, one of them an operation cancel. "+why)
}

// InvalidRequest refuses a request the gateway cannot read for certain in
// its door's wire format (framing, content type, query).
func InvalidRequest(reason, message string) *Denial {
	return gatewayDenial(audit.InvalidRequest, codes.InvalidArgument, reason, message)
}

func deniedUnlisted() *Denial {
	return gatewayDenial(audit.DeniedUnlisted, codes.PermissionDenied, "UNLISTED_CANCEL_DENIED",
		"This gateway denies cancels of operations of methods it does not list.")
}

func unimplemented(service string) *Denial {
	return gatewayDenial(audit.Unimplemented, codes.Unimplemented, "CANCEL_UNIMPLEMENTED",
		"Operation cancel is not implemented for "+service+".")
}

// Status is the denial as a google.rpc.Status: the same code, message,
// ErrorInfo and BadRequest the REST envelope carries, for the gRPC-family
// doors (grpc-status-details-bin, $rpc's x-protobuf body).
func (d *Denial) Status() *spb.Status {
	st := &spb.Status{Code: int32(d.Code), Message: d.Message}
	if d.Reason != "" {
		domain := d.Domain
		if domain == "" {
			domain = googleerr.DefaultDomain
		}
		if a, err := anypb.New(&errdetails.ErrorInfo{Reason: d.Reason, Domain: domain, Metadata: d.Metadata}); err == nil {
			st.Details = append(st.Details, a)
		}
	}
	if len(d.FieldViolations) > 0 {
		br := &errdetails.BadRequest{}
		for _, v := range d.FieldViolations {
			br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{
				Field: v.Field, Description: v.Description, Reason: v.Reason,
			})
		}
		if a, err := anypb.New(br); err == nil {
			st.Details = append(st.Details, a)
		}
	}
	if len(d.QuotaViolations) > 0 {
		qf := &errdetails.QuotaFailure{}
		for _, v := range d.QuotaViolations {
			qf.Violations = append(qf.Violations, &errdetails.QuotaFailure_Violation{Subject: v.Subject, Description: v.Description})
		}
		if a, err := anypb.New(qf); err == nil {
			st.Details = append(st.Details, a)
		}
	}
	if d.RetryDelay > 0 {
		delay := time.Duration(googleerr.RetrySeconds(d.RetryDelay)) * time.Second
		if a, err := anypb.New(&errdetails.RetryInfo{RetryDelay: durationpb.New(delay)}); err == nil {
			st.Details = append(st.Details, a)
		}
	}
	return st
}

// CodeForHTTP is the google.rpc.Code of an HTTP status: OK for 2xx, else
// googleerr.StatusFor's reading of code.proto's "HTTP Mapping".
func CodeForHTTP(status int) codes.Code {
	if status >= 200 && status < 300 {
		return codes.OK
	}
	return codes.Code(code.Code_value[googleerr.StatusFor(status)])
}

func deniedByPolicy(rule string, rec *audit.Record) *Denial {
	d := gatewayDenial(audit.DeniedByPolicy, codes.PermissionDenied, "CANCEL_DENIED_BY_POLICY",
		"This gateway's egress policy does not allow this principal to cancel this operation.")
	d.Metadata = map[string]string{"rule": rule, "service": rec.Service, "method": rec.Method, "audit_id": rec.AuditID}
	return d
}

// rateLimited refuses a cancel over a limit rule's quota; retry is the
// time until the quota frees a slot (0 when unknown: the key erred).
func rateLimited(rule string, count int, window, retry time.Duration, rec *audit.Record) *Denial {
	d := gatewayDenial(audit.RateLimited, codes.ResourceExhausted, "CANCEL_RATE_LIMITED",
		"Quota exceeded: this gateway's cancel limit "+rule+" is used up; retry later.")
	d.Metadata = map[string]string{"rule": rule, "service": rec.Service, "method": rec.Method, "audit_id": rec.AuditID}
	d.QuotaViolations = []googleerr.QuotaViolation{{
		Subject:     "rule:" + rule,
		Description: "at most " + strconv.Itoa(count) + " cancels per " + window.String() + " under limit " + rule,
	}}
	d.RetryDelay = retry
	return d
}

func limitStoreUnavailable() *Denial {
	return gatewayDenial(audit.LimitStoreUnavailable, codes.Unavailable, "LIMIT_STORE_UNAVAILABLE", msgUnavailable)
}
