package integration

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// A scoped cancel through the gateway reaches Google's gRPC front end as
// the client sent it: method, authority, credential and message bytes, a
// gzip message still compressed; and the upstream's status reaches the
// client.
func TestGRPCForwardedCancelReachesGoogleUnchanged(t *testing.T) {
	g := startGRPCGateway(t, "")
	c := operationsClient(t, "vault.googleapis.com", tokenVault)

	t.Run("Google's OperationsClient", func(t *testing.T) {
		g.standIn.reset()
		if a := cancelOperation(c, "operations/x"); a.err != nil {
			t.Fatalf("cancel failed: %v", a.err)
		}
		calls := g.standIn.calls()
		if len(calls) != 1 {
			t.Fatalf("the stand-in got %d calls, want 1", len(calls))
		}
		got := calls[0]
		if got.Method != lroCancelMethod || got.Authority != "vault.googleapis.com" || got.Authorization != "Bearer "+tokenVault {
			t.Errorf("the stand-in got %s to %q with authorization %q, want %s to vault.googleapis.com with the caller's token",
				got.Method, got.Authority, got.Authorization, lroCancelMethod)
		}
		if len(got.Messages) != 1 || !bytes.Equal(got.Messages[0], lroCancel("operations/x")) {
			t.Errorf("the stand-in got messages %q, want exactly the client's %q", got.Messages, lroCancel("operations/x"))
		}
	})

	t.Run("gzip-compressed message", func(t *testing.T) {
		g.standIn.reset()
		msg := lroCancel("operations/x")
		gz := gzipped(t, msg)
		a := postGRPC(t, h2cClient(t), "vault.googleapis.com", lroCancelMethod, grpcFrame(1, gz),
			append(bearer(tokenVault), "Grpc-Encoding", "gzip")...)
		if a.grpcStatus != 0 {
			t.Fatalf("grpc-status %d, want 0", a.grpcStatus)
		}
		calls := g.standIn.calls()
		if len(calls) != 1 {
			t.Fatalf("the stand-in got %d calls, want 1", len(calls))
		}
		got := calls[0]
		if got.Compression != "gzip" || len(got.WireSizes) != 1 || got.WireSizes[0] != len(gz) {
			t.Errorf("the stand-in got encoding %q, wire sizes %v; want the client's gzip message of %d bytes",
				got.Compression, got.WireSizes, len(gz))
		}
		if len(got.Messages) != 1 || !bytes.Equal(got.Messages[0], msg) {
			t.Errorf("the stand-in decompressed %q, want %q", got.Messages, msg)
		}
	})

	t.Run("the upstream's status reaches the client", func(t *testing.T) {
		g.standIn.answer.Store(uint32(codes.NotFound))
		defer g.standIn.answer.Store(uint32(codes.OK))
		if a := cancelOperation(c, "operations/x"); status.Code(a.err) != codes.NotFound {
			t.Errorf("cancel answered %v, want the stand-in's NotFound", a.err)
		}
	})
}

// A forwarded gRPC cancel has one completed record, with the gRPC status
// the client got (the upstream's), and the audit-id metadata names it.
func TestGRPCForwardedCancelIsAudited(t *testing.T) {
	g := startGRPCGateway(t, "")
	c := operationsClient(t, "vault.googleapis.com", tokenVault)
	for _, tt := range []struct {
		name   string
		answer codes.Code
	}{
		{"the upstream cancels", codes.OK},
		{"the upstream does not know the operation", codes.NotFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g.standIn.answer.Store(uint32(tt.answer))
			defer g.standIn.answer.Store(uint32(codes.OK))
			a := cancelOperation(c, "operations/x")
			if status.Code(a.err) != tt.answer {
				t.Fatalf("cancel answered %v, want %s", a.err, tt.answer)
			}
			if a.auditID == "" {
				t.Fatal("no audit-id metadata")
			}
			assertRecord(t, g.recordFor(a.auditID), map[string]any{
				"protocol": "grpc", "decision": "forwarded", "status": 200, "grpc_status": int(tt.answer),
				"service": "vault.googleapis.com", "method": "vault.operations.cancel", "operation": "operations/x",
				"principal": principalA, "scope_used": scopeVault,
			})
		})
	}

	t.Run("gzip-compressed message", func(t *testing.T) {
		a := postGRPC(t, h2cClient(t), "vault.googleapis.com", lroCancelMethod, grpcFrame(1, gzipped(t, lroCancel("operations/x"))),
			append(bearer(tokenVault), "Grpc-Encoding", "gzip")...)
		if a.auditID == "" {
			t.Fatal("no Audit-Id header")
		}
		assertRecord(t, g.recordFor(a.auditID), map[string]any{
			"protocol": "grpc", "decision": "forwarded", "grpc_status": 0, "operation": "operations/x",
		})
	})
}

