package pathtemplate

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseValid(t *testing.T) {
	const (
		gwParse  = "grpc-gateway internal/httprule/parse_test.go"
		gwTypes  = "grpc-gateway internal/httprule/types_test.go"
		gwPat    = "grpc-gateway runtime/pattern_test.go"
		tcMatch  = "grpc-httpjson-transcoding src/path_matcher_test.cc"
		ours     = "lro_cancel"
		noVars   = ""
		nameOnly = "name"
	)
	for _, tc := range []struct {
		source, in, want, verb, vars string // vars: comma-separated field paths
	}{
		{gwParse, "/v1", "/v1", "", noVars},
		{gwParse, "/v1/b", "/v1/b", "", noVars},
		{gwParse, "/v1/endpoint/*", "/v1/endpoint/*", "", noVars},
		{gwParse, "/v1/endpoint/**", "/v1/endpoint/**", "", noVars},
		{gwParse, "/v1/b/{bucket_name=*}", "/v1/b/{bucket_name=*}", "", "bucket_name"},
		{gwParse, "/v1/b/{bucket_name=buckets/*}/o/{name}", "/v1/b/{bucket_name=buckets/*}/o/{name=*}", "", "bucket_name,name"},
		{gwParse, "/v1/a=b&c=d;e=f:g/endpoint.rdf", "/v1/a=b&c=d;e=f:g/endpoint.rdf", "", noVars},
		{gwParse, "/v1/a/{endpoint}:a", "/v1/a/{endpoint=*}:a", "a", "endpoint"},
		// Every pchar in a literal; the verb keeps the last ':' from binding the literal.
		{gwParse, "/-._~!$&'()*+,;=:@:LOCK", "/-._~!$&'()*+,;=:@:LOCK", "LOCK", noVars},
		{gwParse, "/%e7%ac%ac%e4%b8%80%e7%89%88", "/%e7%ac%ac%e4%b8%80%e7%89%88", "", noVars},
		{gwParse, "/{name}", "/{name=*}", "", nameOnly},
		{gwParse, "/{field.nested.nested2=*}", "/{field.nested.nested2=*}", "", "field.nested.nested2"},
		{gwParse, "/{name=a/b/*}", "/{name=a/b/*}", "", nameOnly},
		{gwParse, "/v1/{name.nested.nested2=a/b/*}/o/{another_name=a/b/*/c}/**", "/v1/{name.nested.nested2=a/b/*}/o/{another_name=a/b/*/c}/**", "", "name.nested.nested2,another_name"},
		{gwParse, "/v1/{name=segment/wi:th}", "/v1/{name=segment/wi:th}", "", nameOnly},
		{gwTypes, "/{name=a}", "/{name=a}", "", nameOnly},
		{gwTypes, "/v1/{name=a/*/b}/c/{field.nested=*/d}/*/e/**:LOCK", "/v1/{name=a/*/b}/c/{field.nested=*/d}/*/e/**:LOCK", "LOCK", "name,field.nested"},
		{gwPat, "/v1/{bucket_name=buckets/*}", "/v1/{bucket_name=buckets/*}", "", "bucket_name"},
		{tcMatch, "/a/{x=b/*}/{y=d/**}", "/a/{x=b/*}/{y=d/**}", "", "x,y"},
		{tcMatch, "/{x=*}/d/e/f/{y=**}", "/{x=*}/d/e/f/{y=**}", "", "x,y"},
		{tcMatch, "/a/{x=b/**}:verb", "/a/{x=b/**}:verb", "verb", "x"},
		{tcMatch, "/other/**:verb", "/other/**:verb", "verb", noVars},
		{tcMatch, "/*/*:verb", "/*/*:verb", "verb", noVars},
		{ours, "/v1/{name=operations/**}:cancel", "/v1/{name=operations/**}:cancel", "cancel", nameOnly},
		{ours, "/v1/{name=projects/*/locations/*/operations/*}:cancel", "/v1/{name=projects/*/locations/*/operations/*}:cancel", "cancel", nameOnly},
		{ours, "/sql/v1beta4/projects/{project}/operations/{operation}/cancel", "/sql/v1beta4/projects/{project=*}/operations/{operation=*}/cancel", "", "project,operation"},
		{ours, "/v1/projects/{projectId}/zones/{zone}/operations/{operationId}:cancel", "/v1/projects/{projectId=*}/zones/{zone=*}/operations/{operationId=*}:cancel", "cancel", "projectId,zone,operationId"},
		// The last ':' of the last literal starts the verb.
		{ours, "/v1/a:b:c", "/v1/a:b:c", "c", noVars},
		{ours, "/v1/{name=a/b:c}:cancel", "/v1/{name=a/b:c}:cancel", "cancel", nameOnly},
		{ours, "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}", "/{a=*}/{b=*}/{c=*}/{d=*}/{e=*}/{f=*}/{g=*}/{h=*}", "", "a,b,c,d,e,f,g,h"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			tmpl, err := Parse(tc.in)
			if err != nil {
				t.Fatalf("Parse: %v (vector from %s)", err, tc.source)
			}
			if got := tmpl.String(); got != tc.want {
				t.Errorf("String() = %q, want %q", got, tc.want)
			}
			if got := tmpl.Verb(); got != tc.verb {
				t.Errorf("Verb() = %q, want %q", got, tc.verb)
			}
			var wantVars []string
			if tc.vars != "" {
				wantVars = strings.Split(tc.vars, ",")
			}
			if got := tmpl.VarNames(); !slices.Equal(got, wantVars) {
				t.Errorf("VarNames() = %q, want %q", got, wantVars)
			}
			again, err := Parse(tmpl.String())
			if err != nil || again.String() != tmpl.String() {
				t.Errorf("canonical form %q does not re-parse to itself: %v", tmpl.String(), err)
			}
		})
	}
}

