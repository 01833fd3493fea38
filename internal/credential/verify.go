package credential

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DefaultTimeout bounds one call to a verifier endpoint when none is set.
const DefaultTimeout = 5 * time.Second

// maxAnswer is the most of a verifier's answer that is read.
const maxAnswer = 64 << 10

// The names a verifier gives itself in Info.Verifier, as policy rules see
// them in request.auth.verifier.
const (
	VerifierTokenInfo     = "tokeninfo"
	VerifierIntrospection = "introspection"
	VerifierJWT           = "jwt"
)

// Info is what a verifier learnt about a valid token. Values handed out by
// a Cache are shared between requests and must be treated as read-only:
// that includes Scopes and Claims, and every map and slice inside Claims.
type Info struct {
	// Subject is the stable id of the principal (sub).
	Subject string
	// Email is the principal's email address, when the verifier gives one
	// (tokeninfo drops an address it marks unverified).
	Email string
	// Audience is the token's audience; several are space-separated.
	Audience string
	// ClientID is the OAuth client the token was issued to.
	ClientID string
	// Scopes are the scopes the token holds.
	Scopes []string
	// Expiry is when the token expires; zero when the verifier did not say.
	Expiry time.Time
	// Claims is everything the verifier said of the token, JSON-decoded
	// (string, float64, bool, []any, map[string]any, nil): the jwt
	// verifier's verified payload claims, or the top-level fields of a
	// tokeninfo or introspection answer as the answer gives them (tokeninfo
	// quotes its numbers and booleans: "exp": "1735693200" stays a string).
	// It never holds the token: any field whose key or value contains it
	// is dropped (see dropToken). Its size is bounded by the answer's, 64
	// KiB (16 KiB for a JWT). Claims is shared with every request a Cache
	// answers with this Info and must not be modified; copy it to change
	// it.
	Claims map[string]any
	// Verifier names who verified the token: VerifierTokenInfo,
	// VerifierIntrospection or VerifierJWT.
	Verifier string
	// TokenID is TokenID(token), set by a Cache so that a cached token's
	// records do not hash it again; "" from a bare verifier.
	TokenID string
}

// Principal names who acts with the token, for audit records: the email,
// else the subject, else (a token with neither, such as a client-credentials
// grant) the client id.
func (i *Info) Principal() string {
	switch {
	case i.Email != "":
		return i.Email
	case i.Subject != "":
		return i.Subject
	}
	return i.ClientID
}

// HasScope returns the first of accepted that the token holds, compared
// exactly. An empty accepted list admits any token: ("", true).
func (i *Info) HasScope(accepted []string) (string, bool) {
	if len(accepted) == 0 {
		return "", true
	}
	for _, a := range accepted {
		for _, s := range i.Scopes {
			if s == a {
				return a, true
			}
		}
	}
	return "", false
}

// Reason says why a token was rejected.
type Reason uint8

const (
	// ReasonInvalid is any rejection but expiry (Google's reason
	// ACCESS_TOKEN_TYPE_UNSUPPORTED).
	ReasonInvalid Reason = iota
	// ReasonExpired means the token has expired (ACCESS_TOKEN_EXPIRED).
	ReasonExpired
)

// String returns the google.rpc.ErrorInfo reason Google gives for r.
func (r Reason) String() string {
	if r == ReasonExpired {
		return "ACCESS_TOKEN_EXPIRED"
	}
	return "ACCESS_TOKEN_TYPE_UNSUPPORTED"
}

// InvalidError means the verifier rejected the token: the caller's fault,
// answered with 401. Its message never holds the token.
type InvalidError struct {
	// Reason classifies the rejection.
	Reason Reason
	// Detail says what the verifier answered, for operators.
	Detail string
}

// Error implements error.
func (e *InvalidError) Error() string {
	msg := "access token rejected"
	if e.Reason == ReasonExpired {
		msg = "access token expired"
	}
	if e.Detail == "" {
		return msg
	}
	return msg + ": " + e.Detail
}

// ErrUnavailable means the token could not be verified: the verifier is
// unreachable, timed out, failed or answered something unreadable. The
// request must be refused (503), never forwarded. Errors wrapping it say
// more, never the token.
var ErrUnavailable = errors.New("token verifier unavailable")

// Verifier checks an access token. It returns an *InvalidError (possibly
// wrapped) for a token it rejects, and an error wrapping ErrUnavailable
// when it cannot tell.
type Verifier interface {
	Verify(ctx context.Context, token string) (*Info, error)
}

