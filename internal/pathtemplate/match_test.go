package pathtemplate

import (
	"slices"
	"testing"
)

// matchCase is one path against one template; vars are the escaped values
// bound, in template order (nil: the path must not match).
type matchCase struct {
	source, tmpl, path string
	vars               []string
}

func bound(vars ...string) []string {
	if vars == nil {
		return []string{}
	}
	return vars
}

var matchCases = []matchCase{
	// grpc-gateway runtime/pattern_test.go (TestMatch, TestMatchWithBinding);
	// its ops programs written as templates, its paths given a leading "/".
	{"gateway", "/*", "/abc", bound()},
	{"gateway", "/*", "/def", bound()},
	{"gateway", "/*", "/", nil},
	{"gateway", "/*", "/abc/def", nil},
	{"gateway", "/v1", "/v1", bound()},
	{"gateway", "/v1", "/", nil},
	{"gateway", "/v1", "/v2", nil},
	{"gateway", "/**", "/", bound()},
	{"gateway", "/**", "/abc", bound()},
	{"gateway", "/**", "/abc/def", bound()},
	{"gateway", "/**", "/abc/def/ghi", bound()},
	{"gateway", "/v1/bucket/{name=*}", "/v1/bucket/my-bucket", bound("my-bucket")},
	{"gateway", "/v1/bucket/{name=*}", "/v1/bucket/our-bucket", bound("our-bucket")},
	{"gateway", "/v1/bucket/{name=*}", "/", nil},
	{"gateway", "/v1/bucket/{name=*}", "/v1", nil},
	{"gateway", "/v1/bucket/{name=*}", "/v1/bucket", nil},
	{"gateway", "/v1/bucket/{name=*}", "/v2/bucket/my-bucket", nil},
	{"gateway", "/v1/bucket/{name=*}", "/v1/pubsub/my-topic", nil},
	{"gateway", "/v1/bucket/{name=*}:LOCK", "/v1/bucket/my-bucket:LOCK", bound("my-bucket")},
	// "**" matches zero segments too: the decision this package takes from these vectors.
	{"gateway", "/v1/{name=o/**}", "/v1/o", bound("o")},
	{"gateway", "/v1/{name=o/**}", "/v1/o/my-bucket", bound("o/my-bucket")},
	{"gateway", "/v1/{name=o/**}", "/v1/o/my-bucket/dir/dir2/obj", bound("o/my-bucket/dir/dir2/obj")},
	{"gateway", "/v1/{name=o/**}", "/", nil},
	{"gateway", "/v1/{name=o/**}", "/v1", nil},
	{"gateway", "/v1/{name=o/**}", "/v2/o/my-bucket", nil},
	{"gateway", "/v1/{name=o/**}", "/v1/b/my-bucket", nil},
	{"gateway", "/v2/{name=b/*}/o/{oname=*}", "/v2/b/my-bucket/o/obj", bound("b/my-bucket", "obj")},
	{"gateway", "/v2/{name=b/*}/o/{oname=*}", "/v2/b/our-bucket/o/obj", bound("b/our-bucket", "obj")},
	{"gateway", "/v2/{name=b/*}/o/{oname=*}", "/v2/b/my-bucket/o/dir", bound("b/my-bucket", "dir")},
	{"gateway", "/v2/{name=b/*}/o/{oname=*}", "/v2/b", nil},
	{"gateway", "/v2/{name=b/*}/o/{oname=*}", "/v2/b/my-bucket", nil},
	{"gateway", "/v2/{name=b/*}/o/{oname=*}", "/v2/b/my-bucket/o", nil},
	{"gateway", "/v1:LOCK", "/v1:LOCK", bound()},
	{"gateway", "/v1:LOCK", "/v1", nil},
	{"gateway", "/v1:LOCK", "/LOCK", nil},
	{"gateway", "/*:LOCK", "/abc:LOCK", bound()},
	{"gateway", "/foo/{id=*}/bar", "/foo/part1%2Fpart2/bar", bound("part1%2Fpart2")},
	{"gateway", "/foo/{id=**}", "/foo/test%2Fbar", bound("test%2Fbar")},

	// grpc-httpjson-transcoding src/path_matcher_test.cc, templates taken one at a time.
	{"transcoding", "/a/{x}/c/d/e", "/a/book/c/d/e", bound("book")},
	{"transcoding", "/{x=a/*}/b/{y=*}/c", "/a/hello/b/world/c", bound("a/hello", "world")},
	{"transcoding", "/a/{x=b/*}/{y=d/**}", "/a/b/zoo/d/animal/tiger", bound("b/zoo", "d/animal/tiger")},
	{"transcoding", "/{x=*}/a", "/foo/a", bound("foo")},
	{"transcoding", "/a/b/{x=*}", "/a/b/foo", bound("foo")},
	{"transcoding", "/a/b/c/{x=**}", "/a/b/c/foo/bar/baz", bound("foo/bar/baz")},
	{"transcoding", "/{x=*}/d/e/f/{y=**}", "/foo/d/e/f/bar/baz", bound("foo", "bar/baz")},
	{"transcoding", "/a/{x}/c", "/a/p%20q%2Fr/c", bound("p%20q%2Fr")},
	{"transcoding", "/a/{x=p/*/q/*}/c", "/a/p/foo%20foo/q/bar%2Fbar/c", bound("p/foo%20foo/q/bar%2Fbar")},
	{"transcoding", "/a/{y=*}:verb", "/a/world:verb", bound("world")},
	{"transcoding", "/a/{y=d/**}:verb", "/a/d/animal/tiger:verb", bound("d/animal/tiger")},
	{"transcoding", "/{x=*}/a:verb", "/foo/a:verb", bound("foo")},
	{"transcoding", "/e/{x=*}/f:verb", "/e/foo/f:verb", bound("foo")},
	{"transcoding", "/a/{x=b/**}", "/a/b/hello/world/c", bound("b/hello/world/c")},
	{"transcoding", "/a/{x=b/**}:verb", "/a/b/world/c:verb", bound("b/world/c")},
	{"transcoding", "/a/{x=**}", "/a/hello/b/world/c", bound("hello/b/world/c")},
	{"transcoding", "/some/other:verb", "/some/other:verb/", nil},
	{"transcoding", "/*/*:verb", "/some:verb/const:verb", bound()},
	// Transcoding answers no here only through a bug its test comment admits;
	// a template without a verb matches the whole last segment.
	{"transcoding", "/foo/*", "/foo/other:verb", bound()},
	{"transcoding", "/foo/*/hello", "/foo/other:verb/hello", bound()},
	{"transcoding", "/prefix/middle", "/prefix/middle/suffix/other", nil},
	{"transcoding", "/a/b/c/d", "/a/b/c", nil},
	{"transcoding", "/c/*/d/**", "/c//v/d/w/x", nil},
	// Transcoding's "/**" also takes "/a/"; here an empty segment matches nothing.
	{"transcoding", "/**", "/a/", nil},

	// lro_cancel acceptance paths.
	{"ours", "/v1/{name=operations/**}:cancel", "/v1/operations/a/b:c:cancel", bound("operations/a/b:c")},
	{"ours", "/v1/{name=operations/**}:cancel", "/v1/operations/123:cancel", bound("operations/123")},
	{"ours", "/v1/{name=operations/**}:cancel", "/v1/operations:cancel", bound("operations")},
	{"ours", "/v1/{name=operations/**}:cancel", "/v1/operations/x:cancelled", nil},
	{"ours", "/v1/{name=operations/**}:cancel", "/v1/operations/x", nil},
	{"ours", "/v1/{name=operations/**}:cancel", "/v1/operations/x:Cancel", nil},
	{"ours", "/v1/{name=operations/**}:cancel", "/v1/operations/x%3Acancel", nil},
	{"ours", "/v1/{name=operations/**}:cancel", "/v1/operations/x:%63ancel", nil},
	{"ours", "/v1/{name=operations/**}:cancel", "/v1/operations//x:cancel", nil},
	{"ours", "/v1/{name=operations/**}:cancel", "/v1/operations/x/:cancel", nil},
	{"ours", "/v1/{name=operations/**}:cancel", "/v1/Operations/x:cancel", nil},
	{"ours", "/v1/{name=operations/**}:cancel", "v1/operations/x:cancel", nil},
	{"ours", "/v1/{name=operations/**}:cancel", "", nil},
	{"ours", "/v1/{name=operations/*}:cancel", "/v1/operations/a%2Fb:cancel", bound("operations/a%2Fb")},
	{"ours", "/v1/{name=operations/*}:cancel", "/v1/operations/a%2fb/c:cancel", nil},
	{"ours", "/v1/{name=operations/*}:cancel", "/v1/operations/a%252Fb:cancel", bound("operations/a%252Fb")},
	{"ours", "/v1/{name=enterprises/*/devices/*/operations/*}:cancel", "/v1/enterprises/e/devices/d/operations/o:cancel", bound("enterprises/e/devices/d/operations/o")},
	{"ours", "/v1/{name=enterprises/*/devices/*/operations/*}:cancel", "/v1/enterprises/e/devices/d/operations/o/p:cancel", nil},
	{"ours", "/v1/{name=enterprises/*/devices/*/operations/*}:cancel", "/v1/enterprises/e/devices/operations/o:cancel", nil},
	{"ours", "/sql/v1beta4/projects/{project}/operations/{operation}/cancel", "/sql/v1beta4/projects/p/operations/op-1/cancel", bound("p", "op-1")},
	{"ours", "/sql/v1beta4/projects/{project}/operations/{operation}/cancel", "/sql/v1beta4/projects/p/operations/op-1:cancel", nil},
	{"ours", "/sql/v1beta4/projects/{project}/operations/{operation}/cancel", "/sql/v1beta4/projects/p/operations/op-1/cancel/", nil},
	{"ours", "/v1/projects/{projectId}/zones/{zone}/operations/{operationId}:cancel", "/v1/projects/my-project/zones/us-central1-a/operations/operation-123:cancel", bound("my-project", "us-central1-a", "operation-123")},
	{"ours", "/v1/projects/{projectId}/zones/{zone}/operations/{operationId}:cancel", "/v1/projects/p/zones/z/operations/o:c:cancel", bound("p", "z", "o:c")},
	// A template without a verb takes the colons of the last segment as its own.
	{"ours", "/v1/{name=operations/**}", "/v1/operations/x:cancel", bound("operations/x:cancel")},
	{"ours", "/v1/{name=segment/wi:th}", "/v1/segment/wi:th", bound("segment/wi:th")},
	{"ours", "/v1/a:b:c", "/v1/a:b:c", bound()},
	{"ours", "/v1/{x=**}", "/v1", bound("")},
	{"ours", "/v1/{name=operations/**}", "/v1/operations/", nil},
	{"ours", "/v1/{name=operations/**}", "/v1/operations/a/", nil},
	{"ours", "/**:cancel", "/:cancel", nil},
	// Literals compare byte for byte: no case folding of escapes, no decoding.
	{"ours", "/%e7/x", "/%E7/x", nil},
	{"ours", "/v1/a", "/v1/%61", nil},
}

