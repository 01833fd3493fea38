package audit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

const (
	// journalLoggerName and journalMessage make a journal line the same
	// object as the line the log sink writes through Caddy's audit logger.
	journalLoggerName = "http.handlers.lro_cancel.audit"
	journalMessage    = "lro_cancel"

	// failureLogEvery bounds the ERROR lines of a journal that keeps failing:
	// one per burst, not one per refused request.
	failureLogEvery = 10 * time.Second

	// maxSpareBatch is the largest batch buffer kept for reuse, so that one
	// burst does not pin its memory for the journal's lifetime.
	maxSpareBatch = 1 << 20
)

// ErrJournalClosed is wrapped by the errors of Write and Close once the
// journal has been closed.
var ErrJournalClosed = errors.New("audit journal is closed")

// JournalOptions tunes a Journal. The zero value is usable.
type JournalOptions struct {
	// Logger receives the journal's own failure, recovery and repair logs;
	// nil discards them.
	Logger *zap.Logger
	// OnSync, when set, is called after each attempt to append a batch
	// (write and fsync) with its duration and outcome, for metrics. It
	// runs on the journal's goroutine and must not block.
	OnSync func(d time.Duration, err error)
	// Now gives the records' `ts` field and the clock of the failure-log
	// rate limit; nil means time.Now.
	Now func() time.Time
}

// Journal is the durable audit sink: an append-only file holding one JSON
// line per record, the same object the log sink writes.
//
// Write returns nil only once the record's line is written and the file
// fsynced. Concurrent Writes share one write(2) and one fsync (group
// commit), so the cost of an fsync is spread over the requests that arrive
// while the previous one runs. A failed Write means the record is not
// durable and the request must be refused (503) and not forwarded. The
// failed batch is truncated away so that no torn line stays in the file;
// only when the disk failed to sync data it nevertheless kept can such a
// record show up later, always as a whole line. The next Write after a
// failure reopens the path and tries again.
//
// A crash can leave a torn last line, one whose fsync never completed and
// so was never acknowledged. Opening the journal moves it to
// <path>.torn.<unix-nanos> and truncates the file to its last newline, so
// every line of the journal is a whole JSON object.
//
// Rotation: rename the file (mv journal journal.1), then reload the
// config. The new handler opens the path anew, which creates a fresh file;
// the old handler's journal goes on appending to the renamed file until it
// is closed after the switch, so records in flight land durably in
// journal.1. Do not rotate by copy and truncate: records appended between
// the copy and the truncation would be lost.
//
// Each batch is appended under an exclusive flock(2) held across its
// write, fsync and any truncation, after checking that the file still ends
// in a newline, so several writers may share one file on a local file
// system: the old and new handler during a reload, or several Caddy
// processes on one host. Over NFS, where appends are not atomic, and on
// systems without flock (Windows), give each writer its own file.
type Journal struct {
	path   string
	fs     fileSystem
	log    *zap.Logger
	onSync func(time.Duration, error)
	now    func() time.Time
	enc    zapcore.Encoder

	mu      sync.Mutex
	pending *batch // records waiting for the next append, nil if none
	spare   []byte // a committed batch's buffer, for reuse
	closed  bool
	kick    chan struct{} // wakes the flusher; one slot
	stopped chan struct{} // closed when the flusher has exited

	// Owned by the flusher goroutine.
	f        file // nil after a file error, until reopened
	outage   outage
	closeErr error // read by Close after stopped is closed
}

// batch is a group of records appended with one write and one fsync.
type batch struct {
	buf     []byte
	records int
	done    chan struct{} // closed once err is set
	err     error
}

// outage tracks a run of failed appends for rate-limited logging.
type outage struct {
	since   time.Time // zero while healthy
	lastLog time.Time
	refused int // records refused since lastLog
	total   int // records refused since the outage began
}

// OpenJournal opens (creating it with mode 0600 if needed) the journal
// file at path, moves away a torn last line left by a crash, and starts
// the goroutine that appends records. Close releases it.
func OpenJournal(path string, opts JournalOptions) (*Journal, error) {
	return openJournal(path, opts, osFileSystem)
}

func openJournal(path string, opts JournalOptions, fs fileSystem) (*Journal, error) {
	if path == "" {
		return nil, errors.New("open audit journal: empty path")
	}
	j := &Journal{
		path:    path,
		fs:      fs,
		log:     opts.Logger,
		onSync:  opts.OnSync,
		now:     opts.Now,
		enc:     zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()),
		kick:    make(chan struct{}, 1),
		stopped: make(chan struct{}),
	}
	if j.log == nil {
		j.log = zap.NewNop()
	}
	if j.now == nil {
		j.now = time.Now
	}
	f, err := j.open()
	if err != nil {
		return nil, fmt.Errorf("open audit journal %s: %w", path, err)
	}
	j.f = f
	go j.run()
	return j, nil
}

