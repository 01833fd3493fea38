package body

import (
	"bytes"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// The request messages of the gRPC doors, field by field.
var (
	// google.longrunning.CancelOperationRequest.
	lroProto = []ProtoField{{1, "name"}}
	// google.container.v1.CancelOperationRequest.
	containerProto = []ProtoField{{1, "projectId"}, {2, "zone"}, {3, "operationId"}, {4, "name"}}
	// google.cloud.sql.v1.SqlOperationsCancelRequest.
	sqlProto = []ProtoField{{1, "operation"}, {2, "project"}}
)

// pb builds a message from its fields: a string appends a length-delimited
// value to the tag before it, a protowire.Number appends the tag of a
// length-delimited field, and []byte is appended as it is.
func pb(parts ...any) []byte {
	var b []byte
	for _, p := range parts {
		switch p := p.(type) {
		case protowire.Number:
			b = protowire.AppendTag(b, p, protowire.BytesType)
		case string:
			b = protowire.AppendString(b, p)
		case []byte:
			b = append(b, p...)
		default:
			panic("pb: unexpected part")
		}
	}
	return b
}

func tag(num protowire.Number, typ protowire.Type) []byte {
	return protowire.AppendTag(nil, num, typ)
}

func marshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReadProto(t *testing.T) {
	tests := []struct {
		name   string
		msg    []byte
		fields []ProtoField
		// want are the values read when wantDesc is "", else the violation's
		// field and a substring of its description.
		want                []string
		wantField, wantDesc string
	}{
		{name: "empty message read as all fields absent", msg: nil, fields: containerProto, want: []string{"", "", "", ""}},
		{name: "what Google's client marshals is read", msg: marshal(t, &longrunningpb.CancelOperationRequest{Name: "operations/x"}), fields: lroProto, want: []string{"operations/x"}},
		{name: "empty CancelOperationRequest is the empty message", msg: marshal(t, &longrunningpb.CancelOperationRequest{}), fields: lroProto, want: []string{""}},
		{name: "a field sent empty reads as empty", msg: pb(protowire.Number(1), ""), fields: lroProto, want: []string{""}},
		{name: "multi-byte UTF-8 read", msg: pb(protowire.Number(1), "operations/😀"), fields: lroProto, want: []string{"operations/😀"}},
		{name: "container fields read in any order", msg: pb(protowire.Number(4), "n", protowire.Number(2), "us-central1-a", protowire.Number(1), "p", protowire.Number(3), "op-1"), fields: containerProto, want: []string{"p", "us-central1-a", "op-1", "n"}},
		{name: "container fields absent read as empty", msg: pb(protowire.Number(3), "op-1"), fields: containerProto, want: []string{"", "", "op-1", ""}},
		{name: "sql operation and project read", msg: pb(protowire.Number(1), "op", protowire.Number(2), "proj"), fields: sqlProto, want: []string{"op", "proj"}},
		{name: "non-minimal tag varint read as proto parsers do", msg: pb([]byte{0x8a, 0x00}, "operations/x"), fields: lroProto, want: []string{"operations/x"}},
		{name: "non-minimal length varint read as proto parsers do", msg: pb(tag(1, protowire.BytesType), []byte{0x81, 0x80, 0x00, 'x'}), fields: lroProto, want: []string{"x"}},
		{name: "value holding a long name read", msg: pb(protowire.Number(1), strings.Repeat("o", 300)), fields: lroProto, want: []string{strings.Repeat("o", 300)}},

		{name: "unknown field refused by number", msg: pb(tag(2, protowire.VarintType), []byte{1}), fields: lroProto, wantDesc: "Invalid proto payload received. Unknown field number 2: Cannot find field."},
		{name: "unknown field after the name refused, the name still read", msg: pb(protowire.Number(1), "operations/x", protowire.Number(7), "force"), fields: lroProto, wantDesc: "Unknown field number 7", want: []string{"operations/x"}},
		{name: "container's name field unknown to longrunning", msg: pb(protowire.Number(4), "operations/x"), fields: lroProto, wantDesc: "Unknown field number 4"},
		{name: "field in the reserved range unknown", msg: pb(protowire.Number(19000), "x"), fields: lroProto, wantDesc: "Unknown field number 19000"},
		{name: "largest field number unknown", msg: pb(protowire.Number(protowire.MaxValidNumber), "x"), fields: lroProto, wantDesc: "Unknown field number 536870911"},
		{name: "unknown group refused", msg: protowire.AppendGroup(tag(9, protowire.StartGroupType), 9, nil), fields: lroProto, wantDesc: "Unknown field number 9"},
		{name: "name as a varint refused", msg: pb(tag(1, protowire.VarintType), []byte{5}), fields: lroProto, wantField: "name", wantDesc: `Invalid value at "name" (TYPE_STRING): expected a length-delimited string, got wire type 0 (varint).`},
		{name: "name as fixed32 refused", msg: protowire.AppendFixed32(tag(1, protowire.Fixed32Type), 5), fields: lroProto, wantField: "name", wantDesc: "wire type 5 (fixed32)"},
		{name: "name as fixed64 refused", msg: protowire.AppendFixed64(tag(1, protowire.Fixed64Type), 5), fields: lroProto, wantField: "name", wantDesc: "wire type 1 (fixed64)"},
		{name: "name as a group refused", msg: protowire.AppendGroup(tag(1, protowire.StartGroupType), 1, nil), fields: lroProto, wantField: "name", wantDesc: "wire type 3 (start group)"},
		{name: "stray end group refused", msg: tag(1, protowire.EndGroupType), fields: lroProto, wantField: "name", wantDesc: "wire type 4 (end group)"},
		{name: "reserved wire type refused", msg: pb([]byte{1<<3 | 7}, "x"), fields: lroProto, wantField: "name", wantDesc: "wire type 7 (reserved)"},
		{name: "name sent twice refused", msg: pb(protowire.Number(1), "operations/x", protowire.Number(1), "operations/x"), fields: lroProto, wantField: "name", wantDesc: `Invalid proto payload received. Duplicate field "name" (number 1).`},
		{name: "empty name then another refused", msg: pb(protowire.Number(1), "", protowire.Number(1), "operations/y"), fields: lroProto, wantField: "name", wantDesc: "Duplicate field"},
		{name: "container zone sent twice refused", msg: pb(protowire.Number(2), "a", protowire.Number(4), "n", protowire.Number(2), "b"), fields: containerProto, wantField: "zone", wantDesc: `Duplicate field "zone" (number 2)`},
		{name: "invalid UTF-8 refused", msg: pb(protowire.Number(1), "operations/\xff"), fields: lroProto, wantField: "name", wantDesc: `Invalid value at "name" (TYPE_STRING): not valid UTF-8.`},
		{name: "UTF-8-encoded surrogate refused", msg: pb(protowire.Number(2), "\xed\xa0\x80"), fields: sqlProto, wantField: "project", wantDesc: "not valid UTF-8"},
		{name: "field number 0 refused", msg: pb(tag(0, protowire.BytesType), "x"), fields: lroProto, wantDesc: "Invalid proto payload received. Invalid field number 0 at byte 0."},
		{name: "field number past the largest refused", msg: pb(tag(protowire.MaxValidNumber+1, protowire.BytesType), "x"), fields: lroProto, wantDesc: "Invalid field number 536870912 at byte 0."},
		{name: "field number past int32 refused", msg: protowire.AppendVarint(nil, 1<<40|2), fields: lroProto, wantDesc: "Invalid field number 137438953472 at byte 0."},
		{name: "zero byte after the name refused", msg: pb(protowire.Number(1), "operations/x", []byte{0}), fields: lroProto, wantDesc: "Invalid field number 0 at byte 14."},
		{name: "truncated tag refused", msg: []byte{0x8a}, fields: lroProto, wantDesc: "Invalid proto payload received. Unexpected end of input."},
		{name: "overlong tag varint refused", msg: bytes.Repeat([]byte{0xff}, 11), fields: lroProto, wantDesc: "Malformed varint at byte 0."},
		{name: "tag without a length refused", msg: tag(1, protowire.BytesType), fields: lroProto, wantField: "name", wantDesc: "Unexpected end of input."},
		{name: "length past the end refused", msg: pb(tag(1, protowire.BytesType), []byte{5, 'a'}), fields: lroProto, wantField: "name", wantDesc: "Unexpected end of input."},
		{name: "huge length refused", msg: pb(tag(1, protowire.BytesType), protowire.AppendVarint(nil, 1<<63)), fields: lroProto, wantField: "name", wantDesc: "Unexpected end of input."},
		{name: "overlong length varint refused", msg: pb(tag(1, protowire.BytesType), bytes.Repeat([]byte{0x80}, 10), []byte{1}), fields: lroProto, wantField: "name", wantDesc: "Malformed varint at byte 1."},
		{name: "message over MaxBytes refused", msg: pb(protowire.Number(1), strings.Repeat("o", MaxBytes)), fields: lroProto, wantDesc: "larger than 4096 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			values := make([]string, len(tc.fields))
			for i := range values {
				values[i] = "stale"
			}
			v := ReadProto(tc.msg, tc.fields, values)
			checkRead(t, "ReadProto", tc.msg, v, values, readCase{tc.want, tc.wantField, tc.wantDesc})
		})
	}
}

