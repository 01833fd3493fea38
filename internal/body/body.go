// Package body reads a cancel request's message and decides whether it is
// the empty message Google's clients send.
//
// A REST cancel's body must be empty: zero bytes, JSON whitespace, {}, null,
// or an object holding only request fields whose values repeat the URL
// path's variables (Check). The gRPC-family doors carry the request message
// itself, and read its fields out of it: ReadProto for protobuf, ReadJSON
// for the $rpc door's JSON. Either way only the request's own string fields
// are accepted, each at most once.
//
// JSON goes through one hand-written, single-level scanner: it never
// recurses, never allocates for Check's accepted forms, and reports the
// first problem as a Violation fit for a google.rpc.BadRequest field
// violation.
package body

import (
	"fmt"
	"strings"
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
	// ValuesRead is set by ReadProto when the message is well formed but for
	// unknown fields: its known fields were read all the same.
	ValuesRead bool
}

var defaultFields = []string{"name"}

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
	fields := rules.Fields
	if len(fields) == 0 {
		fields = defaultFields
	}
	return walk(data, fields, rules.Vars, nil)
}

// startValues readies values to receive n fields' values.
func startValues(values []string, n int) {
	if len(values) != n {
		panic(fmt.Sprintf("body: %d values for %d fields", len(values), n))
	}
	clear(values)
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

// UnboundQuery is the violation for a query parameter that no field of the
// request takes: with `body: "*"` nothing binds to the query, so a `name`
// there is not the operation the path names, and Google refuses it.
func UnboundQuery(name string) *Violation {
	n := excerpt([]byte(name))
	return &Violation{Field: n, Description: fmt.Sprintf(
		"Invalid JSON payload received. Unknown name %q: Cannot bind query parameter. Field '%s' could not be found in request message.", n, n)}
}
