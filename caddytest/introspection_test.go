package integration

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// fakeIntrospection stands in for a company IdP's RFC 7662 endpoint: it
// knows one active token, and authenticates the gateway with HTTP Basic.
func fakeIntrospection(t *testing.T, status *atomic.Int32) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s := int(status.Load()); s != 0 {
			w.WriteHeader(s)
			return
		}
		if id, secret, ok := r.BasicAuth(); !ok || id != "gateway" || secret != "s3cret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if r.PostFormValue("token") != "opaque-idp-token" || r.PostFormValue("token_type_hint") != "access_token" {
			_ = json.NewEncoder(w).Encode(map[string]any{"active": false})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{
			"active": true, "scope": scopeVault + " openid", "sub": "u-7", "username": "dana@example.com",
			"client_id": "batch-runner", "exp": time.Now().Add(time.Hour).Unix(),
		})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// introspection replaces tokeninfo for opaque tokens: active tokens with the
// scope are forwarded, inactive ones get 401, and an endpoint that fails or
// refuses the gateway's own credentials gets 503 with nothing forwarded.
func TestIntrospectionVerifiesOpaqueTokens(t *testing.T) {
	var status atomic.Int32
	idp := fakeIntrospection(t, &status)
	tests := []struct {
		name, token, secret string
		idpStatus           int
		wantStatus          int
		wantDecision        string
	}{
		{"active token with the scope", "opaque-idp-token", "s3cret", 0, 200, "forwarded"},
		{"inactive token", "revoked-idp-token", "s3cret", 0, 401, "unauthenticated"},
		{"endpoint failing", "other-idp-token-1", "s3cret", 500, 503, "verifier_unavailable"},
		{"gateway's own credentials refused", "other-idp-token-2", "wrong", 0, 503, "verifier_unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status.Store(int32(tt.idpStatus))
			g := startGateway(t, gatewayOptions{directive: "introspection " + idp.URL +
				" {\n client_id gateway\n client_secret " + tt.secret + "\n}"})
			resp, b := g.do(newRequest(t, "POST", apiURL("vault.googleapis.com", vaultCancel), "", bearer(tt.token)...))
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.wantStatus, b)
			}
			rec := g.recordFor(resp.Header.Get("Audit-Id"))
			if rec.str("decision") != tt.wantDecision {
				t.Errorf("record = %v, want %s", rec, tt.wantDecision)
			}
			if tt.wantStatus == 200 {
				if rec.str("principal") != "u-7" || rec.str("scope_used") != scopeVault {
					t.Errorf("record = %v, want principal u-7 with %s", rec, scopeVault)
				}
			} else if n := len(g.upstream.requests()); n != 0 {
				t.Errorf("a refused cancel reached the upstream %d times", n)
			}
			if n := g.tokeninfo.calls.Load(); n != 0 {
				t.Errorf("tokeninfo was called %d times although introspection is configured", n)
			}
		})
	}
}