func FuzzReadProto(f *testing.F) {
	for _, m := range []proto.Message{
		&longrunningpb.CancelOperationRequest{},
		&longrunningpb.CancelOperationRequest{Name: "operations/x"},
		&longrunningpb.CancelOperationRequest{Name: "projects/p/locations/l/operations/😀"},
		&longrunningpb.GetOperationRequest{Name: "operations/x"},
		&longrunningpb.ListOperationsRequest{Name: "operations", Filter: "done", PageSize: 5},
	} {
		f.Add(marshal(f, m))
	}
	for _, b := range [][]byte{
		pb(protowire.Number(1), "a", protowire.Number(1), "b"),
		pb(protowire.Number(4), "n", protowire.Number(2), "z", protowire.Number(1), "p", protowire.Number(3), "o"),
		pb(protowire.Number(1), "\xff"),
		pb([]byte{0x8a, 0x00}, "x"),
		pb(tag(1, protowire.VarintType), []byte{1}),
		protowire.AppendGroup(tag(5, protowire.StartGroupType), 5, pb(protowire.Number(1), "x")),
		{0x0a}, {0x0a, 0x05, 'a'}, {0x02, 0x00}, {0x8a}, bytes.Repeat([]byte{0xff}, 11),
	} {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		records := walkProto(msg)
		for _, fields := range [][]ProtoField{lroProto, containerProto} {
			values := make([]string, len(fields))
			v := ReadProto(msg, fields, values)
			if v == nil {
				acceptedProto(t, msg, fields, values, records)
			} else {
				refusedProto(t, msg, fields, v, records)
				if v.ValuesRead {
					keptProto(t, msg, fields, v, values)
				} else if !slices.Equal(values, make([]string, len(values))) {
					t.Fatalf("ReadProto(%q) refused but left %q", msg, values)
				}
			}
		}

		// Every CancelOperationRequest a protobuf parser reads in full and
		// without a repeated name is read.
		var req longrunningpb.CancelOperationRequest
		names := 0
		for _, r := range records {
			if r.num == 1 {
				names++
			}
		}
		if len(msg) <= MaxBytes && proto.Unmarshal(msg, &req) == nil && len(req.ProtoReflect().GetUnknown()) == 0 && names <= 1 {
			values := []string{""}
			if v := ReadProto(msg, lroProto, values); v != nil || values[0] != req.Name {
				t.Fatalf("proto.Unmarshal(%q) reads name %q, ReadProto = %q, %+v", msg, req.Name, values[0], v)
			}
		}
	})
}