// Every refusal of the pipeline is a gRPC status that Google's client reads
// with its reason; nothing reaches the stand-in; each call has one record.
func TestGRPCRefusalsAreStatusesGoogleClientsParse(t *testing.T) {
	g := startGRPCGateway(t, "")
	tests := []struct {
		name          string
		token         string
		verifierDown  bool
		wantCode      codes.Code
		wantReason    string
		wantDecision  string
		wantPrincipal any // nil: the record names no principal
	}{
		{"no token", "", false, codes.Unauthenticated, "CREDENTIALS_MISSING", "unauthenticated", nil},
		{"unknown token", tokenUnknown, false, codes.Unauthenticated, "ACCESS_TOKEN_TYPE_UNSUPPORTED", "unauthenticated", nil},
		{"token without vault's scope", tokenEmail, false, codes.PermissionDenied, "ACCESS_TOKEN_SCOPE_INSUFFICIENT", "scope_insufficient", principalNone},
		// tokenVault is not cached yet by this gateway: the verifier is asked.
		{"verifier down", tokenVault, true, codes.Unavailable, "TOKEN_VERIFIER_UNAVAILABLE", "verifier_unavailable", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g.standIn.reset()
			g.tokeninfo.down.Store(tt.verifierDown)
			defer g.tokeninfo.down.Store(false)
			a := cancelOperation(operationsClient(t, "vault.googleapis.com", tt.token), "operations/x")
			assertGRPCError(t, a.err, tt.wantCode, tt.wantReason)
			if n := len(g.standIn.calls()); n != 0 {
				t.Errorf("a refused cancel reached the stand-in %d times", n)
			}
			if a.auditID == "" {
				t.Fatal("no audit-id metadata")
			}
			assertRecord(t, g.recordFor(a.auditID), map[string]any{
				"protocol": "grpc", "decision": tt.wantDecision, "status": 200, "grpc_status": int(tt.wantCode),
				"service": "vault.googleapis.com", "method": "vault.operations.cancel", "operation": "operations/x",
				"principal": tt.wantPrincipal,
			})
		})
	}
}

func TestGRPCUnimplementedIsAnsweredByTheGateway(t *testing.T) {
	g := startGRPCGateway(t, "unimplemented vault.googleapis.com")
	a := cancelOperation(operationsClient(t, "vault.googleapis.com", tokenVault), "operations/x")
	assertGRPCError(t, a.err, codes.Unimplemented, "CANCEL_UNIMPLEMENTED")
	if n := len(g.standIn.calls()); n != 0 {
		t.Errorf("an unimplemented cancel reached the stand-in %d times", n)
	}
	if a.auditID == "" {
		t.Fatal("no audit-id metadata")
	}
	assertRecord(t, g.recordFor(a.auditID), map[string]any{
		"protocol": "grpc", "decision": "unimplemented", "status": 200, "grpc_status": 12,
		"service": "vault.googleapis.com", "method": "vault.operations.cancel", "operation": "operations/x",
		"principal": principalA,
	})
}

