package pathtemplate

import (
	"fmt"
	"slices"
	"testing"
)

// lookup is one path against a set; want is the winning template as added
// ("" for no match) and vars its escaped bindings.
type lookup struct {
	path, want string
	vars       []string
}

func newSet(templates ...string) *Set {
	var s Set
	for id, tmpl := range templates {
		s.Add(MustParse(tmpl), id)
	}
	return &s
}

func TestSetPicksMostSpecificTemplate(t *testing.T) {
	for _, tc := range []struct {
		name      string
		templates []string
		lookups   []lookup
	}{
		{
			// grpc-httpjson-transcoding src/path_matcher_test.cc WildCardMatches
			name:      "transcoding wildcards",
			templates: []string{"/a/**", "/b/*", "/c/*/d/**", "/c/*/d/e", "/c/f/d/e"},
			lookups: []lookup{
				{"/a/b", "/a/**", bound()},
				{"/a/b/c", "/a/**", bound()},
				{"/b/c", "/b/*", bound()},
				{"b/c/d", "", nil},
				{"/c/u/d/v", "/c/*/d/**", bound()},
				{"/c/v/d/w/x", "/c/*/d/**", bound()},
				{"/c/x/y/d/z", "", nil},
				{"/c//v/d/w/x", "", nil},
				{"/c/x/d/e", "/c/*/d/e", bound()},
				{"/c/f/d/e", "/c/f/d/e", bound()},
			},
		},
		{
			// path_matcher_test.cc VariableBindings (templates with "**" last only)
			name: "transcoding bindings",
			templates: []string{
				"/a/{x}/c/d/e", "/{x=a/*}/b/{y=*}/c", "/a/{x=b/*}/{y=d/**}", "/{x=*}/a",
				"/a/b/{x=*}", "/a/b/c/{x=**}", "/{x=*}/d/e/f/{y=**}",
			},
			lookups: []lookup{
				{"/a/book/c/d/e", "/a/{x}/c/d/e", bound("book")},
				{"/a/hello/b/world/c", "/{x=a/*}/b/{y=*}/c", bound("a/hello", "world")},
				{"/a/b/zoo/d/animal/tiger", "/a/{x=b/*}/{y=d/**}", bound("b/zoo", "d/animal/tiger")},
				{"/foo/a", "/{x=*}/a", bound("foo")},
				{"/a/b/foo", "/a/b/{x=*}", bound("foo")},
				{"/a/b/c/foo/bar/baz", "/a/b/c/{x=**}", bound("foo/bar/baz")},
				{"/foo/d/e/f/bar/baz", "/{x=*}/d/e/f/{y=**}", bound("foo", "bar/baz")},
			},
		},
		{
			// path_matcher_test.cc CustomVerbMatches (without "/other/**/const:verb")
			name:      "transcoding verbs",
			templates: []string{"/some/const:verb", "/some/*:verb", "/some/*/foo:verb", "/other/**:verb"},
			lookups: []lookup{
				{"/some/const:verb", "/some/const:verb", bound()},
				{"/some/other:verb", "/some/*:verb", bound()},
				{"/some/other:verb/", "", nil},
				{"/some/bar/foo:verb", "/some/*/foo:verb", bound()},
				{"/some/foo1/foo2/foo:verb", "", nil},
				{"/some/foo/bar:verb", "", nil},
				{"/other/bar/foo:verb", "/other/**:verb", bound()},
			},
		},
		{
			// path_matcher_test.cc RejectPartialMatches, LookupSimplePaths,
			// LookupReturnsNullForOverspecifiedPath
			name: "transcoding literals",
			templates: []string{
				"/prefix/middle/suffix", "/prefix/middle", "/prefix",
				"/prefix/middle/othersuffix", "/prefix/othermiddle/suffix",
				"/otherprefix/middle/suffix", "/otherprefix/suffix",
			},
			lookups: []lookup{
				{"/prefix/middle/suffix", "/prefix/middle/suffix", bound()},
				{"/prefix/middle", "/prefix/middle", bound()},
				{"/prefix", "/prefix", bound()},
				{"/prefix/middle/suffix/other", "", nil},
				{"/prefix/middle/other", "", nil},
				{"/prefix/other", "", nil},
				{"/other", "", nil},
				{"/prefix/not/a/path", "", nil},
				{"/otherprefix/suffix/othermiddle", "", nil},
				{"/prefix/middle/othersuffix", "/prefix/middle/othersuffix", bound()},
				{"/prefix/othermiddle/suffix", "/prefix/othermiddle/suffix", bound()},
				{"/otherprefix/middle/suffix", "/otherprefix/middle/suffix", bound()},
				{"/otherprefix/suffix", "/otherprefix/suffix", bound()},
			},
		},
		{
			name:      "empty set",
			templates: nil,
			lookups:   []lookup{{"/a/b", "", nil}, {"/", "", nil}},
		},
		{
			name: "a literal dead end falls back to a star, then to a double star",
			templates: []string{
				"/v1/{name=operations/**}:cancel",
				"/v1/{name=operations/*/x}:cancel",
				"/v1/{name=operations/special/y}:cancel",
			},
			lookups: []lookup{
				{"/v1/operations/special/x:cancel", "/v1/{name=operations/*/x}:cancel", bound("operations/special/x")},
				{"/v1/operations/special/y:cancel", "/v1/{name=operations/special/y}:cancel", bound("operations/special/y")},
				{"/v1/operations/special/z:cancel", "/v1/{name=operations/**}:cancel", bound("operations/special/z")},
				{"/v1/operations/special:cancel", "/v1/{name=operations/**}:cancel", bound("operations/special")},
				{"/v1/operations:cancel", "/v1/{name=operations/**}:cancel", bound("operations")},
			},
		},
		{
			name: "a template with the path's verb beats a more specific one without",
			templates: []string{
				"/v1/operations/{id}",
				"/v1/{name=operations/**}:cancel",
				"/v1/operations/{id}:get",
			},
			lookups: []lookup{
				{"/v1/operations/x:cancel", "/v1/{name=operations/**}:cancel", bound("operations/x")},
				{"/v1/operations/x:get", "/v1/operations/{id}:get", bound("x")},
				{"/v1/operations/x:other", "/v1/operations/{id}", bound("x:other")},
				{"/v1/operations/x:", "/v1/operations/{id}", bound("x:")},
				{"/v1/operations/x", "/v1/operations/{id}", bound("x")},
			},
		},
		{
			name: "acceptance paths",
			templates: []string{
				"/v1/{name=operations/**}:cancel",
				"/v1/{name=enterprises/*/devices/*/operations/*}:cancel",
				"/sql/v1beta4/projects/{project}/operations/{operation}/cancel",
				"/v1/projects/{projectId}/zones/{zone}/operations/{operationId}:cancel",
			},
			lookups: []lookup{
				{"/v1/operations/a/b:c:cancel", "/v1/{name=operations/**}:cancel", bound("operations/a/b:c")},
				{"/v1/enterprises/e/devices/d/operations/o:cancel", "/v1/{name=enterprises/*/devices/*/operations/*}:cancel", bound("enterprises/e/devices/d/operations/o")},
				{"/v1/operations/x:cancelled", "", nil},
				{"/v1/operations/a%2Fb:cancel", "/v1/{name=operations/**}:cancel", bound("operations/a%2Fb")},
				{"/v1/operations/a%252Fb:cancel", "/v1/{name=operations/**}:cancel", bound("operations/a%252Fb")},
				{"/sql/v1beta4/projects/p/operations/o/cancel", "/sql/v1beta4/projects/{project}/operations/{operation}/cancel", bound("p", "o")},
				{"/v1/projects/p/zones/z/operations/o:cancel", "/v1/projects/{projectId}/zones/{zone}/operations/{operationId}:cancel", bound("p", "z", "o")},
				{"/v1/projects/p/zones/z/operations/o", "", nil},
				{"/v1/operations//x:cancel", "", nil},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSet(tc.templates...)
			if s.Len() != len(tc.templates) {
				t.Errorf("Len() = %d, want %d", s.Len(), len(tc.templates))
			}
			for _, l := range tc.lookups {
				id, m, ok := s.Match(l.path)
				got := ""
				if ok {
					got = tc.templates[id]
				} else if id != -1 {
					t.Errorf("Match(%q) missed with id %d, want -1", l.path, id)
				}
				if got != l.want {
					t.Errorf("Match(%q) chose %q, want %q", l.path, got, l.want)
					continue
				}
				if ok && !slices.Equal(values(l.path, m), l.vars) {
					t.Errorf("Match(%q) bound %q, want %q", l.path, values(l.path, m), l.vars)
				}
			}
		})
	}
}

