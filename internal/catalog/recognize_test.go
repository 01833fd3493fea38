package catalog_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/lro-cancel/lro_cancel/internal/catalog"
)

type recognizeCase struct {
	name             string
	host, httpMethod string
	path             string
	kind             catalog.Kind
	id               string // Listed only
	service          string
	operation        string
	vars             []catalog.Var // checked when not nil
}

func runRecognize(t *testing.T, c *catalog.Catalog, tests []recognizeCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.Recognize(tt.host, tt.httpMethod, tt.path)
			id := ""
			if r.Method != nil {
				id = r.Method.ID
			}
			if r.Kind != tt.kind || id != tt.id || r.Service != tt.service || r.Operation != tt.operation {
				t.Errorf("Recognize(%q, %s, %q) = %v id %q service %q operation %q, want %v id %q service %q operation %q",
					tt.host, tt.httpMethod, tt.path, r.Kind, id, r.Service, r.Operation, tt.kind, tt.id, tt.service, tt.operation)
			}
			if tt.vars != nil && !slices.Equal(r.Vars(), tt.vars) {
				t.Errorf("Vars = %q, want %q", r.Vars(), tt.vars)
			}
		})
	}
}

const (
	vault  = "vault.googleapis.com"
	vaultC = "vault.operations.cancel"
)

func TestRecognizeListed(t *testing.T) {
	runRecognize(t, catalog.Default(), []recognizeCase{
		{"verb splits at the last colon", vault, "POST", "/v1/operations/a/b:c:cancel",
			catalog.Listed, vaultC, vault, "operations/a/b:c", []catalog.Var{{Name: "name", Value: "operations/a/b:c"}}},
		{"androidmanagement device operation", "androidmanagement.googleapis.com", "POST", "/v1/enterprises/e/devices/d/operations/o:cancel",
			catalog.Listed, "androidmanagement.enterprises.devices.operations.cancel", "androidmanagement.googleapis.com", "enterprises/e/devices/d/operations/o", nil},
		{"regional endpoint names its API's service", "asia-east1-aiplatform.googleapis.com", "POST", "/v1/projects/p/locations/asia-east1/operations/o:cancel",
			catalog.Listed, "aiplatform.projects.locations.operations.cancel", "aiplatform.googleapis.com", "projects/p/locations/asia-east1/operations/o", nil},
		{"mtls host names its API's service", "vault.mtls.googleapis.com", "POST", "/v1/operations/x:cancel",
			catalog.Listed, vaultC, vault, "operations/x", nil},
		{"datalabeling cancels with GET", "datalabeling.googleapis.com", "GET", "/v1beta1/projects/p/operations/o:cancel",
			catalog.Listed, "datalabeling.projects.operations.cancel", "datalabeling.googleapis.com", "projects/p/operations/o", nil},
		{"encoded slash stays encoded in the name", vault, "POST", "/v1/operations/a%2Fb:cancel",
			catalog.Listed, vaultC, vault, "operations/a%2Fb", []catalog.Var{{Name: "name", Value: "operations/a%2Fb"}}},
		{"double-encoded slash decodes once", vault, "POST", "/v1/operations/a%252Fb:cancel",
			catalog.Listed, vaultC, vault, "operations/a%2Fb", nil},
		{"other escapes decode", vault, "POST", "/v1/operations/a%20b%3Ac:cancel",
			catalog.Listed, vaultC, vault, "operations/a b:c", nil},
		{"undecodable name is listed without operation", vault, "POST", "/v1/operations/a%zz:cancel",
			catalog.Listed, vaultC, vault, "", []catalog.Var{{Name: "name", Value: ""}}},
		// "**" matches zero segments (google.api.http), so Google routes this to the cancel method.
		{"bare operations collection matches operations/**", vault, "POST", "/v1/operations:cancel",
			catalog.Listed, vaultC, vault, "operations", nil},
		{"sqladmin v1 literal cancel segment", "sqladmin.googleapis.com", "POST", "/v1/projects/p/operations/o/cancel",
			catalog.Listed, "sql.operations.cancel", "sqladmin.googleapis.com", "projects/p/operations/o",
			[]catalog.Var{{Name: "project", Value: "p"}, {Name: "operation", Value: "o"}}},
		{"sqladmin v1beta4 ignores the query", "sqladmin.googleapis.com", "POST", "/sql/v1beta4/projects/p/operations/o/cancel",
			catalog.Listed, "sql.operations.cancel", "sqladmin.googleapis.com", "projects/p/operations/o", nil},
		{"storage bucket operation", "storage.googleapis.com", "POST", "/storage/v1/b/bkt/operations/o/cancel",
			catalog.Listed, "storage.buckets.operations.cancel", "storage.googleapis.com", "b/bkt/operations/o",
			[]catalog.Var{{Name: "bucket", Value: "bkt"}, {Name: "operationId", Value: "o"}}},
		{"one-segment variables decode %2F, the operation keeps it", "storage.googleapis.com", "POST", "/storage/v1/b/a%2Fb/operations/o/cancel",
			catalog.Listed, "storage.buckets.operations.cancel", "storage.googleapis.com", "b/a%2Fb/operations/o",
			[]catalog.Var{{Name: "bucket", Value: "a/b"}, {Name: "operationId", Value: "o"}}},
		{"container zones operation", "container.googleapis.com", "POST", "/v1/projects/p/zones/z/operations/o:cancel",
			catalog.Listed, "container.projects.zones.operations.cancel", "container.googleapis.com", "projects/p/zones/z/operations/o",
			[]catalog.Var{{Name: "projectId", Value: "p"}, {Name: "zone", Value: "z"}, {Name: "operationId", Value: "o"}}},
		{"host port is stripped", "vault.googleapis.com:443", "POST", "/v1/operations/x:cancel",
			catalog.Listed, vaultC, vault, "operations/x", nil},
		{"host is lower-cased", "VAULT.GoogleAPIs.com", "POST", "/v1/operations/x:cancel",
			catalog.Listed, vaultC, vault, "operations/x", nil},
		{"host trailing dot is dropped", "vault.googleapis.com.:8443", "POST", "/v1/operations/x:cancel",
			catalog.Listed, vaultC, vault, "operations/x", nil},
	})
}