func TestParseRejectsMalformedTemplates(t *testing.T) {
	for _, tc := range []struct {
		source, in, problem string
		offset              int
	}{
		// grpc-gateway internal/httprule/parse_test.go (TestParseError, TestParseSegmentsWithErrors)
		{"gateway", "v1/{name}", `missing leading "/"`, 0},
		{"gateway", "/v1//endpoint", "empty segment", 4},
		{"gateway", "/a?b", `invalid character '?' in literal`, 2},
		{"gateway", "/%", "malformed percent-escape", 1},
		{"gateway", "/%2", "malformed percent-escape", 1},
		{"gateway", "/a%2z", "malformed percent-escape", 2},
		{"gateway", "/{name", `unclosed "{"`, 1},
		{"gateway", "/{name=", `unclosed "{"`, 1},
		{"gateway", "/{name=*", `unclosed "{"`, 1},
		{"gateway", "/{name.}", "empty identifier in field path", 7},
		{"gateway", "/{name..nested}", "empty identifier in field path", 7},
		{"gateway", "/{field-name}", `invalid character '-' in field path`, 7},
		{"gateway", "/v1{name}", `missing "/" before "{"`, 3},
		// grpc-gateway accepts these (verb "" and "bla:baa"); a path splits its
		// verb at the last ':', so neither could ever match here.
		{"gateway", "/v1/{name}:", "empty verb", 10},
		{"gateway", "/v1/{name}:bla:baa", `":" in verb`, 14},
		// grpc-httpjson-transcoding src/path_matcher_test.cc (InvalidTemplates)
		{"transcoding", "/a{x=b/**}/{y=*}", `missing "/" before "{"`, 2},
		{"transcoding", "/a/**/*", `"**" must be the last segment`, 3},
		{"transcoding", "/a/**/foo/*", `"**" must be the last segment`, 3},
		{"transcoding", "/a/**/**", `"**" must be the last segment`, 3},
		// Transcoding accepts "**" before the end; google/api/http.proto forbids it.
		{"transcoding", "/alpha/{x=*}/beta/{y=**}/gamma", `"**" must be the last segment`, 21},
		{"transcoding", "/{x=**}/a/b", `"**" must be the last segment`, 4},
		{"transcoding", "/other/**/const:verb", `"**" must be the last segment`, 7},
		{"transcoding", "/a/{x=b/*/**/y/z}/foo", `"**" must be the last segment`, 10},
		// lro_cancel
		{"ours", "", `missing leading "/"`, 0},
		{"ours", "/", "empty segment", 1},
		{"ours", "/v1/", "empty segment", 4},
		{"ours", "/v1/{name=operations/**:cancel", `unclosed "{"`, 4},
		{"ours", "/v1/{name=operations/{id}}", "nested variable", 21},
		{"ours", "/v1/{name=operations/a{id}}", "nested variable", 22},
		{"ours", "/v1/name}", `unbalanced "}"`, 8},
		{"ours", "/v1/}", `unbalanced "}"`, 4},
		{"ours", "/v1/{name}x", `missing "/" after "}"`, 10},
		{"ours", "/v1/{1name}", `invalid character '1' in field path`, 5},
		{"ours", "/v1/{}", "empty identifier in field path", 5},
		{"ours", "/v1/{name=}", "empty segment", 10},
		{"ours", "/v1/{name}/{name}", `duplicate variable "name"`, 12},
		{"ours", "/v1:", "empty verb", 3},
		{"ours", "/v1/:cancel", "empty segment", 4},
		{"ours", "/v1/x:can?cel", `invalid character '?' in literal`, 9},
		{"ours", "/v1/../x", `dot segment ".."`, 4},
		{"ours", "/v1/a b", `invalid character ' ' in literal`, 5},
		{"ours", "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}", "more than 8 variables", 33},
	} {
		t.Run(tc.in, func(t *testing.T) {
			tmpl, err := Parse(tc.in)
			if err == nil {
				t.Fatalf("Parse accepted it as %q (vector from %s)", tmpl, tc.source)
			}
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %v is not a *SyntaxError", err)
			}
			if se.Problem != tc.problem || se.Offset != tc.offset || se.Template != tc.in {
				t.Errorf("got %q at offset %d, want %q at offset %d", se.Problem, se.Offset, tc.problem, tc.offset)
			}
		})
	}
}

func TestSyntaxErrorNamesTemplateProblemAndOffset(t *testing.T) {
	_, err := Parse("/v1/{name=operations/**:cancel")
	want := `pathtemplate: "/v1/{name=operations/**:cancel": unclosed "{" at offset 4`
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v, want %s", err, want)
	}
}

func TestMustParsePanicsOnMalformedTemplate(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("MustParse did not panic")
		}
	}()
	MustParse("v1/{name}")
}

func TestVarIndexAndMultiSegment(t *testing.T) {
	tmpl := MustParse("/v1/{parent=projects/*}/things/{thing}/{rest=**}:cancel")
	for _, tc := range []struct {
		name  string
		index int
		multi bool
	}{
		{"parent", 0, true},
		{"thing", 1, false},
		{"rest", 2, true},
		{"missing", -1, false},
	} {
		i := tmpl.VarIndex(tc.name)
		if i != tc.index {
			t.Errorf("VarIndex(%q) = %d, want %d", tc.name, i, tc.index)
			continue
		}
		if i >= 0 && tmpl.MultiSegment(i) != tc.multi {
			t.Errorf("MultiSegment(%d) = %v, want %v", i, !tc.multi, tc.multi)
		}
	}
}
