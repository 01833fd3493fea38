package pathtemplate

import (
	"fmt"
	"strings"
)

// MaxVars is the most variables a template may hold; it sizes Match.Vars so
// that matching never allocates.
const MaxVars = 8

type kind uint8

const (
	literal kind = iota
	star
	doubleStar
)

type segment struct {
	kind kind
	lit  string // the escaped literal text, for kind literal
	v    int8   // index of the enclosing variable, -1 outside any
}

type variable struct {
	path        string // field path, e.g. "name" or "shelf.theme"
	first, last int    // indexes into Template.segs, inclusive
}

// Template is a parsed path template. It is immutable and safe for
// concurrent use.
type Template struct {
	segs  []segment
	vars  []variable
	verb  string
	canon string
}

// SyntaxError reports a malformed template and the byte offset of the
// problem.
type SyntaxError struct {
	Template string // the template as given
	Offset   int    // byte offset into Template
	Problem  string // what is wrong, e.g. `unclosed "{"`
}

// Error formats the problem as `pathtemplate: "<template>": <problem> at offset <n>`.
func (e *SyntaxError) Error() string {
	return fmt.Sprintf("pathtemplate: %q: %s at offset %d", e.Template, e.Problem, e.Offset)
}

// Parse parses a template of the google.api.http grammar:
//
//	Template = "/" Segments [ Verb ] ;
//	Segments = Segment { "/" Segment } ;
//	Segment  = "*" | "**" | LITERAL | Variable ;
//	Variable = "{" FieldPath [ "=" Segments ] "}" ;
//	FieldPath = IDENT { "." IDENT } ;
//	Verb     = ":" LITERAL ;
//
// LITERAL is RFC 3986 pchars (percent-escapes allowed); "**" must be the last
// segment; variables do not nest and their field paths are unique; a verb may
// not hold ':' (paths split theirs at the last ':', so it could never match).
// The error is a *SyntaxError.
func Parse(s string) (*Template, error) {
	p := parser{src: s, dstar: -1}
	if err := p.template(); err != nil {
		return nil, err
	}
	p.t.canon = p.t.format()
	return &p.t, nil
}

// MustParse is Parse that panics on error, for tests and generated tables.
func MustParse(s string) *Template {
	t, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return t
}

// String returns the canonical form: a bare {x} reads {x=*}, everything else
// as written.
func (t *Template) String() string { return t.canon }

// Verb returns the template's custom verb without its ':', or "" when none.
func (t *Template) Verb() string { return t.verb }

// VarNames returns the variables' field paths in template order.
func (t *Template) VarNames() []string {
	names := make([]string, len(t.vars))
	for i, v := range t.vars {
		names[i] = v.path
	}
	return names
}

// VarIndex returns the index in Match.Vars of the variable with the given
// field path, or -1.
func (t *Template) VarIndex(fieldPath string) int {
	for i, v := range t.vars {
		if v.path == fieldPath {
			return i
		}
	}
	return -1
}

// MultiSegment reports whether variable i can span several segments (it has
// more than one segment or a "**"); its value is then unescaped with
// Unescape(value, true), which keeps %2F encoded.
func (t *Template) MultiSegment(i int) bool {
	v := t.vars[i]
	return v.first != v.last || t.segs[v.last].kind == doubleStar
}

func (t *Template) format() string {
	var b strings.Builder
	for i, s := range t.segs {
		b.WriteByte('/')
		if s.v >= 0 && t.vars[s.v].first == i {
			b.WriteByte('{')
			b.WriteString(t.vars[s.v].path)
			b.WriteByte('=')
		}
		switch s.kind {
		case star:
			b.WriteByte('*')
		case doubleStar:
			b.WriteString("**")
		default:
			b.WriteString(s.lit)
		}
		if s.v >= 0 && t.vars[s.v].last == i {
			b.WriteByte('}')
		}
	}
	if t.verb != "" {
		b.WriteByte(':')
		b.WriteString(t.verb)
	}
	return b.String()
}

type parser struct {
	src   string
	pos   int
	t     Template
	dstar int // offset of the "**" parsed so far, -1 if none
}

func (p *parser) fail(off int, format string, args ...any) error {
	return &SyntaxError{Template: p.src, Offset: off, Problem: fmt.Sprintf(format, args...)}
}

func (p *parser) template() error {
	if !strings.HasPrefix(p.src, "/") {
		return p.fail(0, `missing leading "/"`)
	}
	p.pos = 1
	for {
		if p.pos < len(p.src) && p.src[p.pos] == '{' {
			if err := p.variable(); err != nil {
				return err
			}
		} else if err := p.segment(-1); err != nil {
			return err
		}
		if p.pos == len(p.src) {
			return nil
		}
		switch c := p.src[p.pos]; c {
		case '/':
			p.pos++
		case ':':
			// Only a variable stops before ':'; a literal's colons are its own.
			return p.verb(p.pos + 1)
		case '{':
			return p.fail(p.pos, `missing "/" before "{"`)
		case '}':
			return p.fail(p.pos, `unbalanced "}"`)
		default:
			return p.fail(p.pos, `missing "/" after "}"`)
		}
	}
}

