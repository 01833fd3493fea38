package credential

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const testToken = "ya29.a0-secret_token/value+="

// answer serves a fixed status and body, counting requests.
type answer struct {
	status int
	body   string
	hits   atomic.Int64
}

func (a *answer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.hits.Add(1)
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(a.status)
	io.WriteString(w, a.body)
}

// serve starts a loopback server for h.
func serve(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// refusedURL returns a loopback URL nothing listens on.
func refusedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr + "/tokeninfo"
}

func TestTokenInfoVerify(t *testing.T) {
	future := time.Now().Add(time.Hour).Truncate(time.Second)
	past := time.Now().Add(-time.Minute).Unix()
	tests := []struct {
		name        string
		status      int
		body        string
		want        *Info
		wantExpiry  time.Time // checked within a few seconds when set
		wantErr     error
		wantReason  Reason
		wantMessage string
	}{
		{
			// Field set and string-quoted numbers as Google's tokeninfo answers.
			name:   "numbers as strings",
			status: 200,
			body: fmt.Sprintf(`{"azp":"123.apps.googleusercontent.com","aud":"123.apps.googleusercontent.com","sub":"1057",`+
				`"scope":"https://www.googleapis.com/auth/cloud-platform openid","exp":"%d","expires_in":"3599",`+
				`"email":"ops@example.com","email_verified":"true","access_type":"online"}`, future.Unix()),
			want: &Info{Subject: "1057", Email: "ops@example.com", Audience: "123.apps.googleusercontent.com",
				ClientID: "123.apps.googleusercontent.com", Scopes: []string{"https://www.googleapis.com/auth/cloud-platform", "openid"}, Expiry: future},
		},
		{
			name:   "numbers as numbers",
			status: 200,
			body:   fmt.Sprintf(`{"aud":"c","sub":"1057","scope":"s","exp":%d,"expires_in":3599,"email":"ops@example.com","email_verified":true}`, future.Unix()),
			want:   &Info{Subject: "1057", Email: "ops@example.com", Audience: "c", ClientID: "c", Scopes: []string{"s"}, Expiry: future},
		},
		{
			name:       "expiry from expires_in without exp",
			status:     200,
			body:       `{"azp":"c","scope":"s","expires_in":"600"}`,
			want:       &Info{ClientID: "c", Scopes: []string{"s"}},
			wantExpiry: time.Now().Add(600 * time.Second),
		},
		{
			name:   "unverified email is dropped",
			status: 200,
			body:   fmt.Sprintf(`{"azp":"c","sub":"1057","exp":"%d","email":"who@example.com","email_verified":"false"}`, future.Unix()),
			want:   &Info{Subject: "1057", ClientID: "c", Expiry: future},
		},
		{name: "past exp is expired", status: 200, body: fmt.Sprintf(`{"azp":"c","exp":"%d"}`, past), wantErr: errInvalid, wantReason: ReasonExpired},
		{name: "zero expires_in is expired", status: 200, body: `{"azp":"c","expires_in":"0"}`, wantErr: errInvalid, wantReason: ReasonExpired},
		{name: "no expiry is invalid", status: 200, body: `{"azp":"c","scope":"s"}`, wantErr: errInvalid, wantReason: ReasonInvalid},
		{name: "error member in a 200 is invalid", status: 200, body: `{"error":"invalid_token"}`, wantErr: errInvalid, wantReason: ReasonInvalid},
		{
			// Google's answer for bad and expired tokens alike.
			name: "400 invalid_token", status: 400, body: `{"error":"invalid_token","error_description":"Invalid Value"}`,
			wantErr: errInvalid, wantReason: ReasonInvalid, wantMessage: "access token rejected: tokeninfo answered 400 invalid_token: Invalid Value",
		},
		{
			name: "echoed token is redacted", status: 400, body: `{"error":"invalid_token","error_description":"bad token ` + testToken + `"}`,
			wantErr: errInvalid, wantReason: ReasonInvalid, wantMessage: "access token rejected: tokeninfo answered 400 invalid_token: bad token [token]",
		},
		{name: "401 without body", status: 401, wantErr: errInvalid, wantReason: ReasonInvalid},
		{name: "429 says nothing of the token", status: 429, body: `{"error":"rate_limited"}`, wantErr: ErrUnavailable},
		{name: "500", status: 500, body: `oops`, wantErr: ErrUnavailable},
		{name: "503", status: 503, wantErr: ErrUnavailable},
		{name: "204", status: 204, wantErr: ErrUnavailable},
		{name: "garbage 200", status: 200, body: `<html>not json</html>`, wantErr: ErrUnavailable},
		{name: "null 200", status: 200, body: `null`, wantErr: ErrUnavailable},
		{name: "truncated 200", status: 200, body: `{"azp":"c","exp":"1`, wantErr: ErrUnavailable},
		{name: "unparseable exp", status: 200, body: `{"azp":"c","exp":"` + testToken + `"}`, wantErr: ErrUnavailable},
		{name: "wrongly typed field", status: 200, body: `{"azp":"c","scope":["` + testToken + `"],"expires_in":"60"}`, wantErr: ErrUnavailable},
		{name: "answer over 64 KiB", status: 200, body: `{"azp":"` + strings.Repeat("x", 64<<10) + `","expires_in":"60"}`, wantErr: ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := serve(t, &answer{status: tt.status, body: tt.body})
			v := &TokenInfo{URL: srv.URL}
			info, err := v.Verify(context.Background(), testToken)
			checkVerdict(t, info, err, tt.want, tt.wantExpiry, tt.wantErr, tt.wantReason)
			if tt.wantMessage != "" && (err == nil || err.Error() != tt.wantMessage) {
				t.Errorf("error = %v, want message %q", err, tt.wantMessage)
			}
		})
	}
}

