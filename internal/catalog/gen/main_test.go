package main

import (
	"bytes"
	"go/format"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

func TestTranslatePattern(t *testing.T) {
	tests := []struct{ pattern, want string }{
		{`^operations/.*$`, "operations/**"},
		{`^operations/[^/]+$`, "operations/*"},
		{`^projects/[^/]+/locations/[^/]+/operations/[^/]+$`, "projects/*/locations/*/operations/*"},
		{`^projects/[^/]+/locations/global/operations/[^/]+$`, "projects/*/locations/global/operations/*"},
		{`^[^/]+/[^/]+/locations/[^/]+/operations/[^/]+$`, "*/*/locations/*/operations/*"},
		{`^projects/[^/]+/locations/[^/]+/ragEngineConfig/operations/[^/]+$`, "projects/*/locations/*/ragEngineConfig/operations/*"},
		{`^projects/[^/]+/operations$`, "projects/*/operations"},
	}
	for _, tt := range tests {
		if got, err := translatePattern(tt.pattern); got != tt.want || err != nil {
			t.Errorf("translatePattern(%q) = %q, %v; want %q", tt.pattern, got, err, tt.want)
		}
	}
}

func TestTranslatePatternRefusesWhatItDoesNotUnderstand(t *testing.T) {
	for _, p := range []string{
		`operations/.*`,             // not anchored
		`^operations/.*`,            // no $
		`^$`,                        // empty
		`^operations/.+$`,           // .+ is not .*
		`^.*/operations/[^/]+$`,     // .* not last
		`^operations/[^/]*$`,        // may be empty
		`^operations/[a-z]+$`,       // character class
		`^v1.operations/[^/]+$`,     // regexp dot in a literal
		`^operations/[^/]+/$`,       // trailing slash
		`^operations//[^/]+$`,       // empty segment
		`^(operations|jobs)/[^/]+$`, // alternation
		`^operations/[^/]+[^/]+$`,   // two pieces in a segment
		`^operations/[^/]+/(.*)?$`,  // group
		`^projects/[^/]+/op\.s/.*$`, // escape
	} {
		if got, err := translatePattern(p); err == nil {
			t.Errorf("translatePattern(%q) = %q, want an error", p, got)
		}
	}
}

func TestBuildTemplate(t *testing.T) {
	params := func(kv ...string) map[string]struct {
		Location string `json:"location"`
		Pattern  string `json:"pattern"`
	} {
		m := map[string]struct {
			Location string `json:"location"`
			Pattern  string `json:"pattern"`
		}{}
		for i := 0; i < len(kv); i += 3 {
			m[kv[i]] = struct {
				Location string `json:"location"`
				Pattern  string `json:"pattern"`
			}{kv[i+1], kv[i+2]}
		}
		return m
	}
	tests := []struct {
		name, servicePath, path string
		m                       discoveryMethod
		want                    string // "" means an error
	}{
		{"reserved expansion takes the pattern", "", "v1/{+name}:cancel",
			discoveryMethod{Parameters: params("name", "path", `^operations/.*$`)}, "/v1/{name=operations/**}:cancel"},
		{"simple expansions are one segment", "", "v1/projects/{projectId}/zones/{zone}/operations/{operationId}:cancel",
			discoveryMethod{Parameters: params("projectId", "path", "", "zone", "path", "", "operationId", "path", "")},
			"/v1/projects/{projectId}/zones/{zone}/operations/{operationId}:cancel"},
		{"servicePath is joined", "storage/v1/", "b/{bucket}/operations/{operationId}/cancel",
			discoveryMethod{Parameters: params("bucket", "path", "", "operationId", "path", "", "location", "query", "")},
			"/storage/v1/b/{bucket}/operations/{operationId}/cancel"},
		{"reserved expansion without pattern", "", "v1/{+name}:cancel",
			discoveryMethod{Parameters: params("name", "path", "")}, ""},
		{"simple expansion with pattern", "", "v1/{name}:cancel",
			discoveryMethod{Parameters: params("name", "path", `^operations/[^/]+$`)}, ""},
		{"unknown pattern", "", "v1/{+name}:cancel",
			discoveryMethod{Parameters: params("name", "path", `^operations/\d+$`)}, ""},
		{"undeclared parameter", "", "v1/{+name}:cancel", discoveryMethod{}, ""},
		{"query parameter in the path", "", "v1/{name}:cancel",
			discoveryMethod{Parameters: params("name", "query", "")}, ""},
		{"other URI-template operators", "", "v1{/name}:cancel",
			discoveryMethod{Parameters: params("name", "path", "")}, ""},
		{"absolute path", "", "/v1/{name}:cancel",
			discoveryMethod{Parameters: params("name", "path", "")}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.m.Path = tt.path
			got, err := buildTemplate(tt.servicePath, tt.m)
			if tt.want == "" && err == nil {
				t.Errorf("buildTemplate = %q, want an error", got)
			}
			if tt.want != "" && (got != tt.want || err != nil) {
				t.Errorf("buildTemplate = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

const testDoc = `{
  "name": "demo", "version": "v1",
  "rootUrl": "https://demo.googleapis.com/", "mtlsRootUrl": "https://demo.mtls.googleapis.com/",
  "servicePath": "", "batchPath": "batch/demo/v1",
  "parameters": {
    "alt": {"location": "query", "enum": ["json"]}, "$.xgafv": {"location": "query"}, "quotaUser": {"location": "query"}
  },
  "endpoints": [
    {"endpointUrl": "https://us-demo.googleapis.com/", "location": "us"},
    {"endpointUrl": "https://Demo.googleapis.com/", "location": "global"}
  ],
  "schemas": {
    "CancelOperationRequest": {"id": "CancelOperationRequest", "type": "object"},
    "CancelWithFields": {"properties": {"zone": {"type": "string"}, "name": {"type": "string"}}}
  },
  "resources": {
    "operations": {"methods": {
      "cancel": {"id": "demo.operations.cancel", "httpMethod": "POST", "path": "v1/{+name}:cancel",
        "parameters": {"name": {"location": "path", "pattern": "^operations/.*$"}},
        "request": {"$ref": "CancelOperationRequest"},
        "scopes": ["https://www.googleapis.com/auth/z", "https://www.googleapis.com/auth/a"]}
    }},
    "projects": {"resources": {
      "jobs": {"methods": {
        "cancel": {"id": "demo.projects.jobs.cancel", "httpMethod": "POST", "path": "v1/{+name}:cancel",
          "parameters": {"name": {"location": "path", "pattern": "^projects/[^/]+/jobs/[^/]+$"}}}
      }},
      "operations": {"methods": {
        "cancel": {"id": "demo.projects.operations.cancel", "httpMethod": "GET", "path": "v1/{+name}:cancel",
          "parameters": {"name": {"location": "path", "pattern": "^projects/[^/]+/operations/[^/]+$"},
            "zone": {"location": "query"}, "force": {"location": "query", "type": "boolean"}}},
        "zcancel": {"id": "demo.projects.zones.operations.cancel", "httpMethod": "POST", "path": "v1/z/{zone}/operations/{op}:cancel",
          "parameters": {"zone": {"location": "path"}, "op": {"location": "path"}},
          "request": {"$ref": "CancelWithFields"}}
      }}
    }}
  }
}`

// otherDoc defines a cancel too, with other system parameters and no
// batch path.
const otherDoc = `{
  "name": "other", "version": "v2", "rootUrl": "https://other.googleapis.com/",
  "parameters": {"alt": {"location": "query", "enum": ["json", "media"]}, "userIp": {"location": "query"}},
  "resources": {"operations": {"methods": {"cancel": {"id": "other.operations.cancel", "httpMethod": "POST",
    "path": "v2/{+name}:cancel", "parameters": {"name": {"location": "path", "pattern": "^operations/.*$"}}}}}}
}`

func TestCollectReadsEveryCancelMethodOfEveryDocument(t *testing.T) {
	fsys := fstest.MapFS{
		"demo/v1/demo-api.json":        {Data: []byte(testDoc)},
		"demo/v1/demo-gen.go":          {Data: []byte("package demo")},
		"gen/testdata/broken-api.json": {Data: []byte("not json")},
		"other/v2/other-api.json":      {Data: []byte(`{"name": "other", "rootUrl": "not a url"}`)},
	}
	got, params, err := collect(fsys)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"$.xgafv", "alt", "quotaUser"}; !slices.Equal(params, want) {
		t.Errorf("collect found system parameters %q, want %q", params, want)
	}
	hosts := []string{"demo.googleapis.com", "demo.mtls.googleapis.com", "us-demo.googleapis.com"}
	want := []method{
		{ID: "demo.operations.cancel", Template: "/v1/{name=operations/**}:cancel", HTTPMethod: "POST", Body: "BodyEmpty",
			Scopes: []string{"https://www.googleapis.com/auth/a", "https://www.googleapis.com/auth/z"}},
		{ID: "demo.projects.operations.cancel", Template: "/v1/{name=projects/*/operations/*}:cancel", HTTPMethod: "GET", Body: "BodyNone",
			Query: []string{"force", "zone"}},
		{ID: "demo.projects.zones.operations.cancel", Template: "/v1/z/{zone}/operations/{op}:cancel", HTTPMethod: "POST", Body: "BodyFields",
			Fields: []string{"name", "zone"}},
	}
	got, _ = dedupe(got, io.Discard) // sorts
	if len(got) != len(want) {
		t.Fatalf("collect found %d methods, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.ID != w.ID || g.Template != w.Template || g.HTTPMethod != w.HTTPMethod || g.Body != w.Body ||
			!slices.Equal(g.Fields, w.Fields) || !slices.Equal(g.Scopes, w.Scopes) || !slices.Equal(g.Query, w.Query) ||
			g.Service != "demo.googleapis.com" || !slices.Equal(g.Hosts, hosts) || g.API != "demo/v1" ||
			g.BatchPath != "/batch/demo/v1" {
			t.Errorf("method %d = %+v, want %+v on %q with batch path /batch/demo/v1", i, g, w, hosts)
		}
	}
}

func TestCollectTakesTheUnionOfTheSystemParametersOfDocumentsWithACancel(t *testing.T) {
	fsys := fstest.MapFS{
		"demo/v1/demo-api.json":   {Data: []byte(testDoc)},
		"other/v2/other-api.json": {Data: []byte(otherDoc)},
		// No cancel: its parameters are none of the table's business.
		"plain/v1/plain-api.json": {Data: []byte(`{"name": "plain", "parameters": {"pp": {"location": "query"}}}`)},
	}
	got, params, err := collect(fsys)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"$.xgafv", "alt", "quotaUser", "userIp"}; !slices.Equal(params, want) {
		t.Errorf("system parameters = %q, want %q", params, want)
	}
	got, _ = dedupe(got, io.Discard)
	if last := got[len(got)-1]; last.ID != "other.operations.cancel" || last.BatchPath != "" || last.Query != nil {
		t.Errorf("other's cancel = %+v, want no batch path and no query parameters", last)
	}
}

func TestCollectFailsLoudly(t *testing.T) {
	cancel := func(pattern, ref string) string {
		return `{"name": "x", "version": "v1", "rootUrl": "https://x.googleapis.com/",
		  "resources": {"operations": {"methods": {"cancel": {"id": "x.operations.cancel", "httpMethod": "POST",
		  "path": "v1/{+name}:cancel", "parameters": {"name": {"location": "path", "pattern": "` + pattern + `"}}` + ref + `}}}}}`
	}
	plain := cancel(`^operations/.*$`, "")
	// with adds a top-level field to the document.
	with := func(field string) string { return strings.Replace(plain, `"name": "x",`, `"name": "x", `+field+`,`, 1) }
	tests := []struct{ name, doc, mention string }{
		{"unknown pattern", cancel(`^operations/[0-9]+$`, ""), "not understood"},
		{"undefined request", cancel(`^operations/.*$`, `, "request": {"$ref": "Missing"}`), `"Missing"`},
		{"malformed json", `{"id": "x.operations.cancel", `, "parsing"},
		{"http root url", strings.Replace(plain, "https://", "http://", 1), "https"},
		{"unsupported HTTP verb", strings.Replace(plain, `"POST"`, `"DELETE"`, 1), `"DELETE"`},
		{"system parameter outside the query", with(`"parameters": {"key": {"location": "header"}}`), `"key"`},
		{"system parameter that is no name", with(`"parameters": {"a=b": {"location": "query"}}`), `"a=b"`},
		{"batch path with a template", with(`"batchPath": "batch/{api}"`), `"batch/{api}"`},
		{"absolute batch path", with(`"batchPath": "/batch"`), `"/batch"`},
		{"method parameter of unknown location",
			strings.Replace(plain, `"pattern": "^operations/.*$"}`, `"pattern": "^operations/.*$"}, "x": {"location": "header"}`, 1), `"x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := collect(fstest.MapFS{"x/v1/x-api.json": {Data: []byte(tt.doc)}})
			if err == nil || !strings.Contains(err.Error(), "x/v1/x-api.json") || !strings.Contains(err.Error(), tt.mention) {
				t.Errorf("collect() error = %v, want one naming x/v1/x-api.json and %s", err, tt.mention)
			}
		})
	}
}

func TestDedupeMergesExactDuplicatesAndRefusesConflicts(t *testing.T) {
	a := method{ID: "a.operations.cancel", Service: "a.googleapis.com", Hosts: []string{"a.googleapis.com"},
		HTTPMethod: "POST", Template: "/v1/{name=operations/**}:cancel", API: "a/v1"}
	dup := a
	dup.API, dup.Hosts = "a/v1beta", []string{"a.googleapis.com", "eu-a.googleapis.com"}
	var log bytes.Buffer
	got, err := dedupe([]method{dup, a}, &log)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].API != "a/v1" || !slices.Equal(got[0].Hosts, []string{"a.googleapis.com", "eu-a.googleapis.com"}) {
		t.Errorf("dedupe = %+v, want a/v1 on both hosts", got)
	}
	if !strings.Contains(log.String(), "merged duplicate a.operations.cancel (a/v1beta) into a.operations.cancel (a/v1)") {
		t.Errorf("dedupe logged %q, want the merge named", log.String())
	}

	other := a
	other.ID, other.Service, other.API = "b.operations.cancel", "b.googleapis.com", "b/v1"
	if _, err := dedupe([]method{a, other}, io.Discard); err == nil || !strings.Contains(err.Error(), "claimed by") {
		t.Errorf("dedupe of two services on one route: error = %v, want a conflict", err)
	}

	for name, change := range map[string]func(*method){
		"batch path":       func(m *method) { m.BatchPath = "/batch/a/v1beta" },
		"query parameters": func(m *method) { m.Query = []string{"location"} },
	} {
		differs := dup
		change(&differs)
		if _, err := dedupe([]method{a, differs}, io.Discard); err == nil || !strings.Contains(err.Error(), "batch path") {
			t.Errorf("dedupe of duplicates with another %s: error = %v, want a refusal", name, err)
		}
	}
}

func TestRenderIsFormattedGeneratedCode(t *testing.T) {
	ms := []method{{ID: "a.operations.cancel", Service: "a.googleapis.com", Hosts: []string{"a.googleapis.com"},
		HTTPMethod: "POST", Template: "/v1/{name=operations/**}:cancel", Body: "BodyFields", Fields: []string{"name"}, API: "a/v1",
		BatchPath: "/batch", Query: []string{"location"}}}
	src, err := render("v0.1.0", ms, []string{"$.xgafv", "alt"})
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(src), "\n")
	if !strings.HasPrefix(first, "// Code generated ") || !strings.HasSuffix(first, " DO NOT EDIT.") {
		t.Errorf("first line %q is not a generated-code marker", first)
	}
	if formatted, err := format.Source(src); err != nil || !bytes.Equal(formatted, src) {
		t.Errorf("render output is not gofmt'd (%v):\n%s", err, src)
	}
	for _, want := range []string{`from google.golang.org/api v0.1.0;`, `Fields: []string{"name"}`,
		`BatchPath: "/batch", Query: []string{"location"}}`, "var systemParams = [...]string{\n\t\"$.xgafv\",\n\t\"alt\",\n}"} {
		if !strings.Contains(string(src), want) {
			t.Errorf("render output lacks %s:\n%s", want, src)
		}
	}
}

func TestCommittedTableIsCurrent(t *testing.T) {
	if testing.Short() {
		t.Skip("reads every discovery document of google.golang.org/api")
	}
	want, err := generate("", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../methods_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("methods_gen.go is stale or edited by hand: run go generate ./internal/catalog/")
	}
}
