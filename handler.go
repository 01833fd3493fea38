package lrocancel

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/lro-cancel/lro_cancel/internal/audit"
	"github.com/lro-cancel/lro_cancel/internal/body"
	"github.com/lro-cancel/lro_cancel/internal/catalog"
	"github.com/lro-cancel/lro_cancel/internal/credential"
	"github.com/lro-cancel/lro_cancel/internal/googleerr"
)

// Handler governs every long-running-operation cancel that reaches it:
// it verifies the caller's OAuth token and scope, requires the empty body
// the method defines, writes an audit record and then forwards the request
// to the next handler or answers UNIMPLEMENTED. Requests that are not
// cancels go to the next handler untouched.
type Handler struct {
	// Service pins the API hosts this handler governs, e.g.
	// "vault.googleapis.com". When empty, the API is the request's Host.
	Service []string `json:"service,omitempty"`

	// Template adds cancel methods for private or unlisted APIs, as
	// google.api.http path templates, e.g.
	// "/v1/{name=jobs/*/operations/*}:cancel". They apply to the pinned
	// services, or to every host when none is pinned.
	Template []string `json:"template,omitempty"`

	// Scopes are the accepted OAuth scopes; the token must hold one of
	// them. When empty, the catalog's scopes of the method apply.
	Scopes []string `json:"scopes,omitempty"`

	// Unimplemented lists the services whose cancels are answered with
	// 501 UNIMPLEMENTED and never forwarded; "*" means every service.
	Unimplemented []string `json:"unimplemented,omitempty"`

	// Unlisted says what to do with cancels of methods the catalog does
	// not list: "enforce" (default: a verified token is required),
	// "deny" (403) or "pass" (not governed).
	Unlisted string `json:"unlisted,omitempty"`

	// Body is "empty" (default: what Google's clients send for an empty
	// message) or "strict" (zero bytes only).
	Body string `json:"body,omitempty"`

	// TokenInfo verifies opaque tokens with Google's tokeninfo endpoint.
	// It is the default verifier unless Introspection is set.
	TokenInfo *TokenInfoConfig `json:"tokeninfo,omitempty"`

	// Introspection verifies opaque tokens with an RFC 7662 endpoint
	// instead of tokeninfo.
	Introspection *IntrospectionConfig `json:"introspection,omitempty"`

	// JWT verifies JWT-shaped access tokens locally against a key set.
	JWT *JWTConfig `json:"jwt,omitempty"`

	// Audit configures the audit records' stages and durable journal.
	Audit *AuditConfig `json:"audit,omitempty"`

	catalog *catalog.Catalog
	opaque  credential.Verifier
	jwt     credential.Verifier // nil unless configured
	closers []func()
	// verifierDown logs a verifier outage once per burst, not per request.
	verifierDown *rate.Sometimes
	stages       []audit.Stage
	sink         audit.Sink
	journal      *audit.Journal // nil unless configured
	logger       *zap.Logger
	metrics      *metrics
	services     []string // normalized Service
}

// CacheConfig bounds the verified-token cache of a verifier.
type CacheConfig struct {
	// CacheTTL is the longest a positive answer is cached, never past the
	// token's expiry. Default: 5m.
	CacheTTL caddy.Duration `json:"cache_ttl,omitempty"`

	// CacheSize is the most tokens the cache holds. Default: 10000.
	CacheSize int `json:"cache_size,omitempty"`

	// NegativeCacheTTL is how long an invalid-token answer is cached.
	// Default: 10s.
	NegativeCacheTTL caddy.Duration `json:"negative_cache_ttl,omitempty"`
}

// TokenInfoConfig configures the tokeninfo verifier.
type TokenInfoConfig struct {
	// URL of the tokeninfo endpoint.
	// Default: https://oauth2.googleapis.com/tokeninfo.
	URL string `json:"url,omitempty"`

	// Timeout of one tokeninfo call. Default: 5s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	CacheConfig
}

