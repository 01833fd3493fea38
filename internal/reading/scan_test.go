package reading_test

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/lro-cancel/lro_cancel/internal/door/batch/wire"
	"github.com/lro-cancel/lro_cancel/internal/reading"
)

func TestMayHoldCancelAnswersFalseOnlyWhenNoReadingIsACancel(t *testing.T) {
	part := func(head string) string {
		return "--b\r\nContent-Type: application/http\r\n\r\n" + head + "\r\n\r\n--b--\r\n"
	}
	tests := []struct {
		name, raw string
		want      bool
	}{
		{"a batch of reads", part("GET /v1/matters/m?alt=json HTTP/1.1"), false},
		{"Python's binary transfer encoding", "Content-Transfer-Encoding: binary\r\n" + part("GET /drive/v3/files/f HTTP/1.1"), false},
		{"escapes of no letter", part("GET /v1/files?q=a%20b%2Cc HTTP/1.1"), false},
		{"an empty batch", "--b--", false},

		{"a cancel", part("POST /v1/operations/x:cancel HTTP/1.1"), true},
		{"a cancel in capitals", part("POST /v1/operations/x:CANCEL HTTP/1.1"), true},
		{"a letter escaped", part("POST /v1/operations/x:%63ancel HTTP/1.1"), true},
		{"an RPC path", part("POST /google.longrunning.Operations/CancelOperation HTTP/1.1"), true},
		{"a nested batch", part("POST /batch HTTP/1.1"), true},
		{"quoted-printable", "Content-Transfer-Encoding: quoted-printable\r\n" + part("POST /v1/x:=63ancel HTTP/1.1"), true},
		{"base64", "content-transfer-encoding: BASE64\r\n" + part("UE9TVA=="), true},
		{"an encoding with parameters", "Content-Transfer-Encoding: binary; x=y\r\n" + part("GET / HTTP/1.1"), true},
		{"a folded encoding", "Content-Transfer-Encoding:\r\n binary\r\n" + part("GET / HTTP/1.1"), true},
		{"a compressed part", "Content-Encoding: gzip\r\n" + part("\x1f\x8b"), true},
		{"a header name without its colon", "Content-Encoding gzip\r\n" + part("GET / HTTP/1.1"), true},
	}
	for _, tt := range tests {
		if got := reading.MayHoldCancel([]byte(tt.raw)); got != tt.want {
			t.Errorf("%s: MayHoldCancel = %v, want %v", tt.name, got, tt.want)
		}
	}
	raw := []byte(strings.Repeat(part("GET /v1/matters/m HTTP/1.1"), 10))
	if n := testing.AllocsPerRun(100, func() { reading.MayHoldCancel(raw) }); n != 0 {
		t.Errorf("MayHoldCancel: %v allocations, want 0", n)
	}
}

