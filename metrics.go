package lrocancel

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/lro-cancel/lro_cancel/internal/audit"
	"github.com/lro-cancel/lro_cancel/internal/credential"
	"github.com/lro-cancel/lro_cancel/internal/govern"
	"github.com/lro-cancel/lro_cancel/internal/limit"
)

// metrics are lro_cancel's collectors in Caddy's registry. Every handler of
// a config shares them: the first to provision registers them, the others
// reuse what is registered.
type metrics struct {
	requests *prometheus.CounterVec
	// requestCounters holds the requests counter of each label set counted
	// (a requestLabels key): a bounded set, and a cheaper lookup per cancel
	// than WithLabelValues' hashing and label checks.
	requestCounters sync.Map
	policy          *prometheus.CounterVec
	verifierCalls   *prometheus.CounterVec
	verifierLatency *prometheus.HistogramVec
	cacheLookups    *prometheus.CounterVec
	journalSync     prometheus.Histogram
	journalFailures prometheus.Counter
	limitDecisions  *prometheus.CounterVec
	checkpoints     *prometheus.CounterVec
	lastCheckpoint  prometheus.Gauge
}

const metricsNamespace = "caddy_lro_cancel"

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "requests_total",
			Help: "Recognised cancels, by API service, front door and decision.",
		}, []string{"service", "protocol", "decision"}),
		policy: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "policy_decisions_total",
			Help: "Policy decisions, by deciding rule (default: no allow rule matched), effect and dry run.",
		}, []string{"rule", "effect", "dry_run"}),
		verifierCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "verifier_calls_total",
			Help: "Calls to a token verifier (cache misses), by verifier and result: valid, invalid, unavailable.",
		}, []string{"verifier", "result"}),
		verifierLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metricsNamespace, Name: "verifier_duration_seconds",
			Help:    "Latency of token verifier calls.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"verifier"}),
		cacheLookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "token_cache_lookups_total",
			Help: "Verified-token cache lookups, by verifier and result: hit, miss, coalesced, shed (refused: max_in_flight calls already running).",
		}, []string{"verifier", "result"}),
		journalSync: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: metricsNamespace, Name: "journal_fsync_duration_seconds",
			Help:    "Latency of the audit journal's group-commit fsyncs.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		journalFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "journal_failures_total",
			Help: "Audit journal writes or fsyncs that failed (each refused its batch of cancels).",
		}),
		limitDecisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "limit_decisions_total",
			Help: "Limit decisions, by rule and result: admitted, limited (refused 429, or its key failed), store_error (the store could not answer), dry_run_limited (would have been refused).",
		}, []string{"rule", "result"}),
		checkpoints: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "journal_checkpoints_total",
			Help: "Signed checkpoints a sealed audit journal tried to append, by result: written, failed.",
		}, []string{"result"}),
		lastCheckpoint: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: metricsNamespace, Name: "journal_last_checkpoint_timestamp_seconds",
			Help: "When the sealed audit journal last appended a checkpoint (Unix seconds).",
		}),
	}
	var err error
	m.requests, err = register(reg, m.requests)
	if err == nil {
		m.policy, err = register(reg, m.policy)
	}
	if err == nil {
		m.verifierCalls, err = register(reg, m.verifierCalls)
	}
	if err == nil {
		m.verifierLatency, err = register(reg, m.verifierLatency)
	}
	if err == nil {
		m.cacheLookups, err = register(reg, m.cacheLookups)
	}
	if err == nil {
		m.journalSync, err = register(reg, m.journalSync)
	}
	if err == nil {
		m.journalFailures, err = register(reg, m.journalFailures)
	}
	if err == nil {
		m.limitDecisions, err = register(reg, m.limitDecisions)
	}
	if err == nil {
		m.checkpoints, err = register(reg, m.checkpoints)
	}
	if err == nil {
		m.lastCheckpoint, err = register(reg, m.lastCheckpoint)
	}
	return m, err
}

// collectors holds every collector lro_cancel made, by its description, for
// the life of the process. Caddy gives each loaded config a new registry; a
// counter made anew on `caddy reload` would restart at zero, which
// Prometheus reads as a process restart, so a reload registers the same
// collectors again (as Caddy does with its own admin metrics).
var collectors sync.Map

// register registers c, or the collector of the same description an earlier
// config made, or returns the collector already registered under its name.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if earlier, loaded := collectors.LoadOrStore(collectorID(c), c); loaded {
		if e, ok := earlier.(C); ok {
			c = e
		}
	}
	if err := reg.Register(c); err != nil {
		if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, err
	}
	return c, nil
}