func TestSetTieGoesToLowestID(t *testing.T) {
	var s Set
	s.Add(MustParse("/v1/{name=operations/*}:cancel"), 7)
	s.Add(MustParse("/v1/operations/{id}:cancel"), 3)
	s.Add(MustParse("/v1/{name=operations/*}:cancel"), 5)
	id, m, ok := s.Match("/v1/operations/o:cancel")
	if !ok || id != 3 {
		t.Fatalf("Match = %d, %v; want 3, true", id, ok)
	}
	if got := values("/v1/operations/o:cancel", m); !slices.Equal(got, []string{"o"}) {
		t.Errorf("bound %q, want the winner's binding [o]", got)
	}
	if s.Len() != 3 {
		t.Errorf("Len() = %d, want 3", s.Len())
	}
}

// aiplatformSet mimics one host with ~200 cancel templates: a v1 and a
// v1beta1 template for each of 100 collections.
func aiplatformSet() (*Set, []string) {
	var s Set
	var templates []string
	for _, version := range []string{"v1", "v1beta1"} {
		for c := range 100 {
			tmpl := fmt.Sprintf("/%s/{name=projects/*/locations/*/collection%02d/*/operations/*}:cancel", version, c)
			s.Add(MustParse(tmpl), len(templates))
			templates = append(templates, tmpl)
		}
	}
	return &s, templates
}

