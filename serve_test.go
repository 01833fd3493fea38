package lrocancel

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/lro-cancel/lro_cancel/internal/audit"
)

// captureSink keeps the completed records.
type captureSink struct {
	mu   sync.Mutex
	recs []audit.Record
}

func (c *captureSink) Write(r *audit.Record) error {
	if r.Stage == audit.StageCompleted {
		c.mu.Lock()
		c.recs = append(c.recs, *r)
		c.mu.Unlock()
	}
	return nil
}

// scopedTokenInfo answers ya29.scoped with Vault's scope, ya29.email with
// an email scope only, and refuses every other token.
func scopedTokenInfo(tb testing.TB) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scope := map[string]string{
			"ya29.scoped": "https://www.googleapis.com/auth/ediscovery",
			"ya29.email":  "https://www.googleapis.com/auth/userinfo.email",
		}[r.PostFormValue("access_token")]
		if scope == "" {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":"invalid_token"}`)
			return
		}
		fmt.Fprintf(w, `{"sub":"1","email":"a@example.com","scope":%q,"expires_in":"3599"}`, scope)
	}))
	tb.Cleanup(srv.Close)
	return srv
}

func grpcFrame(msg []byte) []byte {
	b := make([]byte, 5, 5+len(msg))
	binary.BigEndian.PutUint32(b[1:], uint32(len(msg)))
	return append(b, msg...)
}

func gzipFrame(tb testing.TB, msg []byte) []byte {
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	_, _ = zw.Write(msg)
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	f := grpcFrame(z.Bytes())
	f[0] = 1
	return f
}

