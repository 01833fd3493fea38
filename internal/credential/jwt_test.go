package credential

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Test values of the JWT claims.
const (
	jwtIssuer   = "https://issuer.example"
	jwtAudience = "https://vault.googleapis.com/"
	jwtEmail    = "svc@project.iam.gserviceaccount.com"
)

// jwtKeys are the test's key pairs; other is in no key set.
type jwtKeys struct {
	rsa, other *rsa.PrivateKey
	ec         *ecdsa.PrivateKey
	ed         ed25519.PrivateKey
}

var testJWTKeys = sync.OnceValue(func() *jwtKeys {
	k := &jwtKeys{}
	var err error
	if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		panic(err)
	}
	if k.other, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		panic(err)
	}
	if k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		panic(err)
	}
	if _, k.ed, err = ed25519.GenerateKey(rand.Reader); err != nil {
		panic(err)
	}
	return k
})

// publicJWK is the public half of priv as a signature key with kid.
func publicJWK(kid string, priv any) jose.JSONWebKey {
	k := jose.JSONWebKey{Key: priv, KeyID: kid, Use: "sig"}
	return k.Public()
}

// standardJWKS is the key set most tests serve: rsa-1, ec-1 and ed-1.
func standardJWKS(t testing.TB) []byte {
	k := testJWTKeys()
	return marshalJWKS(t, publicJWK("rsa-1", k.rsa), publicJWK("ec-1", k.ec), publicJWK("ed-1", k.ed))
}

