package audit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/buffer"
	"go.uber.org/zap/zapcore"
	"golang.org/x/mod/sumdb/note"
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

	// defaultJournalTimeout bounds a batch's append when JournalOptions
	// leaves Timeout zero.
	defaultJournalTimeout = 5 * time.Second

	// recoveryWindow is how much of the end of the file OpenJournal reads
	// for received records that a crash left without their completed one:
	// thousands of requests, read in well under a second at startup.
	recoveryWindow = 8 << 20

	// maxKeptBytes and maxKeptLines bound the completed lines of failed
	// batches held in memory until the disk works again; beyond either,
	// the oldest are dropped.
	maxKeptBytes = 4 << 20
	maxKeptLines = 10000
)

// ErrJournalClosed is wrapped by the errors of Write and Close once the
// journal has been closed.
var ErrJournalClosed = errors.New("audit journal is closed")

// ErrJournalTimeout is wrapped by the errors of the Writes whose batch did
// not reach the disk within the journal's Timeout, and of every Write
// refused while that append is still stuck.
var ErrJournalTimeout = errors.New("audit journal append timed out")

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
	// Timeout bounds the append of one batch (reopening the file if
	// needed, taking its lock, write and fsync): the Writes waiting on a
	// batch that has not been appended by then fail. Zero means 5s.
	Timeout time.Duration
	// Format is the lines' shape, as the log sink's: FormatJSON (the
	// default when empty) or FormatCloudAuditLog.
	Format string
	// Seal, when set, seals the journal (see seal.go): every line carries
	// its position and the previous line's leaf hash, and checkpoints
	// signed with this key are appended every CheckpointInterval, after
	// 1,000 record lines, and on Close.
	Seal note.Signer
	// CheckpointInterval is the most time between checkpoints of a sealed
	// journal while lines are unsealed. Zero means 10s.
	CheckpointInterval time.Duration
	// OnCheckpoint, when set, is called after each attempt to append a
	// checkpoint with its signed note (nil on failure) and the error. It
	// runs on the journal's goroutine and must not block.
	OnCheckpoint func(note []byte, err error)
}

// defaultCheckpointInterval is CheckpointInterval's default.
const defaultCheckpointInterval = 10 * time.Second