// GKE's and Cloud SQL's own cancel RPCs, in every version and request
// shape, are governed under the REST method they mirror: its scopes, its
// discovery id, the operation's resource name.
func TestGRPCCancelsOfGKEAndCloudSQLAreGoverned(t *testing.T) {
	g := startGRPCGateway(t, "")
	methods := []struct {
		name, authority, method string
		msg                     []byte
		wantMethod, wantOp      string
	}{
		{"GKE v1 by name", "container.googleapis.com", gkeCancelMethod, gkeCancel("", "", "", "projects/p/locations/l/operations/o"),
			"container.projects.locations.operations.cancel", "projects/p/locations/l/operations/o"},
		{"GKE v1 by project, zone and id", "container.googleapis.com", gkeCancelMethod, gkeCancel("p", "z", "o", ""),
			"container.projects.zones.operations.cancel", "projects/p/zones/z/operations/o"},
		{"GKE v1beta1 by name", "container.googleapis.com", gkeBetaCancelMethod, gkeCancel("", "", "", "projects/p/locations/l/operations/o"),
			"container.projects.locations.operations.cancel", "projects/p/locations/l/operations/o"},
		{"GKE v1beta1 by project, zone and id", "container.googleapis.com", gkeBetaCancelMethod, gkeCancel("p", "z", "o", ""),
			"container.projects.zones.operations.cancel", "projects/p/zones/z/operations/o"},
		{"Cloud SQL v1", "sqladmin.googleapis.com", sqlCancelMethod, sqlCancel("o", "p"),
			"sql.operations.cancel", "projects/p/operations/o"},
		{"Cloud SQL v1beta4", "sqladmin.googleapis.com", sqlBetaCancelMethod, sqlCancel("o", "p"),
			"sql.operations.cancel", "projects/p/operations/o"},
	}
	for _, m := range methods {
		t.Run(m.name+"/token without the API's scope", func(t *testing.T) {
			g.standIn.reset()
			a := invokeRaw(dialGateway(t, m.authority, tokenEmail), m.method, m.msg)
			assertGRPCError(t, a.err, codes.PermissionDenied, "ACCESS_TOKEN_SCOPE_INSUFFICIENT")
			if n := len(g.standIn.calls()); n != 0 {
				t.Errorf("a refused cancel reached the stand-in %d times", n)
			}
			if a.auditID == "" {
				t.Fatal("no audit-id metadata")
			}
			assertRecord(t, g.recordFor(a.auditID), map[string]any{
				"protocol": "grpc", "decision": "scope_insufficient", "grpc_status": 7,
				"service": m.authority, "method": m.wantMethod, "operation": m.wantOp,
			})
		})
		t.Run(m.name+"/cloud-platform token", func(t *testing.T) {
			g.standIn.reset()
			a := invokeRaw(dialGateway(t, m.authority, tokenCloud), m.method, m.msg)
			if a.err != nil {
				t.Fatalf("cancel failed: %v", a.err)
			}
			calls := g.standIn.calls()
			if len(calls) != 1 || calls[0].Method != m.method || calls[0].Authority != m.authority ||
				len(calls[0].Messages) != 1 || !bytes.Equal(calls[0].Messages[0], m.msg) {
				t.Errorf("the stand-in got %+v, want one %s to %s with the client's message", calls, m.method, m.authority)
			}
			if a.auditID == "" {
				t.Fatal("no audit-id metadata")
			}
			assertRecord(t, g.recordFor(a.auditID), map[string]any{
				"protocol": "grpc", "decision": "forwarded", "grpc_status": 0,
				"service": m.authority, "method": m.wantMethod, "operation": m.wantOp, "principal": principalSvc,
			})
		})
	}
}

// A cancel to a host the catalog does not know is an unlisted cancel: any
// verified token may send it, none may not.
func TestGRPCCancelOfAnUnknownHostIsUnlisted(t *testing.T) {
	g := startGRPCGateway(t, "")
	a := cancelOperation(operationsClient(t, "example.internal", ""), "operations/x")
	assertGRPCError(t, a.err, codes.Unauthenticated, "CREDENTIALS_MISSING")
	if n := len(g.standIn.calls()); n != 0 {
		t.Errorf("an unauthenticated cancel reached the stand-in %d times", n)
	}
	if a.auditID == "" {
		t.Fatal("no audit-id metadata")
	}
	assertRecord(t, g.recordFor(a.auditID), map[string]any{
		"protocol": "grpc", "decision": "unauthenticated", "grpc_status": 16,
		"service": "example.internal", "method": "unlisted", "operation": "operations/x",
	})

	a = cancelOperation(operationsClient(t, "example.internal", tokenEmail), "operations/x")
	if a.err != nil {
		t.Fatalf("cancel with a verified token failed: %v", a.err)
	}
	if n := len(g.standIn.calls()); n != 1 {
		t.Errorf("the stand-in got %d calls, want 1", n)
	}
	if a.auditID == "" {
		t.Fatal("no audit-id metadata")
	}
	assertRecord(t, g.recordFor(a.auditID), map[string]any{
		"protocol": "grpc", "decision": "forwarded", "grpc_status": 0,
		"service": "example.internal", "method": "unlisted", "operation": "operations/x", "principal": principalNone,
	})
}

