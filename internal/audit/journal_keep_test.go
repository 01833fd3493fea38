package audit

import (
	"bufio"
	"bytes"
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

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// completedRecord is the completed record of id.
func completedRecord(id string) *Record {
	r := record(id)
	r.Stage, r.Decision, r.Status = StageCompleted, Forwarded, 200
	return r
}

// journalStages reads a journal whose lines must all be whole JSON
// objects and counts the lines of each audit id and stage.
func journalStages(t testing.TB, path string) (order []string, n map[string]int) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		t.Fatalf("%s does not end in a newline", path)
	}
	n = map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l struct {
			AuditID string `json:"audit_id"`
			Stage   Stage  `json:"stage"`
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("%s: line %.200q is not JSON: %v", path, sc.Text(), err)
		}
		key := l.AuditID + "/" + string(l.Stage)
		order = append(order, key)
		n[key]++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return order, n
}

func keptLines(j *Journal) int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.kept)
}

func TestJournalKeepsCompletedLinesOfAFailedBatch(t *testing.T) {
	tests := []struct {
		name  string
		fault func(*faults)
	}{
		{"a failed fsync (EIO)", func(fl *faults) { fl.syncErr = syscall.EIO }},
		{"a partial write (ENOSPC)", func(fl *faults) { fl.writeErr = syscall.ENOSPC }},
		{"a failed write, then a failed reopen", func(fl *faults) { fl.writeErr, fl.openErr = syscall.EIO, syscall.EACCES }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "journal")
			core, logs := observer.New(zapcore.InfoLevel)
			fl, j := openFaulty(t, path, JournalOptions{Logger: zap.New(core)})
			defer j.Close()
			if err := j.Write(record("before")); err != nil {
				t.Fatal(err)
			}
			if err := j.Append(completedRecord("before")); err != nil {
				t.Fatal(err)
			}
			if err := j.Write(record("flush")); err != nil { // lands the Append
				t.Fatal(err)
			}

			fl.update(tt.fault)
			// Requests received before the outage complete during it, in
			// several failing batches, alongside refused ones.
			for i := range 3 {
				id := fmt.Sprintf("during%d", i)
				if err := j.Append(completedRecord(id)); err != nil {
					t.Fatalf("Append: %v", err)
				}
				if err := j.Write(record("refused" + id)); err == nil {
					t.Fatalf("Write during the fault succeeded")
				}
				// The refused request's completed record says so.
				if err := j.Append(completedRecord("refused" + id)); err != nil {
					t.Fatalf("Append: %v", err)
				}
			}
			if err := j.Write(record("refused-last")); err == nil {
				t.Fatalf("Write during the fault succeeded")
			}
			if got := keptLines(j); got != 6 {
				t.Errorf("%d completed lines kept during the outage, want 6", got)
			}

			fl.update(func(fl *faults) { fl.openErr, fl.writeErr, fl.syncErr, fl.truncErr = nil, nil, nil, nil })
			if err := j.Write(record("after")); err != nil {
				t.Fatalf("Write after the fault cleared: %v", err)
			}
			if got := keptLines(j); got != 0 {
				t.Errorf("%d completed lines still kept after recovery, want 0", got)
			}
			order, n := journalStages(t, path)
			for i := range 3 {
				for _, id := range []string{fmt.Sprintf("during%d", i), fmt.Sprintf("refusedduring%d", i)} {
					if got := n[id+"/completed"]; got != 1 {
						t.Errorf("%s has %d completed lines, want exactly 1 (journal %q)", id, got, order)
					}
					if got := n[id+"/received"]; got != 0 && strings.HasPrefix(id, "refused") {
						t.Errorf("refused %s has %d received lines, want 0", id, got)
					}
				}
			}
			if n["before/completed"] != 1 || n["before/received"] != 1 || n["refused-last/received"] != 0 {
				t.Errorf("journal %q", order)
			}
			// The kept lines come ahead of the first batch after recovery.
			if len(order) == 0 || order[len(order)-1] != "after/received" {
				t.Errorf("journal %q does not end with the line written after recovery", order)
			}
			if len(order) != 3+6+1 {
				t.Errorf("journal has %d lines, want 10: %q", len(order), order)
			}
			rec := logs.FilterMessage("audit journal recovered").All()
			if len(rec) != 1 {
				t.Fatalf("%d recovery logs, want 1", len(rec))
			}
			if got := rec[0].ContextMap()["completed_records_kept"]; got != int64(6) {
				t.Errorf("recovery log says %v completed records kept, want 6", got)
			}
		})
	}
}