// segment parses one "*", "**" or literal; in is the enclosing variable or -1.
func (p *parser) segment(in int8) error {
	start := p.pos
	end := len(p.src)
	if i := strings.IndexAny(p.src[start:], "/{}"); i >= 0 {
		end = start + i
	}
	tok := p.src[start:end]
	if in < 0 && end == len(p.src) {
		// The last top-level segment carries the verb after its last ':'.
		if c := strings.LastIndexByte(tok, ':'); c >= 0 {
			if err := p.verb(start + c + 1); err != nil {
				return err
			}
			tok = tok[:c]
		}
	}
	if tok == "" {
		if in < 0 && start < len(p.src) && p.src[start] == '}' {
			return p.fail(start, `unbalanced "}"`)
		}
		return p.fail(start, "empty segment")
	}
	s := segment{kind: literal, v: in}
	switch tok {
	case "*":
		s.kind = star
	case "**":
		s.kind = doubleStar
	case ".", "..":
		return p.fail(start, "dot segment %q", tok)
	default:
		if err := p.literal(tok, start); err != nil {
			return err
		}
		s.lit = tok
	}
	if err := p.add(s, start); err != nil {
		return err
	}
	p.pos = end
	return nil
}

func (p *parser) add(s segment, off int) error {
	if p.dstar >= 0 {
		return p.fail(p.dstar, `"**" must be the last segment`)
	}
	if s.kind == doubleStar {
		p.dstar = off
	}
	p.t.segs = append(p.t.segs, s)
	return nil
}

// verb records the rest of the template, from off, as the verb.
func (p *parser) verb(off int) error {
	v := p.src[off:]
	if v == "" {
		return p.fail(off-1, "empty verb")
	}
	if c := strings.IndexByte(v, ':'); c >= 0 {
		return p.fail(off+c, `":" in verb`)
	}
	if err := p.literal(v, off); err != nil {
		return err
	}
	p.t.verb = v
	return nil
}

func (p *parser) variable() error {
	open := p.pos
	if len(p.t.vars) == MaxVars {
		return p.fail(open, "more than %d variables", MaxVars)
	}
	p.pos++
	fieldStart := p.pos
	for {
		idStart := p.pos
		for p.pos < len(p.src) && isIdent(p.src[p.pos], p.pos == idStart) {
			p.pos++
		}
		if p.pos == len(p.src) {
			return p.fail(open, `unclosed "{"`)
		}
		if p.pos == idStart {
			switch c := p.src[p.pos]; c {
			case '.', '=', '}':
				return p.fail(p.pos, "empty identifier in field path")
			default:
				return p.fail(p.pos, "invalid character %q in field path", c)
			}
		}
		if p.src[p.pos] != '.' {
			break
		}
		p.pos++
	}
	field := p.src[fieldStart:p.pos]
	if p.t.VarIndex(field) >= 0 {
		return p.fail(fieldStart, "duplicate variable %q", field)
	}
	in := int8(len(p.t.vars))
	first := len(p.t.segs)
	switch c := p.src[p.pos]; c {
	case '}':
		if err := p.add(segment{kind: star, v: in}, p.pos); err != nil {
			return err
		}
	case '=':
		p.pos++
		for {
			if p.pos == len(p.src) {
				return p.fail(open, `unclosed "{"`)
			}
			if p.src[p.pos] == '{' {
				return p.fail(p.pos, "nested variable")
			}
			if err := p.segment(in); err != nil {
				return err
			}
			if p.pos == len(p.src) {
				return p.fail(open, `unclosed "{"`)
			}
			if c := p.src[p.pos]; c == '}' {
				break
			} else if c == '{' {
				return p.fail(p.pos, "nested variable")
			}
			p.pos++ // '/'
		}
	default:
		return p.fail(p.pos, "invalid character %q in field path", c)
	}
	p.pos++ // '}'
	p.t.vars = append(p.t.vars, variable{path: field, first: first, last: len(p.t.segs) - 1})
	return nil
}

func isIdent(c byte, first bool) bool {
	return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || !first && '0' <= c && c <= '9'
}

// literal checks that s (found at offset off) is RFC 3986 pchars with
// well-formed percent-escapes.
func (p *parser) literal(s string, off int) error {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' {
			if i+2 >= len(s) || Unhex(s[i+1]) < 0 || Unhex(s[i+2]) < 0 {
				return p.fail(off+i, "malformed percent-escape")
			}
			i += 2
			continue
		}
		if !isPchar(c) {
			return p.fail(off+i, "invalid character %q in literal", c)
		}
	}
	return nil
}

// isPchar reports whether c may appear unescaped in a path segment:
// unreserved, sub-delims, ':' or '@' (RFC 3986, section 3.3).
func isPchar(c byte) bool {
	if isUnreserved(c) {
		return true
	}
	return strings.IndexByte("!$&'()*+,;=:@", c) >= 0
}

func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// Unhex returns the value of the hex digit c, or -1 when c is none.
func Unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
