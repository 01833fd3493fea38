package pathtemplate

import (
	"strings"
	"testing"
)

var seedTemplates = []string{
	"/v1/{name=operations/**}:cancel",
	"/v1/{name=projects/*/locations/*/operations/*}:cancel",
	"/v1/projects/{projectId}/zones/{zone}/operations/{operationId}:cancel",
	"/sql/v1beta4/projects/{project}/operations/{operation}/cancel",
	"/v1/{name=segment/wi:th}",
	"/v1/a:b:c",
	"/**",
	"/*/*:verb",
	"/%e7/{x.y=a/*/b}/**:LOCK",
}

func FuzzParse(f *testing.F) {
	for _, s := range seedTemplates {
		f.Add(s)
	}
	for _, s := range []string{"/", "/{", "/{x=**}/a", "/v1/{name}:", "/{a}/{a}", "/v1{x}", "/a/%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tmpl, err := Parse(s)
		if err != nil {
			if se, ok := err.(*SyntaxError); !ok || se.Offset < 0 || se.Offset > len(s) {
				t.Fatalf("Parse(%q) error %v: not a *SyntaxError with an offset inside the template", s, err)
			}
			return
		}
		again, err := Parse(tmpl.String())
		if err != nil {
			t.Fatalf("Parse(%q).String() = %q does not re-parse: %v", s, tmpl, err)
		}
		if again.String() != tmpl.String() || again.Verb() != tmpl.Verb() {
			t.Fatalf("round trip of %q: %q then %q", s, tmpl, again)
		}
		if n := len(tmpl.VarNames()); n > MaxVars {
			t.Fatalf("Parse(%q) accepted %d variables", s, n)
		}
	})
}

func FuzzMatch(f *testing.F) {
	paths := []string{
		"/v1/operations/a/b:c:cancel",
		"/v1/projects/p/locations/l/operations/o:cancel",
		"/v1/projects/p/zones/z/operations/o:cancel",
		"/sql/v1beta4/projects/p/operations/o/cancel",
		"/v1/operations/%2e%2E/x%3Acancel",
		"/v1\\operations//x/:cancel",
		"/v1/segment/wi:th",
		"/",
	}
	for i, tmpl := range seedTemplates {
		f.Add(tmpl, paths[i%len(paths)])
	}
	others := []*Template{
		MustParse("/v1/{name=operations/**}:cancel"),
		MustParse("/v1/operations/{id}"),
		MustParse("/v1/{a}/{b=**}"),
		MustParse("/{x}/{y}/{z}:cancel"),
	}
	f.Fuzz(func(t *testing.T, template, path string) {
		clean := Clean(path)
		if again := Clean(clean); again != clean {
			t.Fatalf("Clean(%q) = %q but Clean of that = %q", path, clean, again)
		}
		// Without dot or empty segments or backslashes, cleaning cannot
		// change where segments start and end.
		if !Ambiguous(path) && path != "" && strings.Count(clean, "/") != strings.Count(path, "/") {
			t.Fatalf("Ambiguous(%q) = false, yet Clean changed its segments: %q", path, clean)
		}
		_, _ = Unescape(path, true)
		_, _ = Unescape(path, false)

		tmpl, err := Parse(template)
		if err != nil {
			return
		}
		m, ok := tmpl.Match(path)
		if ok {
			checkSpans(t, path, m, len(tmpl.VarNames()))
		}

		var s Set
		templates := append([]*Template{tmpl}, others...)
		for id, tt := range templates {
			s.Add(tt, id)
		}
		id, sm, sok := s.Match(path)
		if ok && !sok {
			t.Fatalf("%q matches %q but the set containing it matches nothing", path, tmpl)
		}
		if !sok {
			return
		}
		want, wok := templates[id].Match(path)
		if !wok || want != sm {
			t.Fatalf("set chose %q for %q with %+v; the template alone gives %+v, %v", templates[id], path, sm, want, wok)
		}
	})
}

func checkSpans(t *testing.T, path string, m Match, n int) {
	t.Helper()
	if m.N != n {
		t.Fatalf("Match(%q).N = %d, want %d", path, m.N, n)
	}
	prev := 0
	for _, s := range m.Vars[:m.N] {
		if s.Start < prev || s.End < s.Start || s.End > len(path) {
			t.Fatalf("Match(%q) spans %+v out of bounds or order", path, m.Vars[:m.N])
		}
		prev = s.End
	}
}
