package credential

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

const cancelPath = "/v1/operations/op-1:cancel"

// newRequest builds a request for target, with headers given as name,
// value pairs.
func newRequest(target string, headers ...string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, target, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Add(headers[i], headers[i+1])
	}
	return r
}

func TestExtract(t *testing.T) {
	tests := []struct {
		name       string
		target     string
		headers    []string
		wantToken  string
		wantSource Source
		wantErr    error
		wantAPIKey bool
	}{
		{name: "bearer header", target: cancelPath, headers: []string{"Authorization", "Bearer ya29.tok"}, wantToken: "ya29.tok"},
		{name: "scheme is case-insensitive", target: cancelPath, headers: []string{"Authorization", "bEARER ya29.tok"}, wantToken: "ya29.tok"},
		{name: "several spaces after the scheme", target: cancelPath, headers: []string{"Authorization", "Bearer    ya29.tok"}, wantToken: "ya29.tok"},
		{name: "access_token parameter", target: cancelPath + "?access_token=ya29.tok", wantToken: "ya29.tok", wantSource: SourceQuery},
		{name: "oauth_token parameter", target: cancelPath + "?alt=json&oauth_token=ya29.tok", wantToken: "ya29.tok", wantSource: SourceQuery},
		{name: "dollar form of a token parameter", target: cancelPath + "?$alt=json&$access_token=ya29.tok", wantToken: "ya29.tok", wantSource: SourceQuery},
		{name: "dollar form differs from the plain one", target: cancelPath + "?access_token=ya29.A&%24oauth_token=ya29.B", wantErr: ErrConflict},
		{name: "bearer_token parameter", target: cancelPath + "?bearer_token=ya29.tok&alt=json", wantToken: "ya29.tok", wantSource: SourceQuery},
		{name: "percent-encoded parameter name", target: cancelPath + "?access%5Ftoken=ya29.tok", wantToken: "ya29.tok", wantSource: SourceQuery},
		{name: "percent-encoded value is decoded", target: cancelPath + "?access_token=ya29.a%2Fb%3D", wantToken: "ya29.a/b=", wantSource: SourceQuery},
		{name: "header and query with one token must still be scrubbed", target: cancelPath + "?access_token=ya29.tok", headers: []string{"Authorization", "Bearer ya29.tok"}, wantToken: "ya29.tok", wantSource: SourceQuery},
		{name: "two parameters with one token", target: cancelPath + "?access_token=ya29.tok&oauth_token=ya29.tok", wantToken: "ya29.tok", wantSource: SourceQuery},
		{name: "identical repeated Authorization headers", target: cancelPath, headers: []string{"Authorization", "Bearer ya29.tok", "Authorization", "Bearer ya29.tok"}, wantToken: "ya29.tok"},
		{name: "empty parameter beside a token", target: cancelPath + "?access_token=&oauth_token=ya29.tok", wantToken: "ya29.tok", wantSource: SourceQuery},
		{name: "Basic header beside a query token", target: cancelPath + "?access_token=ya29.tok", headers: []string{"Authorization", "Basic dTpw"}, wantToken: "ya29.tok", wantSource: SourceQuery},
		{name: "API key beside a token is ignored", target: cancelPath + "?key=AIzaKey", headers: []string{"Authorization", "Bearer ya29.tok"}, wantToken: "ya29.tok"},
		{name: "bad escape in another parameter is ignored", target: cancelPath + "?foo=%zz&access_token=ya29.tok", wantToken: "ya29.tok", wantSource: SourceQuery},
		{name: "semicolon pair without credential is ignored", target: cancelPath + "?a=1;b=2&access_token=ya29.tok", wantToken: "ya29.tok", wantSource: SourceQuery},

		{name: "header and query differ", target: cancelPath + "?access_token=ya29.B", headers: []string{"Authorization", "Bearer ya29.A"}, wantErr: ErrConflict},
		{name: "two parameters differ", target: cancelPath + "?access_token=ya29.A&oauth_token=ya29.B", wantErr: ErrConflict},
		{name: "one parameter twice with different values", target: cancelPath + "?access_token=ya29.A&access_token=ya29.B", wantErr: ErrConflict},
		{name: "Authorization headers differ", target: cancelPath, headers: []string{"Authorization", "Bearer ya29.A", "Authorization", "Bearer ya29.B"}, wantErr: ErrConflict},
		{name: "Bearer and Basic headers", target: cancelPath, headers: []string{"Authorization", "Bearer ya29.A", "Authorization", "Basic dTpw"}, wantErr: ErrConflict},

		{name: "invalid escape in a credential value", target: cancelPath + "?access_token=ya29%zz", wantErr: ErrMalformed},
		{name: "credential after a semicolon", target: cancelPath + "?a=1;access_token=ya29.tok", wantErr: ErrMalformed},
		{name: "semicolon inside a credential value", target: cancelPath + "?access_token=ya29.tok;x=1", wantErr: ErrMalformed},
		{name: "space inside a query token", target: cancelPath + "?access_token=ya29+tok", wantErr: ErrMalformed},
		{name: "control byte inside a query token", target: cancelPath + "?access_token=ya29%0D%0AX-Evil:1", wantErr: ErrMalformed},
		{name: "space inside a header token", target: cancelPath, headers: []string{"Authorization", "Bearer ya29 tok"}, wantErr: ErrMalformed},

		{name: "no credential", target: cancelPath, wantErr: ErrMissing},
		{name: "API key parameter alone", target: cancelPath + "?key=AIzaKey", wantErr: ErrMissing, wantAPIKey: true},
		{name: "API key header alone", target: cancelPath, headers: []string{"X-Goog-Api-Key", "AIzaKey"}, wantErr: ErrMissing, wantAPIKey: true},
		{name: "empty API key is no key", target: cancelPath + "?key=", wantErr: ErrMissing},
		{name: "Basic scheme is not OAuth", target: cancelPath, headers: []string{"Authorization", "Basic dTpw"}, wantErr: ErrMissing},
		{name: "Bearer without token", target: cancelPath, headers: []string{"Authorization", "Bearer"}, wantErr: ErrMissing},
		{name: "Bearer with blank token", target: cancelPath, headers: []string{"Authorization", "Bearer  "}, wantErr: ErrMissing},
		{name: "empty access_token", target: cancelPath + "?access_token=", wantErr: ErrMissing, wantSource: SourceQuery},
		{name: "bare access_token name", target: cancelPath + "?access_token", wantErr: ErrMissing, wantSource: SourceQuery},
		{name: "invalid escape in a name is not a credential", target: cancelPath + "?access_token%zz=ya29.tok", wantErr: ErrMissing},
		{name: "parameter names are case-sensitive", target: cancelPath + "?Access_Token=ya29.tok", wantErr: ErrMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Extract(newRequest(tt.target, tt.headers...))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Extract error = %v, want %v", err, tt.wantErr)
			}
			if c.Token != tt.wantToken || c.APIKeyOnly != tt.wantAPIKey {
				t.Errorf("Extract = %+v, want token %q, APIKeyOnly %v", c, tt.wantToken, tt.wantAPIKey)
			}
			if (tt.wantToken != "" || tt.wantSource == SourceQuery) && c.Source != tt.wantSource {
				t.Errorf("Source = %v, want %v", c.Source, tt.wantSource)
			}
			if err != nil {
				assertNoSecret(t, err, "ya29", "AIzaKey")
			}
		})
	}
}