// Journal is the durable audit sink: an append-only file holding one JSON
// line per record, the same object the log sink writes in the same format.
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
// A batch not appended within Timeout (default 5s, for reopening the file
// if needed, taking its lock, write and fsync) fails: every Write waiting
// on it, and every Write queued behind it, returns an error wrapping
// ErrJournalTimeout at that moment, so a hung disk refuses cancels instead
// of holding them, and no Write waits longer than about twice Timeout (the
// batch ahead of it, then its own). The call that hung cannot be
// interrupted. The journal's one goroutine stays in it and, until it
// returns, every Write and Append fails at once, without touching the
// disk, starting a goroutine or opening a file: a journal never has more
// than one call stuck, whatever the load. The records of a timed-out batch
// are never reported durable, but they may be on disk: not yet written,
// written, or fsynced late. When the stuck call returns, the journal
// truncates them away as after any failure (and fsyncs the truncation if
// they had been fsynced), closes the file, and the next Write reopens the
// path; a crash before then can leave them, as whole lines. The records
// refused while the call is stuck are lost, as are those of any failed
// batch, except completed ones (next paragraph), so a received record can
// be left without its completed one only by a crash or that paragraph's
// bound: the next open that completes interrupted requests (below)
// completes it.
//
// Completed records outlive an outage. The completed lines of a failed or
// timed-out batch, and completed records refused while an append is stuck,
// are kept in memory and written ahead of the next batch's lines
// (in the same write and fsync), so that each appears in the file exactly
// once after the disk works again; a batch that fails again keeps them
// again. Nothing waits on them: they are written with the next Write or
// Append, or by Close. A kept line is one the failure path took back (or
// never wrote): when the truncation that should take a batch back fails,
// its lines may be in the file, so they are dropped rather than kept, and
// never written twice. Received lines of a failed batch are not kept: their
// cancels were refused, and the completed lines say so. At most 4 MiB or
// 10,000 lines are kept; beyond either the oldest are dropped, counted and
// logged (a WARN at most every 10s, and the total in the recovery INFO), and
// a crash loses what is kept; in both cases the received record, when it is
// in the file, is completed as interrupted by the next open that does so.
//
// A crash can leave a torn last line, one whose fsync never completed and
// so was never acknowledged. Opening the journal moves it to
// <path>.torn.<unix-nanos> and truncates the file to its last newline, so
// every line of the journal is a whole JSON object.
//
// A crash also leaves the requests in flight with a received record and no
// completed one. OpenJournal reads the last 8 MiB of the file and, for
// every received line there with no later completed line of the same
// audit_id, appends a completed record with decision interrupted and no
// status, carrying the received line's identity (service, method,
// operation, principal, token_id, scopes, client_ip, user_agent, protocol),
// fsyncs it and logs the count once. A received line that starts before the
// last 8 MiB is not read. Opening again finds every pair complete and adds
// nothing. A journal opened while another one has the file open (the new
// handler during a reload, another Caddy process) does none of this, since
// their requests in flight are not interrupted: the next open with no
// other writer does it. Writers announce themselves with a shared flock on
// <path>.lock, which opening creates; leave that file in place. Without
// flock (Windows), only the writers in this process are known.
//
// Within a process, the journals of one path (the old and new handler
// during a reload) cover for each other: a completed record appended to a
// closed journal, by a request that outlived its handler, goes to the
// newest open journal of the same path, and the kept lines a journal could
// not write before closing are handed to it (if it writes the same format),
// so a reload during an outage loses no completed record. After a rotation
// by rename, such a record lands in the new file, its received one in the
// renamed file.
//
// Rotation: rename the file (mv journal journal.1), then reload the
// config. The new handler opens the path anew, which creates a fresh file;
// the old handler's journal goes on appending to the renamed file until it
// is closed after the switch, so records in flight land durably in
// journal.1. Do not rotate by copy and truncate: records appended between
// the copy and the truncation would be lost. A sealed journal (Seal) is
// the exception: its writers follow the path, so that the chain goes on
// in the new file (see sealer).
//
// Each batch is appended under an exclusive flock(2) held across its
// write, fsync and any truncation, after checking that the file still ends
// in a newline, so several writers may share one file on a local file
// system: the old and new handler during a reload, or several Caddy
// processes on one host. Over NFS, where appends are not atomic, and on
// systems without flock (Windows), give each writer its own file.
type Journal struct {
	path    string
	fs      fileSystem
	log     *zap.Logger
	onSync  func(time.Duration, error)
	now     func() time.Time
	timeout time.Duration
	format  string
	enc     zapcore.Encoder

	// seal is nil for an unsealed journal; it is the flusher's.
	seal         *sealer
	cpEvery      time.Duration
	onCheckpoint func([]byte, error)

	mu      sync.Mutex
	pending *batch // records waiting for the next append, nil if none
	spare   []byte // a committed batch's buffer, for reuse
	closed  bool
	// stuck is set from the moment an append outlives the timeout until
	// the call that hung returns; meanwhile records are refused at once.
	stuck      bool
	stuckSince time.Time
	stuckCh    chan struct{} // closed when stuck is set; replaced when it clears
	kick       chan struct{} // wakes the flusher; one slot
	// kept holds, oldest first, the completed lines of failed batches
	// waiting to be written ahead of the next batch; keptBytes is their
	// total size.
	kept      [][]byte
	keptBytes int
	stopped   chan struct{} // closed when the flusher has exited

	// The flusher, the timeout and the refused Writes all account failures.
	omu    sync.Mutex
	outage outage

	// Owned by the flusher goroutine.
	f file // nil after a file error, until reopened
	// fi is f's FileInfo as last read, for its identity; end is the size f
	// had when this writer's last append was claimed, or -1 when unknown.
	// While the file is still that long, nothing was appended since (an
	// append, whole or torn, makes it longer; a writer taking one back
	// truncates to where it began), so its last byte is that append's
	// newline and the tail needs no reading.
	fi       os.FileInfo
	end      int64
	presence presence // this writer's announcement; nil unless a regular file
	closeErr error    // read by Close after stopped is closed
}

// batch is a group of records appended with one write and one fsync.
type batch struct {
	buf     []byte
	records int   // the records of its writers; kept lines not included
	ends    []int // where each line of buf ends
	// completed marks the lines of buf that are completed records, kept
	// when the batch fails; carried counts the kept lines at its start.
	completed []bool
	carried   int
	// mayRemain is set when the batch failed but its lines may still be
	// in the file, since taking them back failed: they are then not kept.
	mayRemain bool
	done      chan struct{} // closed once err is set
	err       error
	// The flusher and the timeout race to decide the batch, under
	// Journal.mu: whichever sets its flag first decides, the other backs off.
	settled bool // the flusher made it durable in time, or saw it fail
	expired bool // the timeout failed it
	// checkpoint asks a sealed journal for a checkpoint (it has no lines
	// of its own); note is the checkpoint appended with the batch, if any.
	checkpoint bool
	note       []byte
}