// record is one field as a protobuf parser walks msg: its tag, and its value
// when well-formed (end < 0 otherwise).
type record struct {
	num        protowire.Number
	typ        protowire.Type
	start, end int
	val        []byte // the value of a length-delimited field
}

// walkProto is the fuzz oracle's own walk of msg, by protowire.ConsumeField:
// every field from the start up to the first that cannot be read.
func walkProto(msg []byte) []record {
	var records []record
	for pos := 0; pos < len(msg); {
		num, typ, n := protowire.ConsumeTag(msg[pos:])
		if n < 0 {
			break
		}
		r := record{num: num, typ: typ, start: pos, end: -1}
		if _, _, m := protowire.ConsumeField(msg[pos:]); m >= 0 {
			r.end = pos + m
			if typ == protowire.BytesType {
				r.val, _ = protowire.ConsumeBytes(msg[pos+n:])
			}
		}
		records = append(records, r)
		if r.end < 0 {
			break
		}
		pos = r.end
	}
	return records
}

// acceptedProto checks that msg, which ReadProto accepted with values, holds
// exactly those string fields and nothing else.
func acceptedProto(t *testing.T, msg []byte, fields []ProtoField, values []string, records []record) {
	t.Helper()
	want := make([]string, len(fields))
	seen := map[protowire.Number]bool{}
	end := 0
	for _, r := range records {
		i := protoIndex(fields, r.num)
		if i < 0 || r.typ != protowire.BytesType || r.end < 0 || seen[r.num] || !utf8.Valid(r.val) {
			t.Fatalf("ReadProto(%q) accepted a message holding field %d, wire type %d", msg, r.num, r.typ)
		}
		seen[r.num] = true
		want[i] = string(r.val)
		end = r.end
	}
	if end != len(msg) {
		t.Fatalf("ReadProto(%q) accepted a message whose bytes from %d are no field", msg, end)
	}
	if !slices.Equal(values, want) {
		t.Fatalf("ReadProto(%q) read %q, the message holds %q", msg, values, want)
	}
	if len(fields) == 1 && fields[0].Number == 1 {
		var req longrunningpb.CancelOperationRequest
		if err := proto.Unmarshal(msg, &req); err != nil || req.Name != values[0] || len(req.ProtoReflect().GetUnknown()) != 0 {
			t.Fatalf("ReadProto(%q) read name %q; proto.Unmarshal reads %q, unknown %q, err %v", msg, values[0], req.Name, req.ProtoReflect().GetUnknown(), err)
		}
	}
}