func cancelMessage(tb testing.TB, name string) []byte {
	b, err := proto.Marshal(&longrunningpb.CancelOperationRequest{Name: name})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// serveCase is one request through ServeHTTP and what the caller and the
// upstream see of it.
type serveCase struct {
	name        string
	method      string
	host, path  string
	header      []string
	twice       []string // a header added a second time
	body        []byte
	wantStatus  int
	wantGRPC    string // grpc-status the caller sees ("" for none)
	wantReason  string // the ErrorInfo reason, in whichever encoding
	forwarded   bool
	wantRecord  audit.Decision // "" when no record is due
	wantProto   string
	wantGRPCRec int
}

const lroPath = "/google.longrunning.Operations/CancelOperation"

// cancelPart is a batch (boundary b) of one vault cancel.
const cancelPart = "--b\r\nContent-Type: application/http\r\n\r\nPOST /v1/operations/x:cancel HTTP/1.1\r\n\r\n\r\n--b--\r\n"

// A fast table of every front door through ServeHTTP, with a
// caddyhttp.HandlerFunc as the upstream: status, gRPC status, reason,
// whether the upstream saw the request (and its exact bytes) and the record.
func TestServeHTTPGovernsEveryFrontDoor(t *testing.T) {
	ti := scopedTokenInfo(t)
	msg := cancelMessage(t, "operations/x")
	grpcH := []string{"Content-Type", "application/grpc", "Authorization", "Bearer ya29.scoped"}
	grpcEmail := []string{"Content-Type", "application/grpc", "Authorization", "Bearer ya29.email"}
	web := []string{"Content-Type", "application/grpc-web+proto", "Authorization", "Bearer ya29.email"}
	webText := []string{"Content-Type", "application/grpc-web-text", "Authorization", "Bearer ya29.email"}
	rpcProto := []string{"Content-Type", "application/x-protobuf", "Authorization", "Bearer ya29.email"}
	unknownField := append(append([]byte{}, msg...), 0x12, 0x01, 'x') // field 2
	for _, tc := range []serveCase{
		{name: "REST cancel with a scoped token is forwarded", method: "POST", host: "vault.googleapis.com",
			path: "/v1/operations/x:cancel", header: []string{"Authorization", "Bearer ya29.scoped"},
			wantStatus: 200, forwarded: true, wantRecord: audit.Forwarded, wantProto: "http"},
		{name: "REST cancel without scope is refused", method: "POST", host: "vault.googleapis.com",
			path: "/v1/operations/x:cancel", header: []string{"Authorization", "Bearer ya29.email"},
			wantStatus: 403, wantReason: "ACCESS_TOKEN_SCOPE_INSUFFICIENT", wantRecord: audit.ScopeInsufficient, wantProto: "http"},
		{name: "a GET that a method override makes a cancel is refused", method: "GET", host: "vault.googleapis.com",
			path: "/v1/operations/x:cancel", header: []string{"Authorization", "Bearer ya29.scoped", "X-Method-Override", "post"},
			wantStatus: 400, wantReason: "METHOD_OVERRIDE_REFUSED", wantRecord: audit.InvalidRequest, wantProto: "http"},
		{name: "a GET with an override to a method that makes no cancel passes", method: "GET", host: "vault.googleapis.com",
			path: "/v1/operations/x:cancel", header: []string{"Authorization", "Bearer ya29.scoped", "X-HTTP-Method-Override", "PATCH"},
			wantStatus: 200, forwarded: true},
		{name: "gRPC with two Content-Type headers is refused", method: "POST", host: "vault.googleapis.com",
			path: lroPath, header: []string{"Content-Type", "application/grpc", "Authorization", "Bearer ya29.scoped"}, body: grpcFrame(msg),
			twice:      []string{"Content-Type", "application/json"},
			wantStatus: 200, wantGRPC: "3", wantReason: "UNSUPPORTED_CONTENT_TYPE", wantRecord: audit.InvalidRequest, wantProto: "grpc", wantGRPCRec: 3},
		// Its parts inherit the override header, so its cancel is refused
		// as an override: governed, never passed.
		{name: "a GET /batch that a method override makes a POST is read as a batch", method: "GET", host: "vault.googleapis.com",
			path: "/batch", header: []string{"X-HTTP-Method-Override", "POST", "Content-Type", "multipart/mixed; boundary=b"},
			body:       []byte("--b\r\nContent-Type: application/http\r\n\r\nPOST /v1/operations/x:cancel HTTP/1.1\r\nAuthorization: Bearer ya29.email\r\n\r\n\r\n--b--\r\n"),
			wantStatus: 400, wantReason: "METHOD_OVERRIDE_REFUSED", wantRecord: audit.InvalidRequest, wantProto: "batch"},
		{name: "gRPC cancel with a scoped token is forwarded byte for byte", method: "POST", host: "vault.googleapis.com",
			path: lroPath, header: grpcH, body: grpcFrame(msg),
			wantStatus: 200, forwarded: true, wantRecord: audit.Forwarded, wantProto: "grpc", wantGRPCRec: 0},
		{name: "gzip gRPC cancel is read and forwarded compressed", method: "POST", host: "vault.googleapis.com",
			path: lroPath, header: append([]string{"Grpc-Encoding", "gzip"}, grpcH...), body: gzipFrame(t, msg),
			wantStatus: 200, forwarded: true, wantRecord: audit.Forwarded, wantProto: "grpc"},
		{name: "gRPC cancel without scope is PERMISSION_DENIED", method: "POST", host: "vault.googleapis.com",
			path: lroPath, header: grpcEmail, body: grpcFrame(msg),
			wantStatus: 200, wantGRPC: "7", wantReason: "ACCESS_TOKEN_SCOPE_INSUFFICIENT", wantRecord: audit.ScopeInsufficient, wantProto: "grpc", wantGRPCRec: 7},
		{name: "gRPC cancel without a token is UNAUTHENTICATED", method: "POST", host: "vault.googleapis.com",
			path: lroPath, header: []string{"Content-Type", "application/grpc"}, body: grpcFrame(msg),
			wantStatus: 200, wantGRPC: "16", wantReason: "CREDENTIALS_MISSING", wantRecord: audit.Unauthenticated, wantProto: "grpc", wantGRPCRec: 16},
		{name: "gRPC message with an unknown field is INVALID_ARGUMENT", method: "POST", host: "vault.googleapis.com",
			path: lroPath, header: grpcH, body: grpcFrame(unknownField),
			wantStatus: 200, wantGRPC: "3", wantReason: "INVALID_CANCEL_BODY", wantRecord: audit.InvalidBody, wantProto: "grpc", wantGRPCRec: 3},
		{name: "an unknown field with an unscoped token is PERMISSION_DENIED first, as a REST body would be", method: "POST", host: "vault.googleapis.com",
			path: lroPath, header: grpcEmail, body: grpcFrame(unknownField),
			wantStatus: 200, wantGRPC: "7", wantReason: "ACCESS_TOKEN_SCOPE_INSUFFICIENT", wantRecord: audit.ScopeInsufficient, wantProto: "grpc", wantGRPCRec: 7},
		{name: "two gRPC messages are INVALID_ARGUMENT", method: "POST", host: "vault.googleapis.com",
			path: lroPath, header: grpcH, body: append(grpcFrame(msg), grpcFrame(msg)...),
			wantStatus: 200, wantGRPC: "3", wantRecord: audit.InvalidBody, wantProto: "grpc", wantGRPCRec: 3},
		{name: "a deflate gRPC message is INVALID_ARGUMENT", method: "POST", host: "vault.googleapis.com",
			path: lroPath, header: append([]string{"Grpc-Encoding", "deflate"}, grpcH...), body: grpcFrame(msg),
			wantStatus: 200, wantGRPC: "3", wantRecord: audit.InvalidBody, wantProto: "grpc", wantGRPCRec: 3},
		{name: "gRPC in another letter case is refused", method: "POST", host: "vault.googleapis.com",
			path: strings.ToLower(lroPath), header: grpcH, body: grpcFrame(msg),
			wantStatus: 200, wantGRPC: "3", wantReason: "AMBIGUOUS_PATH", wantRecord: audit.InvalidPath, wantProto: "grpc", wantGRPCRec: 3},
		{name: "gRPC path with a JSON content type gets the JSON envelope", method: "POST", host: "vault.googleapis.com",
			path: lroPath, header: []string{"Content-Type", "application/json", "Authorization", "Bearer ya29.scoped"}, body: []byte(`{"name":"operations/x"}`),
			wantStatus: 400, wantReason: "UNSUPPORTED_CONTENT_TYPE", wantRecord: audit.InvalidRequest, wantProto: "grpc", wantGRPCRec: 3},
		{name: "gRPC-Web cancel without scope gets a trailer frame", method: "POST", host: "vault.googleapis.com",
			path: lroPath, header: web, body: grpcFrame(msg),
			wantStatus: 200, wantGRPC: "7", wantReason: "ACCESS_TOKEN_SCOPE_INSUFFICIENT", wantRecord: audit.ScopeInsufficient, wantProto: "grpc-web", wantGRPCRec: 7},
		{name: "gRPC-Web text cancel without scope gets a base64 trailer frame", method: "POST", host: "vault.googleapis.com",
			path: lroPath, header: webText, body: []byte(base64.StdEncoding.EncodeToString(grpcFrame(msg))),
			wantStatus: 200, wantGRPC: "7", wantReason: "ACCESS_TOKEN_SCOPE_INSUFFICIENT", wantRecord: audit.ScopeInsufficient, wantProto: "grpc-web", wantGRPCRec: 7},
		{name: "gRPC-Web with a whole-body Content-Encoding is INVALID_ARGUMENT", method: "POST", host: "vault.googleapis.com",
			path: lroPath, header: append([]string{"Content-Encoding", "gzip"}, web...), body: grpcFrame(msg),
			wantStatus: 200, wantGRPC: "3", wantReason: "INVALID_CANCEL_BODY", wantRecord: audit.InvalidBody, wantProto: "grpc-web", wantGRPCRec: 3},
		{name: "$rpc protobuf cancel without scope is a serialized Status", method: "POST", host: "vault.googleapis.com",
			path: "/$rpc" + lroPath, header: rpcProto, body: msg,
			wantStatus: 403, wantReason: "ACCESS_TOKEN_SCOPE_INSUFFICIENT", wantRecord: audit.ScopeInsufficient, wantProto: "rpc", wantGRPCRec: 7},
		{name: "$rpc JSON cancel with a scoped token is forwarded", method: "POST", host: "vault.googleapis.com",
			path: "/$rpc" + lroPath, header: []string{"Content-Type", "application/json", "Authorization", "Bearer ya29.scoped"},
			body: []byte(`{"name":"operations/x"}`), wantStatus: 200, forwarded: true, wantRecord: audit.Forwarded, wantProto: "rpc"},
		{name: "$rpc with a query credential is refused", method: "POST", host: "vault.googleapis.com",
			path: "/$rpc" + lroPath + "?access_token=ya29.scoped", header: []string{"Content-Type", "application/x-protobuf"}, body: msg,
			wantStatus: 400, wantReason: "QUERY_NOT_ALLOWED", wantRecord: audit.InvalidRequest, wantProto: "rpc", wantGRPCRec: 3},
		// What reads two ways is refused by the reader, in the caller's own encoding.
		{name: "REST: $httpMethod beside an override header is ambiguous", method: "GET", host: "vault.googleapis.com",
			path: "/v1/operations/x:cancel?$httpMethod=POST", header: []string{"Authorization", "Bearer ya29.scoped", "X-HTTP-Method", "POST"},
			wantStatus: 400, wantReason: "AMBIGUOUS_REQUEST", wantRecord: audit.AmbiguousRequest, wantProto: "http"},
		{name: "REST: a GET that $httpMethod makes a cancel is an override", method: "GET", host: "vault.googleapis.com",
			path: "/v1/operations/x:cancel?%24httpMethod=POST", header: []string{"Authorization", "Bearer ya29.scoped"},
			wantStatus: 400, wantReason: "METHOD_OVERRIDE_REFUSED", wantRecord: audit.InvalidRequest, wantProto: "http"},
		{name: "REST: the legacy host's storage cancel is governed", method: "POST", host: "www.googleapis.com",
			path: "/storage/v1/b/bkt/operations/op/cancel", header: []string{"Authorization", "Bearer ya29.scoped"},
			wantStatus: 403, wantReason: "ACCESS_TOKEN_SCOPE_INSUFFICIENT", wantRecord: audit.ScopeInsufficient, wantProto: "http"},
		{name: "gRPC: a lower-case method is ambiguous", method: "post", host: "vault.googleapis.com",
			path: lroPath, header: grpcH, body: grpcFrame(msg),
			wantStatus: 200, wantGRPC: "3", wantReason: "AMBIGUOUS_REQUEST", wantRecord: audit.AmbiguousRequest, wantProto: "grpc", wantGRPCRec: 3},
		{name: "gRPC-Web: $ct beside a Content-Type that disagrees is ambiguous", method: "POST", host: "vault.googleapis.com",
			path: lroPath + "?$ct=application/grpc-web-text", header: web, body: grpcFrame(msg),
			wantStatus: 200, wantGRPC: "3", wantReason: "AMBIGUOUS_REQUEST", wantRecord: audit.AmbiguousRequest, wantProto: "grpc-web", wantGRPCRec: 3},
		{name: "$rpc: matrix parameters are ambiguous", method: "POST", host: "vault.googleapis.com",
			path: "/$rpc" + lroPath + ";a=b", header: rpcProto, body: msg,
			wantStatus: 400, wantReason: "AMBIGUOUS_REQUEST", wantRecord: audit.AmbiguousRequest, wantProto: "rpc", wantGRPCRec: 3},
		{name: "batch: $httpHeaders on a batch that may hold a cancel is ambiguous", method: "POST", host: "vault.googleapis.com",
			path: "/batch?$httpHeaders=x", header: []string{"Content-Type", "multipart/mixed; boundary=b"}, body: []byte(cancelPart),
			wantStatus: 400, wantReason: "AMBIGUOUS_REQUEST", wantRecord: audit.AmbiguousRequest, wantProto: "batch"},
		{name: "batch: a batch whose bytes hold no cancel passes unparsed, however it reads", method: "POST", host: "vault.googleapis.com",
			path: "/batch?$httpHeaders=x", header: []string{"Content-Type", "text/plain", "Content-Type", "multipart/mixed"},
			body:       []byte("--b\r\nContent-Type: application/http\r\n\r\nGET /v1/matters HTTP/1.1\r\n\r\nnot even closed"),
			wantStatus: 200, forwarded: true},
		{name: "another gRPC method passes untouched", method: "POST", host: "vault.googleapis.com",
			path: "/google.longrunning.Operations/GetOperation", header: grpcEmail, body: grpcFrame(msg),
			wantStatus: 200, forwarded: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := provision(t, &Handler{TokenInfo: &TokenInfoConfig{URL: ti.URL}})
			sink := &captureSink{}
			h.core.Sink = sink
			var upstreamBody []byte
			called := false
			next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
				called = true
				var b bytes.Buffer
				_, _ = b.ReadFrom(r.Body)
				upstreamBody = b.Bytes()
				w.Header().Set("Grpc-Status", "0")
				w.WriteHeader(http.StatusOK)
				return nil
			})
			r := request(tc.method, tc.host, tc.path, string(tc.body))
			for i := 0; i+1 < len(tc.header); i += 2 {
				r.Header.Set(tc.header[i], tc.header[i+1])
			}
			for i := 0; i+1 < len(tc.twice); i += 2 {
				r.Header.Add(tc.twice[i], tc.twice[i+1])
			}
			w := httptest.NewRecorder()
			if err := h.ServeHTTP(w, r, next); err != nil {
				t.Fatal(err)
			}
			if w.Code != tc.wantStatus {
				t.Errorf("status %d, want %d; body %q", w.Code, tc.wantStatus, w.Body.Bytes())
			}
			if called != tc.forwarded {
				t.Errorf("upstream called: %v, want %v", called, tc.forwarded)
			}
			if called && !bytes.Equal(upstreamBody, tc.body) {
				t.Errorf("upstream got %q, want the client's bytes %q", upstreamBody, tc.body)
			}
			if !called {
				reason, code := reasonOf(t, w)
				if tc.wantGRPC != "" && code != tc.wantGRPC {
					t.Errorf("grpc-status %q, want %q", code, tc.wantGRPC)
				}
				if tc.wantReason != "" && reason != tc.wantReason {
					t.Errorf("reason %q, want %q", reason, tc.wantReason)
				}
			}
			if tc.wantRecord == "" {
				if len(sink.recs) != 0 {
					t.Errorf("got %d records for a request that is not a cancel", len(sink.recs))
				}
				return
			}
			if len(sink.recs) != 1 {
				t.Fatalf("got %d completed records, want 1", len(sink.recs))
			}
			rec := sink.recs[0]
			if rec.Decision != tc.wantRecord || rec.Protocol != tc.wantProto {
				t.Errorf("record decision %q protocol %q, want %q %q", rec.Decision, rec.Protocol, tc.wantRecord, tc.wantProto)
			}
			if tc.wantProto != "http" && tc.wantProto != "batch" && (!rec.HasGRPCStatus || rec.GRPCStatus != tc.wantGRPCRec) {
				t.Errorf("record grpc_status %d (set %v), want %d", rec.GRPCStatus, rec.HasGRPCStatus, tc.wantGRPCRec)
			}
		})
	}
}

