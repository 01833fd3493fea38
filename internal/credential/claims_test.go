package credential

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// jsonBody marshals fields as a verifier's answer.
func jsonBody(t *testing.T, fields map[string]any) string {
	t.Helper()
	b, err := json.Marshal(fields)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// echoes are fields of an answer that hold the token, each in its own way.
func echoes(token string) map[string]any {
	return map[string]any{
		"access_token": token,
		"note":         "issued as " + token + " today",
		"escaped":      url.QueryEscape(token),
		"list":         []any{"a", token},
		token:          "the token as a key",
		"nested":       map[string]any{"t": token, "ok": "x"},
		"objects":      []any{map[string]any{"t": token, "ok": "y"}},
	}
}

// with returns fields plus extra.
func with(fields, extra map[string]any) map[string]any {
	m := make(map[string]any, len(fields)+len(extra))
	for k, v := range fields {
		m[k] = v
	}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

func TestVerifiersReportClaimsAndVerifier(t *testing.T) {
	k := testJWTKeys()
	j := newJWT(t, JWTConfig{JWKSFile: writeFile(t, standardJWKS(t)), Now: (&clock{now: epoch}).Now})
	future := time.Now().Add(time.Hour).Unix()

	jwtExtra := map[string]any{
		"groups": []string{"sre", "oncall"},
		"ext":    map[string]any{"tenant": "t1", "level": 3, "flags": []any{true, nil}},
		"age":    42.5,
	}
	jwtWant := map[string]any{
		"iss": jwtIssuer, "sub": "1057", "aud": jwtAudience, "azp": "client-7", "email": jwtEmail,
		"scope": "https://www.googleapis.com/auth/cloud-platform openid",
		"iat":   float64(epoch.Unix()), "exp": float64(epoch.Add(time.Hour).Unix()),
		"groups": []any{"sre", "oncall"},
		"ext":    map[string]any{"tenant": "t1", "level": float64(3), "flags": []any{true, nil}},
		"age":    42.5,
	}
	tokenInfoFields := map[string]any{
		"azp": "123.apps.googleusercontent.com", "aud": "123.apps.googleusercontent.com", "sub": "1057",
		"scope": "https://www.googleapis.com/auth/cloud-platform openid",
		"exp":   fmt.Sprint(future), "expires_in": "3599",
		"email": "ops@example.com", "email_verified": "true", "access_type": "online", "hd": "example.com",
	}
	introspectionFields := map[string]any{
		"active": true, "scope": "s", "client_id": "gw-client", "username": "jdoe",
		"aud": []any{"a", "b"}, "exp": float64(future),
		"ext": map[string]any{"tenant": "t1", "roles": []any{"sre"}, "level": float64(3)},
	}
	// What is left of echoes: the nested objects lose their own entries.
	echoRemains := map[string]any{"nested": map[string]any{"ok": "x"}, "objects": []any{map[string]any{"ok": "y"}}}

	tests := []struct {
		name         string
		verify       func(t *testing.T) (*Info, string, error)
		wantClaims   map[string]any
		wantVerifier string
	}{
		{
			name: "a JWT's claims are its verified payload with nested objects, the groups array and numbers as float64",
			verify: func(t *testing.T) (*Info, string, error) {
				token := signJWT(t, jose.RS256, k.rsa, "rsa-1", claimsAt(epoch, jwtExtra))
				info, err := j.Verify(context.Background(), token)
				return info, token, err
			},
			wantClaims:   jwtWant,
			wantVerifier: VerifierJWT,
		},
		{
			name: "a tokeninfo answer's fields stay as Google sends them, hd included and numbers and email_verified as strings",
			verify: func(t *testing.T) (*Info, string, error) {
				srv := serve(t, &answer{status: 200, body: jsonBody(t, tokenInfoFields)})
				info, err := (&TokenInfo{URL: srv.URL}).Verify(context.Background(), testToken)
				return info, testToken, err
			},
			wantClaims:   tokenInfoFields,
			wantVerifier: VerifierTokenInfo,
		},
		{
			name: "an introspection answer's fields keep username, the audience array and the nested ext object",
			verify: func(t *testing.T) (*Info, string, error) {
				srv := serve(t, &answer{status: 200, body: jsonBody(t, introspectionFields)})
				info, err := (&Introspection{URL: srv.URL}).Verify(context.Background(), testToken)
				return info, testToken, err
			},
			wantClaims:   introspectionFields,
			wantVerifier: VerifierIntrospection,
		},
		{
			name: "a tokeninfo answer that echoes the token loses every field holding it, in keys, values, arrays and nested objects",
			verify: func(t *testing.T) (*Info, string, error) {
				srv := serve(t, &answer{status: 200, body: jsonBody(t, with(tokenInfoFields, echoes(testToken)))})
				info, err := (&TokenInfo{URL: srv.URL}).Verify(context.Background(), testToken)
				return info, testToken, err
			},
			wantClaims:   with(tokenInfoFields, echoRemains),
			wantVerifier: VerifierTokenInfo,
		},
		{
			name: "an introspection answer that echoes the token loses every field holding it, in ext too",
			verify: func(t *testing.T) (*Info, string, error) {
				body := with(introspectionFields, echoes(testToken))
				body["ext"] = map[string]any{"token": testToken, "tenant": "t1"}
				srv := serve(t, &answer{status: 200, body: jsonBody(t, body)})
				info, err := (&Introspection{URL: srv.URL}).Verify(context.Background(), testToken)
				return info, testToken, err
			},
			wantClaims:   with(introspectionFields, with(echoRemains, map[string]any{"ext": map[string]any{"tenant": "t1"}})),
			wantVerifier: VerifierIntrospection,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, token, err := tt.verify(t)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !reflect.DeepEqual(info.Claims, tt.wantClaims) {
				t.Errorf("Claims = %#v\nwant %#v", info.Claims, tt.wantClaims)
			}
			if info.Verifier != tt.wantVerifier {
				t.Errorf("Verifier = %q, want %q", info.Verifier, tt.wantVerifier)
			}
			printed := fmt.Sprint(info.Claims)
			for _, secret := range []string{token, url.QueryEscape(token)} {
				if strings.Contains(printed, secret) {
					t.Errorf("Claims hold the token: %s", printed)
				}
			}
		})
	}
}

func TestCacheHitHandsOutTheSameClaimsWithoutCopying(t *testing.T) {
	a := &answer{status: 200, body: `{"azp":"c","expires_in":"600","hd":"example.com"}`}
	c := NewCache(&TokenInfo{URL: serve(t, a).URL}, CacheConfig{})
	first, err := c.Verify(context.Background(), testToken)
	if err != nil {
		t.Fatal(err)
	}
	second, err := c.Verify(context.Background(), testToken)
	if err != nil {
		t.Fatal(err)
	}
	if first != second || reflect.ValueOf(first.Claims).UnsafePointer() != reflect.ValueOf(second.Claims).UnsafePointer() {
		t.Errorf("a hit gave another Info or Claims map: %p %p", first, second)
	}
	if first.Claims["hd"] != "example.com" || a.hits.Load() != 1 {
		t.Errorf("Claims = %v after %d tokeninfo calls; want hd from a single call", first.Claims, a.hits.Load())
	}
}