// errInvalid stands for "an *InvalidError" in test tables.
var errInvalid = errors.New("an *InvalidError")

// checkVerdict compares a verifier's answer with the expected one.
func checkVerdict(t *testing.T, info *Info, err error, want *Info, wantExpiry time.Time, wantErr error, wantReason Reason) {
	t.Helper()
	if err != nil {
		assertNoSecret(t, err, testToken)
	}
	var invalid *InvalidError
	switch {
	case wantErr == errInvalid:
		if !errors.As(err, &invalid) || invalid.Reason != wantReason {
			t.Fatalf("error = %v, want *InvalidError with reason %v", err, wantReason)
		}
	case wantErr != nil:
		if !errors.Is(err, wantErr) || errors.As(err, &invalid) {
			t.Fatalf("error = %v, want %v", err, wantErr)
		}
	case err != nil:
		t.Fatalf("unexpected error %v", err)
	}
	if want == nil {
		if info != nil {
			t.Errorf("info = %+v alongside error", info)
		}
		return
	}
	got := *info
	if !wantExpiry.IsZero() {
		if d := got.Expiry.Sub(wantExpiry); d < -5*time.Second || d > 5*time.Second {
			t.Errorf("Expiry = %v, want about %v", got.Expiry, wantExpiry)
		}
		got.Expiry = time.Time{}
	}
	if got.Subject != want.Subject || got.Email != want.Email || got.Audience != want.Audience ||
		got.ClientID != want.ClientID || !slices.Equal(got.Scopes, want.Scopes) || !got.Expiry.Equal(want.Expiry) {
		t.Errorf("info = %+v, want %+v", got, *want)
	}
}

func TestTokenInfoPostsTokenInForm(t *testing.T) {
	var method, rawQuery, contentType, formToken string
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		method, rawQuery, contentType = r.Method, r.URL.RawQuery, r.Header.Get("Content-Type")
		formToken = r.PostFormValue("access_token")
		io.WriteString(w, `{"azp":"c","expires_in":"60"}`)
	}))
	if _, err := (&TokenInfo{URL: srv.URL}).Verify(context.Background(), testToken); err != nil {
		t.Fatal(err)
	}
	if method != http.MethodPost || rawQuery != "" || contentType != "application/x-www-form-urlencoded" || formToken != testToken {
		t.Errorf("request: %s ?%q %q access_token=%q; want a POST form carrying the token and no query", method, rawQuery, contentType, formToken)
	}
}

func TestTokenInfoDoesNotFollowRedirects(t *testing.T) {
	target := &answer{status: 200, body: `{"azp":"c","expires_in":"60"}`}
	targetSrv := serve(t, target)
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, targetSrv.URL, http.StatusTemporaryRedirect)
	}))
	_, err := (&TokenInfo{URL: srv.URL}).Verify(context.Background(), testToken)
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("error = %v, want ErrUnavailable", err)
	}
	if n := target.hits.Load(); n != 0 {
		t.Errorf("redirect target received %d requests, want 0", n)
	}
}

func TestTokenInfoUnreachable(t *testing.T) {
	release := make(chan struct{})
	slow := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release) })
	tests := []struct {
		name     string
		verifier *TokenInfo
		ctx      func() context.Context
		wantIs   error
	}{
		{"timeout", &TokenInfo{URL: slow.URL, Timeout: 50 * time.Millisecond}, context.Background, context.DeadlineExceeded},
		{"caller's deadline", &TokenInfo{URL: slow.URL}, func() context.Context {
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			t.Cleanup(cancel)
			return ctx
		}, context.DeadlineExceeded},
		{"connection refused", &TokenInfo{URL: refusedURL(t)}, context.Background, ErrUnavailable},
		{"malformed URL", &TokenInfo{URL: "http://127.0.0.1:bad/"}, context.Background, ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, err := tt.verifier.Verify(tt.ctx(), testToken)
			if info != nil || !errors.Is(err, ErrUnavailable) || !errors.Is(err, tt.wantIs) {
				t.Fatalf("Verify = %v, %v; want ErrUnavailable wrapping %v", info, err, tt.wantIs)
			}
			assertNoSecret(t, err, testToken)
		})
	}
}
