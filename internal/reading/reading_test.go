package reading_test

import (
	"encoding/base64"
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/lro-cancel/lro_cancel/internal/catalog"
	"github.com/lro-cancel/lro_cancel/internal/door/batch/wire"
	"github.com/lro-cancel/lro_cancel/internal/reading"
)

const vault = "vault.googleapis.com"

func request(t testing.TB, method, host, target string, header ...string) *http.Request {
	t.Helper()
	u, err := url.ParseRequestURI(target)
	if err != nil {
		t.Fatalf("target %q: %v", target, err)
	}
	r := &http.Request{Method: method, Host: host, URL: u, Header: http.Header{}}
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Add(header[i], header[i+1])
	}
	return r
}

// want is what a reading must say: its door, its refusal and, for a REST
// cancel, the method it is.
type want struct {
	door    reading.Door
	refusal reading.Refusal
	method  string
}

func TestReadTakesEveryReadingGooglesFrontEndCouldMake(t *testing.T) {
	var (
		none      = want{}
		vaultC    = want{door: reading.REST, method: "vault.operations.cancel"}
		unlisted  = want{door: reading.REST, method: "unlisted"}
		batch     = want{door: reading.Batch}
		override  = want{door: reading.REST, refusal: reading.MethodOverride}
		twoWays   = want{door: reading.REST, refusal: reading.AmbiguousRequest}
		twoBatch  = want{door: reading.Batch, refusal: reading.AmbiguousRequest}
		pathTwice = want{door: reading.REST, refusal: reading.AmbiguousPath}
	)
	tests := []struct {
		name, method, host, target string
		header                     []string
		want                       want
	}{
		// Method: the request's, the override headers, $httpMethod.
		{"a plain cancel", "POST", vault, "/v1/operations/x:cancel", nil, vaultC},
		{"a GET of the cancel path is none", "GET", vault, "/v1/operations/x:cancel", nil, none},
		{"a GET that an override header makes a cancel", "GET", vault, "/v1/operations/x:cancel", []string{"X-HTTP-Method-Override", "POST"}, override},
		{"a GET that $httpMethod makes a cancel", "GET", vault, "/v1/operations/x:cancel?$httpMethod=POST", nil, override},
		{"a GET that %24httpMethod makes a cancel", "GET", vault, "/v1/operations/x:cancel?%24httpMethod=POST", nil, override},
		{"$httpMethod in another letter case", "GET", vault, "/v1/operations/x:cancel?$HTTPMETHOD=POST", nil, twoWays},
		{"$httpMethod after a ';'", "GET", vault, "/v1/operations/x:cancel?a=b;$httpMethod=POST", nil, twoWays},
		{"an override given twice", "POST", vault, "/v1/operations/x:cancel", []string{"X-HTTP-Method-Override", "POST", "X-HTTP-Method-Override", "POST"}, twoWays},
		{"an override as a list", "GET", vault, "/v1/operations/x:cancel", []string{"X-HTTP-Method", "POST, GET"}, twoWays},
		{"two override header names", "GET", vault, "/v1/operations/x:cancel", []string{"X-HTTP-Method", "POST", "X-Method-Override", "POST"}, twoWays},
		{"header and query overrides", "GET", vault, "/v1/operations/x:cancel?$httpMethod=POST", []string{"X-HTTP-Method", "POST"}, twoWays},
		{"a request method in another letter case", "post", vault, "/v1/operations/x:cancel", nil, twoWays},
		{"more methods than the reader keeps, POST last", "GET", vault, "/v1/operations/x:cancel",
			[]string{"X-HTTP-Method-Override", "A,B,C,D,E,F,G,H,I,POST"}, twoWays},
		{"an override that makes no cancel", "GET", vault, "/v1/operations/x:cancel", []string{"X-HTTP-Method-Override", "PATCH"}, none},
		{"an override on a non-cancel path", "GET", vault, "/v1/operations/x", []string{"X-HTTP-Method-Override", "POST"}, none},

		// Content type.
		{"$httpHeaders on a cancel", "POST", vault, "/v1/operations/x:cancel?$httpHeaders=X-Foo%3Abar", nil, twoWays},
		{"$ct disagreeing with Content-Type", "POST", vault, "/v1/operations/x:cancel?$ct=text/plain", []string{"Content-Type", "application/json"}, twoWays},
		{"$ct given twice", "POST", vault, "/v1/operations/x:cancel?$ct=a/b&$ct=a/b", nil, twoWays},
		{"$ct alone is read as the content type", "POST", vault, "/v1/operations/x:cancel?$ct=application/json", nil, vaultC},
		{"$httpHeaders on a request that is no cancel", "GET", vault, "/v1/operations/x?$httpHeaders=a", nil, none},

		// Host.
		{"the legacy host serves storage under its servicePath", "POST", "www.googleapis.com", "/storage/v1/b/bkt/operations/op/cancel", nil,
			want{door: reading.REST, method: "storage.buckets.operations.cancel"}},
		{"the legacy host serves Cloud SQL v1beta4", "POST", "www.googleapis.com", "/sql/v1beta4/projects/p/operations/o/cancel", nil,
			want{door: reading.REST, method: "sql.operations.cancel"}},
		{"an unlisted cancel on the legacy host", "POST", "www.googleapis.com", "/v1/operations/x:cancel", nil, unlisted},
		{"an unknown googleapis host", "POST", "foo.googleapis.com", "/v1/projects/p/operations/o:cancel", nil, unlisted},
		{"the /cancel style unlisted", "POST", "foo.googleapis.com", "/v1/projects/p/operations/o/cancel", nil, unlisted},
		{"an alias", "POST", "vault.clients6.google.com", "/v1/operations/x:cancel", nil, vaultC},

		// Path.
		{"matrix parameters after the verb", "POST", vault, "/v1/operations/x:cancel;a=b", nil, twoWays},
		{"matrix parameters before the verb", "POST", vault, "/v1/operations/x;a=b:cancel", nil, twoWays},
		{"a dot segment", "POST", vault, "/v1/operations/./x:cancel", nil, pathTwice},
		{"a path with cancel that is none", "POST", vault, "/v1/projects/p/cancelled", nil, none},

		// Batch.
		{"a batch", "POST", vault, "/batch", nil, batch},
		{"a batch on a host the catalog does not know", "POST", "foo.googleapis.com", "/batch", nil, batch},
		{"a batch at a path that spells cancel", "POST", vault, "/batch/cancel/v1", nil, batch},
		{"a batch on a web console host", "POST", "foo.clients6.google.com", "/batch/foo/v1", nil, batch},
		{"a batch path that is an unlisted cancel too", "POST", "foo.googleapis.com", "/batch/v1/operations/x:cancel", nil,
			want{door: reading.REST, refusal: reading.AmbiguousRequest}},
		{"a GET that an override makes a batch", "GET", vault, "/batch", []string{"X-HTTP-Method-Override", "POST"}, batch},
		{"$httpHeaders on a batch", "POST", vault, "/batch?$httpHeaders=a", nil, twoBatch},
		{"a batch on a host Google does not serve", "POST", "example.com", "/batch", nil, none},
		{"a GET of a batch path", "GET", vault, "/batch", nil, none},

		// gRPC and $rpc.
		{"a gRPC cancel", "POST", vault, "/google.longrunning.Operations/CancelOperation", nil, want{door: reading.GRPC}},
		{"a $rpc cancel", "POST", vault, "/$rpc/google.longrunning.Operations/CancelOperation", nil, want{door: reading.RPC}},

		// Ordinary traffic.
		{"a storage object", "GET", "storage.googleapis.com", "/storage/v1/b/bkt/o/obj", nil, none},
		{"a POST to a non-cancel path", "POST", vault, "/v1/matters", nil, none},
	}
	z := reading.New(catalog.Default(), nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rd := z.Read(request(t, tt.method, tt.host, tt.target, tt.header...))
			if rd.Door != tt.want.door || rd.Refusal != tt.want.refusal {
				t.Fatalf("door %v refusal %v (%s), want door %v refusal %v", rd.Door, rd.Refusal, rd.Why, tt.want.door, tt.want.refusal)
			}
			if tt.want.method != "" {
				got := "unlisted"
				if rd.REST.Method != nil {
					got = rd.REST.Method.ID
				}
				if got != tt.want.method {
					t.Errorf("method %q, want %q", got, tt.want.method)
				}
			}
			if rd.Refusal == reading.AmbiguousRequest && rd.Why == "" {
				t.Error("an ambiguous request without a reason")
			}
		})
	}
}

