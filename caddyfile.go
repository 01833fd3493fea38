package lrocancel

import (
	"math"
	"slices"
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"

	"github.com/lro-cancel/lro_cancel/internal/audit"
	"github.com/lro-cancel/lro_cancel/internal/govern"
)

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	handler := new(Handler)
	err := handler.UnmarshalCaddyfile(h.Dispenser)
	return handler, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens:
//
//	lro_cancel [<matcher>] {
//		service       <host>...
//		template      <path-template>
//		scopes        <scope>...
//		unimplemented [<host>...]
//		unlisted      enforce|deny|pass
//		body          empty|strict
//		tokeninfo     [<url>] { timeout <d>  cache_ttl <d>  cache_size <n>  cache_bytes <size>  negative_cache_ttl <d> }
//		introspection <url> { client_id <id>  client_secret <secret>  timeout <d>  cache_ttl <d> ... }
//		jwt { jwks_url <url> | jwks_file <path>  issuer <iss>...  audience <aud>...  algorithms <alg>...
//		      leeway <d>  timeout <d>  refresh_interval <d>  min_refresh_interval <d>  cache_ttl <d> ... }
//		audit { stages received completed  journal <path> { timeout <d>  seal <key-file>  checkpoint <d> } }
//		policy { allow|deny <name> <cel>  ...  dry_run }
//		limits { store local|redis <addr> { password_file <f>  db <n>  tls  timeout <d> }
//		         on_error deny|allow  rule <name> <count> <window> [<cel-key>]  ...  dry_run }
//	}
//
// Every error names the offending line.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	err := eachSubdirective(d, 0, func(name string) error {
		var err error
		switch name {
		case "service":
			h.Service, err = appendArgs(d, h.Service, 1)
		case "template":
			err = h.parseTemplate(d)
		case "scopes":
			h.Scopes, err = appendArgs(d, h.Scopes, 1)
		case "unimplemented":
			hosts := d.RemainingArgs()
			if len(hosts) == 0 {
				hosts = []string{"*"}
			}
			h.Unimplemented = append(h.Unimplemented, hosts...)
		case "unlisted":
			h.Unlisted, err = oneOf(d, govern.UnlistedEnforce, govern.UnlistedDeny, govern.UnlistedPass)
		case "body":
			h.Body, err = oneOf(d, bodyEmpty, bodyStrict)
		case "tokeninfo":
			err = h.parseTokenInfo(d)
		case "introspection":
			err = h.parseIntrospection(d)
		case "jwt":
			err = h.parseJWT(d)
		case "audit":
			err = h.parseAudit(d)
		case "policy":
			err = h.parsePolicy(d)
		case "limits":
			err = h.parseLimits(d)
		default:
			return d.Errf("unrecognized lro_cancel subdirective '%s'", name)
		}
		return err
	})
	if err != nil {
		return err
	}
	if err := validateConfig(h); err != nil {
		return d.Errf("%v", err)
	}
	return nil
}

func (h *Handler) parseTemplate(d *caddyfile.Dispenser) error {
	var t string
	if !d.AllArgs(&t) {
		return d.ArgErr()
	}
	if err := validateTemplate(t); err != nil {
		return d.Errf("bad template: %v", err)
	}
	h.Template = append(h.Template, t)
	return nil
}

func (h *Handler) parseTokenInfo(d *caddyfile.Dispenser) error {
	if h.TokenInfo != nil {
		return d.Err("tokeninfo given twice")
	}
	h.TokenInfo = new(TokenInfoConfig)
	if d.NextArg() {
		if err := parseURL(d, &h.TokenInfo.URL); err != nil {
			return err
		}
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	return eachSubdirective(d, 1, func(name string) error {
		var err error
		switch name {
		case "timeout":
			err = parseDuration(d, &h.TokenInfo.Timeout)
		default:
			err = parseCache(d, &h.TokenInfo.CacheConfig, "tokeninfo")
		}
		return err
	})
}

func (h *Handler) parseIntrospection(d *caddyfile.Dispenser) error {
	if h.Introspection != nil {
		return d.Err("introspection given twice")
	}
	ic := new(IntrospectionConfig)
	h.Introspection = ic
	if !d.NextArg() {
		return d.Err("introspection needs the endpoint's URL")
	}
	if err := parseURL(d, &ic.URL); err != nil {
		return err
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	return eachSubdirective(d, 1, func(name string) error {
		var err error
		switch name {
		case "client_id":
			err = oneArg(d, &ic.ClientID)
		case "client_secret":
			err = oneArg(d, &ic.ClientSecret)
		case "timeout":
			err = parseDuration(d, &ic.Timeout)
		default:
			err = parseCache(d, &ic.CacheConfig, "introspection")
		}
		return err
	})
}

func parseCache(d *caddyfile.Dispenser, c *CacheConfig, block string) error {
	switch d.Val() {
	case "cache_ttl":
		return parseDuration(d, &c.CacheTTL)
	case "negative_cache_ttl":
		return parseDuration(d, &c.NegativeCacheTTL)
	case "cache_size":
		var s string
		if err := oneArg(d, &s); err != nil {
			return err
		}
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			return d.Errf("cache_size must be a positive integer, not %q", s)
		}
		c.CacheSize = n
		return nil
	case "max_in_flight":
		var s string
		if err := oneArg(d, &s); err != nil {
			return err
		}
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			return d.Errf("max_in_flight must be a positive integer, not %q", s)
		}
		c.MaxInFlight = n
		return nil
	case "cache_bytes":
		var s string
		if err := oneArg(d, &s); err != nil {
			return err
		}
		n, err := humanize.ParseBytes(s)
		if err != nil || n == 0 || n > math.MaxInt64 {
			return d.Errf("cache_bytes must be a positive size such as 64MiB, not %q", s)
		}
		c.CacheBytes = int64(n)
		return nil
	}
	return d.Errf("unrecognized %s subdirective '%s'", block, d.Val())
}

