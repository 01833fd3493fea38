package credential

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"
)

// maxJWT is the longest token the JWT verifier parses: real access tokens
// stay well under 4 KiB, and an oversized one is refused before any work.
const maxJWT = 16 << 10

// minRSABits is the smallest RSA key trusted, as RFC 7518 section 3.3
// requires for RS* and PS*.
const minRSABits = 2048

// The JWT verifier's defaults.
const (
	defaultLeeway          = 30 * time.Second
	defaultRefreshInterval = 15 * time.Minute
	defaultMinRefresh      = time.Minute
)

// asymmetricAlgs are the only signature algorithms a JWT verifier can be
// told to accept: with an HMAC (HS*), whoever reads the published key set
// could sign, and "none" signs nothing.
var asymmetricAlgs = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512,
	jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512,
	jose.EdDSA,
}

// privateMembers are the JWK members that carry private or secret key
// material (RFC 7518 section 6).
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

// JWTConfig configures a JWT verifier. Zero durations take the defaults.
type JWTConfig struct {
	// JWKSURL is where the JSON Web Key Set (RFC 7517) is fetched from,
	// with GET: https, or http to a loopback host only, since whoever can
	// alter the key set can sign tokens. Redirects are not followed.
	JWKSURL string
	// JWKSFile is a local key set, read once by NewJWT. Exactly one of
	// JWKSURL and JWKSFile must be set.
	JWKSFile string
	// Issuers are the accepted iss values; empty: any issuer.
	Issuers []string
	// Audiences are the accepted aud values, at least one of which the
	// token must name; empty: any audience.
	Audiences []string
	// Algorithms are the accepted signature algorithms, default RS256 and
	// ES256. Only RS256-512, PS256-512, ES256-512 and EdDSA can be named.
	Algorithms []string
	// Leeway absorbs clock skew when exp, nbf and iat are checked: default
	// 30s; negative: none.
	Leeway time.Duration
	// Timeout bounds one fetch of the key set; default DefaultTimeout.
	Timeout time.Duration
	// RefreshInterval is how often the key set is fetched in the
	// background; default 15m. After a failed fetch the next one comes
	// sooner: MinRefreshInterval, doubling while failures last.
	RefreshInterval time.Duration
	// MinRefreshInterval is the least time between the fetches made for
	// a token whose kid is unknown or while no key set is loaded; default
	// 1m. It bounds what a flood of forged kids can make the verifier do.
	MinRefreshInterval time.Duration
	// Client fetches the key set; http.DefaultClient when nil.
	Client *http.Client
	// Now tells the time, for the claims and for pacing fetches; default
	// time.Now.
	Now func() time.Time
	// OnFetch, when set, is called after every fetch of the key set with
	// its error (nil on success), for logs and metrics; a fetch cut short
	// by Close is not reported. Calls never overlap; OnFetch must return
	// quickly and must not call Verify.
	OnFetch func(err error)
}

// JWT verifies JWT access tokens locally (RFC 7519, signed as RFC 7515
// compact JWS) against a JSON Web Key Set: Google service-account
// self-signed JWTs, or those of a company's identity provider.
//
// Keys: the set's RSA (2048 bits and more), EC (P-256, P-384, P-521) and
// Ed25519 public keys whose use is "sig" or unset and whose key_ops, if
// any, include "verify"; other keys are ignored. A set holding private or
// secret key material is refused whole, as is one without a usable key.
// Key-bearing token headers (jku, jwk, x5u, x5c) are ignored: keys come
// only from the configured set. A token with a kid is checked against the
// keys with that kid; one without a kid against every key that fits its
// alg, so at most the set's size of signature checks.
//
// A token is valid when its alg is one of Algorithms, a key that fits
// that alg (and the key's own alg, if it names one) verifies its
// signature, and its claims hold: exp present and not past, nbf and iat
// not ahead (each with Leeway), iss among Issuers and aud meeting
// Audiences when those are set. Anything else is an *InvalidError, with
// ReasonExpired for a past exp.
//
// Failures: a URL key set is fetched by NewJWT, again every
// RefreshInterval, and on demand for a token whose kid is unknown or
// while no set is loaded; on-demand fetches are shared by concurrent
// requests and come at most once per MinRefreshInterval. A failed fetch
// keeps the last good set. While no set has ever been loaded, or when the
// kid is still unknown and the last fetch failed, Verify returns an error
// wrapping ErrUnavailable: the token may be good, so the request must
// wait rather than be forwarded or told its token is bad.
type JWT struct {
	url                string
	client             *http.Client
	algs               []jose.SignatureAlgorithm
	issuers, audiences []string
	leeway, timeout    time.Duration
	refreshEvery       time.Duration
	minRefresh         time.Duration
	now                func() time.Time
	onFetch            func(error)
	keys               atomic.Pointer[keySet]
	flight             singleflight.Group
	stop               context.CancelFunc
	done               chan struct{}
	closeOnce          sync.Once
	fetchMu            sync.Mutex // serialises fetches; guards the fields below
	limiter            *rate.Limiter
	lastErr            error
}

