package wire

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// The shapes below are what Google's clients write, byte for byte:
//
//   - Python, googleapiclient.http.BatchHttpRequest: the email package's
//     generator with LF line breaks, outer headers suppressed, boundary
//     "=" * 15 + 19 digits + "==" (quoted in the Content-Type); part headers
//     Content-Type, MIME-Version, Content-Transfer-Encoding: binary,
//     Content-ID "<base + id>"; _serialize_request writes
//     "METHOD path?query HTTP/1.1", the MIMENonMultipart headers, the
//     request's own (lower-case, authorization among them), Host, and
//     content-length only when there is a body.
//   - Java, com.google.api.client.googleapis.batch.BatchRequest over
//     MultipartContent: CRLF, boundary __END_OF_PART__<uuid>__, part
//     headers Content-Length, Content-Type, content-id: <n>,
//     content-transfer-encoding; HttpRequestContent writes
//     "METHOD absolute-URL HTTP/1.1" and no Host.
//   - .NET, Google.Apis.Requests.BatchRequest over System.Net.Http's
//     MultipartContent: CRLF, a quoted GUID boundary, Content-Type alone;
//     CreateRequestContentString writes "METHOD absolute-URL" without a
//     version, "Content-Length:  n" after the content headers, and ends
//     with a line break, so a request without body has no blank line.

const (
	pyBoundary   = "===============7330845974216740156=="
	pyType       = `multipart/mixed; boundary="` + pyBoundary + `"`
	pyBase       = "4a7cd0b1-4a8c-4d2f-9b1e-1c2d3e4f5a6b"
	javaBoundary = "__END_OF_PART__1f0e2d3c-4b5a-4978-8695-a4b3c2d1e0f9__"
	javaType     = "multipart/mixed; boundary=" + javaBoundary
	netBoundary  = "0c9a8b7d-6e5f-4a3b-2c1d-0e9f8a7b6c5d"
	netType      = `multipart/mixed; boundary="` + netBoundary + `"`

	crlfType = "multipart/mixed; boundary=b"
)

// python is a batch as BatchHttpRequest._execute writes it: each request
// gets Content-ID <pyBase + n>.
func python(requests ...string) string {
	var b strings.Builder
	for i, r := range requests {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "--%s\nContent-Type: application/http\nMIME-Version: 1.0\nContent-Transfer-Encoding: binary\nContent-ID: <%s + %d>\n\n%s",
			pyBoundary, pyBase, i+1, r)
	}
	return b.String() + "\n--" + pyBoundary + "--\n"
}

// pyRequest is BatchHttpRequest._serialize_request of a discovery request
// to host; body nil is a request without one (no content-length).
func pyRequest(method, host, pathQuery, token string, body *string) string {
	s := method + " " + pathQuery + " HTTP/1.1\n" +
		"Content-Type: application/json\nMIME-Version: 1.0\n" +
		"accept: application/json\naccept-encoding: gzip, deflate\n" +
		"user-agent: (gzip)\nx-goog-api-client: gdcl/2.149.0 gl-python/3.12.3\n"
	if token != "" {
		s += "authorization: Bearer " + token + "\n"
	}
	s += "Host: " + host + "\n"
	if body == nil {
		return s + "\n"
	}
	return s + fmt.Sprintf("content-length: %d\n\n%s", len(*body), *body)
}

// java is a batch as BatchRequest.execute writes it through
// MultipartContent: each part carries its own length and content-id n.
func java(requests ...string) string {
	var b strings.Builder
	for i, r := range requests {
		fmt.Fprintf(&b, "--%s\r\nContent-Length: %d\r\nContent-Type: application/http\r\ncontent-id: %d\r\ncontent-transfer-encoding: binary\r\n\r\n%s\r\n",
			javaBoundary, len(r), i+1, r)
	}
	return b.String() + "--" + javaBoundary + "--\r\n"
}

// javaRequest is HttpRequestContent.writeTo: absolute URL, the known
// headers in ClassInfo's order, then the others, lower-case.
func javaRequest(method, url, token, contentType, body string) string {
	s := method + " " + url + " HTTP/1.1\r\n"
	if token != "" {
		s += "Authorization: Bearer " + token + "\r\n"
	}
	if contentType != "" {
		s += fmt.Sprintf("Content-Length: %d\r\nContent-Type: %s\r\n", len(body), contentType)
	}
	return s + "x-goog-api-client: gl-java/17.0.9 gdcl/2.7.2 linux/6.1.0\r\n\r\n" + body
}

// dotnet is a batch as System.Net.Http.MultipartContent("mixed") writes it.
func dotnet(requests ...string) string {
	var b strings.Builder
	b.WriteString("--" + netBoundary + "\r\n")
	for i, r := range requests {
		if i > 0 {
			b.WriteString("\r\n--" + netBoundary + "\r\n")
		}
		b.WriteString("Content-Type: application/http\r\n\r\n" + r)
	}
	return b.String() + "\r\n--" + netBoundary + "--\r\n"
}

// netRequest is BatchRequest.CreateRequestContentString with Windows line
// breaks.
func netRequest(method, url, contentType, body string) string {
	s := method + " " + url + "\r\nUser-Agent: google-api-dotnet-client/1.68.0.0 (gzip)\r\nx-goog-api-client: gl-dotnet/8.0.0 gdcl/1.68.0.0"
	if contentType != "" {
		s += "\r\nContent-Type: " + contentType + fmt.Sprintf("\r\nContent-Length:  %d\r\n\r\n", len(body)) + body
	}
	return s + "\r\n"
}

