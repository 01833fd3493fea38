package integration

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// sealedGateway is the built binary serving cancels with a sealed journal,
// its checkpoints logged to a file, and an admin endpoint for reloads.
type sealedGateway struct {
	t                   *testing.T
	bin, dir            string
	port, admin         int
	journal, key, pub   string
	checkpointLog       string
	caddyfile, upstream string
	tokeninfo           string
	proc                *caddyProcess
	generation          int // makes each reload's config differ
}

func (g *sealedGateway) config() string {
	return fmt.Sprintf(`{
	admin 127.0.0.1:%[1]d
	http_port %[2]d
	default_bind 127.0.0.1
	auto_https off
	skip_install_trust
	grace_period 1ns
	log checkpoints {
		output file %[3]s
		format json
		include http.handlers.lro_cancel.checkpoint
	}
}

http://:%[2]d {
	lro_cancel {
		tokeninfo %[4]s
		audit {
			journal %[5]s {
				seal %[6]s
				checkpoint %[7]dms
			}
		}
	}
	reverse_proxy %[8]s
}
`, g.admin, g.port, g.checkpointLog, g.tokeninfo, g.journal, g.key, 150+g.generation, g.upstream)
}

func (g *sealedGateway) writeConfig() {
	if err := os.WriteFile(g.caddyfile, []byte(g.config()), 0o600); err != nil {
		g.t.Fatal(err)
	}
}

func (g *sealedGateway) start(name string) {
	g.writeConfig()
	g.proc = startCaddy(g.t, g.bin, g.dir, g.caddyfile, g.port, name)
}

// reload loads a changed config through the admin API, as `caddy reload`.
func (g *sealedGateway) reload() {
	g.t.Helper()
	g.generation++
	g.writeConfig()
	resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/load", g.admin), "text/caddyfile", strings.NewReader(g.config()))
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := bufio.NewReader(resp.Body).ReadString(0)
		g.t.Fatalf("reload: %s %s\n%s", resp.Status, b, g.proc.log())
	}
}

// stop stops the gateway gracefully, as `caddy stop`: the journal's last
// checkpoint is appended on the way out.
func (g *sealedGateway) stop() {
	g.t.Helper()
	resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/stop", g.admin), "", nil)
	if err == nil {
		resp.Body.Close()
	}
	select {
	case <-g.proc.exited:
	case <-time.After(30 * time.Second):
		g.t.Fatalf("caddy did not stop:\n%s", g.proc.log())
	}
}

// load sends cancels from workers until each has sent its share or the
// gateway stops answering, and returns the audit ids of the answered ones.
func (g *sealedGateway) load(workers, each int, prefix string) []string {
	var mu sync.Mutex
	var ids []string
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 20 * time.Second}
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				req, _ := http.NewRequest("POST", fmt.Sprintf("http://127.0.0.1:%d/v1/operations/%s-%d-%d:cancel", g.port, prefix, w, i), nil)
				req.Host = "vault.googleapis.com"
				req.Header.Set("Authorization", "Bearer "+tokenVault)
				resp, err := client.Do(req)
				if err != nil {
					return // the gateway is gone: a kill
				}
				resp.Body.Close()
				if id := resp.Header.Get("Audit-Id"); id != "" && resp.StatusCode == http.StatusOK {
					mu.Lock()
					ids = append(ids, id)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return ids
}

// checkMetrics reads the admin endpoint's metrics: checkpoints written,
// none failed, and when the last one was.
func (g *sealedGateway) checkMetrics() {
	g.t.Helper()
	var values map[string]float64
	// The first checkpoint of this process comes at its first interval.
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		values = g.journalMetrics()
		if values[`caddy_lro_cancel_journal_checkpoints_total{result="written"}`] >= 1 {
			break
		}
	}
	if values[`caddy_lro_cancel_journal_checkpoints_total{result="written"}`] < 1 ||
		values[`caddy_lro_cancel_journal_checkpoints_total{result="failed"}`] != 0 ||
		values["caddy_lro_cancel_journal_last_checkpoint_timestamp_seconds"] < float64(time.Now().Add(-time.Hour).Unix()) {
		g.t.Errorf("journal metrics = %v, want checkpoints written, none failed, a recent last one", values)
	}
}

func (g *sealedGateway) journalMetrics() map[string]float64 {
	g.t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", g.admin))
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	values := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if ok && strings.HasPrefix(name, "caddy_lro_cancel_journal_") {
			values[name], _ = strconv.ParseFloat(v, 64)
		}
	}
	return values
}