// post sends a form to a verifier endpoint, within timeout, and returns the
// answer's status and body. Redirects are not followed: a 307 could carry
// the token to another host.
func post(ctx context.Context, client *http.Client, timeout time.Duration, endpoint, form string, header http.Header) (int, []byte, error) {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form))
	if err != nil {
		return 0, nil, fmt.Errorf("build request: %w", err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := noRedirects(client).Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return 0, nil, fmt.Errorf("read answer: %w", err)
	}
	if len(body) > maxAnswer {
		return 0, nil, fmt.Errorf("answer exceeds %d bytes", maxAnswer)
	}
	return resp.StatusCode, body, nil
}

// noRedirects returns a copy of client (http.DefaultClient when nil) that
// does not follow redirects: a 307 could carry a token to another host, a
// redirect could lead from https to a key set anyone can serve.
func noRedirects(client *http.Client) *http.Client {
	if client == nil {
		client = http.DefaultClient
	}
	c := *client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// expired refuses an answer whose expiry has passed; source names who gave
// it, for the error's detail. A zero expiry is not expired.
func expired(info *Info, now time.Time, source string) error {
	if info.Expiry.IsZero() || info.Expiry.After(now) {
		return nil
	}
	return &InvalidError{Reason: ReasonExpired, Detail: source + " gives expiry " + info.Expiry.UTC().Format(time.RFC3339)}
}

// decodeObject decodes a verifier's JSON object answer. A body that is not
// an object (null, an array) is an error, not an empty answer.
func decodeObject(body []byte, v any) error {
	if b := bytes.TrimLeft(body, " \t\r\n"); len(b) == 0 || b[0] != '{' {
		return errors.New("answer is not a JSON object")
	}
	return json.Unmarshal(body, v)
}

// decodeClaims decodes an answer already decoded into its typed struct
// (so a JSON object) as claims, and drops what holds token.
func decodeClaims(body []byte, token string) (map[string]any, error) {
	var claims map[string]any
	if err := json.Unmarshal(body, &claims); err != nil {
		return nil, err
	}
	dropToken(claims, token)
	return claims, nil
}

// dropToken removes from claims, in place, every entry whose key or value
// holds token, or its query-escaped form, anywhere inside: a verifier
// should never echo the token, and claims reach policy rules, explanations
// and perhaps logs. A string holds the token when it contains it; an array
// holding it anywhere is dropped whole (so no index shifts), while a nested
// object only loses its own entries that hold it.
func dropToken(claims map[string]any, token string) {
	if token == "" {
		return
	}
	escaped := url.QueryEscape(token)
	if escaped == token {
		escaped = ""
	}
	clean(claims, token, escaped)
}

// clean drops from v's objects the entries that hold token or escaped (when
// not empty), and reports whether what remains of v still holds either.
func clean(v any, token, escaped string) bool {
	switch v := v.(type) {
	case string:
		return holdsToken(v, token, escaped)
	case map[string]any:
		for k, e := range v {
			if holdsToken(k, token, escaped) || clean(e, token, escaped) {
				delete(v, k)
			}
		}
	case []any:
		for _, e := range v {
			if clean(e, token, escaped) {
				return true
			}
		}
	}
	return false
}

// holdsToken reports whether s contains token or escaped (when not empty).
func holdsToken(s, token, escaped string) bool {
	return strings.Contains(s, token) || escaped != "" && strings.Contains(s, escaped)
}

// redact makes foreign text (a verifier's answer, a panic value) fit for an
// error message: visible ASCII and spaces, at most 128 bytes, and never the
// token, which a careless verifier might echo.
func redact(s, token string) string {
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r > '~' {
			return -1
		}
		return r
	}, s)
	if token != "" {
		s = strings.ReplaceAll(s, token, "[token]")
		s = strings.ReplaceAll(s, url.QueryEscape(token), "[token]")
	}
	if len(s) > 128 {
		s = s[:128]
	}
	return s
}

// number is a JSON integer that may arrive as a string: Google's tokeninfo
// quotes its numbers.
type number int64

// UnmarshalJSON implements json.Unmarshaler.
func (n *number) UnmarshalJSON(b []byte) error {
	s := string(b)
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		// Not wrapped: strconv would quote the value, whatever it holds.
		return errors.New("expected an integer")
	}
	*n = number(v)
	return nil
}

// boolean is a JSON boolean that may arrive as the string "true" or "false".
type boolean bool

// UnmarshalJSON implements json.Unmarshaler.
func (v *boolean) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case "true", `"true"`:
		*v = true
	case "false", `"false"`:
		*v = false
	default:
		return errors.New("expected a boolean")
	}
	return nil
}

// unixTime converts seconds since the epoch; nil stays the zero time.
func unixTime(n *number) time.Time {
	if n == nil {
		return time.Time{}
	}
	return time.Unix(int64(*n), 0)
}