// crlf is a hand-written batch with boundary "b": parts as given.
func crlf(parts ...string) string {
	var b strings.Builder
	for _, p := range parts {
		b.WriteString("--b\r\n" + p + "\r\n")
	}
	return b.String() + "--b--\r\n"
}

// httpPart is a part holding req.
func httpPart(req string) string { return "Content-Type: application/http\r\n\r\n" + req }

func ptr(s string) *string { return &s }

// wantPart is what a test checks of a read part.
type wantPart struct {
	id, method, uri, host, body string
}

const cancelPath = "/v1/operations/export-1:cancel"

var readCases = []struct {
	name        string
	contentType string
	body        string
	want        []wantPart
}{
	{
		name:        "a Python batch with a cancel as the second of two parts is read part by part",
		contentType: pyType,
		body: python(
			pyRequest("GET", "vault.googleapis.com", "/v1/matters?alt=json", "ya29.py", nil),
			pyRequest("POST", "vault.googleapis.com", cancelPath+"?alt=json", "ya29.py", ptr("{}")),
		),
		want: []wantPart{
			{"<" + pyBase + " + 1>", "GET", "/v1/matters?alt=json", "vault.googleapis.com", ""},
			{"<" + pyBase + " + 2>", "POST", cancelPath + "?alt=json", "vault.googleapis.com", "{}"},
		},
	},
	{
		name:        "a Python request with an empty body and content-length 0 has an empty body",
		contentType: pyType,
		body:        python(pyRequest("POST", "vault.googleapis.com", cancelPath, "", ptr(""))),
		want:        []wantPart{{"<" + pyBase + " + 1>", "POST", cancelPath, "vault.googleapis.com", ""}},
	},
	{
		name:        "a Python request without a body nor content-length has an empty body",
		contentType: pyType,
		body:        python(pyRequest("POST", "vault.googleapis.com", cancelPath, "", nil)),
		want:        []wantPart{{"<" + pyBase + " + 1>", "POST", cancelPath, "vault.googleapis.com", ""}},
	},
	{
		name:        "a Python Content-ID folded over two lines is read unfolded",
		contentType: pyType,
		body: "--" + pyBoundary + "\nContent-Type: application/http\nMIME-Version: 1.0\nContent-Transfer-Encoding: binary\n" +
			"Content-ID: <" + pyBase + " +\n " + strings.Repeat("abc", 20) + ">\n\n" +
			pyRequest("GET", "vault.googleapis.com", "/v1/matters", "", nil) + "\n--" + pyBoundary + "--\n",
		want: []wantPart{{"<" + pyBase + " + " + strings.Repeat("abc", 20) + ">", "GET", "/v1/matters", "vault.googleapis.com", ""}},
	},
	{
		name:        "a Java batch with absolute URLs and bare Content-IDs is read, a cancel second",
		contentType: javaType,
		body: java(
			javaRequest("GET", "https://vault.googleapis.com/v1/matters?alt=json", "ya29.java", "", ""),
			javaRequest("POST", "https://vault.googleapis.com"+cancelPath+"?alt=json", "ya29.java", "application/json; charset=UTF-8", "{}"),
		),
		want: []wantPart{
			{"1", "GET", "https://vault.googleapis.com/v1/matters?alt=json", "vault.googleapis.com", ""},
			{"2", "POST", "https://vault.googleapis.com" + cancelPath + "?alt=json", "vault.googleapis.com", "{}"},
		},
	},
	{
		name:        "a Java request of unknown length has no Content-Length and its body runs to the part's end",
		contentType: javaType,
		body:        java("POST https://vault.googleapis.com" + cancelPath + " HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{}"),
		want:        []wantPart{{"1", "POST", "https://vault.googleapis.com" + cancelPath, "vault.googleapis.com", "{}"}},
	},
	{
		name:        "the Java client's own test batch (BatchRequestTest.testExecute_checkWriteTo) is read",
		contentType: javaType,
		body: java(
			"POST http://test/dummy/url1 HTTP/1.1\r\nContent-Length: 26\r\nContent-Type: application/json\r\n\r\n{\"data\":{\"foo\":{\"v1\":{}}}}",
			"GET http://test/dummy/url2 HTTP/1.1\r\n\r\n",
		),
		want: []wantPart{
			{"1", "POST", "http://test/dummy/url1", "test", `{"data":{"foo":{"v1":{}}}}`},
			{"2", "GET", "http://test/dummy/url2", "test", ""},
		},
	},
	{
		name:        "a .NET batch without HTTP versions, with a line break after each body and no blank line without one, is read",
		contentType: netType,
		body: dotnet(
			netRequest("GET", "https://vault.googleapis.com/v1/matters?alt=json", "", ""),
			netRequest("POST", "https://vault.googleapis.com"+cancelPath+"?alt=json", "application/json; charset=utf-8", "{}"),
		),
		want: []wantPart{
			{"", "GET", "https://vault.googleapis.com/v1/matters?alt=json", "vault.googleapis.com", ""},
			{"", "POST", "https://vault.googleapis.com" + cancelPath + "?alt=json", "vault.googleapis.com", "{}"},
		},
	},
	{
		name:        "Google's documented example request line without a version is read",
		contentType: crlfType,
		body:        crlf("Content-Type: application/http\r\nContent-ID: <item1:12930812@barnyard.example.com>\r\n\r\nGET /farm/v1/animals/pony\r\n"),
		want:        []wantPart{{"<item1:12930812@barnyard.example.com>", "GET", "/farm/v1/animals/pony", "", ""}},
	},
	{
		name:        "an empty batch has no parts",
		contentType: crlfType,
		body:        "--b--\r\n",
	},
	{
		name:        "an empty batch may end without a line break",
		contentType: crlfType,
		body:        "--b--",
	},
	{
		name:        "whitespace before the first boundary and after the last is allowed",
		contentType: crlfType,
		body:        "\r\n" + crlf(httpPart("GET /v1/x HTTP/1.1\r\nHost: a.googleapis.com\r\n\r\n")) + "\r\n",
		want:        []wantPart{{"", "GET", "/v1/x", "a.googleapis.com", ""}},
	},
	{
		name:        "transport padding after a boundary is allowed",
		contentType: crlfType,
		body:        "--b \t\r\n" + httpPart("GET /v1/x HTTP/1.1\r\n\r\n") + "\r\n--b-- \r\n",
		want:        []wantPart{{"", "GET", "/v1/x", "", ""}},
	},
	{
		name:        "application/http with msgtype=request and version=1.1 is a request",
		contentType: crlfType,
		body:        crlf("Content-Type: application/http; msgtype=request; version=1.1\r\n\r\nGET /v1/x HTTP/1.1\r\n\r\n"),
		want:        []wantPart{{"", "GET", "/v1/x", "", ""}},
	},
	{
		name:        "Content-Transfer-Encoding 8bit, 7bit and BINARY are read as binary",
		contentType: crlfType,
		body: crlf(
			"Content-Type: application/http\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGET /v1/a HTTP/1.1\r\n\r\n",
			"Content-Type: application/http\r\nContent-Transfer-Encoding: 7bit\r\n\r\nGET /v1/b HTTP/1.1\r\n\r\n",
			"Content-Type: application/http\r\nContent-Transfer-Encoding: BINARY\r\n\r\nGET /v1/c HTTP/1.1\r\n\r\n",
		),
		want: []wantPart{{"", "GET", "/v1/a", "", ""}, {"", "GET", "/v1/b", "", ""}, {"", "GET", "/v1/c", "", ""}},
	},
	{
		name:        "a chunked body is decoded",
		contentType: crlfType,
		body:        crlf(httpPart("POST /v1/operations/x:cancel HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n")),
		want:        []wantPart{{"", "POST", "/v1/operations/x:cancel", "", "{}"}},
	},
	{
		name:        "an HTTP/1.0 request without Content-Length has the rest of the part as body",
		contentType: crlfType,
		body:        crlf(httpPart("POST /v1/operations/x:cancel HTTP/1.0\r\n\r\n{}")),
		want:        []wantPart{{"", "POST", "/v1/operations/x:cancel", "", "{}"}},
	},
	{
		name:        "a Host header equal to the absolute URL's host in another case is accepted",
		contentType: crlfType,
		body:        crlf(httpPart("GET https://vault.googleapis.com/v1/x HTTP/1.1\r\nHost: Vault.googleapis.com\r\n\r\n")),
		want:        []wantPart{{"", "GET", "https://vault.googleapis.com/v1/x", "vault.googleapis.com", ""}},
	},
	{
		name:        "an empty Host header is no host",
		contentType: crlfType,
		body:        crlf(httpPart("GET /v1/x HTTP/1.1\r\nHost:\r\n\r\n")),
		want:        []wantPart{{"", "GET", "/v1/x", "", ""}},
	},
	{
		name:        "a path that merely contains batch is not a nested batch",
		contentType: crlfType,
		body:        crlf(httpPart("POST /v1/projects/p/locations/l/jobs:batchDelete HTTP/1.1\r\n\r\n")),
		want:        []wantPart{{"", "POST", "/v1/projects/p/locations/l/jobs:batchDelete", "", ""}},
	},
}

