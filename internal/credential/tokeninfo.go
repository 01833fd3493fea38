package credential

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DefaultTokenInfoURL is Google's OAuth 2.0 tokeninfo endpoint.
const DefaultTokenInfoURL = "https://oauth2.googleapis.com/tokeninfo"

// TokenInfo verifies Google access tokens with the tokeninfo endpoint. The
// token travels in a POST form, never in the URL, so no log on the
// endpoint's side carries it.
//
// Answers: 200 with an unexpired token gives its Info, whose Claims are the
// answer's top-level fields as sent (numbers as strings, as Google quotes
// them); 200 with a past expiry, or with no expiry at all (a token the
// gateway cannot bound in time is not trusted), is an *InvalidError. Any other 4xx is an
// *InvalidError too (Google answers 400 invalid_token for bad and expired
// tokens alike), except 408 and 429, which say nothing of the token. 5xx,
// other statuses, transport failures, timeouts and unreadable 200 answers
// wrap ErrUnavailable.
type TokenInfo struct {
	// URL is the endpoint; DefaultTokenInfoURL when empty.
	URL string
	// Client sends the requests; http.DefaultClient when nil. Redirects
	// are never followed.
	Client *http.Client
	// Timeout bounds one verification; DefaultTimeout when zero.
	Timeout time.Duration
}

// tokenInfoAnswer is tokeninfo's JSON, where numbers arrive as strings.
type tokenInfoAnswer struct {
	Azp              string   `json:"azp"`
	Aud              string   `json:"aud"`
	Sub              string   `json:"sub"`
	Scope            string   `json:"scope"`
	Exp              *number  `json:"exp"`
	ExpiresIn        *number  `json:"expires_in"`
	Email            string   `json:"email"`
	EmailVerified    *boolean `json:"email_verified"`
	Error            string   `json:"error"`
	ErrorDescription string   `json:"error_description"`
}

// problem describes the error the answer reports.
func (a *tokenInfoAnswer) problem(token string) string {
	if a.ErrorDescription == "" {
		return redact(a.Error, token)
	}
	return redact(a.Error+": "+a.ErrorDescription, token)
}

// Verify asks tokeninfo about token.
func (t *TokenInfo) Verify(ctx context.Context, token string) (*Info, error) {
	endpoint := t.URL
	if endpoint == "" {
		endpoint = DefaultTokenInfoURL
	}
	status, body, err := post(ctx, t.Client, t.Timeout, endpoint, "access_token="+url.QueryEscape(token), nil)
	if err != nil {
		return nil, fmt.Errorf("verify token with tokeninfo: %w: %w", ErrUnavailable, err)
	}
	switch {
	case status == http.StatusOK:
	case status == http.StatusRequestTimeout || status == http.StatusTooManyRequests:
		return nil, fmt.Errorf("verify token with tokeninfo: %w: status %d", ErrUnavailable, status)
	case status >= 400 && status < 500:
		var a tokenInfoAnswer
		detail := fmt.Sprintf("tokeninfo answered %d", status)
		if decodeObject(body, &a) == nil && a.Error != "" {
			detail += " " + a.problem(token)
		}
		return nil, &InvalidError{Reason: ReasonInvalid, Detail: detail}
	default:
		return nil, fmt.Errorf("verify token with tokeninfo: %w: status %d", ErrUnavailable, status)
	}

	var a tokenInfoAnswer
	if err := decodeObject(body, &a); err != nil {
		return nil, fmt.Errorf("verify token with tokeninfo: %w: decode answer: %s", ErrUnavailable, redact(err.Error(), token))
	}
	if a.Error != "" {
		return nil, &InvalidError{Reason: ReasonInvalid, Detail: "tokeninfo answered 200 " + a.problem(token)}
	}
	now := time.Now()
	info := &Info{
		Subject:  a.Sub,
		Email:    a.Email,
		Audience: a.Aud,
		ClientID: a.Azp,
		Scopes:   strings.Fields(a.Scope),
		Expiry:   unixTime(a.Exp),
		Verifier: VerifierTokenInfo,
	}
	if a.EmailVerified != nil && !*a.EmailVerified {
		// An unverified address must not stand for the principal.
		info.Email = ""
	}
	if info.ClientID == "" {
		info.ClientID = a.Aud
	}
	if info.Expiry.IsZero() && a.ExpiresIn != nil {
		info.Expiry = now.Add(time.Duration(*a.ExpiresIn) * time.Second)
	}
	if info.Expiry.IsZero() {
		return nil, &InvalidError{Reason: ReasonInvalid, Detail: "tokeninfo answer gives no expiry"}
	}
	if err := expired(info, now, "tokeninfo"); err != nil {
		return nil, err
	}
	// Decoded again, only for a token found valid: the typed decode above
	// reads the quoted numbers and booleans, this one keeps them as sent.
	if info.Claims, err = decodeClaims(body, token); err != nil {
		return nil, fmt.Errorf("verify token with tokeninfo: %w: decode answer: %s", ErrUnavailable, redact(err.Error(), token))
	}
	return info, nil
}

var _ Verifier = (*TokenInfo)(nil)