func TestExtractToleratesRequestWithoutURLOrHeader(t *testing.T) {
	_, err := Extract(&http.Request{})
	if !errors.Is(err, ErrMissing) {
		t.Fatalf("Extract(empty request) error = %v, want ErrMissing", err)
	}
}

func TestMoveToHeader(t *testing.T) {
	tests := []struct {
		name, target, wantRawQuery, wantURI string
	}{
		{
			name:         "other parameters keep order and encoding",
			target:       cancelPath + "?alt=json&access_token=ya29.tok&%24.xgafv=2&fields=a%2Cb+c&x=%7e",
			wantRawQuery: "alt=json&%24.xgafv=2&fields=a%2Cb+c&x=%7e",
			wantURI:      cancelPath + "?alt=json&%24.xgafv=2&fields=a%2Cb+c&x=%7e",
		},
		{
			name:         "lone credential leaves no question mark",
			target:       cancelPath + "?access_token=ya29.tok",
			wantRawQuery: "",
			wantURI:      cancelPath,
		},
		{
			name:         "every credential parameter and empty ones go",
			target:       cancelPath + "?oauth_token=ya29.tok&x=1&bearer_token=ya29.tok&access_token=&access%5Ftoken=ya29.tok",
			wantRawQuery: "x=1",
			wantURI:      cancelPath + "?x=1",
		},
		{
			name:         "dollar forms of credentials go",
			target:       cancelPath + "?$alt=json&$access_token=ya29.tok&%24key=AIza",
			wantRawQuery: "$alt=json",
			wantURI:      cancelPath + "?$alt=json",
		},
		{
			name:         "pair hiding a credential behind a semicolon goes",
			target:       cancelPath + "?x=1&y=2;access_token=ya29.tok",
			wantRawQuery: "x=1",
			wantURI:      cancelPath + "?x=1",
		},
		{
			name:         "empty pairs are kept",
			target:       cancelPath + "?a=1&&access_token=ya29.tok&b",
			wantRawQuery: "a=1&&b",
			wantURI:      cancelPath + "?a=1&&b",
		},
		{
			name:         "absolute-form request target",
			target:       "http://vault.googleapis.com" + cancelPath + "?access_token=ya29.tok&a=1",
			wantRawQuery: "a=1",
			wantURI:      "http://vault.googleapis.com" + cancelPath + "?a=1",
		},
		{
			name:         "API key goes too",
			target:       cancelPath + "?key=AIzaKey&alt=json",
			wantRawQuery: "alt=json",
			wantURI:      cancelPath + "?alt=json",
		},
		{
			name:         "no query",
			target:       cancelPath,
			wantRawQuery: "",
			wantURI:      cancelPath,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRequest(tt.target, "Authorization", "Basic dTpw")
			MoveToHeader(r, "ya29.tok")
			if got := r.Header.Values("Authorization"); len(got) != 1 || got[0] != "Bearer ya29.tok" {
				t.Errorf("Authorization = %q, want [Bearer ya29.tok]", got)
			}
			if r.URL.RawQuery != tt.wantRawQuery {
				t.Errorf("RawQuery = %q, want %q", r.URL.RawQuery, tt.wantRawQuery)
			}
			if r.RequestURI != tt.wantURI {
				t.Errorf("RequestURI = %q, want %q", r.RequestURI, tt.wantURI)
			}
			if s := r.URL.String(); strings.Contains(s, "ya29") || strings.HasSuffix(s, "?") {
				t.Errorf("URL = %q, still carries the token or an empty query", s)
			}
		})
	}
}