func TestReadPartRefusesAPartNamingAnotherAPIExceptOnTheGlobalBatch(t *testing.T) {
	z := reading.New(catalog.Default(), nil)
	tests := []struct {
		name, named, batchHost, batchPath string
		want                              reading.Refusal
		wantService                       string
	}{
		{"a part naming its batch's API", vault, vault, "/batch", reading.NoRefusal, vault},
		{"a part naming no host", "", vault, "/batch", reading.NoRefusal, vault},
		{"a part naming another API", vault, "storage.googleapis.com", "/batch/storage/v1", reading.AmbiguousRequest, ""},
		{"a part naming an alias of its batch's API", "content-vault.googleapis.com", vault, "/batch", reading.NoRefusal, vault},
		{"a part on the global batch endpoint", vault, "www.googleapis.com", "/batch", reading.NoRefusal, vault},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host := tt.named
			if host == "" {
				host = tt.batchHost
			}
			part := request(t, "POST", host, "/v1/operations/x:cancel")
			rd := z.ReadPart(part, tt.named, tt.batchHost, tt.batchPath)
			if rd.Door != reading.REST || rd.Refusal != tt.want {
				t.Fatalf("door %v refusal %v (%s), want REST %v", rd.Door, rd.Refusal, rd.Why, tt.want)
			}
			if tt.wantService != "" && rd.Service != tt.wantService {
				t.Errorf("service %q, want %q", rd.Service, tt.wantService)
			}
		})
	}
}