const (
	aiplatformHit  = "/v1beta1/projects/my-project/locations/us-central1/collection57/c-123/operations/4567890123:cancel"
	aiplatformMiss = "/v1beta1/projects/my-project/locations/us-central1/collection57/c-123/operations/4567890123:wait"
)

func TestSetMatchesAmongManyTemplates(t *testing.T) {
	s, templates := aiplatformSet()
	id, m, ok := s.Match(aiplatformHit)
	if !ok || templates[id] != "/v1beta1/{name=projects/*/locations/*/collection57/*/operations/*}:cancel" {
		t.Fatalf("Match(hit) = %d, %v", id, ok)
	}
	if got, want := m.Vars[0].In(aiplatformHit), "projects/my-project/locations/us-central1/collection57/c-123/operations/4567890123"; got != want {
		t.Errorf("bound %q, want %q", got, want)
	}
	if _, _, ok := s.Match(aiplatformMiss); ok {
		t.Error("Match(miss) matched")
	}
}

func TestSetMatchDoesNotAllocate(t *testing.T) {
	s, _ := aiplatformSet()
	s.Add(MustParse("/v1/{name=operations/**}:cancel"), 1000)
	for _, path := range []string{aiplatformHit, aiplatformMiss, "/v1/operations/a/b:cancel", "/v1/x/y", "/"} {
		if n := testing.AllocsPerRun(100, func() { s.Match(path) }); n != 0 {
			t.Errorf("Match(%q) allocates %v times", path, n)
		}
	}
}