func TestReadAcceptsWhatGooglesClientsSend(t *testing.T) {
	for _, tc := range readCases {
		t.Run(tc.name, func(t *testing.T) {
			raw, parts, v := Read(strings.NewReader(tc.body), tc.contentType, MaxBytes, MaxParts)
			if v != nil {
				t.Fatalf("refused (part %d): %s", v.Part, v.Description)
			}
			if string(raw) != tc.body {
				t.Errorf("raw is not the input:\n got %q\nwant %q", raw, tc.body)
			}
			if len(parts) != len(tc.want) {
				t.Fatalf("got %d parts, want %d", len(parts), len(tc.want))
			}
			for i, w := range tc.want {
				p := parts[i]
				got := wantPart{p.ContentID, p.Request.Method, p.Request.RequestURI, p.Request.Host, readAll(t, p.Request.Body)}
				if p.Index != i+1 || got != w {
					t.Errorf("part %d: got index %d %+v, want %+v", i+1, p.Index, got, w)
				}
				if p.Request.ContentLength != int64(len(w.body)) {
					t.Errorf("part %d: ContentLength %d, want %d", i+1, p.Request.ContentLength, len(w.body))
				}
				if _, ok := p.Request.Header["Host"]; ok {
					t.Errorf("part %d: Header holds Host", i+1)
				}
			}
		})
	}
}

