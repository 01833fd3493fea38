package integration

import (
	"bufio"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// scrape reads the gateway's metrics from Caddy's admin /metrics endpoint:
// each sample's value by its series as exposed (name{labels, sorted}).
func scrape(t *testing.T) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://localhost:2999/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %s", resp.Status)
	}
	samples := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("/metrics: %q: %v", line, err)
		}
		samples[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return samples
}

// names are the metric names of a scrape's samples.
func names(samples map[string]float64) map[string]bool {
	out := map[string]bool{}
	for series := range samples {
		name, _, _ := strings.Cut(series, "{")
		out[name] = true
	}
	return out
}

// waitCounts waits (bounded) until every series in want has grown by the
// given amount since before, and returns the last scrape. A request is
// counted as it finishes, a moment after its response.
func waitCounts(t *testing.T, before map[string]float64, want map[string]float64) map[string]float64 {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		now := scrape(t)
		var wrong []string
		for series, delta := range want {
			if got := now[series] - before[series]; got != delta {
				wrong = append(wrong, fmt.Sprintf("%s grew by %v, want %v", series, got, delta))
			}
		}
		if len(wrong) == 0 {
			return now
		}
		if time.Now().After(deadline) {
			slices.Sort(wrong)
			t.Fatalf("/metrics:\n%s", strings.Join(wrong, "\n"))
		}
	}
}

// lro_cancel's metrics are in Caddy's own registry, served by Caddy's
// admin /metrics endpoint. They count for the life of the process, so the
// test reads what its own requests added.
func TestMetricsAreServedByCaddy(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	before := scrape(t)
	for _, token := range []string{tokenVault, tokenVault, tokenEmail, ""} {
		var h []string
		if token != "" {
			h = bearer(token)
		}
		g.do(newRequest(t, "POST", apiURL("vault.googleapis.com", vaultCancel), "", h...))
	}
	g.do(newRequest(t, "POST", apiURL("random-1234.googleapis.com", "/v1/operations/x:cancel"), "", bearer(tokenVault)...))

	after := waitCounts(t, before, map[string]float64{
		`caddy_lro_cancel_requests_total{decision="forwarded",protocol="http",service="vault.googleapis.com"}`:          2,
		`caddy_lro_cancel_requests_total{decision="scope_insufficient",protocol="http",service="vault.googleapis.com"}`: 1,
		`caddy_lro_cancel_requests_total{decision="unauthenticated",protocol="http",service="vault.googleapis.com"}`:    1,
		`caddy_lro_cancel_requests_total{decision="forwarded",protocol="http",service="other"}`:                         1,
		`caddy_lro_cancel_verifier_calls_total{result="valid",verifier="tokeninfo"}`:                                    2,
		`caddy_lro_cancel_token_cache_lookups_total{result="hit",verifier="tokeninfo"}`:                                 2,
		`caddy_lro_cancel_token_cache_lookups_total{result="miss",verifier="tokeninfo"}`:                                2,
		`caddy_lro_cancel_verifier_duration_seconds_count{verifier="tokeninfo"}`:                                        2,
	})
	for series := range after {
		if strings.Contains(series, "random-1234") {
			t.Errorf("a request's Host became a metrics label: %s", series)
		}
	}
}

