package audit

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// sealState is what a writer knows of the sealed journal's file: the
// tree of its first off bytes, the last line's leaf hash, and how many
// record lines follow the last checkpoint line.
type sealState struct {
	off      int64
	t        tree
	last     tlog.Hash
	unsealed int
}

// sealer seals a journal's lines. It is owned by the flusher goroutine.
//
// How a writer knows the tree: lines written by others since its last
// append (another writer of the file) are read and hashed under the lock;
// a writer that does not know the file yet reads it back to its last
// checkpoint line, whose right edge continues the tree. A rotated path's
// new file learns the old file's tree from the chain record,
// <path>.chain: the state after the last append to the path, by any
// writer, rewritten under that file's flock after each append, which also
// orders every writer of the path across rotations. A writer appends only
// to the file at the path: one that finds its file renamed reopens the
// path, so no line is appended to a rotated file once the new one has
// begun. The new file's first line is a checkpoint of the old file's
// tree, so each file of a rotation can be read back on its own.
type sealer struct {
	signer note.Signer
	chain  *os.File // <path>.chain, opened by the first append
	every  int      // record lines between checkpoints at most

	known    bool
	st       sealState
	buf      []byte
	chainBuf []byte // the chain record's encoding, reused
}

func newSealer(signer note.Signer) *sealer {
	return &sealer{signer: signer, every: defaultCheckpointLines}
}

// chainRecord is <path>.chain's content.
type chainRecord struct {
	Size     int64    `json:"size"`
	Last     string   `json:"last"`
	Edge     []string `json:"edge"`
	Unsealed int      `json:"unsealed"`
}

// lockChain opens <path>.chain if needed and takes its exclusive flock.
func (s *sealer) lockChain(path string) error {
	if s.chain == nil {
		f, err := os.OpenFile(path+".chain", os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return fmt.Errorf("open the chain record: %w", err)
		}
		s.chain = f
	}
	if err := flockChain(s.chain, true); err != nil {
		return fmt.Errorf("lock the chain record: %w", err)
	}
	return nil
}

func (s *sealer) unlockChain() {
	if s.chain != nil {
		_ = flockChain(s.chain, false) // closing the file releases it too
	}
}

func (s *sealer) close() error {
	if s.chain == nil {
		return nil
	}
	err := s.chain.Close()
	s.chain = nil
	return err
}

// readChain returns the state the chain record holds, or a zero state.
func (s *sealer) readChain() (sealState, error) {
	fi, err := s.chain.Stat()
	if err != nil {
		return sealState{}, err
	}
	b := make([]byte, fi.Size())
	if _, err := s.chain.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
		return sealState{}, err
	}
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i] // what follows is left of a longer record
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return sealState{}, nil
	}
	var c chainRecord
	if err := json.Unmarshal(b, &c); err != nil {
		return sealState{}, fmt.Errorf("parse: %w", err)
	}
	t, err := treeFromEdge(c.Size, c.Edge)
	if err != nil {
		return sealState{}, err
	}
	st := sealState{t: t, unsealed: c.Unsealed}
	if c.Size > 0 {
		if st.last, err = parseHash(c.Last); err != nil {
			return sealState{}, fmt.Errorf("last: %w", err)
		}
	}
	return st, nil
}

// writeChain records st. It is not fsynced: a process crash keeps it; a
// power failure between a rotation and the next append can leave it
// behind the rotated file, and verify then reports the new file's first
// line (see docs/journal.md).
func (s *sealer) writeChain(st *sealState) error {
	s.chainBuf = appendChainRecord(s.chainBuf[:0], st)
	// Not truncated: readers stop at the first newline, and a record
	// shorter than the last leaves only bytes after it.
	_, err := s.chain.WriteAt(s.chainBuf, 0)
	return err
}

// appendChainRecord appends st's chain record, the JSON encoding of its
// chainRecord, and a newline: by hand, as it is written after every
// append.
func appendChainRecord(dst []byte, st *sealState) []byte {
	dst = append(dst, `{"size":`...)
	dst = strconv.AppendInt(dst, st.t.n, 10)
	dst = append(dst, `,"last":"`...)
	if st.t.n > 0 {
		dst = base64.StdEncoding.AppendEncode(dst, st.last[:])
	}
	dst = append(dst, `","edge":[`...)
	first := true
	for l := range edgeLevels(st.t.n) {
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, st.t.edge[l][:])
		dst = append(dst, '"')
	}
	dst = append(dst, `],"unsealed":`...)
	dst = strconv.AppendInt(dst, int64(st.unsealed), 10)
	return append(dst, "}\n"...)
}

// catchUp returns the state of the file f's first size bytes, and whether
// the file is a new one that must begin with a checkpoint continuing the
// rotated file's tree. The chain and the file are locked.
func (s *sealer) catchUp(f file, size int64) (sealState, bool, error) {
	if s.known && s.st.off == size {
		return s.st, false, nil
	}
	if s.known && s.st.off < size {
		st := s.st
		err := absorb(f, &st, size)
		return st, false, err
	}
	if size == 0 {
		st, err := s.readChain()
		if err != nil {
			return sealState{}, false, fmt.Errorf("read the chain record: %w", err)
		}
		return st, st.t.n > 0, nil
	}
	st, err := recoverSeal(f, size)
	return st, false, err
}

// absorb hashes the lines of f from st.off to size into st.
func absorb(f io.ReaderAt, st *sealState, size int64) error {
	r := bufio.NewReaderSize(io.NewSectionReader(f, st.off, size-st.off), 64<<10)
	var long []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long, chunk...)
			continue
		}
		if errors.Is(err, io.EOF) && len(chunk) == 0 && long == nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read the lines of other writers: %w", err)
		}
		line := chunk
		if long != nil {
			line = append(long, chunk...)
			long = nil
		}
		st.off += int64(len(line))
		line = line[:len(line)-1]
		h := tlog.RecordHash(line)
		if err := st.t.add(h, nil); err != nil {
			return err
		}
		st.last = h
		if bytes.HasPrefix(line, []byte(checkpointPrefix)) {
			st.unsealed = 0
		} else {
			st.unsealed++
		}
	}
}