func marshalJWKS(t testing.TB, keys ...jose.JSONWebKey) []byte {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// signJWT signs claims with key and alg, naming kid when it is not empty.
func signJWT(t testing.TB, alg jose.SignatureAlgorithm, key any, kid string, claims any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	return signWith(t, jose.SigningKey{Algorithm: alg, Key: key}, opts, claims)
}

func signWith(t testing.TB, key jose.SigningKey, opts *jose.SignerOptions, claims any) string {
	t.Helper()
	signer, err := jose.NewSigner(key, opts)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// claimsAt are valid claims for a token issued at now, changed by edits
// (a nil value deletes the claim).
func claimsAt(now time.Time, edits map[string]any) map[string]any {
	c := map[string]any{
		"iss":   jwtIssuer,
		"sub":   "1057",
		"aud":   jwtAudience,
		"azp":   "client-7",
		"email": jwtEmail,
		"scope": "https://www.googleapis.com/auth/cloud-platform openid",
		"iat":   now.Unix(),
		"exp":   now.Add(time.Hour).Unix(),
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

// b64 is base64url without padding, as JWS uses.
func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// jwksServer serves a key set it can be told to change, counting fetches.
type jwksServer struct {
	hits   atomic.Int64
	mu     sync.Mutex
	status int
	body   []byte
	hang   bool
}

func (s *jwksServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.hits.Add(1)
	s.mu.Lock()
	status, body, hang := s.status, s.body, s.hang
	s.mu.Unlock()
	if hang {
		<-r.Context().Done()
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body)
}

// set makes the server answer status and body from now on.
func (s *jwksServer) set(status int, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.body, s.hang = status, body, false
}

// startJWKS serves body on loopback and returns the server and its URL.
func startJWKS(t testing.TB, status int, body []byte) (*jwksServer, string) {
	t.Helper()
	s := &jwksServer{status: status, body: body}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv.URL + "/jwks"
}

// fetchLog records what OnFetch hears.
type fetchLog struct {
	mu   sync.Mutex
	errs []error
}

func (l *fetchLog) record(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, err)
}

func (l *fetchLog) last() (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.errs) == 0 {
		return 0, nil
	}
	return len(l.errs), l.errs[len(l.errs)-1]
}

func newJWT(t testing.TB, cfg JWTConfig) *JWT {
	t.Helper()
	j, err := NewJWT(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(j.Close)
	return j
}

// writeFile writes data to a new file and returns its path.
func writeFile(t *testing.T, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// roundTripFunc answers HTTP requests without a network.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// checkRejected fails unless err is an *InvalidError with reason that does
// not reveal token.
func checkRejected(t *testing.T, err error, reason Reason, token string) {
	t.Helper()
	var invalid *InvalidError
	if !errors.As(err, &invalid) || invalid.Reason != reason {
		t.Fatalf("error = %v, want *InvalidError with reason %v", err, reason)
	}
	if token != "" {
		assertNoSecret(t, err, token)
	}
}

// checkUnavailable fails unless err wraps ErrUnavailable, is no
// *InvalidError and does not reveal token.
func checkUnavailable(t *testing.T, err error, token string) {
	t.Helper()
	var invalid *InvalidError
	if !errors.Is(err, ErrUnavailable) || errors.As(err, &invalid) {
		t.Fatalf("error = %v, want one wrapping ErrUnavailable", err)
	}
	assertNoSecret(t, err, token)
}

func TestNewJWTRejectsBadConfig(t *testing.T) {
	k := testJWTKeys()
	good := writeFile(t, standardJWKS(t))
	private := writeFile(t, marshalJWKS(t, publicJWK("rsa-1", k.rsa), jose.JSONWebKey{Key: k.ec, KeyID: "ec-1"}))
	secret := writeFile(t, marshalJWKS(t, publicJWK("rsa-1", k.rsa), jose.JSONWebKey{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "hs"}))
	encOnly := writeFile(t, marshalJWKS(t, jose.JSONWebKey{Key: &k.rsa.PublicKey, KeyID: "enc", Use: "enc"}))
	notJSON := writeFile(t, []byte("<html>keys</html>"))
	tests := []struct {
		name string
		cfg  JWTConfig
	}{
		{"no key set", JWTConfig{}},
		{"both a URL and a file", JWTConfig{JWKSURL: "https://idp.example/jwks", JWKSFile: good}},
		{"HS256 among the algorithms", JWTConfig{JWKSFile: good, Algorithms: []string{"RS256", "HS256"}}},
		{"alg none", JWTConfig{JWKSFile: good, Algorithms: []string{"none"}}},
		{"algorithm names are case-sensitive", JWTConfig{JWKSFile: good, Algorithms: []string{"rs256"}}},
		{"unknown algorithm", JWTConfig{JWKSFile: good, Algorithms: []string{"RS1"}}},
		{"plain http to a remote host", JWTConfig{JWKSURL: "http://idp.example/jwks"}},
		{"https without a host", JWTConfig{JWKSURL: "https:///jwks"}},
		{"another scheme", JWTConfig{JWKSURL: "ftp://127.0.0.1/jwks"}},
		{"malformed URL", JWTConfig{JWKSURL: "https://idp.example/%zz"}},
		{"negative timeout", JWTConfig{JWKSFile: good, Timeout: -time.Second}},
		{"negative refresh interval", JWTConfig{JWKSFile: good, MinRefreshInterval: -time.Second}},
		{"missing file", JWTConfig{JWKSFile: filepath.Join(t.TempDir(), "absent.json")}},
		{"file that is not JSON", JWTConfig{JWKSFile: notJSON}},
		{"file with a private key", JWTConfig{JWKSFile: private}},
		{"file with a symmetric secret", JWTConfig{JWKSFile: secret}},
		{"file without a signature key", JWTConfig{JWKSFile: encOnly}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j, err := NewJWT(tt.cfg)
			if err == nil {
				j.Close()
				t.Fatal("NewJWT succeeded")
			}
		})
	}
}

func TestNewJWTAcceptsHTTPSAndLoopbackHTTP(t *testing.T) {
	jwks := standardJWKS(t)
	// No network: the client's transport answers for every host.
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(string(jwks))), Request: r}, nil
	})}
	token := signJWT(t, jose.RS256, testJWTKeys().rsa, "rsa-1", claimsAt(time.Now(), nil))
	for _, u := range []string{"https://idp.example/jwks", "http://127.0.0.1:1/jwks", "http://localhost/jwks", "http://[::1]/jwks"} {
		t.Run(u, func(t *testing.T) {
			j := newJWT(t, JWTConfig{JWKSURL: u, Client: client})
			if _, err := j.Verify(context.Background(), token); err != nil {
				t.Fatalf("Verify: %v", err)
			}
		})
	}
}

