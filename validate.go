package lrocancel

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"

	"github.com/lro-cancel/lro_cancel/internal/audit"
	"github.com/lro-cancel/lro_cancel/internal/govern"
	"github.com/lro-cancel/lro_cancel/internal/pathtemplate"
)

// Validate checks the configuration, whether it came from a Caddyfile or
// from JSON. Caddy calls it after Provision; the Caddyfile parser calls
// the same checks so that `caddy adapt` names the offending line.
func (h *Handler) Validate() error {
	return validateConfig(h)
}

func validateConfig(h *Handler) error {
	switch h.Unlisted {
	case "", govern.UnlistedEnforce, govern.UnlistedDeny, govern.UnlistedPass:
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
		switch a.Format {
		case "", audit.FormatJSON, audit.FormatCloudAuditLog:
		default:
			return fmt.Errorf("lro_cancel: audit: format must be %s or %s, not %q", audit.FormatJSON, audit.FormatCloudAuditLog, a.Format)
		}
		if a.JournalTimeout < 0 {
			return errors.New("lro_cancel: audit: the journal timeout cannot be negative")
		}
		if a.JournalCheckpoint < 0 {
			return errors.New("lro_cancel: audit: the journal checkpoint interval cannot be negative")
		}
		if (a.JournalSeal != "" || a.JournalCheckpoint != 0) && a.Journal == "" {
			return errors.New("lro_cancel: audit: seal and checkpoint need a journal")
		}
		if a.JournalCheckpoint != 0 && a.JournalSeal == "" {
			return errors.New("lro_cancel: audit: a journal checkpoint interval needs a seal key")
		}
	}
	if h.Policy != nil {
		if _, err := compilePolicy(h.Policy); err != nil {
			return err
		}
	}
	if lc := h.Limits; lc != nil {
		if err := validateLimits(lc); err != nil {
			return err
		}
	}
	for _, s := range h.Unimplemented {
		if s != "*" && strings.ContainsAny(s, "/ ") {
			return fmt.Errorf("lro_cancel: unimplemented: %q is not a host", s)
		}
	}
	return nil
}

func validateLimits(lc *LimitsConfig) error {
	switch lc.Store {
	case "", limitStoreLocal:
		if lc.Redis != nil {
			return errors.New("lro_cancel: limits: redis settings given but the store is local")
		}
	case limitStoreRedis:
		if lc.Redis == nil || lc.Redis.Address == "" {
			return errors.New("lro_cancel: limits: store redis needs the server's address")
		}
		if err := validateRedisAddress(lc.Redis.Address); err != nil {
			return fmt.Errorf("lro_cancel: limits: %w", err)
		}
		if lc.Redis.DB < 0 || lc.Redis.Timeout < 0 {
			return errors.New("lro_cancel: limits: the redis db and timeout cannot be negative")
		}
	default:
		return fmt.Errorf("lro_cancel: limits: store must be %s or %s, not %q", limitStoreLocal, limitStoreRedis, lc.Store)
	}
	switch lc.OnError {
	case "", limitOnErrorDeny, limitOnErrorAllow:
	default:
		return fmt.Errorf("lro_cancel: limits: on_error must be %s or %s, not %q", limitOnErrorDeny, limitOnErrorAllow, lc.OnError)
	}
	if len(lc.Rules) == 0 {
		return errors.New("lro_cancel: limits: needs at least one rule")
	}
	return validateLimitRules(lc.Rules)
}

// validateLimitRules checks every rule's bounds and compiles its key; an
// error names the rule.
func validateLimitRules(rules []LimitRule) error {
	_, _, err := compileLimitRules(rules)
	if err != nil {
		return fmt.Errorf("lro_cancel: limits: %w", err)
	}
	return nil
}

func validateRedisAddress(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || port == "" {
		return fmt.Errorf("redis address %q: want <host>:<port>", addr)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("redis address %q: bad port", addr)
	}
	return nil
}

func validateURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("malformed URL %q: %w", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("malformed URL %q: want http:// or https:// and a host", s)
	}
	return nil
}

func validateTemplate(t string) error {
	_, err := pathtemplate.Parse(t)
	return err
}

// jwtAlgorithms are the asymmetric algorithms the jwt verifier accepts;
// "none" and the HMAC family are never accepted, which rules out
// algorithm-confusion attacks with a public key as an HMAC secret.
var jwtAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

func validateJWT(j *JWTConfig) error {
	switch {
	case j.JWKSURL == "" && j.JWKSFile == "":
		return errors.New("needs a key source: jwks_url or jwks_file")
	case j.JWKSURL != "" && j.JWKSFile != "":
		return errors.New("jwks_url and jwks_file are exclusive")
	}
	if j.JWKSURL != "" {
		if err := validateURL(j.JWKSURL); err != nil {
			return err
		}
	}
	for _, a := range j.Algorithms {
		if !slices.Contains(jwtAlgorithms, a) {
			return fmt.Errorf("unknown or unsupported algorithm %q (supported: %v)", a, jwtAlgorithms)
		}
	}
	return nil
}

// Interface guards
var (
	_ caddy.Validator = (*Handler)(nil)
)
