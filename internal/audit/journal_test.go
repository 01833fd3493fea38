package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

var journalEpoch = time.Date(2025, 1, 1, 0, 0, 0, 123456789, time.UTC)

// journalClock is a settable time source, also usable as a zap clock.
type journalClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *journalClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *journalClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func (c *journalClock) NewTicker(d time.Duration) *time.Ticker { return time.NewTicker(d) }

// faults is a file system over the real one whose journal files fail on
// demand, and which counts what the journal asks of it.
type faults struct {
	mu        sync.Mutex
	openErr   error         // open fails with it
	writeErr  error         // Write writes half its bytes, then fails with it
	syncErr   error         // Sync fails with it
	truncErr  error         // Truncate fails with it
	syncGate  chan struct{} // Sync waits for it to be closed
	writeGate chan struct{} // Write waits for it to be closed
	openGate  chan struct{} // open waits for it to be closed
	opens     int
	syncs     int // Sync calls begun, including those waiting at the gate
	dirSyncs  []string
}

func (fl *faults) fs() fileSystem {
	return fileSystem{
		open: func(path string) (file, error) {
			fl.mu.Lock()
			fl.opens++
			err, gate := fl.openErr, fl.openGate
			fl.mu.Unlock()
			if gate != nil {
				<-gate
			}
			if err != nil {
				return nil, err
			}
			f, err := openAppend(path)
			if err != nil {
				return nil, err
			}
			return &faultyFile{file: f, faults: fl}, nil
		},
		syncDir: func(dir string) error {
			fl.mu.Lock()
			fl.dirSyncs = append(fl.dirSyncs, dir)
			fl.mu.Unlock()
			return syncDir(dir)
		},
		announce: announceWriter,
	}
}

// openFaulty opens a journal at path over a new faults file system.
func openFaulty(t *testing.T, path string, opts JournalOptions) (*faults, *Journal) {
	t.Helper()
	fl := &faults{}
	j, err := openJournal(path, opts, fl.fs())
	if err != nil {
		t.Fatal(err)
	}
	return fl, j
}

func (fl *faults) update(f func(*faults)) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	f(fl)
}

func (fl *faults) count() (opens, syncs int) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return fl.opens, fl.syncs
}

type faultyFile struct {
	file
	faults *faults
}

func (f *faultyFile) Write(p []byte) (int, error) {
	f.faults.mu.Lock()
	err, gate := f.faults.writeErr, f.faults.writeGate
	f.faults.mu.Unlock()
	if gate != nil {
		<-gate
	}
	if err == nil {
		return f.file.Write(p)
	}
	n, werr := f.file.Write(p[:len(p)/2])
	if werr != nil {
		return n, werr
	}
	return n, err
}

func (f *faultyFile) Truncate(size int64) error {
	f.faults.mu.Lock()
	err := f.faults.truncErr
	f.faults.mu.Unlock()
	if err != nil {
		return err
	}
	return f.file.Truncate(size)
}

func (f *faultyFile) Sync() error {
	f.faults.mu.Lock()
	f.faults.syncs++
	gate, err := f.faults.syncGate, f.faults.syncErr
	f.faults.mu.Unlock()
	if gate != nil {
		<-gate
	}
	if err != nil {
		return err
	}
	return f.file.Sync()
}

func record(id string) *Record {
	return &Record{
		AuditID:   id,
		Stage:     StageReceived,
		Service:   "vault.googleapis.com",
		Method:    "vault.operations.cancel",
		Operation: "operations/" + id,
		ClientIP:  "192.0.2.1",
		UserAgent: "test",
	}
}

