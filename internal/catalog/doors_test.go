package catalog_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/lro-cancel/lro_cancel/internal/catalog"
)

func TestIsBatchReadsEverySpellingOfABatchPathOnGovernedHostsOnly(t *testing.T) {
	const (
		storage  = "storage.googleapis.com"
		regional = "asia-east1-aiplatform.googleapis.com"
	)
	tests := []struct {
		name, host, path string
		want             bool
	}{
		{"an API's own batch path", vault, "/batch", true},
		{"storage's versioned batch path", storage, "/batch/storage/v1", true},
		{"the generic versioned form on any governed host", vault, "/batch/vault/v1", true},
		{"the generic versioned form naming another API", vault, "/batch/drive/v3", true},
		{"the mTLS host", "vault.mtls.googleapis.com", "/batch", true},
		{"a regional host", regional, "/batch", true},
		{"the host in another letter case with a port", "VAULT.googleapis.com:443", "/batch", true},
		{"the APIs Explorer's alias", "content-vault.googleapis.com", "/batch", true},
		{"a web console's alias", "vault.clients6.google.com", "/batch/vault/v1", true},
		{"a Private Service Connect endpoint of a regional host", "asia-east1-aiplatform-corp.p.googleapis.com", "/batch", true},

		{"another letter case", vault, "/BATCH", true},
		{"another letter case in the versioned form", vault, "/Batch/Vault/V1", true},
		{"a trailing slash", vault, "/batch/", true},
		{"a trailing slash after the version", storage, "/batch/storage/v1/", true},
		{"an empty segment first", vault, "//batch", true},
		{"an empty segment inside", storage, "/batch//storage/v1", true},
		{"a dot segment", vault, "/./batch", true},
		{"a dot-dot segment", vault, "/upload/../batch", true},
		{"an encoded dot segment", vault, "/%2e/batch", true},
		{"a backslash", vault, `\batch`, true},
		{"an encoded backslash at the end", vault, "/batch%5C", true},
		{"no leading slash", vault, "batch", true},
		{"an escaped letter", vault, "/%62atch", true},
		{"every letter escaped", vault, "/%62%61%74%63%68", true},
		{"encoded slashes", storage, "/batch%2Fstorage%2Fv1", true},
		{"lower-case encoded slashes", storage, "/batch%2fstorage%2fv1", true},
		{"an encoded slash that a dot-dot segment drops", storage, "/batch/storage/v1/x%2Fy/..", true},
		{"an encoded slash as a trailing slash", vault, "/batch%2F", true},

		{"an unknown host", "example.com", "/batch", false},
		{"an alias of an API the catalog does not know", "content-example.googleapis.com", "/batch", false},
		{"an empty host", "", "/batch", false},
		{"a longer first segment", vault, "/batches", false},
		{"a batch path with one segment more", vault, "/batch/vault", false},
		{"a versioned form with a segment too many", vault, "/batch/vault/v1/x", false},
		{"batch below the root", vault, "/v1/batch", false},
		{"a verb after batch", vault, "/batch:run", false},
		{"a resource named batch-something", regional, "/v1/projects/p/locations/l/batchPredictionJobs/j", false},
		{"a double-encoded slash is decoded once", storage, "/batch%252Fstorage%252Fv1", false},
		{"an escape that is no letter of batch", vault, "/%20batch", false},
		{"the root", vault, "/", false},
		{"no path", vault, "", false},
	}
	c := catalog.Default()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := c.IsBatch(tt.host, tt.path); got != tt.want {
				t.Errorf("IsBatch(%q, %q) = %v, want %v", tt.host, tt.path, got, tt.want)
			}
		})
	}
}

func TestIsBatchKnowsOperatorHostsAndHostlessMethodsGovernEveryHost(t *testing.T) {
	onHost, err := catalog.New([]catalog.Method{{Hosts: []string{"private.example.com"}, Template: "/v1/{name=operations/*}:cancel",
		BatchPath: "/private/batch"}})
	if err != nil {
		t.Fatal(err)
	}
	everywhere, err := catalog.New([]catalog.Method{{Template: "/v1/{name=jobs/*/operations/*}:cancel"}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		c          *catalog.Catalog
		host, path string
		want       bool
	}{
		{"an operator's host has the generic batch path", onHost, "private.example.com", "/batch", true},
		{"and its method's own", onHost, "private.example.com", "/private/batch", true},
		{"in another letter case", onHost, "private.example.com", "/PRIVATE/Batch/", true},
		{"which other hosts do not have", onHost, vault, "/private/batch", false},
		{"an unknown host stays unknown", onHost, "other.example.com", "/batch", false},
		{"with host-less methods every host is governed", everywhere, "other.example.com", "/batch", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.c.IsBatch(tt.host, tt.path); got != tt.want {
				t.Errorf("IsBatch(%q, %q) = %v, want %v", tt.host, tt.path, got, tt.want)
			}
		})
	}
	if _, err := catalog.New([]catalog.Method{{Template: "/v1/{name=x/*}:cancel", BatchPath: "batch"}}); err == nil ||
		!strings.Contains(err.Error(), `"batch"`) {
		t.Errorf("New with a relative batch path: error = %v, want one naming it", err)
	}
}

func TestIsBatchDoesNotAllocateOnOtherPaths(t *testing.T) {
	c := catalog.Default()
	tests := []struct{ name, host, path string }{
		{"a path without batch", vault, "/v1/operations/x:cancel"},
		{"a path holding batch", "asia-east1-aiplatform.googleapis.com", "/v1/projects/p/locations/l/batchPredictionJobs/j"},
		{"escapes of no letter", "storage.googleapis.com", "/storage/v1/b/bkt/o/dir%2Ffile"},
		{"an unknown host", "example.com", "/batch"},
		{"an upper-case alias host", "Content-Vault.googleapis.com", "/v1/batchy"},
		{"the batch path itself", vault, "/batch"},
		{"the batch path in another letter case", vault, "/BATCH/vault/v1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(100, func() { c.IsBatch(tt.host, tt.path) }); n != 0 {
				t.Errorf("IsBatch(%q, %q): %v allocations, want 0", tt.host, tt.path, n)
			}
		})
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
		if want != "" && !slices.ContainsFunc(m.Hosts, func(h string) bool { return catalog.Default().IsBatch(h, m.BatchPath) }) {
			t.Errorf("IsBatch is false for %s on the hosts of %s", m.BatchPath, m.API)
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

func FuzzIsBatch(f *testing.F) {
	f.Add(vault, "/batch")
	f.Add("storage.googleapis.com", "/batch%2fstorage/v1/x%2F..")
	f.Add("content-vault.googleapis.com", `\%62atch//`)
	f.Add("example.com", "/batch")
	c := catalog.Default()
	upper := func(s string) string {
		b := []byte(s)
		for i, ch := range b {
			if 'a' <= ch && ch <= 'z' {
				b[i] = ch - 'a' + 'A'
			}
		}
		return string(b)
	}
	f.Fuzz(func(t *testing.T, host, path string) {
		if !c.IsBatch(host, path) {
			return
		}
		// What IsBatch reads as a batch path, it reads so in every
		// spelling a lenient server reads alike.
		dot := "/." + path
		if !strings.HasPrefix(path, "/") {
			dot = "/./" + path
		}
		for _, p := range []string{upper(path), path + "/", dot, "//" + path} {
			if !c.IsBatch(host, p) {
				t.Errorf("IsBatch(%q, %q) = true, but IsBatch(%q, %q) = false", host, path, host, p)
			}
		}
	})
}