// collectorID is a collector's identity: its metrics' names, help and labels.
func collectorID(c prometheus.Collector) string {
	ch := make(chan *prometheus.Desc, 4)
	go func() { c.Describe(ch); close(ch) }()
	var b strings.Builder
	for d := range ch {
		b.WriteString(d.String())
	}
	return b.String()
}

// countRequest counts a completed record. The catalog's hosts are a
// bounded set, a request's Host is not, so unlisted, ambiguous and custom
// cancels share one service label; protocol and decision are bounded sets.
func (m *metrics) countRequest(rec *audit.Record) {
	service := rec.Service
	switch rec.Method {
	case "", "unlisted", "custom":
		service = "other"
	}
	m.requestCounter(requestLabels{service, rec.Protocol, rec.Decision}).Inc()
	if rec.PolicyRule != "" {
		// Rule names come from the config: a bounded set.
		m.policy.WithLabelValues(rec.PolicyRule, rec.PolicyEffect, strconv.FormatBool(rec.PolicyDryRun)).Inc()
	}
}

// requestLabels are the requests counter's labels.
type requestLabels struct {
	service, protocol string
	decision          audit.Decision
}

// requestCounter is the requests counter of l.
func (m *metrics) requestCounter(l requestLabels) prometheus.Counter {
	if c, ok := m.requestCounters.Load(l); ok {
		return c.(prometheus.Counter)
	}
	c := m.requests.WithLabelValues(l.service, l.protocol, string(l.decision))
	m.requestCounters.Store(l, c)
	return c
}

// observeCache returns the cache hook that counts lookups of a verifier.
func (m *metrics) observeCache(verifier string) func(credential.Lookup) {
	counters := [...]prometheus.Counter{
		credential.LookupHit:       m.cacheLookups.WithLabelValues(verifier, credential.LookupHit.String()),
		credential.LookupMiss:      m.cacheLookups.WithLabelValues(verifier, credential.LookupMiss.String()),
		credential.LookupCoalesced: m.cacheLookups.WithLabelValues(verifier, credential.LookupCoalesced.String()),
		credential.LookupShed:      m.cacheLookups.WithLabelValues(verifier, credential.LookupShed.String()),
	}
	return func(l credential.Lookup) { counters[l].Inc() }
}

// observedVerifier counts and times the calls to a verifier.
type observedVerifier struct {
	name string
	v    credential.Verifier
	m    *metrics
}

func (o observedVerifier) Verify(ctx context.Context, token string) (*credential.Info, error) {
	start := time.Now()
	info, err := o.v.Verify(ctx, token)
	o.m.verifierLatency.WithLabelValues(o.name).Observe(time.Since(start).Seconds())
	result := "valid"
	if err != nil {
		result = "unavailable"
		if _, ok := errors.AsType[*credential.InvalidError](err); ok {
			result = "invalid"
		}
	}
	o.m.verifierCalls.WithLabelValues(o.name, result).Inc()
	return info, err
}

// limitObserver returns the limits' hook, its counters resolved once
// (rule names come from the config: a bounded set).
func (m *metrics) limitObserver(rules []limit.Rule) func(rule int, result string) {
	results := [...]string{govern.LimitAdmitted, govern.LimitLimited, govern.LimitStoreError, govern.LimitDryRunLimited}
	counters := make([][len(results)]prometheus.Counter, len(rules))
	for i, r := range rules {
		for j, res := range results {
			counters[i][j] = m.limitDecisions.WithLabelValues(r.Name, res)
		}
	}
	return func(rule int, result string) {
		if j := slices.Index(results[:], result); j >= 0 {
			counters[rule][j].Inc()
		}
	}
}

// observeJournal is the journal's fsync hook.
func (m *metrics) observeJournal(d time.Duration, err error) {
	m.journalSync.Observe(d.Seconds())
	if err != nil {
		m.journalFailures.Inc()
	}
}

// observeCheckpoint returns the sealed journal's checkpoint hook: it
// counts, and logs each checkpoint through log, so that it leaves the
// host with Caddy's logs, where an attacker on the gateway cannot
// rewrite it.
func (m *metrics) observeCheckpoint(log *zap.Logger) func([]byte, error) {
	written, failed := m.checkpoints.WithLabelValues("written"), m.checkpoints.WithLabelValues("failed")
	return func(note []byte, err error) {
		if err != nil {
			failed.Inc()
			log.Error("cannot append a checkpoint to the audit journal", zap.Error(err))
			return
		}
		written.Inc()
		m.lastCheckpoint.SetToCurrentTime()
		log.Info("audit journal checkpoint", zap.String("checkpoint", string(note)))
	}
}

// Interface guards
var (
	_ credential.Verifier = observedVerifier{}
)