// journalIDs reads a journal, fails the test unless every line is a
// whole JSON object, and returns the records' audit ids in file order.
func journalIDs(t testing.TB, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		t.Fatalf("%s does not end in a newline: %q", path, data[max(len(data)-40, 0):])
	}
	var ids []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line struct {
			AuditID string `json:"audit_id"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("%s: line %.200q is not JSON: %v", path, sc.Text(), err)
		}
		ids = append(ids, line.AuditID)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return ids
}

// waitFor polls cond, which a concurrent goroutine is about to make true.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// holdFirstFsync starts a Write of id whose fsync stays open (and then
// fails with syncErr, if set) until release is called, and returns once
// that fsync has begun; the Write's result arrives on errs.
func holdFirstFsync(t *testing.T, j *Journal, fl *faults, syncErr error, id string, errs chan<- error) (release func()) {
	t.Helper()
	gate := make(chan struct{})
	release = sync.OnceFunc(func() { close(gate) })
	fl.update(func(fl *faults) { fl.syncGate, fl.syncErr = gate, syncErr })
	go func() { errs <- j.Write(record(id)) }()
	waitFor(t, "the first fsync", func() bool { _, syncs := fl.count(); return syncs == 1 })
	return release
}

// pendingRecords is how many records wait for the next append.
func pendingRecords(j *Journal) int {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.pending == nil {
		return 0
	}
	return j.pending.records
}

// within fails the test unless done is closed in time: a hang is a failure.
func within(t *testing.T, what string, done <-chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s hung", what)
	}
}

func TestJournalLineIsTheLogSinkLine(t *testing.T) {
	everyField := &Record{
		AuditID: "a2", Stage: StageCompleted, Decision: Forwarded, Status: 200, UpstreamStatus: 200,
		Service: "vault.googleapis.com", Method: "vault.operations.cancel", Operation: "operations/x/y",
		Principal: "ops@example.com", TokenID: "0123456789abcdef",
		ScopesAccepted: []string{"https://www.googleapis.com/auth/ediscovery"},
		ScopeUsed:      "https://www.googleapis.com/auth/ediscovery",
		ClientIP:       "192.0.2.1", UserAgent: "ua \"quoted\"\n", Duration: 1500 * time.Millisecond,
	}
	tests := []struct {
		name   string
		format string
		rec    *Record
	}{
		{name: "received record", rec: record("a1")},
		{name: "completed record with every field", rec: everyField},
		{name: "received record as a Cloud Audit Logs entry", format: FormatCloudAuditLog, rec: record("a1")},
		{name: "completed record as a Cloud Audit Logs entry", format: FormatCloudAuditLog, rec: everyField},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &journalClock{now: journalEpoch}
			// The log sink as Caddy builds it by default: production JSON
			// encoder, logger named after the handler plus "audit".
			var logged bytes.Buffer
			core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&logged), zapcore.InfoLevel)
			sink := Logger{L: zap.New(core, zap.WithClock(clock)).Named("http.handlers").Named("lro_cancel").Named("audit"), Format: tt.format}
			if err := sink.Write(tt.rec); err != nil {
				t.Fatal(err)
			}

			path := filepath.Join(t.TempDir(), "journal")
			j, err := OpenJournal(path, JournalOptions{Now: clock.Now, Format: tt.format})
			if err != nil {
				t.Fatal(err)
			}
			if err := j.Write(tt.rec); err != nil {
				t.Fatal(err)
			}
			if err := j.Close(); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, logged.Bytes()) {
				t.Errorf("journal line\n%s\nlog sink line\n%s", got, logged.Bytes())
			}
			var line map[string]any
			if err := json.Unmarshal(got, &line); err != nil {
				t.Fatal(err)
			}
			wantTS := float64(journalEpoch.UnixNano()) / 1e9
			if line["ts"] != wantTS || line["logger"] != "http.handlers.lro_cancel.audit" || line["msg"] != "lro_cancel" {
				t.Errorf("ts, logger, msg = %v, %v, %v; want %v, http.handlers.lro_cancel.audit, lro_cancel", line["ts"], line["logger"], line["msg"], wantTS)
			}
		})
	}
}

func TestOpenJournal(t *testing.T) {
	tests := []struct {
		name     string
		existing string // prior content; "-" for no file
		wantIDs  []string
	}{
		{name: "creates the file", existing: "-", wantIDs: []string{"new"}},
		{name: "appends to an existing file", existing: `{"audit_id":"old"}` + "\n", wantIDs: []string{"old", "new"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "journal")
			if tt.existing != "-" {
				if err := os.WriteFile(path, []byte(tt.existing), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			fl, j := openFaulty(t, path, JournalOptions{})
			if j.Path() != path {
				t.Errorf("Path() = %q, want %q", j.Path(), path)
			}
			if err := j.Write(record("new")); err != nil {
				t.Fatal(err)
			}
			if err := j.Close(); err != nil {
				t.Fatal(err)
			}
			if got := journalIDs(t, path); !slices.Equal(got, tt.wantIDs) {
				t.Errorf("journal holds %q, want %q", got, tt.wantIDs)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if tt.existing == "-" && fi.Mode().Perm() != 0o600 {
				t.Errorf("new journal has mode %v, want 0600", fi.Mode().Perm())
			}
			if !slices.Contains(fl.dirSyncs, dir) {
				t.Errorf("directory syncs %q, want %q among them", fl.dirSyncs, dir)
			}
		})
	}
}

func TestOpenJournalRefuses(t *testing.T) {
	tests := []struct {
		name string
		path string
	}{
		{name: "empty path", path: ""},
		{name: "missing directory", path: filepath.Join(t.TempDir(), "missing", "journal")},
		{name: "a directory", path: t.TempDir()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j, err := OpenJournal(tt.path, JournalOptions{})
			if err == nil {
				j.Close()
				t.Fatalf("OpenJournal(%q) succeeded", tt.path)
			}
		})
	}
}

func TestJournalGroupCommitSharesOneFsync(t *testing.T) {
	const writers = 200
	path := filepath.Join(t.TempDir(), "journal")
	var fsyncs atomic.Int64
	fl, j := openFaulty(t, path, JournalOptions{OnSync: func(time.Duration, error) { fsyncs.Add(1) }})
	defer j.Close()

	// The first record's fsync is held open while the other 199 arrive:
	// they must all be appended by the next single write and fsync.
	errs := make(chan error, writers)
	release := holdFirstFsync(t, j, fl, nil, "w0", errs)
	defer release() // before Close, should the test stop early
	for i := 1; i < writers; i++ {
		go func() { errs <- j.Write(record(fmt.Sprintf("w%d", i))) }()
	}
	waitFor(t, "the other writers to queue", func() bool { return pendingRecords(j) == writers-1 })
	release()
	for range writers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}

	if got := fsyncs.Load(); got != 2 {
		t.Errorf("%d writers took %d fsyncs, want 2", writers, got)
	}
	ids := journalIDs(t, path)
	slices.Sort(ids)
	if len(ids) != writers || len(slices.Compact(ids)) != writers {
		t.Errorf("journal holds %d lines (%d distinct), want %d", len(ids), len(slices.Compact(ids)), writers)
	}
}

func TestJournalFailsThenRecovers(t *testing.T) {
	tests := []struct {
		name    string
		fault   func(*faults)
		wantErr []error // what each of the failing Writes wraps, in turn
	}{
		{
			name:    "a partial write (ENOSPC) leaves no torn line",
			fault:   func(fl *faults) { fl.writeErr = syscall.ENOSPC },
			wantErr: []error{syscall.ENOSPC, syscall.ENOSPC},
		},
		{
			name:    "a failed fsync (EIO) takes the batch back",
			fault:   func(fl *faults) { fl.syncErr = syscall.EIO },
			wantErr: []error{syscall.EIO, syscall.EIO},
		},
		{
			name:    "a failed reopen fails the next Write too",
			fault:   func(fl *faults) { fl.writeErr, fl.openErr = syscall.EIO, syscall.EACCES },
			wantErr: []error{syscall.EIO, syscall.EACCES},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "journal")
			var failedSyncs atomic.Int64
			fl, j := openFaulty(t, path, JournalOptions{OnSync: func(_ time.Duration, err error) {
				if err != nil {
					failedSyncs.Add(1)
				}
			}})
			defer j.Close()
			for _, id := range []string{"ok1", "ok2"} {
				if err := j.Write(record(id)); err != nil {
					t.Fatal(err)
				}
			}

			fl.update(tt.fault)
			for i, want := range tt.wantErr {
				err := j.Write(record(fmt.Sprintf("failed%d", i)))
				if !errors.Is(err, want) {
					t.Errorf("failing Write %d returned %v, want an error wrapping %v", i, err, want)
				}
			}
			if got := failedSyncs.Load(); got != int64(len(tt.wantErr)) {
				t.Errorf("OnSync saw %d failures, want %d", got, len(tt.wantErr))
			}

			fl.update(func(fl *faults) { fl.openErr, fl.writeErr, fl.syncErr, fl.truncErr = nil, nil, nil, nil })
			if err := j.Write(record("ok3")); err != nil {
				t.Fatalf("Write after the fault cleared: %v", err)
			}
			if got, want := journalIDs(t, path), []string{"ok1", "ok2", "ok3"}; !slices.Equal(got, want) {
				t.Errorf("journal holds %q, want %q", got, want)
			}
			// The failed batch is taken back at once, not left to the
			// torn-tail repair of the reopen.
			if torn, _ := filepath.Glob(path + ".torn.*"); len(torn) != 0 {
				t.Errorf("torn copies %q, want none", torn)
			}
			if opens, _ := fl.count(); opens < 2 {
				t.Errorf("the path was opened %d times, want a reopen after the failure", opens)
			}
		})
	}
}

func TestJournalLogsOutagesOncePerBurst(t *testing.T) {
	type step struct {
		at   time.Duration // since the outage began
		fail bool
	}
	type entry struct {
		level   zapcore.Level
		refused int64 // records_refused
	}
	tests := []struct {
		name  string
		steps []step
		want  []entry
	}{
		{
			name:  "one ERROR per 10 s, one INFO on recovery",
			steps: []step{{0, true}, {time.Second, true}, {5 * time.Second, true}, {10 * time.Second, true}, {12 * time.Second, true}, {13 * time.Second, false}, {14 * time.Second, false}},
			want:  []entry{{zapcore.ErrorLevel, 1}, {zapcore.ErrorLevel, 3}, {zapcore.InfoLevel, 5}},
		},
		{
			name:  "a second outage is logged afresh",
			steps: []step{{0, true}, {time.Second, false}, {2 * time.Second, true}, {3 * time.Second, false}},
			want:  []entry{{zapcore.ErrorLevel, 1}, {zapcore.InfoLevel, 1}, {zapcore.ErrorLevel, 1}, {zapcore.InfoLevel, 1}},
		},
		{
			name:  "success alone logs nothing",
			steps: []step{{0, false}, {time.Minute, false}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			core, logs := observer.New(zapcore.DebugLevel)
			clock := &journalClock{now: journalEpoch}
			fl := &faults{}
			j, err := openJournal(filepath.Join(t.TempDir(), "journal"), JournalOptions{Logger: zap.New(core), Now: clock.Now}, fl.fs())
			if err != nil {
				t.Fatal(err)
			}
			defer j.Close()
			for i, s := range tt.steps {
				clock.set(journalEpoch.Add(s.at))
				fl.update(func(fl *faults) {
					fl.syncErr = nil
					if s.fail {
						fl.syncErr = syscall.EIO
					}
				})
				if err := j.Write(record(fmt.Sprint(i))); (err != nil) != s.fail {
					t.Fatalf("step %d: Write returned %v", i, err)
				}
			}
			var got []entry
			for _, e := range logs.All() {
				got = append(got, entry{e.Level, e.ContextMap()["records_refused"].(int64)})
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("logged (level, records_refused) %v, want %v", got, tt.want)
			}
		})
	}
}

func TestJournalOnDevFullFails(t *testing.T) {
	const path = "/dev/full"
	if _, err := os.Stat(path); err != nil {
		t.Skipf("no %s: %v", path, err)
	}
	j, err := OpenJournal(path, JournalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 { // the second Write goes through a reopen
		if err := j.Write(record("full")); !errors.Is(err, syscall.ENOSPC) {
			t.Errorf("Write %d to %s returned %v, want an error wrapping ENOSPC", i, path, err)
		}
	}
	if err := j.Close(); err != nil {
		t.Error(err)
	}
}

func TestOpenJournalMovesTornTailAside(t *testing.T) {
	long := strings.Repeat("x", 100<<10) // longer than one backward read
	tests := []struct {
		name      string
		content   string
		wantKept  string
		wantTorn  string // "" when nothing is torn
		wantWarns int
	}{
		{name: "whole lines are kept", content: "{\"audit_id\":\"a\"}\n{\"audit_id\":\"b\"}\n", wantKept: "{\"audit_id\":\"a\"}\n{\"audit_id\":\"b\"}\n"},
		{name: "an empty file is kept", content: ""},
		{name: "a torn last line is moved aside", content: "{\"audit_id\":\"a\"}\n{\"audit_id\":\"b", wantKept: "{\"audit_id\":\"a\"}\n", wantTorn: "{\"audit_id\":\"b", wantWarns: 1},
		{name: "a file of one torn line is emptied", content: "{\"audit_id\":", wantTorn: "{\"audit_id\":", wantWarns: 1},
		{name: "a torn line longer than a read is moved whole", content: "{\"audit_id\":\"a\"}\n" + long, wantKept: "{\"audit_id\":\"a\"}\n", wantTorn: long, wantWarns: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "journal")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			core, logs := observer.New(zapcore.WarnLevel)
			j, err := OpenJournal(path, JournalOptions{Logger: zap.New(core)})
			if err != nil {
				t.Fatal(err)
			}
			if err := j.Write(record("after")); err != nil {
				t.Fatal(err)
			}
			if err := j.Close(); err != nil {
				t.Fatal(err)
			}

			journalIDs(t, path) // every line parses
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(got), tt.wantKept) || strings.Count(string(got), "\n") != strings.Count(tt.wantKept, "\n")+1 {
				t.Errorf("journal is %q, want %q and the new line", got, tt.wantKept)
			}

			torn, err := filepath.Glob(path + ".torn.*")
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tt.wantTorn == "" && len(torn) != 0:
				t.Errorf("torn copies %q, want none", torn)
			case tt.wantTorn != "":
				if len(torn) != 1 {
					t.Fatalf("torn copies %q, want one", torn)
				}
				saved, err := os.ReadFile(torn[0])
				if err != nil {
					t.Fatal(err)
				}
				if string(saved) != tt.wantTorn {
					t.Errorf("torn copy holds %d bytes %.40q, want %d bytes %.40q", len(saved), saved, len(tt.wantTorn), tt.wantTorn)
				}
			}

			warns := logs.FilterLevelExact(zapcore.WarnLevel).All()
			if len(warns) != tt.wantWarns {
				t.Fatalf("%d WARN lines, want %d", len(warns), tt.wantWarns)
			}
			if tt.wantWarns > 0 {
				if got := warns[0].ContextMap()["bytes"]; got != int64(len(tt.wantTorn)) {
					t.Errorf("WARN names %v bytes, want %d", got, len(tt.wantTorn))
				}
			}
		})
	}
}

func TestJournalRotationByRenameAndReopen(t *testing.T) {
	const before, during = 50, 100
	dir := t.TempDir()
	path := filepath.Join(dir, "journal")
	rotated := path + ".1"
	j1, err := OpenJournal(path, JournalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want1 := map[string]bool{}
	for i := range before {
		id := fmt.Sprintf("j1-before-%d", i)
		if err := j1.Write(record(id)); err != nil {
			t.Fatal(err)
		}
		want1[id] = true
	}

	if err := os.Rename(path, rotated); err != nil {
		t.Fatal(err)
	}
	j2, err := OpenJournal(path, JournalOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// The old journal has writes in flight while it is closed: each either
	// lands in the renamed file or fails as closed, never elsewhere.
	var mu sync.Mutex
	want2 := map[string]bool{}
	var wg sync.WaitGroup
	for i := range during {
		wg.Go(func() {
			id := fmt.Sprintf("j1-during-%d", i)
			err := j1.Write(record(id))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				want1[id] = true
			case !errors.Is(err, ErrJournalClosed):
				t.Errorf("in-flight Write on the old journal: %v", err)
			}
		})
		wg.Go(func() {
			id := fmt.Sprintf("j2-%d", i)
			if err := j2.Write(record(id)); err != nil {
				t.Errorf("Write on the new journal: %v", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			want2[id] = true
		})
	}
	if err := j1.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if err := j2.Close(); err != nil {
		t.Fatal(err)
	}

	for _, f := range []struct {
		path string
		want map[string]bool
	}{{rotated, want1}, {path, want2}} {
		got := journalIDs(t, f.path)
		seen := map[string]bool{}
		for _, id := range got {
			if !f.want[id] || seen[id] {
				t.Errorf("%s holds %q, which is not a record acknowledged once by its journal", f.path, id)
			}
			seen[id] = true
		}
		if len(seen) != len(f.want) {
			t.Errorf("%s holds %d of the %d records acknowledged by its journal", f.path, len(seen), len(f.want))
		}
	}
}

func TestJournalsShareOneFile(t *testing.T) {
	// Two journals on one path: the old and new handler during a reload.
	const each = 100
	path := filepath.Join(t.TempDir(), "journal")
	var js [2]*Journal
	for i := range js {
		j, err := OpenJournal(path, JournalOptions{})
		if err != nil {
			t.Fatal(err)
		}
		js[i] = j
	}
	var wg sync.WaitGroup
	for i := range each {
		for k, j := range js {
			wg.Go(func() {
				if err := j.Write(record(fmt.Sprintf("j%d-%d", k, i))); err != nil {
					t.Error(err)
				}
			})
		}
	}
	wg.Wait()
	for _, j := range js {
		if err := j.Close(); err != nil {
			t.Fatal(err)
		}
	}
	ids := journalIDs(t, path)
	slices.Sort(ids)
	if len(ids) != 2*each || len(slices.Compact(ids)) != 2*each {
		t.Errorf("journal holds %d lines (%d distinct), want %d", len(ids), len(slices.Compact(ids)), 2*each)
	}
}

func TestJournalMovesAsideATornLineOfAnotherWriter(t *testing.T) {
	// Before its first append a writer reads the file's tail; after one,
	// it knows where its append ended, and must still notice that the
	// file has grown by another writer's torn line since.
	for _, wroteBefore := range []bool{false, true} {
		t.Run(fmt.Sprintf("after an append of its own %v", wroteBefore), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "journal")
			fl, failing := openFaulty(t, path, JournalOptions{})
			defer failing.Close()
			other, err := OpenJournal(path, JournalOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			var want []string
			if wroteBefore {
				if err := other.Write(record("before")); err != nil {
					t.Fatal(err)
				}
				want = append(want, "before")
			}

			// Half a batch written, and the truncation that should take it
			// back fails too: the file is left with a torn line.
			fl.update(func(fl *faults) { fl.writeErr, fl.truncErr = syscall.ENOSPC, syscall.EIO })
			if err := failing.Write(record("torn")); err == nil {
				t.Fatal("Write succeeded through a failing file")
			}
			if err := other.Write(record("whole")); err != nil {
				t.Fatal(err)
			}
			want = append(want, "whole")
			if got := journalIDs(t, path); !slices.Equal(got, want) {
				t.Errorf("journal holds %q, want %q", got, want)
			}
			if torn, _ := filepath.Glob(path + ".torn.*"); len(torn) != 1 {
				t.Errorf("torn copies %q, want one", torn)
			}
		})
	}
}

func TestJournalCloseWithPendingWrites(t *testing.T) {
	const queued = 20
	tests := []struct {
		name      string
		syncErr   error
		wantLines int
	}{
		{name: "pending writes complete durably", wantLines: queued + 1},
		{name: "pending writes fail", syncErr: syscall.EIO},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "journal")
			fl, j := openFaulty(t, path, JournalOptions{})
			errs := make(chan error, queued+1)
			release := holdFirstFsync(t, j, fl, tt.syncErr, "first", errs)
			defer release()
			for i := range queued {
				go func() { errs <- j.Write(record(fmt.Sprintf("queued%d", i))) }()
			}
			waitFor(t, "the writers to queue", func() bool { return pendingRecords(j) == queued })

			closed := make(chan error, 1)
			go func() { closed <- j.Close() }()
			release()

			done := make(chan struct{})
			var failed int
			go func() {
				defer close(done)
				for range queued + 1 {
					if err := <-errs; err != nil {
						failed++
						if !errors.Is(err, tt.syncErr) {
							t.Errorf("pending Write returned %v, want an error wrapping %v", err, tt.syncErr)
						}
					}
				}
			}()
			within(t, "pending writes", done)
			select {
			case err := <-closed:
				if err != nil {
					t.Errorf("Close: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Close hung")
			}
			if got := len(journalIDs(t, path)); got != tt.wantLines || failed != queued+1-tt.wantLines {
				t.Errorf("journal holds %d lines and %d writes failed, want %d lines and the rest failed", got, failed, tt.wantLines)
			}
		})
	}
}

// Append does not wait for the disk: it returns while an fsync is held
// open, and its record is on disk once a later Write or Close returns.
func TestJournalAppendDoesNotWaitButLands(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal")
	fl, j := openFaulty(t, path, JournalOptions{})
	first := make(chan error, 1)
	release := holdFirstFsync(t, j, fl, nil, "held", first)
	defer release()

	appended := make(chan error, 1)
	go func() { appended <- j.Append(record("appended")) }()
	select {
	case err := <-appended:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Append waited for the held fsync")
	}
	release()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := j.Append(record("before-close")); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	ids := journalIDs(t, path)
	slices.Sort(ids)
	if want := []string{"appended", "before-close", "held"}; !slices.Equal(ids, want) {
		t.Errorf("journal holds %q, want %q", ids, want)
	}
	if err := j.Append(record("late")); !errors.Is(err, ErrJournalClosed) {
		t.Errorf("Append after Close returned %v, want ErrJournalClosed", err)
	}
}

func TestJournalWriteAfterCloseFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal")
	j, err := OpenJournal(path, JournalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if err := j.Write(record("late")); !errors.Is(err, ErrJournalClosed) {
		t.Errorf("Write after Close returned %v, want ErrJournalClosed", err)
	}
	if err := j.Close(); !errors.Is(err, ErrJournalClosed) {
		t.Errorf("second Close returned %v, want ErrJournalClosed", err)
	}
	if ids := journalIDs(t, path); len(ids) != 0 {
		t.Errorf("journal holds %q, want nothing", ids)
	}
}

// countFDs is how many descriptors the process has open, or -1 where
// /proc/self/fd does not say.
func countFDs() int {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(fds)
}

// The timeout tests run in a synctest bubble: its clock moves only when
// every goroutine is blocked, so "at the timeout" and "at once" are exact
// instants of a fake clock rather than measurements.
func TestJournalFailsAHungAppendAtTheTimeout(t *testing.T) {
	tests := []struct {
		name    string
		timeout time.Duration // JournalOptions.Timeout
		want    time.Duration // when the hung Write fails
		// hang makes the next append block until gate is closed; it may
		// first make the journal drop its file, so that the reopen hangs.
		hang func(t *testing.T, j *Journal, fl *faults, gate chan struct{})
		// failedBefore is how many records hang refused, beginning the
		// outage (and logging its ERROR) before the append hangs.
		failedBefore int
		lateErr      error // what the hung call finally reports, wrapped
	}{
		{
			name: "a hung fsync that succeeds late is taken back", timeout: time.Second, want: time.Second,
			hang: func(_ *testing.T, _ *Journal, fl *faults, gate chan struct{}) {
				fl.update(func(fl *faults) { fl.syncGate = gate })
			},
			lateErr: ErrJournalTimeout,
		},
		{
			name: "a hung fsync that fails late", timeout: time.Second, want: time.Second,
			hang: func(_ *testing.T, _ *Journal, fl *faults, gate chan struct{}) {
				fl.update(func(fl *faults) { fl.syncGate, fl.syncErr = gate, syscall.EIO })
			},
			lateErr: syscall.EIO,
		},
		{
			name: "a hung write", timeout: time.Second, want: time.Second,
			hang: func(_ *testing.T, _ *Journal, fl *faults, gate chan struct{}) {
				fl.update(func(fl *faults) { fl.writeGate = gate })
			},
			lateErr: ErrJournalTimeout,
		},
		{
			name: "a hung reopen after a failure", timeout: time.Second, want: time.Second,
			hang: func(t *testing.T, j *Journal, fl *faults, gate chan struct{}) {
				fl.update(func(fl *faults) { fl.writeErr = syscall.EIO })
				if err := j.Write(record("dropped")); !errors.Is(err, syscall.EIO) {
					t.Fatalf("Write through a failing file returned %v", err)
				}
				fl.update(func(fl *faults) { fl.writeErr, fl.openGate = nil, gate })
			},
			failedBefore: 1,
			lateErr:      ErrJournalTimeout,
		},
		{
			name: "no timeout set means 5s", want: 5 * time.Second,
			hang: func(_ *testing.T, _ *Journal, fl *faults, gate chan struct{}) {
				fl.update(func(fl *faults) { fl.syncGate = gate })
			},
			lateErr: ErrJournalTimeout,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "journal")
				core, logs := observer.New(zapcore.InfoLevel)
				attempts := make(chan error, 16) // OnSync's outcomes
				fl, j := openFaulty(t, path, JournalOptions{
					Logger:  zap.New(core),
					Timeout: tt.timeout,
					OnSync:  func(_ time.Duration, err error) { attempts <- err },
				})
				defer j.Close() // should the test stop early; after release
				if err := j.Write(record("before")); err != nil {
					t.Fatal(err)
				}
				gate := make(chan struct{})
				release := sync.OnceFunc(func() { close(gate) })
				defer release()
				tt.hang(t, j, fl, gate)
				for len(attempts) > 0 {
					<-attempts
				}
				logs.TakeAll()

				// One Write hangs in the call; a second queues behind it.
				start := time.Now()
				hung, queued := make(chan error, 1), make(chan error, 1)
				go func() { hung <- j.Write(record("hung")) }()
				synctest.Wait()
				go func() { queued <- j.Write(record("queued")) }()
				synctest.Wait()
				for _, w := range []struct {
					name string
					errs chan error
				}{{"the hung Write", hung}, {"the Write queued behind it", queued}} {
					if err := <-w.errs; !errors.Is(err, ErrJournalTimeout) {
						t.Errorf("%s returned %v, want an error wrapping ErrJournalTimeout", w.name, err)
					}
					if got := time.Since(start); got != tt.want {
						t.Errorf("%s returned after %v, want %v", w.name, got, tt.want)
					}
				}

				// While the call stays hung, records are refused at once,
				// without a goroutine, a descriptor or a call to the disk.
				// The test's own goroutine writes them, so that every
				// goroutine counted after is one the journal left.
				const refused = 100
				goroutines, fds := runtime.NumGoroutine(), countFDs()
				opens, syncs := fl.count()
				start = time.Now()
				for i := range refused {
					if err := j.Write(record(fmt.Sprintf("refused%d", i))); !errors.Is(err, ErrJournalTimeout) {
						t.Fatalf("Write while the append is hung returned %v, want an error wrapping ErrJournalTimeout", err)
					}
				}
				if err := j.Append(record("appended")); !errors.Is(err, ErrJournalTimeout) {
					t.Errorf("Append while the append is hung returned %v, want an error wrapping ErrJournalTimeout", err)
				}
				if waited := time.Since(start); waited != 0 {
					t.Errorf("Writes while the append is hung waited %v, want none", waited)
				}
				if got := runtime.NumGoroutine(); got > goroutines {
					t.Errorf("%d goroutines after %d refused Writes, %d before", got, refused, goroutines)
				}
				if got := countFDs(); got != fds {
					t.Errorf("%d descriptors open after %d refused Writes, %d before", got, refused, fds)
				}
				if o, s := fl.count(); o != opens || s != syncs {
					t.Errorf("refused Writes opened the file %d times and synced it %d times, want neither", o-opens, s-syncs)
				}

				// The disk comes back: the hung call returns, the journal
				// takes its lines back and the next Write succeeds.
				fl.update(func(fl *faults) { fl.syncErr = nil })
				release()
				if err := <-attempts; !errors.Is(err, tt.lateErr) {
					t.Errorf("the hung append finally reported %v, want an error wrapping %v", err, tt.lateErr)
				}
				if err := j.Write(record("after")); err != nil {
					t.Fatalf("Write after the disk came back: %v", err)
				}
				if err := j.Close(); err != nil {
					t.Fatal(err)
				}
				if got, want := journalIDs(t, path), []string{"before", "after"}; !slices.Equal(got, want) {
					t.Errorf("journal holds %q, want %q", got, want)
				}
				if torn, _ := filepath.Glob(path + ".torn.*"); len(torn) != 0 {
					t.Errorf("torn copies %q, want none", torn)
				}
				type entry struct {
					level   zapcore.Level
					refused int64
				}
				var got []entry
				for _, e := range logs.All() {
					got = append(got, entry{e.Level, e.ContextMap()["records_refused"].(int64)})
				}
				// One ERROR as the outage begins (at the timeout, for the
				// hung and the queued record, unless hang began it), one
				// INFO with every refused record when the journal recovers.
				want := []entry{{zapcore.ErrorLevel, 2}, {zapcore.InfoLevel, 2 + refused + 1}}
				if tt.failedBefore > 0 {
					want = []entry{{zapcore.InfoLevel, int64(tt.failedBefore) + 2 + refused + 1}}
				}
				if !slices.Equal(got, want) {
					t.Errorf("logged (level, records_refused) %v, want %v", got, want)
				}
			})
		})
	}
}

func TestJournalCloseDoesNotWaitForAHungAppend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "journal")
		fl, j := openFaulty(t, path, JournalOptions{Timeout: time.Second})
		errs := make(chan error, 1)
		start := time.Now()
		release := holdFirstFsync(t, j, fl, nil, "hung", errs)
		defer release()
		if err := j.Close(); !errors.Is(err, ErrJournalTimeout) {
			t.Errorf("Close during a hung append returned %v, want an error wrapping ErrJournalTimeout", err)
		}
		if got := time.Since(start); got != time.Second {
			t.Errorf("Close returned after %v, want the 1s timeout", got)
		}
		if err := <-errs; !errors.Is(err, ErrJournalTimeout) {
			t.Errorf("the hung Write returned %v, want an error wrapping ErrJournalTimeout", err)
		}
		// Once the call returns, the flusher takes the line back, closes
		// the file and exits: synctest.Test fails if a goroutine is left.
		release()
		synctest.Wait()
		if ids := journalIDs(t, path); len(ids) != 0 {
			t.Errorf("journal holds %q, want nothing", ids)
		}
	})
}

// encodeLine is the journal's line for r at journalEpoch.
func encodeLine(t *testing.T, r *Record) string { return encodeLineAs(t, FormatJSON, r) }

// encodeLineAs is the journal's line for r at journalEpoch in a format.
func encodeLineAs(t *testing.T, format string, r *Record) string {
	t.Helper()
	j := &Journal{path: "test", format: format, enc: zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), now: func() time.Time { return journalEpoch }}
	line, err := j.encode(r)
	if err != nil {
		t.Fatal(err)
	}
	defer line.Free()
	return line.String()
}

// received is a received record with every field a record can carry
// before its request is decided, and some it gains after.
func received(id string) *Record {
	r := record(id)
	r.Principal, r.TokenID, r.Protocol = "ops@example.com", "0123456789abcdef", "grpc"
	r.ScopesAccepted = []string{"https://www.googleapis.com/auth/ediscovery"}
	r.ScopeUsed = "https://www.googleapis.com/auth/ediscovery"
	return r
}

func completed(id string) *Record {
	r := received(id)
	r.Stage, r.Decision, r.Status, r.UpstreamStatus, r.Duration = StageCompleted, Forwarded, 200, 200, time.Second
	return r
}

// interruptedLine is the line recovery appends for received(id).
func interruptedLine(t *testing.T, id string) string { return interruptedLineAs(t, FormatJSON, id) }

// interruptedLineAs is the line recovery appends for received(id) in a
// journal of the given format.
func interruptedLineAs(t *testing.T, format, id string) string {
	r := received(id)
	return encodeLineAs(t, format, &Record{
		AuditID: id, Stage: StageCompleted, Decision: Interrupted,
		Service: r.Service, Method: r.Method, Operation: r.Operation, Principal: r.Principal, TokenID: r.TokenID,
		ScopesAccepted: r.ScopesAccepted, ScopeUsed: r.ScopeUsed, ClientIP: r.ClientIP, UserAgent: r.UserAgent, Protocol: r.Protocol,
	})
}

// openAndClose opens the journal at path, as a restarted gateway does,
// and returns the WARN lines it logged about interrupted requests.
func openAndClose(t *testing.T, path string) []observer.LoggedEntry {
	t.Helper()
	core, logs := observer.New(zapcore.WarnLevel)
	j, err := OpenJournal(path, JournalOptions{Logger: zap.New(core), Now: func() time.Time { return journalEpoch }})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	return logs.FilterMessageSnippet("interrupted").All()
}

// checkCompleted fails the test unless the file at path is before
// followed by the interrupted line of each of ids, and one WARN says so.
func checkCompleted(t *testing.T, path, before string, ids []string, warns []observer.LoggedEntry) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := before
	for _, id := range ids {
		want += interruptedLine(t, id)
	}
	if string(got) != want {
		added, _ := strings.CutPrefix(string(got), before)
		t.Errorf("after the open the journal ends with\n%.2000s\nwant the interrupted lines of %q:\n%.2000s", added, ids, want[len(before):])
	}
	switch {
	case len(ids) == 0 && len(warns) != 0:
		t.Errorf("logged %v, want nothing", warns[0].ContextMap())
	case len(ids) > 0 && len(warns) != 1:
		t.Errorf("%d WARN lines about interrupted requests, want one", len(warns))
	case len(ids) > 0 && warns[0].ContextMap()["interrupted"] != int64(len(ids)):
		t.Errorf("WARN says %v interrupted, want %d", warns[0].ContextMap()["interrupted"], len(ids))
	}
}

func TestOpenJournalCompletesInterruptedRequests(t *testing.T) {
	tests := []struct {
		name    string
		lines   []*Record // the journal's whole lines, in order
		extra   string    // raw text after them: lines that are not records, a torn tail
		wantIDs []string  // the audit ids completed as interrupted, in order
	}{
		{name: "an empty journal has nothing to complete"},
		{name: "a received record alone is completed as interrupted", lines: []*Record{received("a")}, wantIDs: []string{"a"}},
		{name: "a received and completed pair is left alone", lines: []*Record{received("a"), completed("a")}},
		{
			name:    "only the unpaired of several are completed, in file order",
			lines:   []*Record{received("a"), received("b"), completed("a"), received("c"), received("d"), completed("d"), received("e")},
			wantIDs: []string{"b", "c", "e"},
		},
		{name: "a completed record before its received one does not pair it", lines: []*Record{completed("a"), received("a")}, wantIDs: []string{"a"}},
		{name: "a received record written twice is completed once", lines: []*Record{received("a"), received("a")}, wantIDs: []string{"a"}},
		{
			name:    "lines that are not records are skipped",
			lines:   []*Record{received("a")},
			extra:   "not json\n{\"stage\":\"received\"}\n{\"audit_id\":\"x\"}\n[]\n",
			wantIDs: []string{"a"},
		},
		{
			name:    "a torn tail is moved aside before the records are read",
			lines:   []*Record{received("a"), completed("a"), received("b")},
			extra:   `{"audit_id":"c","stage":"received","serv`,
			wantIDs: []string{"b"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "journal")
			var before strings.Builder
			for _, r := range tt.lines {
				before.WriteString(encodeLine(t, r))
			}
			whole, torn, _ := strings.Cut(tt.extra, `{"audit_id":"c"`)
			if torn != "" {
				torn = `{"audit_id":"c"` + torn
			}
			before.WriteString(whole)
			if err := os.WriteFile(path, []byte(before.String()+torn), 0o600); err != nil {
				t.Fatal(err)
			}

			checkCompleted(t, path, before.String(), tt.wantIDs, openAndClose(t, path))
			if torns, _ := filepath.Glob(path + ".torn.*"); len(torns) != min(len(torn), 1) {
				t.Errorf("torn copies %q, want %d", torns, min(len(torn), 1))
			}
			for _, line := range strings.SplitAfter(strings.TrimPrefix(mustRead(t, path), before.String()), "\n") {
				if strings.Contains(line, `"status"`) {
					t.Errorf("an interrupted line has a status: %s", line)
				}
			}

			// Opening again finds every pair complete.
			after := mustRead(t, path)
			checkCompleted(t, path, after, nil, openAndClose(t, path))
		})
	}
}

