package pathtemplate

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

var (
	// ErrEscape is wrapped by Unescape's error for a '%' not followed by two
	// hex digits.
	ErrEscape = errors.New("malformed percent-escape")
	// ErrUTF8 is wrapped by Unescape's error when the decoded value is not
	// UTF-8, which no Google resource name is.
	ErrUTF8 = errors.New("decoded value is not valid UTF-8")
)

// Unescape decodes the percent-escapes of a matched variable value exactly
// once: "%252F" becomes "%2F", never "/". With multiSegment (see
// Template.MultiSegment) %2F and %2f stay as written, so that the decoded
// value's '/' still separates segments only; otherwise everything is
// decoded. A malformed escape or a result that is not UTF-8 is an error.
func Unescape(s string, multiSegment bool) (string, error) {
	if strings.IndexByte(s, '%') < 0 {
		if !utf8.ValidString(s) {
			return "", fmt.Errorf("pathtemplate: unescaping %q: %w", s, ErrUTF8)
		}
		return s, nil
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b = append(b, s[i])
			continue
		}
		c, ok := decodeAt(s, i)
		if !ok {
			return "", fmt.Errorf("pathtemplate: unescaping %q at offset %d: %w", s, i, ErrEscape)
		}
		if multiSegment && c == '/' {
			b = append(b, s[i:i+3]...)
		} else {
			b = append(b, c)
		}
		i += 2
	}
	if !utf8.Valid(b) {
		return "", fmt.Errorf("pathtemplate: unescaping %q: %w", s, ErrUTF8)
	}
	return string(b), nil
}

// decodeAt decodes the escape at s[i], which is '%'.
func decodeAt(s string, i int) (byte, bool) {
	if i+2 >= len(s) {
		return 0, false
	}
	hi, lo := Unhex(s[i+1]), Unhex(s[i+2])
	if hi < 0 || lo < 0 {
		return 0, false
	}
	return byte(hi<<4 | lo), true
}

// Ambiguous reports whether two servers could read the escaped path
// differently: it holds a dot segment ("." or "..", also as %2e), an empty
// segment ("//", or a trailing "/" after a non-root path, or nothing before
// the last segment's verb), a backslash (raw or %5C), or a last segment
// whose verb changes when decoded ("x%3Acancel", "x:%63ancel"). A path not
// starting with "/" is ambiguous too; "" is not. It does not allocate.
func Ambiguous(path string) bool {
	if path == "" {
		return false
	}
	if path[0] != '/' || hasBackslash(path) {
		return true
	}
	if path == "/" {
		return false
	}
	for pos := 1; ; {
		end := segEnd(path, pos)
		seg := path[pos:end]
		if seg == "" || isDotSegment(seg) {
			return true
		}
		if end == len(path) {
			return ambiguousVerb(seg)
		}
		pos = end + 1
	}
}

func hasBackslash(path string) bool {
	if strings.IndexByte(path, '\\') >= 0 {
		return true
	}
	for i := strings.IndexByte(path, '%'); i >= 0; {
		if i+2 < len(path) && path[i+1] == '5' && (path[i+2] == 'c' || path[i+2] == 'C') {
			return true
		}
		next := strings.IndexByte(path[i+1:], '%')
		if next < 0 {
			break
		}
		i += 1 + next
	}
	return false
}

// isDotSegment reports whether seg decodes to "." or "..".
func isDotSegment(seg string) bool {
	dots := 0
	for i := 0; i < len(seg); i++ {
		switch {
		case seg[i] == '.':
		case seg[i] == '%' && i+2 < len(seg) && seg[i+1] == '2' && (seg[i+2] == 'e' || seg[i+2] == 'E'):
			i += 2
		default:
			return false
		}
		dots++
	}
	return dots == 1 || dots == 2
}

// ambiguousVerb reports whether the last segment's verb, or the part before
// it, reads differently raw and decoded.
func ambiguousVerb(seg string) bool {
	colon := strings.LastIndexByte(seg, ':')
	for i := colon + 1; i < len(seg); i++ {
		if seg[i] != '%' {
			continue
		}
		// An escape after the last raw ':' changes the verb once decoded, or
		// (%3A) moves where the verb starts.
		if colon >= 0 {
			return true
		}
		if i+2 < len(seg) && seg[i+1] == '3' && (seg[i+2] == 'a' || seg[i+2] == 'A') {
			return true
		}
	}
	if colon < 0 {
		return false
	}
	name := seg[:colon]
	return name == "" || isDotSegment(name)
}

// Clean returns the path as a lenient server would read it: '\' and %5C
// become '/', escaped unreserved characters and ':' are decoded (other
// escapes, %2F among them, stay, in upper case; a stray '%' becomes %25),
// empty segments are dropped and "." and ".." resolved without climbing
// above the root. Clean(Clean(p)) == Clean(p).
func Clean(path string) string {
	norm := make([]byte, 0, len(path)+1)
	norm = append(norm, '/')
	for i := 0; i < len(path); i++ {
		c := path[i]
		switch {
		case c == '\\':
			norm = append(norm, '/')
		case c != '%':
			norm = append(norm, c)
		default:
			d, ok := decodeAt(path, i)
			switch {
			case !ok:
				norm = append(norm, "%25"...)
				continue
			case d == '\\':
				norm = append(norm, '/')
			case isUnreserved(d) || d == ':':
				norm = append(norm, d)
			default:
				norm = append(norm, '%', upperHex[d>>4], upperHex[d&15])
			}
			i += 2
		}
	}
	out := norm[:0] // resolving only ever shortens, so it can reuse norm
	for pos := 0; pos < len(norm); {
		end := pos + 1
		for end < len(norm) && norm[end] != '/' {
			end++
		}
		switch string(norm[pos+1 : end]) {
		case "", ".":
		case "..":
			out = out[:max(0, bytes.LastIndexByte(out, '/'))]
		default:
			out = append(out, norm[pos:end]...)
		}
		pos = end
	}
	if len(out) == 0 {
		return "/"
	}
	return string(out)
}

const upperHex = "0123456789ABCDEF"

// EscapesUnreserved reports whether path escapes a character that Clean
// decodes: an unreserved one or ':'. A lenient server decodes those before
// routing, so such a path may be a cancel to it.
func EscapesUnreserved(path string) bool {
	for i := 0; ; i++ {
		j := strings.IndexByte(path[i:], '%')
		if j < 0 {
			return false
		}
		i += j
		if c, ok := decodeAt(path, i); ok && (c == ':' || isUnreserved(c)) {
			return true
		}
	}
}

// Escape percent-encodes a decoded resource name for a path, segment by
// segment: '/' still separates segments, every byte that is not a pchar is
// escaped. A ':' stays: the verb is split at the last one, after the name.
// Unescape(Escape(s), true) == s for every UTF-8 s.
func Escape(name string) string {
	n := 0
	for i := 0; i < len(name); i++ {
		if c := name[i]; c != '/' && !isPchar(c) {
			n++
		}
	}
	if n == 0 {
		return name
	}
	const hex = "0123456789ABCDEF"
	b := make([]byte, 0, len(name)+2*n)
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c == '/' || isPchar(c) {
			b = append(b, c)
			continue
		}
		b = append(b, '%', hex[c>>4], hex[c&15])
	}
	return string(b)
}
