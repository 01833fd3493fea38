package audit

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// testKeys returns a fresh signer and its verifier named origin.
func testKeys(t testing.TB, origin string) (note.Signer, note.Verifier) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return s, v
}

// sealedJournal opens a sealed journal at path and collects its
// checkpoints.
type checkpoints struct {
	mu    sync.Mutex
	notes [][]byte
	fails int
}

func (c *checkpoints) on(n []byte, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.fails++
		return
	}
	c.notes = append(c.notes, n)
}

func (c *checkpoints) all() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slicesClone(c.notes)
}

func slicesClone(n [][]byte) [][]byte { return append([][]byte(nil), n...) }

func openSealed(t testing.TB, path string, s note.Signer, cps *checkpoints) *Journal {
	t.Helper()
	j, err := OpenJournal(path, JournalOptions{Seal: s, CheckpointInterval: time.Hour, OnCheckpoint: cps.on})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func writeRecords(t testing.TB, j *Journal, prefix string, n int) {
	t.Helper()
	for i := range n {
		if err := j.Write(completed(fmt.Sprintf("%s-%d", prefix, i))); err != nil {
			t.Fatal(err)
		}
	}
}

func verifyFiles(t testing.TB, v note.Verifier, anchors []Anchor, files ...string) *VerifyResult {
	t.Helper()
	res, err := VerifyFiles(files, v, anchors)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func lines(t testing.TB, path string) []string {
	t.Helper()
	ls := strings.SplitAfter(mustRead(t.(*testing.T), path), "\n")
	return ls[:len(ls)-1]
}

func writeLines(t testing.TB, path string, ls []string) {
	t.Helper()
	s := strings.Join(ls, "")
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestSealedJournalVerifiesAndSaysWhatIsSealed(t *testing.T) {
	s, v := testKeys(t, "gateway.example/audit")
	path := filepath.Join(t.TempDir(), "audit.journal")
	cps := new(checkpoints)
	j := openSealed(t, path, s, cps)
	writeRecords(t, j, "a", 5)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	res := verifyFiles(t, v, nil, path)
	if !res.OK || res.Lines != 6 || res.Sealed != 5 || res.Unsealed != 0 {
		t.Fatalf("verify = %+v, want ok with 6 lines, 5 sealed, 0 unsealed", res)
	}
	if got := cps.all(); len(got) != 1 || !bytes.Contains(got[0], []byte("gateway.example/audit\n5\n")) {
		t.Fatalf("checkpoints logged = %q, want one of size 5", got)
	}
	ls := lines(t, path)
	if !strings.HasSuffix(ls[0], `,"seq":1,"prev":""}`+"\n") || !strings.Contains(ls[1], `,"seq":2,"prev":"`) {
		t.Fatalf("lines do not carry seq and prev: %q", ls[:2])
	}

	// Reopened, the chain goes on; records after the last checkpoint are
	// counted as unsealed until the next one.
	j = openSealed(t, path, s, cps)
	writeRecords(t, j, "b", 3)
	res = verifyFiles(t, v, nil, path)
	if !res.OK || res.Lines != 9 || res.Sealed != 5 || res.Unsealed != 3 {
		t.Fatalf("verify while open = %+v, want 9 lines, 5 sealed, 3 unsealed", res)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	res = verifyFiles(t, v, anchorsOf(cps.all()), path)
	if !res.OK || res.Lines != 10 || res.Sealed != 9 || res.Unsealed != 0 {
		t.Fatalf("verify after close = %+v, want 10 lines, 9 sealed", res)
	}
}

func anchorsOf(notes [][]byte) []Anchor {
	var out []Anchor
	for i, n := range notes {
		out = append(out, Anchor{File: "log", Line: int64(i + 1), Note: n})
	}
	return out
}

func TestVerifyFindsEveryTamperClass(t *testing.T) {
	s, v := testKeys(t, "gateway.example/audit")
	_, other := testKeys(t, "gateway.example/audit")
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.journal")
	cps := new(checkpoints)
	j := openSealed(t, path, s, cps)
	writeRecords(t, j, "a", 6)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j = openSealed(t, path, s, cps)
	writeRecords(t, j, "b", 4)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	orig := lines(t, path) // 6 records, cp, 4 records, cp: 12 lines
	if len(orig) != 12 {
		t.Fatalf("journal has %d lines, want 12", len(orig))
	}
	anchors := anchorsOf(cps.all())
	if res := verifyFiles(t, v, anchors, path); !res.OK {
		t.Fatalf("untouched journal: %+v", res)
	}

	edit := func(f func([]string) []string) string {
		p := filepath.Join(t.TempDir(), "copy.journal")
		writeLines(t, p, f(slicesCloneS(orig)))
		return p
	}
	badSig := func(ls []string) []string {
		ls[6] = strings.Replace(ls[6], `\n6\n`, `\n7\n`, 1)
		return ls
	}
	for _, c := range []struct {
		name    string
		file    string
		key     note.Verifier
		anchors []Anchor
		kind    string
		line    int64
	}{
		{"a modified record", edit(func(ls []string) []string { ls[2] = strings.Replace(ls[2], "a-2", "a-X", 1); return ls }), v, nil, ProblemModified, 3},
		{"a deleted record", edit(func(ls []string) []string { return append(ls[:3], ls[4:]...) }), v, nil, ProblemMissing, 4},
		{"two records swapped", edit(func(ls []string) []string { ls[2], ls[3] = ls[3], ls[2]; return ls }), v, nil, ProblemMissing, 3},
		{"a record inserted, chained to the line before", edit(func(ls []string) []string {
			body := encodeLine(t, completed("forged"))
			forged, _ := appendSealed(nil, []byte(body), 4, tlog.RecordHash([]byte(strings.TrimSuffix(ls[2], "\n"))))
			return append(ls[:3], append([]string{string(forged)}, ls[3:]...)...)
		}), v, nil, ProblemInserted, 4},
		{"a record duplicated", edit(func(ls []string) []string { return append(ls[:3], append([]string{ls[2]}, ls[3:]...)...) }), v, nil, ProblemDuplicate, 4},
		{"a line without its seal", edit(func(ls []string) []string { ls[1] = `{"level":"info","audit_id":"forged"}` + "\n"; return ls }), v, nil, ProblemNotSealed, 2},
		{"truncated below a checkpoint from the log", edit(func(ls []string) []string { return ls[:7] }), v, anchors, ProblemTruncated, 2},
		{"a checkpoint with a bad signature", edit(badSig), v, nil, ProblemBadSignature, 7},
		{"checkpoints by an unknown key", path, other, nil, ProblemUnknownKey, 7},
		{"a sealed journal without checkpoints", edit(func(ls []string) []string { return ls[:6] }), v, nil, ProblemNoCheckpoint, 0},
		{"a first file missing", edit(func(ls []string) []string { return ls[7:] }), v, nil, ProblemMissing, 1},
		{"a torn last line", edit(func(ls []string) []string { ls[11] = strings.TrimSuffix(ls[11], "\n") + "x"; return ls }), v, nil, ProblemTorn, 12},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := verifyFiles(t, c.key, c.anchors, c.file)
			if res.OK || len(res.Problems) == 0 {
				t.Fatalf("verify = %+v, want a problem", res)
			}
			p := res.Problems[0]
			if p.Kind != c.kind || p.Line != c.line {
				t.Fatalf("first problem = %+v, want kind %s at line %d", p, c.kind, c.line)
			}
		})
	}
}

func slicesCloneS(s []string) []string { return append([]string(nil), s...) }

func TestVerifyRejectsACheckpointInconsistentWithAnEarlierOne(t *testing.T) {
	s, v := testKeys(t, "gateway.example/audit")
	path := filepath.Join(t.TempDir(), "audit.journal")
	cps := new(checkpoints)
	j := openSealed(t, path, s, cps)
	writeRecords(t, j, "a", 4)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	shipped := cps.all()

	// Someone with the key rewrites the trail and re-seals it: the lines
	// and the checkpoint in the file agree, the one shipped before does not.
	resealed := filepath.Join(t.TempDir(), "resealed.journal")
	cps2 := new(checkpoints)
	j = openSealed(t, resealed, s, cps2)
	writeRecords(t, j, "z", 4)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if res := verifyFiles(t, v, nil, resealed); !res.OK {
		t.Fatalf("the re-sealed journal alone: %+v", res)
	}
	res := verifyFiles(t, v, anchorsOf(shipped), resealed)
	if res.OK || res.Problems[0].Kind != ProblemInconsistent || res.Problems[0].File != "log" {
		t.Fatalf("verify against the shipped checkpoint = %+v, want inconsistent", res)
	}
}

func TestSealedChainContinuesAcrossRotationsAndWriters(t *testing.T) {
	s, v := testKeys(t, "gateway.example/audit")
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.journal")
	cps := new(checkpoints)
	old := openSealed(t, path, s, cps)
	writeRecords(t, old, "a", 3)

	// A second writer of the same file, as during a reload.
	other := openSealed(t, path, s, cps)
	writeRecords(t, other, "b", 2)
	writeRecords(t, old, "c", 2)

	// Rotation: mv, then the new handler opens the path. The old one
	// follows the path from its next append on.
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := other.Close(); err != nil { // its checkpoint begins the new file
		t.Fatal(err)
	}
	next := openSealed(t, path, s, cps)
	writeRecords(t, old, "d", 2)
	writeRecords(t, next, "e", 2)
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	// A second rotation.
	if err := os.Rename(path, path+".2"); err != nil {
		t.Fatal(err)
	}
	last := openSealed(t, path, s, cps)
	writeRecords(t, next, "f", 1)
	writeRecords(t, last, "g", 1)
	for _, j := range []*Journal{next, last} {
		if err := j.Close(); err != nil {
			t.Fatal(err)
		}
	}

	files := []string{path + ".1", path + ".2", path}
	res := verifyFiles(t, v, anchorsOf(cps.all()), files...)
	if !res.OK || res.Unsealed != 0 {
		t.Fatalf("verify %v = %+v, want ok and nothing unsealed", files, res)
	}
	ids := map[string]int{}
	for _, f := range files {
		for _, id := range journalIDs(t, f) {
			if id != "" {
				ids[id]++
			}
		}
	}
	if len(ids) != 13 {
		t.Fatalf("records in the rotation = %v, want 13 distinct", ids)
	}
	// Each later file can be read back alone from its first line: a
	// checkpoint of the tree before it.
	for _, f := range files[1:] {
		if l := lines(t, f)[0]; !strings.HasPrefix(l, checkpointPrefix) {
			t.Fatalf("%s begins with %.80q, want a checkpoint", f, l)
		}
	}
	// Without its middle file, the trail says what is missing.
	res = verifyFiles(t, v, nil, files[0], files[2])
	if res.OK || res.Problems[0].Kind != ProblemMissing || res.Problems[0].File != files[2] || res.Problems[0].Line != 1 {
		t.Fatalf("verify without the middle file = %+v, want lines missing at the start of %s", res, files[2])
	}
}

func TestSealedJournalCheckpointsEveryThousandLinesAndOnTheInterval(t *testing.T) {
	s, v := testKeys(t, "gateway.example/audit")
	path := filepath.Join(t.TempDir(), "audit.journal")
	cps := new(checkpoints)
	j := openSealed(t, path, s, cps)
	var wg sync.WaitGroup
	for w := range 10 {
		wg.Go(func() { writeRecords(t, j, fmt.Sprintf("a%d", w), 250) })
	}
	wg.Wait()
	waitFor(t, "two checkpoints", func() bool { return len(cps.all()) >= 2 })
	res := verifyFiles(t, v, nil, path)
	if !res.OK || res.Unsealed >= 1000 {
		t.Fatalf("verify = %+v, want fewer than 1,000 unsealed", res)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}

	j, err := OpenJournal(path, JournalOptions{Seal: s, CheckpointInterval: 20 * time.Millisecond, OnCheckpoint: cps.on})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	before := len(cps.all())
	writeRecords(t, j, "b", 1)
	waitFor(t, "a checkpoint on the interval", func() bool { return len(cps.all()) > before })
	if res := verifyFiles(t, v, nil, path); !res.OK || res.Unsealed != 0 {
		t.Fatalf("verify after the interval = %+v, want everything sealed", res)
	}
}

func TestProveHandsOneRecordToAThirdParty(t *testing.T) {
	s, v := testKeys(t, "gateway.example/audit")
	_, stranger := testKeys(t, "gateway.example/audit")
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.journal")
	cps := new(checkpoints)
	j := openSealed(t, path, s, cps)
	writeRecords(t, j, "a", 37)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	j = openSealed(t, path, s, cps)
	writeRecords(t, j, "b", 20)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	files := []string{path + ".1", path}
	for _, id := range []string{"a-0", "a-36", "b-7", "b-19"} {
		p, err := ProveFiles(files, id)
		if err != nil {
			t.Fatalf("prove %s: %v", id, err)
		}
		if !strings.Contains(p.Line, `"audit_id":"`+id+`"`) {
			t.Fatalf("prove %s gave line %q", id, p.Line)
		}
		b, _ := json.Marshal(p)
		if _, err := CheckProof(bytes.NewReader(b), v); err != nil {
			t.Fatalf("check-proof %s: %v", id, err)
		}
		if _, err := CheckProof(bytes.NewReader(b), stranger); err == nil {
			t.Fatalf("check-proof %s with another key holds", id)
		}
		forged := *p
		forged.Line = strings.Replace(p.Line, `"status":200`, `"status":403`, 1)
		b, _ = json.Marshal(&forged)
		if _, err := CheckProof(bytes.NewReader(b), v); err == nil {
			t.Fatalf("check-proof of an altered line of %s holds", id)
		}
		forged = *p
		forged.Index++
		b, _ = json.Marshal(&forged)
		if _, err := CheckProof(bytes.NewReader(b), v); err == nil {
			t.Fatalf("check-proof of %s at another index holds", id)
		}
	}
	if _, err := ProveFiles(files, "nobody"); !errors.Is(err, ErrNoRecord) {
		t.Fatalf("prove of an absent id: %v, want ErrNoRecord", err)
	}
}

func TestQuerySelectsRecordsAndPrintsThemVerbatim(t *testing.T) {
	s, _ := testKeys(t, "gateway.example/audit")
	path := filepath.Join(t.TempDir(), "audit.journal")
	j := openSealed(t, path, s, new(checkpoints))
	for i := range 6 {
		r := completed(fmt.Sprintf("q-%d", i))
		if i%2 == 1 {
			r.Principal, r.Decision, r.Status = "eve@contractors.example.com", DeniedByPolicy, 403
		}
		if err := j.Write(r); err != nil {
			t.Fatal(err)
		}
		if err := j.Write(received(fmt.Sprintf("r-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	file := lines(t, path)
	query := func(q Query) []string {
		var out []string
		if err := QueryFiles([]string{path}, &q, func(line []byte, _ *QueryRecord) error {
			out = append(out, string(line)+"\n")
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	got := query(Query{Principal: "eve@contractors.example.com"})
	if len(got) != 3 {
		t.Fatalf("query by principal = %d lines, want 3", len(got))
	}
	for _, l := range got {
		if !slicesContains(file, l) {
			t.Fatalf("query printed %q, not a line of the journal", l)
		}
	}
	if got := query(Query{Stage: "all"}); len(got) != 12 {
		t.Fatalf("query --stage all = %d lines, want the 12 records and no checkpoint", len(got))
	}
	if got := query(Query{Decision: "denied_by_policy", AuditID: "q-3"}); len(got) != 1 {
		t.Fatalf("query by decision and id = %q", got)
	}
	if got := query(Query{Until: time.Unix(1, 0)}); len(got) != 0 {
		t.Fatalf("query before 1970 = %q", got)
	}
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// FuzzVerifyLines feeds arbitrary bytes to verify as a journal file: it
// must answer, never panic.
func FuzzVerifyLines(f *testing.F) {
	s, v := testKeys(f, "fuzz.example/audit")
	path := filepath.Join(f.TempDir(), "seed.journal")
	j, err := OpenJournal(path, JournalOptions{Seal: s})
	if err != nil {
		f.Fatal(err)
	}
	for i := range 3 {
		_ = j.Write(completed(fmt.Sprint(i)))
	}
	_ = j.Close()
	seed, _ := os.ReadFile(path)
	f.Add(seed)
	f.Add([]byte(`{"checkpoint":"x","seq":1,"prev":""}` + "\n"))
	f.Add([]byte(`{"a":1,"seq":99999999999999999,"prev":"AAAA"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ver := NewVerifier(v, nil)
		if err := ver.Read("fuzz", bytes.NewReader(data)); err != nil {
			return
		}
		res := ver.Result("fuzz")
		if res.OK && bytes.Count(data, []byte("\n")) > 0 && !bytes.Contains(data, []byte(checkpointPrefix)) {
			t.Fatalf("verify passed a journal without a checkpoint: %+v", res)
		}
	})
}

// FuzzCheckProof feeds arbitrary bytes to check-proof: it must answer,
// never panic, and hold only for a real proof.
func FuzzCheckProof(f *testing.F) {
	s, v := testKeys(f, "fuzz.example/audit")
	path := filepath.Join(f.TempDir(), "seed.journal")
	j, err := OpenJournal(path, JournalOptions{Seal: s})
	if err != nil {
		f.Fatal(err)
	}
	for i := range 5 {
		_ = j.Write(completed(fmt.Sprint(i)))
	}
	_ = j.Close()
	p, err := ProveFiles([]string{path}, "3")
	if err != nil {
		f.Fatal(err)
	}
	seed, _ := json.Marshal(p)
	f.Add(seed)
	f.Add([]byte(`{"line":"","index":-1,"checkpoint":"","proof":["AA=="]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = CheckProof(bytes.NewReader(data), v)
	})
}

func TestOpenSealedJournalRefusesWhatCannotBeSealed(t *testing.T) {
	s, _ := testKeys(t, "gateway.example/audit")
	if _, err := OpenJournal("/dev/null", JournalOptions{Seal: s}); err == nil || !strings.Contains(err.Error(), "regular file") {
		t.Fatalf("sealing /dev/null: %v, want an error about a regular file", err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.journal")
	if err := os.Mkdir(path+".chain", 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenJournal(path, JournalOptions{Seal: s}); err == nil || !strings.Contains(err.Error(), "chain record") {
		t.Fatalf("a chain record that is a directory: %v, want an error naming the chain record", err)
	}
}

func TestSealedChainHoldsThroughATornTailAndInterruptedRequests(t *testing.T) {
	s, v := testKeys(t, "gateway.example/audit")
	path := filepath.Join(t.TempDir(), "audit.journal")
	cps := new(checkpoints)
	j := openSealed(t, path, s, cps)
	writeRecords(t, j, "done", 3)
	for i := range 2 {
		if err := j.Write(received(fmt.Sprintf("cut-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	// A crash: the journal is not closed (no last checkpoint), and a write
	// was cut short.
	j.mu.Lock()
	j.closed = true // keep the abandoned journal from writing again
	j.mu.Unlock()
	if err := j.closeFile(); err != nil { // what the kernel does for a dead process
		t.Fatal(err)
	}
	before := mustRead(t, path)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"level":"info","audit_id":"torn`); err != nil {
		t.Fatal(err)
	}
	f.Close()

	j2 := openSealed(t, path, s, cps)
	after := mustRead(t, path)
	if !strings.HasPrefix(after, before) {
		t.Fatal("reopening rewrote bytes that were fsynced")
	}
	if n := strings.Count(after[len(before):], `"decision":"interrupted"`); n != 2 {
		t.Fatalf("%d interrupted completions appended, want 2", n)
	}
	writeRecords(t, j2, "later", 2)
	if err := j2.Close(); err != nil {
		t.Fatal(err)
	}
	if res := verifyFiles(t, v, anchorsOf(cps.all()), path); !res.OK || res.Unsealed != 0 || res.Lines != 10 {
		t.Fatalf("verify = %+v, want 10 intact lines, all sealed", res)
	}
}

// Through an outage that fails writes, fsyncs and reopens in turn, the
// completed records kept in memory reach the file sealed, once each, and
// the chain holds.
func TestSealedChainHoldsThroughDiskOutages(t *testing.T) {
	s, v := testKeys(t, "gateway.example/audit")
	path := filepath.Join(t.TempDir(), "audit.journal")
	cps := new(checkpoints)
	fl, j := openFaulty(t, path, JournalOptions{Seal: s, CheckpointInterval: time.Hour, OnCheckpoint: cps.on})
	var mu sync.Mutex
	durable := map[string]bool{}
	faultsOf := []func(*faults){
		func(fl *faults) { fl.syncErr = syscall.EIO },
		func(fl *faults) { fl.writeErr = syscall.ENOSPC },
		func(fl *faults) { fl.openErr, fl.writeErr = syscall.EACCES, syscall.EIO },
	}
	for round := range 6 {
		fl.update(func(fl *faults) {
			fl.openErr, fl.writeErr, fl.syncErr = nil, nil, nil
			if round%2 == 1 {
				faultsOf[(round/2)%len(faultsOf)](fl)
			}
		})
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				for i := range 10 {
					id := fmt.Sprintf("r%d-w%d-%d", round, w, i)
					err := j.Write(received(id))
					mu.Lock()
					durable[id] = err == nil
					mu.Unlock()
					_ = j.Append(completed(id))
				}
			})
		}
		wg.Wait()
	}
	fl.update(func(fl *faults) { fl.openErr, fl.writeErr, fl.syncErr = nil, nil, nil })
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	res := verifyFiles(t, v, anchorsOf(cps.all()), path)
	if !res.OK || res.Unsealed != 0 {
		t.Fatalf("verify after the outages = %+v, want intact and sealed", res)
	}
	_, n := journalStages(t, path)
	refused := 0
	for id, ok := range durable {
		if !ok {
			refused++
		}
		if n[id+"/completed"] != 1 {
			t.Errorf("%s has %d completed lines, want 1", id, n[id+"/completed"])
		}
	}
	if refused == 0 {
		t.Error("no Write failed: the faults did not bite")
	}
}

// The chain record, encoded by hand after every append, is what
// encoding/json makes of it, and reads back as the same tree.
func TestChainRecordIsItsJSONEncoding(t *testing.T) {
	var st sealState
	for n := range 1030 {
		if n > 0 {
			h := tlog.RecordHash([]byte(fmt.Sprintf("line %d", n)))
			if err := st.t.add(h, nil); err != nil {
				t.Fatal(err)
			}
			st.last, st.unsealed = h, n%7
		}
		c := chainRecord{Size: st.t.n, Edge: st.t.edgeList(), Unsealed: st.unsealed}
		if st.t.n > 0 {
			c.Last = hashString(st.last)
		}
		want, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendChainRecord(nil, &st); string(got) != string(want)+"\n" {
			t.Fatalf("%d leaves: got %s, want %s", n, got, want)
		}
	}
}