func TestRecognizeNotCancel(t *testing.T) {
	runRecognize(t, catalog.Default(), []recognizeCase{
		{"GET on a POST cancel", vault, "GET", "/v1/operations/x:cancel", catalog.NotCancel, "", "", "", nil},
		{"GET on androidmanagement", "androidmanagement.googleapis.com", "GET", "/v1/enterprises/e/devices/d/operations/o:cancel",
			catalog.NotCancel, "", "", "", nil},
		{"GET on a regional host", "asia-east1-aiplatform.googleapis.com", "GET", "/v1/projects/p/locations/l/operations/o:cancel",
			catalog.NotCancel, "", "", "", nil},
		{"other HTTP methods", vault, "DELETE", "/v1/operations/x:cancel", catalog.NotCancel, "", "", "", nil},
		{"HTTP methods are case-sensitive", vault, "post", "/v1/operations/x:cancel", catalog.NotCancel, "", "", "", nil},
		{"job cancel is not an operation cancel", "batch.googleapis.com", "POST", "/v1/projects/p/locations/l/jobs/j:cancel",
			catalog.NotCancel, "", "", "", nil},
		{"verb must be exactly cancel", vault, "POST", "/v1/operations/x:cancelled", catalog.NotCancel, "", "", "", nil},
		{"escaped verb is not the verb", vault, "POST", "/v1/operations/x%3Fcancel", catalog.NotCancel, "", "", "", nil},
		{"no cancel at all", vault, "POST", "/v1/operations/x", catalog.NotCancel, "", "", "", nil},
		{"ambiguous path that is no cancel", vault, "POST", "/v1/foo/../bar", catalog.NotCancel, "", "", "", nil},
		{"ambiguous path that cleans to no cancel", vault, "POST", "/v1/foo/../bar:cancel", catalog.NotCancel, "", "", "", nil},
		{"escaped slash on a GET", "storage.googleapis.com", "GET", "/storage/v1/b/bkt/o/dir%2Ffile", catalog.NotCancel, "", "", "", nil},
	})
}