// refusedProto checks that a refusal for an unknown, repeated or non-UTF-8
// field names a field msg really holds so.
func refusedProto(t *testing.T, msg []byte, fields []ProtoField, v *Violation, records []record) {
	t.Helper()
	if err := sanitized(v.Description); err != nil {
		t.Fatalf("ReadProto(%q) description %q: %v", msg, v.Description, err)
	}
	lro := len(fields) == 1 && fields[0].Number == 1
	switch {
	case strings.Contains(v.Description, "Unknown field number "):
		_, after, _ := strings.Cut(v.Description, "Unknown field number ")
		digits, _, _ := strings.Cut(after, ":")
		n, err := strconv.Atoi(digits)
		num := protowire.Number(n)
		if err != nil || protoIndex(fields, num) >= 0 {
			t.Fatalf("ReadProto(%q) = %q, naming a known field", msg, v.Description)
		}
		for _, r := range records {
			if r.num != num {
				continue
			}
			if lro && r.end >= 0 {
				var req longrunningpb.CancelOperationRequest
				if err := proto.Unmarshal(msg[:r.end], &req); err != nil || len(req.ProtoReflect().GetUnknown()) == 0 {
					t.Fatalf("ReadProto(%q) = %q, but proto.Unmarshal finds no unknown field (err %v)", msg, v.Description, err)
				}
			}
			return
		}
		t.Fatalf("ReadProto(%q) = %q, but the message holds no field %d", msg, v.Description, num)
	case strings.Contains(v.Description, "Duplicate field"):
		i := protoIndexByName(fields, v.Field)
		count := 0
		for _, r := range records {
			if i >= 0 && r.num == fields[i].Number {
				count++
			}
		}
		if count < 2 {
			t.Fatalf("ReadProto(%q) = %q, but the message holds field %q %d times", msg, v.Description, v.Field, count)
		}
	case strings.Contains(v.Description, "UTF-8"):
		i := protoIndexByName(fields, v.Field)
		for _, r := range records {
			if i < 0 || r.num != fields[i].Number || r.typ != protowire.BytesType || r.end < 0 || utf8.Valid(r.val) {
				continue
			}
			if lro && proto.Unmarshal(msg[:r.end], new(longrunningpb.CancelOperationRequest)) == nil {
				t.Fatalf("ReadProto(%q) = %q, but proto.Unmarshal reads it", msg, v.Description)
			}
			return
		}
		t.Fatalf("ReadProto(%q) = %q, but field %q is valid UTF-8", msg, v.Description, v.Field)
	}
}