func TestTemplateMatch(t *testing.T) {
	for _, tc := range matchCases {
		t.Run(tc.tmpl+" "+tc.path, func(t *testing.T) {
			tmpl := MustParse(tc.tmpl)
			m, ok := tmpl.Match(tc.path)
			if ok != (tc.vars != nil) {
				t.Fatalf("Match(%q) ok = %v, want %v (vector from %s)", tc.path, ok, !ok, tc.source)
			}
			if !ok {
				return
			}
			if got := values(tc.path, m); !slices.Equal(got, tc.vars) {
				t.Errorf("Match(%q) bound %q, want %q", tc.path, got, tc.vars)
			}
		})
	}
}

func values(path string, m Match) []string {
	vals := []string{}
	for _, s := range m.Vars[:m.N] {
		vals = append(vals, s.In(path))
	}
	return vals
}

func TestMatchSpanExcludesVerbAndCoversSlashes(t *testing.T) {
	const path = "/v1/operations/a/b:c:cancel"
	m, ok := MustParse("/v1/{name=operations/**}:cancel").Match(path)
	if !ok {
		t.Fatal("no match")
	}
	if want := (Span{Start: 4, End: 20}); m.N != 1 || m.Vars[0] != want {
		t.Errorf("got N=%d %+v, want N=1 %+v", m.N, m.Vars[0], want)
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	tmpl := MustParse("/v1/{name=projects/*/locations/*/operations/**}:cancel")
	for _, path := range []string{
		"/v1/projects/p/locations/l/operations/a/b:cancel",
		"/v1/projects/p/locations/l/datasets/d:cancel",
		"/v1/projects/p/locations/l/operations/o:get",
	} {
		if n := testing.AllocsPerRun(100, func() { tmpl.Match(path) }); n != 0 {
			t.Errorf("Match(%q) allocates %v times", path, n)
		}
	}
}