var refuseCases = []struct {
	name        string
	contentType string
	body        string
	part        int
	says        string // a piece of the description
}{
	// The batch's Content-Type.
	{"a Content-Type that is not multipart/mixed is refused", "application/json", "{}", 0, `not "application/json"`},
	{"multipart/related is refused", "multipart/related; boundary=b", crlf(), 0, "multipart/mixed"},
	{"multipart/mixed without a boundary is refused", "multipart/mixed", crlf(), 0, "no boundary"},
	{"a malformed Content-Type is refused", "multipart/mixed; boundary", crlf(), 0, "malformed"},
	{"a duplicated boundary parameter is refused", "multipart/mixed; boundary=b; boundary=c", crlf(), 0, "malformed"},
	{"a boundary in RFC 2231 form is refused", "multipart/mixed; boundary=c; boundary*=utf-8''b", crlf(), 0, "RFC 2231"},
	{"a boundary of continuations is refused", "multipart/mixed; boundary*0=b", crlf(), 0, "RFC 2231"},
	{"a boundary longer than 70 characters is refused", "multipart/mixed; boundary=" + strings.Repeat("b", 71), crlf(), 0, "RFC 2046"},
	{"a boundary with a character outside bchars is refused", `multipart/mixed; boundary="b@c"`, crlf(), 0, "RFC 2046"},
	{"an empty boundary is refused", `multipart/mixed; boundary=""`, crlf(), 0, "RFC 2046"},

	// The batch's structure.
	{"an empty body is refused", crlfType, "", 0, "missing final boundary"},
	{"a batch without its final boundary is refused", crlfType, "--b\r\n" + httpPart("GET /v1/x HTTP/1.1\r\n\r\n") + "\r\n", 0, "missing final boundary"},
	{"a batch whose last delimiter is not a close delimiter is refused", crlfType, "--b\r\n" + httpPart("GET /v1/x HTTP/1.1\r\n\r\n") + "\r\n--b\r\n", 0, "missing final boundary"},
	{"text before the first boundary is refused", crlfType, "preamble\r\n" + crlf(), 0, "before the first boundary"},
	{"text after the final boundary is refused", crlfType, crlf() + "epilogue", 0, "after the final boundary"},
	{"a delimiter after the final boundary is refused", crlfType, crlf() + crlf(httpPart("GET /v1/x HTTP/1.1\r\n\r\n")), 0, "after the final boundary"},
	{"a line that starts with the boundary but goes on is refused", crlfType,
		crlf(httpPart("POST /v1/x HTTP/1.1\r\n\r\n--bx\r\n")), 0, "not a boundary delimiter"},
	{"a line that starts with the boundary and a single dash is refused", crlfType,
		crlf(httpPart("POST /v1/x HTTP/1.1\r\n\r\n--b-\r\n")), 0, "not a boundary delimiter"},
	{"a delimiter without a line break at the end is refused", crlfType, "--b", 0, "not a boundary delimiter"},
	{"a delimiter after a bare LF in a CRLF batch is refused", crlfType,
		"--b\r\n" + httpPart("POST /v1/x HTTP/1.1\r\n\r\nab\n--b\r\n"+httpPart("GET /v1/y HTTP/1.1\r\n\r\n")) + "\r\n--b--\r\n", 0, "mix line endings"},
	{"a CRLF delimiter in an LF batch is refused", crlfType,
		"--b\n" + "Content-Type: application/http\n\nGET /v1/x HTTP/1.1\n\n\n--b\r\nContent-Type: application/http\n\nGET /v1/y HTTP/1.1\n\n\n--b--\n", 0, "mix line endings"},
	{"a CR before an LF delimiter is refused", crlfType,
		"--b\n" + "Content-Type: application/http\n\nGET /v1/x HTTP/1.1\n\n\r\n--b--\n", 0, "mix line endings"},
	{"an LF close delimiter in a CRLF batch is refused", crlfType, "--b\r\n" + httpPart("GET /v1/x HTTP/1.1\r\n\r\n") + "\r\n--b--\n", 0, "mix line endings"},
	{"an empty part is refused", crlfType, "--b\r\n--b--\r\n", 0, "a part is empty"},
	{"the boundary after a bare CR is refused", crlfType,
		crlf(httpPart("POST /v1/x HTTP/1.1\r\n\r\nab\r--b\r\n")), 0, "bare CR"},
	{"an empty batch in LF line breaks is refused, as mime/multipart reads it", crlfType, "--b--\n", 0, "mix line endings"},

	// Part headers.
	{"a part without Content-Type is refused", crlfType, crlf("Content-ID: 1\r\n\r\nGET /v1/x HTTP/1.1\r\n\r\n"), 1, "no Content-Type"},
	{"a part of another Content-Type is refused", crlfType, crlf("Content-Type: text/plain\r\n\r\nGET /v1/x HTTP/1.1\r\n\r\n"), 1, `"text/plain"`},
	{"application/http with msgtype=response is refused", crlfType, crlf("Content-Type: application/http; msgtype=response\r\n\r\nGET /v1/x HTTP/1.1\r\n\r\n"), 1, "msgtype=request"},
	{"application/http with an unknown parameter is refused", crlfType, crlf("Content-Type: application/http; charset=utf-16\r\n\r\nGET /v1/x HTTP/1.1\r\n\r\n"), 1, "msgtype=request"},
	{"a part with two Content-Types is refused", crlfType, crlf("Content-Type: application/http\r\nContent-Type: application/http\r\n\r\nGET /v1/x HTTP/1.1\r\n\r\n"), 1, "repeats its Content-Type"},
	{"a base64 part is refused", crlfType, crlf("Content-Type: application/http\r\nContent-Transfer-Encoding: base64\r\n\r\nR0VUIC92MS94IEhUVFAvMS4xDQoNCg==\r\n"), 1, `"base64"`},
	{"a quoted-printable part is refused, not decoded", crlfType,
		crlf("Content-Type: application/http\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nPOST /v1/operations/x:cancel HTTP/1.1=0D=0A=0D=0A"), 1, `"quoted-printable"`},
	{"a part with two Content-Transfer-Encodings is refused", crlfType,
		crlf("Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-Transfer-Encoding: base64\r\n\r\nGET /v1/x HTTP/1.1\r\n\r\n"), 1, "repeats"},
	{"a gzip-encoded part is refused", crlfType, crlf("Content-Type: application/http\r\nContent-Encoding: gzip\r\n\r\n\x1f\x8b"), 1, "Content-Encoding"},
	{"a part whose Content-Length is not its body's length is refused", crlfType,
		crlf("Content-Type: application/http\r\nContent-Length: 5\r\n\r\nGET /v1/x HTTP/1.1\r\n\r\n"), 1, "Content-Length does not match"},
	{"a Content-ID longer than 256 bytes is refused", crlfType,
		crlf("Content-Type: application/http\r\nContent-ID: <" + strings.Repeat("x", 256) + ">\r\n\r\nGET /v1/x HTTP/1.1\r\n\r\n"), 1, "Content-ID"},
	{"a Content-ID that is not ASCII is refused", crlfType,
		crlf("Content-Type: application/http\r\nContent-ID: <é>\r\n\r\nGET /v1/x HTTP/1.1\r\n\r\n"), 1, "Content-ID"},
	{"a malformed part header is refused", crlfType, crlf("Content-Type application/http\r\n\r\nGET /v1/x HTTP/1.1\r\n\r\n"), 1, "headers are malformed"},

	// The embedded request.
	{"a part that is not an HTTP request is refused", crlfType, crlf(httpPart("hello")), 1, "one HTTP/1.1 request"},
	{"a request line with a double space is refused", crlfType, crlf(httpPart("POST  /v1/x HTTP/1.1\r\n\r\n")), 1, "one HTTP/1.1 request"},
	{"a request line with four fields is refused", crlfType, crlf(httpPart("POST /v1/x HTTP/1.1 x\r\n\r\n")), 1, "one HTTP/1.1 request"},
	{"HTTP/2.0 in a request line is refused", crlfType, crlf(httpPart("POST /v1/x HTTP/2.0\r\n\r\n")), 1, "HTTP/1.0 or HTTP/1.1"},
	{"a lower-case method is refused", crlfType, crlf(httpPart("post /v1/operations/x:cancel HTTP/1.1\r\n\r\n")), 1, `"post"`},
	{"the asterisk target is refused", crlfType, crlf(httpPart("OPTIONS * HTTP/1.1\r\n\r\n")), 1, "path or an http(s) URL"},
	{"an authority target is refused", crlfType, crlf(httpPart("CONNECT vault.googleapis.com:443 HTTP/1.1\r\n\r\n")), 1, "path or an http(s) URL"},
	{"a relative target is refused", crlfType, crlf(httpPart("GET v1/x HTTP/1.1\r\n\r\n")), 1, "one HTTP/1.1 request"},
	{"an ftp URL is refused", crlfType, crlf(httpPart("GET ftp://vault.googleapis.com/v1/x HTTP/1.1\r\n\r\n")), 1, "path or an http(s) URL"},
	{"a URL with userinfo is refused", crlfType, crlf(httpPart("GET https://u@vault.googleapis.com/v1/x HTTP/1.1\r\n\r\n")), 1, "path or an http(s) URL"},
	{"a target with a fragment is refused", crlfType, crlf(httpPart("POST /v1/operations/x:cancel#y HTTP/1.1\r\n\r\n")), 1, "path or an http(s) URL"},
	{"a request whose head does not end is refused", crlfType, crlf(httpPart("GET /v1/x HTTP/1.1\r\nHost: a")), 1, "one HTTP/1.1 request"},
	{"a folded header line is refused", crlfType, crlf(httpPart("GET /v1/x HTTP/1.1\r\nAuthorization: Bearer\r\n a\r\n\r\n")), 1, "folds"},
	{"bytes after a Content-Length body are refused", crlfType,
		crlf(httpPart("POST /v1/operations/x:cancel HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}{\"name\":1}")), 1, "bytes after its body"},
	{"two line breaks after a Content-Length body are refused", crlfType,
		crlf(httpPart("POST /v1/operations/x:cancel HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}\r\n\r\n")), 1, "bytes after its body"},
	{"a body shorter than its Content-Length is refused", crlfType,
		crlf(httpPart("POST /v1/operations/x:cancel HTTP/1.1\r\nContent-Length: 20\r\n\r\n{}")), 1, "shorter than its Content-Length"},
	{"two equal Content-Lengths are refused", crlfType,
		crlf(httpPart("POST /v1/operations/x:cancel HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}")), 1, "repeats Content-Length"},
	{"two different Content-Lengths are refused", crlfType,
		crlf(httpPart("POST /v1/operations/x:cancel HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}")), 1, "one HTTP/1.1 request"},
	{"Transfer-Encoding with Content-Length is refused", crlfType,
		crlf(httpPart("POST /v1/operations/x:cancel HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n")), 1, "both Transfer-Encoding and Content-Length"},
	{"Transfer-Encoding on HTTP/1.0 is refused", crlfType,
		crlf(httpPart("POST /v1/operations/x:cancel HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n")), 1, "HTTP/1.0"},
	{"a Transfer-Encoding other than chunked is refused", crlfType,
		crlf(httpPart("POST /v1/operations/x:cancel HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n")), 1, "one HTTP/1.1 request"},
	{"a malformed chunked body is refused", crlfType,
		crlf(httpPart("POST /v1/operations/x:cancel HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n")), 1, "chunked body"},
	{"a chunked body with a trailer is refused", crlfType,
		crlf(httpPart("POST /v1/operations/x:cancel HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\nAuthorization: Bearer x\r\n\r\n")), 1, "trailer"},
	{"bytes after a chunked body are refused", crlfType,
		crlf(httpPart("POST /v1/operations/x:cancel HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\nxx")), 1, "trailer or bytes after"},
	{"a Host header that differs from the absolute URL's host is refused", crlfType,
		crlf(httpPart("POST https://www.googleapis.com" + cancelPath + " HTTP/1.1\r\nHost: vault.googleapis.com\r\n\r\n")), 1, "not its URL's host"},
	{"a Host header that is not a host name is refused", crlfType,
		crlf(httpPart("POST " + cancelPath + " HTTP/1.1\r\nHost: vault.googleapis.com/x\r\n\r\n")), 1, "not a host name"},
	{"two Host headers are refused", crlfType,
		crlf(httpPart("POST " + cancelPath + " HTTP/1.1\r\nHost: a.googleapis.com\r\nHost: b.googleapis.com\r\n\r\n")), 1, "one HTTP/1.1 request"},

	// Nested batches.
	{"an embedded multipart request is a nested batch", crlfType,
		crlf(httpPart("POST /upload/v1/x HTTP/1.1\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n--c--\r\n")), 1, "nested"},
	{"an embedded request to /batch is a nested batch", crlfType, crlf(httpPart("POST /batch HTTP/1.1\r\n\r\n")), 1, "nested"},
	{"an embedded request to /batch/drive/v3 is a nested batch", crlfType, crlf(httpPart("POST /batch/drive/v3 HTTP/1.1\r\n\r\n")), 1, "nested"},
	{"an embedded request to an absolute /batch URL is a nested batch", crlfType,
		crlf(httpPart("POST https://www.googleapis.com/batch HTTP/1.1\r\n\r\n")), 1, "nested"},
	{"an embedded request to /./batch is a nested batch", crlfType, crlf(httpPart("POST /./batch HTTP/1.1\r\n\r\n")), 1, "nested"},
	{"an embedded request to //batch is a nested batch", crlfType, crlf(httpPart("POST //batch HTTP/1.1\r\n\r\n")), 1, "nested"},
	{"an embedded request to /%62atch is a nested batch", crlfType, crlf(httpPart("POST /%62atch HTTP/1.1\r\n\r\n")), 1, "nested"},
	{"an embedded request to /BATCH is a nested batch", crlfType, crlf(httpPart("POST /BATCH HTTP/1.1\r\n\r\n")), 1, "nested"},

	// The refusal names the part.
	{"a bad second part is named as part 2", javaType,
		java(javaRequest("GET", "https://vault.googleapis.com/v1/matters", "", "", ""), "BREW /pot HTCPCP/1.0\r\n\r\n"), 2, "one HTTP/1.1 request"},
}