// Path returns the path the journal was opened with.
func (j *Journal) Path() string { return j.path }

// Write appends the record as one JSON line and returns once it is on
// disk. An error means the record is not durable.
func (j *Journal) Write(r *Record) error {
	b, err := j.enqueue(r)
	if err != nil {
		return err
	}
	<-b.done
	return b.err
}

// Append queues the record for the next group commit and returns without
// waiting for it: for a record nothing waits on, such as a completed one.
// It is on disk once a later Write returns or Close has returned; a failure
// to append it is logged like any other. The error is about encoding or a
// closed journal only.
func (j *Journal) Append(r *Record) error {
	_, err := j.enqueue(r)
	return err
}

// enqueue adds the record's line to the pending batch and returns it.
func (j *Journal) enqueue(r *Record) (*batch, error) {
	line, err := j.enc.EncodeEntry(zapcore.Entry{
		Level:      zapcore.InfoLevel,
		Time:       j.now(),
		LoggerName: journalLoggerName,
		Message:    journalMessage,
	}, []zapcore.Field{zap.Inline(r)})
	if err != nil {
		return nil, fmt.Errorf("encode audit record for journal %s: %w", j.path, err)
	}

	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		line.Free()
		return nil, fmt.Errorf("append audit record to journal %s: %w", j.path, ErrJournalClosed)
	}
	b := j.pending
	if b == nil {
		b = &batch{buf: j.spare, done: make(chan struct{})}
		j.spare = nil
		j.pending = b
		select {
		case j.kick <- struct{}{}:
		default: // a queued kick will make the flusher take this batch
		}
	}
	b.buf = append(b.buf, line.Bytes()...)
	b.records++
	j.mu.Unlock()
	line.Free()
	return b, nil
}

// Close appends what is pending, closes the file and stops the flusher.
// Writes that were already waiting complete or fail; later ones fail.
func (j *Journal) Close() error {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return fmt.Errorf("close audit journal %s: %w", j.path, ErrJournalClosed)
	}
	j.closed = true
	select {
	case j.kick <- struct{}{}:
	default: // a kick is already queued; the flusher will see closed
	}
	j.mu.Unlock()
	<-j.stopped
	return j.closeErr
}

// run is the flusher: it appends each pending batch in turn, so that the
// records arriving during one fsync share the next.
func (j *Journal) run() {
	defer close(j.stopped)
	for range j.kick {
		j.mu.Lock()
		b, closed := j.pending, j.closed
		j.pending = nil
		j.mu.Unlock()
		if b != nil {
			j.commit(b)
			close(b.done)
			if cap(b.buf) <= maxSpareBatch {
				j.mu.Lock()
				j.spare = b.buf[:0]
				j.mu.Unlock()
			}
		}
		if closed {
			if j.f != nil {
				if err := j.f.Close(); err != nil {
					j.closeErr = fmt.Errorf("close audit journal %s: %w", j.path, err)
				}
				j.f = nil
			}
			return
		}
	}
}

// commit makes b durable or sets the error its writers return.
func (j *Journal) commit(b *batch) {
	start := time.Now()
	err := j.appendSync(b.buf)
	if j.onSync != nil {
		j.onSync(time.Since(start), err)
	}
	j.account(err, b.records)
	if err != nil {
		b.err = fmt.Errorf("append audit record to journal %s: %w", j.path, err)
	}
}

// appendSync writes p at the end of the file and fsyncs it. On failure it
// drops the file, so that the next batch reopens the path.
func (j *Journal) appendSync(p []byte) error {
	if j.f == nil {
		f, err := j.open()
		if err != nil {
			return fmt.Errorf("reopen: %w", err)
		}
		j.f = f
	}
	if err := j.f.Lock(); err != nil {
		j.drop()
		return fmt.Errorf("lock: %w", err)
	}
	if err := j.appendLocked(p); err != nil {
		j.drop() // closing the file also releases the lock
		return err
	}
	if err := j.f.Unlock(); err != nil {
		// p is durable; only the descriptor is suspect.
		j.drop()
	}
	return nil
}

// appendLocked appends p under the file lock, truncating back to the
// previous size if it cannot be made durable.
func (j *Journal) appendLocked(p []byte) error {
	fi, err := j.f.Stat()
	if err != nil {
		return fmt.Errorf("stat: %w", err)
	}
	good := fi.Size()
	if fi.Mode().IsRegular() {
		// Another writer of this file may have failed to take back a torn
		// line; appending after it would corrupt this batch's first line.
		if good, err = j.repairTail(j.f, good); err != nil {
			return err
		}
	}
	n, err := j.f.Write(p)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	if err != nil {
		if n > 0 {
			if terr := j.f.Truncate(good); terr != nil {
				// The next append, this writer's or another's, moves the
				// torn line aside before writing.
				return fmt.Errorf("write: %w (truncating the torn line: %v)", err, terr)
			}
		}
		return fmt.Errorf("write: %w", err)
	}
	if err := j.f.Sync(); err != nil {
		// Best effort: the lines may or may not have reached the disk, but
		// their writers are told they did not, so take them back.
		_ = j.f.Truncate(good)
		return fmt.Errorf("fsync: %w", err)
	}
	return nil
}

