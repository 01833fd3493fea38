package catalog_test

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/lro-cancel/lro_cancel/internal/catalog"
	"github.com/lro-cancel/lro_cancel/internal/pathtemplate"
)

// findMethod returns the builtin method with this id in this API.
func findMethod(t *testing.T, id, api string) catalog.Method {
	t.Helper()
	for _, m := range catalog.Builtin() {
		if m.ID == id && m.API == api {
			return m
		}
	}
	t.Fatalf("no builtin method %s in %s", id, api)
	return catalog.Method{}
}

func TestBuiltinHoldsEveryDiscoveryCancelPlusDAI(t *testing.T) {
	ms := catalog.Builtin()
	// 387 methods over 111 APIs in google.golang.org/api v0.298.0, plus dai.
	if len(ms) != 388 {
		t.Errorf("Builtin() has %d methods, want 388", len(ms))
	}
	if n := catalog.Default().Len(); n < 380 || n != len(ms) {
		t.Errorf("Default().Len() = %d, want %d (at least 380)", n, len(ms))
	}
	apis := map[string]bool{}
	for _, m := range ms {
		name, _, _ := strings.Cut(m.API, "/")
		apis[name] = true
		if !strings.HasSuffix(m.ID, "operations.cancel") {
			t.Errorf("%s is not an operations.cancel method", m.ID)
		}
		if !slices.Contains(m.Hosts, m.Service) || !slices.IsSorted(m.Hosts) || !slices.IsSorted(m.Scopes) {
			t.Errorf("%s (%s): service %q, hosts %q, scopes %q: want the service among sorted hosts, sorted scopes",
				m.ID, m.API, m.Service, m.Hosts, m.Scopes)
		}
	}
	if len(apis) != 112 {
		t.Errorf("Builtin() spans %d APIs, want 112 (111 + dai)", len(apis))
	}
	if s := catalog.Default().Services(); len(s) != 112 || !slices.IsSorted(s) {
		t.Errorf("Services() = %d services (sorted %v), want 112 sorted", len(s), slices.IsSorted(s))
	}
}

var varExpr = regexp.MustCompile(`\{[^{}]*\}`)

// synthesize builds a path that tmpl matches: "*" becomes a segment named
// after its position, "**" two segments.
func synthesize(tmpl string) string {
	flat := varExpr.ReplaceAllStringFunc(tmpl, func(v string) string {
		if _, pattern, ok := strings.Cut(v[1:len(v)-1], "="); ok {
			return pattern
		}
		return "*"
	})
	verb := ""
	last := strings.LastIndexByte(flat, '/')
	if c := strings.LastIndexByte(flat[last:], ':'); c >= 0 {
		flat, verb = flat[:last+c], flat[last+c:]
	}
	segs := strings.Split(flat, "/")
	for i, s := range segs {
		switch s {
		case "*":
			segs[i] = fmt.Sprintf("s%d", i)
		case "**":
			segs[i] = "deep/er"
		}
	}
	return strings.Join(segs, "/") + verb
}

func TestEveryBuiltinTemplateParsesAndRecognisesItsOwnPathOnEveryHost(t *testing.T) {
	c := catalog.Default()
	for _, m := range catalog.Builtin() {
		if _, err := pathtemplate.Parse(m.Template); err != nil {
			t.Errorf("%s (%s): %v", m.ID, m.API, err)
			continue
		}
		path := synthesize(m.Template)
		for _, h := range m.Hosts {
			r := c.Recognize(h, m.HTTPMethod, path)
			if r.Kind != catalog.Listed || r.Method.Template != m.Template || r.Method.HTTPMethod != m.HTTPMethod ||
				r.Service != m.Service || r.Operation == "" {
				t.Errorf("Recognize(%q, %s, %q) = %v %+v, want Listed %s %s with an operation",
					h, m.HTTPMethod, path, r.Kind, r.Method, m.ID, m.Template)
			}
		}
	}
}

func TestEveryBuiltinMethodIsRecognisedOnTheAliasesOfItsHosts(t *testing.T) {
	c := catalog.Default()
	for _, m := range catalog.Builtin() {
		path := synthesize(m.Template)
		for _, h := range m.Hosts {
			api, ok := strings.CutSuffix(h, ".googleapis.com")
			if !ok {
				t.Errorf("%s (%s): host %q is not a googleapis.com name", m.ID, m.API, h)
				continue
			}
			for _, alias := range []string{"content-" + api + ".googleapis.com", api + ".clients6.google.com", api + "-psc1.p.googleapis.com"} {
				r := c.Recognize(alias, m.HTTPMethod, path)
				if r.Kind != catalog.Listed || r.Method.Template != m.Template || r.Service != m.Service {
					t.Errorf("Recognize(%q, %s, %q) = %v %+v, want Listed %s %s on %s",
						alias, m.HTTPMethod, path, r.Kind, r.Method, m.ID, m.Template, m.Service)
				}
			}
		}
	}
}