// monitoringDirective turns on what the alerts and the dashboard watch: a
// sealed journal that checkpoints often, a policy whose rule decides every
// cancel, and a limit every cancel passes.
func monitoringDirective(t *testing.T, rule string) string {
	dir := t.TempDir()
	skey, _, err := note.GenerateKey(rand.Reader, "gateway.test/monitoring")
	if err != nil {
		t.Fatal(err)
	}
	// Not "*.key": Caddy's caddytest rewrites such paths to its own directory.
	key := filepath.Join(dir, "seal-signer")
	if err := os.WriteFile(key, []byte(skey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`audit {
		journal %s {
			seal %s
			checkpoint 100ms
		}
	}
	policy {
		allow %s `+"`true`"+`
	}
	limits {
		rule monitoring 1000000 1h
	}`, filepath.Join(dir, "journal"), key, rule)
}

// Every metric the Prometheus rules and the Grafana dashboard name exists
// in a running gateway: an alert on a metric that is not there never fires.
func TestEveryMetricTheAlertsAndTheDashboardNameIsServed(t *testing.T) {
	g := startGateway(t, gatewayOptions{directive: monitoringDirective(t, "everyone")})
	before := scrape(t)
	for _, token := range []string{tokenVault, tokenVault, tokenEmail} {
		g.do(newRequest(t, "POST", apiURL("vault.googleapis.com", vaultCancel), "", bearer(token)...))
	}
	served := names(waitCounts(t, before, map[string]float64{
		`caddy_lro_cancel_requests_total{decision="forwarded",protocol="http",service="vault.googleapis.com"}`: 2,
		`caddy_lro_cancel_policy_decisions_total{dry_run="false",effect="allow",rule="everyone"}`:              2,
		`caddy_lro_cancel_limit_decisions_total{result="admitted",rule="monitoring"}`:                          2,
	}))
	// The sealed journal checkpoints what it wrote within its interval.
	written := `caddy_lro_cancel_journal_checkpoints_total{result="written"}`
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if now := scrape(t); now[written] > before[written] {
			for m := range names(now) {
				served[m] = true
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint written within 5s: %s stays at %v", written, before[written])
		}
	}

	named := map[string][]string{} // metric → the files naming it
	metric := regexp.MustCompile(`caddy_lro_cancel_[a-z_]+`)
	for _, file := range []string{"../deploy/prometheus/lro_cancel.rules.yml", "../deploy/grafana/lro_cancel.json"} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range metric.FindAllString(string(b), -1) {
			if !slices.Contains(named[m], file) {
				named[m] = append(named[m], file)
			}
		}
	}
	if len(named) < 8 {
		t.Fatalf("the rules and the dashboard name %d metrics; the files are not where the test looks", len(named))
	}
	for m, files := range named {
		if !served[m] {
			t.Errorf("%s, named in %s, is not served by a running gateway", m, strings.Join(files, " and "))
		}
	}
}

// `caddy reload` (POST /load) loads a new config with a new metrics
// registry; lro_cancel's counters carry on from where they were, since a
// counter that drops to zero reads to Prometheus as a restarted process.
func TestMetricsKeepCountingAcrossAReload(t *testing.T) {
	g := startGateway(t, gatewayOptions{directive: monitoringDirective(t, "before-reload")})
	forwarded := `caddy_lro_cancel_requests_total{decision="forwarded",protocol="http",service="vault.googleapis.com"}`
	calls := `caddy_lro_cancel_verifier_calls_total{result="valid",verifier="tokeninfo"}`
	fsyncs := `caddy_lro_cancel_journal_fsync_duration_seconds_count`
	start := scrape(t)
	for range 3 {
		g.do(newRequest(t, "POST", apiURL("vault.googleapis.com", vaultCancel), "", bearer(tokenVault)...))
	}
	before := waitCounts(t, start, map[string]float64{forwarded: 3, calls: 1})
	if before[fsyncs] == 0 {
		t.Fatalf("no journal fsync counted before the reload")
	}

	// A changed config, so that Caddy really loads it.
	config := g.config(gatewayOptions{directive: monitoringDirective(t, "after-reload")})
	resp, err := http.Post("http://localhost:2999/load", "text/caddyfile", strings.NewReader(config))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /load: %s: %s", resp.Status, body)
	}

	reloaded := scrape(t)
	for _, series := range []string{forwarded, calls, fsyncs} {
		if reloaded[series] < before[series] {
			t.Errorf("%s went from %v to %v across the reload", series, before[series], reloaded[series])
		}
	}
	g.do(newRequest(t, "POST", apiURL("vault.googleapis.com", vaultCancel), "", bearer(tokenVault)...))
	// The new config decided (its rule counted once) and the counters went on
	// from their values before the reload (the new handler's cache is empty,
	// hence one more verifier call).
	after := waitCounts(t, before, map[string]float64{
		forwarded: 1,
		calls:     1,
		`caddy_lro_cancel_policy_decisions_total{dry_run="false",effect="allow",rule="after-reload"}`: 1,
	})
	if after[fsyncs] <= before[fsyncs] {
		t.Errorf("journal fsyncs: %v after the reload's cancel, %v before the reload", after[fsyncs], before[fsyncs])
	}
}
