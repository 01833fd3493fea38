package integration

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

const (
	jwtIssuer   = "https://idp.example.com"
	jwtAudience = "https://vault.googleapis.com/"
)

// jwtKeys are the identity provider's keys, and one it never published.
type jwtKeys struct {
	rsa, rotated, stranger *rsa.PrivateKey
	ec                     *ecdsa.PrivateKey
}

func newJWTKeys(t *testing.T) jwtKeys {
	t.Helper()
	gen := func() *rsa.PrivateKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return jwtKeys{rsa: gen(), rotated: gen(), stranger: gen(), ec: ec}
}

// fakeJWKS stands in for the identity provider's key set endpoint.
type fakeJWKS struct {
	srv     *httptest.Server
	mu      sync.Mutex
	keys    []jose.JSONWebKey
	down    atomic.Bool
	fetches atomic.Int64
}

func newFakeJWKS(t *testing.T, keys ...jose.JSONWebKey) *fakeJWKS {
	f := &fakeJWKS{keys: keys}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.fetches.Add(1)
		if f.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: f.keys})
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func publicKey(kid string, priv any) jose.JSONWebKey {
	k := jose.JSONWebKey{Key: priv, KeyID: kid, Use: "sig"}
	return k.Public()
}

func sign(t *testing.T, alg jose.SignatureAlgorithm, key any, kid string, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader(jose.HeaderKey("kid"), kid)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	obj, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// claims are a valid access token's, with edits (a nil value deletes).
func claims(edits map[string]any) map[string]any {
	now := time.Now()
	c := map[string]any{
		"iss": jwtIssuer, "aud": jwtAudience, "sub": "svc-42",
		"email": "svc@project.iam.gserviceaccount.com", "scope": scopeVault,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
	for k, v := range edits {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

func jwtDirective(jwksURL string) string {
	return "jwt {\n jwks_url " + jwksURL + "\n issuer " + jwtIssuer + "\n audience " + jwtAudience +
		"\n leeway 5s\n min_refresh_interval 200ms\n negative_cache_ttl 1s\n}"
}

// Every attack ends in 401 with nothing forwarded; a well-formed token
// signed by the published key is forwarded.
func TestJWTAttacksAreRefused(t *testing.T) {
	k := newJWTKeys(t)
	jwks := newFakeJWKS(t, publicKey("rsa-1", k.rsa), publicKey("ec-1", k.ec))
	// Caddy itself answers 431 to headers over 16 KiB; let the 64 KiB
	// token reach the module.
	g := startGateway(t, gatewayOptions{directive: jwtDirective(jwks.srv.URL), servers: "max_header_size 256KB"})

	pub, err := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})
	b64 := base64.RawURLEncoding.EncodeToString
	body, _ := json.Marshal(claims(nil))
	none := b64([]byte(`{"alg":"none","typ":"JWT","kid":"rsa-1"}`)) + "." + b64(body) + "."

	attacks := []struct{ name, token string }{
		{"alg none", none},
		{"alg none with a signature part", none + "c2ln"},
		{"HS256 keyed with the RSA public key (PEM)", sign(t, jose.HS256, pubPEM, "rsa-1", claims(nil))},
		{"HS256 keyed with the RSA public key (DER)", sign(t, jose.HS256, pub, "rsa-1", claims(nil))},
		{"signed by an unknown key under a known kid", sign(t, jose.RS256, k.stranger, "rsa-1", claims(nil))},
		{"unknown kid", sign(t, jose.RS256, k.stranger, "rsa-404", claims(nil))},
		{"expired", sign(t, jose.RS256, k.rsa, "rsa-1", claims(map[string]any{"exp": time.Now().Add(-time.Hour).Unix()}))},
		{"not yet valid", sign(t, jose.RS256, k.rsa, "rsa-1", claims(map[string]any{"nbf": time.Now().Add(time.Hour).Unix()}))},
		{"wrong issuer", sign(t, jose.RS256, k.rsa, "rsa-1", claims(map[string]any{"iss": "https://evil.example"}))},
		{"wrong audience", sign(t, jose.RS256, k.rsa, "rsa-1", claims(map[string]any{"aud": "https://other.example/"}))},
		{"valid signature, algorithm not allowed", sign(t, jose.RS384, k.rsa, "rsa-1", claims(nil))},
		{"64 KiB token", sign(t, jose.RS256, k.rsa, "rsa-1", claims(map[string]any{"pad": strings.Repeat("x", 64<<10)}))},
		{"parts that are not base64", "eyJhbGciOiJSUzI1NiJ9.e$$$.c2ln"},
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			g.upstream.reset()
			resp, b := g.do(newRequest(t, "POST", apiURL("vault.googleapis.com", vaultCancel), "", bearer(a.token)...))
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("status %d, want 401: %s", resp.StatusCode, b)
			}
			if n := len(g.upstream.requests()); n != 0 {
				t.Errorf("the attack reached the upstream %d times", n)
			}
		})
	}
	// The unknown kids above caused at most the bounded re-fetches.
	if n := jwks.fetches.Load(); n > 3 {
		t.Errorf("the key set was fetched %d times for one forged kid", n)
	}

	t.Run("a valid token is forwarded", func(t *testing.T) {
		g.upstream.reset()
		tokeninfoCalls := g.tokeninfo.calls.Load()
		for _, token := range []string{
			sign(t, jose.RS256, k.rsa, "rsa-1", claims(nil)),
			sign(t, jose.ES256, k.ec, "ec-1", claims(map[string]any{"scope": nil, "scp": []string{scopeVault}})),
		} {
			resp, b := g.do(newRequest(t, "POST", apiURL("vault.googleapis.com", vaultCancel), "", bearer(token)...))
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, b)
			}
			if rec := g.recordFor(resp.Header.Get("Audit-Id")); rec.str("principal") != "svc@project.iam.gserviceaccount.com" {
				t.Errorf("record = %v", rec)
			}
		}
		if n := len(g.upstream.requests()); n != 2 {
			t.Errorf("upstream got %d requests, want 2", n)
		}
		if n := g.tokeninfo.calls.Load() - tokeninfoCalls; n != 0 {
			t.Errorf("JWTs went to tokeninfo %d times", n)
		}
	})
}