// The service is the authority without its port or trailing dot: neither
// is a way around vault's scope.
func TestGRPCAuthorityPortAndTrailingDotAreStripped(t *testing.T) {
	g := startGRPCGateway(t, "")
	for _, authority := range []string{"vault.googleapis.com:443", "vault.googleapis.com.", "vault.googleapis.com.:443"} {
		t.Run(authority, func(t *testing.T) {
			g.standIn.reset()
			a := cancelOperation(operationsClient(t, authority, tokenEmail), "operations/x")
			assertGRPCError(t, a.err, codes.PermissionDenied, "ACCESS_TOKEN_SCOPE_INSUFFICIENT")
			if n := len(g.standIn.calls()); n != 0 {
				t.Errorf("a refused cancel reached the stand-in %d times", n)
			}
			if a.auditID == "" {
				t.Fatal("no audit-id metadata")
			}
			assertRecord(t, g.recordFor(a.auditID), map[string]any{
				"protocol": "grpc", "service": "vault.googleapis.com", "method": "vault.operations.cancel",
			})
		})
	}
}

// A gRPC request the gateway cannot read for certain, from a caller whose
// token holds the scope, is refused INVALID_ARGUMENT and never forwarded.
func TestMalformedGRPCCancelsAreRefusedUnread(t *testing.T) {
	g := startGRPCGateway(t, "")
	msg := lroCancel("operations/x")
	one := grpcFrame(0, msg)
	bomb := gzipped(t, lroCancel(padded(512<<10)))
	if len(bomb) > 1024 {
		t.Fatalf("the gzip bomb is %d bytes: it must be small compressed to test the decompressed bound", len(bomb))
	}
	tests := []struct {
		name   string
		body   []byte
		header []string
	}{
		{"unknown field", grpcFrame(0, message(field{1, "operations/x"}, field{2, "x"})), nil},
		{"name given twice", grpcFrame(0, message(field{1, "operations/x"}, field{1, "operations/y"})), nil},
		{"two messages", append(append([]byte(nil), one...), one...), nil},
		{"no message", nil, nil},
		{"oversized message", grpcFrame(0, lroCancel(padded(64<<10))), nil},
		{"truncated message", one[:len(one)-3], nil},
		{"truncated frame header", one[:3], nil},
		{"gzip bomb", grpcFrame(1, bomb), []string{"Grpc-Encoding", "gzip"}},
		{"corrupt gzip", grpcFrame(1, []byte("not gzip at all")), []string{"Grpc-Encoding", "gzip"}},
		{"deflate", grpcFrame(1, deflated(t, msg)), []string{"Grpc-Encoding", "deflate"}},
		{"snappy", grpcFrame(1, msg), []string{"Grpc-Encoding", "snappy"}},
	}
	client := h2cClient(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g.standIn.reset()
			a := postGRPC(t, client, "vault.googleapis.com", lroCancelMethod, tt.body, append(bearer(tokenVault), tt.header...)...)
			if a.httpStatus != 200 || a.grpcStatus != int(codes.InvalidArgument) {
				t.Errorf("HTTP %d grpc-status %d, want 200 and INVALID_ARGUMENT (3)", a.httpStatus, a.grpcStatus)
			}
			if !strings.HasPrefix(a.contentType, "application/grpc") {
				t.Errorf("content-type %q, want application/grpc", a.contentType)
			}
			if a.details == nil || a.details.GetCode() != int32(codes.InvalidArgument) {
				t.Errorf("grpc-status-details-bin = %v, want a google.rpc.Status with code 3", a.details)
			}
			if n := len(g.standIn.calls()); n != 0 {
				t.Errorf("the malformed request reached the stand-in %d times", n)
			}
			if a.auditID == "" {
				t.Fatal("no Audit-Id header")
			}
			rec := g.recordFor(a.auditID)
			if d := rec.str("decision"); d != "invalid_body" && d != "invalid_request" {
				t.Errorf("decision %q, want invalid_body or invalid_request", d)
			}
			assertRecord(t, rec, map[string]any{
				"protocol": "grpc", "status": 200, "grpc_status": 3, "service": "vault.googleapis.com",
			})
		})
	}
}

// gRPC over HTTP/1.1 is still a gRPC cancel: governed, never passed.
func TestGRPCOverHTTP1IsGovernedToo(t *testing.T) {
	g := startGRPCGateway(t, "")
	a := postGRPC(t, g.tester.Client, "vault.googleapis.com", lroCancelMethod, grpcFrame(0, lroCancel("operations/x")), bearer(tokenEmail)...)
	if a.grpcStatus != int(codes.PermissionDenied) {
		t.Errorf("grpc-status %d, want PERMISSION_DENIED (7)", a.grpcStatus)
	}
	if n := len(g.standIn.calls()); n != 0 {
		t.Errorf("the refused cancel reached the stand-in %d times", n)
	}
	if a.auditID == "" {
		t.Fatal("no Audit-Id header")
	}
	assertRecord(t, g.recordFor(a.auditID), map[string]any{
		"protocol": "grpc", "decision": "scope_insufficient", "grpc_status": 7, "operation": "operations/x",
	})
}