func protoIndexByName(fields []ProtoField, name string) int {
	for i, f := range fields {
		if f.Name == name {
			return i
		}
	}
	return -1
}

func BenchmarkReadProto(b *testing.B) {
	for _, tc := range []struct {
		name   string
		msg    []byte
		fields []ProtoField
	}{
		{"empty", nil, lroProto},
		{"name", marshal(b, &longrunningpb.CancelOperationRequest{Name: "projects/p/locations/us-central1/operations/op-1"}), lroProto},
		{"container", pb(protowire.Number(1), "p", protowire.Number(2), "us-central1-a", protowire.Number(3), "op-1", protowire.Number(4), "projects/p/locations/us-central1-a/operations/op-1"), containerProto},
		{"refused", pb(protowire.Number(1), "operations/x", protowire.Number(7), "force"), lroProto},
	} {
		b.Run(tc.name, func(b *testing.B) {
			values := make([]string, len(tc.fields))
			b.ReportAllocs()
			for b.Loop() {
				ReadProto(tc.msg, tc.fields, values)
			}
		})
	}
}

// keptProto checks a refusal that kept the known fields: the message is
// well formed for a protobuf parser, which reads the same name and sees
// unknown fields.
func keptProto(t *testing.T, msg []byte, fields []ProtoField, v *Violation, values []string) {
	t.Helper()
	if !strings.Contains(v.Description, "Unknown field number") {
		t.Fatalf("ReadProto(%q) kept values after %q", msg, v.Description)
	}
	var req longrunningpb.CancelOperationRequest
	if err := proto.Unmarshal(msg, &req); err != nil {
		t.Fatalf("ReadProto(%q) kept values of a message protobuf cannot read: %v", msg, err)
	}
	if len(req.ProtoReflect().GetUnknown()) == 0 {
		t.Fatalf("ReadProto(%q) reported an unknown field protobuf does not see", msg)
	}
	if fields[0].Number == 1 && req.Name != values[0] {
		t.Fatalf("ReadProto(%q) kept name %q, protobuf reads %q", msg, values[0], req.Name)
	}
}

// readCase is what one case of a field reader's table expects.
type readCase struct {
	want                []string // the values read, or kept past an unknown field
	wantField, wantDesc string   // the violation; wantDesc "" for none
}

// checkRead asserts what a field reader (ReadJSON, ReadProto) made of
// input: the values it read, or the violation, its sanitized description,
// and the values it leaves: none, or the known fields past an unknown one.
func checkRead(t *testing.T, reader string, input any, v *Violation, values []string, tc readCase) {
	t.Helper()
	if tc.wantDesc == "" {
		if v != nil {
			t.Fatalf("%s(%q) = %+v, want %q", reader, input, *v, tc.want)
		}
		if !slices.Equal(values, tc.want) {
			t.Errorf("%s(%q) read %q, want %q", reader, input, values, tc.want)
		}
		return
	}
	if v == nil {
		t.Fatalf("%s(%q) read %q, want violation %q", reader, input, values, tc.wantDesc)
	}
	if v.Field != tc.wantField || !strings.Contains(v.Description, tc.wantDesc) {
		t.Errorf("%s(%q) = field %q, %q; want field %q, description containing %q", reader, input, v.Field, v.Description, tc.wantField, tc.wantDesc)
	}
	if err := sanitized(v.Description); err != nil {
		t.Errorf("description %q: %v", v.Description, err)
	}
	want := make([]string, len(values))
	if v.ValuesRead && tc.want != nil {
		want = tc.want
	}
	if !slices.Equal(values, want) {
		t.Errorf("values after a refusal = %q, want %q", values, want)
	}
}