// recoverSeal reads a file of size bytes (ending in a newline) back to
// its last checkpoint line and forward from there.
func recoverSeal(f file, size int64) (sealState, error) {
	at, err := lastCheckpointAt(f, size)
	if err != nil {
		return sealState{}, fmt.Errorf("find the last checkpoint: %w", err)
	}
	if at < 0 {
		st := sealState{}
		return st, absorb(f, &st, size)
	}
	end, err := lineEnd(f, at, size)
	if err != nil {
		return sealState{}, err
	}
	line := make([]byte, end-at)
	if _, err := f.ReadAt(line, at); err != nil {
		return sealState{}, fmt.Errorf("read the last checkpoint: %w", err)
	}
	var c checkpointLine
	if err := json.Unmarshal(line, &c); err != nil {
		return sealState{}, fmt.Errorf("parse the checkpoint at offset %d: %w", at, err)
	}
	seq, _, _, ok := sealOf(line)
	if !ok {
		return sealState{}, fmt.Errorf("the checkpoint at offset %d is not sealed", at)
	}
	t, err := treeFromEdge(seq-1, c.Edge)
	if err != nil {
		return sealState{}, fmt.Errorf("the checkpoint at offset %d: %w", at, err)
	}
	st := sealState{off: end + 1, t: t, last: tlog.RecordHash(line)}
	if err := st.t.add(st.last, nil); err != nil {
		return sealState{}, err
	}
	return st, absorb(f, &st, size)
}

// lastCheckpointAt returns the offset of the last line of the first size
// bytes of r that is a checkpoint, or -1, reading backwards.
func lastCheckpointAt(r io.ReaderAt, size int64) (int64, error) {
	const chunk = 64 << 10
	marker := []byte("\n" + checkpointPrefix)
	buf := make([]byte, chunk+len(marker))
	for end := size; end > 0; {
		start := max(end-chunk, 0)
		over := min(int64(len(marker)), size-end) // overlap with the chunk after
		b := buf[:end-start+over]
		if _, err := r.ReadAt(b, start); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		if i := bytes.LastIndex(b, marker); i >= 0 {
			return start + int64(i) + 1, nil
		}
		if start == 0 && bytes.HasPrefix(b, []byte(checkpointPrefix)) {
			return 0, nil
		}
		end = start
	}
	return -1, nil
}

// lineEnd returns the offset of the newline ending the line at off.
func lineEnd(r io.ReaderAt, off, size int64) (int64, error) {
	buf := make([]byte, 8<<10)
	for at := off; at < size; {
		n, err := r.ReadAt(buf[:min(int64(len(buf)), size-at)], at)
		if i := bytes.IndexByte(buf[:n], '\n'); i >= 0 {
			return at + int64(i), nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		at += int64(n)
	}
	return 0, fmt.Errorf("the line at offset %d has no newline", off)
}

// appendCheckpoint appends a checkpoint line of st's tree, signed, and
// returns the note.
func (s *sealer) appendCheckpoint(dst []byte, st *sealState) ([]byte, []byte, error) {
	root, err := st.t.root()
	if err != nil {
		return dst, nil, err
	}
	msg, err := note.Sign(&note.Note{Text: checkpointBody(s.signer.Name(), st.t.n, root)}, s.signer)
	if err != nil {
		return dst, nil, fmt.Errorf("sign the checkpoint: %w", err)
	}
	body, err := json.Marshal(checkpointLine{Checkpoint: string(msg), Edge: st.t.edgeList()})
	if err != nil {
		return dst, nil, err
	}
	dst, st.last = appendSealed(dst, body, st.t.n+1, st.last)
	if err := st.t.add(st.last, nil); err != nil {
		return dst, nil, err
	}
	st.unsealed = 0
	return dst, msg, nil
}

// seal returns the sealed lines of b to append to f, whose first size
// bytes are known good, the state once they are appended, and the
// checkpoint note among them, if any. A checkpoint batch gets a
// checkpoint only when lines are unsealed.
func (s *sealer) seal(f file, size int64, b *batch) (out []byte, st sealState, cp []byte, err error) {
	st, begins, err := s.catchUp(f, size)
	if err != nil {
		return nil, st, nil, err
	}
	out = s.buf[:0]
	if begins || (b.checkpoint && st.unsealed > 0) {
		if out, cp, err = s.appendCheckpoint(out, &st); err != nil {
			return nil, st, nil, err
		}
	}
	start := 0
	for _, end := range b.ends {
		var h tlog.Hash
		out, h = appendSealed(out, b.buf[start:end], st.t.n+1, st.last)
		if err := st.t.add(h, nil); err != nil {
			return nil, st, nil, err
		}
		st.last = h
		st.unsealed++
		start = end
	}
	st.off = size + int64(len(out))
	return out, st, cp, nil
}

// commit adopts st once its lines are durable, and records it in the
// chain record.
func (s *sealer) commit(st sealState, out []byte) error {
	s.known, s.st = true, st
	if cap(out) <= maxSpareBatch {
		s.buf = out[:0]
	}
	return s.writeChain(&st)
}

// forget makes the next append read the file back: after a failure or a
// reopen, the file may not be the one known.
func (s *sealer) forget() { s.known = false }

// hashString is a hash as lines and records write it: standard base64.
func hashString(h tlog.Hash) string { return base64.StdEncoding.EncodeToString(h[:]) }
