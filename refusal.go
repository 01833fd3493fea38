package lrocancel

import (
	"net/http"
	"strings"

	"github.com/lro-cancel/lro_cancel/internal/audit"
	"github.com/lro-cancel/lro_cancel/internal/body"
	"github.com/lro-cancel/lro_cancel/internal/credential"
	"github.com/lro-cancel/lro_cancel/internal/googleerr"
)

// refusal is an answer the module writes itself instead of forwarding.
type refusal struct {
	decision        audit.Decision
	err             googleerr.Error
	wwwAuthenticate string
}

// gatewayDomain is the ErrorInfo domain of reasons this gateway adds;
// reasons Google's own front end uses keep Google's domain.
const gatewayDomain = "lro-cancel.gateway"

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

func credentialsMissing(apiKeyOnly bool) *refusal {
	msg := msgMissing
	if apiKeyOnly {
		msg = msgAPIKey
	}
	return &refusal{
		decision:        audit.Unauthenticated,
		err:             googleerr.Error{Code: http.StatusUnauthorized, Message: msg, Reason: "CREDENTIALS_MISSING"},
		wwwAuthenticate: bearerRealm,
	}
}

// gatewayRefusal is a refusal for a reason of this gateway's own, under
// its ErrorInfo domain.
func gatewayRefusal(decision audit.Decision, code int, reason, message string) *refusal {
	return &refusal{
		decision: decision,
		err:      googleerr.Error{Code: code, Message: message, Reason: reason, Domain: gatewayDomain},
	}
}

// badCredentials refuses credentials that are there but unusable: two
// different ones, or one that servers could read differently.
func badCredentials(message, reason string) *refusal {
	return gatewayRefusal(audit.Unauthenticated, http.StatusBadRequest, reason, message)
}

func invalidToken(reason credential.Reason) *refusal {
	r := "ACCESS_TOKEN_TYPE_UNSUPPORTED"
	if reason == credential.ReasonExpired {
		r = "ACCESS_TOKEN_EXPIRED"
	}
	return &refusal{
		decision:        audit.Unauthenticated,
		err:             googleerr.Error{Code: http.StatusUnauthorized, Message: msgInvalid, Reason: r},
		wwwAuthenticate: bearerRealm + `, error="invalid_token"`,
	}
}

func journalUnavailable() *refusal {
	return gatewayRefusal(audit.JournalUnavailable, http.StatusServiceUnavailable,
		"AUDIT_JOURNAL_UNAVAILABLE", msgUnavailable)
}

func verifierUnavailable() *refusal {
	return gatewayRefusal(audit.VerifierUnavailable, http.StatusServiceUnavailable,
		"TOKEN_VERIFIER_UNAVAILABLE", msgUnavailable)
}

func scopeInsufficient(accepted []string) *refusal {
	return &refusal{
		decision: audit.ScopeInsufficient,
		err: googleerr.Error{
			Code: http.StatusForbidden, Message: msgScope, Reason: "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
		},
		wwwAuthenticate: bearerRealm + `, error="insufficient_scope", scope="` + strings.Join(accepted, " ") + `"`,
	}
}

func invalidBody(v *body.Violation) *refusal {
	ref := gatewayRefusal(audit.InvalidBody, http.StatusBadRequest, "INVALID_CANCEL_BODY", v.Description)
	ref.err.FieldViolations = []googleerr.FieldViolation{{Field: v.Field, Description: v.Description}}
	return ref
}

func ambiguousPath() *refusal {
	return gatewayRefusal(audit.InvalidPath, http.StatusBadRequest, "AMBIGUOUS_PATH",
		"The request path is ambiguous: it holds a dot segment, an empty segment, "+
			"a backslash or a percent-encoded verb.")
}

func methodOverride() *refusal {
	return gatewayRefusal(audit.InvalidRequest, http.StatusBadRequest, "METHOD_OVERRIDE_REFUSED",
		"X-HTTP-Method-Override is not allowed on an operation cancel.")
}

func deniedUnlisted() *refusal {
	return gatewayRefusal(audit.DeniedUnlisted, http.StatusForbidden, "UNLISTED_CANCEL_DENIED",
		"This gateway denies cancels of operations of methods it does not list.")
}

func unimplemented(service string) *refusal {
	return gatewayRefusal(audit.Unimplemented, http.StatusNotImplemented, "CANCEL_UNIMPLEMENTED",
		"Operation cancel is not implemented for "+service+".")
}