// NewJWT checks cfg and loads its key set. A key file that cannot be read
// or holds no usable key is an error. A key set URL is fetched once before
// NewJWT returns, then in the background until Close; a failed first
// fetch is not an error (OnFetch hears of it), so that the gateway starts
// and answers 503 until the keys arrive.
func NewJWT(cfg JWTConfig) (*JWT, error) {
	j := &JWT{
		issuers:      slices.Clone(cfg.Issuers),
		audiences:    slices.Clone(cfg.Audiences),
		leeway:       cfg.Leeway,
		timeout:      cfg.Timeout,
		refreshEvery: cfg.RefreshInterval,
		minRefresh:   cfg.MinRefreshInterval,
		now:          cfg.Now,
		onFetch:      cfg.OnFetch,
	}
	if err := j.configure(cfg); err != nil {
		return nil, fmt.Errorf("configure JWT verifier: %w", err)
	}
	if cfg.JWKSFile != "" {
		data, err := os.ReadFile(cfg.JWKSFile)
		if err != nil {
			return nil, fmt.Errorf("configure JWT verifier: %w", err)
		}
		set, err := parseKeySet(data)
		if err != nil {
			return nil, fmt.Errorf("configure JWT verifier: load %s: %w", cfg.JWKSFile, err)
		}
		j.keys.Store(set)
		return j, nil
	}
	ctx, stop := context.WithCancel(context.Background())
	j.stop, j.done = stop, make(chan struct{})
	err := j.scheduledFetch(ctx)
	go j.refresh(ctx, err)
	return j, nil
}

// configure checks cfg and fills in j's defaults.
func (j *JWT) configure(cfg JWTConfig) error {
	switch {
	case (cfg.JWKSURL == "") == (cfg.JWKSFile == ""):
		return errors.New("set exactly one of a JWKS URL and a JWKS file")
	case cfg.Timeout < 0 || cfg.RefreshInterval < 0 || cfg.MinRefreshInterval < 0:
		return errors.New("timeout and refresh intervals must not be negative")
	}
	if cfg.JWKSURL != "" {
		u, err := url.Parse(cfg.JWKSURL)
		if err != nil {
			return fmt.Errorf("parse JWKS URL: %w", err)
		}
		if !(u.Scheme == "https" && u.Host != "" || u.Scheme == "http" && isLoopback(u.Hostname())) {
			return fmt.Errorf("JWKS URL %s must be https (http only to a loopback host)", u.Redacted())
		}
		j.url = u.String()
	}
	algs, err := signatureAlgorithms(cfg.Algorithms)
	if err != nil {
		return err
	}
	j.algs = algs
	switch {
	case j.leeway == 0:
		j.leeway = defaultLeeway
	case j.leeway < 0:
		j.leeway = 0
	}
	if j.timeout == 0 {
		j.timeout = DefaultTimeout
	}
	if j.refreshEvery == 0 {
		j.refreshEvery = defaultRefreshInterval
	}
	if j.minRefresh == 0 {
		j.minRefresh = defaultMinRefresh
	}
	if j.now == nil {
		j.now = time.Now
	}
	j.limiter = rate.NewLimiter(rate.Every(j.minRefresh), 1)
	j.client = noRedirects(cfg.Client)
	return nil
}

// isLoopback reports whether host names this machine.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// signatureAlgorithms checks the configured algorithm names; none means
// RS256 and ES256.
func signatureAlgorithms(names []string) ([]jose.SignatureAlgorithm, error) {
	if len(names) == 0 {
		return []jose.SignatureAlgorithm{jose.RS256, jose.ES256}, nil
	}
	var algs []jose.SignatureAlgorithm
	for _, name := range names {
		alg := jose.SignatureAlgorithm(name)
		if !slices.Contains(asymmetricAlgs, alg) {
			return nil, fmt.Errorf("signature algorithm %q cannot be accepted: only RS256-512, PS256-512, ES256-512 and EdDSA can", name)
		}
		if !slices.Contains(algs, alg) {
			algs = append(algs, alg)
		}
	}
	return algs, nil
}