func TestReadRefusesWhatItCannotReadForCertain(t *testing.T) {
	for _, tc := range refuseCases {
		t.Run(tc.name, func(t *testing.T) {
			raw, parts, v := Read(strings.NewReader(tc.body), tc.contentType, MaxBytes, MaxParts)
			if v == nil {
				t.Fatalf("read %d parts, want a refusal", len(parts))
			}
			if !strings.Contains(v.Description, tc.says) || v.Part != tc.part {
				t.Errorf("got part %d %q, want part %d saying %q", v.Part, v.Description, tc.part, tc.says)
			}
			if parts != nil {
				t.Errorf("parts = %d on a refusal, want nil", len(parts))
			}
			if _, ctRefused := boundaryOf(tc.contentType); ctRefused != nil {
				if raw != nil {
					t.Errorf("a refused Content-Type read %d bytes", len(raw))
				}
			} else if string(raw) != tc.body {
				t.Errorf("raw is not the input:\n got %q\nwant %q", raw, tc.body)
			}
		})
	}
}

// countingReader counts the bytes taken from it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestReadStopsOneBytePastMaxBytes(t *testing.T) {
	body := crlf(httpPart("POST /v1/x HTTP/1.1\r\nContent-Length: 1000\r\n\r\n" + strings.Repeat("x", 1000)))
	for _, limit := range []int64{0, 100, int64(len(body)) - 1} {
		t.Run(fmt.Sprint("limit ", limit), func(t *testing.T) {
			cr := &countingReader{r: strings.NewReader(body)}
			raw, _, v := Read(cr, crlfType, limit, MaxParts)
			if v == nil || !strings.Contains(v.Description, fmt.Sprintf("larger than %d bytes", limit)) {
				t.Fatalf("got %+v, want a refusal for size", v)
			}
			if cr.n != int(limit)+1 || string(raw) != body[:limit+1] {
				t.Errorf("read %d bytes, raw %d; want both %d", cr.n, len(raw), limit+1)
			}
		})
	}
	t.Run("a batch of exactly maxBytes is read", func(t *testing.T) {
		if _, parts, v := Read(strings.NewReader(body), crlfType, int64(len(body)), MaxParts); v != nil || len(parts) != 1 {
			t.Errorf("got %d parts, %+v", len(parts), v)
		}
	})
}

