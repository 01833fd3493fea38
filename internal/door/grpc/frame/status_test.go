package frame

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"github.com/googleapis/gax-go/v2/apierror"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// A message with a '%', non-ASCII text and a control character: everything
// grpc-message percent-encoding exists for.
const refusalMessage = "Request had insufficient authentication scopes: 100% «vault» —\tnot ✓."

var (
	scopeInfo = &errdetails.ErrorInfo{
		Reason:   "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
		Domain:   "googleapis.com",
		Metadata: map[string]string{"service": "vault.googleapis.com", "method": "google.longrunning.Operations.CancelOperation"},
	}
	badName = &errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
		{Field: "name", Description: "Operation name must match operations/**."},
	}}
)

func statusWith(t testing.TB, code codes.Code, msg string, details ...proto.Message) *spb.Status {
	t.Helper()
	st := &spb.Status{Code: int32(code), Message: msg}
	for _, d := range details {
		a, err := anypb.New(d)
		if err != nil {
			t.Fatal(err)
		}
		st.Details = append(st.Details, a)
	}
	return st
}

// cancelThrough calls CancelOperation with Google's generated client over a
// real HTTP/2 connection to a server whose every answer is
// WriteTrailersOnly(st), and returns the metadata the client saw and the
// error.
func cancelThrough(t *testing.T, tls bool, st *spb.Status) (header, trailer metadata.MD, err error) {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 2 {
			t.Errorf("the client spoke %s, want HTTP/2", r.Proto)
		}
		_, _ = io.Copy(io.Discard, r.Body)
		WriteTrailersOnly(w, st)
	}))
	creds := insecure.NewCredentials()
	if tls {
		srv.EnableHTTP2 = true
		srv.StartTLS()
		pool := x509.NewCertPool()
		pool.AddCert(srv.Certificate())
		creds = credentials.NewClientTLSFromCert(pool, "example.com")
	} else {
		srv.Config.Protocols = new(http.Protocols)
		srv.Config.Protocols.SetUnencryptedHTTP2(true)
		srv.Start()
	}
	t.Cleanup(srv.Close)

	u, _ := url.Parse(srv.URL)
	conn, err := grpc.NewClient("passthrough:///"+u.Host, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = longrunningpb.NewOperationsClient(conn).CancelOperation(ctx,
		&longrunningpb.CancelOperationRequest{Name: "operations/export-123"},
		grpc.Header(&header), grpc.Trailer(&trailer))
	return header, trailer, err
}

