package govern

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"

	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/lro-cancel/lro_cancel/internal/audit"
	"github.com/lro-cancel/lro_cancel/internal/limit"
	"github.com/lro-cancel/lro_cancel/internal/policy"
)

// The results a limit rule reports for each cancel it sees (the metric's
// result label).
const (
	LimitAdmitted      = "admitted"
	LimitLimited       = "limited"
	LimitStoreError    = "store_error"
	LimitDryRunLimited = "dry_run_limited"
)

// Limits are the fleet-wide cancel limits as the core applies them, after
// the policy and before the action: a cancel an earlier step refuses
// consumes no quota.
type Limits struct {
	// Limiter holds the rules and the store; Keys holds each rule's key
	// expression, in the same order.
	Limiter *limit.Limiter
	Keys    []*policy.Key
	// DryRun refuses nothing: every cancel is admitted and counted.
	DryRun bool
	// OnErrorAllow forwards a cancel the store cannot decide (recorded
	// with limit_error) instead of refusing it 503.
	OnErrorAllow bool
	// Local says the store is this process's own, which explain can read.
	Local bool
	// Observe, when set, receives each rule's result for each cancel.
	Observe func(rule int, result string)
	// OutageLog paces the warning about a store outage; nil logs every
	// outage's start.
	OutageLog *rate.Sometimes

	// down is set while the store fails, so that an outage is warned
	// about once, when it starts, and its end once.
	down atomic.Bool
}

func (l *Limits) observe(rule int, result string) {
	if l.Observe != nil {
		l.Observe(rule, result)
	}
}

// applyLimits counts the cancel against every rule, or refuses it: 429
// when a rule's quota is used up or its key cannot be computed (failing
// closed), 503 when the store cannot answer under on_error deny. With t
// set (explain) nothing is counted: each rule's key, and with a local
// store its count, is reported instead.
func (c *Core) applyLimits(ctx context.Context, rec *audit.Record, in *policy.Input, t *Trace) *Denial {
	l := c.Limits
	rules := l.Limiter.Rules()
	var keyBuf [4]string
	keys := keyBuf[:0]
	var keyErrs []error // for explain
	if t != nil {
		keyErrs = make([]error, len(l.Keys))
	}
	failed := -1 // the first rule whose key could not be computed
	for i, k := range l.Keys {
		v, err := k.Eval(in)
		if err == nil && v == "" {
			err = errEmptyKey
		}
		if err != nil {
			if failed < 0 {
				failed = i
			}
			if t != nil {
				keyErrs[i] = err
			}
			v = ""
		}
		keys = append(keys, v)
	}
	if t != nil {
		return c.explainLimits(ctx, rec, keys, keyErrs, failed, t)
	}
	if failed >= 0 {
		rec.LimitRule, rec.LimitError = rules[failed].Name, true
		if !l.DryRun {
			l.observe(failed, LimitLimited)
			r := rules[failed]
			return rateLimited(r.Name, r.Count, r.Window, 0, rec)
		}
		rec.LimitDryRun = true
		l.observe(failed, LimitDryRunLimited)
	}
	res, err := l.Limiter.Take(ctx, keys, l.DryRun)
	if err != nil {
		l.outage(c.Logger, rec, err)
		for i, k := range keys {
			if k != "" {
				l.observe(i, LimitStoreError)
			}
		}
		if l.OnErrorAllow {
			rec.LimitError = true
			return nil
		}
		return limitStoreUnavailable()
	}
	if l.down.Load() && l.down.CompareAndSwap(true, false) {
		c.Logger.Info("limit store available again")
	}
	for i, k := range keys {
		switch {
		case k == "":
		case i != res.Refused:
			l.observe(i, LimitAdmitted)
		case l.DryRun:
			l.observe(i, LimitDryRunLimited)
		default:
			l.observe(i, LimitLimited)
		}
	}
	if res.Refused < 0 {
		return nil
	}
	r := rules[res.Refused]
	if rec.LimitRule == "" {
		rec.LimitRule = r.Name
	}
	if l.DryRun {
		rec.LimitDryRun = true
		return nil
	}
	return rateLimited(r.Name, r.Count, r.Window, res.RetryAfter, rec)
}

// outage warns that the store failed, once when an outage starts (and at
// most as often as OutageLog allows, should it flap), never per cancel.
func (l *Limits) outage(logger *zap.Logger, rec *audit.Record, err error) {
	if l.down.Load() || !l.down.CompareAndSwap(false, true) {
		return
	}
	warn := func() {
		action := "refusing cancels with 503 (on_error deny)"
		if l.OnErrorAllow {
			action = "forwarding cancels unlimited (on_error allow)"
		}
		logger.Warn("limit store unavailable; "+action+" until it answers again",
			zap.String("audit_id", rec.AuditID), zap.Error(err))
	}
	if l.OutageLog != nil {
		l.OutageLog.Do(warn)
	} else {
		warn()
	}
}

// explainLimits reports each rule's key and, with a local store, the
// count it would see, and what the limits would decide, counting nothing.
func (c *Core) explainLimits(ctx context.Context, rec *audit.Record, keys []string, keyErrs []error, failed int, t *Trace) *Denial {
	l := c.Limits
	rules := l.Limiter.Rules()
	refused := failed
	for i, k := range keys {
		r := rules[i]
		if keyErrs[i] != nil {
			t.step("limit", r.Name+": key "+l.Keys[i].String()+" failed ("+keyErrs[i].Error()+"): counts as over quota")
			continue
		}
		outcome := r.Name + ": key " + strconv.Quote(k) + " (" + l.Keys[i].String() + ")"
		if l.Local {
			n, err := l.Limiter.Count(ctx, i, k)
			if err == nil {
				outcome += ": " + strconv.Itoa(n) + " of " + strconv.Itoa(r.Count) + " in " + r.Window.String()
				if n >= r.Count && refused < 0 {
					refused = i
				}
			}
		} else {
			outcome += ": counted in the shared store, not read by explain"
		}
		t.step("limit", outcome)
	}
	if refused < 0 {
		return nil
	}
	r := rules[refused]
	rec.LimitRule, rec.LimitError = r.Name, refused == failed
	if l.DryRun {
		rec.LimitDryRun = true
		t.step("limits", "would refuse (rule "+r.Name+"), dry run")
		return nil
	}
	t.step("limits", "over quota (rule "+r.Name+")")
	return rateLimited(r.Name, r.Count, r.Window, 0, rec)
}

// errEmptyKey is a key that yields "": no one's quota, so no quota.
var errEmptyKey = errors.New("the key is empty")