func (h *Handler) parseJWT(d *caddyfile.Dispenser) error {
	if h.JWT != nil {
		return d.Err("jwt given twice")
	}
	j := new(JWTConfig)
	h.JWT = j
	if d.NextArg() {
		return d.ArgErr()
	}
	err := eachSubdirective(d, 1, func(name string) error {
		var err error
		switch name {
		case "jwks_url":
			if err = oneArg(d, &j.JWKSURL); err == nil {
				err = checkURL(d, j.JWKSURL)
			}
		case "jwks_file":
			err = oneArg(d, &j.JWKSFile)
		case "issuer":
			j.Issuer, err = appendArgs(d, j.Issuer, 1)
		case "audience":
			j.Audience, err = appendArgs(d, j.Audience, 1)
		case "algorithms":
			j.Algorithms, err = appendArgs(d, j.Algorithms, 1)
		case "leeway":
			err = parseDuration(d, &j.Leeway)
		case "timeout":
			err = parseDuration(d, &j.Timeout)
		case "refresh_interval":
			err = parseDuration(d, &j.RefreshInterval)
		case "min_refresh_interval":
			err = parseDuration(d, &j.MinRefreshInterval)
		default:
			err = parseCache(d, &j.CacheConfig, "jwt")
		}
		return err
	})
	if err != nil {
		return err
	}
	if err := validateJWT(j); err != nil {
		return d.Errf("jwt: %v", err)
	}
	return nil
}

func (h *Handler) parseAudit(d *caddyfile.Dispenser) error {
	if h.Audit == nil {
		h.Audit = new(AuditConfig)
	}
	a := h.Audit
	if d.NextArg() {
		return d.ArgErr()
	}
	return eachSubdirective(d, 1, func(name string) error {
		var err error
		switch name {
		case "stages":
			a.Stages, err = appendArgs(d, a.Stages, 1)
		case "journal":
			if err = oneArg(d, &a.Journal); err != nil {
				return err
			}
			err = eachSubdirective(d, 2, func(name string) error {
				switch name {
				case "timeout":
					return parseDuration(d, &a.JournalTimeout)
				case "seal":
					return oneArg(d, &a.JournalSeal)
				case "checkpoint":
					return parseDuration(d, &a.JournalCheckpoint)
				}
				return d.Errf("unrecognized journal subdirective '%s'", name)
			})
		case "format":
			a.Format, err = oneOf(d, audit.FormatJSON, audit.FormatCloudAuditLog)
		default:
			err = d.Errf("unrecognized audit subdirective '%s'", d.Val())
		}
		return err
	})
}

// parsePolicy reads `policy { allow|deny <name> <cel>  dry_run }`. Each
// rule is compiled as it is read, so that an error names its line.
func (h *Handler) parsePolicy(d *caddyfile.Dispenser) error {
	if h.Policy == nil {
		h.Policy = new(PolicyConfig)
	}
	pc := h.Policy
	if d.NextArg() {
		return d.ArgErr()
	}
	return eachSubdirective(d, 1, func(name string) error {
		switch name {
		case "dry_run":
			if d.NextArg() {
				return d.ArgErr()
			}
			pc.DryRun = true
			return nil
		case "allow", "deny":
			var rule PolicyRule
			rule.Effect = name
			if !d.AllArgs(&rule.Name, &rule.Expr) {
				return d.Errf("policy %s needs a name and one CEL expression (quote it with backticks)", name)
			}
			pc.Rules = append(pc.Rules, rule)
			if _, err := compilePolicy(pc); err != nil {
				return d.Errf("%v", err)
			}
			return nil
		}
		return d.Errf("unrecognized policy subdirective '%s' (want allow, deny or dry_run)", name)
	})
}