func TestRecognizeUnlisted(t *testing.T) {
	const other = "example.googleapis.com"
	runRecognize(t, catalog.Default(), []recognizeCase{
		{"unknown API", other, "POST", "/v2/projects/p/operations/o:cancel", catalog.Unlisted, "", other, "projects/p/operations/o", nil},
		{"known API, version the catalog lacks", vault, "POST", "/v9/operations/x:cancel", catalog.Unlisted, "", vault, "operations/x", nil},
		{"name is decoded once", other, "POST", "/v1/operations/a%252Fb:cancel", catalog.Unlisted, "", other, "operations/a%2Fb", nil},
		{"host is normalized", "Example.googleapis.com:443", "POST", "/v1/operations/x:cancel", catalog.Unlisted, "", other, "operations/x", nil},
		{"IPv6 host loses brackets and port", "[::1]:8443", "POST", "/v1/operations/x:cancel", catalog.Unlisted, "", "::1", "operations/x", nil},
		{"datalabeling's path with POST", "datalabeling.googleapis.com", "POST", "/v1beta1/projects/p/operations/o:cancel",
			catalog.Unlisted, "", "datalabeling.googleapis.com", "projects/p/operations/o", nil},
		{"operations needs a following segment", other, "POST", "/v1/operations:cancel", catalog.NotCancel, "", "", "", nil},
		{"no operations segment", other, "POST", "/v1/jobs/j:cancel", catalog.NotCancel, "", "", "", nil},
		{"operations as the version", other, "POST", "/operations/x:cancel", catalog.NotCancel, "", "", "", nil},
		{"operations must be a whole segment", other, "POST", "/v1/transferOperations/x:cancel", catalog.NotCancel, "", "", "", nil},
		{"unlisted needs POST", other, "GET", "/v1/operations/x:cancel", catalog.NotCancel, "", "", "", nil},
		{"colon before the last slash is no verb", other, "POST", "/v1/operations/x:cancel/y", catalog.NotCancel, "", "", "", nil},
	})
}

func TestRecognizeAmbiguous(t *testing.T) {
	const other = "example.googleapis.com"
	runRecognize(t, catalog.Default(), []recognizeCase{
		{"dot-dot segment", vault, "POST", "/v1/operations/../x:cancel", catalog.Ambiguous, "", vault, "", nil},
		{"encoded dot-dot segment", vault, "POST", "/v1/operations/%2e%2E/x:cancel", catalog.Ambiguous, "", vault, "", nil},
		{"dot segment in a listed path", vault, "POST", "/v1/operations/a/./b:cancel", catalog.Ambiguous, "", vault, "", nil},
		{"empty segment", vault, "POST", "/v1/operations//x:cancel", catalog.Ambiguous, "", vault, "", nil},
		{"trailing slash", vault, "POST", "/v1/operations/x:cancel/", catalog.Ambiguous, "", vault, "", nil},
		{"backslash", vault, "POST", `/v1/operations\x:cancel`, catalog.Ambiguous, "", vault, "", nil},
		{"encoded backslash", vault, "POST", "/v1/operations%5Cx:cancel", catalog.Ambiguous, "", vault, "", nil},
		{"encoded colon before the verb", vault, "POST", "/v1/operations/x%3Acancel", catalog.Ambiguous, "", vault, "", nil},
		{"encoded verb", vault, "POST", "/v1/operations/x:%63ancel", catalog.Ambiguous, "", vault, "", nil},
		{"encoded literal letter", vault, "POST", "/v1/%6Fperations/x:cancel", catalog.Ambiguous, "", vault, "", nil},
		{"unknown host, cleaned path is unlisted", other, "POST", "/v1/projects/p/operations/./o:cancel", catalog.Ambiguous, "", other, "", nil},
		{"unknown host, encoded literal letter", other, "POST", "/v1/%6Fperations/o:cancel", catalog.Ambiguous, "", other, "", nil},
		{"host is normalized", "VAULT.googleapis.com", "POST", "/v1/operations//x:cancel", catalog.Ambiguous, "", vault, "", nil},
		{"GET cancel of datalabeling", "datalabeling.googleapis.com", "GET", "/v1beta1/projects/p/operations//o:cancel",
			catalog.Ambiguous, "", "datalabeling.googleapis.com", "", nil},
	})
}