func TestJWTVerifyAcceptsValidTokens(t *testing.T) {
	k := testJWTKeys()
	clk := &clock{now: epoch}
	j := newJWT(t, JWTConfig{
		JWKSFile:   writeFile(t, standardJWKS(t)),
		Issuers:    []string{"https://other.example", jwtIssuer},
		Audiences:  []string{"lro", jwtAudience},
		Algorithms: []string{"RS256", "PS256", "ES256", "EdDSA"},
		Now:        clk.Now,
	})
	cloud := "https://www.googleapis.com/auth/cloud-platform"
	want := Info{Subject: "1057", Email: jwtEmail, Audience: jwtAudience, ClientID: "client-7",
		Scopes: []string{cloud, "openid"}, Expiry: epoch.Add(time.Hour)}
	tests := []struct {
		name  string
		alg   jose.SignatureAlgorithm
		key   any
		kid   string
		edits map[string]any
		want  func(*Info)
	}{
		{"RS256 with a scope string", jose.RS256, k.rsa, "rsa-1", nil, nil},
		{"PS256", jose.PS256, k.rsa, "rsa-1", nil, nil},
		{"ES256 with an scp array and client_id", jose.ES256, k.ec, "ec-1",
			map[string]any{"scope": nil, "scp": []string{cloud, "openid"}, "azp": nil, "client_id": "client-7"}, nil},
		{"EdDSA with an scp string", jose.EdDSA, k.ed, "ed-1",
			map[string]any{"scope": nil, "scp": cloud + " openid"}, nil},
		{"scope wins over scp", jose.RS256, k.rsa, "rsa-1",
			map[string]any{"scp": []string{"other"}}, nil},
		{"no kid: tried against the keys that fit the alg", jose.ES256, k.ec, "", nil, nil},
		{"audience array meeting the accepted ones", jose.RS256, k.rsa, "rsa-1",
			map[string]any{"aud": []string{"x", jwtAudience}}, func(i *Info) { i.Audience = "x " + jwtAudience }},
		{"unverified email dropped", jose.RS256, k.rsa, "rsa-1",
			map[string]any{"email_verified": false}, func(i *Info) { i.Email = "" }},
		{"verified email as a string kept", jose.RS256, k.rsa, "rsa-1",
			map[string]any{"email_verified": "true"}, nil},
		{"no scope at all", jose.RS256, k.rsa, "rsa-1",
			map[string]any{"scope": nil}, func(i *Info) { i.Scopes = nil }},
		{"expired within the leeway", jose.RS256, k.rsa, "rsa-1",
			map[string]any{"exp": epoch.Add(-20 * time.Second).Unix()}, func(i *Info) { i.Expiry = epoch.Add(-20 * time.Second) }},
		{"nbf and iat ahead within the leeway", jose.RS256, k.rsa, "rsa-1",
			map[string]any{"nbf": epoch.Add(20 * time.Second).Unix(), "iat": epoch.Add(20 * time.Second).Unix()}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token := signJWT(t, tt.alg, tt.key, tt.kid, claimsAt(epoch, tt.edits))
			info, err := j.Verify(context.Background(), token)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			w := want
			w.Scopes = slices.Clone(want.Scopes)
			if tt.want != nil {
				tt.want(&w)
			}
			if info.Subject != w.Subject || info.Email != w.Email || info.Audience != w.Audience ||
				info.ClientID != w.ClientID || !slices.Equal(info.Scopes, w.Scopes) || !info.Expiry.Equal(w.Expiry) {
				t.Errorf("info = %+v, want %+v", *info, w)
			}
		})
	}
}

