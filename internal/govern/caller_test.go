package govern

import (
	"net/http/httptest"
	"testing"

	"github.com/lro-cancel/lro_cancel/internal/audit"
)

func TestCallerReadsTheReasonAndTheQuotaProjectOnce(t *testing.T) {
	for _, tc := range []struct {
		name       string
		url        string
		headers    [][2]string
		reason, up string
		ambiguous  bool
	}{
		{"none", "/v1/operations/x:cancel", nil, "", "", false},
		{"headers", "/v1/operations/x:cancel", [][2]string{{"X-Goog-Request-Reason", "CHG-1"}, {"X-Goog-User-Project", "prod-a"}}, "CHG-1", "prod-a", false},
		{"gRPC metadata is lower-case", "/v1/operations/x:cancel", [][2]string{{"x-goog-request-reason", "CHG-2"}}, "CHG-2", "", false},
		{"system parameters", "/v1/operations/x:cancel?$requestReason=CHG-3&%24userProject=prod-b", nil, "CHG-3", "prod-b", false},
		{"a semicolon separates too", "/v1/operations/x:cancel?a=1;$requestReason=CHG+4", nil, "CHG 4", "", false},
		{"the same value twice", "/v1/operations/x:cancel?$requestReason=CHG-5", [][2]string{{"X-Goog-Request-Reason", "CHG-5"}}, "CHG-5", "", false},
		{"the header twice, different", "/v1/operations/x:cancel", [][2]string{{"X-Goog-Request-Reason", "CHG-6"}, {"X-Goog-Request-Reason", "CHG-7"}}, "CHG-6", "", true},
		{"header and query, different", "/v1/operations/x:cancel?$userProject=b", [][2]string{{"X-Goog-User-Project", "a"}}, "", "a", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", tc.url, nil)
			for _, h := range tc.headers {
				r.Header.Add(h[0], h[1])
			}
			var x Cancel
			x.ReadCaller(r)
			if x.Reason != tc.reason || x.UserProject != tc.up {
				t.Errorf("reason %q, user project %q; want %q, %q", x.Reason, x.UserProject, tc.reason, tc.up)
			}
			if got := x.Refusal != nil; got != tc.ambiguous {
				t.Fatalf("refused %v, want %v", got, tc.ambiguous)
			}
			if tc.ambiguous && (x.Refusal.Decision != audit.AmbiguousRequest || x.Refusal.Reason != "AMBIGUOUS_REQUEST" || x.Refusal.HTTPStatus() != 400) {
				t.Fatalf("refusal %+v, want 400 AMBIGUOUS_REQUEST", x.Refusal)
			}
			rec := NewRecord(r, "a1", &x)
			if rec.Reason != tc.reason || rec.UserProject != tc.up {
				t.Errorf("record reason %q, user project %q", rec.Reason, rec.UserProject)
			}
		})
	}
}
