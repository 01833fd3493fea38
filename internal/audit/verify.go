package audit

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// maxLineBytes bounds a journal line read back: a record is a few KiB.
const maxLineBytes = 4 << 20

// The kinds of problem verify reports.
const (
	ProblemNotSealed    = "not_sealed"    // a line without seq and prev: inserted, edited, or no seal
	ProblemModified     = "modified"      // the next line records another hash for this one
	ProblemMissing      = "missing"       // lines (or a whole file) are missing before this one
	ProblemReordered    = "reordered"     // a line out of its place
	ProblemDuplicate    = "duplicate"     // a line repeated
	ProblemInserted     = "inserted"      // a line that the chain around it skips
	ProblemTorn         = "torn"          // a last line without its newline
	ProblemMalformed    = "malformed"     // a checkpoint that does not parse, or covers another size
	ProblemBadSignature = "bad_signature" // a checkpoint whose signature does not verify
	ProblemUnknownKey   = "unknown_key"   // a checkpoint signed by no key given
	ProblemRootMismatch = "root_mismatch" // a checkpoint whose root the lines before it do not hash to
	ProblemInconsistent = "inconsistent"  // a checkpoint given that the journal does not extend
	ProblemTruncated    = "truncated"     // the journal ends before a checkpoint given
	ProblemNoCheckpoint = "no_checkpoint" // lines, and no checkpoint at all
)

// Problem is one thing verify found wrong: where (line is 1-based within
// its file; 0 when the problem is the file or the trail as a whole), what
// kind, and in words.
type Problem struct {
	File   string `json:"file"`
	Line   int64  `json:"line"`
	Kind   string `json:"kind"`
	Detail string `json:"detail"`
}

// VerifyResult is verify's answer: lines read, lines a checkpoint covers,
// record lines after the last checkpoint, and the problems, first first.
type VerifyResult struct {
	OK       bool      `json:"ok"`
	Lines    int64     `json:"lines"`
	Sealed   int64     `json:"sealed"`
	Unsealed int64     `json:"unsealed"`
	Problems []Problem `json:"problems"`
}

// Anchor is a checkpoint from outside the journal (the log that shipped
// it off the host): where it was read, and the signed note.
type Anchor struct {
	File string
	Line int64
	Note []byte
}

// ReadAnchors reads the checkpoints of a file: the "checkpoint" field of
// each JSON line (a log that carried them), or the whole file as one
// signed note.
func ReadAnchors(path string) ([]Anchor, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read checkpoint file: %w", err)
	}
	if !bytes.HasPrefix(bytes.TrimSpace(b), []byte("{")) {
		return []Anchor{{File: path, Line: 1, Note: b}}, nil
	}
	var out []Anchor
	for i, line := range bytes.Split(b, []byte("\n")) {
		var l struct {
			Checkpoint string `json:"checkpoint"`
		}
		if json.Unmarshal(line, &l) == nil && l.Checkpoint != "" {
			out = append(out, Anchor{File: path, Line: int64(i + 1), Note: []byte(l.Checkpoint)})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no checkpoint", path)
	}
	return out, nil
}

// Verifier checks the files of a sealed journal, oldest first, as one
// chain, streaming: its memory does not grow with the journal.
type Verifier struct {
	keys    note.Verifiers
	res     VerifyResult
	t       tree
	last    tlog.Hash // leaf hash of the last line
	before  tlog.Hash // and of the line before it
	at      Problem   // where the last line is (file and line)
	anchors []anchorAt
	seen    bool // a checkpoint was checked
	stopped bool
	files   int
}

type anchorAt struct {
	Anchor
	cp *Checkpoint
}

// NewVerifier returns a Verifier for journals sealed with key, checking
// them against the anchors too.
func NewVerifier(key note.Verifier, anchors []Anchor) *Verifier {
	v := &Verifier{keys: note.VerifierList(key)}
	for _, a := range anchors {
		cp, kind, err := v.open(a.Note)
		if err != nil {
			v.problem(a.File, a.Line, kind, err.Error())
			continue
		}
		v.anchors = append(v.anchors, anchorAt{a, cp})
	}
	slices.SortStableFunc(v.anchors, func(a, b anchorAt) int { return cmp.Compare(a.cp.Size, b.cp.Size) })
	return v
}

