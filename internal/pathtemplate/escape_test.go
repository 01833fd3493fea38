package pathtemplate

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestUnescape(t *testing.T) {
	for _, tc := range []struct {
		in           string
		multiSegment bool
		want         string
		err          error
	}{
		{"operations/abc", true, "operations/abc", nil},
		{"p%20q%2Fr", false, "p q/r", nil},                              // transcoding PercentEscapesUnescapedForSingleSegment
		{"p/foo%20foo/q/bar%2Fbar", true, "p/foo foo/q/bar%2Fbar", nil}, // transcoding PercentEscapesNotUnescapedForMultiSegment1
		{"part1%2Fpart2", false, "part1/part2", nil},                    // grpc-gateway pattern_test.go
		{"test%2Fbar", true, "test%2Fbar", nil},                         // grpc-gateway pattern_test.go, AllExceptReserved
		{"a%2fb", true, "a%2fb", nil},
		{"a%2fb", false, "a/b", nil},
		{"a%252Fb", false, "a%2Fb", nil},
		{"a%252Fb", true, "a%2Fb", nil},
		{"%e7%ac%ac", false, "第", nil},
		{"a%3Ab%3acancel", true, "a:b:cancel", nil},
		{"%zz", false, "", ErrEscape},
		{"a%4", false, "", ErrEscape},
		{"a%", true, "", ErrEscape},
		{"%ff", false, "", ErrUTF8},
		{"a\xffb", false, "", ErrUTF8},
	} {
		got, err := Unescape(tc.in, tc.multiSegment)
		if !errors.Is(err, tc.err) || got != tc.want {
			t.Errorf("Unescape(%q, %v) = %q, %v; want %q, %v", tc.in, tc.multiSegment, got, err, tc.want, tc.err)
		}
	}
}

// Transcoding PercentEscapesUnescapedForSingleSegmentAllAsciiChars: every
// ASCII byte, in either hex case, decodes to itself in a single segment.
func TestUnescapeDecodesEveryASCIIByte(t *testing.T) {
	for c := range 0x80 {
		for _, format := range []string{"%%%02x", "%%%02X"} {
			in := fmt.Sprintf(format, c)
			got, err := Unescape(in, false)
			if err != nil || got != string(rune(c)) {
				t.Errorf("Unescape(%q) = %q, %v; want %q", in, got, err, string(rune(c)))
			}
		}
	}
}

func TestAmbiguous(t *testing.T) {
	for _, tc := range []struct {
		path string
		want bool
	}{
		{"/v1/operations/abc:cancel", false},
		{"/v1/operations/a%20b:cancel", false},
		{"/v1/operations/a%2Fb:cancel", false},
		{"/v1/operations/a%3Ab:cancel", false},
		{"/v1/operations/a.b/..c/.../x:cancel", false},
		{"/", false},
		{"", false},
		{"/v1/operations/abc", false},
		{"/v1/operations/x:", false},
		{"/v1/operations/./x:cancel", true},
		{"/v1/operations/../x:cancel", true},
		{"/v1/operations/%2e/x:cancel", true},
		{"/v1/operations/%2E%2e/x:cancel", true},
		{"/v1/operations/.%2e/x:cancel", true},
		{"/v1/operations/x/..", true},
		{"/v1/operations/x/..:cancel", true},
		{"/v1//operations/x:cancel", true},
		{"//v1/operations/x:cancel", true},
		{"/v1/operations/x/", true},
		{"/v1/operations/x/:cancel", true},
		{"/v1/operations\\x:cancel", true},
		{"/v1/operations%5Cx:cancel", true},
		{"/v1/operations%5cx:cancel", true},
		{"/v1/operations/x%3Acancel", true},
		{"/v1/operations/x%3acancel", true},
		{"/v1/operations/x:%63ancel", true},
		{"/v1/operations/x:cancel%00", true},
		{"/v1/operations/x:y%3Acancel", true},
		{"v1/operations/x:cancel", true},
		{"*", true},
	} {
		if got := Ambiguous(tc.path); got != tc.want {
			t.Errorf("Ambiguous(%q) = %v, want %v", tc.path, got, tc.want)
		}
	}
}

