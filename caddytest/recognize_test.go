package integration

import (
	"net/http"
	"testing"
)

// The matcher, through a real Caddy: a cancel answers with the placeholders
// it set, anything else with "pass".
func TestMatcherRecognisesCancelsAcrossGoogleAPIs(t *testing.T) {
	g := startGateway(t, gatewayOptions{site: `
	@cancel lro_cancel
	respond @cancel "{http.lro_cancel.method} {http.lro_cancel.operation} {http.lro_cancel.service}" 200
	respond "pass" 200`})

	tests := []struct {
		name, method, host, path, want string
	}{
		{"vault name with colons", "POST", "vault.googleapis.com", "/v1/operations/a/b:c:cancel",
			"vault.operations.cancel operations/a/b:c vault.googleapis.com"},
		{"androidmanagement device operation", "POST", "androidmanagement.googleapis.com",
			"/v1/enterprises/e/devices/d/operations/o:cancel",
			"androidmanagement.enterprises.devices.operations.cancel enterprises/e/devices/d/operations/o androidmanagement.googleapis.com"},
		{"regional aiplatform endpoint", "POST", "asia-east1-aiplatform.googleapis.com",
			"/v1/projects/p/locations/asia-east1/operations/o:cancel",
			"aiplatform.projects.locations.operations.cancel projects/p/locations/asia-east1/operations/o aiplatform.googleapis.com"},
		{"host in upper case", "POST", "VAULT.googleapis.com", "/v1/operations/x:cancel",
			"vault.operations.cancel operations/x vault.googleapis.com"},
		{"encoded slash stays encoded in the name", "POST", "vault.googleapis.com", "/v1/operations/a%2Fb:cancel",
			"vault.operations.cancel operations/a%2Fb vault.googleapis.com"},
		{"double-encoded slash decodes once", "POST", "vault.googleapis.com", "/v1/operations/a%252Fb:cancel",
			"vault.operations.cancel operations/a%2Fb vault.googleapis.com"},
		{"seed dai entry", "POST", "dai.googleapis.com", "/v1/operations/x:cancel",
			"dai.operations.cancel operations/x dai.googleapis.com"},
		{"unknown API is an unlisted cancel", "POST", "unknown-api.googleapis.com", "/v2/projects/p/operations/o:cancel",
			"unlisted projects/p/operations/o unknown-api.googleapis.com"},
		{"a cancel-shaped path on a host Google does not serve", "POST", "private.example.com", "/v2/projects/p/operations/o:cancel", "pass"},
		{"GET on a vault cancel path", "GET", "vault.googleapis.com", "/v1/operations/x:cancel", "pass"},
		{"GET on an androidmanagement cancel path", "GET", "androidmanagement.googleapis.com",
			"/v1/enterprises/e/devices/d/operations/o:cancel", "pass"},
		{"batch job cancel is not an operation cancel", "POST", "batch.googleapis.com",
			"/v1/projects/p/locations/l/jobs/j:cancel", "pass"},
		{"cancelled is another verb", "POST", "vault.googleapis.com", "/v1/operations/x:cancelled", "pass"},
		{"operation get", "GET", "vault.googleapis.com", "/v1/operations/x", "pass"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, b := g.do(newRequest(t, tt.method, apiURL(tt.host, tt.path), ""))
			if string(b) != tt.want {
				t.Errorf("%s %s%s: got %q, want %q", tt.method, tt.host, tt.path, b, tt.want)
			}
		})
	}
	if n := len(g.readRecords()); n != 0 {
		t.Errorf("the matcher alone wrote %d audit records, want none", n)
	}
}

func TestMatcherPinnedToAService(t *testing.T) {
	g := startGateway(t, gatewayOptions{site: `
	@vault lro_cancel vault.googleapis.com
	respond @vault "{http.lro_cancel.method} {http.lro_cancel.service}" 200
	respond "pass" 200`})

	tests := []struct {
		name, host, path, want string
	}{
		{"pinned service ignores the Host", "gateway.internal", "/v1/operations/x:cancel",
			"vault.operations.cancel vault.googleapis.com"},
		{"another API's cancel is unlisted under the pinned service", "androidmanagement.googleapis.com",
			"/v1/enterprises/e/devices/d/operations/o:cancel", "unlisted vault.googleapis.com"},
		{"not a cancel", "vault.googleapis.com", "/v1/operations/x", "pass"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, b := g.do(newRequest(t, http.MethodPost, apiURL(tt.host, tt.path), ""))
			if string(b) != tt.want {
				t.Errorf("got %q, want %q", b, tt.want)
			}
		})
	}
}

func TestMatcherInCELExpression(t *testing.T) {
	g := startGateway(t, gatewayOptions{site: `
	@cancel expression lro_cancel('*') && {http.request.method} == 'POST'
	respond @cancel "{http.lro_cancel.method}" 200
	respond "pass" 200`})

	_, b := g.do(newRequest(t, http.MethodPost,
		apiURL("androidmanagement.googleapis.com", "/v1/enterprises/e/devices/d/operations/o:cancel"), ""))
	if want := "androidmanagement.enterprises.devices.operations.cancel"; string(b) != want {
		t.Errorf("cancel: got %q, want %q", b, want)
	}
	_, b = g.do(newRequest(t, http.MethodPost, apiURL("vault.googleapis.com", "/v1/operations/x:get"), ""))
	if string(b) != "pass" {
		t.Errorf("non-cancel: got %q, want pass", b)
	}
}
