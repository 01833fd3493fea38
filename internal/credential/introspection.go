package credential

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// AuthStyle says how Introspection authenticates itself to the endpoint.
type AuthStyle uint8

const (
	// AuthStyleBasic sends the client id and secret in HTTP Basic
	// authentication, each form-encoded first (RFC 6749 section 2.3.1).
	AuthStyleBasic AuthStyle = iota
	// AuthStyleForm sends them as client_id and client_secret form fields.
	AuthStyleForm
)

// Introspection verifies tokens with an OAuth 2.0 token introspection
// endpoint (RFC 7662).
//
// Answers: 200 with "active": true gives the token's Info, whose Claims are
// the answer's top-level fields (active, username, ext... as sent), unless
// its exp
// is past or its nbf is still ahead (*InvalidError); "active": false is an
// *InvalidError. Every other status wraps ErrUnavailable, because an
// introspection endpoint answers 200 for any token it can judge: a 400
// means our request is malformed and a 401 or 403 that the gateway's own
// client credentials are wrong, neither of which is the caller's fault. So
// do 5xx, transport failures, timeouts and unreadable answers, including an
// answer without "active".
type Introspection struct {
	// URL is the introspection endpoint.
	URL string
	// ClientID and ClientSecret authenticate the gateway to the endpoint;
	// no client authentication is sent when ClientID is empty.
	ClientID, ClientSecret string
	// AuthStyle says how they are sent; AuthStyleBasic by default.
	AuthStyle AuthStyle
	// Client sends the requests; http.DefaultClient when nil. Redirects
	// are never followed.
	Client *http.Client
	// Timeout bounds one verification; DefaultTimeout when zero.
	Timeout time.Duration
}

// audience is an RFC 7662 aud: one string or an array of them.
type audience []string

// UnmarshalJSON implements json.Unmarshaler.
func (a *audience) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = audience{s}
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return errors.New("expected a string or an array of strings")
	}
	*a = list
	return nil
}

// introspectionAnswer is the RFC 7662 section 2.2 answer, plus the email
// claim some servers add.
type introspectionAnswer struct {
	Active   *boolean `json:"active"`
	Scope    string   `json:"scope"`
	ClientID string   `json:"client_id"`
	Username string   `json:"username"`
	Sub      string   `json:"sub"`
	Aud      audience `json:"aud"`
	Exp      *number  `json:"exp"`
	Nbf      *number  `json:"nbf"`
	Email    string   `json:"email"`
}

// Verify asks the introspection endpoint about token. The subject is sub,
// else username.
func (i *Introspection) Verify(ctx context.Context, token string) (*Info, error) {
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	var header http.Header
	if i.ClientID != "" {
		switch i.AuthStyle {
		case AuthStyleForm:
			form.Set("client_id", i.ClientID)
			form.Set("client_secret", i.ClientSecret)
		default:
			creds := url.QueryEscape(i.ClientID) + ":" + url.QueryEscape(i.ClientSecret)
			header = http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(creds))}}
		}
	}
	status, body, err := post(ctx, i.Client, i.Timeout, i.URL, form.Encode(), header)
	if err != nil {
		return nil, fmt.Errorf("verify token by introspection: %w: %w", ErrUnavailable, err)
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("verify token by introspection: %w: status %d", ErrUnavailable, status)
	}
	var a introspectionAnswer
	if err := decodeObject(body, &a); err != nil {
		return nil, fmt.Errorf("verify token by introspection: %w: decode answer: %s", ErrUnavailable, redact(err.Error(), token))
	}
	if a.Active == nil {
		return nil, fmt.Errorf("verify token by introspection: %w: answer has no \"active\"", ErrUnavailable)
	}
	if !*a.Active {
		return nil, &InvalidError{Reason: ReasonInvalid, Detail: "introspection says the token is not active"}
	}
	now := time.Now()
	info := &Info{
		Subject:  a.Sub,
		Email:    a.Email,
		Audience: strings.Join(a.Aud, " "),
		ClientID: a.ClientID,
		Scopes:   strings.Fields(a.Scope),
		Expiry:   unixTime(a.Exp),
		Verifier: VerifierIntrospection,
	}
	if info.Subject == "" {
		info.Subject = a.Username
	}
	if err := expired(info, now, "introspection"); err != nil {
		return nil, err
	}
	if unixTime(a.Nbf).After(now) {
		return nil, &InvalidError{Reason: ReasonInvalid, Detail: "introspection says the token is not valid yet"}
	}
	// Decoded again, only for a token found valid, keeping every field.
	if info.Claims, err = decodeClaims(body, token); err != nil {
		return nil, fmt.Errorf("verify token by introspection: %w: decode answer: %s", ErrUnavailable, redact(err.Error(), token))
	}
	return info, nil
}

var _ Verifier = (*Introspection)(nil)
