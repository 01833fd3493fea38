package body

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"google.golang.org/protobuf/encoding/protojson"
)

var (
	lroJSON       = []string{"name"}
	containerJSON = []string{"projectId", "zone", "operationId", "name"}
)

func TestReadJSON(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		fields []string
		// want are the values read when wantDesc is "", else the violation's
		// field and a substring of its description.
		want                []string
		wantField, wantDesc string
	}{
		{name: "zero bytes read as all fields absent", body: "", fields: containerJSON, want: []string{"", "", "", ""}},
		{name: "whitespace read as the empty message", body: " \t\r\n", fields: lroJSON, want: []string{""}},
		{name: "null read as the empty message", body: " null\n", fields: lroJSON, want: []string{""}},
		{name: "empty object read as the empty message", body: "{ }", fields: lroJSON, want: []string{""}},
		{name: "name read", body: `{"name": "operations/x"}`, fields: lroJSON, want: []string{"operations/x"}},
		{name: "escapes decoded", body: `{"n\u0061me":"operations\/x\u0041\n"}`, fields: lroJSON, want: []string{"operations/xA\n"}},
		{name: "surrogate pair decoded", body: `{"name":"operations/\ud83d\ude00"}`, fields: lroJSON, want: []string{"operations/😀"}},
		{name: "escaped value longer than the scratch decoded", body: `{"name":"` + strings.Repeat(`\u006f`, 300) + `"}`, fields: lroJSON, want: []string{strings.Repeat("o", 300)}},
		{name: "null name read as absent", body: `{"name":null}`, fields: lroJSON, want: []string{""}},
		{name: "container fields read in any order", body: `{"name":"n","zone":"us-central1-a","projectId":"p","operationId":"op-1"}`, fields: containerJSON, want: []string{"p", "us-central1-a", "op-1", "n"}},
		{name: "container fields absent read as empty", body: `{"operationId":"op-1"}`, fields: containerJSON, want: []string{"", "", "op-1", ""}},

		{name: "an unknown object value is not read past", body: `{"force":{"a":1},"name":"operations/x"}`, fields: lroJSON, wantField: "force", wantDesc: "Unknown name"},
		{name: "a syntax error after an unknown key wins", body: `{"force":1,"name":5}`, fields: lroJSON, wantField: "name", wantDesc: "expected a string"},
		{name: "unknown field refused, the name still read", body: `{"name":"operations/x","force":true}`, fields: lroJSON, wantField: "force", wantDesc: `Invalid JSON payload received. Unknown name "force": Cannot find field.`, want: []string{"operations/x"}},
		{name: "proto field name refused", body: `{"project_id":"p"}`, fields: containerJSON, wantField: "project_id", wantDesc: "Unknown name"},
		{name: "duplicate key refused", body: `{"name":"operations/x","name":"operations/y"}`, fields: lroJSON, wantField: "name", wantDesc: `Duplicate field "name"`},
		{name: "null then a value refused as duplicate", body: `{"name":null,"name":"operations/y"}`, fields: lroJSON, wantField: "name", wantDesc: "Duplicate"},
		{name: "number value refused", body: `{"name":1}`, fields: lroJSON, wantField: "name", wantDesc: "expected a string"},
		{name: "nested object refused", body: `{"name":{"name":"operations/x"}}`, fields: lroJSON, wantField: "name", wantDesc: "expected a string"},
		{name: "array refused", body: `[{"name":"operations/x"}]`, fields: lroJSON, wantDesc: "got an array"},
		{name: "string refused", body: `"operations/x"`, fields: lroJSON, wantDesc: "got a scalar"},
		{name: "second value refused", body: `{"name":"operations/x"} {}`, fields: lroJSON, wantDesc: "second JSON value at byte 24"},
		{name: "truncated object refused", body: `{"name":"operations/x"`, fields: lroJSON, wantDesc: "Unexpected end of input"},
		{name: "byte order mark refused", body: "\xEF\xBB\xBF{}", fields: lroJSON, wantDesc: "byte order mark"},
		{name: "invalid UTF-8 refused", body: "{\"name\":\"operations/\xff\"}", fields: lroJSON, wantDesc: "not valid UTF-8"},
		{name: "unpaired surrogate refused", body: `{"name":"\ud83d"}`, fields: lroJSON, wantDesc: "Unpaired UTF-16 surrogate"},
		{name: "body over MaxBytes refused", body: `{"name":"` + strings.Repeat("o", MaxBytes) + `"}`, fields: lroJSON, wantDesc: "larger than 4096 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			values := make([]string, len(tc.fields))
			for i := range values {
				values[i] = "stale"
			}
			v := ReadJSON([]byte(tc.body), tc.fields, values)
			checkRead(t, "ReadJSON", tc.body, v, values, readCase{tc.want, tc.wantField, tc.wantDesc})
		})
	}
}

