package googleerr

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/googleapis/gax-go/v2/apierror"
	"google.golang.org/api/googleapi"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc/codes"
)

var vaultMetadata = map[string]string{"service": "vault.googleapis.com", "method": "vault.operations.cancel"}

// refusals are the errors the module writes, one per status it uses.
var refusals = []struct {
	name string
	err  *Error
}{
	{"400 with BadRequest", &Error{
		Code: 400, Message: "Request contains an invalid argument.",
		Reason: "INVALID_BODY", Metadata: vaultMetadata,
		FieldViolations: []FieldViolation{{Field: "force", Description: `Unknown name "force": Cannot find field.`}},
	}},
	{"401", &Error{
		Code: 401, Message: "Request is missing required authentication credential.",
		Reason: "CREDENTIALS_MISSING", Metadata: vaultMetadata,
	}},
	{"403", &Error{
		Code: 403, Message: "Request had insufficient authentication scopes.",
		Reason: "ACCESS_TOKEN_SCOPE_INSUFFICIENT", Metadata: vaultMetadata,
	}},
	{"501", &Error{
		Code: 501, Message: "Operation cancellation is not implemented for this service.",
		Reason: "CANCEL_UNIMPLEMENTED", Domain: "lro-cancel.example", Metadata: vaultMetadata,
	}},
	{"503", &Error{
		Code: 503, Message: "The token verifier is unavailable.",
		Reason: "VERIFIER_UNAVAILABLE", Metadata: vaultMetadata,
	}},
}

func record(e *Error) *http.Response {
	rec := httptest.NewRecorder()
	Write(rec, e)
	return rec.Result()
}

func TestGoogleClientsParseEveryRefusal(t *testing.T) {
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.err
			err := googleapi.CheckResponse(record(want))
			var gerr *googleapi.Error
			if !errors.As(err, &gerr) {
				t.Fatalf("CheckResponse returned %T %v, want *googleapi.Error", err, err)
			}
			if gerr.Code != want.Code || gerr.Message != want.Message {
				t.Errorf("googleapi.Error code, message = %d, %q; want %d, %q", gerr.Code, gerr.Message, want.Code, want.Message)
			}
			if len(gerr.Details) == 0 {
				t.Fatalf("googleapi.Error has no details; body:\n%s", gerr.Body)
			}
			info, _ := gerr.Details[0].(map[string]any)
			if info["reason"] != want.Reason {
				t.Errorf("googleapi.Error Details[0] = %v, want reason %q", gerr.Details[0], want.Reason)
			}

			aerr, ok := apierror.ParseError(gerr, true)
			if !ok {
				t.Fatalf("apierror.ParseError(%v) failed", gerr)
			}
			wantDomain := want.Domain
			if wantDomain == "" {
				wantDomain = "googleapis.com"
			}
			if aerr.Reason() != want.Reason || aerr.Domain() != wantDomain {
				t.Errorf("APIError reason, domain = %q, %q; want %q, %q", aerr.Reason(), aerr.Domain(), want.Reason, wantDomain)
			}
			if got := aerr.Metadata()["service"]; got != "vault.googleapis.com" {
				t.Errorf("APIError metadata service = %q, want vault.googleapis.com", got)
			}
			if aerr.HTTPCode() != want.Code {
				t.Errorf("APIError HTTPCode = %d, want %d", aerr.HTTPCode(), want.Code)
			}
			if got := code.Code(aerr.GRPCStatus().Code()).String(); got != StatusFor(want.Code) {
				t.Errorf("APIError gRPC code = %s, want %s", got, StatusFor(want.Code))
			}
			if aerr.Message() != want.Message {
				t.Errorf("APIError message = %q, want %q", aerr.Message(), want.Message)
			}

			br := aerr.Details().BadRequest
			if len(want.FieldViolations) == 0 {
				if br != nil {
					t.Errorf("APIError has BadRequest %v, want none", br)
				}
				return
			}
			if br == nil || len(br.GetFieldViolations()) != len(want.FieldViolations) {
				t.Fatalf("APIError BadRequest = %v, want %d violations", br, len(want.FieldViolations))
			}
			for i, v := range br.GetFieldViolations() {
				if v.GetField() != want.FieldViolations[i].Field || v.GetDescription() != want.FieldViolations[i].Description {
					t.Errorf("violation %d = %q, %q; want %+v", i, v.GetField(), v.GetDescription(), want.FieldViolations[i])
				}
			}
		})
	}
}

