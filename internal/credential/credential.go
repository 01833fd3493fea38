// Package credential finds the caller's OAuth access token in a request,
// verifies it against Google's tokeninfo endpoint, an RFC 7662
// introspection endpoint or, for JWT access tokens, locally against a JWKS
// (JWT), and caches the verdicts by the token's SHA-256.
//
// Nothing in this package puts a token in an error, a log line or a cache
// key: callers may print every error it returns.
package credential

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

var (
	// ErrMissing means the request carries no OAuth credential. When it
	// carries an API key instead, Credential.APIKeyOnly is set as well.
	ErrMissing = errors.New("no OAuth credential in request")
	// ErrConflict means the request carries two different credentials, so
	// which one the upstream would honour is ambiguous.
	ErrConflict = errors.New("request carries two different credentials")
	// ErrMalformed means a credential cannot be read unambiguously: a query
	// credential with an invalid percent-escape, one sharing its pair with
	// a ';' (servers disagree on whether ';' separates parameters), or a
	// token holding bytes other than visible ASCII. Like ErrConflict it is
	// the client's fault (400).
	ErrMalformed = errors.New("malformed credential")
)

// Source says where a credential was found.
type Source uint8

const (
	// SourceHeader is the Authorization header.
	SourceHeader Source = iota
	// SourceQuery means the query names a credential parameter (possibly
	// repeating the header's token): the URL must be scrubbed with
	// MoveToHeader or Scrub before anything downstream sees it.
	SourceQuery
)

// Credential is the OAuth access token a request carries.
type Credential struct {
	// Token is the access token; empty when Extract fails.
	Token string
	// Source is where the token was found.
	Source Source
	// APIKeyOnly is set with ErrMissing when the request carries an API key
	// (the key parameter or X-Goog-Api-Key) and no OAuth credential.
	APIKeyOnly bool
	// QueryAPIKey is the decoded key query parameter, which Scrub removes
	// from the URL: the caller may carry it on in X-Goog-Api-Key.
	QueryAPIKey string
}

// The query parameters Google accepts an access token in (each also as
// "$access_token" and so on).
var tokenParams = [...]string{"access_token", "oauth_token", "bearer_token"}

// Extract returns the OAuth access token of r, from the Authorization
// header (scheme Bearer, case-insensitive) or the query parameters
// access_token, oauth_token and bearer_token. The same token given in
// several places is one credential; two different ones are ErrConflict.
// Empty values count as absent; a non-Bearer Authorization header (Basic…)
// is not an OAuth credential. Source says whether the query must be
// scrubbed; after an error, call Scrub anyway before r is logged.
//
// The query is scanned as written rather than through r.URL.Query, so a
// malformed query neither panics nor hides a credential: a pair whose name
// has an invalid percent-escape is not a credential parameter (no decoder
// reads it as one), while a credential parameter whose value cannot be
// decoded is ErrMalformed, and so is a credential sharing its '&'-pair with
// a ';', since servers disagree on whether ';' separates parameters.
//
// The returned token aliases the request's header or query where it can:
// the header-only path does not allocate.
func Extract(r *http.Request) (Credential, error) {
	var c Credential
	if auth := r.Header["Authorization"]; len(auth) > 0 {
		for _, v := range auth[1:] {
			if v != auth[0] {
				return Credential{}, fmt.Errorf("%w: several Authorization headers with different values", ErrConflict)
			}
		}
		tok, err := bearerToken(auth[0])
		if err != nil {
			return Credential{}, err
		}
		c.Token = tok
	}
	queryKey := false
	if r.URL != nil {
		for q := r.URL.RawQuery; q != ""; {
			var pair string
			pair, q, _ = strings.Cut(q, "&")
			name, value, err := queryCredential(pair)
			if err != nil {
				return Credential{}, err
			}
			switch {
			case name == "":
			case name == "key":
				queryKey = queryKey || value != ""
				if value != "" {
					c.QueryAPIKey = value
				}
			case value == "":
				c.Source = SourceQuery
			case c.Token == "" || c.Token == value:
				c.Source = SourceQuery
				c.Token = value
			default:
				return Credential{}, fmt.Errorf("%w: query parameter %s differs from another credential", ErrConflict, name)
			}
		}
	}
	if c.Token == "" {
		c.APIKeyOnly = queryKey || r.Header.Get("X-Goog-Api-Key") != ""
		return c, ErrMissing
	}
	return c, nil
}

// bearerToken returns the token of an Authorization header value, or ""
// when the scheme is not Bearer or the token is empty.
func bearerToken(v string) (string, error) {
	i := strings.IndexAny(v, " \t")
	if i < 0 || !strings.EqualFold(v[:i], "Bearer") {
		return "", nil
	}
	tok := strings.Trim(v[i:], " \t")
	if tok != "" && !visibleASCII(tok) {
		return "", fmt.Errorf("%w: Authorization header token holds spaces or non-ASCII bytes", ErrMalformed)
	}
	return tok, nil
}