func TestRecognizeEncodedSlashes(t *testing.T) {
	const other = "example.googleapis.com"
	runRecognize(t, catalog.Default(), []recognizeCase{
		{"an encoded slash that makes a listed cancel is ambiguous", vault, "POST", "/v1/operations%2Fx:cancel",
			catalog.Ambiguous, "", vault, "", nil},
		{"the lower-case escape too", vault, "POST", "/v1/operations%2fx:cancel", catalog.Ambiguous, "", vault, "", nil},
		{"an encoded slash hiding the operations segment of a regional method", "us-east1-aiplatform.googleapis.com", "POST",
			"/v1/projects/p/locations/l%2Foperations/o:cancel", catalog.Ambiguous, "", "us-east1-aiplatform.googleapis.com", "", nil},
		{"an encoded slash before sqladmin's cancel segment", "sqladmin.googleapis.com", "POST", "/v1/projects/p/operations/o%2Fcancel",
			catalog.Ambiguous, "", "sqladmin.googleapis.com", "", nil},
		{"an unlisted cancel with an encoded slash, on an unknown host", other, "POST", "/v1/projects%2Fp/locations/l/operations/o:cancel",
			catalog.Ambiguous, "", other, "", nil},
		{"an unknown API's name may not hold an encoded slash", other, "POST", "/v1/operations/a%2Fb:cancel",
			catalog.Ambiguous, "", other, "", nil},
		{"an unlisted version of a known API neither", vault, "POST", "/v9/operations/a%2Fb:cancel", catalog.Ambiguous, "", vault, "", nil},
		{"an encoded slash as the version of an unlisted cancel", other, "POST", "/%2F/operations/o:cancel", catalog.Ambiguous, "", other, "", nil},
		{"the same in the /cancel style", other, "POST", "/%2F/operations/o/cancel", catalog.Ambiguous, "", other, "", nil},
		{"an unlisted /cancel with an encoded slash in its name", other, "POST", "/v1/projects/p/operations/a%2Fb/cancel", catalog.Ambiguous, "", other, "", nil},
		{"encoded slashes that make dot segments", vault, "POST", "/v1/operations%2F..%2Fx:cancel", catalog.Ambiguous, "", vault, "", nil},
		{"an encoded slash in an otherwise ambiguous path", vault, "POST", "/v1/operations%2Fx:cancel/", catalog.Ambiguous, "", vault, "", nil},
		{"an encoded slash in a GET cancel", "datalabeling.googleapis.com", "GET", "/v1beta1/projects%2Fp/operations/o:cancel",
			catalog.Ambiguous, "", "datalabeling.googleapis.com", "", nil},
		{"an encoded slash inside a listed name stays legal", vault, "POST", "/v1/operations/a%2Fb:cancel",
			catalog.Listed, vaultC, vault, "operations/a%2Fb", []catalog.Var{{Name: "name", Value: "operations/a%2Fb"}}},
		{"an encoded slash ending a listed name stays legal", vault, "POST", "/v1/operations/x%2F:cancel",
			catalog.Listed, vaultC, vault, "operations/x%2F", nil},
		{"encoded slashes inside a one-segment variable stay legal", "storage.googleapis.com", "POST", "/storage/v1/b/a%2F%2Fb/operations/o/cancel",
			catalog.Listed, "storage.buckets.operations.cancel", "storage.googleapis.com", "b/a%2F%2Fb/operations/o", nil},
		{"a double-encoded slash is decoded once, to no slash", vault, "POST", "/v1/operations%252Fx:cancel", catalog.NotCancel, "", "", "", nil},
		{"an encoded slash that makes no cancel", other, "POST", "/v1/jobs%2Fj:cancel", catalog.NotCancel, "", "", "", nil},
		{"an encoded slash after the verb reads as a trailing slash", other, "POST", "/v1/operations/x:cancel%2F",
			catalog.Ambiguous, "", other, "", nil},
	})
}