func TestAmbiguousDoesNotAllocate(t *testing.T) {
	for _, path := range []string{"/v1/projects/p/locations/l/operations/o:cancel", "/v1/operations/%2e%2E/x%3Acancel"} {
		if n := testing.AllocsPerRun(100, func() { Ambiguous(path) }); n != 0 {
			t.Errorf("Ambiguous(%q) allocates %v times", path, n)
		}
	}
}

func TestClean(t *testing.T) {
	for _, tc := range []struct{ path, want string }{
		{"/v1/operations/abc:cancel", "/v1/operations/abc:cancel"},
		{"/v1/operations/x/..:cancel", "/v1/operations/x/..:cancel"},
		{"/v1/operations/x/../y:cancel", "/v1/operations/y:cancel"},
		{"/v1/operations/./y:cancel", "/v1/operations/y:cancel"},
		{"/v1/operations/%2e%2E/y:cancel", "/v1/y:cancel"},
		{"/v1/operations/.%2e/.%2E/../../y", "/y"},
		{"/v1//operations///x:cancel", "/v1/operations/x:cancel"},
		{"/v1/operations/x/", "/v1/operations/x"},
		{"/v1\\operations%5cx%5C:cancel", "/v1/operations/x/:cancel"},
		{"/v1/operations/x%3Acancel", "/v1/operations/x:cancel"},
		{"/v1/operations/x:%63ancel", "/v1/operations/x:cancel"},
		{"/v1/%6Fperations/%7E%2d%5F", "/v1/operations/~-_"},
		{"/v1/a%2fb%20c", "/v1/a%2Fb%20c"},
		{"/v1/a%252e", "/v1/a%252e"},
		{"/v1/%zz%4", "/v1/%25zz%254"},
		{"/v1/%%35C", "/v1/%255C"},
		{"v1/x", "/v1/x"},
		{"", "/"},
		{"/", "/"},
		{"/..", "/"},
		{"/../../..", "/"},
	} {
		got := Clean(tc.path)
		if got != tc.want {
			t.Errorf("Clean(%q) = %q, want %q", tc.path, got, tc.want)
		}
		if again := Clean(got); again != got {
			t.Errorf("Clean(%q) = %q, not idempotent", got, again)
		}
	}
}

// Cleaning an ambiguous path shows the cancel a lenient upstream would see.
func TestCleanRevealsHiddenCancel(t *testing.T) {
	s := newSet("/v1/{name=operations/**}:cancel")
	for _, path := range []string{
		"/v1/operations/x%3Acancel",
		"/v1/operations/x:%63ancel",
		"/v1/foo/../operations/x:cancel",
		"/v1/operations//x:cancel",
		"/v1%5Coperations%5Cx:cancel",
	} {
		if _, _, ok := s.Match(path); ok {
			t.Errorf("Match(%q) matched the raw path", path)
		}
		if !Ambiguous(path) {
			t.Errorf("Ambiguous(%q) = false", path)
		}
		if _, _, ok := s.Match(Clean(path)); !ok {
			t.Errorf("Match(Clean(%q)) = Match(%q) did not match", path, Clean(path))
		}
	}
}

func TestEscapeIsUndoneByUnescape(t *testing.T) {
	for _, name := range []string{
		"operations/x", "operations/a b", "operations/100%", "operations/a%2Fb", "operations/é/ü",
		"operations/x:cancel", "operations/?#[]", "projects/p/locations/l/operations/o",
	} {
		esc := Escape(name)
		if strings.ContainsAny(esc, " ?#[]") {
			t.Errorf("Escape(%q) = %q keeps a byte a path cannot hold", name, esc)
		}
		if got, err := Unescape(esc, true); err != nil || got != name {
			t.Errorf("Unescape(Escape(%q)) = %q, %v", name, got, err)
		}
	}
}

func TestEscapesUnreserved(t *testing.T) {
	for path, want := range map[string]bool{
		"/v1/%6Fperations/x:cancel": true,
		"/v1/operations/x%3Acancel": true,
		"/v1/operations/a%2Fb":      false,
		"/v1/operations/x%":         false,
		"/v1/operations/x%4":        false,
		"/v1/operations/x":          false,
	} {
		if got := EscapesUnreserved(path); got != want {
			t.Errorf("EscapesUnreserved(%q) = %v, want %v", path, got, want)
		}
	}
}