func TestReadDoesNotAllocateForARequestThatIsNoCancel(t *testing.T) {
	z := reading.New(catalog.Default(), nil)
	for _, r := range []*http.Request{
		request(t, "GET", "storage.googleapis.com", "/storage/v1/b/bkt/o/obj?alt=json"),
		request(t, "POST", vault, "/v1/matters/m/exports", "X-HTTP-Method-Override", "PATCH"),
		request(t, "GET", "example.com", "/"),
	} {
		if n := testing.AllocsPerRun(100, func() { z.Read(r) }); n != 0 {
			t.Errorf("%s %s: %v allocations, want 0", r.Method, r.URL, n)
		}
	}
}

func BenchmarkReadNotACancel(b *testing.B) {
	z := reading.New(catalog.Default(), nil)
	r := request(b, "GET", "storage.googleapis.com", "/storage/v1/b/bkt/o/obj?alt=json")
	b.ReportAllocs()
	for b.Loop() {
		z.Read(r)
	}
}

func BenchmarkReadCancel(b *testing.B) {
	z := reading.New(catalog.Default(), nil)
	r := request(b, "POST", vault, "/v1/operations/export-1:cancel", "Content-Type", "application/json")
	b.ReportAllocs()
	for b.Loop() {
		z.Read(r)
	}
}

// adversarialShape is one shape of the caddytest adversarial suite, as its
// data table holds it.
type adversarialShape struct {
	Method, Host, Target string
	Headers              map[string][]string
	Body                 string
	BodyBase64           string `json:"body_base64"`
}