func TestReadRefusesABodyCutByMaxBytesReader(t *testing.T) {
	body := http.MaxBytesReader(httptest.NewRecorder(), io.NopCloser(strings.NewReader(crlf())), 3)
	if _, _, v := Read(body, crlfType, MaxBytes, MaxParts); v == nil || !strings.Contains(v.Description, "larger than") {
		t.Errorf("got %+v, want a refusal for size", v)
	}
}

func TestReadCountsPartsAgainstMaxParts(t *testing.T) {
	part := httpPart("GET /v1/x HTTP/1.1\r\n\r\n")
	three := crlf(part, part, part)
	if _, parts, v := Read(strings.NewReader(three), crlfType, MaxBytes, 3); v != nil || len(parts) != 3 {
		t.Errorf("three parts under a limit of 3: got %d parts, %+v", len(parts), v)
	}
	_, _, v := Read(strings.NewReader(three), crlfType, MaxBytes, 2)
	if v == nil || v.Description != "Batch request has more than 2 parts." || v.Part != 0 {
		t.Errorf("three parts under a limit of 2: got %+v", v)
	}
	if _, _, v := Read(strings.NewReader(crlf()), crlfType, MaxBytes, 0); v != nil {
		t.Errorf("an empty batch under a limit of 0: got %+v", v)
	}
}