func TestJournalDoesNotKeepLinesItCouldNotTakeBack(t *testing.T) {
	// The fsync fails and so does the truncation: the lines stay in the
	// file, so keeping them would write them twice.
	path := filepath.Join(t.TempDir(), "journal")
	core, logs := observer.New(zapcore.InfoLevel)
	fl, j := openFaulty(t, path, JournalOptions{Logger: zap.New(core)})
	defer j.Close()
	fl.update(func(fl *faults) { fl.syncErr, fl.truncErr = syscall.EIO, syscall.EIO })
	if err := j.Append(completedRecord("stays")); err != nil {
		t.Fatal(err)
	}
	if err := j.Write(record("refused")); err == nil {
		t.Fatal("Write during the fault succeeded")
	}
	if got := keptLines(j); got != 0 {
		t.Errorf("%d lines kept, want 0", got)
	}
	fl.update(func(fl *faults) { fl.syncErr, fl.truncErr = nil, nil })
	if err := j.Write(record("after")); err != nil {
		t.Fatal(err)
	}
	if _, n := journalStages(t, path); n["stays/completed"] != 1 {
		t.Errorf("stays has %d completed lines, want exactly 1", n["stays/completed"])
	}
	if got := logs.FilterMessage("dropped completed audit records kept for the audit journal").Len(); got != 1 {
		t.Errorf("%d drop logs, want 1", got)
	}
}

func TestJournalKeepsCompletedLinesOfATimedOutAppend(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal")
	fl, j := openFaulty(t, path, JournalOptions{Timeout: 50 * time.Millisecond})
	defer j.Close()
	// The hung batch holds a completed line: the gate holds the fsync of
	// the Write that the Append's line shares or follows.
	gate := make(chan struct{})
	release := sync.OnceFunc(func() { close(gate) })
	defer release()
	fl.update(func(fl *faults) { fl.syncGate = gate })
	if err := j.Append(completedRecord("hung")); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 1)
	go func() { errs <- j.Write(record("hungw")) }()
	waitFor(t, "the first fsync", func() bool { _, syncs := fl.count(); return syncs == 1 })
	if err := <-errs; !errors.Is(err, ErrJournalTimeout) {
		t.Fatalf("hung Write returned %v", err)
	}
	// Refused at once while stuck, but kept.
	if err := j.Append(completedRecord("whilestuck")); !errors.Is(err, ErrJournalTimeout) {
		t.Fatalf("Append while stuck returned %v", err)
	}
	if err := j.Write(record("refused")); !errors.Is(err, ErrJournalTimeout) {
		t.Fatalf("Write while stuck returned %v", err)
	}
	fl.update(func(fl *faults) { fl.syncGate = nil })
	release() // the fsync returns: the late lines are taken back and kept
	// Once stuck clears, the flusher keeps the lines before it takes the
	// next batch (a kick left queued may write them alone first).
	waitFor(t, "the hung append to return", func() bool {
		j.mu.Lock()
		defer j.mu.Unlock()
		return !j.stuck
	})
	if err := j.Write(record("after")); err != nil {
		t.Fatal(err)
	}
	order, n := journalStages(t, path)
	for _, id := range []string{"hung", "whilestuck"} {
		if n[id+"/completed"] != 1 {
			t.Errorf("%s has %d completed lines, want 1: %q", id, n[id+"/completed"], order)
		}
	}
	if n["hungw/received"] != 0 || n["refused/received"] != 0 {
		t.Errorf("refused received lines in the journal: %q", order)
	}
}

func TestJournalKeepsABoundedNumberOfCompletedLines(t *testing.T) {
	tests := []struct {
		name      string
		userAgent string
		want      func(line int) int // how many are kept of lines of that size
	}{
		{"lines", "test", func(int) int { return maxKeptLines }},
		{"bytes", strings.Repeat("u", 2000), func(line int) int { return maxKeptBytes / line }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "journal")
			core, logs := observer.New(zapcore.InfoLevel)
			fl, j := openFaulty(t, path, JournalOptions{Logger: zap.New(core)})
			defer j.Close()
			fl.update(func(fl *faults) { fl.syncErr = syscall.EIO })
			const total = maxKeptLines + 500
			lineLen := 0
			for i := range total {
				r := completedRecord(fmt.Sprintf("c%05d", i))
				r.UserAgent = tt.userAgent
				if i == 0 {
					lineLen = len(encodeLine(t, r))
				}
				if err := j.Append(r); err != nil {
					t.Fatal(err)
				}
			}
			if err := j.Write(record("refused")); err == nil {
				t.Fatal("Write during the fault succeeded")
			}
			want := tt.want(lineLen)
			if got := keptLines(j); got != want {
				t.Errorf("%d lines kept, want %d", got, want)
			}
			j.mu.Lock()
			if j.keptBytes > maxKeptBytes {
				t.Errorf("%d bytes kept, over %d", j.keptBytes, maxKeptBytes)
			}
			j.mu.Unlock()
			if logs.FilterMessage("dropped completed audit records kept for the audit journal").Len() == 0 {
				t.Error("the drops were not logged")
			}

			fl.update(func(fl *faults) { fl.syncErr = nil })
			if err := j.Write(record("after")); err != nil {
				t.Fatal(err)
			}
			_, n := journalStages(t, path)
			for i := range total {
				id := fmt.Sprintf("c%05d", i)
				// The oldest are the ones dropped.
				wantN := 0
				if i >= total-want {
					wantN = 1
				}
				if got := n[id+"/completed"]; got != wantN {
					t.Fatalf("%s has %d completed lines, want %d", id, got, wantN)
				}
			}
			rec := logs.FilterMessage("audit journal recovered").All()
			if len(rec) != 1 {
				t.Fatalf("%d recovery logs, want 1", len(rec))
			}
			if got := rec[0].ContextMap()["completed_records_dropped"]; got != int64(total-want) {
				t.Errorf("recovery log says %v dropped, want %d", got, total-want)
			}
		})
	}
}

func TestJournalCloseWritesKeptLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal")
	fl, j := openFaulty(t, path, JournalOptions{})
	fl.update(func(fl *faults) { fl.syncErr = syscall.EIO })
	if err := j.Append(completedRecord("kept")); err != nil {
		t.Fatal(err)
	}
	if err := j.Write(record("refused")); err == nil {
		t.Fatal("Write during the fault succeeded")
	}
	fl.update(func(fl *faults) { fl.syncErr = nil })
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if _, n := journalStages(t, path); n["kept/completed"] != 1 || len(n) != 1 {
		t.Errorf("journal after Close holds %v, want kept/completed once", n)
	}
}

func TestJournalKeepsExactlyOneCompletedLineUnderFlappingFaults(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal")
	fl, j := openFaulty(t, path, JournalOptions{Timeout: 20 * time.Millisecond})
	defer j.Close()
	stop := make(chan struct{})
	flapped := make(chan struct{})
	go func() {
		defer close(flapped)
		faultsOf := []func(*faults){
			func(fl *faults) { fl.syncErr = syscall.EIO },
			func(fl *faults) { fl.writeErr = syscall.ENOSPC },
			func(fl *faults) { fl.openErr, fl.writeErr = syscall.EACCES, syscall.EIO },
		}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(3 * time.Millisecond):
			}
			fl.update(func(fl *faults) {
				fl.openErr, fl.writeErr, fl.syncErr = nil, nil, nil
				if i%2 == 0 {
					faultsOf[(i/2)%len(faultsOf)](fl)
				}
			})
		}
	}()
	const workers, each = 16, 60
	var mu sync.Mutex
	durable := map[string]bool{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				id := fmt.Sprintf("w%d-%d", w, i)
				err := j.Write(record(id))
				mu.Lock()
				durable[id] = err == nil
				mu.Unlock()
				_ = j.Append(completedRecord(id))
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-flapped
	fl.update(func(fl *faults) { fl.openErr, fl.writeErr, fl.syncErr = nil, nil, nil })
	if err := j.Write(record("final")); err != nil {
		t.Fatal(err)
	}
	_, n := journalStages(t, path)
	refused := 0
	for id, ok := range durable {
		if got := n[id+"/completed"]; got != 1 {
			t.Errorf("%s has %d completed lines, want exactly 1", id, got)
		}
		want := 0
		if ok {
			want = 1
		} else {
			refused++
		}
		if got := n[id+"/received"]; got != want {
			t.Errorf("%s (durable %v) has %d received lines, want %d", id, ok, got, want)
		}
	}
	t.Logf("%d requests, %d refused", len(durable), refused)
	if refused == 0 {
		t.Error("no Write failed: the faults did not bite")
	}
}

func TestJournalClosedByAReloadHandsCompletedRecordsOn(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal")
	fl, old := openFaulty(t, path, JournalOptions{})
	if err := old.Write(record("inflight")); err != nil {
		t.Fatal(err)
	}
	// The old handler's journal fails with a completed line in it, then
	// closes while the disk still fails.
	fl.update(func(fl *faults) { fl.syncErr = syscall.EIO })
	if err := old.Append(completedRecord("kept")); err != nil {
		t.Fatal(err)
	}
	if err := old.Write(record("refused")); err == nil {
		t.Fatal("Write during the fault succeeded")
	}
	fl.update(func(fl *faults) { fl.syncErr = nil })
	next, err := openJournal(path, JournalOptions{}, fl.fs()) // the new handler's
	if err != nil {
		t.Fatal(err)
	}
	defer next.Close()
	fl.update(func(fl *faults) { fl.syncErr = syscall.EIO })
	// Close's last append fails: the kept line goes to next.
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	fl.update(func(fl *faults) { fl.syncErr = nil })
	// A request that outlived the old handler completes through it.
	if err := old.Append(completedRecord("inflight")); err != nil {
		t.Fatalf("Append to the closed journal with a successor: %v", err)
	}
	if err := next.Write(record("after")); err != nil {
		t.Fatal(err)
	}
	order, n := journalStages(t, path)
	for _, key := range []string{"inflight/received", "inflight/completed", "kept/completed", "after/received"} {
		if n[key] != 1 {
			t.Errorf("%s appears %d times, want 1: %q", key, n[key], order)
		}
	}
	if len(order) != 4 {
		t.Errorf("journal %q, want 4 lines", order)
	}
	// Without a successor, the closed journal refuses.
	if err := next.Close(); err != nil {
		t.Fatal(err)
	}
	if err := next.Append(completedRecord("late")); !errors.Is(err, ErrJournalClosed) {
		t.Errorf("Append after the last Close returned %v, want ErrJournalClosed", err)
	}
}
