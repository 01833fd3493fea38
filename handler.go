package lrocancel

import (
	"fmt"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/lro-cancel/lro_cancel/internal/audit"
	"github.com/lro-cancel/lro_cancel/internal/credential"
	"github.com/lro-cancel/lro_cancel/internal/door/batch"
	"github.com/lro-cancel/lro_cancel/internal/govern"
	"github.com/lro-cancel/lro_cancel/internal/policy"
	"github.com/lro-cancel/lro_cancel/internal/reading"
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

	// Policy decides which principals may cancel which operations, after
	// scope and body and before unlisted and unimplemented, on every door.
	Policy *PolicyConfig `json:"policy,omitempty"`

	// Limits bound how many cancels a principal (or any CEL key) may make,
	// exactly, across every gateway sharing the store; after policy, before
	// unimplemented.
	Limits *LimitsConfig `json:"limits,omitempty"`

	recognizer recognizer
	core       *govern.Core
	closers    []func()
	logger     *zap.Logger
	metrics    *metrics
	// jwtClock is the JWT verifier's clock (nil: time.Now), so that a test
	// can pace key set fetches without sleeping.
	jwtClock func() time.Time
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

	// MaxInFlight bounds the verifier calls running at once; a new token
	// beyond it is refused 503 at once, while cached tokens go on.
	// Default: 64.
	MaxInFlight int `json:"max_in_flight,omitempty"`

	// CacheBytes bounds, in bytes, what the cached answers weigh together
	// (their claims above all), whatever the verifier answers: past it the
	// least recently used are forgotten. An answer weighing more than 32
	// KiB on its own is never cached (its token is verified all the same).
	// Default: 64 MiB.
	CacheBytes int64 `json:"cache_bytes,omitempty"`
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

	// JournalTimeout is how long a journal write and fsync may take before
	// it counts as failed (the cancels waiting on it are refused 503).
	// Default: 5s.
	JournalTimeout caddy.Duration `json:"journal_timeout,omitempty"`

	// JournalSeal is the file of the Ed25519 signer key (Go's note format,
	// made by `caddy lro-cancel journal keygen`) that seals the journal:
	// every line is then a leaf of one Merkle tree, and signed checkpoints
	// are appended and logged by http.handlers.lro_cancel.checkpoint.
	JournalSeal string `json:"journal_seal,omitempty"`

	// JournalCheckpoint is the most time between checkpoints of a sealed
	// journal while lines are unsealed (there is one at least every 1,000
	// lines too, and on reload and shutdown). Default: 10s.
	JournalCheckpoint caddy.Duration `json:"journal_checkpoint,omitempty"`

	// Format is the records' shape in the log and the journal: "json"
	// (default) or "cloud_audit_log" (Cloud Audit Logs entries).
	Format string `json:"format,omitempty"`
}

// PolicyConfig is the egress policy: CEL rules over the request and the
// resource (see the README for the attributes).
type PolicyConfig struct {
	// Rules are evaluated deny rules first, in order; then, if any allow
	// rule exists, one must hold. An error counts against the cancel.
	Rules []PolicyRule `json:"rules,omitempty"`

	// DryRun refuses nothing: each record says what the policy would have
	// done.
	DryRun bool `json:"dry_run,omitempty"`
}

// PolicyRule is one rule of the policy.
type PolicyRule struct {
	// Effect is "allow" or "deny".
	Effect string `json:"effect,omitempty"`

	// Name names the rule in refusals, records and metrics.
	Name string `json:"name,omitempty"`

	// Expr is a CEL expression yielding a bool.
	Expr string `json:"expr,omitempty"`
}

// LimitsConfig configures the fleet-wide cancel limits (see docs/limits.md).
type LimitsConfig struct {
	// Store is where admissions are counted: "local" (default: this
	// instance only) or "redis" (every gateway naming the same server).
	Store string `json:"store,omitempty"`

	// Redis is the server of the redis store.
	Redis *RedisConfig `json:"redis,omitempty"`

	// OnError is what a cancel gets when the store cannot answer: "deny"
	// (default: 503, nothing forwarded) or "allow" (forwarded, recorded
	// with limit_error).
	OnError string `json:"on_error,omitempty"`

	// Rules are the limits; a cancel must be admitted by every one.
	Rules []LimitRule `json:"rules,omitempty"`

	// DryRun refuses nothing: every cancel is admitted and counted, and
	// the record names the rule that would have refused it.
	DryRun bool `json:"dry_run,omitempty"`
}

