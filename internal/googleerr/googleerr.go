// Package googleerr writes Google's REST error envelope (the "error format v2"
// of https://cloud.google.com/apis/design/errors#http_mapping) so that Google's
// client libraries parse it: googleapi.CheckResponse yields a *googleapi.Error
// and apierror.FromError an *apierror.APIError with its ErrorInfo and
// BadRequest details.
//
// The envelope holds code, message, status and details, in that order.
// Google's front end sometimes adds a legacy "errors" array; it is left out
// because gax-go decodes the body with protojson, which rejects unknown
// fields and would then drop every detail.
package googleerr

import (
	"net/http"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// DefaultDomain is the ErrorInfo domain of errors raised by Google's own
// front end, used when an Error names none.
const DefaultDomain = "googleapis.com"

// FieldViolation is one entry of a google.rpc.BadRequest detail.
type FieldViolation struct {
	// Field is the JSON path of the offending request field; may be empty.
	Field string
	// Description says, for a human, what is wrong.
	Description string
	// Reason is an optional UPPER_SNAKE_CASE code for the violation.
	Reason string
}

// QuotaViolation is one entry of a google.rpc.QuotaFailure detail.
type QuotaViolation struct {
	// Subject names what ran out of quota, e.g. "rule:per-principal".
	Subject string
	// Description says, for a human, which quota and why.
	Description string
}

// Error is one refusal, written by Write as Google's REST error envelope.
type Error struct {
	// Code is the HTTP status; anything outside 400–599 is written as 500.
	Code int
	// Message is the human-readable summary.
	Message string
	// Reason and Domain form the google.rpc.ErrorInfo detail, written only
	// when Reason is set; Domain defaults to DefaultDomain.
	Reason, Domain string
	// Metadata is the ErrorInfo metadata (e.g. service, method), written
	// with its keys sorted.
	Metadata map[string]string
	// FieldViolations, when non-empty, form a google.rpc.BadRequest detail.
	FieldViolations []FieldViolation
	// QuotaViolations, when non-empty, form a google.rpc.QuotaFailure
	// detail.
	QuotaViolations []QuotaViolation
	// RetryDelay, when positive, forms a google.rpc.RetryInfo detail, in
	// whole seconds rounded up (as Retry-After says it).
	RetryDelay time.Duration
}

// RetrySeconds is a retry delay in whole seconds, rounded up: what both
// RetryInfo and the Retry-After header say, so that they agree.
func RetrySeconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}

// StatusFor returns the google.rpc.Code name for an HTTP status, following
// the "HTTP Mapping" comments of google/rpc/code.proto. Where code.proto maps
// several codes to one HTTP status, the choice is gax-go's when it turns an
// HTTP error into a gRPC status (400 INVALID_ARGUMENT, 409 ABORTED, 500
// INTERNAL), so that the envelope's status and the client's GRPCStatus()
// agree. Statuses code.proto does not name are UNKNOWN.
func StatusFor(code int) string {
	switch code {
	case http.StatusBadRequest:
		return "INVALID_ARGUMENT"
	case http.StatusUnauthorized:
		return "UNAUTHENTICATED"
	case http.StatusForbidden:
		return "PERMISSION_DENIED"
	case http.StatusNotFound:
		return "NOT_FOUND"
	case http.StatusConflict:
		return "ABORTED"
	case http.StatusTooManyRequests:
		return "RESOURCE_EXHAUSTED"
	case 499: // client closed request; net/http has no constant for it
		return "CANCELLED"
	case http.StatusInternalServerError:
		return "INTERNAL"
	case http.StatusNotImplemented:
		return "UNIMPLEMENTED"
	case http.StatusServiceUnavailable:
		return "UNAVAILABLE"
	case http.StatusGatewayTimeout:
		return "DEADLINE_EXCEEDED"
	}
	return "UNKNOWN"
}

// MarshalJSON returns the envelope exactly as Write sends it, without the
// final newline: indented by two spaces, as Google's front end writes it.
func (e *Error) MarshalJSON() ([]byte, error) {
	return e.appendEnvelope(make([]byte, 0, e.sizeHint())), nil
}