func TestJWTVerifyRejectsAttacks(t *testing.T) {
	k := testJWTKeys()
	clk := &clock{now: epoch}
	_, url := startJWKS(t, http.StatusOK, standardJWKS(t))
	j := newJWT(t, JWTConfig{
		JWKSURL:    url,
		Issuers:    []string{jwtIssuer},
		Audiences:  []string{jwtAudience},
		Algorithms: []string{"RS256", "ES256", "EdDSA"},
		Now:        clk.Now,
	})
	pubDER, err := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	good := claimsAt(epoch, nil)
	payload, err := json.Marshal(good)
	if err != nil {
		t.Fatal(err)
	}
	valid := signJWT(t, jose.RS256, k.rsa, "rsa-1", good)
	parts := strings.Split(valid, ".")
	header, body := parts[0], parts[1]
	encrypter, err := jose.NewEncrypter(jose.A128GCM, jose.Recipient{Algorithm: jose.RSA_OAEP_256, Key: &k.rsa.PublicKey}, nil)
	if err != nil {
		t.Fatal(err)
	}
	jwe, err := jwt.Encrypted(encrypter).Claims(good).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	embedded := signWith(t, jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: k.other, KeyID: "rsa-1"}},
		&jose.SignerOptions{EmbedJWK: true}, good)

	tests := []struct {
		name   string
		token  string
		reason Reason
	}{
		{"alg none", b64(`{"alg":"none","kid":"rsa-1"}`) + "." + b64(string(payload)) + ".", ReasonInvalid},
		{"alg none with a signature", b64(`{"alg":"none","kid":"rsa-1"}`) + "." + b64(string(payload)) + "." + b64("x"), ReasonInvalid},
		{"HS256 keyed with the RSA public key's PEM", signJWT(t, jose.HS256, pubPEM, "rsa-1", good), ReasonInvalid},
		{"HS256 keyed with the RSA public key's DER", signJWT(t, jose.HS256, pubDER, "rsa-1", good), ReasonInvalid},
		{"HS256 keyed with the RSA public key's PEM, no kid", signJWT(t, jose.HS256, pubPEM, "", good), ReasonInvalid},
		{"unknown key under a known kid", signJWT(t, jose.RS256, k.other, "rsa-1", good), ReasonInvalid},
		{"unknown key without a kid", signJWT(t, jose.RS256, k.other, "", good), ReasonInvalid},
		{"attacker's key embedded in the header", embedded, ReasonInvalid},
		{"unknown kid", signJWT(t, jose.RS256, k.other, "rsa-9", good), ReasonInvalid},
		{"RSA kid with an ES256 signature", signJWT(t, jose.ES256, k.ec, "rsa-1", good), ReasonInvalid},
		{"signature of another token", header + "." + b64(`{"sub":"root","exp":9999999999}`) + "." + parts[2], ReasonInvalid},
		{"expired", signJWT(t, jose.RS256, k.rsa, "rsa-1", claimsAt(epoch.Add(-2*time.Hour), nil)), ReasonExpired},
		{"no exp", signJWT(t, jose.RS256, k.rsa, "rsa-1", claimsAt(epoch, map[string]any{"exp": nil})), ReasonInvalid},
		{"not valid yet", signJWT(t, jose.RS256, k.rsa, "rsa-1", claimsAt(epoch, map[string]any{"nbf": epoch.Add(time.Minute).Unix()})), ReasonInvalid},
		{"issued in the future", signJWT(t, jose.RS256, k.rsa, "rsa-1", claimsAt(epoch, map[string]any{"iat": epoch.Add(time.Minute).Unix()})), ReasonInvalid},
		{"wrong issuer", signJWT(t, jose.RS256, k.rsa, "rsa-1", claimsAt(epoch, map[string]any{"iss": "https://evil.example"})), ReasonInvalid},
		{"no issuer", signJWT(t, jose.RS256, k.rsa, "rsa-1", claimsAt(epoch, map[string]any{"iss": nil})), ReasonInvalid},
		{"wrong audience", signJWT(t, jose.RS256, k.rsa, "rsa-1", claimsAt(epoch, map[string]any{"aud": []string{"a", "b"}})), ReasonInvalid},
		{"no audience", signJWT(t, jose.RS256, k.rsa, "rsa-1", claimsAt(epoch, map[string]any{"aud": nil})), ReasonInvalid},
		{"valid signature, alg not allowed", signJWT(t, jose.RS384, k.rsa, "rsa-1", good), ReasonInvalid},
		{"exp not a number", signJWT(t, jose.RS256, k.rsa, "rsa-1", claimsAt(epoch, map[string]any{"exp": "tomorrow"})), ReasonInvalid},
		{"scope not a string", signJWT(t, jose.RS256, k.rsa, "rsa-1", claimsAt(epoch, map[string]any{"scope": 42})), ReasonInvalid},
		{"64 KiB token", header + "." + strings.Repeat("A", 64<<10) + ".sig", ReasonInvalid},
		{"non-base64 parts", "a!b.c*d.e$f", ReasonInvalid},
		{"header not JSON", b64("{alg:RS256") + "." + body + "." + parts[2], ReasonInvalid},
		{"empty token", "", ReasonInvalid},
		{"two parts", header + "." + body, ReasonInvalid},
		{"four parts", valid + ".AAAA", ReasonInvalid},
		{"JWE", jwe, ReasonInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, err := j.Verify(context.Background(), tt.token)
			if info != nil {
				t.Errorf("info = %+v alongside error", info)
			}
			checkRejected(t, err, tt.reason, tt.token)
		})
	}
	// The table's tokens are rejected for what they are, not for want of keys.
	if _, err := j.Verify(context.Background(), valid); err != nil {
		t.Fatalf("Verify(valid token): %v", err)
	}
}

