package integration

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// lro_cancel's metrics are in Caddy's own registry, served by Caddy's
// admin /metrics endpoint.
func TestMetricsAreServedByCaddy(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	for _, token := range []string{tokenVault, tokenVault, tokenEmail, ""} {
		var h []string
		if token != "" {
			h = bearer(token)
		}
		g.do(newRequest(t, "POST", apiURL("vault.googleapis.com", vaultCancel), "", h...))
	}
	g.do(newRequest(t, "POST", apiURL("random-1234.googleapis.com", "/v1/operations/x:cancel"), "", bearer(tokenVault)...))

	scrape := func() string {
		resp, err := http.Get("http://localhost:2999/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	want := []string{
		`caddy_lro_cancel_requests_total{decision="forwarded",protocol="http",service="vault.googleapis.com"} 2`,
		`caddy_lro_cancel_requests_total{decision="scope_insufficient",protocol="http",service="vault.googleapis.com"} 1`,
		`caddy_lro_cancel_requests_total{decision="unauthenticated",protocol="http",service="vault.googleapis.com"} 1`,
		`caddy_lro_cancel_requests_total{decision="forwarded",protocol="http",service="other"} 1`,
		`caddy_lro_cancel_verifier_calls_total{result="valid",verifier="tokeninfo"} 2`,
		`caddy_lro_cancel_token_cache_lookups_total{result="hit",verifier="tokeninfo"} 2`,
		`caddy_lro_cancel_token_cache_lookups_total{result="miss",verifier="tokeninfo"} 2`,
		`caddy_lro_cancel_verifier_duration_seconds_count{verifier="tokeninfo"} 2`,
	}
	// A request is counted as it finishes, a moment after its response.
	var body string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		body = scrape()
		missing := slices.DeleteFunc(slices.Clone(want), func(w string) bool { return strings.Contains(body, w) })
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics lacks %q", missing)
		}
	}
	if strings.Contains(body, "random-1234") {
		t.Error("a request's Host became a metrics label")
	}
}