func TestOutliersAreRepresentedAsDiscoveryDefinesThem(t *testing.T) {
	tests := []struct {
		name, id, api string
		httpMethod    string
		template      string
		body          catalog.BodyKind
		fields        []string
	}{
		{"datalabeling cancels with GET", "datalabeling.projects.operations.cancel", "datalabeling/v1beta1",
			"GET", "/v1beta1/{name=projects/*/operations/*}:cancel", catalog.BodyNone, nil},
		{"sqladmin v1 has a literal cancel segment", "sql.operations.cancel", "sqladmin/v1",
			"POST", "/v1/projects/{project}/operations/{operation}/cancel", catalog.BodyNone, nil},
		{"sqladmin v1beta4 keeps its sql/ prefix", "sql.operations.cancel", "sqladmin/v1beta4",
			"POST", "/sql/v1beta4/projects/{project}/operations/{operation}/cancel", catalog.BodyNone, nil},
		{"storage joins its servicePath", "storage.buckets.operations.cancel", "storage/v1",
			"POST", "/storage/v1/b/{bucket}/operations/{operationId}/cancel", catalog.BodyNone, nil},
		{"container zones names fields in its body", "container.projects.zones.operations.cancel", "container/v1",
			"POST", "/v1/projects/{projectId}/zones/{zone}/operations/{operationId}:cancel", catalog.BodyFields,
			[]string{"name", "operationId", "projectId", "zone"}},
		{"vault takes an empty message", "vault.operations.cancel", "vault/v1",
			"POST", "/v1/{name=operations/**}:cancel", catalog.BodyEmpty, nil},
		{"literal pattern pieces stay literal", "managedidentities.projects.locations.global.operations.cancel", "managedidentities/v1",
			"POST", "/v1/{name=projects/*/locations/global/operations/*}:cancel", catalog.BodyEmpty, nil},
		{"a leading [^/]+ is a wildcard segment", "logging.locations.operations.cancel", "logging/v2",
			"POST", "/v2/{name=*/*/locations/*/operations/*}:cancel", catalog.BodyEmpty, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := findMethod(t, tt.id, tt.api)
			if m.HTTPMethod != tt.httpMethod || m.Template != tt.template || m.Body != tt.body || !slices.Equal(m.Fields, tt.fields) {
				t.Errorf("got %s %s body %v fields %q, want %s %s body %v fields %q",
					m.HTTPMethod, m.Template, m.Body, m.Fields, tt.httpMethod, tt.template, tt.body, tt.fields)
			}
		})
	}
}

func TestDAIIsAddedByHand(t *testing.T) {
	m := findMethod(t, "dai.operations.cancel", "dai/v1")
	want := catalog.Method{ID: "dai.operations.cancel", Service: "dai.googleapis.com", Hosts: []string{"dai.googleapis.com"},
		HTTPMethod: "POST", Template: "/v1/{name=operations/**}:cancel", Body: catalog.BodyEmpty, API: "dai/v1"}
	if fmt.Sprint(m) != fmt.Sprint(want) || len(m.Scopes) != 0 {
		t.Errorf("dai = %+v, want %+v with no scopes", m, want)
	}
	r := catalog.Default().Recognize("dai.googleapis.com", "POST", "/v1/operations/live/123:cancel")
	if r.Kind != catalog.Listed || r.Method.ID != "dai.operations.cancel" || r.Operation != "operations/live/123" {
		t.Errorf("Recognize(dai) = %v %+v %q, want Listed dai.operations.cancel operations/live/123", r.Kind, r.Method, r.Operation)
	}
}

func TestRegionalEndpointsAreHostsOfTheirAPI(t *testing.T) {
	m := findMethod(t, "aiplatform.projects.locations.operations.cancel", "aiplatform/v1")
	for _, h := range []string{"aiplatform.googleapis.com", "aiplatform.mtls.googleapis.com", "asia-east1-aiplatform.googleapis.com"} {
		if !slices.Contains(m.Hosts, h) {
			t.Errorf("aiplatform hosts lack %s", h)
		}
	}
}

func TestBuiltinReturnsACopy(t *testing.T) {
	ms := catalog.Builtin()
	ms[0].ID = "changed"
	if catalog.Builtin()[0].ID == "changed" {
		t.Error("changing Builtin()'s result changed the builtin table")
	}
}

func TestKindAndBodyKindNames(t *testing.T) {
	got := fmt.Sprint(catalog.NotCancel, catalog.Listed, catalog.Unlisted, catalog.Ambiguous,
		catalog.BodyNone, catalog.BodyEmpty, catalog.BodyFields, catalog.Kind(9), catalog.BodyKind(9))
	want := "not_cancel listed unlisted ambiguous none empty fields Kind(9) BodyKind(9)"
	if got != want {
		t.Errorf("names = %q, want %q", got, want)
	}
}