func TestScrubLeavesCleanQueryUntouched(t *testing.T) {
	r := newRequest(cancelPath + "?a=%zz;b&c=1")
	before := r.URL.RawQuery
	Scrub(r)
	if r.URL.RawQuery != before || r.RequestURI != cancelPath+"?"+before {
		t.Errorf("Scrub changed a query without credentials: RawQuery %q, RequestURI %q", r.URL.RawQuery, r.RequestURI)
	}
	if r.Header.Get("Authorization") != "" {
		t.Errorf("Scrub set Authorization %q", r.Header.Get("Authorization"))
	}
}

func TestExtractReturnsTheQueryAPIKeyDecoded(t *testing.T) {
	r := newRequest(cancelPath+"?key=AIza%2DKey", "Authorization", "Bearer ya29.tok")
	c, err := Extract(r)
	if err != nil || c.QueryAPIKey != "AIza-Key" || c.Token != "ya29.tok" {
		t.Errorf("Extract = %+v, %v; want token ya29.tok and QueryAPIKey AIza-Key", c, err)
	}
}

func TestMoveToHeaderOnRequestWithoutHeader(t *testing.T) {
	r := &http.Request{URL: &url.URL{Path: cancelPath, RawQuery: "access_token=t"}}
	MoveToHeader(r, "t")
	if r.Header.Get("Authorization") != "Bearer t" || r.URL.RawQuery != "" {
		t.Errorf("got Authorization %q, RawQuery %q", r.Header.Get("Authorization"), r.URL.RawQuery)
	}
}