func TestJWTKeySetParsing(t *testing.T) {
	k := testJWTKeys()
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	withAlg := func(jwk jose.JSONWebKey, alg string) jose.JSONWebKey { jwk.Algorithm = alg; return jwk }
	withUse := func(jwk jose.JSONWebKey, use string) jose.JSONWebKey { jwk.Use = use; return jwk }
	raw := func(jwk jose.JSONWebKey, edit func(map[string]any)) json.RawMessage {
		b, err := json.Marshal(jwk)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		edit(m)
		b, _ = json.Marshal(m)
		return b
	}
	tests := []struct {
		name      string
		key       json.RawMessage
		alg       jose.SignatureAlgorithm
		signer    any
		wantValid bool
	}{
		{"use sig", raw(publicJWK("k", k.rsa), func(map[string]any) {}), jose.RS256, k.rsa, true},
		{"no use", raw(withUse(publicJWK("k", k.rsa), ""), func(map[string]any) {}), jose.RS256, k.rsa, true},
		{"use enc ignored", raw(withUse(publicJWK("k", k.rsa), "enc"), func(map[string]any) {}), jose.RS256, k.rsa, false},
		{"key_ops with verify", raw(publicJWK("k", k.ec), func(m map[string]any) { m["key_ops"] = []string{"verify"} }), jose.ES256, k.ec, true},
		{"key_ops without verify ignored", raw(publicJWK("k", k.ec), func(m map[string]any) { m["key_ops"] = []string{"encrypt"} }), jose.ES256, k.ec, false},
		{"matching key alg", raw(withAlg(publicJWK("k", k.rsa), "PS256"), func(map[string]any) {}), jose.PS256, k.rsa, true},
		{"token alg other than the key's", raw(withAlg(publicJWK("k", k.rsa), "RS256"), func(map[string]any) {}), jose.PS256, k.rsa, false},
		{"key alg of another family ignored", raw(withAlg(publicJWK("k", k.ec), "RS256"), func(map[string]any) {}), jose.ES256, k.ec, false},
		{"key alg for encryption ignored", raw(withAlg(publicJWK("k", k.rsa), "RSA-OAEP"), func(map[string]any) {}), jose.RS256, k.rsa, false},
		{"RSA key under 2048 bits ignored", raw(publicJWK("k", small), func(map[string]any) {}), jose.RS256, small, false},
		{"unknown kty ignored", json.RawMessage(`{"kty":"PQC","kid":"k","x":"AAAA"}`), jose.RS256, k.rsa, false},
		{"malformed RSA key ignored", json.RawMessage(`{"kty":"RSA","kid":"k","n":"!!","e":"AQAB"}`), jose.RS256, k.rsa, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// ed-0 keeps every set loadable whatever the row's key is.
			doc := fmt.Sprintf(`{"keys":[%s,%s]}`, marshalJWK(t, publicJWK("ed-0", k.ed)), tt.key)
			j := newJWT(t, JWTConfig{JWKSFile: writeFile(t, []byte(doc)), Algorithms: []string{"RS256", "PS256", "ES256"}})
			token := signJWT(t, tt.alg, tt.signer, "k", claimsAt(time.Now(), nil))
			_, err := j.Verify(context.Background(), token)
			switch {
			case tt.wantValid && err != nil:
				t.Fatalf("Verify: %v", err)
			case !tt.wantValid:
				checkRejected(t, err, ReasonInvalid, token)
			}
		})
	}
}

