package govern

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/lro-cancel/lro_cancel/internal/audit"
	"github.com/lro-cancel/lro_cancel/internal/limit"
	"github.com/lro-cancel/lro_cancel/internal/policy"
)

// What a local limit costs a cancel: its key computed from the cancel
// (CEL), hashed, checked and counted. The window is so short that every
// cancel is admitted: the full path, a busy key in its steady state.
func BenchmarkLocalLimitStep(b *testing.B) {
	key, err := policy.CompileKey(policy.DefaultKey)
	if err != nil {
		b.Fatal(err)
	}
	lim, err := limit.New([]limit.Rule{{Name: "per-principal", Count: 20, Window: time.Nanosecond}}, limit.NewLocal())
	if err != nil {
		b.Fatal(err)
	}
	c := &Core{Logger: zap.NewNop(), Limits: &Limits{Limiter: lim, Keys: []*policy.Key{key}, Local: true}}
	in := &policy.Input{Principal: "alice@example.com", Service: "vault.googleapis.com", Name: "operations/x"}
	ctx := context.Background()
	var rec audit.Record
	b.ReportAllocs()
	for b.Loop() {
		if den := c.applyLimits(ctx, &rec, in, nil); den != nil {
			b.Fatal("refused")
		}
	}
}
