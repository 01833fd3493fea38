package wire

import (
	"bytes"
	"mime"
	"net/http/httptest"
	"testing"
)

// maxDescription bounds a Problem's description: its sentence and at most
// one excerpt of client input.
const maxDescription = 200

// delimiters counts the parts of a batch the plain RFC 2046 way, apart
// from Read's own scan: the lines before the close delimiter that are "--"
// and the boundary, then only whitespace; -1 without a close delimiter.
func delimiters(raw []byte, boundary string) int {
	n := 0
	for _, line := range bytes.Split(raw, []byte("\n")) {
		switch string(bytes.TrimRight(line, " \t\r")) {
		case "--" + boundary:
			n++
		case "--" + boundary + "--":
			return n
		}
	}
	return -1
}

func FuzzRead(f *testing.F) {
	for _, tc := range readCases {
		f.Add(tc.contentType, []byte(tc.body))
	}
	for _, tc := range refuseCases {
		f.Add(tc.contentType, []byte(tc.body))
	}
	outer := httptest.NewRequest("POST", "https://www.googleapis.com/batch?alt=json", nil)
	outer.Header.Set("Authorization", "Bearer ya29.outer")
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		raw, parts, v := Read(bytes.NewReader(body), contentType, 1<<16, 64)
		if !bytes.HasPrefix(body, raw) || len(raw) > 1<<16+1 {
			t.Fatalf("raw (%d bytes) is not what was read of the input (%d bytes)", len(raw), len(body))
		}
		if v != nil {
			if parts != nil {
				t.Fatalf("%d parts with a problem", len(parts))
			}
			if !printable(v.Description) || len(v.Description) > maxDescription || v.Part < 0 || v.Part > 64 {
				t.Fatalf("problem %+v: description long or not printable ASCII, or part out of range", v)
			}
			return
		}
		if !bytes.Equal(raw, body) {
			t.Fatalf("read %d of %d bytes and accepted", len(raw), len(body))
		}
		_, params, err := mime.ParseMediaType(contentType)
		if err != nil {
			t.Fatalf("accepted Content-Type %q: %v", contentType, err)
		}
		if n := delimiters(raw, params["boundary"]); n != len(parts) {
			t.Fatalf("read %d parts, RFC 2046 counts %d delimiters", len(parts), n)
		}
		for i, p := range parts {
			if p.Index != i+1 {
				t.Fatalf("part %d has Index %d", i+1, p.Index)
			}
			if !printable(p.ContentID) || len(p.ContentID) > maxContentID {
				t.Fatalf("part %d has Content-ID %q", i+1, p.ContentID)
			}
			r := p.AsAlone(outer)
			if r.RequestURI != r.URL.RequestURI() || r.Host == "" || r.ContentLength != p.Request.ContentLength {
				t.Fatalf("part %d alone: RequestURI %q, URL %q, Host %q, ContentLength %d", i+1, r.RequestURI, r.URL, r.Host, r.ContentLength)
			}
		}
	})
}