// open verifies a checkpoint note and names the kind of its failure.
func (v *Verifier) open(msg []byte) (*Checkpoint, string, error) {
	cp, err := OpenCheckpoint(msg, v.keys)
	if err == nil {
		return cp, "", nil
	}
	if _, ok := errors.AsType[*note.InvalidSignatureError](err); ok {
		return nil, ProblemBadSignature, err
	}
	if _, ok := errors.AsType[*note.UnverifiedNoteError](err); ok {
		return nil, ProblemUnknownKey, fmt.Errorf("signed by no key given: %w", err)
	}
	return nil, ProblemMalformed, err
}

func (v *Verifier) problem(file string, line int64, kind, detail string) {
	v.res.Problems = append(v.res.Problems, Problem{File: file, Line: line, Kind: kind, Detail: detail})
}

// stop records the problem that ends the reading: past a break in the
// chain, nothing after it is evidence.
func (v *Verifier) stop(file string, line int64, kind, detail string) {
	v.problem(file, line, kind, detail)
	v.stopped = true
}

// Read checks the next file of the journal. An error is the file's
// reading failing, not a problem found in it.
func (v *Verifier) Read(name string, r io.Reader) error {
	v.files++
	return eachLine(r, func(n int64, line []byte, complete bool) bool {
		if !complete {
			v.stop(name, n, ProblemTorn, "the last line has no newline: a write cut short, or the file was cut")
			return false
		}
		v.line(name, n, line)
		return !v.stopped
	})
}

// Stopped reports whether a problem ended the reading.
func (v *Verifier) Stopped() bool { return v.stopped }

// line checks one line: its place in the chain, then, for a checkpoint,
// its signature and root.
func (v *Verifier) line(file string, n int64, line []byte) {
	seq, prev, hasPrev, ok := sealOf(line)
	if !ok {
		detail := "the line does not end with its seq and prev: inserted or edited"
		if v.t.n == 0 {
			detail = "the line does not end with its seq and prev: not a sealed journal"
		}
		v.stop(file, n, ProblemNotSealed, detail)
		return
	}
	h := tlog.RecordHash(line)
	want := v.t.n + 1
	switch {
	case seq == want && want == 1 && hasPrev:
		v.stop(file, n, ProblemMissing, "the first line records a line before it: the journal's first file is missing")
		return
	case seq == want && want > 1 && (!hasPrev || prev != v.last):
		v.stop(v.at.File, v.at.Line, ProblemModified, fmt.Sprintf("line %d of %s records another hash for it", n, file))
		return
	case seq < want && h == v.last:
		v.stop(file, n, ProblemDuplicate, fmt.Sprintf("line %d repeats the line before it", seq))
		return
	case seq == want-1 && hasPrev && prev == v.before:
		v.stop(v.at.File, v.at.Line, ProblemInserted, fmt.Sprintf("the chain skips it: line %d of %s follows the line before it", n, file))
		return
	case seq < want:
		v.stop(file, n, ProblemReordered, fmt.Sprintf("its seq is %d where %d was expected", seq, want))
		return
	case seq > want:
		detail := fmt.Sprintf("lines %d to %d are missing before it (seq %d where %d was expected)", want, seq-1, seq, want)
		if n == 1 && v.files > 1 {
			detail += ": the file before it ends early, or a file of the rotation is missing"
		}
		v.stop(file, n, ProblemMissing, detail)
		return
	}
	if !v.checkAnchors() {
		return
	}
	if bytes.HasPrefix(line, []byte(checkpointPrefix)) {
		if !v.checkpoint(file, n, line) {
			return
		}
	} else {
		v.res.Unsealed++
	}
	if err := v.t.add(h, nil); err != nil {
		v.stop(file, n, ProblemMalformed, err.Error())
		return
	}
	v.before, v.last = v.last, h
	v.at = Problem{File: file, Line: n}
	v.res.Lines++
}