// Write sends e as the response: the status, Google's JSON content type,
// nosniff (the body echoes request data), and the envelope plus a newline.
// Headers already set on w, such as WWW-Authenticate, are kept.
func Write(w http.ResponseWriter, e *Error) {
	body := e.appendEnvelope(make([]byte, 0, e.sizeHint()+1))
	body = append(body, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=UTF-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(e.code())
	// The client may be gone; there is no one left to tell.
	_, _ = w.Write(body)
}

func (e *Error) code() int {
	if e.Code < 400 || e.Code > 599 {
		return http.StatusInternalServerError
	}
	return e.Code
}

// sizeHint estimates the envelope's length so that it is built in one
// allocation in the common case.
func (e *Error) sizeHint() int {
	n := 160 + len(e.Message)
	if e.Reason != "" {
		n += 160 + len(e.Reason) + len(e.Domain)
		for k, v := range e.Metadata {
			n += 20 + len(k) + len(v)
		}
	}
	n += 160 * len(e.QuotaViolations)
	if len(e.FieldViolations) > 0 {
		n += 120
		for _, v := range e.FieldViolations {
			n += 100 + len(v.Field) + len(v.Description) + len(v.Reason)
		}
	}
	return n
}

func (e *Error) appendEnvelope(b []byte) []byte {
	code := e.code()
	b = append(b, "{\n  \"error\": {\n    \"code\": "...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ",\n    \"message\": "...)
	b = appendString(b, e.Message)
	b = append(b, ",\n    \"status\": \""...)
	b = append(b, StatusFor(code)...)
	b = append(b, '"')
	hasInfo, hasBadRequest := e.Reason != "", len(e.FieldViolations) > 0
	hasQuota, hasRetry := len(e.QuotaViolations) > 0, e.RetryDelay > 0
	if hasInfo || hasBadRequest || hasQuota || hasRetry {
		b = append(b, ",\n    \"details\": ["...)
		first := true
		sep := func(b []byte) []byte {
			if !first {
				b = append(b, ',')
			}
			first = false
			return b
		}
		if hasInfo {
			b = e.appendErrorInfo(sep(b))
		}
		if hasBadRequest {
			b = e.appendBadRequest(sep(b))
		}
		if hasQuota {
			b = e.appendQuotaFailure(sep(b))
		}
		if hasRetry {
			b = append(sep(b), "\n      {\n        \"@type\": \"type.googleapis.com/google.rpc.RetryInfo\",\n        \"retryDelay\": \""...)
			b = strconv.AppendInt(b, RetrySeconds(e.RetryDelay), 10)
			b = append(b, "s\"\n      }"...)
		}
		b = append(b, "\n    ]"...)
	}
	return append(b, "\n  }\n}"...)
}

func (e *Error) appendErrorInfo(b []byte) []byte {
	b = append(b, "\n      {\n        \"@type\": \"type.googleapis.com/google.rpc.ErrorInfo\",\n        \"reason\": "...)
	b = appendString(b, e.Reason)
	b = append(b, ",\n        \"domain\": "...)
	domain := e.Domain
	if domain == "" {
		domain = DefaultDomain
	}
	b = appendString(b, domain)
	if len(e.Metadata) > 0 {
		b = append(b, ",\n        \"metadata\": {"...)
		var small [8]string // metadata has a few keys; sort them without allocating
		for i, k := range appendSortedKeys(small[:0], e.Metadata) {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, "\n          "...)
			b = appendString(b, k)
			b = append(b, ": "...)
			b = appendString(b, e.Metadata[k])
		}
		b = append(b, "\n        }"...)
	}
	return append(b, "\n      }"...)
}

func (e *Error) appendBadRequest(b []byte) []byte {
	b = append(b, "\n      {\n        \"@type\": \"type.googleapis.com/google.rpc.BadRequest\",\n        \"fieldViolations\": ["...)
	for i, v := range e.FieldViolations {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, "\n          {\n            \"field\": "...)
		b = appendString(b, v.Field)
		b = append(b, ",\n            \"description\": "...)
		b = appendString(b, v.Description)
		if v.Reason != "" {
			b = append(b, ",\n            \"reason\": "...)
			b = appendString(b, v.Reason)
		}
		b = append(b, "\n          }"...)
	}
	return append(b, "\n        ]\n      }"...)
}

func (e *Error) appendQuotaFailure(b []byte) []byte {
	b = append(b, "\n      {\n        \"@type\": \"type.googleapis.com/google.rpc.QuotaFailure\",\n        \"violations\": ["...)
	for i, v := range e.QuotaViolations {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, "\n          {\n            \"subject\": "...)
		b = appendString(b, v.Subject)
		b = append(b, ",\n            \"description\": "...)
		b = appendString(b, v.Description)
		b = append(b, "\n          }"...)
	}
	return append(b, "\n        ]\n      }"...)
}

func appendSortedKeys(keys []string, m map[string]string) []string {
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

const hex = "0123456789abcdef"

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD, and
// <, >, & and U+2028/U+2029 are escaped as encoding/json does, so that text
// taken from a request cannot be read as markup or break a JavaScript parser.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