func TestGoogleClientsParseViolationReasonAndStatusOnlyErrors(t *testing.T) {
	e := &Error{Code: 400, Message: "bad", FieldViolations: []FieldViolation{
		{Field: "name", Description: "differs from the path", Reason: "NAME_MISMATCH"},
		{Description: "second"},
	}}
	aerr, ok := apierror.FromError(googleapi.CheckResponse(record(e)))
	if !ok {
		t.Fatal("apierror.FromError failed")
	}
	if aerr.Details().ErrorInfo != nil {
		t.Errorf("ErrorInfo = %v, want none when Reason is empty", aerr.Details().ErrorInfo)
	}
	vs := aerr.Details().BadRequest.GetFieldViolations()
	if len(vs) != 2 || vs[0].GetReason() != "NAME_MISMATCH" || vs[1].GetField() != "" || vs[1].GetDescription() != "second" {
		t.Errorf("violations = %v", vs)
	}

	bare := &Error{Code: 503, Message: "down"}
	aerr, ok = apierror.FromError(googleapi.CheckResponse(record(bare)))
	if !ok || aerr.HTTPCode() != 503 || aerr.Message() != "down" || aerr.Reason() != "" {
		t.Errorf("bare 503 parsed as %v (ok %v)", aerr, ok)
	}
}

// The example envelope of SPEC.md "Errors", which copies the shape of
// Google's documented 403 response.
const specExample = `{"error": {"code": 403, "message": "Request had insufficient authentication scopes.",
  "status": "PERMISSION_DENIED",
  "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
    "reason": "ACCESS_TOKEN_SCOPE_INSUFFICIENT", "domain": "googleapis.com",
    "metadata": {"service": "vault.googleapis.com", "method": "vault.operations.cancel"}}]}}`

func TestWriteMatchesSpecExampleAndGoogleLayout(t *testing.T) {
	res := record(refusals[2].err)
	body := new(bytes.Buffer)
	_, _ = body.ReadFrom(res.Body)

	var got, want any
	if err := json.Unmarshal(body.Bytes(), &got); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, body)
	}
	_ = json.Unmarshal([]byte(specExample), &want)
	gotJSON, _ := json.Marshal(got)
	wantJSON, _ := json.Marshal(want)
	if !bytes.Equal(gotJSON, wantJSON) {
		t.Errorf("envelope = %s\nwant %s", gotJSON, wantJSON)
	}

	const layout = `{
  "error": {
    "code": 403,
    "message": "Request had insufficient authentication scopes.",
    "status": "PERMISSION_DENIED",
    "details": [
      {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
        "domain": "googleapis.com",
        "metadata": {
          "method": "vault.operations.cancel",
          "service": "vault.googleapis.com"
        }
      }
    ]
  }
}
`
	if body.String() != layout {
		t.Errorf("body =\n%s\nwant Google's two-space layout with sorted metadata:\n%s", body, layout)
	}

	for k, v := range map[string]string{
		"Content-Type":           "application/json; charset=UTF-8",
		"X-Content-Type-Options": "nosniff",
		"Content-Length":         strconv.Itoa(body.Len()),
	} {
		if got := res.Header.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
}

func TestWriteKeepsHeadersSetBeforeIt(t *testing.T) {
	rec := httptest.NewRecorder()
	const challenge = `Bearer realm="https://accounts.google.com/"`
	rec.Header().Set("WWW-Authenticate", challenge)
	Write(rec, refusals[1].err)
	if got := rec.Header().Get("WWW-Authenticate"); got != challenge {
		t.Errorf("WWW-Authenticate = %q, want %q", got, challenge)
	}
	if rec.Code != 401 {
		t.Errorf("status = %d, want 401", rec.Code)
	}
}

func TestWriteOutOfRangeCodeAs500(t *testing.T) {
	for _, c := range []int{0, -1, 200, 302, 600, 1000} {
		res := record(&Error{Code: c, Message: "m"})
		var env struct {
			Error struct {
				Code   int
				Status string
			}
		}
		if err := json.NewDecoder(res.Body).Decode(&env); err != nil {
			t.Fatalf("code %d: %v", c, err)
		}
		if res.StatusCode != 500 || env.Error.Code != 500 || env.Error.Status != "INTERNAL" {
			t.Errorf("code %d written as HTTP %d, envelope %+v; want 500 INTERNAL", c, res.StatusCode, env.Error)
		}
	}
}

