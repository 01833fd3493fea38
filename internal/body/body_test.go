package body

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"
)

var (
	nameOnly = Rules{Vars: map[string]string{"name": "operations/x"}}
	// container.projects.zones.operations.cancel: path
	// v1/projects/{projectId}/zones/{zone}/operations/{operationId}:cancel,
	// request CancelOperationRequest {name, operationId, projectId, zone}.
	container = Rules{
		Fields: []string{"name", "operationId", "projectId", "zone"},
		Vars:   map[string]string{"projectId": "p", "zone": "us-central1-a", "operationId": "op-1"},
	}
	strict = Rules{Strict: true, Vars: nameOnly.Vars}
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		encoding string
		rules    Rules
		// wantDesc is "" when the body is accepted, else a substring of the
		// violation's description.
		wantField, wantDesc string
	}{
		{name: "zero bytes accepted", body: ""},
		{name: "zero bytes accepted when strict", body: "", rules: strict},
		{name: "JSON whitespace accepted", body: " \t\r\n "},
		{name: "empty object accepted", body: "{}"},
		{name: "empty object with whitespace everywhere accepted", body: "\n { \t\r\n } \n"},
		{name: "null accepted", body: "null"},
		{name: "null with whitespace accepted", body: " null\n"},
		{name: "name equal to the path accepted", body: `{"name":"operations/x"}`, rules: nameOnly},
		{name: "name with escaped slash accepted", body: `{"name":"operations\/x"}`, rules: nameOnly},
		{name: "name with unicode escapes accepted", body: `{"n\u0061me" : "\u006fperations/\u0078"}`, rules: nameOnly},
		{name: "name with surrogate pair accepted", body: `{"name":"operations/\ud83d\ude00"}`, rules: Rules{Vars: map[string]string{"name": "operations/😀"}}},
		{name: "name with whitespace accepted", body: "{\n  \"name\": \"operations/x\"\n}\n", rules: nameOnly},
		{name: "null name accepted as unset", body: `{"name":null}`, rules: nameOnly},
		{name: "any name accepted when the path binds none", body: `{"name":"whatever"}`},
		{name: "identity encoding accepted", body: "{}", encoding: "identity"},
		{name: "identity encoding is case-insensitive", body: "{}", encoding: " IDENTITY "},
		{name: "listed fields equal to the path accepted", body: `{"projectId":"p","zone":"us-central1-a","operationId":"op-1","name":"anything"}`, rules: container},
		{name: "listed fields null accepted", body: `{"projectId":null,"zone":null}`, rules: container},

		{name: "unknown field refused", body: `{"force":true}`, rules: nameOnly, wantField: "force", wantDesc: `Unknown name "force": Cannot find field.`},
		{name: "unknown field after name refused", body: `{"name":"operations/x","force":true}`, rules: nameOnly, wantField: "force", wantDesc: `Unknown name "force"`},
		{name: "field outside Fields refused", body: `{"zone":"us-central1-a","force":1}`, rules: container, wantField: "force", wantDesc: "Cannot find field"},
		{name: "Fields default excludes container fields", body: `{"zone":"z"}`, rules: nameOnly, wantField: "zone", wantDesc: "Unknown name"},
		{name: "unknown field name is sanitized", body: `{"a\u0000\"\\` + strings.Repeat("b", 100) + `":1}`, wantField: "a???" + strings.Repeat("b", 36) + "...", wantDesc: `Unknown name "a???bbb`},
		{name: "name differing from the path refused", body: `{"name":"operations/y"}`, rules: nameOnly, wantField: "name", wantDesc: "does not match the value in the URL path"},
		{name: "name prefix of the path refused", body: `{"name":"operations/"}`, rules: nameOnly, wantField: "name", wantDesc: "does not match"},
		{name: "listed field differing from the path refused", body: `{"zone":"europe-west1-b"}`, rules: container, wantField: "zone", wantDesc: "does not match"},
		{name: "number value refused", body: `{"name":5}`, rules: nameOnly, wantField: "name", wantDesc: "expected a string"},
		{name: "boolean value refused", body: `{"name":true}`, rules: nameOnly, wantField: "name", wantDesc: "expected a string"},
		{name: "nested object refused", body: `{"name":{"name":"operations/x"}}`, rules: nameOnly, wantField: "name", wantDesc: "expected a string"},
		{name: "nested array refused", body: `{"name":["operations/x"]}`, rules: nameOnly, wantField: "name", wantDesc: "expected a string"},
		{name: "deep nesting refused without recursion", body: `{"name":` + strings.Repeat("[", 4000) + "}", wantField: "name", wantDesc: "expected a string"},
		{name: "duplicate key refused", body: `{"name":"operations/x","name":"operations/x"}`, rules: nameOnly, wantField: "name", wantDesc: `Duplicate field "name"`},
		{name: "duplicate key through an escape refused", body: `{"name":null,"n\u0061me":null}`, rules: nameOnly, wantField: "name", wantDesc: "Duplicate"},
		{name: "array refused", body: `[]`, wantDesc: "got an array"},
		{name: "array of an empty object refused", body: `[{}]`, wantDesc: "got an array"},
		{name: "string refused", body: `"operations/x"`, wantDesc: "got a scalar"},
		{name: "number refused", body: `0`, wantDesc: "got a scalar"},
		{name: "boolean refused", body: `false`, wantDesc: "got a scalar"},
		{name: "two objects refused", body: `{}{}`, wantDesc: "second JSON value at byte 2"},
		{name: "object then null refused", body: `{} null`, wantDesc: "second JSON value at byte 3"},
		{name: "null then object refused", body: "null\n{}", wantDesc: "second JSON value"},
		{name: "trailing garbage refused", body: `{}x`, wantDesc: `Unexpected token at byte 2: "x"`},
		{name: "trailing comma after object refused", body: `{},`, wantDesc: "Unexpected token"},
		{name: "null prefix refused", body: `nul`, wantDesc: "Unexpected token"},
		{name: "nullx refused", body: `nullx`, wantDesc: "Unexpected token at byte 4"},
		{name: "unterminated object refused", body: `{`, wantDesc: "Unexpected end of input"},
		{name: "unterminated member refused", body: `{"name":"operations/x"`, rules: nameOnly, wantDesc: "Unexpected end of input"},
		{name: "unterminated string refused", body: `{"name":"operations/x}`, wantDesc: "Unexpected end of input"},
		{name: "missing colon refused", body: `{"name" "x"}`, wantDesc: "Unexpected token"},
		{name: "missing value refused", body: `{"name":}`, wantDesc: "Unexpected token"},
		{name: "trailing comma in object refused", body: `{"name":null,}`, wantDesc: "Unexpected token"},
		{name: "single quotes refused", body: `{'name':'x'}`, wantDesc: "Unexpected token"},
		{name: "unquoted key refused", body: `{name:null}`, wantDesc: "Unexpected token"},
		{name: "raw control character in string refused", body: "{\"name\":\"a\tb\"}", wantDesc: "Unexpected token"},
		{name: "bad escape refused", body: `{"name":"\x41"}`, wantDesc: "Unexpected token"},
		{name: "short unicode escape refused", body: `{"name":"\u00"}`, wantDesc: "Unexpected token"},
		{name: "backslash at end refused", body: `{"name":"\`, wantDesc: "Unexpected end of input"},
		{name: "lone high surrogate refused", body: `{"name":"\ud800"}`, wantDesc: "Unpaired UTF-16 surrogate"},
		{name: "lone low surrogate refused", body: `{"name":"\udc00x"}`, wantDesc: "Unpaired UTF-16 surrogate"},
		{name: "two low surrogates refused", body: `{"name":"\udc00\udc00"}`, wantDesc: "Unpaired UTF-16 surrogate escape at byte 9"},
		{name: "two high surrogates refused", body: `{"name":"\ud800\ud800"}`, wantDesc: "Unpaired"},
		{name: "high surrogate before a non-surrogate refused", body: `{"name":"\ud800\u0041"}`, wantDesc: "Unpaired"},
		{name: "form feed is not JSON whitespace", body: "\f{}", wantDesc: "Unexpected token at byte 0"},
		{name: "UTF-8 BOM refused", body: "\xEF\xBB\xBF{}", wantDesc: "byte order mark"},
		{name: "invalid UTF-8 refused", body: "{\"name\":\"\xff\"}", wantDesc: "not valid UTF-8"},
		{name: "gzip encoding refused", body: "{}", encoding: "gzip", wantDesc: `Content-Encoding "gzip" is not supported`},
		{name: "gzip encoding refused with an empty body", body: "", encoding: "gzip", wantDesc: "not supported"},
		{name: "identity listed twice refused", body: "{}", encoding: "identity, identity", wantDesc: "not supported"},
		{name: "body over MaxBytes refused", body: "{" + strings.Repeat(" ", MaxBytes) + "}", wantDesc: "larger than 4096 bytes"},
		{name: "whitespace refused when strict", body: " ", rules: strict, wantDesc: "must be empty"},
		{name: "empty object refused when strict", body: "{}", rules: strict, wantDesc: "must be empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := Check([]byte(tc.body), tc.encoding, tc.rules)
			switch {
			case tc.wantDesc == "" && v != nil:
				t.Fatalf("Check(%q) = %+v, want accepted", tc.body, *v)
			case tc.wantDesc == "":
				return
			case v == nil:
				t.Fatalf("Check(%q) accepted, want violation %q", tc.body, tc.wantDesc)
			}
			if v.Field != tc.wantField || !strings.Contains(v.Description, tc.wantDesc) {
				t.Errorf("Check(%q) = field %q, %q; want field %q, description containing %q", tc.body, v.Field, v.Description, tc.wantField, tc.wantDesc)
			}
			if err := sanitized(v.Description); err != nil {
				t.Errorf("description %q: %v", v.Description, err)
			}
		})
	}
}

// sanitized reports a description that could carry more of a body than a
// short, printable excerpt.
func sanitized(desc string) error {
	if len(desc) > 200 {
		return fmt.Errorf("%d bytes long", len(desc))
	}
	for _, c := range []byte(desc) {
		if c < 0x20 || c > 0x7e {
			return fmt.Errorf("holds byte %#x", c)
		}
	}
	return nil
}

func TestTooLarge(t *testing.T) {
	v := TooLarge()
	if v.Field != "" || !strings.Contains(v.Description, "4096") {
		t.Errorf("TooLarge() = %+v", *v)
	}
}

func TestRead(t *testing.T) {
	tests := []struct {
		name          string
		r             io.Reader
		want          string
		wantTooLarge  bool
		wantErr       error
		wantRemaining int // bytes left unread in r
	}{
		{name: "nil reader is empty", r: nil},
		{name: "NoBody is empty", r: http.NoBody},
		{name: "empty reader", r: strings.NewReader("")},
		{name: "small body read whole", r: strings.NewReader("{}"), want: "{}"},
		{name: "one byte at a time", r: iotest.OneByteReader(strings.NewReader(`{"name":"operations/x"}`)), want: `{"name":"operations/x"}`},
		{name: "data with EOF", r: iotest.DataErrReader(strings.NewReader("null")), want: "null"},
		{name: "a body that fills the inline bytes", r: strings.NewReader(strings.Repeat("x", replayInline)), want: strings.Repeat("x", replayInline)},
		{name: "one byte past the inline bytes", r: iotest.HalfReader(strings.NewReader(strings.Repeat("y", replayInline+1))), want: strings.Repeat("y", replayInline+1)},
		{name: "exactly MaxBytes is not too large", r: strings.NewReader(strings.Repeat(" ", MaxBytes)), want: strings.Repeat(" ", MaxBytes)},
		{name: "MaxBytes+1 is too large", r: strings.NewReader(strings.Repeat(" ", MaxBytes+1)), want: strings.Repeat(" ", MaxBytes+1), wantTooLarge: true},
		{name: "rest of a large body is left unread", r: strings.NewReader(strings.Repeat(" ", 1<<20)), want: strings.Repeat(" ", MaxBytes+1), wantTooLarge: true, wantRemaining: 1<<20 - MaxBytes - 1},
		{name: "read error is returned with what was read", r: io.MultiReader(strings.NewReader("{"), iotest.ErrReader(io.ErrUnexpectedEOF)), want: "{", wantErr: io.ErrUnexpectedEOF},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			read, tooLarge, err := Read(tc.r)
			data := read.Bytes()
			if string(data) != tc.want || tooLarge != tc.wantTooLarge || !errors.Is(err, tc.wantErr) {
				t.Errorf("Read = %d bytes, %v, %v; want %d bytes, %v, %v", len(data), tooLarge, err, len(tc.want), tc.wantTooLarge, tc.wantErr)
			}
			if sr, ok := tc.r.(*strings.Reader); ok && sr.Len() != tc.wantRemaining {
				t.Errorf("%d bytes left unread, want %d", sr.Len(), tc.wantRemaining)
			}
			// What the upstream reads back is every byte taken, then EOF,
			// through Read and through WriteTo (io.Copy's way) alike.
			again, err := io.ReadAll(iotest.OneByteReader(read))
			if string(again) != tc.want || err != nil {
				t.Errorf("read back %d bytes, %v; want %d bytes", len(again), err, len(tc.want))
			}
			replay, _, _ := Read(strings.NewReader(tc.want))
			var sink bytes.Buffer
			if n, err := io.Copy(&sink, replay); sink.String() != tc.want || n != int64(len(tc.want)) || err != nil {
				t.Errorf("io.Copy of the Replay = %d bytes, %v; want %d bytes", n, err, len(tc.want))
			}
			if n, _ := replay.Read(make([]byte, 1)); n != 0 {
				t.Errorf("Read after io.Copy gave %d more bytes", n)
			}
		})
	}
}

var fuzzVars = map[string]string{"name": "operations/x", "zone": "z"}

func FuzzCheck(f *testing.F) {
	for _, s := range []string{
		"", " ", "{}", "null", `{"name":"operations/x"}`, `{"name":"operations\/x"}`, `{"zone":"z","projectId":null}`,
		`{"force":true}`, `{"name":"y"}`, `{}{}`, `[]`, "\xEF\xBB\xBF{}", `{"name":"\ud83d\ude00"}`, `{"name":null,"name":null}`,
	} {
		f.Add([]byte(s), false, false, "")
	}
	f.Add([]byte("{}"), true, false, "gzip")
	f.Add([]byte("{}"), false, true, "Identity")
	f.Fuzz(func(t *testing.T, data []byte, strictRules, withFields bool, encoding string) {
		rules := Rules{Strict: strictRules, Vars: fuzzVars}
		if withFields {
			rules.Fields = []string{"name", "operationId", "projectId", "zone"}
		}
		if v := Check(data, encoding, rules); v == nil {
			if err := acceptable(data, encoding, rules); err != nil {
				t.Fatalf("Check(%q, %q) accepted a body that is not an empty message: %v", data, encoding, err)
			}
		} else if err := sanitized(v.Description); err != nil {
			t.Fatalf("Check(%q) description %q: %v", data, v.Description, err)
		}

		long := bytes.Repeat(data, MaxBytes/max(len(data), 1)+2)
		read, tooLarge, err := Read(iotest.HalfReader(bytes.NewReader(long)))
		got := read.Bytes()
		if err != nil || len(got) > MaxBytes+1 || tooLarge != (len(long) > MaxBytes) || !bytes.HasPrefix(long, got) {
			t.Fatalf("Read of %d bytes = %d bytes, tooLarge %v, err %v", len(long), len(got), tooLarge, err)
		}
	})
}

// acceptable is the fuzz oracle: it checks with encoding/json that data is
// one of the empty-message forms Check may accept.
func acceptable(data []byte, encoding string, rules Rules) error {
	if e := strings.ToLower(strings.TrimSpace(encoding)); e != "" && e != "identity" {
		return fmt.Errorf("content encoding %q", encoding)
	}
	if len(data) > MaxBytes {
		return fmt.Errorf("%d bytes", len(data))
	}
	if rules.Strict && len(data) > 0 {
		return errors.New("not empty under strict")
	}
	if len(bytes.Trim(data, " \t\r\n")) == 0 {
		return nil
	}
	if !json.Valid(data) {
		return errors.New("not one valid JSON value")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil || tok == nil {
		return err
	}
	if tok != json.Delim('{') {
		return fmt.Errorf("top-level %v", tok)
	}
	allowed := rules.Fields
	if len(allowed) == 0 {
		allowed = []string{"name"}
	}
	seen := map[string]bool{}
	for dec.More() {
		kt, _ := dec.Token()
		key := kt.(string)
		if !strings.Contains("\x00"+strings.Join(allowed, "\x00")+"\x00", "\x00"+key+"\x00") || seen[key] {
			return fmt.Errorf("field %q not allowed or repeated", key)
		}
		seen[key] = true
		vt, _ := dec.Token()
		switch v := vt.(type) {
		case nil:
		case string:
			if want, ok := rules.Vars[key]; ok && v != want {
				return fmt.Errorf("field %q = %q, path says %q", key, v, want)
			}
		default:
			return fmt.Errorf("field %q holds %v", key, vt)
		}
	}
	return nil
}

func BenchmarkCheck(b *testing.B) {
	for _, tc := range []struct{ name, body string }{
		{"empty", ""},
		{"{}", "{}"},
		{"name", `{"name":"operations/x"}`},
		{"refused", `{"name":"operations/x","force":true}`},
	} {
		b.Run(tc.name, func(b *testing.B) {
			data := []byte(tc.body)
			b.ReportAllocs()
			for b.Loop() {
				Check(data, "", nameOnly)
			}
		})
	}
}

func BenchmarkRead(b *testing.B) {
	body := []byte(`{"name":"operations/x"}`)
	r := bytes.NewReader(body)
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(body)
		if _, _, err := Read(r); err != nil {
			b.Fatal(err)
		}
	}
}

// Take gives a door the body to judge and the upstream the same bytes;
// a body that cannot be judged is a violation and is not put back.
func TestTake(t *testing.T) {
	r := httptest.NewRequest("POST", "/v1/operations/x:cancel", strings.NewReader(`{"name":"operations/x"}`))
	data, v := Take(r)
	if v != nil || string(data) != `{"name":"operations/x"}` {
		t.Fatalf("Take = %q, %v", data, v)
	}
	if again, err := io.ReadAll(r.Body); err != nil || string(again) != `{"name":"operations/x"}` {
		t.Errorf("upstream reads %q, %v; want the same bytes", again, err)
	}
	for _, tc := range []struct {
		name string
		body io.Reader
		want string
	}{
		{"too large", strings.NewReader(strings.Repeat(" ", MaxBytes+1)), TooLarge().Description},
		{"unreadable", io.MultiReader(strings.NewReader("{"), iotest.ErrReader(io.ErrUnexpectedEOF)), "The request body could not be read."},
	} {
		r := httptest.NewRequest("POST", "/", nil)
		r.Body = io.NopCloser(tc.body)
		original := r.Body
		if data, v := Take(r); v == nil || v.Description != tc.want || data != nil || r.Body != original {
			t.Errorf("%s: Take = %q, %v; want %q and the body left as it was", tc.name, data, v, tc.want)
		}
	}
}