// queryCredential reads one '&'-separated pair of a raw query. For a
// credential parameter or "key" it returns the decoded name and value;
// for any other pair, an empty name.
func queryCredential(pair string) (name, value string, err error) {
	if strings.IndexByte(pair, ';') >= 0 {
		if carriesToken(pair) {
			return "", "", fmt.Errorf("%w: credential parameter shares its pair with a ';'", ErrMalformed)
		}
		return "", "", nil
	}
	rawName, rawValue, _ := strings.Cut(pair, "=")
	name, ok := unescape(rawName)
	switch {
	case !ok:
		return "", "", nil
	case !IsParam(name):
		return "", "", nil
	}
	name = strings.TrimPrefix(name, "$")
	value, ok = unescape(rawValue)
	if !ok {
		return "", "", fmt.Errorf("%w: invalid percent-escape in query parameter %s", ErrMalformed, name)
	}
	if value != "" && !visibleASCII(value) {
		return "", "", fmt.Errorf("%w: query parameter %s holds spaces or non-ASCII bytes", ErrMalformed, name)
	}
	return name, value, nil
}

// carriesToken reports whether a raw query pair, split on ';' as some
// servers do, names a credential parameter or an API key.
func carriesToken(pair string) bool {
	for pair != "" {
		var part string
		part, pair, _ = strings.Cut(pair, ";")
		rawName, _, _ := strings.Cut(part, "=")
		if name, ok := unescape(rawName); ok && IsParam(name) {
			return true
		}
	}
	return false
}

// unescape decodes a query component, allocating only when it holds an
// escape.
func unescape(s string) (string, bool) {
	if !strings.ContainsAny(s, "%+") {
		return s, true
	}
	u, err := url.QueryUnescape(s)
	return u, err == nil
}

// IsParam reports whether a (decoded) query parameter carries a credential
// that no URL may keep: an access token or an API key, also in the
// "$"-prefixed form Google's front end reads system parameters in.
func IsParam(name string) bool {
	name = strings.TrimPrefix(name, "$")
	return name == "key" || isTokenParam(name)
}

func isTokenParam(name string) bool {
	for _, p := range tokenParams {
		if name == p {
			return true
		}
	}
	return false
}

// visibleASCII reports whether s can be a bearer token: RFC 6750 tokens
// are visible ASCII, and anything else could not be moved into a header.
func visibleASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// Take returns r's OAuth credential, as Extract does, and leaves no
// credential in r's URL for anything downstream (upstream, access log): a
// query token moves into the Authorization header, a query API key into
// X-Goog-Api-Key (unless one is there), anything unreadable is deleted.
func Take(r *http.Request) (Credential, error) {
	cred, err := Extract(r)
	if cred.QueryAPIKey != "" && r.Header.Get("X-Goog-Api-Key") == "" {
		r.Header.Set("X-Goog-Api-Key", cred.QueryAPIKey)
	}
	if err == nil && cred.Source == SourceQuery {
		MoveToHeader(r, cred.Token)
	} else {
		Scrub(r)
	}
	return cred, err
}

// MoveToHeader sets r's Authorization header to "Bearer <token>" and
// deletes the credential parameters from the URL (see Scrub).
func MoveToHeader(r *http.Request, token string) {
	if r.Header == nil {
		r.Header = make(http.Header)
	}
	r.Header.Set("Authorization", "Bearer "+token)
	Scrub(r)
}

// Scrub deletes every access_token, oauth_token, bearer_token and key pair
// (including a pair that hides one behind a ';') from r.URL.RawQuery and
// r.RequestURI, which Caddy's access log reads. Every other pair keeps its
// order and exact bytes: the query is edited, never re-encoded.
func Scrub(r *http.Request) {
	if r.URL != nil {
		if q, changed := withoutTokens(r.URL.RawQuery); changed {
			r.URL.RawQuery = q
			if q == "" {
				r.URL.ForceQuery = false
			}
		}
	}
	if path, query, ok := strings.Cut(r.RequestURI, "?"); ok {
		if q, changed := withoutTokens(query); changed {
			if q == "" {
				r.RequestURI = path
			} else {
				r.RequestURI = path + "?" + q
			}
		}
	}
}

// withoutTokens returns the raw query without its credential pairs.
func withoutTokens(query string) (string, bool) {
	var b strings.Builder
	changed, first := false, true
	for rest := query; rest != ""; {
		var pair string
		pair, rest, _ = strings.Cut(rest, "&")
		if carriesToken(pair) {
			changed = true
			continue
		}
		if !first {
			b.WriteByte('&')
		}
		b.WriteString(pair)
		first = false
	}
	if !changed {
		return query, false
	}
	return b.String(), true
}

// TokenID identifies a token in records without revealing it: the first 16
// hex digits of its SHA-256.
func TokenID(token string) string {
	return tokenID(sha256.Sum256([]byte(token)))
}

func tokenID(sum [sha256.Size]byte) string { return hex.EncodeToString(sum[:8]) }

// LooksLikeJWT reports whether token has the shape of a JWS compact
// serialisation: three non-empty base64url parts separated by '.'.
func LooksLikeJWT(token string) bool {
	header, rest, ok1 := strings.Cut(token, ".")
	payload, signature, ok2 := strings.Cut(rest, ".")
	return ok1 && ok2 && base64URL(header) && base64URL(payload) && base64URL(signature)
}

// base64URL reports whether s is non-empty unpadded base64url.
func base64URL(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