func TestAliasHostsAreGovernedAsTheAPITheyAlias(t *testing.T) {
	const aip = "aiplatform.googleapis.com"
	const aipC = "aiplatform.projects.locations.operations.cancel"
	const aipPath = "/v1/projects/p/locations/us-central1/operations/o"
	runRecognize(t, catalog.Default(), []recognizeCase{
		{"the APIs Explorer's content- host", "content-vault.googleapis.com", "POST", "/v1/operations/x:cancel",
			catalog.Listed, vaultC, vault, "operations/x", nil},
		{"a web console's clients6 host", "vault.clients6.google.com", "POST", "/v1/operations/x:cancel",
			catalog.Listed, vaultC, vault, "operations/x", nil},
		{"a Private Service Connect endpoint", "vault-corp1.p.googleapis.com", "POST", "/v1/operations/x:cancel",
			catalog.Listed, vaultC, vault, "operations/x", nil},
		{"a Private Service Connect endpoint of a regional host splits at the last dash", "us-central1-aiplatform-corp.p.googleapis.com", "POST",
			aipPath + ":cancel", catalog.Listed, aipC, aip, "projects/p/locations/us-central1/operations/o", nil},
		{"the APIs Explorer's name of a regional host", "content-us-central1-aiplatform.googleapis.com", "POST",
			aipPath + ":cancel", catalog.Listed, aipC, aip, "projects/p/locations/us-central1/operations/o", nil},
		{"an alias in another letter case, with a port and a trailing dot", "Content-Vault.GoogleAPIs.com.:443", "POST", "/v1/operations/x:cancel",
			catalog.Listed, vaultC, vault, "operations/x", nil},
		{"an upper-case endpoint name", "VAULT-CORP.P.GOOGLEAPIS.COM", "POST", "/v1/operations/x:cancel",
			catalog.Listed, vaultC, vault, "operations/x", nil},
		{"an alias has its API's GET cancels", "datalabeling.clients6.google.com", "GET", "/v1beta1/projects/p/operations/o:cancel",
			catalog.Listed, "datalabeling.projects.operations.cancel", "datalabeling.googleapis.com", "projects/p/operations/o", nil},
		{"an unlisted cancel on an alias names the API's host", "content-vault.googleapis.com", "POST", "/v9/operations/x:cancel",
			catalog.Unlisted, "", vault, "operations/x", nil},
		{"an ambiguous cancel on an alias names the API's host", "vault-corp.p.googleapis.com", "POST", "/v1/operations//x:cancel",
			catalog.Ambiguous, "", vault, "", nil},
		{"an alias has its API's HTTP methods only", "vault.clients6.google.com", "GET", "/v1/operations/x:cancel",
			catalog.NotCancel, "", "", "", nil},
		{"an endpoint name is letters and digits", "vault-corp_1.p.googleapis.com", "POST", "/v1/operations/x:cancel",
			catalog.Unlisted, "", "vault-corp_1.p.googleapis.com", "operations/x", nil},
		{"a Private Service Connect host without an endpoint name", "vault.p.googleapis.com", "POST", "/v1/operations/x:cancel",
			catalog.Unlisted, "", "vault.p.googleapis.com", "operations/x", nil},
		{"an empty endpoint name", "vault-.p.googleapis.com", "POST", "/v1/operations/x:cancel",
			catalog.Unlisted, "", "vault-.p.googleapis.com", "operations/x", nil},
		{"an alias of an API the catalog does not know is an unknown host", "content-example.googleapis.com", "POST", "/v1/operations/x:cancel",
			catalog.Unlisted, "", "content-example.googleapis.com", "operations/x", nil},
		{"an alias of an alias is not followed", "content-vault.clients6.google.com", "POST", "/v1/operations/x:cancel",
			catalog.Unlisted, "", "content-vault.clients6.google.com", "operations/x", nil},
		{"clients6 is a google.com name only", "vault.clients6.googleapis.com", "POST", "/v1/operations/x:cancel",
			catalog.Unlisted, "", "vault.clients6.googleapis.com", "operations/x", nil},
	})
}