// fail gives the batch its error and wakes its writers.
func (b *batch) fail(err error) {
	b.err = err
	close(b.done)
}

// outage tracks a run of failed appends for rate-limited logging.
type outage struct {
	since   time.Time // zero while healthy
	lastLog time.Time
	refused int // records refused since lastLog
	total   int // records refused since the outage began
	// Completed lines kept, and dropped by the bound or a failed take-back.
	kept       int
	dropped    int // since lastDrop
	droppedAll int
	lastDrop   time.Time
}

// OpenJournal opens (creating it with mode 0600 if needed) the journal
// file at path, moves away a torn last line left by a crash, completes the
// records of requests a crash interrupted, and starts the goroutine that
// appends records. Close releases it.
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
		timeout: opts.Timeout,
		format:  opts.Format,
		enc:     zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()),
		stuckCh: make(chan struct{}),
		kick:    make(chan struct{}, 1),
		stopped: make(chan struct{}),
	}
	if j.log == nil {
		j.log = zap.NewNop()
	}
	if j.now == nil {
		j.now = time.Now
	}
	if j.timeout <= 0 {
		j.timeout = defaultJournalTimeout
	}
	if opts.Seal != nil {
		j.seal = newSealer(opts.Seal)
		j.cpEvery, j.onCheckpoint = opts.CheckpointInterval, opts.OnCheckpoint
		if j.cpEvery <= 0 {
			j.cpEvery = defaultCheckpointInterval
		}
	}
	f, err := j.open()
	if err != nil {
		return nil, fmt.Errorf("open audit journal %s: %w", path, err)
	}
	j.setFile(f)
	if j.seal != nil {
		if err := j.checkSealable(); err != nil {
			_ = f.Close()
			_ = j.seal.close()
			return nil, fmt.Errorf("open audit journal %s: %w", path, err)
		}
	}
	if err := j.announce(); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("open audit journal %s: %w", path, err)
	}
	register(j)
	go j.run()
	return j, nil
}

// journals are the open journals of this process by path, oldest first:
// a journal closed by a reload hands its late completed records, and the
// kept lines it could not write, to the newest other one of its path.
var journals = struct {
	sync.Mutex
	byPath map[string][]*Journal
}{byPath: map[string][]*Journal{}}

func journalKey(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return filepath.Clean(path)
}

func register(j *Journal) {
	journals.Lock()
	defer journals.Unlock()
	k := journalKey(j.path)
	journals.byPath[k] = append(journals.byPath[k], j)
}

func unregister(j *Journal) {
	journals.Lock()
	defer journals.Unlock()
	k := journalKey(j.path)
	list := slices.DeleteFunc(journals.byPath[k], func(o *Journal) bool { return o == j })
	if len(list) == 0 {
		delete(journals.byPath, k)
	} else {
		journals.byPath[k] = list
	}
}

// successor is the newest open journal of j's path other than j, or nil.
func (j *Journal) successor() *Journal {
	journals.Lock()
	defer journals.Unlock()
	list := journals.byPath[journalKey(j.path)]
	for i := len(list) - 1; i >= 0; i-- {
		if list[i] != j {
			return list[i]
		}
	}
	return nil
}

// handOver keeps lines encoded by a closed journal of the same path and
// wakes the flusher to write them. It reports false if j is closed or
// writes another format.
func (j *Journal) handOver(lines [][]byte, format string) bool {
	if format != j.format {
		return false
	}
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return false
	}
	dropped := j.keepLocked(lines)
	select {
	case j.kick <- struct{}{}:
	default:
	}
	j.mu.Unlock()
	j.accountKept(0, dropped, "the bound")
	return true
}