// checkAnchors compares the tree with the anchors of its size.
func (v *Verifier) checkAnchors() bool {
	for len(v.anchors) > 0 && v.anchors[0].cp.Size <= v.t.n {
		a := v.anchors[0]
		v.anchors = v.anchors[1:]
		root, err := v.t.root()
		if err != nil {
			v.stop(a.File, a.Line, ProblemMalformed, err.Error())
			return false
		}
		if root != a.cp.Root {
			v.stop(a.File, a.Line, ProblemInconsistent, fmt.Sprintf(
				"the journal's first %d lines hash to %s, not the checkpoint's %s: lines it covered were altered, or the journal was re-sealed",
				a.cp.Size, hashString(root), hashString(a.cp.Root)))
			return false
		}
		v.seal()
	}
	return true
}

// seal notes that a checkpoint covers the tree as it is.
func (v *Verifier) seal() {
	v.seen = true
	v.res.Sealed = v.t.n
	v.res.Unsealed = 0
}

// checkpoint checks a checkpoint line against the tree before it.
func (v *Verifier) checkpoint(file string, n int64, line []byte) bool {
	var c checkpointLine
	if err := json.Unmarshal(line, &c); err != nil {
		v.stop(file, n, ProblemMalformed, fmt.Sprintf("a checkpoint line that does not parse: %v", err))
		return false
	}
	cp, kind, err := v.open([]byte(c.Checkpoint))
	if err != nil {
		v.stop(file, n, kind, err.Error())
		return false
	}
	if cp.Size != v.t.n {
		v.stop(file, n, ProblemMalformed, fmt.Sprintf("the checkpoint covers %d lines but follows %d", cp.Size, v.t.n))
		return false
	}
	root, err := v.t.root()
	if err != nil {
		v.stop(file, n, ProblemMalformed, err.Error())
		return false
	}
	if root != cp.Root {
		v.stop(file, n, ProblemRootMismatch, fmt.Sprintf("the %d lines before it hash to %s, not the signed %s: a line before it was altered",
			cp.Size, hashString(root), hashString(cp.Root)))
		return false
	}
	v.seal()
	return true
}

// Result finishes the check: anchors the journal never reached, and a
// journal no checkpoint covers.
func (v *Verifier) Result(lastFile string) *VerifyResult {
	if !v.stopped {
		v.checkAnchors()
	}
	if !v.stopped {
		for _, a := range v.anchors {
			v.stop(a.File, a.Line, ProblemTruncated, fmt.Sprintf("the checkpoint covers %d lines; the journal ends after %d: lines were cut from its end, or its last file is missing",
				a.cp.Size, v.t.n))
			break
		}
	}
	if !v.stopped && v.res.Lines > 0 && !v.seen {
		v.stop(lastFile, 0, ProblemNoCheckpoint, "no checkpoint covers any line: the journal is not sealed, or its checkpoints were removed")
	}
	v.res.OK = len(v.res.Problems) == 0
	if v.res.Problems == nil {
		v.res.Problems = []Problem{}
	}
	return &v.res
}

// VerifyFiles checks the files of a journal, oldest first, against key
// and the anchors. An error is a file that cannot be read.
func VerifyFiles(files []string, key note.Verifier, anchors []Anchor) (*VerifyResult, error) {
	v := NewVerifier(key, anchors)
	for _, name := range files {
		if v.Stopped() {
			break
		}
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		err = v.Read(name, f)
		_ = f.Close()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
	}
	return v.Result(files[len(files)-1]), nil
}

// eachLine calls fn with each line of r (1-based number, without its
// newline; complete is false for a last line without one) until fn
// returns false. A line longer than maxLineBytes is an error.
func eachLine(r io.Reader, fn func(n int64, line []byte, complete bool) bool) error {
	br := bufio.NewReaderSize(r, 256<<10)
	var long []byte
	var n int64
	for {
		chunk, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			if len(long)+len(chunk) > maxLineBytes {
				return fmt.Errorf("line %d is longer than %d bytes", n+1, maxLineBytes)
			}
			long = append(long, chunk...)
			continue
		}
		line := chunk
		if long != nil {
			line = append(long, chunk...)
			long = nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		if len(line) > 0 {
			n++
			complete := line[len(line)-1] == '\n'
			if complete {
				line = line[:len(line)-1]
			}
			if !fn(n, line, complete) {
				return nil
			}
		}
		if err != nil {
			return nil
		}
	}
}
