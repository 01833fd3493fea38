package credential

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"
)

func TestIntrospectionVerify(t *testing.T) {
	future := time.Now().Add(time.Hour).Truncate(time.Second)
	tests := []struct {
		name       string
		status     int
		body       string
		want       *Info
		wantErr    error
		wantReason Reason
	}{
		{
			name:   "active token",
			status: 200,
			body: fmt.Sprintf(`{"active":true,"scope":"https://www.googleapis.com/auth/cloud-platform openid","client_id":"gw-client",`+
				`"username":"jdoe","sub":"Z5O3upPC88QrAjx00dis","aud":"https://vault.googleapis.com/","exp":%d,"iat":1419350238}`, future.Unix()),
			want: &Info{Subject: "Z5O3upPC88QrAjx00dis", Audience: "https://vault.googleapis.com/", ClientID: "gw-client",
				Scopes: []string{"https://www.googleapis.com/auth/cloud-platform", "openid"}, Expiry: future},
		},
		{
			name:   "audience array, username as subject, no expiry",
			status: 200,
			body:   `{"active":"true","scope":"s","username":"jdoe","aud":["a","b"],"email":"jdoe@example.com"}`,
			want:   &Info{Subject: "jdoe", Email: "jdoe@example.com", Audience: "a b", Scopes: []string{"s"}},
		},
		{name: "inactive token", status: 200, body: `{"active":false}`, wantErr: errInvalid, wantReason: ReasonInvalid},
		{name: "active but past exp", status: 200, body: `{"active":true,"exp":1000}`, wantErr: errInvalid, wantReason: ReasonExpired},
		{name: "active but not yet valid", status: 200, body: fmt.Sprintf(`{"active":true,"nbf":%d}`, future.Unix()), wantErr: errInvalid, wantReason: ReasonInvalid},
		{name: "answer without active", status: 200, body: `{"scope":"s"}`, wantErr: ErrUnavailable},
		{name: "wrongly typed aud", status: 200, body: `{"active":true,"aud":5}`, wantErr: ErrUnavailable},
		{name: "garbage", status: 200, body: `active=true`, wantErr: ErrUnavailable},
		{name: "our client credentials rejected", status: 401, body: `{"error":"invalid_client"}`, wantErr: ErrUnavailable},
		{name: "our request refused", status: 403, wantErr: ErrUnavailable},
		{name: "bad request", status: 400, body: `{"error":"invalid_request"}`, wantErr: ErrUnavailable},
		{name: "server error", status: 500, wantErr: ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := serve(t, &answer{status: tt.status, body: tt.body})
			v := &Introspection{URL: srv.URL, ClientID: "gw", ClientSecret: "s"}
			info, err := v.Verify(context.Background(), testToken)
			checkVerdict(t, info, err, tt.want, time.Time{}, tt.wantErr, tt.wantReason)
		})
	}
}

func TestIntrospectionClientAuthentication(t *testing.T) {
	const id, secret = "gw client", "s3cr:t/+"
	tests := []struct {
		name       string
		style      AuthStyle
		clientID   string
		wantHeader string
		wantFormID string
		wantSecret string
	}{
		{
			// RFC 6749 section 2.3.1: each part form-encoded before Basic.
			name: "basic by default", style: AuthStyleBasic, clientID: id,
			wantHeader: "Basic " + base64.StdEncoding.EncodeToString([]byte("gw+client:s3cr%3At%2F%2B")),
		},
		{name: "form fields", style: AuthStyleForm, clientID: id, wantFormID: id, wantSecret: secret},
		{name: "no client id sends nothing", style: AuthStyleBasic},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var header, formID, formSecret, token, hint string
			srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				header = r.Header.Get("Authorization")
				formID, formSecret = r.PostFormValue("client_id"), r.PostFormValue("client_secret")
				token, hint = r.PostFormValue("token"), r.PostFormValue("token_type_hint")
				io.WriteString(w, `{"active":true}`)
			}))
			v := &Introspection{URL: srv.URL, ClientID: tt.clientID, ClientSecret: secret, AuthStyle: tt.style}
			if _, err := v.Verify(context.Background(), testToken); err != nil {
				t.Fatal(err)
			}
			if header != tt.wantHeader || formID != tt.wantFormID || formSecret != tt.wantSecret {
				t.Errorf("Authorization %q, client_id %q, client_secret %q; want %q, %q, %q",
					header, formID, formSecret, tt.wantHeader, tt.wantFormID, tt.wantSecret)
			}
			if token != testToken || hint != "access_token" {
				t.Errorf("token %q, token_type_hint %q; want the token and access_token", token, hint)
			}
		})
	}
}

func TestIntrospectionUnreachable(t *testing.T) {
	_, err := (&Introspection{URL: refusedURL(t)}).Verify(context.Background(), testToken)
	checkVerdict(t, nil, err, nil, time.Time{}, ErrUnavailable, 0)
}
