package catalog_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/lro-cancel/lro_cancel/internal/catalog"
	"github.com/lro-cancel/lro_cancel/internal/pathtemplate"
)

func TestIsBatchPathReadsEverySpellingOfABatchPath(t *testing.T) {
	tests := []struct {
		name, path string
		want       bool
	}{
		{"the generic batch path", "/batch", true},
		{"storage's versioned batch path", "/batch/storage/v1", true},
		{"the generic versioned form", "/batch/vault/v1", true},
		{"whatever else the path holds", "/batch/vault/v1/x", true},
		{"a path that spells cancel too", "/batch/cancel/v1", true},
		{"a batch path with one segment more", "/batch/vault", true},

		{"another letter case", "/BATCH", true},
		{"another letter case in the versioned form", "/Batch/Vault/V1", true},
		{"a trailing slash", "/batch/", true},
		{"an empty segment first", "//batch", true},
		{"an empty segment inside", "/batch//storage/v1", true},
		{"a dot segment", "/./batch", true},
		{"a dot-dot segment", "/upload/../batch", true},
		{"an encoded dot segment", "/%2e/batch", true},
		{"a backslash", `\batch`, true},
		{"an encoded backslash at the end", "/batch%5C", true},
		{"no leading slash", "batch", true},
		{"an escaped letter", "/%62atch", true},
		{"every letter escaped", "/%62%61%74%63%68", true},
		{"encoded slashes", "/batch%2Fstorage%2Fv1", true},
		{"an encoded slash first", "/%2Fbatch", true},
		{"an encoded slash that a dot-dot segment drops", "/x%2Fy/../batch", true},
		{"an encoded slash as a trailing slash", "/batch%2F", true},

		{"under the upload prefix", "/upload/batch", true},
		{"under the upload prefix in capitals", "/UPLOAD/Batch/drive/v3", true},
		{"a longer first segment", "/batches", false},
		{"upload without batch", "/upload/storage/v1/b/x/o", false},
		{"batch below the root", "/v1/batch", false},
		{"a verb after batch", "/batch:run", false},
		{"a resource named batch-something", "/v1/projects/p/locations/l/batchPredictionJobs/j", false},
		{"a double-encoded letter is decoded once", "/%2562atch", false},
		{"an escape that is no letter of batch", "/%20batch", false},
		{"the root", "/", false},
		{"no path", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := catalog.IsBatchPath(tt.path); got != tt.want {
				t.Errorf("IsBatchPath(%q) = %v, want %v", tt.path, got, tt.want)
			}
		})
	}
	if _, err := catalog.New([]catalog.Method{{Template: "/v1/{name=x/*}:cancel", BatchPath: "batch"}}); err == nil ||
		!strings.Contains(err.Error(), `"batch"`) {
		t.Errorf("New with a relative batch path: error = %v, want one naming it", err)
	}
}

