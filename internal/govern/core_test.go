package govern

import (
	"context"
	"fmt"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/lro-cancel/lro_cancel/internal/audit"
	"github.com/lro-cancel/lro_cancel/internal/credential"
)

// hungVerifier answers only when the request's context ends, as a
// verifier does when the client hangs up mid-call; down makes it fail
// on its own first, as an outage does.
type hungVerifier struct{ down bool }

func (v hungVerifier) Verify(ctx context.Context, _ string) (*credential.Info, error) {
	if v.down {
		return nil, fmt.Errorf("tokeninfo: %w: connection refused", credential.ErrUnavailable)
	}
	<-ctx.Done()
	return nil, fmt.Errorf("verify token: %w: %w", credential.ErrUnavailable, context.Cause(ctx))
}

func TestAClientThatHangsUpDuringVerificationIsNotAnOutage(t *testing.T) {
	for _, tc := range []struct {
		name      string
		down      bool
		want      audit.Decision
		wantCode  int
		wantWarns int
	}{
		{"the client hangs up", false, audit.ClientClosed, 499, 0},
		{"the verifier is down", true, audit.VerifierUnavailable, 503, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs, observed := observer.New(zap.WarnLevel)
			c := &Core{Opaque: hungVerifier{down: tc.down}, Logger: zap.New(logs)}
			ctx, cancel := context.WithCancel(context.Background())
			if !tc.down {
				cancel()
			}
			defer cancel()
			rec := &audit.Record{AuditID: "a1"}
			x := &Cancel{Credential: credential.Credential{Token: "ya29.opaque"}}
			den := c.Decide(ctx, x, rec)
			if den == nil || den.Decision != tc.want || den.HTTPStatus() != tc.wantCode {
				t.Fatalf("Decide = %+v, want %s with status %d", den, tc.want, tc.wantCode)
			}
			if n := observed.Len(); n != tc.wantWarns {
				t.Fatalf("%d outage warnings, want %d", n, tc.wantWarns)
			}
		})
	}
}