func TestReadBodiesAreTheirPartsOwn(t *testing.T) {
	body := java(
		javaRequest("POST", "https://vault.googleapis.com"+cancelPath, "", "application/json", `{"name":"operations/export-1"}`),
		javaRequest("POST", "https://vault.googleapis.com/v1/operations/export-2:cancel", "", "application/json", "{}"),
	)
	_, parts, v := Read(strings.NewReader(body), javaType, MaxBytes, MaxParts)
	if v != nil {
		t.Fatal(v.Description)
	}
	outer := httptest.NewRequest("POST", "https://www.googleapis.com/batch", nil)
	for i, want := range []string{`{"name":"operations/export-1"}`, "{}"} {
		// Each AsAlone has a fresh reader, whoever read the others.
		if got := readAll(t, parts[i].Request.Body); got != want {
			t.Errorf("part %d Request.Body = %q, want %q", i+1, got, want)
		}
		for range 2 {
			if got := readAll(t, parts[i].AsAlone(outer).Body); got != want {
				t.Errorf("part %d AsAlone().Body = %q, want %q", i+1, got, want)
			}
		}
	}
}

type ctxKey struct{}

func TestAsAloneIsTheRequestAsIfSentAlone(t *testing.T) {
	const token = "ya29.outer"
	body := java(
		javaRequest("POST", "https://vault.googleapis.com"+cancelPath, "ya29.part", "application/json; charset=UTF-8", "{}"),
		javaRequest("POST", "https://dai.googleapis.com/v1/operations/x:cancel?alt=proto", "", "", ""),
	) // Java parts carry absolute URLs
	py := python(
		pyRequest("POST", "androidmanagement.googleapis.com", "/v1/operations/y:cancel", "", ptr("{}")),
	)
	bare := crlf(httpPart("POST /v1/operations/z:cancel HTTP/1.1\r\n\r\n"))

	outer := httptest.NewRequest("POST", "https://www.googleapis.com/batch?alt=json&access_token="+token, nil)
	outer.Header.Set("Authorization", "Bearer "+token)
	outer.Header.Set("Content-Type", javaType)
	outer.Header.Set("Content-Length", "999")
	outer.Header.Set("Connection", "keep-alive")
	outer.Header.Set("X-Goog-User-Project", "billing-project")
	outer.Header.Set("User-Agent", "outer-agent")
	outer.RemoteAddr = "198.51.100.7:5555"
	outer = outer.WithContext(context.WithValue(outer.Context(), ctxKey{}, "outer"))

	read := func(ct, b string) []Part {
		t.Helper()
		_, parts, v := Read(strings.NewReader(b), ct, MaxBytes, MaxParts)
		if v != nil {
			t.Fatal(v.Description)
		}
		return parts
	}
	j := read(javaType, body)
	cases := []struct {
		name                            string
		part                            Part
		host, uri, auth, ctype, project string
	}{
		{"a part with its own Authorization keeps it, under its URL's host", j[0],
			"vault.googleapis.com", cancelPath + "?alt=json&access_token=" + token, "Bearer ya29.part", "application/json; charset=UTF-8", "billing-project"},
		{"a part without Authorization inherits the outer one; outer query follows its own", j[1],
			"dai.googleapis.com", "/v1/operations/x:cancel?alt=proto&alt=json&access_token=" + token, "Bearer " + token, "", "billing-project"},
		{"a path part is governed under its Host header", read(pyType, py)[0],
			"androidmanagement.googleapis.com", "/v1/operations/y:cancel?alt=json&access_token=" + token, "Bearer " + token, "application/json", "billing-project"},
		{"a path part without Host is governed under the outer host", read(crlfType, bare)[0],
			"www.googleapis.com", "/v1/operations/z:cancel?alt=json&access_token=" + token, "Bearer " + token, "", "billing-project"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.part.AsAlone(outer)
			if r.Host != tc.host || r.RequestURI != tc.uri || r.URL.RequestURI() != tc.uri || r.URL.Host != "" {
				t.Errorf("Host %q RequestURI %q URL %q; want %q %q in origin form", r.Host, r.RequestURI, r.URL, tc.host, tc.uri)
			}
			if r.Method != tc.part.Request.Method {
				t.Errorf("Method %q, want %q", r.Method, tc.part.Request.Method)
			}
			if got := r.Header.Values("Authorization"); len(got) != 1 || got[0] != tc.auth {
				t.Errorf("Authorization %q, want %q", got, tc.auth)
			}
			if got := r.Header.Get("Content-Type"); got != tc.ctype {
				t.Errorf("Content-Type %q, want the part's own %q", got, tc.ctype)
			}
			if got := r.Header.Get("X-Goog-User-Project"); got != tc.project {
				t.Errorf("X-Goog-User-Project %q, want the outer %q", got, tc.project)
			}
			for _, h := range []string{"Content-Length", "Connection", "Host"} {
				if v, ok := r.Header[h]; ok && !slices.Equal(v, tc.part.Request.Header[h]) {
					t.Errorf("%s %q is not the part's own %q", h, v, tc.part.Request.Header[h])
				}
			}
			if r.ContentLength != tc.part.Request.ContentLength {
				t.Errorf("ContentLength %d, want %d", r.ContentLength, tc.part.Request.ContentLength)
			}
			if r.Context().Value(ctxKey{}) != "outer" || r.RemoteAddr != outer.RemoteAddr || r.Proto != outer.Proto {
				t.Errorf("context, RemoteAddr or Proto is not the outer request's")
			}
			if got := r.URL.Query()["access_token"]; len(got) != 1 || got[0] != token {
				t.Errorf("access_token %q, want the outer one once", got)
			}
		})
	}
	t.Run("a part's header replaces every outer value of that name", func(t *testing.T) {
		r := read(crlfType, crlf(httpPart("GET /v1/x HTTP/1.1\r\nUser-Agent: part-agent\r\n\r\n")))[0].AsAlone(outer)
		if got := r.Header.Values("User-Agent"); len(got) != 1 || got[0] != "part-agent" {
			t.Errorf("User-Agent %q, want the part's alone", got)
		}
	})
	t.Run("changing an AsAlone header leaves the outer request alone", func(t *testing.T) {
		r := j[1].AsAlone(outer)
		r.Header.Add("X-Goog-User-Project", "other")
		r.Header["Authorization"][0] = "changed"
		if got := outer.Header.Values("X-Goog-User-Project"); len(got) != 1 || outer.Header.Get("Authorization") != "Bearer "+token {
			t.Errorf("outer headers changed: %q", outer.Header)
		}
	})
	t.Run("a part with a query and an outer request without one keeps its query", func(t *testing.T) {
		plain := httptest.NewRequest("POST", "https://www.googleapis.com/batch", nil)
		if r := j[1].AsAlone(plain); r.RequestURI != "/v1/operations/x:cancel?alt=proto" {
			t.Errorf("RequestURI %q", r.RequestURI)
		}
	})
}