// IntrospectionConfig configures the RFC 7662 introspection verifier.
type IntrospectionConfig struct {
	// URL of the introspection endpoint (required).
	URL string `json:"url,omitempty"`

	// ClientID authenticates the gateway to the endpoint.
	ClientID string `json:"client_id,omitempty"`

	// ClientSecret authenticates the gateway to the endpoint. Placeholders
	// such as {env.INTROSPECTION_SECRET} are replaced at provisioning.
	ClientSecret string `json:"client_secret,omitempty"`

	// Timeout of one introspection call. Default: 5s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	CacheConfig
}

// JWTConfig configures local verification of JWT access tokens.
type JWTConfig struct {
	// JWKSURL is where the key set is fetched from.
	JWKSURL string `json:"jwks_url,omitempty"`

	// JWKSFile is a local key set file, instead of JWKSURL.
	JWKSFile string `json:"jwks_file,omitempty"`

	// Issuer lists the accepted "iss" values.
	Issuer []string `json:"issuer,omitempty"`

	// Audience lists the accepted "aud" values.
	Audience []string `json:"audience,omitempty"`

	// Algorithms lists the accepted signing algorithms.
	// Default: RS256, ES256.
	Algorithms []string `json:"algorithms,omitempty"`

	// Leeway is the clock skew allowed on exp, nbf and iat. Default: 30s.
	Leeway caddy.Duration `json:"leeway,omitempty"`

	// Timeout of one key set fetch. Default: 5s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// RefreshInterval is how often the key set is fetched again in the
	// background. Default: 15m.
	RefreshInterval caddy.Duration `json:"refresh_interval,omitempty"`

	// MinRefreshInterval is the least time between fetches triggered by
	// tokens with an unknown kid (or while no key set has loaded), so that
	// forged kids cannot flood the key server. Default: 1m.
	MinRefreshInterval caddy.Duration `json:"min_refresh_interval,omitempty"`

	CacheConfig
}