// adversarialShapes reads the caddytest adversarial suite's table, which
// seeds the fuzz targets with every shape the suite tries.
func adversarialShapes(f *testing.F) []adversarialShape {
	b, err := os.ReadFile("../../caddytest/testdata/adversarial_shapes.json")
	if err != nil {
		f.Fatalf("reading the adversarial shapes: %v", err)
	}
	var shapes []adversarialShape
	if err := json.Unmarshal(b, &shapes); err != nil {
		f.Fatalf("parsing the adversarial shapes: %v", err)
	}
	for i := range shapes {
		if shapes[i].BodyBase64 != "" {
			body, err := base64.StdEncoding.DecodeString(shapes[i].BodyBase64)
			if err != nil {
				f.Fatalf("shape %d: %v", i, err)
			}
			shapes[i].Body = string(body)
		}
	}
	if len(shapes) < 120 {
		f.Fatalf("%d adversarial shapes, want at least 120", len(shapes))
	}
	return shapes
}

// headerLines writes headers as "Name: value" lines, one per value.
func headerLines(h map[string][]string) string {
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(h)) {
		for _, v := range h[name] {
			b.WriteString(name + ": " + v + "\n")
		}
	}
	return b.String()
}

// FuzzReadAgreesWithReference holds the fast reader to the reference
// reader: a request Read passes untouched has no reading that is a cancel
// or a batch, and a cancel or batch Read governs, the reference finds too.
// Its seeds are the adversarial suite's shapes and a few of its own.
func FuzzReadAgreesWithReference(f *testing.F) {
	for _, s := range [][4]string{
		{"POST", vault, "/v1/operations/x:cancel", ""},
		{"GET", vault, "/v1/operations/x:cancel", "X-HTTP-Method-Override: POST\n"},
		{"GET", vault, "/v1/operations/x:cancel?a=1;%24httpMethod=post", ""},
		{"POST", vault, "/v1/operations/x;a=b/y:cancel", ""},
		{"POST", vault, "/BAtCh/..", "Content-Type: multipart/mixed; boundary=b\n"},
		{"POST", vault, "/./BAtCh/..", "Content-Type: multipart/mixed; boundary=b\n"},
		{"POST", "foo.googleapis.com", "//batch/x", "Content-Type: multipart/mixed; boundary=b\n"},
		{"POST", "foo.googleapis.com", "/%62atch", "Content-Type: multipart/mixed; boundary=b\n"},
		{"GET", "vault.clients6.google.com", "/batch", "X-HTTP-Method: POST\n"},
		{"POST", vault, "/$rpc/google.longrunning.operations/canceloperation", "Content-Type: application/json\n"},
		{"POST", "example.com", "/v9/projects/p/operations/o:cancel", ""},
	} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	for _, s := range adversarialShapes(f) {
		f.Add(s.Method, s.Host, s.Target, headerLines(s.Headers))
	}
	z := reading.New(catalog.Default(), nil)
	f.Fuzz(func(t *testing.T, method, host, target, headers string) {
		u, err := url.ParseRequestURI(target)
		if err != nil || strings.ContainsAny(method, " \t\r\n") || method == "" {
			return
		}
		r := &http.Request{Method: method, Host: host, URL: u, Header: http.Header{}}
		for line := range strings.Lines(headers) {
			if name, value, ok := strings.Cut(strings.TrimRight(line, "\r\n"), ":"); ok {
				r.Header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
			}
		}
		rd := z.Read(r)
		ref := reading.Reference(nil, r)
		if rd.Door == reading.None {
			if len(ref) > 0 {
				t.Fatalf("%s %s %s (%q): Read passes it, the reference reads %+v", method, host, target, headers, ref)
			}
			return
		}
		if rd.Refusal != reading.NoRefusal {
			return
		}
		var kind, id string
		switch rd.Door {
		case reading.REST:
			kind = "unlisted"
			if rd.REST.Method != nil {
				kind, id = "listed", rd.REST.Method.ID
			}
		case reading.Batch:
			kind = "batch"
		case reading.GRPC:
			kind = "grpc"
		case reading.RPC:
			kind = "rpc"
		}
		if !slices.ContainsFunc(ref, func(in reading.Interpretation) bool {
			return in.Kind == kind && (id == "" || in.Method == id)
		}) && kind != "unlisted" {
			t.Fatalf("%s %s %s: Read governs it as %s %s, the reference reads %+v", method, host, target, kind, id, ref)
		}
	})
}