// RedisConfig says how to reach the redis store (Redis, Valkey, or a
// managed Redis).
type RedisConfig struct {
	// Address is the server's host:port.
	Address string `json:"address,omitempty"`

	// PasswordFile holds the server's password (a trailing newline is
	// ignored); read at provisioning.
	PasswordFile string `json:"password_file,omitempty"`

	// DB is the database number. Default: 0.
	DB int `json:"db,omitempty"`

	// TLS speaks TLS to the server (rediss), verifying its certificate.
	TLS bool `json:"tls,omitempty"`

	// Timeout bounds one decision's round trip, connecting included; past
	// it the store counts as unavailable. Default: 100ms.
	Timeout caddy.Duration `json:"timeout,omitempty"`
}

// LimitRule is one limit: at most Count cancels per key in any Window.
type LimitRule struct {
	// Name names the rule in refusals, records and metrics.
	Name string `json:"name,omitempty"`

	// Count is how many cancels one key may make in any Window.
	Count int `json:"count,omitempty"`

	// Window is the sliding window's length.
	Window caddy.Duration `json:"window,omitempty"`

	// Key is a CEL expression yielding the string the rule counts by.
	// Default: request.auth.principal.
	Key string `json:"key,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.lro_cancel",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision sets defaults and builds the recognition, the verifiers, the
// audit sinks and the governance core. Caddy validates afterwards, and
// cleans up when Provision fails.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	if err := h.provisionDecision(); err != nil {
		return err
	}
	var err error
	if h.metrics, err = newMetrics(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("lro_cancel: registering metrics: %w", err)
	}
	core := h.core
	var format string
	if h.Audit != nil {
		format = h.Audit.Format
	}
	core.Sink = audit.Logger{L: h.logger.Named("audit"), Format: format}
	core.Count = h.metrics.countRequest
	core.Logger = h.logger
	core.OutageLog = &rate.Sometimes{First: 1, Interval: 10 * time.Second}
	if core.Limits != nil {
		if err := h.openLimitStore(core.Limits); err != nil {
			return err
		}
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
			Now:                h.jwtClock,
			OnFetch:            h.logKeyFetch,
		})
		if err != nil {
			return fmt.Errorf("lro_cancel: jwt: %w", err)
		}
		h.closers = append(h.closers, v.Close)
		core.JWT = h.cached("jwt", v, j.CacheConfig)
	}
	core.Opaque = h.newOpaqueVerifier()

	if h.Audit != nil && len(h.Audit.Stages) > 0 {
		core.Stages = core.Stages[:0]
		for _, s := range h.Audit.Stages {
			core.Stages = append(core.Stages, audit.Stage(s))
		}
	}
	if h.Audit != nil && h.Audit.Journal != "" {
		opts := audit.JournalOptions{
			Logger:  h.logger.Named("journal"),
			OnSync:  h.metrics.observeJournal,
			Timeout: time.Duration(h.Audit.JournalTimeout),
			Format:  h.Audit.Format,
		}
		if h.Audit.JournalSeal != "" {
			s, err := audit.LoadSigner(h.Audit.JournalSeal)
			if err != nil {
				return fmt.Errorf("lro_cancel: audit journal: %w", err)
			}
			opts.Seal = s
			opts.CheckpointInterval = time.Duration(h.Audit.JournalCheckpoint)
			opts.OnCheckpoint = h.metrics.observeCheckpoint(h.logger.Named("checkpoint"))
		}
		j, err := audit.OpenJournal(h.Audit.Journal, opts)
		if err != nil {
			return fmt.Errorf("lro_cancel: opening the audit journal: %w", err)
		}
		core.Journal = j
		h.closers = append(h.closers, func() { _ = j.Close() })
	}
	return nil
}

// provisionDecision builds what deciding on a cancel needs and nothing
// that acts on the world (no verifier, sink, journal or metrics): the
// running handler starts from it, and `caddy lro-cancel explain` and
// `test` use it alone, so that both decide with the same code.
func (h *Handler) provisionDecision() error {
	if h.Unlisted == "" {
		h.Unlisted = govern.UnlistedEnforce
	}
	if h.Body == "" {
		h.Body = bodyEmpty
	}
	if err := h.recognizer.provision(h.Template, h.Service); err != nil {
		return fmt.Errorf("lro_cancel: %w", err)
	}
	core := &govern.Core{
		Scopes:        h.Scopes,
		Unlisted:      h.Unlisted,
		Unimplemented: normalizeHosts(h.Unimplemented),
		Stages:        []audit.Stage{audit.StageCompleted},
		Logger:        zap.NewNop(),
	}
	if h.Policy != nil && len(h.Policy.Rules) > 0 {
		p, err := compilePolicy(h.Policy)
		if err != nil {
			return err
		}
		core.Policy, core.DryRun = p, h.Policy.DryRun
	}
	if h.Limits != nil {
		lim, err := provisionLimits(h.Limits)
		if err != nil {
			return err
		}
		core.Limits = lim
	}
	h.core = core
	return nil
}

// compilePolicy compiles the configured rules; an error names the rule.
func compilePolicy(pc *PolicyConfig) (*policy.Policy, error) {
	rules := make([]policy.Rule, len(pc.Rules))
	for i, r := range pc.Rules {
		e, err := policy.ParseEffect(r.Effect)
		if err != nil {
			return nil, fmt.Errorf("lro_cancel: policy rule %q: %w", r.Name, err)
		}
		rules[i] = policy.Rule{Effect: e, Name: r.Name, Expr: r.Expr}
	}
	p, err := policy.Compile(rules)
	if err != nil {
		return nil, fmt.Errorf("lro_cancel: policy: %w", err)
	}
	return p, nil
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
	if ic := h.Introspection; ic != nil {
		client := h.verifierClient(ic.MaxInFlight)
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
	client := h.verifierClient(tc.MaxInFlight)
	v := &credential.TokenInfo{URL: tc.URL, Client: client, Timeout: time.Duration(tc.Timeout)}
	if v.URL == "" {
		v.URL = credential.DefaultTokenInfoURL
	}
	return h.cached("tokeninfo", v, tc.CacheConfig)
}

// verifierClient is the opaque-token verifier's HTTP client. It keeps as
// many idle connections to the verifier as calls may run at once
// (max_in_flight): http.DefaultTransport keeps two, so a burst of new
// tokens would open (and, to Google, handshake) a connection for most
// calls. Its idle connections are closed when the handler is cleaned up.
func (h *Handler) verifierClient(maxInFlight int) *http.Client {
	if maxInFlight <= 0 {
		maxInFlight = credential.DefaultMaxInFlight
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = maxInFlight
	h.closers = append(h.closers, t.CloseIdleConnections)
	return &http.Client{Transport: t}
}

// cached puts a verifier behind its verified-token cache, both observed by
// the metrics under the verifier's name.
func (h *Handler) cached(name string, v credential.Verifier, c CacheConfig) *credential.Cache {
	return credential.NewCache(observedVerifier{name: name, v: v, m: h.metrics}, credential.CacheConfig{
		Size:        c.CacheSize,
		TTL:         time.Duration(c.CacheTTL),
		NegativeTTL: time.Duration(c.NegativeCacheTTL),
		MaxInFlight: c.MaxInFlight,
		MaxBytes:    c.CacheBytes,
		Observe:     h.metrics.observeCache(name),
	})
}

// ServeHTTP reads the request as Google's front end could, and governs it
// when some reading is a cancel or a batch.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if reading.Passes(r) {
		return next.ServeHTTP(w, r)
	}
	rd := h.recognizer.reader.Read(r)
	switch rd.Door {
	case reading.None:
		return next.ServeHTTP(w, r)
	case reading.Batch:
		return batch.Serve(h.core, rd.Service, rd.ContentType, refusalOf(&rd), w, r, next, h.partReader(r))
	}
	x, door := h.recognizer.read(r, &rd, h.Body == bodyStrict)
	if h.core.Passes(&x) {
		return next.ServeHTTP(w, r)
	}
	return h.core.Serve(w, r, next, &x, door)
}

// partReader reads the embedded requests of batch, each as if it had been
// sent alone, through the same reader and doors as a request of its own.
// A batch inside a batch never gets here: the batch reader refuses it.
func (h *Handler) partReader(batch *http.Request) func(*http.Request, string) (govern.Cancel, bool) {
	return func(alone *http.Request, named string) (govern.Cancel, bool) {
		rd := h.recognizer.reader.ReadPart(alone, named, batch.Host, batch.URL.EscapedPath())
		if rd.Door == reading.None {
			return govern.Cancel{}, false
		}
		x, _ := h.recognizer.read(alone, &rd, h.Body == bodyStrict)
		return x, !h.core.Passes(&x)
	}
}

const (
	bodyEmpty  = "empty"
	bodyStrict = "strict"
)

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