func TestServesKnowsCatalogHostsAliasesAndOperatorHosts(t *testing.T) {
	onHost, err := catalog.New([]catalog.Method{{Hosts: []string{"private.example.com"}, Template: "/v1/{name=operations/*}:cancel"}})
	if err != nil {
		t.Fatal(err)
	}
	everywhere, err := catalog.New([]catalog.Method{{Template: "/v1/{name=jobs/*/operations/*}:cancel"}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		c    *catalog.Catalog
		host string
		want bool
	}{
		{"a catalog host", catalog.Default(), "VAULT.googleapis.com:443", true},
		{"the legacy shared host", catalog.Default(), "www.googleapis.com", true},
		{"an alias", catalog.Default(), "vault.clients6.google.com", true},
		{"an unknown host", catalog.Default(), "example.com", false},
		{"an operator's host", onHost, "private.example.com", true},
		{"an unknown host stays unknown", onHost, "other.example.com", false},
		{"with host-less methods every host", everywhere, "other.example.com", true},
	}
	for _, tt := range tests {
		if got := tt.c.Serves(tt.host); got != tt.want {
			t.Errorf("%s: Serves(%q) = %v, want %v", tt.name, tt.host, got, tt.want)
		}
	}
}

func TestIsBatchPathDoesNotAllocateOnOtherPaths(t *testing.T) {
	for _, path := range []string{
		"/v1/operations/x:cancel",
		"/v1/projects/p/locations/l/batchPredictionJobs/j",
		"/storage/v1/b/bkt/o/dir%2Ffile",
		"/batch",
		"/BATCH/vault/v1",
	} {
		if n := testing.AllocsPerRun(100, func() { catalog.IsBatchPath(path) }); n != 0 {
			t.Errorf("IsBatchPath(%q): %v allocations, want 0", path, n)
		}
	}
}

func TestEveryBuiltinAPIHasItsDiscoveryBatchPath(t *testing.T) {
	apis := map[string]string{}
	for _, m := range catalog.Builtin() {
		if b, ok := apis[m.API]; ok && b != m.BatchPath {
			t.Errorf("%s has batch paths %q and %q", m.API, b, m.BatchPath)
		}
		apis[m.API] = m.BatchPath
		want := "/batch"
		switch m.API {
		case "storage/v1":
			want = "/batch/storage/v1"
		case "dai/v1": // no discovery document
			want = ""
		}
		if m.BatchPath != want {
			t.Errorf("%s (%s) has batch path %q, want %q", m.ID, m.API, m.BatchPath, want)
		}
		if want != "" && !catalog.IsBatchPath(m.BatchPath) {
			t.Errorf("IsBatchPath is false for %s of %s", m.BatchPath, m.API)
		}
	}
}

func TestOnlySQLAdminsCancelHasItsOwnQueryParameter(t *testing.T) {
	for _, m := range catalog.Builtin() {
		var want []string
		if m.ID == "sql.operations.cancel" {
			want = []string{"location"}
		}
		if !slices.Equal(m.Query, want) {
			t.Errorf("%s (%s) has query parameters %q, want %q", m.ID, m.API, m.Query, want)
		}
	}
}

func TestIsSystemParamKnowsGooglesSystemParametersAndTheirDollarForms(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"$.xgafv", true},
		{"access_token", true},
		{"alt", true},
		{"callback", true},
		{"fields", true},
		{"key", true},
		{"oauth_token", true},
		{"prettyPrint", true},
		{"quotaUser", true},
		{"upload_protocol", true},
		{"uploadType", true},
		{"userIp", true}, // storage's
		{"$alt", true},
		{"$fields", true},
		{"$prettyPrint", true},
		{"$quotaUser", true},
		{"$ct", true},
		{"$userProject", true},
		{"requestReason", true},

		{"name", false},
		{"location", false}, // sqladmin's own, not a system parameter
		{"bearer_token", false},
		{"Alt", false},
		{"prettyprint", false},
		{"xgafv", false},
		{".xgafv", false},
		{"$$.xgafv", false},
		{"$$alt", false},
		{"$", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := catalog.IsSystemParam(tt.name); got != tt.want {
			t.Errorf("IsSystemParam(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { catalog.IsSystemParam("$prettyPrint"); catalog.IsSystemParam("name") }); n != 0 {
		t.Errorf("IsSystemParam: %v allocations, want 0", n)
	}
}

func FuzzIsBatchPath(f *testing.F) {
	f.Add("/batch")
	f.Add("/batch%2fstorage/v1/x%2F..")
	f.Add(`\%62atch//`)
	upper := func(s string) string {
		b := []byte(s)
		for i, ch := range b {
			if 'a' <= ch && ch <= 'z' {
				b[i] = ch - 'a' + 'A'
			}
		}
		return string(b)
	}
	f.Fuzz(func(t *testing.T, path string) {
		if !catalog.IsBatchPath(path) {
			return
		}
		// What IsBatchPath reads as a batch path, it reads so in another
		// letter case and with a trailing slash, under every reading.
		same := []string{upper(path), path + "/"}
		// A leading "." or empty segment changes the path as written, not
		// the path a lenient server cleans, so the batch reading it keeps
		// is the cleaned one: "/batch/.." is a batch only as written, and
		// "/./batch/.." is a batch under no reading.
		if catalog.IsBatchPath(pathtemplate.Clean(path)) {
			dot := "/." + path
			if !strings.HasPrefix(path, "/") {
				dot = "/./" + path
			}
			same = append(same, dot, "//"+path)
		}
		for _, p := range same {
			if !catalog.IsBatchPath(p) {
				t.Errorf("IsBatchPath(%q) = true, but IsBatchPath(%q) = false", path, p)
			}
		}
	})
}

func TestContainsCancelOrBatchFindsEitherWordInAnyLetterCase(t *testing.T) {
	for s, want := range map[string]bool{
		"/v1/operations/x:cancel": true, "/v1/x/CANCEL": true, "/Batch": true, "/batc": false,
		"/cancE": false, "/v1/b/bb/c/cc": false, "": false, "/google.longrunning.Operations/CancelOperation": true,
	} {
		if got := catalog.ContainsCancelOrBatch(s); got != want {
			t.Errorf("ContainsCancelOrBatch(%q) = %v, want %v", s, got, want)
		}
	}
}