func TestWriteTrailersOnlyReachesGoogleClients(t *testing.T) {
	tests := []struct {
		name        string
		st          *spb.Status
		wantCode    codes.Code
		wantMessage string
		wantInfo    *errdetails.ErrorInfo
		wantBad     *errdetails.BadRequest
	}{
		{
			name:        "a scope refusal carries its code, message, ErrorInfo and BadRequest",
			st:          statusWith(t, codes.PermissionDenied, refusalMessage, scopeInfo, badName),
			wantCode:    codes.PermissionDenied,
			wantMessage: refusalMessage,
			wantInfo:    scopeInfo,
			wantBad:     badName,
		},
		{
			// Without details the client has only grpc-message to read, so
			// this is the case that proves the percent-encoding.
			name:        "a message without details survives percent-encoding",
			st:          statusWith(t, codes.InvalidArgument, refusalMessage),
			wantCode:    codes.InvalidArgument,
			wantMessage: refusalMessage,
		},
		{
			name:        "invalid UTF-8 in a message arrives as U+FFFD, details intact",
			st:          statusWith(t, codes.Unauthenticated, "bad \xff token", scopeInfo),
			wantCode:    codes.Unauthenticated,
			wantMessage: "bad \uFFFD token",
			wantInfo:    scopeInfo,
		},
		{
			name:     "a status without a message is just its code",
			st:       statusWith(t, codes.Unimplemented, ""),
			wantCode: codes.Unimplemented,
		},
	}
	for _, transport := range []struct {
		name string
		tls  bool
	}{{"over TLS", true}, {"over h2c", false}} {
		for _, tt := range tests {
			t.Run(transport.name+"/"+tt.name, func(t *testing.T) {
				header, trailer, err := cancelThrough(t, transport.tls, tt.st)
				s, _ := status.FromError(err)
				if s.Code() != tt.wantCode || s.Message() != tt.wantMessage {
					t.Fatalf("client got %v %q, want %v %q", s.Code(), s.Message(), tt.wantCode, tt.wantMessage)
				}
				// Trailers-only: the client sees no response headers, and no
				// content-length among the trailers handed to the caller.
				if len(header) != 0 {
					t.Errorf("response headers %v, want a trailers-only answer", header)
				}
				if cl, ok := trailer["content-length"]; ok {
					t.Errorf("trailer metadata holds content-length %q", cl)
				}

				ae, ok := apierror.FromError(err)
				if !ok {
					t.Fatalf("apierror.FromError(%v) is not an APIError", err)
				}
				if tt.wantInfo == nil {
					if ae.Reason() != "" {
						t.Errorf("reason %q, want none", ae.Reason())
					}
				} else if ae.Reason() != tt.wantInfo.Reason || ae.Domain() != tt.wantInfo.Domain || !equalMaps(ae.Metadata(), tt.wantInfo.Metadata) {
					t.Errorf("ErrorInfo %q %q %v, want %q %q %v", ae.Reason(), ae.Domain(), ae.Metadata(), tt.wantInfo.Reason, tt.wantInfo.Domain, tt.wantInfo.Metadata)
				}
				if got := ae.Details().BadRequest; !proto.Equal(got, tt.wantBad) {
					t.Errorf("BadRequest %v, want %v", got, tt.wantBad)
				}
			})
		}
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestWriteTrailersOnlyHeaders(t *testing.T) {
	tests := []struct {
		name        string
		message     string
		wantMessage string // the grpc-message header
	}{
		{name: "printable ASCII is sent as is", message: "Method not found.", wantMessage: "Method not found."},
		{name: "a percent sign is encoded", message: "100%", wantMessage: "100%25"},
		{name: "non-ASCII text is encoded byte by byte", message: "é✓", wantMessage: "%C3%A9%E2%9C%93"},
		{name: "control characters are encoded", message: "a\tb\r\nc\x7f", wantMessage: "a%09b%0D%0Ac%7F"},
		{name: "space and tilde are not encoded", message: " ~ ", wantMessage: " ~ "},
		{name: "an empty message sends no grpc-message", message: "", wantMessage: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := statusWith(t, codes.PermissionDenied, tt.message, scopeInfo)
			rec := httptest.NewRecorder()
			WriteTrailersOnly(rec, st)
			res := rec.Result()
			h := res.Header
			if res.StatusCode != http.StatusOK || h.Get("Content-Type") != "application/grpc" || h.Get("Grpc-Status") != "7" {
				t.Errorf("status %d, content-type %q, grpc-status %q; want 200, application/grpc, 7", res.StatusCode, h.Get("Content-Type"), h.Get("Grpc-Status"))
			}
			if got, present := h["Grpc-Message"]; tt.wantMessage == "" && present || tt.wantMessage != "" && (len(got) != 1 || got[0] != tt.wantMessage) {
				t.Errorf("grpc-message %q, want %q", got, tt.wantMessage)
			}
			if rec.Body.Len() != 0 {
				t.Errorf("body %q, want none", rec.Body)
			}
			raw := h.Get("Grpc-Status-Details-Bin")
			if strings.HasSuffix(raw, "=") {
				t.Errorf("grpc-status-details-bin %q is padded; grpc-go sends it unpadded", raw)
			}
			b, err := base64.RawStdEncoding.DecodeString(raw)
			if err != nil {
				t.Fatalf("grpc-status-details-bin: %v", err)
			}
			var got spb.Status
			if err := proto.Unmarshal(b, &got); err != nil || !proto.Equal(&got, st) {
				t.Errorf("grpc-status-details-bin holds %v (%v), want %v", &got, err, st)
			}
		})
	}
}

func TestWriteTrailersOnlyOverHTTP1(t *testing.T) {
	// A gRPC request over HTTP/1.1 is governed too; its refusal must still
	// be a complete response, although it carries no Content-Length.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteTrailersOnly(w, statusWith(t, codes.PermissionDenied, refusalMessage, scopeInfo))
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/google.longrunning.Operations/CancelOperation", bytes.NewReader(frame(0, cancelMsg)))
	req.Header.Set("Content-Type", "application/grpc")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil || len(b) != 0 {
		t.Errorf("body %q (%v), want a complete empty body", b, err)
	}
	if res.StatusCode != http.StatusOK || res.Header.Get("Grpc-Status") != "7" {
		t.Errorf("HTTP %d, grpc-status %q; want 200, 7", res.StatusCode, res.Header.Get("Grpc-Status"))
	}
}

// webTrailer decodes a gRPC-Web refusal body back into its trailer block.
func webTrailer(t *testing.T, body []byte, text bool) map[string]string {
	t.Helper()
	if text {
		var err error
		if body, err = base64.StdEncoding.DecodeString(string(body)); err != nil {
			t.Fatalf("text body is not base64: %v", err)
		}
	}
	if len(body) < headerLen || body[0] != 0x80 {
		t.Fatalf("body %q does not start with a trailer frame", body)
	}
	n := binary.BigEndian.Uint32(body[1:headerLen])
	if int(n) != len(body)-headerLen {
		t.Fatalf("trailer frame length %d, but %d bytes follow", n, len(body)-headerLen)
	}
	block := string(body[headerLen:])
	if !strings.HasSuffix(block, "\r\n") {
		t.Errorf("trailer block %q does not end its last line", block)
	}
	fields := map[string]string{}
	for _, line := range strings.Split(strings.TrimSuffix(block, "\r\n"), "\r\n") {
		k, v, ok := strings.Cut(line, ": ")
		if !ok || k != strings.ToLower(k) {
			t.Errorf("trailer line %q is not a lower-case \"key: value\"", line)
		}
		fields[k] = v
	}
	return fields
}

func TestWriteWeb(t *testing.T) {
	for _, tt := range []struct {
		name            string
		text            bool
		wantContentType string
	}{
		{"a binary refusal is one trailer frame", false, "application/grpc-web+proto"},
		{"a text refusal is that frame in base64", true, "application/grpc-web-text+proto"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := statusWith(t, codes.PermissionDenied, refusalMessage, scopeInfo, badName)
			rec := httptest.NewRecorder()
			WriteWeb(rec, st, tt.text)
			res := rec.Result()
			if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != tt.wantContentType {
				t.Errorf("status %d, content-type %q; want 200, %q", res.StatusCode, res.Header.Get("Content-Type"), tt.wantContentType)
			}
			if res.Header.Get("Grpc-Status") != "" {
				t.Errorf("grpc-status header %q; the status belongs in the body only", res.Header.Get("Grpc-Status"))
			}
			if res.Header.Get("Content-Length") != strconv.Itoa(rec.Body.Len()) {
				t.Errorf("content-length %q for a %d-byte body", res.Header.Get("Content-Length"), rec.Body.Len())
			}
			body := bytes.Clone(rec.Body.Bytes())
			fields := webTrailer(t, body, tt.text)
			if fields["grpc-status"] != "7" {
				t.Errorf("grpc-status %q, want 7", fields["grpc-status"])
			}
			if msg, err := url.PathUnescape(fields["grpc-message"]); err != nil || msg != refusalMessage {
				t.Errorf("grpc-message decodes to %q (%v), want %q", msg, err, refusalMessage)
			}
			b, err := base64.RawStdEncoding.DecodeString(fields["grpc-status-details-bin"])
			if err != nil {
				t.Fatalf("grpc-status-details-bin: %v", err)
			}
			var got spb.Status
			if err := proto.Unmarshal(b, &got); err != nil || !proto.Equal(&got, st) {
				t.Errorf("grpc-status-details-bin holds %v (%v), want %v", &got, err, st)
			}

			// What the gateway itself would record had it forwarded this.
			r := NewWebStatusRecorder(httptest.NewRecorder(), tt.text)
			_, _ = r.Write(body)
			if code, ok := r.Status(); !ok || code != 7 {
				t.Errorf("WebStatusRecorder reads status %d, %v, want 7", code, ok)
			}
		})
	}
}
