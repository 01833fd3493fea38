package pathtemplate

import "strings"

// Span is a half-open range of byte offsets into the matched path.
type Span struct{ Start, End int }

// In returns the escaped text the span covers in path.
func (s Span) In(path string) string { return path[s.Start:s.End] }

// Match holds the escaped value span of each variable, in template order;
// only the first N entries of Vars are set.
type Match struct {
	Vars [MaxVars]Span
	N    int
}

// Match matches the escaped path against t and reports the variables' spans.
// It does not allocate.
func (t *Template) Match(path string) (Match, bool) {
	body, ok := splitVerb(path, t.verb)
	if !ok {
		return Match{}, false
	}
	m := Match{N: len(t.vars)}
	pos, more := 1, body != "/"
	for i := range t.segs {
		s := &t.segs[i]
		if s.kind == doubleStar {
			start := len(body)
			if more {
				if !allNonEmpty(body[pos:]) {
					return Match{}, false
				}
				start = pos
			}
			t.mark(&m, i, start, len(body))
			more = false
			break
		}
		if !more {
			return Match{}, false
		}
		var end int
		if s.kind == literal {
			// Comparing in place spares a scan for the segment's end.
			end = pos + len(s.lit)
			if !strings.HasPrefix(body[pos:], s.lit) || end < len(body) && body[end] != '/' {
				return Match{}, false
			}
		} else if end = segEnd(body, pos); end == pos {
			return Match{}, false
		}
		t.mark(&m, i, pos, end)
		pos, more = end+1, end < len(body)
	}
	if more {
		return Match{}, false
	}
	return m, true
}

// mark records that segment i of t matched path[start:end].
func (t *Template) mark(m *Match, i, start, end int) {
	v := t.segs[i].v
	if v < 0 {
		return
	}
	if t.vars[v].first == i {
		m.Vars[v].Start = start
	}
	if t.vars[v].last == i {
		m.Vars[v].End = end
	}
}

// splitVerb returns the part of path that the segments must match: all of
// it when verb is empty, else what precedes the last ':' of the last
// segment, provided the rest is exactly verb and the segment before it is
// not empty.
func splitVerb(path, verb string) (string, bool) {
	if path == "" || path[0] != '/' {
		return "", false
	}
	if verb == "" {
		return path, true
	}
	last := strings.LastIndexByte(path, '/') + 1
	c := strings.LastIndexByte(path[last:], ':')
	if c <= 0 || path[last+c+1:] != verb {
		return "", false
	}
	return path[:last+c], true
}

// segEnd returns the end of the segment of body that starts at pos.
func segEnd(body string, pos int) int {
	if i := strings.IndexByte(body[pos:], '/'); i >= 0 {
		return pos + i
	}
	return len(body)
}

// allNonEmpty reports whether rest, which starts at a segment, is one or
// more non-empty segments.
func allNonEmpty(rest string) bool {
	return rest != "" && rest[0] != '/' && rest[len(rest)-1] != '/' && !strings.Contains(rest, "//")
}