func marshalJWK(t testing.TB, jwk jose.JSONWebKey) []byte {
	t.Helper()
	b, err := json.Marshal(jwk)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestJWTKeepsLastGoodKeySetWhenRefreshFails(t *testing.T) {
	k := testJWTKeys()
	big := fmt.Sprintf(`{"keys":[%s],"pad":%q}`, marshalJWK(t, publicJWK("rsa-1", k.rsa)), strings.Repeat("x", maxAnswer))
	tests := []struct {
		name   string
		status int
		body   string
		hang   bool
	}{
		{"server error", http.StatusInternalServerError, `{"error":"down"}`, false},
		{"not found", http.StatusNotFound, "", false},
		{"redirect", http.StatusFound, "", false},
		{"timeout", 0, "", true},
		{"invalid JSON", http.StatusOK, `{"keys":[`, false},
		{"JSON array", http.StatusOK, `[]`, false},
		{"empty key set", http.StatusOK, `{"keys":[]}`, false},
		{"answer over 64 KiB", http.StatusOK, big, false},
		{"private key material", http.StatusOK, string(marshalJWKS(t, jose.JSONWebKey{Key: k.rsa, KeyID: "rsa-1"})), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &clock{now: epoch}
			srv, url := startJWKS(t, http.StatusOK, standardJWKS(t))
			var log fetchLog
			j := newJWT(t, JWTConfig{JWKSURL: url, Now: clk.Now, Timeout: 200 * time.Millisecond, OnFetch: log.record})
			srv.set(tt.status, []byte(tt.body))
			srv.mu.Lock()
			srv.hang = tt.hang
			srv.mu.Unlock()
			clk.advance(time.Minute)

			rotated := signJWT(t, jose.RS256, k.other, "rsa-2", claimsAt(epoch, nil))
			_, err := j.Verify(context.Background(), rotated)
			checkUnavailable(t, err, rotated)
			if n, last := log.last(); n != 2 || last == nil {
				t.Errorf("OnFetch heard %d fetches, the last with error %v; want 2, the last failed", n, last)
			}
			good := signJWT(t, jose.ES256, k.ec, "ec-1", claimsAt(epoch, nil))
			if _, err := j.Verify(context.Background(), good); err != nil {
				t.Fatalf("Verify with the last good key set: %v", err)
			}
			if got := srv.hits.Load(); got != 2 {
				t.Errorf("key set fetched %d times, want 2", got)
			}
		})
	}
}

func TestJWTUnavailableUntilKeysArrive(t *testing.T) {
	tests := []struct {
		name  string
		start func(t *testing.T, srv *jwksServer) string
	}{
		{"server answers 503", func(t *testing.T, srv *jwksServer) string {
			srv.set(http.StatusServiceUnavailable, nil)
			return serve(t, srv).URL
		}},
		{"nothing listens yet", func(t *testing.T, srv *jwksServer) string {
			return refusedURL(t)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &clock{now: epoch}
			srv := &jwksServer{}
			var target atomic.Pointer[string]
			u := tt.start(t, srv)
			target.Store(&u)
			// The client dials whatever target holds, so the key set can
			// "come back" at the configured URL.
			client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
				r2 := r.Clone(r.Context())
				r2.URL, _ = r2.URL.Parse(*target.Load())
				r2.Host = ""
				return http.DefaultTransport.RoundTrip(r2)
			})}
			var log fetchLog
			j := newJWT(t, JWTConfig{JWKSURL: "http://127.0.0.1/jwks", Client: client, Now: clk.Now, OnFetch: log.record})
			if n, last := log.last(); n != 1 || last == nil {
				t.Fatalf("OnFetch heard %d fetches, the last with error %v; want 1 failed", n, last)
			}
			token := signJWT(t, jose.ES256, testJWTKeys().ec, "ec-1", claimsAt(epoch, nil))
			_, err := j.Verify(context.Background(), token)
			checkUnavailable(t, err, token)

			srv.set(http.StatusOK, standardJWKS(t))
			up := serve(t, srv).URL
			target.Store(&up)
			// Within MinRefreshInterval of the last fetch: no new one.
			_, err = j.Verify(context.Background(), token)
			checkUnavailable(t, err, token)
			if got := srv.hits.Load(); got > 1 {
				t.Fatalf("key set fetched %d times before MinRefreshInterval passed", got)
			}
			clk.advance(time.Minute)
			if _, err := j.Verify(context.Background(), token); err != nil {
				t.Fatalf("Verify once the key set is back: %v", err)
			}
		})
	}
}