func TestAliasHostsAreSeenByEveryLookup(t *testing.T) {
	c := catalog.Default()
	for _, h := range []string{"content-vault.googleapis.com", "vault.clients6.google.com", "vault-corp.p.googleapis.com"} {
		t.Run(h, func(t *testing.T) {
			if got := c.Service(h); got != vault {
				t.Errorf("Service(%q) = %q, want %q", h, got, vault)
			}
			if r := c.RecognizeName(h, "operations/x"); r.Kind != catalog.Listed || r.Method.ID != vaultC || r.Service != vault {
				t.Errorf("RecognizeName(%q) = %v %+v, want Listed %s on %s", h, r.Kind, r.Method, vaultC, vault)
			}
			if r := c.RecognizeName(h, "jobs/x"); r.Kind != catalog.Unlisted || r.Service != vault {
				t.Errorf("RecognizeName(%q, jobs/x) = %v service %q, want Unlisted on %s", h, r.Kind, r.Service, vault)
			}
			if r := c.RecognizeIn([]string{h}, "other.example.com", "POST", "/v1/operations/x:cancel"); r.Kind != catalog.Listed || r.Service != vault {
				t.Errorf("RecognizeIn pinned to %q = %v service %q, want Listed on %s", h, r.Kind, r.Service, vault)
			}
			if !c.Serves(h) {
				t.Errorf("Serves(%q) = false, want true", h)
			}
		})
	}
	for _, tc := range []struct{ host, want string }{
		{"Vault.GoogleAPIs.com:443", vault},
		{"us-central1-aiplatform-corp.p.googleapis.com", "us-central1-aiplatform.googleapis.com"},
		{"example.com.", "example.com"},
		{"content-example.googleapis.com", "content-example.googleapis.com"},
	} {
		if got := c.Service(tc.host); got != tc.want {
			t.Errorf("Service(%q) = %q, want %q", tc.host, got, tc.want)
		}
	}
}