// Close stops the background refresher of a URL key set and waits for it
// to end. It may be called more than once.
func (j *JWT) Close() {
	j.closeOnce.Do(func() {
		if j.stop != nil {
			j.stop()
			<-j.done
		}
	})
}

// jwtClaims are the claims the verifier reads.
type jwtClaims struct {
	jwt.Claims
	Scope         scopeList `json:"scope"`
	Scp           scopeList `json:"scp"`
	Email         string    `json:"email"`
	EmailVerified *boolean  `json:"email_verified"`
	Azp           string    `json:"azp"`
	ClientID      string    `json:"client_id"`
}

// scopeList is a scope claim: a space-separated string (RFC 8693 scope,
// Azure's scp) or an array of strings (Okta's scp).
type scopeList []string

// UnmarshalJSON implements json.Unmarshaler.
func (s *scopeList) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*s = strings.Fields(one)
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("expected a string or an array of strings")
	}
	var scopes []string
	for _, m := range many {
		scopes = append(scopes, strings.Fields(m)...)
	}
	*s = scopes
	return nil
}

// Verify checks token's signature against the key set and its claims.
// The scopes are the scope claim's, else scp's; the client id is azp,
// else client_id; an email whose email_verified is false is dropped.
// Claims are the whole verified payload, decoded by go-jose's JSON
// (duplicate claims refused), numbers as float64.
func (j *JWT) Verify(ctx context.Context, token string) (*Info, error) {
	if len(token) > maxJWT {
		return nil, rejected(fmt.Sprintf("token exceeds %d bytes", maxJWT))
	}
	switch parts := strings.Count(token, ".") + 1; parts {
	case 3:
	case 5:
		return nil, rejected("token is an encrypted JWT (JWE), not a signed one")
	default:
		return nil, rejected(fmt.Sprintf("token has %d dot-separated parts, not a signed JWT's 3", parts))
	}
	tok, err := jwt.ParseSigned(token, j.algs)
	if err != nil {
		return nil, rejected("parse JWT: " + redact(err.Error(), token))
	}
	header := tok.Headers[0]
	keys, err := j.keysFor(ctx, header.KeyID, jose.SignatureAlgorithm(header.Algorithm), token)
	if err != nil {
		return nil, err
	}
	var (
		c jwtClaims
		m map[string]any
	)
	for _, k := range keys {
		// Claims reads the payload only once the signature verifies, into
		// c and then m; a payload that c refuses never reaches m.
		if err = tok.Claims(k.pub, &c, &m); !errors.Is(err, jose.ErrCryptoFailure) {
			break
		}
	}
	switch {
	case errors.Is(err, jose.ErrCryptoFailure):
		return nil, rejected("signature does not verify")
	case err != nil:
		return nil, rejected("read JWT claims: " + redact(err.Error(), token))
	}
	if err := j.checkClaims(&c, token); err != nil {
		return nil, err
	}
	info := &Info{
		Subject:  c.Subject,
		Email:    c.Email,
		Audience: strings.Join(c.Audience, " "),
		ClientID: c.Azp,
		Scopes:   c.Scope,
		Expiry:   c.Expiry.Time(),
		Claims:   m,
		Verifier: VerifierJWT,
	}
	// A JWT's payload cannot hold the token, which holds the payload
	// encoded and more; dropToken makes that a guarantee all the same.
	dropToken(info.Claims, token)
	if len(info.Scopes) == 0 {
		info.Scopes = c.Scp
	}
	if info.ClientID == "" {
		info.ClientID = c.ClientID
	}
	if c.EmailVerified != nil && !*c.EmailVerified {
		// An unverified address must not stand for the principal.
		info.Email = ""
	}
	return info, nil
}

