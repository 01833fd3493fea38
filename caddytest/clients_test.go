package integration

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	lroauto "cloud.google.com/go/longrunning/autogen"
	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"github.com/caddyserver/caddy/v2/caddytest"
	"github.com/googleapis/gax-go/v2/apierror"
	"golang.org/x/oauth2"
	androidmanagement "google.golang.org/api/androidmanagement/v1"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"
	vault "google.golang.org/api/vault/v1"
)

// clientOptions builds what Google's Go clients need to talk to the
// gateway as if it were host: the endpoint, and an HTTP client carrying
// the token (none when token is "") whose transport may rewrite bodies.
func clientOptions(host, token string, rewriteBody string) []option.ClientOption {
	var rt http.RoundTripper = caddytest.CreateTestingTransport()
	if rewriteBody != "" {
		rt = bodyRewriter{base: rt, body: rewriteBody}
	}
	if token != "" {
		rt = &oauth2.Transport{Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: token}), Base: rt}
	}
	return []option.ClientOption{
		option.WithEndpoint(apiURL(host, "")),
		option.WithHTTPClient(&http.Client{Transport: rt}),
	}
}

// bodyRewriter replaces the body the client library wrote, to send what a
// buggy or hostile caller would.
type bodyRewriter struct {
	base http.RoundTripper
	body string
}

func (b bodyRewriter) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Body = io.NopCloser(strings.NewReader(b.body))
	r.ContentLength = int64(len(b.body))
	r.Header.Set("Content-Type", "application/json")
	return b.base.RoundTrip(r)
}

// cancelFunc cancels one operation with one of Google's client libraries.
type cancelFunc func(ctx context.Context, opts []option.ClientOption) error

var googleClients = []struct {
	name, host string
	cancel     cancelFunc
	// token holds the scope this API's catalog entry accepts.
	token, principal string
	wantMethod       string
}{
	{
		name: "vault/v1 Operations.Cancel", host: "vault.googleapis.com",
		token: tokenVault, principal: principalA, wantMethod: "vault.operations.cancel",
		cancel: func(ctx context.Context, opts []option.ClientOption) error {
			svc, err := vault.NewService(ctx, opts...)
			if err != nil {
				return err
			}
			_, err = svc.Operations.Cancel("operations/export-42", &vault.CancelOperationRequest{}).Context(ctx).Do()
			return err
		},
	},
	{
		name: "androidmanagement/v1 Enterprises.Devices.Operations.Cancel", host: "androidmanagement.googleapis.com",
		token: tokenAndroid, principal: principalB, wantMethod: "androidmanagement.enterprises.devices.operations.cancel",
		cancel: func(ctx context.Context, opts []option.ClientOption) error {
			svc, err := androidmanagement.NewService(ctx, opts...)
			if err != nil {
				return err
			}
			_, err = svc.Enterprises.Devices.Operations.Cancel("enterprises/e1/devices/d1/operations/wipe-7").Context(ctx).Do()
			return err
		},
	},
	{
		name: "longrunning OperationsRESTClient.CancelOperation", host: "vault.googleapis.com",
		token: tokenVault, principal: principalA, wantMethod: "vault.operations.cancel",
		cancel: func(ctx context.Context, opts []option.ClientOption) error {
			c, err := lroauto.NewOperationsRESTClient(ctx, opts...)
			if err != nil {
				return err
			}
			defer c.Close()
			return c.CancelOperation(ctx, &longrunningpb.CancelOperationRequest{Name: "operations/export-43"})
		},
	},
}

func TestGoogleClientsCancelThroughTheGateway(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	ctx := context.Background()
	for _, c := range googleClients {
		t.Run(c.name, func(t *testing.T) {
			g.upstream.reset()
			before := len(g.readRecords())
			if err := c.cancel(ctx, clientOptions(c.host, c.token, "")); err != nil {
				t.Fatalf("cancel failed: %v", err)
			}
			reqs := g.upstream.requests()
			if len(reqs) != 1 {
				t.Fatalf("upstream got %d requests, want 1", len(reqs))
			}
			if got := reqs[0].Header.Get("Authorization"); got != "Bearer "+c.token {
				t.Errorf("upstream Authorization = %q, want the caller's token", got)
			}
			last := g.waitRecords(before + 1)[before]
			if last.str("decision") != "forwarded" || last.str("method") != c.wantMethod || last.str("principal") != c.principal {
				t.Errorf("audit record = %v, want forwarded %s by %s", last, c.wantMethod, c.principal)
			}
		})
	}
}

func TestGoogleClientsParseEveryRefusal(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	ctx := context.Background()
	refusals := []struct {
		name       string
		token      string // "" sends none; "scope" uses a token without the API's scope
		rewrite    string
		wantCode   int
		wantReason string
	}{
		{"no token", "", "", 401, "CREDENTIALS_MISSING"},
		{"invalid token", tokenUnknown, "", 401, "ACCESS_TOKEN_TYPE_UNSUPPORTED"},
		{"wrong scope", tokenEmail, "", 403, "ACCESS_TOKEN_SCOPE_INSUFFICIENT"},
		{"bad body", "right", `{"force": true}`, 400, "INVALID_CANCEL_BODY"},
	}
	for _, c := range googleClients {
		for _, r := range refusals {
			t.Run(c.name+"/"+r.name, func(t *testing.T) {
				g.upstream.reset()
				token := r.token
				if token == "right" {
					token = c.token
				}
				err := c.cancel(ctx, clientOptions(c.host, token, r.rewrite))
				assertClientError(t, err, r.wantCode, r.wantReason)
				if n := len(g.upstream.requests()); n != 0 {
					t.Errorf("a refused cancel reached the upstream %d times", n)
				}
			})
		}
	}
}

func TestGoogleClientsParseUnimplemented(t *testing.T) {
	g := startGateway(t, gatewayOptions{directive: "unimplemented"})
	for _, c := range googleClients {
		t.Run(c.name, func(t *testing.T) {
			err := c.cancel(context.Background(), clientOptions(c.host, c.token, ""))
			assertClientError(t, err, 501, "CANCEL_UNIMPLEMENTED")
		})
	}
	if n := len(g.upstream.requests()); n != 0 {
		t.Errorf("an unimplemented cancel reached the upstream %d times", n)
	}
	for _, r := range g.waitRecords(len(googleClients)) {
		if r.str("decision") != "unimplemented" || r.num("status") != 501 {
			t.Errorf("audit record = %v, want unimplemented 501", r)
		}
	}
}

// assertClientError checks the error as both of Google's Go error types
// see it: googleapi.Error (discovery clients) or apierror.APIError (both).
func assertClientError(t *testing.T, err error, code int, reason string) {
	t.Helper()
	if err == nil {
		t.Fatalf("cancel succeeded, want HTTP %d %s", code, reason)
	}
	var ae *apierror.APIError
	if !errors.As(err, &ae) {
		var gerr *googleapi.Error
		if !errors.As(err, &gerr) {
			t.Fatalf("error %T %v is neither apierror.APIError nor googleapi.Error", err, err)
		}
		var ok bool
		if ae, ok = apierror.FromError(gerr); !ok {
			t.Fatalf("apierror.FromError could not parse %v", gerr)
		}
	}
	if ae.HTTPCode() != code {
		t.Errorf("HTTP code = %d, want %d (%v)", ae.HTTPCode(), code, err)
	}
	if ae.Reason() != reason {
		t.Errorf("reason = %q, want %q (%v)", ae.Reason(), reason, err)
	}
}