// A journal's lines are in its format, and one file can hold both (a
// reload that changed the format): recovery reads a received record in
// either and completes it in the journal's own.
func TestOpenJournalCompletesInterruptedRequestsInEitherFormat(t *testing.T) {
	tests := []struct {
		name           string
		lines, journal string // the received line's format, the reopened journal's
	}{
		{name: "a Cloud Audit Logs journal", lines: FormatCloudAuditLog, journal: FormatCloudAuditLog},
		{name: "a json line completed by a Cloud Audit Logs journal", lines: FormatJSON, journal: FormatCloudAuditLog},
		{name: "a Cloud Audit Logs line completed by a json journal", lines: FormatCloudAuditLog, journal: FormatJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "journal")
			before := encodeLineAs(t, tt.lines, received("a")) + encodeLineAs(t, tt.lines, received("b")) + encodeLineAs(t, tt.lines, completed("b"))
			if err := os.WriteFile(path, []byte(before), 0o600); err != nil {
				t.Fatal(err)
			}
			j, err := OpenJournal(path, JournalOptions{Format: tt.journal, Now: func() time.Time { return journalEpoch }})
			if err != nil {
				t.Fatal(err)
			}
			if err := j.Close(); err != nil {
				t.Fatal(err)
			}
			if got, want := mustRead(t, path), before+interruptedLineAs(t, tt.journal, "a"); got != want {
				t.Errorf("after the open the journal ends with\n%s\nwant\n%s", strings.TrimPrefix(got, before), strings.TrimPrefix(want, before))
			}
		})
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// padLine is a JSON line of n bytes that is not a record.
func padLine(n int) string {
	return `{"pad":"` + strings.Repeat("x", n-len(`{"pad":""}`+"\n")) + "\"}\n"
}

