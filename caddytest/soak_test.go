package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"
)

// soakConfig is startGateway's Caddyfile for a directive, with extra
// lines in the site: a reload of it changes nothing the test looks at.
func soakConfig(g *gateway, directive, extra string) string {
	return g.config(gatewayOptions{site: "lro_cancel {\ntokeninfo TOKENINFO\n" + directive + "\n}\n" + extra + "\nreverse_proxy UPSTREAM"})
}

// fillDisk writes a filler file into dir until the file system is full,
// bounded by max bytes.
func fillDisk(t *testing.T, path string, max int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for n := 0; n < max; n += len(chunk) {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Errorf("filling the disk: %v", err)
			}
			return
		}
	}
	t.Errorf("the disk did not fill within %d bytes", max)
}

// Under concurrent mixed cancels, while tokeninfo flaps, the journal's disk
// fills up and recovers twice and Caddy reloads twice, every request that
// reached Caddy has exactly one completed record in the log and in the
// journal, no refused cancel reaches the upstream, and no goroutine leaks.
func TestFaultSoakKeepsExactlyOneCompletedRecordPerRequest(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs a real Caddy")
	}
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	disk := filepath.Join(t.TempDir(), "disk")
	if err := os.Mkdir(disk, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", disk).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v: %s", err, out)
	}
	// Caddy keeps the journal open after the test: unmount lazily.
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", disk).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", disk, err, out)
		}
	})
	journal := filepath.Join(disk, "journal")
	filler := filepath.Join(disk, "filler")
	directive := "audit {\n journal " + journal + " {\n timeout 1s\n }\n}"
	g := startGateway(t, gatewayOptions{directive: directive})
	// The same config as startGateway's, so that reloads change nothing.
	g.tester.InitServer(soakConfig(g, directive, ""), "caddyfile")
	g.upstream.slowPrefix.Store("op-slow")
	g.upstream.delay.Store(int64(300 * time.Millisecond))
	g.upstream.resetPrefix.Store("op-reset") // the upstream resets these: Caddy answers 502

	client := &http.Client{Transport: caddytest.CreateTestingTransport(), Timeout: 10 * time.Second}
	const workers = 16
	client.Transport.(*http.Transport).MaxIdleConnsPerHost = workers
	if resp, err := client.Do(newRequest(t, "POST", apiURL("vault.googleapis.com", "/v1/operations/warmup:cancel"), "", bearer(tokenVault)...)); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	client.CloseIdleConnections()
	g.upstream.srv.CloseClientConnections()
	g.tokeninfo.srv.CloseClientConnections()
	time.Sleep(200 * time.Millisecond)
	goroutinesBefore := runtime.NumGoroutine()

	type kind struct {
		op     string
		header []string
		hangUp bool
	}
	kinds := []kind{
		{op: "op-scoped", header: bearer(tokenVault)},
		{op: "op-unscoped", header: bearer(tokenEmail)},
		{op: "op-anon"},
		{op: "op-slow", header: bearer(tokenVault), hangUp: true},
		{op: "op-revoked", header: bearer(tokenUnknown)},
		{op: "op-cloud", header: bearer(tokenCloud)},
		{op: "op-reset", header: bearer(tokenVault)},
	}
	var (
		mu       sync.Mutex
		sent     []string              // operations sent
		auditIDs = map[string]string{} // operation → Audit-Id the client saw
		statuses = map[string]int{}
		resets   int // requests whose connection was reset
	)
	const load = 12 * time.Second
	stopLoad := time.Now().Add(load)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := 0; i < 100000 && time.Now().Before(stopLoad); i++ {
				k := kinds[(w+i)%len(kinds)]
				op := fmt.Sprintf("operations/%s-%d-%d", k.op, w, i)
				timeout := 5 * time.Second
				if k.hangUp {
					timeout = 50 * time.Millisecond
				}
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				req := newRequest(t, "POST", apiURL("vault.googleapis.com", "/v1/"+op+":cancel"), "", k.header...)
				resp, err := client.Do(req.WithContext(ctx))
				mu.Lock()
				sent = append(sent, op)
				if err == nil {
					auditIDs[op] = resp.Header.Get("Audit-Id")
					statuses[op] = resp.StatusCode
				}
				mu.Unlock()
				switch {
				case err == nil:
					resp.Body.Close()
				case k.hangUp:
				case errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF):
					// A connection the old server closed during a reload:
					// checked below like a hang-up, by its records.
					mu.Lock()
					resets++
					mu.Unlock()
				default:
					t.Errorf("%s: %v", op, err)
				}
				cancel()
				time.Sleep(25 * time.Millisecond) // keeps the journal within the tmpfs
			}
		})
	}

	// The faults, on a fixed schedule: tokeninfo is down 0.5s in every
	// 1.5s; the disk is full during [2s,4.5s) and [7.5s,10s); Caddy
	// reloads at 3s, while the disk is full, and at 6s, while it works.
	reloads := 0
	start := time.Now()
	for step := 0; step < int(load/(250*time.Millisecond)); step++ {
		time.Sleep(time.Until(start.Add(time.Duration(step) * 250 * time.Millisecond)))
		g.tokeninfo.down.Store(step%6 >= 4)
		switch step {
		case 8, 30: // 2s, 7.5s
			fillDisk(t, filler, 64<<20)
		case 18, 40: // 4.5s, 10s
			if err := os.Remove(filler); err != nil {
				t.Fatal(err)
			}
		case 12, 24: // 3s (while the disk is full), 6s
			reloads++
			g.tester.InitServer(soakConfig(g, directive, fmt.Sprintf("header X-Soak-Reload %d", reloads)), "caddyfile")
		}
	}
	g.tokeninfo.down.Store(false)
	wg.Wait()

	// Requests after the outages write what the journal kept.
	for i := range 3 {
		resp, err := client.Do(newRequest(t, "POST", apiURL("vault.googleapis.com", fmt.Sprintf("/v1/operations/final-%d:cancel", i)), "", bearer(tokenVault)...))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("final request: status %d", resp.StatusCode)
		}
	}
	// Wait until the access log, written last, stops growing.
	for last, wait := -1, time.Now().Add(10*time.Second); time.Now().Before(wait); time.Sleep(400 * time.Millisecond) {
		n := len(readRecordFile(t, filepath.Join(g.dir, "access.log")))
		if n == last {
			break
		}
		last = n
	}
	logged := completedByOperation(t, filepath.Join(g.dir, "audit.log"))
	journaled := completedByOperation(t, journal)
	anyRecord := map[string]bool{}
	for _, path := range []string{filepath.Join(g.dir, "audit.log"), journal} {
		for _, r := range readRecordFile(t, path) {
			anyRecord[r.str("operation")] = true
		}
	}
	upstream := map[string]int{}
	for _, r := range g.upstream.requests() {
		upstream[strings.TrimSuffix(strings.TrimPrefix(r.Path, "/v1/"), ":cancel")]++
	}

	// The reloads kept the same files: the last requests are in them.
	for i := range 3 {
		op := fmt.Sprintf("operations/final-%d", i)
		if len(logged[op]) != 1 || len(journaled[op]) != 1 {
			t.Errorf("%s: %d completed records in the log, %d in the journal, want 1 each", op, len(logged[op]), len(journaled[op]))
		}
	}

	mu.Lock()
	defer mu.Unlock()
	reached, refused, unavailable := 0, 0, 0
	for _, op := range sent {
		if auditIDs[op] == "" && !anyRecord[op] {
			continue // hung up before Caddy read the request
		}
		reached++
		for where, recs := range map[string]map[string][]record{"log": logged, "journal": journaled} {
			if n := len(recs[op]); n != 1 {
				t.Errorf("%s: %s has %d completed records, want exactly 1 (status %d)", where, op, n, statuses[op])
			}
		}
		if rs := logged[op]; len(rs) == 1 {
			if id := auditIDs[op]; id != "" && rs[0].str("audit_id") != id {
				t.Errorf("%s: Audit-Id %s, record %s", op, id, rs[0].str("audit_id"))
			}
			switch d := rs[0].str("decision"); {
			case d == "forwarded":
			case upstream[op] != 0:
				t.Errorf("%s was refused (%s) but reached the upstream", op, d)
			default:
				refused++
				if d == "journal_unavailable" {
					unavailable++
				}
			}
		}
	}
	for op, n := range upstream {
		if rs := logged[op]; len(rs) != 1 || rs[0].str("decision") != "forwarded" || n != 1 {
			t.Errorf("upstream got %s %d times; its records: %v", op, n, rs)
		}
	}
	t.Logf("%d requests sent, %d reached Caddy, %d refused (%d journal_unavailable), %d forwarded, %d reloads, %d connections reset",
		len(sent), reached, refused, unavailable, len(upstream), reloads, resets)
	if resets > len(sent)/100 {
		t.Errorf("%d of %d requests had their connection reset", resets, len(sent))
	}
	if unavailable == 0 {
		t.Error("no cancel was refused for the journal: the disk never filled")
	}

	// Idle keep-alive connections (the test's client, Caddy's to the
	// fakes) are pools, not leaks: close them on both sides.
	client.CloseIdleConnections()
	g.upstream.srv.CloseClientConnections()
	g.tokeninfo.srv.CloseClientConnections()
	var after int
	for wait := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		client.CloseIdleConnections()
		g.upstream.srv.CloseClientConnections()
		g.tokeninfo.srv.CloseClientConnections()
		after = runtime.NumGoroutine()
		if after <= goroutinesBefore+10 || time.Now().After(wait) {
			break
		}
	}
	t.Logf("goroutines: %d before, %d after", goroutinesBefore, after)
	if after > goroutinesBefore+10 {
		var stacks strings.Builder
		_ = pprof.Lookup("goroutine").WriteTo(&stacks, 1)
		t.Errorf("%d goroutines after the soak, %d before:\n%s", after, goroutinesBefore, stacks.String())
	}
}
