package rest

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/lro-cancel/lro_cancel/internal/catalog"
)

// Recognize skips the catalog when the decoded path has no "cancel"; that
// shortcut must never change the answer the catalog gives for the escaped
// path, however the path is encoded.
func FuzzRecognizeShortcutAgreesWithCatalog(f *testing.F) {
	for _, p := range []string{
		"/v1/operations/x:cancel", "/v1/operations/x:canc%65l", "/v1/operations/x:%63ancel",
		"/v1/operations/x%3Acancel", "/v1/operations/x%253Acancel", "/v1/operations/x:%2563ancel",
		"/v1/%6Fperations/x:cancel", "/v1/operations/../x:cancel", "/v1/operations%5Cx:cancel",
		"/v1/operations\\x:cancel", "/storage/v1/b/bucket/o/object", "/v1/operations/x",
	} {
		f.Add("POST", p)
	}
	cat := catalog.Default()
	f.Fuzz(func(t *testing.T, method, target string) {
		u, err := url.ParseRequestURI(target)
		if err != nil || u.Path == "" {
			return
		}
		r := &http.Request{Method: method, Host: "vault.googleapis.com", URL: u}
		got := Recognize(cat, nil, r)
		want := cat.Recognize(r.Host, method, u.EscapedPath())
		if got.Kind != want.Kind {
			t.Errorf("%s %q: Recognize says %v, the catalog %v", method, target, got.Kind, want.Kind)
		}
	})
}
