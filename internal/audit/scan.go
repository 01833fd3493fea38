package audit

import (
	"bytes"
	"encoding/json"
	"errors"
)

// errNotObject is scanTop's answer to a line that is not one JSON object
// as far as it reads.
var errNotObject = errors.New("not a JSON object")

// scanTop calls fn with each top-level key of a JSON object (still quoted
// and escaped) and its value's raw bytes, until fn returns false. It reads
// only the structure (strings, nesting), not the values: it is how query
// reads a million lines a second, and json.Unmarshal reads what needs
// more. It does not validate what it skips.
func scanTop(line []byte, fn func(key, val []byte) bool) error {
	i := skipSpace(line, 0)
	if i >= len(line) || line[i] != '{' {
		return errNotObject
	}
	i = skipSpace(line, i+1)
	if i < len(line) && line[i] == '}' {
		return nil
	}
	for {
		if i >= len(line) || line[i] != '"' {
			return errNotObject
		}
		kEnd := skipString(line, i)
		if kEnd < 0 {
			return errNotObject
		}
		key := line[i:kEnd]
		i = skipSpace(line, kEnd)
		if i >= len(line) || line[i] != ':' {
			return errNotObject
		}
		i = skipSpace(line, i+1)
		vEnd := skipValue(line, i)
		if vEnd < 0 {
			return errNotObject
		}
		if !fn(key, line[i:vEnd]) {
			return nil
		}
		i = skipSpace(line, vEnd)
		if i >= len(line) {
			return errNotObject
		}
		switch line[i] {
		case ',':
			i = skipSpace(line, i+1)
		case '}':
			return nil
		default:
			return errNotObject
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i] ('"').
func skipString(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return -1
}

// skipValue returns the index after the value starting at b[i].
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				if j = skipString(b, j); j < 0 {
					return -1
				}
				j--
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	}
	j := i
	for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\n' {
		j++
	}
	if j == i {
		return -1
	}
	return j
}

// stringValue is a raw JSON string token's value; ok is false for a token
// that is not a string.
func stringValue(tok []byte) (string, bool) {
	if len(tok) < 2 || tok[0] != '"' {
		return "", false
	}
	if bytes.IndexByte(tok, '\\') < 0 {
		return string(tok[1 : len(tok)-1]), true
	}
	var s string
	if json.Unmarshal(tok, &s) != nil {
		return "", false
	}
	return s, true
}