// announce registers this writer of the file and, if no other writer has
// it open, completes the records a crash interrupted before sharing it.
func (j *Journal) announce() error {
	fi, err := j.f.Stat()
	if err != nil {
		return fmt.Errorf("stat: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil // a device or a pipe: nothing to read back
	}
	p, alone, err := j.fs.announce(j.path)
	if err != nil {
		return fmt.Errorf("announce this writer: %w", err)
	}
	if alone {
		if err := j.completeInterrupted(); err != nil {
			_ = p.Close()
			return err
		}
		if err := p.Share(); err != nil {
			_ = p.Close()
			return fmt.Errorf("share the file with other writers: %w", err)
		}
	}
	j.presence = p
	return nil
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
// to append it is logged like any other, and a completed record whose
// batch fails is kept and written with a later batch (see Journal). The
// error is about encoding, a closed journal or a stuck append only; a
// completed record refused because an append is stuck is kept all the same.
func (j *Journal) Append(r *Record) error {
	_, err := j.enqueue(r)
	return err
}

// encode renders the record as the log sink's line.
func (j *Journal) encode(r *Record) (*buffer.Buffer, error) {
	line, err := j.enc.EncodeEntry(zapcore.Entry{
		Level:      zapcore.InfoLevel,
		Time:       j.now(),
		LoggerName: journalLoggerName,
		Message:    journalMessage,
	}, []zapcore.Field{recordField(r, j.format)})
	if err != nil {
		return nil, fmt.Errorf("encode audit record for journal %s: %w", j.path, err)
	}
	return line, nil
}

// enqueue adds the record's line to the pending batch and returns it.
func (j *Journal) enqueue(r *Record) (*batch, error) {
	line, err := j.encode(r)
	if err != nil {
		return nil, err
	}

	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		line.Free()
		if r.Stage == StageCompleted {
			// A request that outlived its handler's journal (a reload):
			// the journal of the new handler appends its completed record.
			if s := j.successor(); s != nil {
				return s.enqueue(r)
			}
		}
		return nil, fmt.Errorf("append audit record to journal %s: %w", j.path, ErrJournalClosed)
	}
	if j.stuck {
		since := j.stuckSince
		dropped := 0
		if r.Stage == StageCompleted {
			dropped = j.keepLocked([][]byte{bytes.Clone(line.Bytes())})
		}
		j.mu.Unlock()
		line.Free()
		err := fmt.Errorf("append audit record to journal %s: an append has been stuck since %s: %w",
			j.path, since.Format(time.RFC3339Nano), ErrJournalTimeout)
		j.account(err, 1)
		if r.Stage == StageCompleted {
			j.accountKept(1, dropped, "the bound")
		}
		return nil, err
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
	b.ends = append(b.ends, len(b.buf))
	b.completed = append(b.completed, r.Stage == StageCompleted)
	b.records++
	j.mu.Unlock()
	line.Free()
	return b, nil
}

// Close appends what is pending, closes the file and stops the flusher.
// Writes that were already waiting complete or fail; later ones fail, and
// later Appends of completed records go to another open journal of the
// same path, if any (see Journal).
// While an append is stuck past the timeout, Close returns at once with an
// error wrapping ErrJournalTimeout; the flusher closes the file and exits
// when the stuck call returns.
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
	stuck := j.stuckCh
	j.mu.Unlock()
	unregister(j)
	select {
	case <-j.stopped:
		return j.closeErr
	case <-stuck:
		return fmt.Errorf("close audit journal %s: %w: the file is closed once the stuck call returns", j.path, ErrJournalTimeout)
	}
}

// run is the flusher: it appends each pending batch in turn, so that the
// records arriving during one fsync share the next. It is the only
// goroutine that touches the file, so a hung disk holds it alone.
func (j *Journal) run() {
	defer close(j.stopped)
	var tick <-chan time.Time
	if j.seal != nil {
		t := time.NewTicker(j.cpEvery)
		defer t.Stop()
		tick = t.C
	}
	for {
		due := false
		select {
		case <-j.kick:
		case <-tick:
			due = true
		}
		j.mu.Lock()
		b, closed := j.pending, j.closed
		j.pending = nil
		kept := j.kept
		j.kept, j.keptBytes = nil, 0
		j.mu.Unlock()
		if len(kept) > 0 {
			// Written ahead of the batch's lines, or alone when nothing is
			// pending: the next kick after a failure, or Close.
			b = carry(kept, b)
		}
		if b != nil {
			j.commit(b)
			if cap(b.buf) <= maxSpareBatch {
				j.mu.Lock()
				j.spare = b.buf[:0]
				j.mu.Unlock()
			}
		}
		if j.seal != nil && (due || closed || j.seal.st.unsealed >= j.seal.every) && j.sealDue() {
			j.commit(&batch{checkpoint: true, done: make(chan struct{})})
		}
		if closed {
			j.mu.Lock()
			lost := j.kept
			j.kept, j.keptBytes = nil, 0
			j.mu.Unlock()
			if len(lost) > 0 {
				if s := j.successor(); s == nil || !s.handOver(lost, j.format) {
					j.accountKept(0, len(lost), "closed before the disk worked again")
				}
			}
			j.closeErr = j.closeFile()
			return
		}
	}
}

// carry returns b with the kept lines put ahead of its own, or a batch
// of the kept lines alone when b is nil. b's writers wait on b itself.
func carry(kept [][]byte, b *batch) *batch {
	if b == nil {
		b = &batch{done: make(chan struct{})}
	}
	n := len(b.buf)
	for _, l := range kept {
		n += len(l)
	}
	buf := make([]byte, 0, n)
	ends := make([]int, 0, len(kept)+len(b.ends))
	completed := make([]bool, 0, len(kept)+len(b.ends))
	for _, l := range kept {
		buf = append(buf, l...)
		ends = append(ends, len(buf))
		completed = append(completed, true)
	}
	base := len(buf)
	buf = append(buf, b.buf...)
	for _, e := range b.ends {
		ends = append(ends, base+e)
	}
	b.buf, b.ends = buf, ends
	b.completed = append(completed, b.completed...)
	b.carried = len(kept)
	return b
}

// completedLines returns copies of the completed lines of b.
func (b *batch) completedLines() [][]byte {
	var out [][]byte
	start := 0
	for i, end := range b.ends {
		if b.completed[i] {
			out = append(out, bytes.Clone(b.buf[start:end]))
		}
		start = end
	}
	return out
}

// keepLocked adds lines to the end of the kept ones, dropping the oldest
// beyond the bound, and returns how many it dropped. j.mu is held.
func (j *Journal) keepLocked(lines [][]byte) (dropped int) {
	for _, l := range lines {
		j.kept = append(j.kept, l)
		j.keptBytes += len(l)
	}
	for len(j.kept) > 0 && (len(j.kept) > maxKeptLines || j.keptBytes > maxKeptBytes) {
		j.keptBytes -= len(j.kept[0])
		j.kept[0] = nil
		j.kept = j.kept[1:]
		dropped++
	}
	if len(j.kept) == 0 {
		j.kept = nil // let the array go
	}
	return dropped
}

// keepFailed keeps the completed lines of the failed batch b for the next
// append, unless they may be in the file already.
func (j *Journal) keepFailed(b *batch) {
	lines := b.completedLines()
	if len(lines) == 0 {
		return
	}
	if b.mayRemain {
		j.accountKept(0, len(lines), "a failed take-back")
		return
	}
	j.mu.Lock()
	dropped := j.keepLocked(lines)
	j.mu.Unlock()
	j.accountKept(len(lines)-b.carried, dropped, "the bound")
}

// accountKept counts completed lines kept and dropped, and logs drops at
// most once per failureLogEvery.
func (j *Journal) accountKept(kept, dropped int, why string) {
	j.omu.Lock()
	defer j.omu.Unlock()
	o := &j.outage
	o.kept += kept
	if dropped == 0 {
		return
	}
	o.dropped += dropped
	o.droppedAll += dropped
	now := j.now()
	if !o.lastDrop.IsZero() && now.Sub(o.lastDrop) < failureLogEvery {
		return
	}
	j.log.Warn("dropped completed audit records kept for the audit journal",
		zap.String("journal", j.path),
		zap.String("reason", why),
		zap.Int("dropped", o.dropped),
		zap.Int("max_lines", maxKeptLines),
		zap.Int("max_bytes", maxKeptBytes))
	o.lastDrop = now
	o.dropped = 0
}

// closeFile closes the file and withdraws this writer's announcement.
func (j *Journal) closeFile() error {
	var errs []error
	if j.f != nil {
		errs = append(errs, j.f.Close())
		j.setFile(nil)
	}
	if j.presence != nil {
		errs = append(errs, j.presence.Close())
		j.presence = nil
	}
	if j.seal != nil {
		errs = append(errs, j.seal.close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close audit journal %s: %w", j.path, err)
	}
	return nil
}

// commit makes b durable or sets the error its writers return, at the
// latest when the timeout fails it. OnSync and the outage log see the
// outcome before the writers do.
func (j *Journal) commit(b *batch) {
	start := time.Now()
	timer := time.AfterFunc(j.timeout, func() { j.expire(b) })
	err := j.appendSync(b)
	timer.Stop()
	decided := j.settle(b)
	if j.onSync != nil {
		j.onSync(time.Since(start), err)
	}
	if j.onCheckpoint != nil {
		switch {
		case !decided && b.checkpoint:
			j.onCheckpoint(nil, fmt.Errorf("append a checkpoint to journal %s: %w", j.path, ErrJournalTimeout))
		case decided && err != nil && (b.checkpoint || b.note != nil):
			j.onCheckpoint(nil, fmt.Errorf("append a checkpoint to journal %s: %w", j.path, err))
		case decided && err == nil && b.note != nil:
			j.onCheckpoint(b.note, nil)
		}
	}
	if !decided {
		// The timeout failed b and accounted for it; what the stuck call
		// left is known only now.
		j.keepFailed(b)
		return
	}
	j.account(err, b.records)
	if err != nil {
		j.keepFailed(b)
		b.err = fmt.Errorf("append audit record to journal %s: %w", j.path, err)
	}
	close(b.done)
}

// expire fails b, whose append has outlived the timeout, with the batch
// queued behind it, and makes the journal refuse records until the call
// that hung returns. It backs off if the flusher has settled b.
func (j *Journal) expire(b *batch) {
	j.mu.Lock()
	if b.settled {
		j.mu.Unlock()
		return
	}
	b.expired = true
	j.stuck, j.stuckSince = true, j.now()
	close(j.stuckCh)
	failed := []*batch{b}
	kept, dropped := 0, 0
	if p := j.pending; p != nil {
		j.pending = nil
		failed = append(failed, p)
		// Never written: its completed lines are kept now.
		lines := p.completedLines()
		kept, dropped = len(lines), j.keepLocked(lines)
	}
	j.mu.Unlock()
	if kept > 0 {
		j.accountKept(kept, dropped, "the bound")
	}
	// Nothing else touches them now: the flusher backs off b, which is
	// expired, and enqueue no longer sees the pending batch.
	err := fmt.Errorf("append audit record to journal %s: %w: not on disk after %v", j.path, ErrJournalTimeout, j.timeout)
	refused := 0
	for _, f := range failed {
		refused += f.records
	}
	j.account(err, refused)
	for _, f := range failed {
		f.fail(err)
	}
}

// settle makes the flusher the one to decide b, and reports whether it
// is: when the timeout failed b first, the call that hung has returned,
// and the journal takes records again.
func (j *Journal) settle(b *batch) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	if b.expired {
		j.stuck, j.stuckSince = false, time.Time{}
		j.stuckCh = make(chan struct{})
		return false
	}
	b.settled = true
	return true
}

// claim settles b as durable, unless the timeout failed it first.
func (j *Journal) claim(b *batch) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	if b.expired {
		return false
	}
	b.settled = true
	return true
}