// The key server down at start-up: Caddy runs, JWT callers get 503 in
// Google's envelope and nothing is forwarded, opaque tokens go on. (The
// recovery and a key rotation are TestJWTKeySetOutageAndRotation, in the
// root package, on a fake clock.)
func TestJWTKeySetDownAtStartUpAnswers503(t *testing.T) {
	k := newJWTKeys(t)
	jwks := newFakeJWKS(t, publicKey("rsa-1", k.rsa))
	jwks.down.Store(true)
	g := startGateway(t, gatewayOptions{directive: jwtDirective(jwks.srv.URL)})
	token := sign(t, jose.RS256, k.rsa, "rsa-1", claims(nil))

	resp, b := g.do(newRequest(t, "POST", apiURL("vault.googleapis.com", vaultCancel), "", bearer(token)...))
	if resp.StatusCode != http.StatusServiceUnavailable || decodeError(t, b).Error.Status != "UNAVAILABLE" {
		t.Fatalf("key set down: status %d %s, want 503 UNAVAILABLE", resp.StatusCode, b)
	}
	if n := len(g.upstream.requests()); n != 0 {
		t.Fatalf("upstream got %d requests while the key set was down", n)
	}
	// Opaque tokens are not affected.
	if resp, _ := g.do(newRequest(t, "POST", apiURL("vault.googleapis.com", vaultCancel), "", bearer(tokenVault)...)); resp.StatusCode != 200 {
		t.Errorf("opaque token while the key set was down: status %d", resp.StatusCode)
	}
}

// eventually retries cond for a bounded time.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
	}
}