func TestJWTAcceptsRotatedKeyWithoutRestart(t *testing.T) {
	k := testJWTKeys()
	clk := &clock{now: epoch}
	srv, url := startJWKS(t, http.StatusOK, marshalJWKS(t, publicJWK("rsa-1", k.rsa)))
	j := newJWT(t, JWTConfig{JWKSURL: url, Now: clk.Now})
	srv.set(http.StatusOK, marshalJWKS(t, publicJWK("rsa-1", k.rsa), publicJWK("rsa-2", k.other)))
	clk.advance(time.Minute)
	for i := range 3 {
		token := signJWT(t, jose.RS256, k.other, "rsa-2", claimsAt(epoch, map[string]any{"sub": fmt.Sprint(i)}))
		if _, err := j.Verify(context.Background(), token); err != nil {
			t.Fatalf("Verify(token %d signed with the new key): %v", i, err)
		}
	}
	if got := srv.hits.Load(); got != 2 {
		t.Errorf("key set fetched %d times, want 2 (start, then the new kid)", got)
	}
}

func TestJWTUnknownKidFloodFetchesAtMostOncePerInterval(t *testing.T) {
	const (
		minRefresh = 100 * time.Millisecond
		workers    = 8
		tokens     = 200
	)
	k := testJWTKeys()
	forged := make([]string, tokens)
	for i := range forged {
		forged[i] = signJWT(t, jose.ES256, k.ec, "bogus-"+rand.Text(), claimsAt(time.Now(), nil))
	}
	start := time.Now()
	srv, url := startJWKS(t, http.StatusOK, standardJWKS(t))
	j := newJWT(t, JWTConfig{JWKSURL: url, MinRefreshInterval: minRefresh, RefreshInterval: time.Hour})
	var wg sync.WaitGroup
	errs := make(chan error, tokens)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < tokens; i += workers {
				_, err := j.Verify(context.Background(), forged[i])
				errs <- err
				// Spread the flood over several intervals.
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		checkRejected(t, err, ReasonInvalid, "")
	}
	if got, limit := srv.hits.Load(), 1+int64(elapsed/minRefresh); got > limit {
		t.Errorf("%d forged kids in %v caused %d fetches, want at most %d", tokens, elapsed, got, limit)
	}
}

func TestJWTRefreshesInBackgroundUntilClosed(t *testing.T) {
	k := testJWTKeys()
	srv, url := startJWKS(t, http.StatusOK, standardJWKS(t))
	// On-demand fetches are held off for the test's length: only the
	// refresher can bring the new key.
	j := newJWT(t, JWTConfig{JWKSURL: url, RefreshInterval: 20 * time.Millisecond, MinRefreshInterval: time.Hour})
	srv.set(http.StatusOK, marshalJWKS(t, publicJWK("rsa-2", k.other)))
	token := signJWT(t, jose.RS256, k.other, "rsa-2", claimsAt(time.Now(), nil))
	waitFor(t, "the refreshed key set", func() bool {
		_, err := j.Verify(context.Background(), token)
		return err == nil
	})
	j.Close()
	j.Close()
	fetched := srv.hits.Load()
	time.Sleep(100 * time.Millisecond)
	if got := srv.hits.Load(); got != fetched {
		t.Errorf("key set fetched %d times after Close, want none", got-fetched)
	}
}