func TestOpenJournalReadsOnlyTheLastEightMiB(t *testing.T) {
	tests := []struct {
		name string
		tail int64 // bytes from the start of the received line "x" to the end
		want []string
	}{
		{name: "a received line that starts the window is completed", tail: recoveryWindow, want: []string{"x"}},
		{name: "a received line the window's start cuts is not", tail: recoveryWindow + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "journal")
			x := encodeLine(t, received("x"))
			// "before" starts well before the window, and is never read.
			content := encodeLine(t, received("before")) + padLine(4096) + x + padLine(int(tt.tail)-len(x))
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			warns := openAndClose(t, path)
			checkCompleted(t, path, content, tt.want, warns)
			if len(warns) == 1 && warns[0].ContextMap()["bytes_read"] != int64(recoveryWindow) {
				t.Errorf("WARN says %v bytes read, want %d", warns[0].ContextMap()["bytes_read"], recoveryWindow)
			}
		})
	}
}

// A reload opens the journal while the old handler still has requests in
// flight: their received records are not interrupted, and get their own
// completed record.
func TestOpenJournalLeavesTheRequestsOfAnOpenWriterAlone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal")
	old, err := OpenJournal(path, JournalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Write(received("in-flight")); err != nil {
		t.Fatal(err)
	}
	before := mustRead(t, path)
	core, logs := observer.New(zapcore.WarnLevel)
	reloaded, err := OpenJournal(path, JournalOptions{Logger: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, path); got != before {
		t.Errorf("opening beside an open journal appended %q", strings.TrimPrefix(got, before))
	}
	if err := old.Append(completed("in-flight")); err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	if err := reloaded.Close(); err != nil {
		t.Fatal(err)
	}
	if n := logs.Len(); n != 0 {
		t.Errorf("the reloaded journal logged %d WARN lines, want none", n)
	}
	if got := journalIDs(t, path); !slices.Equal(got, []string{"in-flight", "in-flight"}) {
		t.Errorf("journal holds %q, want the received and the completed line of in-flight", got)
	}
	// With every writer closed, the next open finds the pair complete.
	after := mustRead(t, path)
	checkCompleted(t, path, after, nil, openAndClose(t, path))
}

func TestOpenJournalFailsWhenItCannotCompleteInterruptedRequests(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal")
	content := encodeLine(t, received("a"))
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	fl := &faults{writeErr: syscall.ENOSPC}
	if j, err := openJournal(path, JournalOptions{}, fl.fs()); !errors.Is(err, syscall.ENOSPC) {
		if err == nil {
			j.Close()
		}
		t.Fatalf("opening a journal that cannot be written returned %v, want an error wrapping ENOSPC", err)
	}
	if got := mustRead(t, path); got != content {
		t.Errorf("the failed open left %q after the journal's lines", strings.TrimPrefix(got, content))
	}
	// Nothing is held: the next open completes the record.
	checkCompleted(t, path, content, []string{"a"}, openAndClose(t, path))
}

func benchRecord() *Record {
	return &Record{
		AuditID: "5f1c2a9e-3b7d-4e8a-9c61-0d2f4b6a8e13", Stage: StageCompleted, Decision: Forwarded,
		Status: 200, UpstreamStatus: 200, Service: "vault.googleapis.com", Method: "vault.operations.cancel",
		Operation: "operations/exports/1234567890", Principal: "ops@example.com", TokenID: "0123456789abcdef",
		ScopesAccepted: []string{"https://www.googleapis.com/auth/ediscovery"},
		ScopeUsed:      "https://www.googleapis.com/auth/ediscovery",
		ClientIP:       "192.0.2.1", UserAgent: "google-api-go-client/0.5", Duration: 42 * time.Millisecond,
	}
}

func openBenchJournal(b *testing.B, fsyncs *atomic.Int64) *Journal {
	j, err := OpenJournal(filepath.Join(b.TempDir(), "journal"), JournalOptions{
		OnSync: func(time.Duration, error) { fsyncs.Add(1) },
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { j.Close() })
	return j
}

func reportJournal(b *testing.B, fsyncs *atomic.Int64) {
	b.ReportMetric(float64(fsyncs.Load())/float64(b.N), "fsyncs/op")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

func BenchmarkJournalWrite(b *testing.B) {
	var fsyncs atomic.Int64
	j := openBenchJournal(b, &fsyncs)
	r := benchRecord()
	b.ReportAllocs()
	for b.Loop() {
		if err := j.Write(r); err != nil {
			b.Fatal(err)
		}
	}
	reportJournal(b, &fsyncs)
}

func BenchmarkJournalWriteParallel(b *testing.B) {
	// Writers per GOMAXPROCS: a gateway holds many cancels in flight.
	for _, p := range []int{1, 16, 128} {
		b.Run(fmt.Sprintf("writers=%d", p*runtime.GOMAXPROCS(0)), func(b *testing.B) {
			var fsyncs atomic.Int64
			j := openBenchJournal(b, &fsyncs)
			r := benchRecord()
			b.ReportAllocs()
			b.SetParallelism(p)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := j.Write(r); err != nil {
						b.Error(err)
						return
					}
				}
			})
			reportJournal(b, &fsyncs)
		})
	}
}