func TestEnvelopeEscapesRequestDerivedText(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"quotes and backslash", `a"b\c`, `a"b\c`},
		{"control characters", "a\nb\rc\td\x00e\x1f", "a\nb\rc\td\x00e\x1f"},
		{"markup", "<script>&amp;</script>", "<script>&amp;</script>"},
		{"invalid UTF-8", "a\xffb\xc3", "a\ufffdb\ufffd"},
		{"line separators", "a\u2028b\u2029c", "a\u2028b\u2029c"},
		{"multibyte", "opérations/日本", "opérations/日本"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := &Error{Code: 400, Message: tc.in, Reason: "R", Metadata: map[string]string{tc.in: tc.in},
				FieldViolations: []FieldViolation{{Field: tc.in, Description: tc.in, Reason: tc.in}}}
			raw, err := e.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range []string{"<", ">", "&", "\u2028"} {
				if strings.Contains(tc.in, c) && bytes.Contains(raw, []byte(c)) {
					t.Errorf("raw envelope contains unescaped %q:\n%s", c, raw)
				}
			}
			var env struct {
				Error struct {
					Message string
					Details []struct {
						Metadata        map[string]string
						FieldViolations []FieldViolation
					}
				}
			}
			if err := json.Unmarshal(raw, &env); err != nil {
				t.Fatalf("envelope is not JSON: %v\n%s", err, raw)
			}
			d := env.Error.Details
			if env.Error.Message != tc.want || len(d) != 2 || d[0].Metadata[tc.want] != tc.want ||
				d[1].FieldViolations[0] != (FieldViolation{tc.want, tc.want, tc.want}) {
				t.Errorf("decoded %+v, want every string %q", env.Error, tc.want)
			}
		})
	}
}

func TestMarshalJSONEmbedsInOtherJSON(t *testing.T) {
	e := &Error{Code: 404, Message: "gone", Reason: "R"}
	raw, err := json.Marshal(map[string]any{"refusal": e})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"refusal":{"error":{"code":404,"message":"gone","status":"NOT_FOUND","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"R","domain":"googleapis.com"}]}}}`
	if string(raw) != want {
		t.Errorf("json.Marshal = %s\nwant %s", raw, want)
	}
}

func TestStatusFor(t *testing.T) {
	tests := map[int]string{
		400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
		404: "NOT_FOUND", 409: "ABORTED", 429: "RESOURCE_EXHAUSTED", 499: "CANCELLED",
		500: "INTERNAL", 501: "UNIMPLEMENTED", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED",
		405: "UNKNOWN", 413: "UNKNOWN", 502: "UNKNOWN", 0: "UNKNOWN",
	}
	for c, want := range tests {
		if got := StatusFor(c); got != want {
			t.Errorf("StatusFor(%d) = %s, want %s", c, got, want)
		}
	}
}

// gax-go derives a gRPC code from the HTTP status alone; the envelope's
// status must not contradict it. 499 is left out: gax-go maps every 4xx it
// does not know to FAILED_PRECONDITION, while code.proto names it CANCELLED.
func TestStatusForAgreesWithGaxGRPCCode(t *testing.T) {
	for _, c := range []int{400, 401, 403, 404, 409, 429, 500, 501, 503, 504} {
		aerr, ok := apierror.FromError(&googleapi.Error{Code: c})
		if !ok {
			t.Fatalf("FromError failed for %d", c)
		}
		if got := code.Code(aerr.GRPCStatus().Code()).String(); got != StatusFor(c) {
			t.Errorf("HTTP %d: gax-go says %s, StatusFor says %s", c, got, StatusFor(c))
		}
	}
}

func BenchmarkWrite(b *testing.B) {
	for _, tc := range []struct {
		name string
		err  *Error
	}{{"403", refusals[2].err}, {"400 with BadRequest", refusals[0].err}} {
		b.Run(tc.name, func(b *testing.B) {
			w := &discardWriter{h: make(http.Header)}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				Write(w, tc.err)
			}
		})
	}
}

// discardWriter keeps the benchmark to Write's own cost.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}

// A rate-limit refusal's QuotaFailure and RetryInfo reach Google's
// clients; the retry delay is in whole seconds, rounded up.
func TestGoogleClientsParseQuotaFailureAndRetryInfo(t *testing.T) {
	e := &Error{Code: 429, Message: "slow down", Reason: "CANCEL_RATE_LIMITED", Domain: "lro-cancel.gateway",
		Metadata:        map[string]string{"rule": "per-principal"},
		QuotaViolations: []QuotaViolation{{Subject: "rule:per-principal", Description: "20 cancels per 1h"}},
		RetryDelay:      2500 * time.Millisecond,
	}
	aerr, ok := apierror.FromError(googleapi.CheckResponse(record(e)))
	if !ok {
		t.Fatal("apierror.FromError failed")
	}
	if aerr.Reason() != "CANCEL_RATE_LIMITED" || aerr.GRPCStatus().Code() != codes.ResourceExhausted {
		t.Errorf("parsed reason %q, code %v", aerr.Reason(), aerr.GRPCStatus().Code())
	}
	qv := aerr.Details().QuotaFailure.GetViolations()
	if len(qv) != 1 || qv[0].GetSubject() != "rule:per-principal" || qv[0].GetDescription() != "20 cancels per 1h" {
		t.Errorf("QuotaFailure violations %v", qv)
	}
	if got := aerr.Details().RetryInfo.GetRetryDelay().AsDuration(); got != 3*time.Second {
		t.Errorf("RetryInfo delay %v, want 3s", got)
	}
}