// reasonOf reads the ErrorInfo reason of a refusal in whichever encoding
// the door wrote it: grpc-status-details-bin, a gRPC-Web trailer frame, a
// serialized Status, or the JSON envelope; and the grpc-status it carries.
func reasonOf(t *testing.T, w *httptest.ResponseRecorder) (reason, grpcStatus string) {
	t.Helper()
	var st spb.Status
	ct := w.Header().Get("Content-Type")
	grpcStatus = w.Header().Get("Grpc-Status")
	switch {
	case w.Header().Get("Grpc-Status-Details-Bin") != "":
		b, err := base64.RawStdEncoding.DecodeString(w.Header().Get("Grpc-Status-Details-Bin"))
		if err != nil || proto.Unmarshal(b, &st) != nil {
			t.Fatalf("grpc-status-details-bin does not decode: %v", err)
		}
	case strings.HasPrefix(ct, "application/grpc-web"):
		frame := w.Body.Bytes()
		if strings.Contains(ct, "text") {
			var err error
			if frame, err = base64.StdEncoding.DecodeString(string(frame)); err != nil {
				t.Fatal(err)
			}
		}
		if len(frame) < 5 || frame[0] != 0x80 {
			t.Fatalf("body is not a trailer frame: %q", frame)
		}
		for _, line := range strings.Split(string(frame[5:]), "\r\n") {
			if v, ok := strings.CutPrefix(line, "grpc-status: "); ok {
				grpcStatus = v
			}
			if v, ok := strings.CutPrefix(line, "grpc-status-details-bin: "); ok {
				b, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(v, "="))
				if err != nil || proto.Unmarshal(b, &st) != nil {
					t.Fatalf("trailer details do not decode: %v", err)
				}
			}
		}
	case ct == "application/x-protobuf":
		if err := proto.Unmarshal(w.Body.Bytes(), &st); err != nil {
			t.Fatal(err)
		}
	default:
		var env struct {
			Error struct {
				Details []struct {
					Reason string `json:"reason"`
				} `json:"details"`
			} `json:"error"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &env); err != nil || len(env.Error.Details) == 0 {
			t.Fatalf("body is not Google's error envelope: %q", w.Body.Bytes())
		}
		return env.Error.Details[0].Reason, grpcStatus
	}
	for _, d := range st.Details {
		var info errdetails.ErrorInfo
		if d.UnmarshalTo(&info) == nil {
			return info.Reason, grpcStatus
		}
	}
	return "", grpcStatus
}

// The module's own work for a governed gRPC cancel with a cached token:
// recognition, framing, protobuf fields, method by name, cache hit,
// scope, record.
func BenchmarkServeHTTPGRPCCancelCachedToken(b *testing.B) {
	ti := fakeTokenInfo(b, "https://www.googleapis.com/auth/ediscovery")
	h := provision(b, &Handler{TokenInfo: &TokenInfoConfig{URL: ti.URL}})
	discardAudit(h)
	next := &countingNext{}
	frame := string(grpcFrame(cancelMessage(b, "operations/export-1")))
	newCancel := func() (*http.Request, *httptest.ResponseRecorder) {
		r := request("POST", "vault.googleapis.com", lroPath, frame)
		r.Header.Set("Content-Type", "application/grpc")
		r.Header.Set("Authorization", "Bearer ya29.bench-token")
		return r, httptest.NewRecorder()
	}
	r, rw := newCancel()
	if _ = h.ServeHTTP(rw, r, next); rw.Code != http.StatusOK || rw.Header().Get("Grpc-Status") != "" {
		b.Fatalf("warm-up: status %d, grpc-status %q", rw.Code, rw.Header().Get("Grpc-Status"))
	}
	w := &nopWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		r, _ := newCancel()
		w.reset()
		b.StartTimer()
		_ = h.ServeHTTP(w, r, next)
	}
	if w.code != http.StatusOK || w.h.Get("Grpc-Status") != "" {
		b.Fatalf("status %d, grpc-status %q", w.code, w.h.Get("Grpc-Status"))
	}
}

// What a batch without a cancel costs the module: it must be read whole
// (bounded) to know that none of its parts is a cancel, then it passes
// untouched.
func BenchmarkServeHTTPBatchWithoutCancel(b *testing.B) {
	h := provision(b, &Handler{})
	next := &closingNext{}
	var body strings.Builder
	for i := range 100 {
		fmt.Fprintf(&body, "--b\r\nContent-Type: application/http\r\nContent-ID: %d\r\n\r\n"+
			"GET /v1/matters/m%d?alt=json HTTP/1.1\r\nHost: vault.googleapis.com\r\n\r\n\r\n", i+1, i)
	}
	body.WriteString("--b--\r\n")
	batch := body.String()
	newBatch := func() (*http.Request, *httptest.ResponseRecorder) {
		r := request("POST", "vault.googleapis.com", "/batch", batch)
		r.Header.Set("Content-Type", "multipart/mixed; boundary=b")
		return r, httptest.NewRecorder()
	}
	r, w := newBatch()
	if _ = h.ServeHTTP(w, r, next); w.Code != http.StatusOK || next.calls.Load() != 1 || w.Header().Get("Audit-Id") != "" {
		b.Fatalf("warm-up: status %d, forwarded %d, audit id %q", w.Code, next.calls.Load(), w.Header().Get("Audit-Id"))
	}
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		r, w := newBatch()
		b.StartTimer()
		_ = h.ServeHTTP(w, r, next)
	}
}

// A batch forwarded unparsed is read into memory that later batches reuse,
// but only once the handler has returned and the body has been closed:
// a body still being sent (the transport may send it after the handler
// returned) keeps its bytes, and reads nothing once closed.
func TestBatchMemoryIsReusedOnlyOnceTheBodyIsClosed(t *testing.T) {
	h := provision(t, &Handler{})
	batchOf := func(tag string) string {
		var b strings.Builder
		for i := range 20 {
			fmt.Fprintf(&b, "--b\r\nContent-Type: application/http\r\n\r\nGET /v1/matters/%s-%d HTTP/1.1\r\nHost: vault.googleapis.com\r\n\r\n\r\n", tag, i)
		}
		b.WriteString("--b--\r\n")
		return b.String()
	}
	var open io.ReadCloser
	var firstHalf []byte
	serve := func(body string, next caddyhttp.HandlerFunc) {
		t.Helper()
		r := request("POST", "vault.googleapis.com", "/batch", body)
		r.Header.Set("Content-Type", "multipart/mixed; boundary=b")
		w := httptest.NewRecorder()
		if err := h.ServeHTTP(w, r, next); err != nil || w.Code != http.StatusOK || w.Header().Get("Audit-Id") != "" {
			t.Fatalf("status %d, audit id %q, error %v", w.Code, w.Header().Get("Audit-Id"), err)
		}
	}
	a, b := batchOf("aaaa"), batchOf("bbbb")
	// A: half read by the handler, the rest after it returned.
	serve(a, func(w http.ResponseWriter, r *http.Request) error {
		open = r.Body
		firstHalf = make([]byte, len(a)/2)
		if _, err := io.ReadFull(r.Body, firstHalf); err != nil {
			t.Fatal(err)
		}
		return nil
	})
	// B, the same size, while A's body is still open, then closed: read in
	// full by the handler.
	for range 3 {
		serve(b, func(w http.ResponseWriter, r *http.Request) error {
			got, err := io.ReadAll(r.Body)
			if err != nil || string(got) != b {
				t.Errorf("the upstream got %d bytes (%v), not the batch sent", len(got), err)
			}
			return r.Body.Close()
		})
	}
	rest, err := io.ReadAll(open)
	if err != nil || string(firstHalf)+string(rest) != a {
		t.Fatalf("a body still open was overwritten: got %q... (%v)", (string(firstHalf) + string(rest))[len(a)/2-20:len(a)/2+40], err)
	}
	if err := open.Close(); err != nil {
		t.Fatal(err)
	}
	if n, err := open.Read(make([]byte, 8)); n != 0 || err == nil {
		t.Errorf("a closed body read %d bytes (%v), want an error", n, err)
	}
	serve(b, func(w http.ResponseWriter, r *http.Request) error {
		got, _ := io.ReadAll(r.Body)
		if string(got) != b {
			t.Errorf("after reuse, the upstream got %d bytes, not the batch sent", len(got))
		}
		return r.Body.Close()
	})
}

// closingNext counts the requests and closes each body, as a transport
// does once it has sent it.
type closingNext struct{ countingNext }

func (n *closingNext) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	_ = r.Body.Close()
	return n.countingNext.ServeHTTP(w, r)
}
