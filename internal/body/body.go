// Package body decides whether a cancel request's body is the empty message
// Google's clients send: zero bytes, JSON whitespace, {}, null, or an object
// holding only request fields whose values repeat the URL path's variables.
//
// The check is a hand-written, single-level JSON scanner: it never recurses,
// never allocates for the accepted forms, and reports the first problem as a
// Violation fit for a google.rpc.BadRequest field violation.
package body

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"
)

// MaxBytes bounds what is ever read of a body: an empty message with a
// repeated operation name fits with room to spare.
const MaxBytes = 4096

// Rules say which bodies a method accepts.
type Rules struct {
	// Strict accepts zero bytes only (`body strict`).
	Strict bool
	// Fields are the JSON names of the request fields the body may set,
	// e.g. container's name, operationId, projectId, zone. Empty means
	// "name" only, the field of google.longrunning.CancelOperationRequest.
	Fields []string
	// Vars are the decoded path variables by field name. A body field named
	// here must repeat the path's value.
	Vars map[string]string
}

// Violation is why a body was refused.
type Violation struct {
	// Field is the offending JSON field name, or "" when the problem is the
	// body as a whole.
	Field string
	// Description says what is wrong; it quotes at most a short, sanitized
	// excerpt of the body.
	Description string
}

var defaultFields = []string{"name"}

// Read reads at most MaxBytes+1 bytes of r. tooLarge reports that r holds
// more than MaxBytes; the rest is left unread. data holds what was read,
// also when err is set.
func Read(r io.Reader) (data []byte, tooLarge bool, err error) {
	if r == nil || r == http.NoBody {
		return nil, false, nil
	}
	const limit = MaxBytes + 1
	buf := make([]byte, 0, 512)
	for {
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), min(2*cap(buf), limit))
			copy(grown, buf)
			buf = grown
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		switch {
		case len(buf) == limit:
			return buf, true, nil
		case err == io.EOF:
			return buf, false, nil
		case err != nil:
			return buf, false, fmt.Errorf("reading request body: %w", err)
		}
	}
}

// TooLarge is the violation for a body longer than MaxBytes.
func TooLarge() *Violation {
	return &Violation{Description: fmt.Sprintf("Request body is larger than %d bytes; a cancel request carries an empty message.", MaxBytes)}
}

// Check returns nil when data, sent with the given Content-Encoding header
// value (all of the request's values joined with ", "), is an acceptable
// empty message under rules, and otherwise the first problem found.
//
// JSON null as a field's value is accepted: proto3 JSON reads it as the
// field's default, the same as leaving the field out.
func Check(data []byte, contentEncoding string, rules Rules) *Violation {
	if ce := strings.Trim(contentEncoding, " \t"); ce != "" && !strings.EqualFold(ce, "identity") {
		return &Violation{Description: fmt.Sprintf("Content-Encoding %q is not supported; send the request body unencoded.", excerpt([]byte(ce)))}
	}
	if len(data) > MaxBytes {
		return TooLarge()
	}
	if len(data) == 0 {
		return nil
	}
	if rules.Strict {
		return &Violation{Description: "Request body must be empty (zero bytes)."}
	}
	if bytes.HasPrefix(data, []byte("\xEF\xBB\xBF")) {
		return invalid("Unexpected byte order mark.")
	}
	if !utf8.Valid(data) {
		return invalid("Request body is not valid UTF-8.")
	}

	s := scanner{data: data}
	s.skipSpace()
	if s.eof() {
		return nil
	}
	var v *Violation
	switch c := data[s.pos]; c {
	case '{':
		v = s.object(rules)
	case 'n':
		v = s.literal("null")
	case '[':
		return invalid("Root element must be a message, got an array.")
	case '"', 't', 'f', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return invalid("Root element must be a message, got a scalar value.")
	default:
		return s.unexpected()
	}
	if v != nil {
		return v
	}
	s.skipSpace()
	if s.eof() {
		return nil
	}
	if startsValue(data[s.pos]) {
		return invalid(fmt.Sprintf("Unexpected second JSON value at byte %d.", s.pos))
	}
	return s.unexpected()
}

// scanner walks data, which Check has already found to be valid UTF-8.
type scanner struct {
	data []byte
	pos  int
}

func (s *scanner) eof() bool { return s.pos >= len(s.data) }

func (s *scanner) skipSpace() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\r', '\n':
			s.pos++
		default:
			return
		}
	}
}

