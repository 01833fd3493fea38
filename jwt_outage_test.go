package lrocancel

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/go-jose/go-jose/v4"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// keyServer stands in for an identity provider's JWKS endpoint.
type keyServer struct {
	mu      sync.Mutex
	keys    []jose.JSONWebKey
	down    atomic.Bool
	fetches atomic.Int64
}

func (k *keyServer) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	k.fetches.Add(1)
	if k.down.Load() {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: k.keys})
}

func (k *keyServer) publish(keys ...jose.JSONWebKey) {
	k.mu.Lock()
	k.keys = keys
	k.mu.Unlock()
}

func rsaKey(t *testing.T, kid string) (*rsa.PrivateKey, jose.JSONWebKey) {
	t.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return priv, jose.JSONWebKey{Key: &priv.PublicKey, KeyID: kid, Use: "sig", Algorithm: string(jose.RS256)}
}

// signedToken is a valid access token for Vault, signed RS256 with kid.
func signedToken(t *testing.T, key *rsa.PrivateKey, kid string, now time.Time) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader(jose.HeaderKey("kid"), kid))
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(map[string]any{
		"iss": "https://idp.example.com", "aud": "https://vault.googleapis.com/", "sub": "svc-42",
		"scope": vaultScope, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	})
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

// The key server down at start-up: the gateway provisions, JWT callers get
// 503 UNAVAILABLE and nothing is forwarded, opaque tokens go on. When the
// server is back, the next fetch the pace allows lets them through; a key
// published later (rotation) is picked up without a restart. The JWT
// verifier's clock is the test's, so every fetch happens exactly when the
// pace allows it, whatever the machine's load.
func TestJWTKeySetOutageAndRotation(t *testing.T) {
	clk := &fakeClock{now: time.Now()}
	key1, pub1 := rsaKey(t, "rsa-1")
	key2, pub2 := rsaKey(t, "rsa-2")
	idp := &keyServer{keys: []jose.JSONWebKey{pub1}}
	idp.down.Store(true)
	jwks := httptest.NewServer(idp)
	t.Cleanup(jwks.Close)
	ti := fakeTokenInfo(t, vaultScope)

	h := &Handler{
		TokenInfo: &TokenInfoConfig{URL: ti.URL},
		JWT: &JWTConfig{
			JWKSURL: jwks.URL, Issuer: []string{"https://idp.example.com"},
			Audience: []string{"https://vault.googleapis.com/"},
			// The background refresh runs on real timers (its retries after
			// a failure start at MinRefreshInterval): minutes keep it out of
			// the test, so every fetch is on demand, paced by clk.
			RefreshInterval: caddy.Duration(time.Hour), MinRefreshInterval: caddy.Duration(10 * time.Minute),
		},
		jwtClock: clk.Now,
	}
	provision(t, h)
	next := &countingNext{}
	cancel := func(token string) (int, string) {
		t.Helper()
		r := request("POST", "vault.googleapis.com", "/v1/operations/export-1:cancel", "")
		r.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		if err := h.ServeHTTP(w, r, next); err != nil {
			t.Fatal(err)
		}
		var env struct{ Error struct{ Status string } }
		if w.Code != http.StatusOK {
			if err := json.Unmarshal(w.Body.Bytes(), &env); err != nil {
				t.Fatalf("status %d, body not Google's envelope: %q", w.Code, w.Body)
			}
		}
		return w.Code, env.Error.Status
	}
	token := signedToken(t, key1, "rsa-1", clk.Now())

	if code, status := cancel(token); code != http.StatusServiceUnavailable || status != "UNAVAILABLE" {
		t.Fatalf("key set down: %d %s, want 503 UNAVAILABLE", code, status)
	}
	if code, _ := cancel("ya29.opaque-token"); code != http.StatusOK {
		t.Errorf("an opaque token while the key set was down: %d, want 200", code)
	}
	if n := next.calls.Load(); n != 1 {
		t.Fatalf("the upstream got %d requests, want only the opaque token's", n)
	}

	// Back, but the last fetch was just now: none is due, and none is made.
	idp.down.Store(false)
	fetches := idp.fetches.Load()
	if code, _ := cancel(token); code != http.StatusServiceUnavailable {
		t.Errorf("before the next fetch is due: %d, want 503", code)
	}
	if n := idp.fetches.Load() - fetches; n != 0 {
		t.Errorf("%d key set fetches before the interval passed", n)
	}
	clk.advance(10 * time.Minute)
	if code, _ := cancel(token); code != http.StatusOK {
		t.Fatalf("once the key set is back and a fetch is due: %d, want 200", code)
	}
	if n := idp.fetches.Load() - fetches; n != 1 {
		t.Errorf("%d key set fetches to recover, want 1", n)
	}

	// Rotation: a token signed with a newly published key.
	idp.publish(pub1, pub2)
	clk.advance(10 * time.Minute)
	if code, _ := cancel(signedToken(t, key2, "rsa-2", clk.Now())); code != http.StatusOK {
		t.Fatalf("a token of the rotated key: %d, want 200", code)
	}
	if n := idp.fetches.Load() - fetches; n != 2 {
		t.Errorf("%d key set fetches after the rotation, want 2", n)
	}
	if n := next.calls.Load(); n != 3 {
		t.Errorf("the upstream got %d requests, want 3", n)
	}
}