// No log carries the token of a gRPC-family cancel, refused or forwarded.
func TestNoCredentialInAnyGRPCLog(t *testing.T) {
	g := startGRPCGateway(t, "audit {\n stages received completed\n}")
	const forwarded, unscoped, unknown = "ya29.grpc-leak-forwarded-0006", "ya29.grpc-leak-unscoped-0007", "ya29.grpc-leak-unknown-0008"
	g.tokeninfo.grant(forwarded, tokenGrant{Email: principalA, Sub: "1001", Scope: scopeVault})
	g.tokeninfo.grant(unscoped, tokenGrant{Email: principalNone, Sub: "1004", Scope: scopeEmail})

	// Refused at every step, and forwarded once; what each call got back
	// is asserted elsewhere.
	cancels := []func(){
		func() { cancelOperation(operationsClient(t, "vault.googleapis.com", forwarded), "operations/x") },
		func() { cancelOperation(operationsClient(t, "vault.googleapis.com", unscoped), "operations/x") },
		func() { cancelOperation(operationsClient(t, "vault.googleapis.com", unknown), "operations/x") },
		func() {
			invokeRaw(dialGateway(t, "container.googleapis.com", unscoped), gkeCancelMethod, gkeCancel("p", "z", "o", ""))
		},
		func() {
			body := grpcFrame(0, message(field{1, "operations/x"}, field{2, "x"}))
			postGRPC(t, h2cClient(t), "vault.googleapis.com", lroCancelMethod, body, bearer(forwarded)...)
		},
		func() {
			g.do(newRequest(t, "POST", apiURL("vault.googleapis.com", lroCancelMethod), string(grpcFrame(0, lroCancel("operations/x"))),
				append(bearer(unscoped), "Content-Type", "application/grpc-web+proto")...))
		},
		func() {
			g.do(newRequest(t, "POST", apiURL("vault.googleapis.com", "/$rpc"+lroCancelMethod), `{"name":"operations/x"}`,
				append(bearer(unknown), "Content-Type", "application/json")...))
		},
	}
	for _, cancel := range cancels {
		cancel()
	}
	eventually(t, "the access log has every request", func() bool {
		return len(readRecordFile(t, filepath.Join(g.dir, "access.log"))) >= len(cancels)
	})
	logs := g.logs()
	for _, secret := range []string{forwarded, unscoped, unknown} {
		if bytes.Contains(logs, []byte(secret)) {
			t.Errorf("a log carries %q", secret)
		}
	}
	// The check above proves something only if the cancels were governed.
	if n := len(g.standIn.calls()); n != 1 {
		t.Errorf("the stand-in got %d calls, want only the scoped cancel", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for completed(g.readRecords()) < len(cancels) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := completed(g.readRecords()); n != len(cancels) {
		t.Errorf("%d completed audit records, want one per cancel: %d", n, len(cancels))
	}
}

func completed(recs []record) int {
	n := 0
	for _, r := range recs {
		if r.str("stage") == "completed" {
			n++
		}
	}
	return n
}

// A bounded concurrent mix of gRPC cancels, forwarded and refused: each
// call has exactly one completed record, under the audit id it was
// answered with, and only the forwarded ones reach the stand-in.
func TestEveryGRPCCancelUnderLoadHasExactlyOneCompletedRecord(t *testing.T) {
	g := startGRPCGateway(t, "unimplemented dai.googleapis.com")
	vault := operationsClient(t, "vault.googleapis.com", tokenVault)
	unscoped := operationsClient(t, "vault.googleapis.com", tokenEmail)
	anonymous := operationsClient(t, "vault.googleapis.com", "")
	dai := operationsClient(t, "dai.googleapis.com", tokenVault)
	gke := dialGateway(t, "container.googleapis.com", tokenCloud)
	sql := dialGateway(t, "sqladmin.googleapis.com", tokenEmail)

	mix := []struct {
		name         string
		call         func(i int) grpcAnswer
		wantCode     codes.Code
		wantDecision string
		wantOp       string // with the call's index
	}{
		{"forwarded", func(i int) grpcAnswer { return cancelOperation(vault, fmt.Sprintf("operations/load-%d", i)) },
			codes.OK, "forwarded", "operations/load-%d"},
		{"wrong scope", func(i int) grpcAnswer { return cancelOperation(unscoped, fmt.Sprintf("operations/load-%d", i)) },
			codes.PermissionDenied, "scope_insufficient", "operations/load-%d"},
		{"no token", func(i int) grpcAnswer { return cancelOperation(anonymous, fmt.Sprintf("operations/load-%d", i)) },
			codes.Unauthenticated, "unauthenticated", "operations/load-%d"},
		{"unimplemented", func(i int) grpcAnswer { return cancelOperation(dai, fmt.Sprintf("operations/load-%d", i)) },
			codes.Unimplemented, "unimplemented", "operations/load-%d"},
		{"GKE forwarded", func(i int) grpcAnswer {
			return invokeRaw(gke, gkeCancelMethod, gkeCancel("", "", "", fmt.Sprintf("projects/p/locations/l/operations/load-%d", i)))
		}, codes.OK, "forwarded", "projects/p/locations/l/operations/load-%d"},
		{"Cloud SQL wrong scope", func(i int) grpcAnswer {
			return invokeRaw(sql, sqlCancelMethod, sqlCancel(fmt.Sprintf("load-%d", i), "p"))
		}, codes.PermissionDenied, "scope_insufficient", "projects/p/operations/load-%d"},
	}
	const total, concurrency = 500, 20
	answers := make([]grpcAnswer, total)
	deadline := time.Now().Add(20 * time.Second)
	work := make(chan int)
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for i := range work {
				answers[i] = mix[i%len(mix)].call(i)
			}
		})
	}
	sent := 0
	for ; sent < total && time.Now().Before(deadline); sent++ {
		work <- sent
	}
	close(work)
	wg.Wait()
	if sent < total {
		t.Fatalf("only %d of %d calls within the time bound", sent, total)
	}

	// One line per problem would drown the first ones: keep ten, count all.
	var problems []string
	count := 0
	report := func(format string, args ...any) {
		if count++; count <= 10 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	wantForwarded, wantIDs := 0, map[string]bool{}
	for i, a := range answers {
		k := mix[i%len(mix)]
		if k.wantCode == codes.OK {
			wantForwarded++
		}
		if status.Code(a.err) != k.wantCode {
			report("%s #%d: %v, want %s", k.name, i, a.err, k.wantCode)
		}
		if a.auditID == "" {
			report("%s #%d: no audit-id metadata", k.name, i)
			continue
		}
		if wantIDs[a.auditID] {
			report("%s #%d: audit id %s given twice", k.name, i, a.auditID)
		}
		wantIDs[a.auditID] = true
	}

	var byID map[string][]record
	for wait := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		byID = map[string][]record{}
		for _, r := range g.readRecords() {
			if r.str("stage") == "completed" {
				byID[r.str("audit_id")] = append(byID[r.str("audit_id")], r)
			}
		}
		if len(byID) >= len(wantIDs) || time.Now().After(wait) {
			break
		}
	}
	for i, a := range answers {
		k := mix[i%len(mix)]
		if a.auditID == "" {
			continue
		}
		recs := byID[a.auditID]
		if len(recs) != 1 {
			report("%s #%d: %d completed records, want 1", k.name, i, len(recs))
			continue
		}
		if op := fmt.Sprintf(k.wantOp, i); recs[0].str("decision") != k.wantDecision || recs[0].str("operation") != op ||
			recs[0].str("protocol") != "grpc" || !recs[0].hasNumber("grpc_status", int(k.wantCode)) {
			report("%s #%d: record %v, want %s of %s, grpc_status %d", k.name, i, recs[0], k.wantDecision, op, k.wantCode)
		}
	}
	if n := len(byID); n != len(wantIDs) {
		report("completed records under %d audit ids, want %d", n, len(wantIDs))
	}
	if n := len(g.standIn.calls()); n != wantForwarded {
		report("the stand-in got %d calls, want the %d forwarded ones", n, wantForwarded)
	}
	if count > 0 {
		t.Errorf("%d calls at concurrency %d: %d problems, the first:\n%s", total, concurrency, count, strings.Join(problems, "\n"))
	}
}

func gzipped(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func deflated(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := flate.NewWriter(&buf, flate.DefaultCompression)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