func TestJWTVerifyGivesUpWhenCallerCancels(t *testing.T) {
	srv, url := startJWKS(t, http.StatusOK, standardJWKS(t))
	clk := &clock{now: epoch}
	j := newJWT(t, JWTConfig{JWKSURL: url, Now: clk.Now, Timeout: 300 * time.Millisecond})
	srv.mu.Lock()
	srv.hang = true
	srv.mu.Unlock()
	clk.advance(time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	token := signJWT(t, jose.RS256, testJWTKeys().rsa, "rsa-new", claimsAt(epoch, nil))
	_, err := j.Verify(ctx, token)
	checkUnavailable(t, err, token)
	srv.set(http.StatusOK, standardJWKS(t))
}

func FuzzJWTVerify(f *testing.F) {
	k := testJWTKeys()
	jwks := standardJWKS(f)
	dir := f.TempDir()
	path := filepath.Join(dir, "jwks.json")
	if err := os.WriteFile(path, jwks, 0o600); err != nil {
		f.Fatal(err)
	}
	clk := &clock{now: epoch}
	j, err := NewJWT(JWTConfig{JWKSFile: path, Now: clk.Now, Algorithms: []string{"RS256", "ES256", "EdDSA"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(j.Close)
	good := claimsAt(epoch, nil)
	for _, s := range []string{
		signJWT(f, jose.RS256, k.rsa, "rsa-1", good),
		signJWT(f, jose.ES256, k.ec, "ec-1", good),
		signJWT(f, jose.EdDSA, k.ed, "", claimsAt(epoch, map[string]any{"scp": []string{"a", "b"}})),
		signJWT(f, jose.RS256, k.other, "rsa-1", good),
		signJWT(f, jose.HS256, []byte("0123456789abcdef0123456789abcdef"), "rsa-1", good),
		b64(`{"alg":"none"}`) + "." + b64(`{"exp":9999999999}`) + ".",
		"a.b.c", "..", "a.b.c.d.e",
	} {
		f.Add(s)
	}
	publics := []any{&k.rsa.PublicKey, &k.ec.PublicKey, k.ed.Public()}
	f.Fuzz(func(t *testing.T, token string) {
		info, err := j.Verify(context.Background(), token)
		if err != nil {
			var invalid *InvalidError
			if !errors.As(err, &invalid) || info != nil {
				t.Fatalf("Verify = %v, %v; want nil and an *InvalidError", info, err)
			}
			return
		}
		sig, err := jose.ParseSignedCompact(token, asymmetricAlgs)
		if err != nil {
			t.Fatalf("accepted token does not parse: %v", err)
		}
		signed := slices.ContainsFunc(publics, func(pub any) bool {
			_, err := sig.Verify(pub)
			return err == nil
		})
		if !signed || info.Expiry.IsZero() {
			t.Fatalf("accepted token %q not signed by a test key or without expiry (info %+v)", token, info)
		}
		if info.Verifier != VerifierJWT || info.Claims == nil || strings.Contains(fmt.Sprint(info.Claims), token) {
			t.Fatalf("accepted token %q gave Verifier %q and Claims %v", token, info.Verifier, info.Claims)
		}
	})
}

func BenchmarkJWTVerify(b *testing.B) {
	k := testJWTKeys()
	_, url := startJWKS(b, http.StatusOK, standardJWKS(b))
	j := newJWT(b, JWTConfig{JWKSURL: url, Algorithms: []string{"RS256", "ES256", "EdDSA"}})
	for _, bb := range []struct {
		alg jose.SignatureAlgorithm
		key any
		kid string
	}{{jose.RS256, k.rsa, "rsa-1"}, {jose.ES256, k.ec, "ec-1"}, {jose.EdDSA, k.ed, "ed-1"}} {
		token := signJWT(b, bb.alg, bb.key, bb.kid, claimsAt(time.Now(), nil))
		b.Run(string(bb.alg), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := j.Verify(context.Background(), token); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkJWTVerifyCached(b *testing.B) {
	_, url := startJWKS(b, http.StatusOK, standardJWKS(b))
	c := NewCache(newJWT(b, JWTConfig{JWKSURL: url}), CacheConfig{})
	token := signJWT(b, jose.RS256, testJWTKeys().rsa, "rsa-1", claimsAt(time.Now(), nil))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Verify(context.Background(), token); err != nil {
			b.Fatal(err)
		}
	}
}