// FuzzReadPartAgreesWithReference holds the reader to the reference on the
// embedded requests of a batch, as the batch reader parses them: a part
// ReadPart passes has no reading that is a cancel, under its own host or
// its batch's.
func FuzzReadPartAgreesWithReference(f *testing.F) {
	for _, s := range [][3]string{
		{vault, "/batch", "POST /v1/operations/x:cancel HTTP/1.1\r\n"},
		{vault, "/batch", "POST https://storage.googleapis.com/storage/v1/b/b/operations/o/cancel HTTP/1.1\r\n"},
		{"www.googleapis.com", "/batch", "POST /v1/operations/x:cancel HTTP/1.1\r\nHost: vault.googleapis.com\r\n"},
		{"foo.googleapis.com", "/batch/foo/v1", "GET /v1/operations/x:cancel?$httpMethod=POST HTTP/1.1\r\n"},
		{vault, "/batch", "POST /v1/operations/x:cancel;a=b HTTP/1.1\r\n"},
		{vault, "/batch", "POST /$rpc/google.longrunning.Operations/CancelOperation HTTP/1.1\r\nContent-Type: application/json\r\n"},
		{vault, "/batch", "GET /v1/matters HTTP/1.1\r\n"},
		// The global batch endpoint's parts naming a host Google does not
		// serve, or a Google host spelled otherwise.
		{"www.googleapis.com", "/batch", "POST /v1/operations/x:cancel HTTP/1.1\r\nHost: vault.gopgleapis.com\r\n"},
		{"www.googleapis.com", "/batch", "POST https://evil.example/v1/operations/x:cancel HTTP/1.1\r\n"},
		{"www.googleapis.com", "/batch", "POST /v1/operations/x:cancel HTTP/1.1\r\nHost: googleapis.com.evil.example:443\r\n"},
		{"www.googleapis.com", "/batch", "POST /v1/operations/x:cancel HTTP/1.1\r\nHost: VAULT.GOOGLEAPIS.COM.\r\n"},
		{"WWW.GOOGLEAPIS.COM:443", "/batch", "POST /v1/operations/x/cancel HTTP/1.1\r\nHost: 127.0.0.1\r\n"},
		{"www.googleapis.com", "/BATCH", "POST /v1/operations/x:cancel HTTP/1.1\r\nHost: vault.gopgleapis.com\r\n"},
		{"www.googleapis.com", "/batch", "GET /v1/operations/x:cancel?$httpMethod=POST HTTP/1.1\r\nHost: evil.example\r\n"},
		{"www.googleapis.com", "/batch", "POST /$rpc/google.longrunning.Operations/CancelOperation HTTP/1.1\r\nHost: evil.example\r\nContent-Type: application/json\r\n"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	z := reading.New(catalog.Default(), nil)
	f.Fuzz(func(t *testing.T, host, batchPath, head string) {
		u, err := url.ParseRequestURI(batchPath)
		if err != nil {
			return
		}
		outer := &http.Request{Method: "POST", Host: host, URL: u, Header: http.Header{}}
		body := "--b\r\nContent-Type: application/http\r\n\r\n" + head + "\r\n--b--\r\n"
		_, parts, problem := wire.Read(strings.NewReader(body), "multipart/mixed; boundary=b", wire.MaxBytes, wire.MaxParts)
		if problem != nil {
			return
		}
		for _, p := range parts {
			alone := p.AsAlone(outer)
			rd := z.ReadPart(alone, p.Request.Host, outer.Host, outer.URL.EscapedPath())
			if rd.Door != reading.None {
				continue
			}
			ref := reading.Reference(nil, alone)
			if p.Request.Host != "" {
				outerHost := *alone
				outerHost.Host = host
				ref = append(ref, reading.Reference(nil, &outerHost)...)
			}
			if len(ref) > 0 {
				t.Fatalf("part %q of a batch to %s%s: ReadPart passes it, the reference reads %+v", head, host, batchPath, ref)
			}
		}
	})
}