func TestNonCancelRequestsDoNotAllocate(t *testing.T) {
	c := catalog.Default()
	tests := []struct{ name, host, method, path string }{
		{"other method", vault, "PUT", "/v1/operations/x:cancel"},
		{"path without cancel", vault, "POST", "/v1/matters/m/holds"},
		{"GET with escapes on a host without GET cancels", "storage.googleapis.com", "GET", "/storage/v1/b/bkt/o/dir%2Ffile"},
		{"POST with escapes", "storage.googleapis.com", "POST", "/storage/v1/b/bkt/o/dir%2Ffile%zz/compose"},
		{"job cancel", "batch.googleapis.com", "POST", "/v1/projects/p/locations/l/jobs/j:cancel"},
		{"upper-case host", "BATCH.googleapis.com", "POST", "/v1/projects/p/locations/l/jobs/j:cancel"},
		{"unknown host", "example.com:8080", "POST", "/v1/jobs/j:cancel"},
		{"alias host", "content-batch.googleapis.com", "POST", "/v1/projects/p/locations/l/jobs/j:cancel"},
		{"upper-case alias host", "BATCH-corp.P.googleapis.com", "POST", "/v1/projects/p/locations/l/jobs/j:cancel"},
		{"alias of an unknown API", "content-example.googleapis.com", "POST", "/v1/jobs/j:cancel"},
		{"upper-case unknown host", "Example.COM", "POST", "/v1/jobs/j:cancel"},
		{"encoded slash in a path without cancel", vault, "POST", "/v1/matters/m%2Fx/holds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r catalog.Result
			allocs := testing.AllocsPerRun(100, func() { r = c.Recognize(tt.host, tt.method, tt.path) })
			if r.Kind != catalog.NotCancel || allocs != 0 {
				t.Errorf("Recognize(%q, %s, %q) = %v with %v allocs, want NotCancel with 0", tt.host, tt.method, tt.path, r.Kind, allocs)
			}
		})
	}
}

