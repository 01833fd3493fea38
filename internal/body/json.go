package body

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ReadJSON reads data, the JSON form of a request message whose fields are
// all strings, into values: values[i] is the value of the field whose JSON
// name is fields[i], "" when absent or null. values must have len(fields).
//
// It accepts what Check accepts (whitespace or null for the empty message,
// else one object whose keys are among fields, each at most once, holding
// strings or null), at most MaxBytes; on a Violation every value is "", so
// nothing half-read is ever audited or matched. As with ReadProto, unknown
// keys holding a scalar (string, number, true, false, null) in an otherwise
// valid body are refused with ValuesRead set and the known fields read.
func ReadJSON(data []byte, fields []string, values []string) *Violation {
	startValues(values, len(fields))
	if len(data) > MaxBytes {
		return TooLarge()
	}
	v := walk(data, fields, nil, values)
	if v != nil && !v.ValuesRead {
		clear(values)
	}
	return v
}

// walk checks that data is one JSON value standing for a request message:
// nothing but whitespace, null, or an object whose keys are among fields,
// each at most once, with string or null values. A string value must equal
// its field's entry in vars, if any, and is kept in values, if not nil.
//
// Not a callback: a func value would move the decoding scratch to the heap.
func walk(data []byte, fields []string, vars map[string]string, values []string) *Violation {
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
		v = s.object(fields, vars, values)
	case 'n':
		v = s.literal("null")
	case '[':
		return invalid("Root element must be a message, got an array.")
	case '"', 't', 'f', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return invalid("Root element must be a message, got a scalar value.")
	default:
		return s.unexpected()
	}
	if v != nil && !v.ValuesRead {
		return v
	}
	s.skipSpace()
	if s.eof() {
		return v
	}
	if startsValue(data[s.pos]) {
		return invalid(fmt.Sprintf("Unexpected second JSON value at byte %d.", s.pos))
	}
	return s.unexpected()
}

// scanner walks data, which walk has already found to be valid UTF-8.
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

// object reads the object starting at s.pos, as walk describes.
func (s *scanner) object(fields []string, vars map[string]string, values []string) *Violation {
	var small [8]bool // request messages have a handful of fields
	seen := small[:]
	if len(fields) > len(small) {
		seen = make([]bool, len(fields))
	}
	var scratch [256]byte  // room to decode an escaped string without allocating
	var unknown *Violation // ReadJSON: the first unknown key, reported at the end

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
			v := &Violation{Field: name, Description: fmt.Sprintf("Invalid JSON payload received. Unknown name %q: Cannot find field.", name)}
			if values == nil || !s.skipScalar(scratch[:0]) {
				return v
			}
			if unknown == nil {
				v.ValuesRead = true
				unknown = v
			}
			if done, v := s.next(); done || v != nil {
				return cmpViolation(v, unknown)
			}
			continue
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
			if want, ok := vars[field]; ok && string(val) != want {
				return &Violation{Field: field, Description: fmt.Sprintf("Field %q in the request body does not match the value in the URL path.", field)}
			}
			if values != nil {
				values[i] = string(val)
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

		if done, v := s.next(); done || v != nil {
			return cmpViolation(v, unknown)
		}
	}
}

// next reads what follows a member: ',' (more to come) or '}' (done).
func (s *scanner) next() (done bool, v *Violation) {
	s.skipSpace()
	if s.eof() {
		return false, s.unexpected()
	}
	switch s.data[s.pos] {
	case ',':
		s.pos++
		s.skipSpace()
		return false, nil
	case '}':
		s.pos++
		return true, nil
	}
	return false, s.unexpected()
}

// cmpViolation is the object's verdict: a syntax error wins over an
// unknown key read past.
func cmpViolation(hard, unknown *Violation) *Violation {
	if hard != nil {
		return hard
	}
	return unknown
}

// skipScalar reads ':' and a scalar value of an unknown key; false when
// the value is not a well-formed scalar (an object or an array, which the
// single-level scanner does not walk, or a syntax error).
func (s *scanner) skipScalar(scratch []byte) bool {
	s.skipSpace()
	if s.eof() || s.data[s.pos] != ':' {
		return false
	}
	s.pos++
	s.skipSpace()
	if s.eof() {
		return false
	}
	switch c := s.data[s.pos]; {
	case c == '"':
		_, v := s.str(scratch)
		return v == nil
	case c == 't':
		return s.literal("true") == nil
	case c == 'f':
		return s.literal("false") == nil
	case c == 'n':
		return s.literal("null") == nil
	case c == '-' || '0' <= c && c <= '9':
		start := s.pos
		for !s.eof() && strings.IndexByte("+-.0123456789eE", s.data[s.pos]) >= 0 {
			s.pos++
		}
		return json.Valid(s.data[start:s.pos])
	}
	return false
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