// FuzzScanAgreesWithReference holds the batch scan to the reference
// reader: a batch the scan lets through unparsed, whatever its boundary,
// has no part that any reading makes a cancel.
func FuzzScanAgreesWithReference(f *testing.F) {
	f.Add("b", "--b\r\nContent-Type: application/http\r\n\r\nGET /v1/matters HTTP/1.1\r\n\r\n--b--\r\n")
	f.Add("b", "--b\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\nPOST /v1/operations/x:cancel HTTP/1.1\r\n\r\n--b--\r\n")
	f.Add("x", "--x\nContent-Type: application/http\n\nPOST /v1/operations/x:%63ancel\n\n--x--\n")
	f.Add("b", "--b\r\nContent-Type: application/http\r\n\r\nPOST https://foo.googleapis.com/v1/p/operations/o/cancel HTTP/1.1\r\n\r\n--b--\r\n")
	// The shapes tried against the pair filter: a word split over two
	// eight-byte windows, an escape in the second letter, a word in the
	// last bytes, a part that is a batch path read two ways.
	f.Add("b", "--b\r\nContent-Type: application/http\r\n\r\nPOST /v1/operations/xyz:c%61ncel HTTP/1.1\r\n\r\n--b--\r\n")
	f.Add("b", "--b\r\nContent-Type: application/http\r\n\r\nPOST /v1/operations/o:CaNcEl HTTP/1.1\r\n\r\n--b--\r\n")
	f.Add("b", "--b\r\nContent-Type: application/http\r\n\r\nPOST /v1/operations/o:cancel\n--b--")
	f.Add("b", "--b\r\nContent-Type: application/http\r\n\r\nPOST /BAtCh/.. HTTP/1.1\r\n\r\n--b--\r\n")
	for _, s := range adversarialShapes(f) {
		for _, ct := range s.Headers["Content-Type"] {
			if _, b, ok := strings.Cut(ct, "boundary="); ok && s.Body != "" {
				f.Add(strings.Trim(b, `"`), s.Body)
			}
		}
	}
	f.Fuzz(func(t *testing.T, boundary, raw string) {
		if reading.MayHoldCancel([]byte(raw)) {
			return
		}
		parts, problem := wire.Parse([]byte(raw), "multipart/mixed; boundary=\""+boundary+"\"", wire.MaxParts)
		if problem != nil {
			return
		}
		outer := &http.Request{Method: "POST", Host: vault, URL: &url.URL{Path: "/batch"}, Header: http.Header{}}
		for _, p := range parts {
			alone := p.AsAlone(outer)
			if ref := reading.Reference(nil, alone); len(ref) > 0 {
				t.Fatalf("the scan lets %q through; the reference reads part %d as %+v", raw, p.Index, ref)
			}
		}
	})
}

// The scan of what a Python client sends for 100 reads (the load bench's
// batch): one pass, nothing found.
func BenchmarkMayHoldCancel(b *testing.B) {
	var sb strings.Builder
	for i := range 100 {
		sb.WriteString("--===============7330845974216740156==\nContent-Type: application/http\nMIME-Version: 1.0\n" +
			"Content-Transfer-Encoding: binary\nContent-ID: <4a7cd0b1-4a8c-4d2f-9b1e-1c2d3e4f5a6b + " + strconv.Itoa(i+1) + ">\n\n" +
			"GET /v1/matters/m-" + strconv.Itoa(i+1) + "?alt=json HTTP/1.1\nContent-Type: application/json\nMIME-Version: 1.0\n" +
			"accept: application/json\naccept-encoding: gzip, deflate\nuser-agent: (gzip)\n" +
			"x-goog-api-client: gdcl/2.149.0 gl-python/3.12.3\nauthorization: Bearer ya29.bench\nHost: vault.googleapis.com\n\n\n")
	}
	sb.WriteString("--===============7330845974216740156==--")
	raw := []byte(sb.String())
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if reading.MayHoldCancel(raw) {
			b.Fatal("found a cancel")
		}
	}
}

// The scan looks at eight positions at a time and at the bytes after
// them: every word it looks for is found at every alignment, also in the
// last bytes of a batch and split by an escape.
func TestMayHoldCancelFindsEachWordAtEveryAlignment(t *testing.T) {
	words := []string{"cancel", "CANCEL", "cAnCeL", "batch", "BaTcH", "c%61ncel", "%63ancel", "b%41tch",
		"Content-Encoding: gzip\r\n", "content-transfer-encoding: base64\r\n", "CONTENT-ENCODING:x"}
	for _, w := range words {
		for pad := range 18 {
			for _, tail := range []string{"", "x", "\r\n--b--\r\n"} {
				raw := strings.Repeat("x", pad) + w + tail
				if !reading.MayHoldCancel([]byte(raw)) {
					t.Errorf("MayHoldCancel(%q) = false", raw)
				}
			}
		}
	}
	for pad := range 18 {
		for _, w := range []string{"cance", "batc", "content-encodin", "%2F", "ca", "bo", "co"} {
			if raw := strings.Repeat("x", pad) + w; reading.MayHoldCancel([]byte(raw)) {
				t.Errorf("MayHoldCancel(%q) = true", raw)
			}
		}
	}
}