// parseLimits reads `limits { store ...  on_error ...  rule ...  dry_run }`.
// Each rule is checked as it is read, so that an error names its line.
func (h *Handler) parseLimits(d *caddyfile.Dispenser) error {
	if h.Limits == nil {
		h.Limits = new(LimitsConfig)
	}
	lc := h.Limits
	if d.NextArg() {
		return d.ArgErr()
	}
	return eachSubdirective(d, 1, func(name string) error {
		switch name {
		case "dry_run":
			if d.NextArg() {
				return d.ArgErr()
			}
			lc.DryRun = true
			return nil
		case "on_error":
			var err error
			lc.OnError, err = oneOf(d, limitOnErrorDeny, limitOnErrorAllow)
			return err
		case "store":
			return lc.parseStore(d)
		case "rule":
			args := d.RemainingArgs()
			if len(args) != 3 && len(args) != 4 {
				return d.Err("limits rule needs <name> <count> <window> and may add a CEL key (quote it with backticks)")
			}
			count, err := strconv.Atoi(args[1])
			if err != nil || count <= 0 {
				return d.Errf("limits rule %q: the count must be a positive integer, not %q", args[0], args[1])
			}
			window, err := caddy.ParseDuration(args[2])
			if err != nil || window <= 0 {
				return d.Errf("limits rule %q: bad window %q (want a positive duration, e.g. 1h)", args[0], args[2])
			}
			rule := LimitRule{Name: args[0], Count: count, Window: caddy.Duration(window)}
			if len(args) == 4 {
				rule.Key = args[3]
			}
			lc.Rules = append(lc.Rules, rule)
			if err := validateLimitRules(lc.Rules); err != nil {
				return d.Errf("%v", err)
			}
			return nil
		}
		return d.Errf("unrecognized limits subdirective '%s' (want store, on_error, rule or dry_run)", name)
	})
}

// parseStore reads `store local` or `store redis <addr> { ... }`.
func (lc *LimitsConfig) parseStore(d *caddyfile.Dispenser) error {
	var err error
	if lc.Store, err = oneOfArg(d, limitStoreLocal, limitStoreRedis); err != nil {
		return err
	}
	if lc.Store == limitStoreLocal {
		if d.NextArg() {
			return d.ArgErr()
		}
		return nil
	}
	rc := new(RedisConfig)
	lc.Redis = rc
	if !d.AllArgs(&rc.Address) {
		return d.Err("store redis needs the server's <host>:<port>")
	}
	if err := validateRedisAddress(rc.Address); err != nil {
		return d.Errf("%v", err)
	}
	return eachSubdirective(d, 2, func(name string) error {
		switch name {
		case "password_file":
			return oneArg(d, &rc.PasswordFile)
		case "db":
			var s string
			if err := oneArg(d, &s); err != nil {
				return err
			}
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				return d.Errf("db must be a database number, not %q", s)
			}
			rc.DB = n
			return nil
		case "tls":
			if d.NextArg() {
				return d.ArgErr()
			}
			rc.TLS = true
			return nil
		case "timeout":
			return parseDuration(d, &rc.Timeout)
		}
		return d.Errf("unrecognized redis subdirective '%s'", name)
	})
}

// oneOfArg takes the next argument on the line, which must be one of
// choices.
func oneOfArg(d *caddyfile.Dispenser, choices ...string) (string, error) {
	name := d.Val()
	if !d.NextArg() {
		return "", d.ArgErr()
	}
	if v := d.Val(); slices.Contains(choices, v) {
		return v, nil
	}
	return "", d.Errf("%s must be one of %v, not %q", name, choices, d.Val())
}

// eachSubdirective calls parse for each subdirective of the block at the
// given nesting, with the dispenser on its name, and stops at the first
// error.
func eachSubdirective(d *caddyfile.Dispenser, nesting int, parse func(name string) error) error {
	for d.NextBlock(nesting) {
		if err := parse(d.Val()); err != nil {
			return err
		}
	}
	return nil
}

// appendArgs appends the rest of the line's arguments, requiring at least
// min of them.
func appendArgs(d *caddyfile.Dispenser, to []string, min int) ([]string, error) {
	args := d.RemainingArgs()
	if len(args) < min {
		return to, d.ArgErr()
	}
	return append(to, args...), nil
}

func oneArg(d *caddyfile.Dispenser, to *string) error {
	if !d.AllArgs(to) {
		return d.ArgErr()
	}
	return nil
}

func oneOf(d *caddyfile.Dispenser, choices ...string) (string, error) {
	name := d.Val()
	var v string
	if err := oneArg(d, &v); err != nil {
		return "", err
	}
	if !slices.Contains(choices, v) {
		return "", d.Errf("%s must be one of %v, not %q", name, choices, v)
	}
	return v, nil
}

func parseDuration(d *caddyfile.Dispenser, to *caddy.Duration) error {
	name := d.Val()
	var s string
	if err := oneArg(d, &s); err != nil {
		return err
	}
	dur, err := caddy.ParseDuration(s)
	if err != nil {
		return d.Errf("%s: bad duration %q: %v", name, s, err)
	}
	if dur <= 0 {
		return d.Errf("%s: duration must be positive, not %q", name, s)
	}
	*to = caddy.Duration(dur)
	return nil
}

// parseURL takes the current token as an http(s) URL.
func parseURL(d *caddyfile.Dispenser, to *string) error {
	if err := checkURL(d, d.Val()); err != nil {
		return err
	}
	*to = d.Val()
	return nil
}

func checkURL(d *caddyfile.Dispenser, s string) error {
	if err := validateURL(s); err != nil {
		return d.Errf("%v", err)
	}
	return nil
}

// Interface guards
var (
	_ caddyfile.Unmarshaler = (*Handler)(nil)
)