// object checks the object starting at s.pos against rules.
func (s *scanner) object(rules Rules) *Violation {
	fields := rules.Fields
	if len(fields) == 0 {
		fields = defaultFields
	}
	var small [8]bool // request messages have a handful of fields
	seen := small[:]
	if len(fields) > len(small) {
		seen = make([]bool, len(fields))
	}
	var scratch [256]byte // room to decode an escaped string without allocating

	s.pos++ // '{'
	s.skipSpace()
	if !s.eof() && s.data[s.pos] == '}' {
		s.pos++
		return nil
	}
	for {
		if s.eof() || s.data[s.pos] != '"' {
			return s.unexpected()
		}
		key, v := s.str(scratch[:0])
		if v != nil {
			return v
		}
		i := indexOf(fields, key)
		if i < 0 {
			name := excerpt(key)
			return &Violation{Field: name, Description: fmt.Sprintf("Invalid JSON payload received. Unknown name %q: Cannot find field.", name)}
		}
		field := fields[i]
		if seen[i] {
			return &Violation{Field: field, Description: fmt.Sprintf("Invalid JSON payload received. Duplicate field %q.", field)}
		}
		seen[i] = true

		s.skipSpace()
		if s.eof() || s.data[s.pos] != ':' {
			return s.unexpected()
		}
		s.pos++
		s.skipSpace()
		if s.eof() {
			return s.unexpected()
		}
		switch c := s.data[s.pos]; {
		case c == '"':
			val, v := s.str(scratch[:0])
			if v != nil {
				return v
			}
			if want, ok := rules.Vars[field]; ok && string(val) != want {
				return &Violation{Field: field, Description: fmt.Sprintf("Field %q in the request body does not match the value in the URL path.", field)}
			}
		case c == 'n':
			if v := s.literal("null"); v != nil {
				return v
			}
		case startsValue(c):
			return &Violation{Field: field, Description: fmt.Sprintf("Invalid value at %q (TYPE_STRING): expected a string.", field)}
		default:
			return s.unexpected()
		}

		s.skipSpace()
		if s.eof() {
			return s.unexpected()
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
			s.skipSpace()
		case '}':
			s.pos++
			return nil
		default:
			return s.unexpected()
		}
	}
}

// str decodes the string starting at s.pos. Without escapes the result
// aliases data; otherwise it is appended to dst.
func (s *scanner) str(dst []byte) ([]byte, *Violation) {
	s.pos++ // '"'
	start := s.pos
	for s.pos < len(s.data) {
		switch c := s.data[s.pos]; {
		case c == '"':
			s.pos++
			return s.data[start : s.pos-1], nil
		case c == '\\':
			return s.escaped(append(dst, s.data[start:s.pos]...))
		case c < 0x20:
			return nil, s.unexpected()
		default:
			s.pos++
		}
	}
	return nil, s.unexpected()
}

// escaped continues str from the first backslash, decoding into dst.
func (s *scanner) escaped(dst []byte) ([]byte, *Violation) {
	for s.pos < len(s.data) {
		c := s.data[s.pos]
		switch {
		case c == '"':
			s.pos++
			return dst, nil
		case c < 0x20:
			return nil, s.unexpected()
		case c != '\\':
			dst = append(dst, c)
			s.pos++
			continue
		}
		if s.pos+1 >= len(s.data) {
			s.pos = len(s.data)
			return nil, s.unexpected()
		}
		s.pos++ // the backslash
		switch e := s.data[s.pos]; e {
		case '"', '\\', '/':
			dst = append(dst, e)
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, ok := s.hex4(s.pos + 1)
			if !ok {
				return nil, s.unexpected()
			}
			s.pos += 4
			if r >= 0xD800 && r < 0xE000 {
				// Only a high surrogate followed by a low one is a character;
				// anything else would be silently replaced by U+FFFD.
				low, ok := s.hex4(s.pos + 3)
				if r >= 0xDC00 || !ok || s.data[s.pos+1] != '\\' || s.data[s.pos+2] != 'u' || low < 0xDC00 || low >= 0xE000 {
					return nil, invalid(fmt.Sprintf("Unpaired UTF-16 surrogate escape at byte %d.", s.pos-5))
				}
				s.pos += 6
				r = 0x10000 + (r-0xD800)<<10 + (low - 0xDC00)
			}
			dst = utf8.AppendRune(dst, r)
		default:
			return nil, s.unexpected()
		}
		s.pos++
	}
	return nil, s.unexpected()
}

// hex4 decodes the four hex digits at data[at:at+4].
func (s *scanner) hex4(at int) (rune, bool) {
	if at < 0 || at+4 > len(s.data) {
		return 0, false
	}
	var r rune
	for _, c := range s.data[at : at+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

func (s *scanner) literal(lit string) *Violation {
	if !bytes.HasPrefix(s.data[s.pos:], []byte(lit)) {
		return s.unexpected()
	}
	s.pos += len(lit)
	return nil
}

// unexpected describes the syntax error at s.pos.
func (s *scanner) unexpected() *Violation {
	if s.eof() {
		return invalid("Unexpected end of input.")
	}
	return invalid(fmt.Sprintf("Unexpected token at byte %d: %q.", s.pos, excerpt(s.data[s.pos:])))
}

func invalid(problem string) *Violation {
	return &Violation{Description: "Invalid JSON payload received. " + problem}
}

func startsValue(c byte) bool {
	switch c {
	case '{', '[', '"', 'n', 't', 'f', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return true
	}
	return false
}

func indexOf(fields []string, key []byte) int {
	for i, f := range fields {
		if f == string(key) {
			return i
		}
	}
	return -1
}

// excerptLen bounds how much of a body a Violation repeats.
const excerptLen = 40

// excerpt returns at most excerptLen bytes of b as printable ASCII: the
// description may reach logs and terminals, so nothing else goes through.
func excerpt(b []byte) string {
	var sb strings.Builder
	for i, c := range b {
		if i == excerptLen {
			sb.WriteString("...")
			break
		}
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			c = '?'
		}
		sb.WriteByte(c)
	}
	return sb.String()
}
