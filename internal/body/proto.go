package body

import (
	"fmt"
	"io"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// ProtoField is a string field of a request message.
type ProtoField struct {
	// Number is the field's number in its .proto file.
	Number protowire.Number
	// Name is the field's JSON name, used in violations (e.g. "name",
	// "projectId").
	Name string
}

// ReadProto reads msg, a serialized request message whose fields are all
// strings, into values: values[i] is the value of fields[i], "" when absent.
// values must have len(fields). Zero bytes are the empty message.
//
// It is stricter than a protobuf parser, which keeps unknown fields and lets
// the last of a repeated scalar win: here a field outside fields, a field
// sent twice (the gateway would judge one value while Google acts on
// another), a wire type other than length-delimited, a string that is not
// UTF-8, and any malformed or truncated input are refused, as is a msg
// longer than MaxBytes. On a Violation every value is "", so nothing
// half-read is ever audited or matched; except for unknown fields in an
// otherwise well-formed message, where the Violation's ValuesRead is set and
// values hold the known fields: the message is refused all the same, but the
// caller can tell which operation it meant.
func ReadProto(msg []byte, fields []ProtoField, values []string) *Violation {
	startValues(values, len(fields))
	v := readProto(msg, fields, values)
	if v != nil && !v.ValuesRead {
		clear(values)
	}
	return v
}

func readProto(msg []byte, fields []ProtoField, values []string) *Violation {
	if len(msg) > MaxBytes {
		return TooLarge()
	}
	var unknown *Violation // the first unknown field, reported once the rest is read
	var small [8]bool      // request messages have a handful of fields
	seen := small[:]
	if len(fields) > len(small) {
		seen = make([]bool, len(fields))
	}
	for pos := 0; pos < len(msg); {
		tag, n := protowire.ConsumeVarint(msg[pos:])
		if n < 0 {
			return malformedVarint("", n, pos)
		}
		num, typ := protowire.DecodeTag(tag)
		if !num.IsValid() {
			return invalidProto("", fmt.Sprintf("Invalid field number %d at byte %d.", tag>>3, pos))
		}
		i := protoIndex(fields, num)
		if i < 0 {
			// Read on past it, so that the known fields still name the
			// operation the caller meant; anything malformed later wins.
			if typ == protowire.StartGroupType || typ == protowire.EndGroupType {
				// No request message has groups: nothing to read past.
				return invalidProto("", fmt.Sprintf("Unknown field number %d: Cannot find field.", num))
			}
			skip := protowire.ConsumeFieldValue(num, typ, msg[pos+n:])
			if skip < 0 {
				return malformedVarint("", skip, pos+n)
			}
			if unknown == nil {
				unknown = invalidProto("", fmt.Sprintf("Unknown field number %d: Cannot find field.", num))
				unknown.ValuesRead = true
			}
			pos += n + skip
			continue
		}
		field := fields[i].Name
		if typ != protowire.BytesType {
			return invalidProto(field, fmt.Sprintf("Invalid value at %q (TYPE_STRING): expected a length-delimited string, got wire type %d (%s).", field, typ, wireTypeNames[typ&7]))
		}
		if seen[i] {
			return invalidProto(field, fmt.Sprintf("Duplicate field %q (number %d).", field, num))
		}
		seen[i] = true
		pos += n

		val, n := protowire.ConsumeBytes(msg[pos:])
		if n < 0 {
			return malformedVarint(field, n, pos)
		}
		if !utf8.Valid(val) {
			return invalidProto(field, fmt.Sprintf("Invalid value at %q (TYPE_STRING): not valid UTF-8.", field))
		}
		values[i] = string(val)
		pos += n
	}
	return unknown
}

// wireTypeNames names the wire types a tag's three low bits can hold.
var wireTypeNames = [8]string{"varint", "fixed64", "length-delimited", "start group", "end group", "fixed32", "reserved", "reserved"}

func protoIndex(fields []ProtoField, num protowire.Number) int {
	for i, f := range fields {
		if f.Number == num {
			return i
		}
	}
	return -1
}

// malformedVarint describes protowire's error code n for the varint (a tag
// or a length) at byte pos, or for the bytes its length promised.
func malformedVarint(field string, n, pos int) *Violation {
	if protowire.ParseError(n) == io.ErrUnexpectedEOF {
		return invalidProto(field, "Unexpected end of input.")
	}
	return invalidProto(field, fmt.Sprintf("Malformed varint at byte %d.", pos))
}

func invalidProto(field, problem string) *Violation {
	return &Violation{Field: field, Description: "Invalid proto payload received. " + problem}
}