func readAll(t *testing.T, r io.Reader) string {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestProblemsQuoteOnlyShortSanitizedExcerpts(t *testing.T) {
	long := strings.Repeat(`"\x`, 40)
	cases := []struct{ contentType, body string }{
		{"text/" + strings.Repeat("a", 100), ""},
		{crlfType, crlf("Content-Type: application/http\r\nContent-Transfer-Encoding: " + long + "\r\n\r\nGET /v1/x HTTP/1.1\r\n\r\n")},
		{crlfType, crlf("Content-Type: application/http\r\nContent-Transfer-Encoding: x" + strings.Repeat("\xff", 100) + "\r\n\r\nGET /v1/x HTTP/1.1\r\n\r\n")},
		{crlfType, crlf("Content-Type: application/" + long + "\r\n\r\nGET /v1/x HTTP/1.1\r\n\r\n")},
		{crlfType, crlf(httpPart(strings.Repeat("p", 100) + "é /v1/x HTTP/1.1\r\n\r\n"))},
	}
	for _, tc := range cases {
		_, _, v := Read(bytes.NewReader([]byte(tc.body)), tc.contentType, MaxBytes, MaxParts)
		if v == nil {
			t.Fatalf("%q not refused", tc.body)
		}
		if !printable(v.Description) || len(v.Description) > maxDescription {
			t.Errorf("description %q is long or not printable ASCII", v.Description)
		}
	}
}
