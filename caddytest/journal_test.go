package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// With the journal on, a cancel goes on only once its received record is on
// disk: the journal holds received then completed for each request.
func TestJournalHoldsReceivedBeforeCompleted(t *testing.T) {
	journal := filepath.Join(t.TempDir(), "audit.journal")
	g := startGateway(t, gatewayOptions{directive: "audit {\n journal " + journal + "\n}"})
	resp, _ := g.do(newRequest(t, "POST", apiURL("vault.googleapis.com", vaultCancel), "", bearer(tokenVault)...))
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var recs []record
	eventually(t, "the journal has both records", func() bool {
		recs = readRecordFile(t, journal)
		return len(recs) >= 2
	})
	id := resp.Header.Get("Audit-Id")
	if len(recs) != 2 || recs[0].str("stage") != "received" || recs[1].str("stage") != "completed" ||
		recs[0].str("audit_id") != id || recs[1].str("audit_id") != id || recs[1].str("decision") != "forwarded" {
		t.Errorf("journal = %v, want received and completed records of %s", recs, id)
	}
	if info, err := os.Stat(journal); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("journal mode = %v, %v; want 0600", info.Mode(), err)
	}
}

// A journal that cannot be written (here: a full device) refuses every
// cancel with 503 and forwards nothing.
func TestJournalFailureFailsClosed(t *testing.T) {
	g := startGateway(t, gatewayOptions{directive: "audit {\n journal /dev/full\n}"})
	resp, b := g.do(newRequest(t, "POST", apiURL("vault.googleapis.com", vaultCancel), "", bearer(tokenVault)...))
	e := decodeError(t, b)
	if resp.StatusCode != 503 || e.Error.Status != "UNAVAILABLE" || e.reason() != "AUDIT_JOURNAL_UNAVAILABLE" {
		t.Fatalf("status %d %s, want 503 AUDIT_JOURNAL_UNAVAILABLE", resp.StatusCode, b)
	}
	if n := len(g.upstream.requests()); n != 0 {
		t.Errorf("upstream got %d requests while the journal failed", n)
	}
	if rec := g.recordFor(resp.Header.Get("Audit-Id")); rec.str("decision") != "journal_unavailable" || rec.num("status") != 503 {
		t.Errorf("logged record = %v", rec)
	}
}

// Rotation as the README prescribes: mv the journal, reload Caddy. Records
// before the move are in the old file, records after it in a new one.
func TestJournalRotationByRenameAndReload(t *testing.T) {
	dir := t.TempDir()
	journal := filepath.Join(dir, "audit.journal")
	directive := "audit {\n journal " + journal + "\n}"
	g := startGateway(t, gatewayOptions{directive: directive})
	send := func(g *gateway, n int, prefix string) {
		for i := range n {
			path := fmt.Sprintf("/v1/operations/%s-%d:cancel", prefix, i)
			if resp, _ := g.do(newRequest(t, "POST", apiURL("vault.googleapis.com", path), "", bearer(tokenVault)...)); resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
		}
	}
	send(g, 5, "before")
	if err := os.Rename(journal, journal+".1"); err != nil {
		t.Fatal(err)
	}
	g2 := startGateway(t, gatewayOptions{directive: directive}) // a config reload
	send(g2, 3, "after")

	for file, want := range map[string]string{journal + ".1": "before", journal: "after"} {
		completed := func() (n int) {
			for _, r := range readRecordFile(t, file) {
				if r.str("stage") != "completed" {
					continue
				}
				n++
				if !strings.HasPrefix(r.str("operation"), "operations/"+want+"-") {
					t.Errorf("%s holds %s", filepath.Base(file), r.str("operation"))
				}
			}
			return n
		}
		wantN := map[string]int{"before": 5, "after": 3}[want]
		for deadline := time.Now().Add(5 * time.Second); completed() < wantN && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
		if n := completed(); n != wantN {
			t.Errorf("%s: %d completed records, want %d", filepath.Base(file), n, wantN)
		}
	}
}