func newSealedGateway(t *testing.T) *sealedGateway {
	if testing.Short() {
		t.Skip("integration test: builds and runs the binary")
	}
	dir := t.TempDir()
	g := &sealedGateway{
		t: t, bin: buildCaddy(t), dir: dir, port: freePort(t), admin: freePort(t),
		journal: filepath.Join(dir, "audit.journal"), key: filepath.Join(dir, "journal.key"),
		pub: filepath.Join(dir, "journal.pub"), checkpointLog: filepath.Join(dir, "checkpoints.log"),
		caddyfile: filepath.Join(dir, "Caddyfile"),
		upstream:  newFakeUpstream(t).addr(), tokeninfo: newFakeTokenInfo(t, defaultGrants()).url(),
	}
	runCaddy(t, g.bin, "lro-cancel", "journal", "keygen", "--name", "gateway.test/audit", "--key", g.key, "--pub", g.pub).wantExit(t, 0)
	return g
}

// The auditor's story, through the built binary: a sealed journal under
// concurrent load, reloads, two rotations and a kill -9, then verify,
// query, prove and check-proof offline, and every kind of tampering found.
func TestSealedJournalSurvivesReloadsRotationsAndACrash(t *testing.T) {
	g := newSealedGateway(t)

	// keygen: a signer key only its owner reads, each key one line.
	fi, err := os.Stat(g.key)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("the signer key's mode is %v, want 0600", fi.Mode().Perm())
	}
	for _, f := range []string{g.key, g.pub} {
		b, _ := os.ReadFile(f)
		if bytes.Count(b, []byte("\n")) != 1 || !bytes.HasSuffix(b, []byte("\n")) {
			t.Errorf("%s is not one line with a trailing newline: %q", f, b)
		}
	}
	runCaddy(t, g.bin, "lro-cancel", "journal", "keygen", "--name", "x", "--key", g.key, "--pub", g.pub+".2").wantExit(t, 2)

	g.start("first")
	var answered []string
	during := func(prefix string, action func()) {
		done := make(chan []string)
		go func() { done <- g.load(6, 25, prefix) }()
		time.Sleep(150 * time.Millisecond)
		action()
		answered = append(answered, <-done...)
	}
	// A reload under load.
	during("reload", g.reload)
	// Two rotations under load: mv, then reload.
	during("rotate1", func() {
		if err := os.Rename(g.journal, g.journal+".1"); err != nil {
			t.Fatal(err)
		}
		g.reload()
	})
	during("rotate2", func() {
		if err := os.Rename(g.journal, g.journal+".2"); err != nil {
			t.Fatal(err)
		}
		g.reload()
	})
	// kill -9 mid-load, and a restart on the same journal.
	during("crash", g.proc.kill)
	g.start("restarted")
	answered = append(answered, g.load(4, 10, "after")...)
	g.checkMetrics()
	g.stop()

	files := []string{g.journal + ".1", g.journal + ".2", g.journal}
	verify := func(key string, extra []string, files ...string) caddyRun {
		args := append([]string{"lro-cancel", "journal", "verify", "--key", key, "--checkpoint", g.checkpointLog}, extra...)
		return runCaddy(t, g.bin, append(args, files...)...)
	}
	run := verify(g.pub, []string{"--format", "json"}, files...)
	run.wantExit(t, 0)
	var res struct {
		OK                      bool
		Lines, Sealed, Unsealed int64
		Problems                []struct{ File, Kind string }
	}
	if err := json.Unmarshal([]byte(run.stdout), &res); err != nil {
		t.Fatalf("verify --format json printed %q: %v", run.stdout, err)
	}
	if !res.OK || res.Unsealed != 0 || res.Sealed != res.Lines-1 || len(res.Problems) != 0 {
		t.Fatalf("verify = %+v, want intact and sealed to the last line\n%s", res, g.proc.log())
	}

	// Exactly one completed line per Audit-Id the clients received.
	completed := map[string]int{}
	lineOf := map[string]string{}
	for _, f := range files {
		for _, l := range readLines(t, f) {
			var r struct{ AuditID, Stage string }
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) != nil {
				t.Fatalf("%s: a line that is not JSON: %q", f, l)
			}
			r.AuditID, _ = m["audit_id"].(string)
			r.Stage, _ = m["stage"].(string)
			if r.Stage == "completed" {
				completed[r.AuditID]++
				lineOf[r.AuditID] = l
			}
		}
	}
	if len(answered) < 100 {
		t.Fatalf("only %d cancels answered", len(answered))
	}
	for _, id := range answered {
		if completed[id] != 1 {
			t.Errorf("audit id %s has %d completed lines, want 1", id, completed[id])
		}
	}

	// The root of the last checkpoint, recomputed with another
	// implementation of RFC 6962 than the one the project uses.
	checkRootIndependently(t, g.pub, files)

	// query prints the record line byte for byte, and no checkpoint.
	id := answered[len(answered)/2]
	q := runCaddy(t, g.bin, append([]string{"lro-cancel", "journal", "query", "--audit-id", id, "--format", "jsonl"}, files...)...)
	q.wantExit(t, 0)
	if q.stdout != lineOf[id]+"\n" {
		t.Errorf("query --audit-id %s printed %q, want its completed line %q", id, q.stdout, lineOf[id])
	}
	all := runCaddy(t, g.bin, append([]string{"lro-cancel", "journal", "query", "--stage", "all"}, files...)...)
	if strings.Contains(all.stdout, `"checkpoint"`) || strings.Count(all.stdout, "\n") < 2*len(answered) {
		t.Errorf("query --stage all printed %d lines, checkpoints among them: %v", strings.Count(all.stdout, "\n"), strings.Contains(all.stdout, `"checkpoint"`))
	}

	// prove and check-proof, and a proof that must not hold.
	p := runCaddy(t, g.bin, append([]string{"lro-cancel", "journal", "prove", "--audit-id", id}, files...)...)
	p.wantExit(t, 0)
	proofFile := filepath.Join(g.dir, "proof.json")
	if err := os.WriteFile(proofFile, []byte(p.stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	runCaddy(t, g.bin, "lro-cancel", "journal", "check-proof", "--key", g.pub, proofFile).wantExit(t, 0)
	forged := filepath.Join(g.dir, "forged.json")
	if err := os.WriteFile(forged, []byte(strings.Replace(p.stdout, `\"status\":200`, `\"status\":403`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	runCaddy(t, g.bin, "lro-cancel", "journal", "check-proof", "--key", g.pub, forged).wantExit(t, 1)
	otherKey, otherPub := filepath.Join(g.dir, "other.key"), filepath.Join(g.dir, "other.pub")
	runCaddy(t, g.bin, "lro-cancel", "journal", "keygen", "--name", "gateway.test/audit", "--key", otherKey, "--pub", otherPub).wantExit(t, 0)
	runCaddy(t, g.bin, "lro-cancel", "journal", "check-proof", "--key", otherPub, proofFile).wantExit(t, 1)
	runCaddy(t, g.bin, append([]string{"lro-cancel", "journal", "prove", "--audit-id", "no-such-id"}, files...)...).wantExit(t, 1)

	// Every kind of tampering, each on copies: verify exits 1 and names it.
	tamper := func(name string, edit func(copies []string)) []string {
		dir := filepath.Join(g.dir, strings.ReplaceAll(name, " ", "-"))
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		copies := make([]string, len(files))
		for i, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			copies[i] = filepath.Join(dir, filepath.Base(f))
			if err := os.WriteFile(copies[i], b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		edit(copies)
		return copies
	}
	editLines := func(path string, f func([]string) []string) {
		ls := f(readLines(t, path))
		if err := os.WriteFile(path, []byte(strings.Join(ls, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	firstRecord := func(ls []string) int {
		for i, l := range ls {
			if strings.Contains(l, `"stage":"completed"`) && i > 2 {
				return i
			}
		}
		t.Fatal("no record line")
		return 0
	}
	firstCheckpoint := func(ls []string) int {
		for i, l := range ls {
			if strings.HasPrefix(l, `{"checkpoint":`) {
				return i
			}
		}
		t.Fatal("no checkpoint line")
		return 0
	}
	for _, c := range []struct {
		name string
		key  string
		edit func(copies []string)
		kind string
	}{
		{"untouched", g.pub, func([]string) {}, ""},
		{"a modified line", g.pub, func(c []string) {
			editLines(c[1], func(ls []string) []string {
				i := firstRecord(ls)
				ls[i] = strings.Replace(ls[i], `"status":200`, `"status":403`, 1)
				return ls
			})
		}, "modified"},
		{"a deleted line", g.pub, func(c []string) {
			editLines(c[0], func(ls []string) []string { i := firstRecord(ls); return append(ls[:i], ls[i+1:]...) })
		}, "missing"},
		{"two lines reordered", g.pub, func(c []string) {
			editLines(c[2], func(ls []string) []string { i := firstRecord(ls); ls[i], ls[i+1] = ls[i+1], ls[i]; return ls })
		}, "missing"},
		{"a line duplicated", g.pub, func(c []string) {
			editLines(c[0], func(ls []string) []string {
				i := firstRecord(ls)
				return append(ls[:i+1], append([]string{ls[i]}, ls[i+1:]...)...)
			})
		}, "duplicate"},
		{"a line inserted", g.pub, func(c []string) {
			editLines(c[0], func(ls []string) []string {
				return append(ls[:1], append([]string{`{"level":"info","audit_id":"forged","stage":"completed"}`}, ls[1:]...)...)
			})
		}, "not_sealed"},
		{"a deleted file", g.pub, func(c []string) { _ = os.Remove(c[1]) }, "missing"},
		{"truncated below a shipped checkpoint", g.pub, func(c []string) {
			editLines(c[2], func(ls []string) []string { return ls[:firstCheckpoint(ls)+1] })
		}, "truncated"},
		{"a checkpoint with a bad signature", g.pub, func(c []string) {
			editLines(c[0], func(ls []string) []string {
				i := firstCheckpoint(ls)
				parts := strings.SplitN(ls[i], `\n`, 3)
				n, _ := strconv.Atoi(parts[1])
				parts[1] = strconv.Itoa(n + 1)
				ls[i] = strings.Join(parts, `\n`)
				return ls
			})
		}, "bad_signature"},
		{"checkpoints by an unknown key", otherPub, func([]string) {}, "unknown_key"},
	} {
		t.Run(c.name, func(t *testing.T) {
			copies := tamper(c.name, c.edit)
			var present []string
			for _, f := range copies {
				if _, err := os.Stat(f); err == nil {
					present = append(present, f)
				}
			}
			run := verify(c.key, nil, present...)
			if c.kind == "" {
				run.wantExit(t, 0)
				return
			}
			run.wantExit(t, 1)
			if !strings.Contains(run.stdout, ": "+c.kind+": ") {
				t.Errorf("verify did not report %s:\n%s", c.kind, run.stdout)
			}
		})
	}
	// A sealed journal with no checkpoint at all.
	noCP := filepath.Join(g.dir, "no-checkpoint.journal")
	ls := readLines(t, files[0])
	if err := os.WriteFile(noCP, []byte(strings.Join(ls[:firstCheckpoint(ls)], "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	run = runCaddy(t, g.bin, "lro-cancel", "journal", "verify", "--key", g.pub, noCP)
	run.wantExit(t, 1)
	if !strings.Contains(run.stdout, "no_checkpoint") {
		t.Errorf("verify of a journal without checkpoints:\n%s", run.stdout)
	}
	// Bad usage.
	runCaddy(t, g.bin, "lro-cancel", "journal", "verify", "--key", g.pub).wantExit(t, 2)
	runCaddy(t, g.bin, "lro-cancel", "journal", "verify", "--key", g.pub, "--format", "yaml", files[0]).wantExit(t, 2)
	runCaddy(t, g.bin, "lro-cancel", "journal", "verify", "--key", g.key, files[0]).wantExit(t, 2) // a signer key
	runCaddy(t, g.bin, "lro-cancel", "journal", "verify", "--key", g.pub, "--frobnicate", files[0]).wantExit(t, 2)
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// checkRootIndependently recomputes the last checkpoint's root over the
// journal's lines with transparency-dev/merkle, and checks its signature.
func checkRootIndependently(t *testing.T, pub string, files []string) {
	t.Helper()
	var lines []string
	for _, f := range files {
		lines = append(lines, readLines(t, f)...)
	}
	last := lines[len(lines)-1]
	var cp struct{ Checkpoint string }
	if err := json.Unmarshal([]byte(last), &cp); err != nil || cp.Checkpoint == "" {
		t.Fatalf("the journal does not end with a checkpoint: %.120q", last)
	}
	vb, _ := os.ReadFile(pub)
	v, err := note.NewVerifier(strings.TrimSpace(string(vb)))
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open([]byte(cp.Checkpoint), note.VerifierList(v))
	if err != nil {
		t.Fatalf("the last checkpoint's signature: %v", err)
	}
	body := strings.Split(n.Text, "\n")
	size, err := strconv.Atoi(body[1])
	if err != nil || body[0] != "gateway.test/audit" || size != len(lines)-1 {
		t.Fatalf("checkpoint body %q, want origin gateway.test/audit and size %d", n.Text, len(lines)-1)
	}
	rf := compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	r := rf.NewEmptyRange(0)
	for _, l := range lines[:size] {
		if err := r.Append(rfc6962.DefaultHasher.HashLeaf([]byte(l)), nil); err != nil {
			t.Fatal(err)
		}
	}
	root, err := r.GetRootHash(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := base64.StdEncoding.EncodeToString(root); got != body[2] {
		t.Fatalf("the lines hash to %s, the checkpoint signs %s", got, body[2])
	}
}