// checkClaims checks the time, issuer and audience claims of a token whose
// signature verified.
func (j *JWT) checkClaims(c *jwtClaims, token string) error {
	if c.Expiry == nil {
		return rejected("token has no exp: an access token must expire")
	}
	if len(j.issuers) > 0 && !slices.Contains(j.issuers, c.Issuer) {
		return rejected(fmt.Sprintf("issuer %q is not accepted", redact(c.Issuer, token)))
	}
	err := c.ValidateWithLeeway(jwt.Expected{AnyAudience: j.audiences, Time: j.now()}, j.leeway)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, jwt.ErrExpired):
		return &InvalidError{Reason: ReasonExpired, Detail: "token expired at " + c.Expiry.Time().UTC().Format(time.RFC3339)}
	case errors.Is(err, jwt.ErrNotValidYet):
		return rejected("token is not valid before " + c.NotBefore.Time().UTC().Format(time.RFC3339))
	case errors.Is(err, jwt.ErrIssuedInTheFuture):
		return rejected("token is issued in the future, at " + c.IssuedAt.Time().UTC().Format(time.RFC3339))
	case errors.Is(err, jwt.ErrInvalidAudience):
		return rejected("token names no accepted audience")
	}
	return rejected("check JWT claims: " + redact(err.Error(), token))
}

// rejected is the verdict on a bad token; detail must not hold the token.
func rejected(detail string) *InvalidError {
	return &InvalidError{Reason: ReasonInvalid, Detail: detail}
}

// keysFor returns the keys that may have signed a token with kid and alg,
// fetching the key set again when none is loaded or kid is unknown.
func (j *JWT) keysFor(ctx context.Context, kid string, alg jose.SignatureAlgorithm, token string) ([]verifyKey, error) {
	set := j.keys.Load()
	if (set == nil || !set.has(kid)) && j.url != "" {
		err := j.refetch(ctx)
		set = j.keys.Load()
		switch {
		case set == nil:
			return nil, fmt.Errorf("verify JWT: %w: no key set loaded: %w", ErrUnavailable, err)
		case !set.has(kid) && err != nil:
			return nil, fmt.Errorf("verify JWT: %w: key id unknown and key set not refreshed: %w", ErrUnavailable, err)
		}
	}
	if !set.has(kid) {
		return nil, rejected(fmt.Sprintf("key id %q is not in the key set", redact(kid, token)))
	}
	keys := set.candidates(kid, alg)
	if len(keys) == 0 {
		return nil, rejected(fmt.Sprintf("no key with id %q fits algorithm %s", redact(kid, token), alg))
	}
	return keys, nil
}

// refetch fetches the key set for a token whose key is missing. Concurrent
// callers share one fetch, and such fetches come at most once per
// MinRefreshInterval; when none is due, the caller gets the outcome of
// the last fetch. The shared fetch outlives a caller that gives up.
func (j *JWT) refetch(ctx context.Context) error {
	ch := j.flight.DoChan("", func() (any, error) {
		j.fetchMu.Lock()
		defer j.fetchMu.Unlock()
		if !j.limiter.AllowN(j.now(), 1) {
			return nil, j.lastErr
		}
		return nil, j.fetchLocked(context.WithoutCancel(ctx))
	})
	select {
	case res := <-ch:
		return res.Err
	case <-ctx.Done():
		return fmt.Errorf("wait for key set fetch: %w", context.Cause(ctx))
	}
}

// scheduledFetch fetches the key set unconditionally; it counts against
// the pace of on-demand fetches all the same.
func (j *JWT) scheduledFetch(ctx context.Context) error {
	j.fetchMu.Lock()
	defer j.fetchMu.Unlock()
	j.limiter.ReserveN(j.now(), 1)
	return j.fetchLocked(ctx)
}

// refresh fetches the key set every RefreshInterval until ctx ends; after
// a failure it retries sooner, from MinRefreshInterval doubling up to
// RefreshInterval. err is the outcome of the fetch before.
func (j *JWT) refresh(ctx context.Context, err error) {
	defer close(j.done)
	var backoff time.Duration
	for {
		delay := j.refreshEvery
		if err != nil {
			backoff = min(max(2*backoff, j.minRefresh), j.refreshEvery)
			delay = backoff
		} else {
			backoff = 0
		}
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		err = j.scheduledFetch(ctx)
	}
}

// fetchLocked downloads the key set and, if it is good, puts it in use.
// The caller holds fetchMu.
func (j *JWT) fetchLocked(ctx context.Context) error {
	set, err := j.download(ctx)
	if err != nil {
		err = fmt.Errorf("fetch JWKS: %w", err)
	} else {
		j.keys.Store(set)
	}
	j.lastErr = err
	if j.onFetch != nil && ctx.Err() == nil {
		j.onFetch(err)
	}
	return err
}