// isExpired reports whether the timeout has failed b.
func (j *Journal) isExpired(b *batch) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return b.expired
}

// appendSync writes b at the end of the file and fsyncs it. On failure it
// drops the file, so that the next batch reopens the path.
func (j *Journal) appendSync(b *batch) error {
	if j.seal != nil {
		if err := j.seal.lockChain(j.path); err != nil {
			return err
		}
		defer j.seal.unlockChain()
		if j.f != nil && j.rotated() {
			// Follow the path, so that nothing is appended to a rotated
			// file once the new one may have begun.
			j.drop()
		}
	}
	if j.f == nil {
		f, err := j.open()
		if err != nil {
			return fmt.Errorf("reopen: %w", err)
		}
		j.setFile(f)
		if j.seal != nil {
			j.seal.forget()
		}
	}
	if err := j.f.Lock(); err != nil {
		j.drop()
		return fmt.Errorf("lock: %w", err)
	}
	if err := j.appendLocked(b); err != nil {
		j.drop() // closing the file also releases the lock
		return err
	}
	if err := j.f.Unlock(); err != nil {
		// b is durable; only the descriptor is suspect.
		j.drop()
	}
	return nil
}

// appendLocked appends b under the file lock, truncating back to the
// previous size if it cannot be made durable in time.
func (j *Journal) appendLocked(b *batch) error {
	fi, err := j.f.Stat()
	if err != nil {
		return fmt.Errorf("stat: %w", err)
	}
	j.fi = fi
	good := fi.Size()
	if fi.Mode().IsRegular() && good != j.end {
		// Another writer of this file may have failed to take back a torn
		// line; appending after it would corrupt this batch's first line.
		if good, err = j.repairTail(j.f, good); err != nil {
			return err
		}
	}
	j.end = -1 // until this append is claimed
	if j.isExpired(b) {
		// Its writers were told it failed: do not write it now.
		return fmt.Errorf("not written: %w", ErrJournalTimeout)
	}
	out := b.buf
	var next sealState
	if j.seal != nil {
		out, next, b.note, err = j.seal.seal(j.f, good, b)
		if err != nil {
			j.seal.forget()
			return fmt.Errorf("seal: %w", err)
		}
		if len(out) == 0 {
			// A checkpoint with nothing to seal.
			if !j.claim(b) {
				return fmt.Errorf("%w: nothing to append", ErrJournalTimeout)
			}
			return nil
		}
	}
	n, err := j.f.Write(out)
	if err == nil && n < len(out) {
		err = io.ErrShortWrite
	}
	if err != nil {
		if n > 0 {
			if terr := j.f.Truncate(good); terr != nil {
				b.mayRemain = true
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
		if terr := j.f.Truncate(good); terr != nil {
			b.mayRemain = true
		}
		return fmt.Errorf("fsync: %w", err)
	}
	// Decided while the lock is held, so that lines to take back are
	// still the last of the file.
	if !j.claim(b) {
		// Durable, but too late: the writers were told it failed.
		err := j.f.Truncate(good)
		if err == nil {
			err = j.f.Sync()
		}
		if err != nil {
			b.mayRemain = true
			return fmt.Errorf("%w: appended late (taking the lines back: %v)", ErrJournalTimeout, err)
		}
		return fmt.Errorf("%w: appended late, and taken back", ErrJournalTimeout)
	}
	j.end = good + int64(len(out))
	if j.seal != nil {
		if err := j.seal.commit(next, out); err != nil {
			// The lines are durable; only a rotation needs the record.
			j.log.Warn("cannot write the audit journal's chain record; a rotation now would break the chain",
				zap.String("journal", j.path), zap.Error(err))
		}
	}
	return nil
}

// checkSealable fails at open what would fail every append of a sealed
// journal: a file that is not a regular one, a chain record that cannot
// be opened.
func (j *Journal) checkSealable() error {
	fi, err := j.f.Stat()
	if err != nil {
		return fmt.Errorf("stat: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return errors.New("a sealed journal must be a regular file")
	}
	if err := j.seal.lockChain(j.path); err != nil {
		return err
	}
	j.seal.unlockChain()
	return nil
}

// rotated reports whether the path is no longer the open file.
func (j *Journal) rotated() bool {
	pfi, err := os.Stat(j.path)
	if err != nil {
		return true
	}
	ffi := j.fi // the open file's identity does not change
	if ffi == nil {
		if ffi, err = j.f.Stat(); err != nil {
			return true
		}
		j.fi = ffi
	}
	return !os.SameFile(pfi, ffi)
}

// sealDue reports whether a checkpoint may have lines to seal: this
// writer's, or another's appended since.
func (j *Journal) sealDue() bool {
	if !j.seal.known || j.seal.st.unsealed > 0 || j.f == nil {
		return true
	}
	fi, err := j.f.Stat()
	return err != nil || fi.Size() != j.seal.st.off
}

// drop closes the file after an error; the next batch reopens the path.
func (j *Journal) drop() {
	_ = j.f.Close() // the error that made us drop it is already reported
	j.setFile(nil)
}

// setFile makes f the open file, nothing yet known of it.
func (j *Journal) setFile(f file) {
	j.f, j.fi, j.end = f, nil, -1
}

// account logs the first failure of an outage, then at most one ERROR per
// failureLogEvery while it lasts, and one INFO when an append succeeds again.
func (j *Journal) account(err error, records int) {
	j.omu.Lock()
	defer j.omu.Unlock()
	now := j.now()
	o := &j.outage
	if err == nil {
		if !o.since.IsZero() {
			j.log.Info("audit journal recovered",
				zap.String("journal", j.path),
				zap.Duration("outage", now.Sub(o.since)),
				zap.Int("records_refused", o.total),
				zap.Int("completed_records_kept", o.kept),
				zap.Int("completed_records_dropped", o.droppedAll))
			*o = outage{lastDrop: o.lastDrop}
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