func FuzzReadJSON(f *testing.F) {
	for _, s := range []string{
		"", " ", "{}", "null", `{"name":"operations/x"}`, `{"name":"operations\/x"}`, `{"name":"\ud83d\ude00"}`,
		`{"name":null}`, `{"zone":"z","projectId":null,"operationId":"o","name":"n"}`, `{"name":"a","name":"b"}`,
		`{"force":true}`, `{"name":5}`, `{}{}`, `[]`, "\xEF\xBB\xBF{}", `{"name":"\ud800"}`, `{"name":"` + strings.Repeat(`\"`, 200) + `"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		empty := len(bytes.Trim(data, " \t\r\n")) == 0 || string(bytes.Trim(data, " \t\r\n")) == "null"

		values := []string{""}
		v := ReadJSON(data, lroJSON, values)
		// One scanner, one verdict; only where Check stops at an unknown
		// key may ReadJSON read past it and report what it finds later.
		c := Check(data, "", Rules{})
		if (c == nil) != (v == nil) ||
			v != nil && !strings.Contains(c.Description, "Unknown name") && (c.Field != v.Field || c.Description != v.Description) {
			t.Fatalf("ReadJSON(%q) = %+v, Check = %+v: one scanner, one verdict", data, v, c)
		}
		switch {
		case v != nil && v.ValuesRead:
			var req longrunningpb.CancelOperationRequest
			if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(data, &req); err != nil || req.Name != values[0] {
				t.Fatalf("ReadJSON(%q) kept name %q past an unknown key; protojson reads %q, err %v", data, values[0], req.Name, err)
			}
		case v != nil:
			if err := sanitized(v.Description); err != nil {
				t.Fatalf("ReadJSON(%q) description %q: %v", data, v.Description, err)
			}
			if values[0] != "" {
				t.Fatalf("ReadJSON(%q) refused but left %q", data, values)
			}
		case empty:
			if values[0] != "" {
				t.Fatalf("ReadJSON(%q) read %q from the empty message", data, values)
			}
		default:
			var req longrunningpb.CancelOperationRequest
			if err := protojson.Unmarshal(data, &req); err != nil || req.Name != values[0] {
				t.Fatalf("ReadJSON(%q) read name %q; protojson reads %q, err %v", data, values[0], req.Name, err)
			}
		}

		values = make([]string, len(containerJSON))
		if v := ReadJSON(data, containerJSON, values); v == nil && !empty {
			var m map[string]*string
			if err := json.Unmarshal(data, &m); err != nil {
				t.Fatalf("ReadJSON(%q) accepted what encoding/json refuses: %v", data, err)
			}
			want := make([]string, len(containerJSON))
			for key, val := range m {
				i := slices.Index(containerJSON, key)
				if i < 0 {
					t.Fatalf("ReadJSON(%q) accepted key %q", data, key)
				}
				if val != nil {
					want[i] = *val
				}
			}
			if !slices.Equal(values, want) {
				t.Fatalf("ReadJSON(%q) read %q; encoding/json reads %q", data, values, want)
			}
		}
	})
}

func BenchmarkReadJSON(b *testing.B) {
	for _, tc := range []struct {
		name   string
		body   string
		fields []string
	}{
		{"empty", "", lroJSON},
		{"name", `{"name":"projects/p/locations/us-central1/operations/op-1"}`, lroJSON},
		{"container", `{"projectId":"p","zone":"us-central1-a","operationId":"op-1","name":"projects/p/locations/us-central1-a/operations/op-1"}`, containerJSON},
		{"refused", `{"name":"operations/x","force":true}`, lroJSON},
	} {
		b.Run(tc.name, func(b *testing.B) {
			data := []byte(tc.body)
			values := make([]string, len(tc.fields))
			b.ReportAllocs()
			for b.Loop() {
				ReadJSON(data, tc.fields, values)
			}
		})
	}
}