// download reads and parses the key set within the timeout.
func (j *JWT) download(ctx context.Context) (*keySet, error) {
	ctx, cancel := context.WithTimeout(ctx, j.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.url, nil)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := j.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s answered status %d", j.url, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", j.url, err)
	}
	if len(body) > maxAnswer {
		return nil, fmt.Errorf("%s answered more than %d bytes", j.url, maxAnswer)
	}
	set, err := parseKeySet(body)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", j.url, err)
	}
	return set, nil
}

// verifyKey is one public key of a key set.
type verifyKey struct {
	// alg is the JWK's alg; empty when it names none.
	alg jose.SignatureAlgorithm
	// pub is an *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey.
	pub any
}

// fits reports whether k may check a signature made with alg.
func (k verifyKey) fits(alg jose.SignatureAlgorithm) bool {
	if k.alg != "" && k.alg != alg {
		return false
	}
	switch pub := k.pub.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(string(alg), "RS") || strings.HasPrefix(string(alg), "PS")
	case *ecdsa.PublicKey:
		switch pub.Curve {
		case elliptic.P256():
			return alg == jose.ES256
		case elliptic.P384():
			return alg == jose.ES384
		case elliptic.P521():
			return alg == jose.ES512
		}
	case ed25519.PublicKey:
		return alg == jose.EdDSA
	}
	return false
}

// keySet is a parsed JWKS; it is never modified once in use.
type keySet struct {
	all   []verifyKey
	byKID map[string][]verifyKey
}

// has reports whether a token with kid can find its keys in s: any set
// will do for a token without a kid.
func (s *keySet) has(kid string) bool {
	return kid == "" || len(s.byKID[kid]) > 0
}

// candidates returns the keys to try on a token with kid and alg.
func (s *keySet) candidates(kid string, alg jose.SignatureAlgorithm) []verifyKey {
	pool := s.all
	if kid != "" {
		pool = s.byKID[kid]
	}
	var keys []verifyKey
	for _, k := range pool {
		if k.fits(alg) {
			keys = append(keys, k)
		}
	}
	return keys
}

// parseKeySet reads a JWKS. Keys it cannot use are skipped, as RFC 7517
// section 5 advises; a set with private key material, or without a single
// usable key, is an error.
func parseKeySet(data []byte) (*keySet, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := decodeObject(data, &doc); err != nil {
		return nil, fmt.Errorf("decode key set: %w", err)
	}
	set := &keySet{byKID: make(map[string][]verifyKey)}
	for i, raw := range doc.Keys {
		var members map[string]json.RawMessage
		if err := json.Unmarshal(raw, &members); err != nil {
			return nil, fmt.Errorf("key %d is not a JSON object", i)
		}
		for _, m := range privateMembers {
			if _, ok := members[m]; ok {
				// A publisher that leaks keys cannot be trusted with any.
				return nil, fmt.Errorf("key %d holds private key material (%q): refusing the key set", i, m)
			}
		}
		kid, k, ok := parseKey(raw, members["key_ops"])
		if !ok {
			continue
		}
		set.all = append(set.all, k)
		if kid != "" {
			set.byKID[kid] = append(set.byKID[kid], k)
		}
	}
	if len(set.all) == 0 {
		return nil, fmt.Errorf("no usable signature key among %d keys", len(doc.Keys))
	}
	return set, nil
}

// parseKey reads one public JWK, reporting whether it may verify
// signatures.
func parseKey(raw, keyOps json.RawMessage) (string, verifyKey, bool) {
	var jwk jose.JSONWebKey
	if jwk.UnmarshalJSON(raw) != nil || jwk.Use != "" && jwk.Use != "sig" {
		return "", verifyKey{}, false
	}
	if keyOps != nil {
		var ops []string
		if json.Unmarshal(keyOps, &ops) != nil || !slices.Contains(ops, "verify") {
			return "", verifyKey{}, false
		}
	}
	k := verifyKey{pub: jwk.Key}
	switch pub := jwk.Key.(type) {
	case *rsa.PublicKey:
		if pub.N.BitLen() < minRSABits {
			return "", verifyKey{}, false
		}
	case *ecdsa.PublicKey, ed25519.PublicKey:
	default:
		return "", verifyKey{}, false
	}
	if jwk.Algorithm != "" {
		alg := jose.SignatureAlgorithm(jwk.Algorithm)
		if !slices.Contains(asymmetricAlgs, alg) || !k.fits(alg) {
			return "", verifyKey{}, false
		}
		k.alg = alg
	}
	return jwk.KeyID, k, true
}

var _ Verifier = (*JWT)(nil)