// AuditConfig configures the audit records.
type AuditConfig struct {
	// Stages lists the records written per request: "received" (before
	// anything is forwarded) and "completed". Default: completed only.
	Stages []string `json:"stages,omitempty"`

	// Journal is a file that receives a durable copy of every record.
	Journal string `json:"journal,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.lro_cancel",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision sets defaults and builds the catalog, verifiers and sinks.
func (h *Handler) Provision(ctx caddy.Context) (err error) {
	defer func() {
		if err != nil {
			_ = h.Cleanup() // what was started before the failure
		}
	}()
	h.logger = ctx.Logger()
	h.verifierDown = &rate.Sometimes{First: 1, Interval: 10 * time.Second}
	if h.Unlisted == "" {
		h.Unlisted = unlistedEnforce
	}
	if h.Body == "" {
		h.Body = bodyEmpty
	}
	if err = h.Validate(); err != nil {
		return err
	}
	h.services = normalizeHosts(h.Service)
	cat, err := newCatalog(h.Template, h.services)
	if err != nil {
		return err
	}
	h.catalog = cat
	if h.metrics, err = newMetrics(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("lro_cancel: registering metrics: %w", err)
	}

	if j := h.JWT; j != nil {
		v, err := credential.NewJWT(credential.JWTConfig{
			JWKSURL:            j.JWKSURL,
			JWKSFile:           j.JWKSFile,
			Issuers:            j.Issuer,
			Audiences:          j.Audience,
			Algorithms:         j.Algorithms,
			Leeway:             time.Duration(j.Leeway),
			Timeout:            time.Duration(j.Timeout),
			RefreshInterval:    time.Duration(j.RefreshInterval),
			MinRefreshInterval: time.Duration(j.MinRefreshInterval),
			OnFetch:            h.logKeyFetch,
		})
		if err != nil {
			return fmt.Errorf("lro_cancel: jwt: %w", err)
		}
		h.closers = append(h.closers, v.Close)
		h.jwt = h.cached("jwt", v, j.CacheConfig)
	}
	h.opaque = h.newOpaqueVerifier()

	h.stages = []audit.Stage{audit.StageCompleted}
	if h.Audit != nil && len(h.Audit.Stages) > 0 {
		h.stages = h.stages[:0]
		for _, s := range h.Audit.Stages {
			h.stages = append(h.stages, audit.Stage(s))
		}
	}
	h.sink = audit.Logger{L: h.logger.Named("audit")}
	if h.Audit != nil && h.Audit.Journal != "" {
		j, err := audit.OpenJournal(h.Audit.Journal, audit.JournalOptions{
			Logger: h.logger.Named("journal"),
			OnSync: h.metrics.observeJournal,
		})
		if err != nil {
			return fmt.Errorf("lro_cancel: opening the audit journal: %w", err)
		}
		h.journal = j
		h.closers = append(h.closers, func() { _ = j.Close() })
	}
	return nil
}

// logKeyFetch reports a failed JWKS fetch; the last good key set stays.
func (h *Handler) logKeyFetch(err error) {
	if err != nil {
		h.logger.Warn("fetching the jwt key set failed; keeping the last good one", zap.Error(err))
	}
}

// Cleanup stops the key set refresher and closes the journal.
func (h *Handler) Cleanup() error {
	for _, c := range h.closers {
		c()
	}
	return nil
}

func (h *Handler) newOpaqueVerifier() credential.Verifier {
	client := &http.Client{}
	if ic := h.Introspection; ic != nil {
		secret := caddy.NewReplacer().ReplaceAll(ic.ClientSecret, "")
		v := &credential.Introspection{
			URL:          ic.URL,
			ClientID:     ic.ClientID,
			ClientSecret: secret,
			Client:       client,
			Timeout:      time.Duration(ic.Timeout),
		}
		return h.cached("introspection", v, ic.CacheConfig)
	}
	tc := h.TokenInfo
	if tc == nil {
		tc = new(TokenInfoConfig)
	}
	v := &credential.TokenInfo{URL: tc.URL, Client: client, Timeout: time.Duration(tc.Timeout)}
	if v.URL == "" {
		v.URL = credential.DefaultTokenInfoURL
	}
	return h.cached("tokeninfo", v, tc.CacheConfig)
}

// cached puts a verifier behind its verified-token cache, both observed by
// the metrics under the verifier's name.
func (h *Handler) cached(name string, v credential.Verifier, c CacheConfig) *credential.Cache {
	return credential.NewCache(observedVerifier{name: name, v: v, m: h.metrics}, credential.CacheConfig{
		Size:        c.CacheSize,
		TTL:         time.Duration(c.CacheTTL),
		NegativeTTL: time.Duration(c.NegativeCacheTTL),
		Observe:     h.metrics.observeCache(name),
	})
}

// Validate checks the configuration, whether it came from a Caddyfile or
// from JSON.
func (h *Handler) Validate() error {
	return validateConfig(h)
}

// ServeHTTP recognises the request and governs it when it is a cancel.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	res := recognize(h.catalog, h.services, r)
	switch {
	case res.Kind == catalog.NotCancel:
		return next.ServeHTTP(w, r)
	case res.Kind == catalog.Unlisted && h.Unlisted == unlistedPass:
		return next.ServeHTTP(w, r)
	}
	return h.govern(w, r, next, &res)
}

// govern runs the pipeline for a recognised cancel: audit id, credentials,
// verification, scope, body, action; and writes the completed record
// whatever happens, including when a later handler fails or panics.
func (h *Handler) govern(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, res *catalog.Result) error {
	start := time.Now()
	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	rec := newRecord(r, repl, res)
	w.Header().Set("Audit-Id", rec.AuditID)
	repl.Map(placeholders(&rec))
	defer func() {
		rec.Duration = time.Since(start)
		h.metrics.requests.WithLabelValues(serviceLabel(res), string(rec.Decision)).Inc()
		_ = h.emit(&rec, audit.StageCompleted)
	}()
	if err := h.emit(&rec, audit.StageReceived); err != nil {
		return h.refuse(w, journalUnavailable(), &rec)
	}

	if ref := h.check(r, res, &rec); ref != nil {
		return h.refuse(w, ref, &rec)
	}

	if res.Kind == catalog.Unlisted && h.Unlisted == unlistedDeny {
		return h.refuse(w, deniedUnlisted(), &rec)
	}
	if h.unimplemented(res.Service, r.Host) {
		return h.refuse(w, unimplemented(res.Service), &rec)
	}
	return h.forward(w, r, next, &rec)
}

// check runs the pipeline's checks in Google's order (credentials, scope,
// request) and returns the first refusal, or nil. It fills in the record
// as it learns who is calling.
func (h *Handler) check(r *http.Request, res *catalog.Result, rec *audit.Record) *refusal {
	// Before any refusal: no URL downstream (upstream, error log) may carry
	// a credential. A query token moves into Authorization, a query API key
	// into X-Goog-Api-Key; anything unreadable is just deleted.
	cred, err := credential.Extract(r)
	if cred.QueryAPIKey != "" && r.Header.Get("X-Goog-Api-Key") == "" {
		r.Header.Set("X-Goog-Api-Key", cred.QueryAPIKey)
	}
	if err == nil && cred.Source == credential.SourceQuery {
		credential.MoveToHeader(r, cred.Token)
	} else {
		credential.Scrub(r)
	}

	if res.Kind == catalog.Ambiguous {
		return ambiguousPath()
	}
	if r.Header.Get("X-HTTP-Method-Override") != "" {
		return methodOverride()
	}
	switch {
	case errors.Is(err, credential.ErrMissing):
		return credentialsMissing(cred.APIKeyOnly)
	case errors.Is(err, credential.ErrConflict):
		return badCredentials("Request carries more than one credential; send exactly one OAuth 2 access token.",
			"CREDENTIALS_CONFLICT")
	case err != nil:
		return badCredentials("Request carries a credential that cannot be read unambiguously.",
			"CREDENTIALS_MALFORMED")
	}
	rec.TokenID = credential.TokenID(cred.Token)

	info, err := h.verify(r.Context(), cred.Token)
	if err != nil {
		var invalid *credential.InvalidError
		if errors.As(err, &invalid) {
			return invalidToken(invalid.Reason)
		}
		h.verifierDown.Do(func() {
			h.logger.Warn("token verifier unavailable; refusing cancels with 503 (logged at most every 10s)",
				zap.String("audit_id", rec.AuditID), zap.Error(err))
		})
		return verifierUnavailable()
	}
	rec.Principal = info.Principal()

	rec.ScopesAccepted = h.acceptedScopes(res)
	used, ok := info.HasScope(rec.ScopesAccepted)
	if !ok {
		return scopeInsufficient(rec.ScopesAccepted)
	}
	rec.ScopeUsed = used

	return h.checkBody(r, res)
}

// verify sends a JWT-shaped token to the jwt verifier when one is
// configured, any other to tokeninfo or introspection.
func (h *Handler) verify(ctx context.Context, token string) (*credential.Info, error) {
	if h.jwt != nil && credential.LooksLikeJWT(token) {
		return h.jwt.Verify(ctx, token)
	}
	return h.opaque.Verify(ctx, token)
}

func (h *Handler) acceptedScopes(res *catalog.Result) []string {
	if len(h.Scopes) > 0 {
		return h.Scopes
	}
	if res.Method != nil {
		return res.Method.Scopes
	}
	return nil
}

// checkBody reads at most body.MaxBytes of the request body, refuses what
// is not an empty message and puts the bytes read back for the upstream,
// unchanged.
func (h *Handler) checkBody(r *http.Request, res *catalog.Result) *refusal {
	data, tooLarge, err := body.Read(r.Body)
	if err != nil {
		return invalidBody(&body.Violation{Description: "The request body could not be read."})
	}
	if tooLarge {
		return invalidBody(body.TooLarge())
	}
	rules := body.Rules{Strict: h.Body == bodyStrict, Vars: varsOf(res)}
	if res.Method != nil && res.Method.Body == catalog.BodyFields {
		rules.Fields = res.Method.Fields
	}
	// Every Content-Encoding line counts: a second one must not hide gzip.
	encoding := strings.Join(r.Header.Values("Content-Encoding"), ", ")
	if v := body.Check(data, encoding, rules); v != nil {
		return invalidBody(v)
	}
	if len(data) > 0 {
		r.Body = io.NopCloser(bytes.NewReader(data))
	}
	return nil
}

// varsOf gives the body check the path's variables. A body "name" must
// always equal the operation the path names, also where the template has
// no name variable (unlisted cancels, container's zone paths), so that the
// audited operation is the one the upstream acts on.
func varsOf(res *catalog.Result) map[string]string {
	vars := make(map[string]string, len(res.Vars)+1)
	for _, v := range res.Vars {
		vars[v.Name] = v.Value
	}
	if _, ok := vars["name"]; !ok {
		vars["name"] = res.Operation
	}
	return vars
}

func (h *Handler) unimplemented(service, host string) bool {
	if len(h.Unimplemented) == 0 {
		return false
	}
	host = catalog.NormalizeHost(host)
	return slices.ContainsFunc(h.Unimplemented, func(s string) bool {
		return s == "*" || s == service || s == host
	})
}

// forward runs the next handler and records the status the client got.
func (h *Handler) forward(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, rec *audit.Record) error {
	rec.Decision = audit.Forwarded
	rw := caddyhttp.NewResponseRecorder(w, nil, nil)
	err := next.ServeHTTP(rw, r)
	rec.UpstreamStatus = rw.Status()
	rec.Status = rw.Status()
	if err != nil {
		rec.UpstreamStatus = 0
		rec.Status = http.StatusInternalServerError
		if he, ok := errors.AsType[caddyhttp.HandlerError](err); ok && he.StatusCode != 0 {
			rec.Status = he.StatusCode
		}
	}
	return err
}

// refuse writes a refusal in Google's error envelope; nothing is forwarded.
func (h *Handler) refuse(w http.ResponseWriter, ref *refusal, rec *audit.Record) error {
	rec.Decision = ref.decision
	rec.Status = ref.err.Code
	ref.err.Metadata = map[string]string{"service": rec.Service, "method": rec.Method}
	if ref.wwwAuthenticate != "" {
		w.Header().Set("WWW-Authenticate", ref.wwwAuthenticate)
	}
	googleerr.Write(w, &ref.err)
	return nil
}

// emit writes the record at the given stage to the journal, which holds
// both stages, and to the audit log if the stage is one of its configured
// stages. The received record is on disk when emit returns (an error means
// it is not, and the request must stop); the completed record joins the
// next group commit without holding up the response. Sinks never see a
// credential: the record holds only a token hash prefix. The journal logs
// its own failures.
func (h *Handler) emit(rec *audit.Record, stage audit.Stage) error {
	rec.Stage = stage
	var err error
	switch {
	case h.journal == nil:
	case stage == audit.StageReceived:
		err = h.journal.Write(rec)
	default:
		err = h.journal.Append(rec)
	}
	if slices.Contains(h.stages, stage) {
		_ = h.sink.Write(rec) // the log sink reports its own failures
	}
	return err
}

// placeholders serves {http.lro_cancel.*} from the request's record as it
// stands when a placeholder is evaluated: one provider instead of a value
// per key, and the principal and decision are always current.
func placeholders(rec *audit.Record) caddy.ReplacerFunc {
	return func(key string) (any, bool) {
		switch key {
		case "http.lro_cancel.operation":
			return rec.Operation, true
		case "http.lro_cancel.service":
			return rec.Service, true
		case "http.lro_cancel.method":
			return rec.Method, true
		case "http.lro_cancel.audit_id":
			return rec.AuditID, true
		case "http.lro_cancel.principal":
			return rec.Principal, true
		case "http.lro_cancel.decision":
			return string(rec.Decision), true
		}
		return nil, false
	}
}

func newRecord(r *http.Request, repl *caddy.Replacer, res *catalog.Result) audit.Record {
	id, _ := repl.GetString("http.request.uuid")
	clientIP, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
	rec := audit.Record{
		AuditID:   id,
		Service:   res.Service,
		Method:    methodID(res),
		Operation: res.Operation,
		ClientIP:  clientIP,
		UserAgent: r.UserAgent(),
	}
	return rec
}

// serviceLabel is the service as a metrics label: the catalog's hosts are a
// bounded set, a request's Host is not, so unlisted, ambiguous and custom
// cancels share one label.
func serviceLabel(res *catalog.Result) string {
	if res.Method == nil || res.Method.ID == "custom" {
		return "other"
	}
	return res.Service
}

func methodID(res *catalog.Result) string {
	if res.Method != nil {
		return res.Method.ID
	}
	if res.Kind == catalog.Unlisted {
		return "unlisted"
	}
	return ""
}

const (
	unlistedEnforce = "enforce"
	unlistedDeny    = "deny"
	unlistedPass    = "pass"
	bodyEmpty       = "empty"
	bodyStrict      = "strict"
)

func validateConfig(h *Handler) error {
	switch h.Unlisted {
	case "", unlistedEnforce, unlistedDeny, unlistedPass:
	default:
		return fmt.Errorf("lro_cancel: unlisted must be enforce, deny or pass, not %q", h.Unlisted)
	}
	switch h.Body {
	case "", bodyEmpty, bodyStrict:
	default:
		return fmt.Errorf("lro_cancel: body must be empty or strict, not %q", h.Body)
	}
	for _, t := range h.Template {
		if err := validateTemplate(t); err != nil {
			return fmt.Errorf("lro_cancel: template: %w", err)
		}
	}
	if h.TokenInfo != nil && h.Introspection != nil {
		return errors.New("lro_cancel: tokeninfo and introspection are exclusive: choose one verifier for opaque tokens")
	}
	if h.TokenInfo != nil && h.TokenInfo.URL != "" {
		if err := validateURL(h.TokenInfo.URL); err != nil {
			return fmt.Errorf("lro_cancel: tokeninfo: %w", err)
		}
	}
	if ic := h.Introspection; ic != nil {
		if ic.URL == "" {
			return errors.New("lro_cancel: introspection needs a URL")
		}
		if err := validateURL(ic.URL); err != nil {
			return fmt.Errorf("lro_cancel: introspection: %w", err)
		}
	}
	if j := h.JWT; j != nil {
		if err := validateJWT(j); err != nil {
			return fmt.Errorf("lro_cancel: jwt: %w", err)
		}
	}
	if a := h.Audit; a != nil {
		for _, s := range a.Stages {
			if s != string(audit.StageReceived) && s != string(audit.StageCompleted) {
				return fmt.Errorf("lro_cancel: audit: unknown stage %q (want received or completed)", s)
			}
		}
		if len(a.Stages) > 0 && !slices.Contains(a.Stages, string(audit.StageCompleted)) {
			return errors.New("lro_cancel: audit: the completed stage cannot be turned off")
		}
	}
	for _, s := range h.Unimplemented {
		if s != "*" && strings.ContainsAny(s, "/ ") {
			return fmt.Errorf("lro_cancel: unimplemented: %q is not a host", s)
		}
	}
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
