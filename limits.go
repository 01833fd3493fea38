package lrocancel

import (
	"bytes"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"golang.org/x/time/rate"

	"github.com/lro-cancel/lro_cancel/internal/govern"
	"github.com/lro-cancel/lro_cancel/internal/limit"
	"github.com/lro-cancel/lro_cancel/internal/policy"
)

const (
	limitStoreLocal   = "local"
	limitStoreRedis   = "redis"
	limitOnErrorDeny  = "deny"
	limitOnErrorAllow = "allow"

	// defaultRedisTimeout bounds a limit decision's round trip to Redis:
	// loopback or same-zone answers take well under a millisecond, and a
	// store slower than this holds every cancel.
	defaultRedisTimeout = 100 * time.Millisecond
)

// provisionLimits sets the limits' defaults and compiles their rules, over
// a local store of their own (what explain reads); the running handler's
// store is openLimitStore's.
func provisionLimits(lc *LimitsConfig) (*govern.Limits, error) {
	if lc.Store == "" {
		lc.Store = limitStoreLocal
	}
	if lc.OnError == "" {
		lc.OnError = limitOnErrorDeny
	}
	if lc.Redis != nil && lc.Redis.Timeout == 0 {
		lc.Redis.Timeout = caddy.Duration(defaultRedisTimeout)
	}
	for i := range lc.Rules {
		if lc.Rules[i].Key == "" {
			lc.Rules[i].Key = policy.DefaultKey
		}
	}
	rules, keys, err := compileLimitRules(lc.Rules)
	if err != nil {
		return nil, fmt.Errorf("lro_cancel: limits: %w", err)
	}
	var store limit.Store
	if lc.Store == limitStoreLocal {
		store = limit.NewLocal()
	}
	lim, err := limit.New(rules, store)
	if err != nil {
		return nil, fmt.Errorf("lro_cancel: limits: %w", err)
	}
	return &govern.Limits{
		Limiter:      lim,
		Keys:         keys,
		DryRun:       lc.DryRun,
		OnErrorAllow: lc.OnError == limitOnErrorAllow,
		Local:        lc.Store == limitStoreLocal,
	}, nil
}

// compileLimitRules checks each rule and compiles its key (the default key
// when it has none); an error names the rule.
func compileLimitRules(rules []LimitRule) ([]limit.Rule, []*policy.Key, error) {
	out := make([]limit.Rule, len(rules))
	keys := make([]*policy.Key, len(rules))
	for i, r := range rules {
		out[i] = limit.Rule{Name: r.Name, Count: r.Count, Window: time.Duration(r.Window)}
		expr := r.Key
		if expr == "" {
			expr = policy.DefaultKey
		}
		k, err := policy.CompileKey(expr)
		if err != nil {
			return nil, nil, fmt.Errorf("rule %q: key: %w", r.Name, err)
		}
		keys[i] = k
	}
	if _, err := limit.New(out, nil); err != nil {
		return nil, nil, err
	}
	return out, keys, nil
}

// localStores holds the process's one local store while a config uses it:
// one store per process, as one Redis per fleet (rules of the same name
// share their counts in either). A reload hands it from the old config to
// the new, so that a config change does not start every window again.
var localStores = caddy.NewUsagePool()

const localStoreKey = "local"

type localStore struct{ *limit.Local }

func (localStore) Destruct() error { return nil }

// openLimitStore connects the running handler's limits to their store (the
// process's local store, or redis), and wires their metrics and outage
// warning.
func (h *Handler) openLimitStore(lim *govern.Limits) error {
	lc := h.Limits
	if lc.Store == limitStoreLocal {
		v, _, err := localStores.LoadOrNew(localStoreKey, func() (caddy.Destructor, error) {
			return localStore{limit.NewLocal()}, nil
		})
		if err != nil {
			return fmt.Errorf("lro_cancel: limits: %w", err)
		}
		var release sync.Once // a handler holds one reference, however often cleaned up
		h.closers = append(h.closers, func() { release.Do(func() { _, _ = localStores.Delete(localStoreKey) }) })
		if lim.Limiter, err = limit.New(lim.Limiter.Rules(), v.(localStore).Local); err != nil {
			return fmt.Errorf("lro_cancel: limits: %w", err)
		}
	}
	if lc.Store == limitStoreRedis {
		rc := lc.Redis
		cfg := limit.RedisConfig{Addr: rc.Address, DB: rc.DB, TLS: rc.TLS, Timeout: time.Duration(rc.Timeout)}
		if rc.PasswordFile != "" {
			b, err := os.ReadFile(rc.PasswordFile)
			if err != nil {
				return fmt.Errorf("lro_cancel: limits: reading the redis password: %w", err)
			}
			cfg.Password = string(bytes.TrimRight(b, "\r\n"))
		}
		store, err := limit.NewRedis(cfg)
		if err != nil {
			return fmt.Errorf("lro_cancel: limits: %w", err)
		}
		h.closers = append(h.closers, func() { _ = store.Close() })
		if lim.Limiter, err = limit.New(lim.Limiter.Rules(), store); err != nil {
			return fmt.Errorf("lro_cancel: limits: %w", err)
		}
	}
	lim.Observe = h.metrics.limitObserver(lim.Limiter.Rules())
	lim.OutageLog = &rate.Sometimes{First: 1, Interval: 10 * time.Second}
	return nil
}