func TestTokenID(t *testing.T) {
	// SHA-256("abc") is the FIPS 180-2 appendix B.1 test vector
	// ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad.
	if got := TokenID("abc"); got != "ba7816bf8f01cfea" {
		t.Errorf("TokenID(abc) = %q, want ba7816bf8f01cfea", got)
	}
}

func TestLooksLikeJWT(t *testing.T) {
	tests := []struct {
		token string
		want  bool
	}{
		// The example token of RFC 7519 section 3.1, signature part shortened.
		{"eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", true},
		{"a.b.c", true},
		{"ya29.a0AfH6SMBx-_", false},
		{"a..c", false},
		{".b.c", false},
		{"a.b.", false},
		{"a.b.c.d", false},
		{"a.b.c=", false},
		{"a.b+/.c", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := LooksLikeJWT(tt.token); got != tt.want {
			t.Errorf("LooksLikeJWT(%q) = %v, want %v", tt.token, got, tt.want)
		}
	}
}

func TestInfoPrincipal(t *testing.T) {
	tests := []struct {
		name string
		info Info
		want string
	}{
		{"email first", Info{Email: "a@example.com", Subject: "123", ClientID: "c"}, "a@example.com"},
		{"subject without email", Info{Subject: "123", ClientID: "c"}, "123"},
		{"client id without either", Info{ClientID: "c"}, "c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.info.Principal(); got != tt.want {
				t.Errorf("Principal() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestInfoHasScope(t *testing.T) {
	info := Info{Scopes: []string{"openid", "https://www.googleapis.com/auth/ediscovery", "https://www.googleapis.com/auth/cloud-platform"}}
	tests := []struct {
		name     string
		accepted []string
		want     string
		wantOK   bool
	}{
		{"empty list admits any token", nil, "", true},
		{"first accepted scope held wins", []string{"https://www.googleapis.com/auth/cloud-platform", "https://www.googleapis.com/auth/ediscovery"}, "https://www.googleapis.com/auth/cloud-platform", true},
		{"later accepted scope", []string{"https://www.googleapis.com/auth/androidmanagement", "openid"}, "openid", true},
		{"prefix is not a match", []string{"https://www.googleapis.com/auth/ediscovery.readonly", "https://www.googleapis.com/auth"}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := info.HasScope(tt.accepted)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("HasScope(%q) = %q, %v; want %q, %v", tt.accepted, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestInvalidErrorMessage(t *testing.T) {
	tests := []struct {
		err        InvalidError
		wantMsg    string
		wantReason string
	}{
		{InvalidError{Reason: ReasonInvalid, Detail: "tokeninfo answered 400"}, "access token rejected: tokeninfo answered 400", "ACCESS_TOKEN_TYPE_UNSUPPORTED"},
		{InvalidError{Reason: ReasonExpired}, "access token expired", "ACCESS_TOKEN_EXPIRED"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.wantMsg {
			t.Errorf("Error() = %q, want %q", got, tt.wantMsg)
		}
		if got := tt.err.Reason.String(); got != tt.wantReason {
			t.Errorf("Reason.String() = %q, want %q", got, tt.wantReason)
		}
	}
}

// assertNoSecret fails when err's message holds any of secrets.
func assertNoSecret(t *testing.T, err error, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error %q reveals %q", err, s)
		}
	}
}

func BenchmarkExtractHeader(b *testing.B) {
	b.ReportAllocs()
	r := newRequest(cancelPath, "Authorization", "Bearer ya29.a0AfH6SMBx0123456789abcdefghijklmnopqrstuvwxyz")
	for b.Loop() {
		if _, err := Extract(r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkExtractQuery(b *testing.B) {
	b.ReportAllocs()
	r := newRequest(cancelPath + "?alt=json&access_token=ya29.a0AfH6SMBx0123456789abcdefghijklmnopqrstuvwxyz&prettyPrint=false")
	for b.Loop() {
		if _, err := Extract(r); err != nil {
			b.Fatal(err)
		}
	}
}