// drop closes the file after an error; the next batch reopens the path.
func (j *Journal) drop() {
	_ = j.f.Close() // the error that made us drop it is already reported
	j.f = nil
}

// account logs the first failure of an outage, then at most one ERROR per
// failureLogEvery while it lasts, and one INFO when an append succeeds again.
func (j *Journal) account(err error, records int) {
	now := j.now()
	o := &j.outage
	if err == nil {
		if !o.since.IsZero() {
			j.log.Info("audit journal recovered",
				zap.String("journal", j.path),
				zap.Duration("outage", now.Sub(o.since)),
				zap.Int("records_refused", o.total))
			*o = outage{}
		}
		return
	}
	o.refused += records
	o.total += records
	if o.since.IsZero() {
		o.since = now
	} else if now.Sub(o.lastLog) < failureLogEvery {
		return
	}
	j.log.Error("cannot append to the audit journal; cancels are refused",
		zap.String("journal", j.path),
		zap.Int("records_refused", o.refused),
		zap.Error(err))
	o.lastLog = now
	o.refused = 0
}

// open opens the path for appending, makes its directory entry durable
// and moves a torn last line aside.
func (j *Journal) open() (file, error) {
	f, err := j.fs.open(j.path)
	if err != nil {
		return nil, err
	}
	// Synced on every open, not only on creation, so that a directory
	// sync that failed once is retried by the next open.
	if err := j.fs.syncDir(filepath.Dir(j.path)); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("fsync directory: %w", err)
	}
	if err := f.Lock(); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("lock: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("stat: %w", err)
	}
	if fi.Mode().IsRegular() {
		if _, err := j.repairTail(f, fi.Size()); err != nil {
			_ = f.Close()
			return nil, err
		}
	}
	if err := f.Unlock(); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("unlock: %w", err)
	}
	return f, nil
}

// repairTail moves an incomplete last line to <path>.torn.<unix-nanos>
// and truncates the journal to its last newline. f is locked and size
// bytes long; repairTail returns the size it leaves.
func (j *Journal) repairTail(f file, size int64) (int64, error) {
	if size == 0 {
		return 0, nil
	}
	var last [1]byte
	if _, err := f.ReadAt(last[:], size-1); err != nil {
		return 0, fmt.Errorf("read the last byte: %w", err)
	}
	if last[0] == '\n' {
		return size, nil
	}
	end, err := lastLineEnd(f, size-1)
	if err != nil {
		return 0, fmt.Errorf("find the last newline: %w", err)
	}
	tornPath := fmt.Sprintf("%s.torn.%d", j.path, j.now().UnixNano())
	if err := j.saveTail(tornPath, io.NewSectionReader(f, end, size-end)); err != nil {
		return 0, fmt.Errorf("save the torn last line to %s: %w", tornPath, err)
	}
	if err := f.Truncate(end); err != nil {
		return 0, fmt.Errorf("truncate the torn last line: %w", err)
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("fsync after truncating the torn last line: %w", err)
	}
	j.log.Warn("moved the torn last line of the audit journal aside",
		zap.String("journal", j.path),
		zap.String("torn_copy", tornPath),
		zap.Int64("bytes", size-end))
	return end, nil
}

// saveTail writes the torn line to a new file and makes it durable before
// the journal is truncated, so that a crash cannot lose it.
func (j *Journal) saveTail(path string, tail io.Reader) error {
	w, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, tail); err != nil {
		_ = w.Close()
		return err
	}
	if err := w.Sync(); err != nil {
		_ = w.Close()
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return j.fs.syncDir(filepath.Dir(path))
}

// lastLineEnd returns the offset just past the last '\n' of the first size
// bytes of r, or 0 when there is none, reading backwards.
func lastLineEnd(r io.ReaderAt, size int64) (int64, error) {
	buf := make([]byte, 32<<10)
	for end := size; end > 0; {
		start := max(end-int64(len(buf)), 0)
		chunk := buf[:end-start]
		if _, err := r.ReadAt(chunk, start); err != nil {
			return 0, err
		}
		if i := bytes.LastIndexByte(chunk, '\n'); i >= 0 {
			return start + int64(i) + 1, nil
		}
		end = start
	}
	return 0, nil
}

// Interface guards
var (
	_ Sink = (*Journal)(nil)
)