func TestNewAddsOperatorTemplates(t *testing.T) {
	c, err := catalog.New([]catalog.Method{
		{Template: "/v1/{name=jobs/*/operations/*}:cancel"},
		{ID: "private.ops.cancel", Service: "private.example.com", Hosts: []string{"Private.Example.com."},
			HTTPMethod: "post", Template: "/v1/{name=projects/*/ops/*}:cancel", Scopes: []string{"s"}},
		// Every host: yields to vault's own method on vault.
		{ID: "everywhere", Template: "/v1/{name=operations/**}:cancel"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Len() != catalog.Default().Len()+3 {
		t.Errorf("Len() = %d, want builtin + 3", c.Len())
	}
	if !slices.Contains(c.Services(), "private.example.com") {
		t.Errorf("Services() lacks private.example.com")
	}
	runRecognize(t, c, []recognizeCase{
		{"host-less entry on any host, id defaults to custom", "jobs.example.com", "POST", "/v1/jobs/j/operations/o:cancel",
			catalog.Listed, "custom", "jobs.example.com", "jobs/j/operations/o", nil},
		{"host-less entry on a catalog host", vault, "POST", "/v1/jobs/j/operations/o:cancel",
			catalog.Listed, "custom", vault, "jobs/j/operations/o", nil},
		{"host entry, host normalized", "private.example.com", "POST", "/v1/projects/p/ops/o:cancel",
			catalog.Listed, "private.ops.cancel", "private.example.com", "projects/p/ops/o", nil},
		{"host entry only on its host", "other.example.com", "POST", "/v1/projects/p/ops/o:cancel",
			catalog.NotCancel, "", "", "", nil},
		{"builtin wins over a host-less duplicate", vault, "POST", "/v1/operations/x:cancel",
			catalog.Listed, vaultC, vault, "operations/x", nil},
		{"host-less duplicate serves other hosts", "other.example.com", "POST", "/v1/operations/x:cancel",
			catalog.Listed, "everywhere", "other.example.com", "operations/x", nil},
		{"builtins stay", "sqladmin.googleapis.com", "POST", "/v1/projects/p/operations/o/cancel",
			catalog.Listed, "sql.operations.cancel", "sqladmin.googleapis.com", "projects/p/operations/o", nil},
	})
}

func TestNewRefusesBadEntries(t *testing.T) {
	tests := []struct {
		name    string
		extra   []catalog.Method
		mention string
	}{
		{"unparsable template", []catalog.Method{{Template: "/v1/{name=operations/**:cancel"}}, `"/v1/{name=operations/**:cancel"`},
		{"relative template", []catalog.Method{{Template: "v1/x:cancel"}}, `"v1/x:cancel"`},
		{"HTTP method", []catalog.Method{{Template: "/v1/x:cancel", HTTPMethod: "PUT"}}, `"PUT"`},
		{"empty host", []catalog.Method{{Template: "/v1/x:cancel", Hosts: []string{""}}}, "empty host"},
		{"duplicate of a builtin on its host", []catalog.Method{{Template: "/v1/{name=operations/**}:cancel", Hosts: []string{vault}}}, vaultC},
		{"two identical host-less entries", []catalog.Method{{Template: "/v1/{x}:cancel"}, {ID: "b", Template: "/v1/{x=*}:cancel"}}, "every host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := catalog.New(tt.extra)
			if err == nil || !strings.Contains(err.Error(), tt.mention) {
				t.Errorf("New() error = %v, want one mentioning %s", err, tt.mention)
			}
		})
	}
}

func TestNewCopiesOperatorSlices(t *testing.T) {
	extra := []catalog.Method{{Hosts: []string{"a.example.com"}, Template: "/v1/{name=x/*}:cancel", Scopes: []string{"s"}}}
	c, err := catalog.New(extra)
	if err != nil {
		t.Fatal(err)
	}
	extra[0].Hosts[0], extra[0].Scopes[0] = "b.example.com", "changed"
	r := c.Recognize("a.example.com", "POST", "/v1/x/1:cancel")
	if r.Kind != catalog.Listed || r.Method.Scopes[0] != "s" {
		t.Errorf("after changing the caller's slices: %v %+v, want Listed with scope s", r.Kind, r.Method)
	}
}

func FuzzRecognize(f *testing.F) {
	f.Add(vault, "POST", "/v1/operations/a/b:c:cancel")
	f.Add("sqladmin.googleapis.com", "POST", "/v1/projects/p/operations/o/cancel")
	f.Add("storage.googleapis.com", "POST", "/storage/v1/b/%2F/operations/%zz/cancel")
	f.Add("[::1]:80", "POST", `/v1/operations\..%2e/%6F:%63ancel`)
	f.Add("datalabeling.googleapis.com", "GET", "/v1beta1/projects/p/operations/o:cancel")
	f.Add(vault, "POST", "/v1/operations%2Fx:cancel")
	f.Add("content-vault.googleapis.com", "POST", "/v1/operations/a%2Fb:cancel")
	f.Add("us-central1-aiplatform-corp.p.googleapis.com", "POST", "/v1/projects%2fp/locations/l/operations/o:cancel")
	f.Add("sqladmin.googleapis.com", "POST", "/v1/projects/p/operations/o%2Fcancel")
	c := catalog.Default()
	decodeSlashes := strings.NewReplacer("%2F", "/", "%2f", "/")
	f.Fuzz(func(t *testing.T, host, method, path string) {
		r := c.Recognize(host, method, path)
		if (r.Kind == catalog.Listed) != (r.Method != nil) {
			t.Errorf("Recognize(%q, %q, %q) = %v with method %v", host, method, path, r.Kind, r.Method)
		}
		if r.Kind == catalog.Listed && r.Service == "" {
			t.Errorf("Recognize(%q, %q, %q) = Listed without a service", host, method, path)
		}
		if r.Kind == catalog.NotCancel && fmt.Sprint(r) != fmt.Sprint(catalog.Result{}) {
			t.Errorf("Recognize(%q, %q, %q) = NotCancel with data %+v", host, method, path, r)
		}
		// An encoded slash never hides a cancel: what the path reads as
		// with %2F decoded is recognised, the path is too. And an unlisted
		// cancel, whose template nobody knows, never holds one.
		if d := decodeSlashes.Replace(path); d != path {
			if r.Kind == catalog.Unlisted {
				t.Errorf("Recognize(%q, %q, %q) = Unlisted with an encoded slash", host, method, path)
			}
			if rd := c.Recognize(host, method, d); r.Kind == catalog.NotCancel && rd.Kind != catalog.NotCancel {
				t.Errorf("Recognize(%q, %q, %q) = NotCancel, but with %%2F decoded (%q) %v", host, method, path, d, rd.Kind)
			}
		}
	})
}
