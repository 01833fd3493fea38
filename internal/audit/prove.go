package audit

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Proof is one record of a sealed journal with what a third party needs
// to check it against the checkpoint alone: the line, its leaf index, the
// signed checkpoint, and the RFC 6962 inclusion proof.
type Proof struct {
	Line       string   `json:"line"`
	Index      int64    `json:"index"`
	Checkpoint string   `json:"checkpoint"`
	Proof      []string `json:"proof"`
}

// ErrNoRecord is returned by ProveFiles when no completed record of the
// audit id is in the files, or no checkpoint covers it yet.
var ErrNoRecord = errors.New("no sealed completed record")

// ProveFiles finds the completed record of auditID in the files of a
// journal (oldest first) and proves it against the latest checkpoint that
// covers it. It reads the files twice, keeping only the hashes the proof
// needs.
func ProveFiles(files []string, auditID string) (*Proof, error) {
	q := &Query{AuditID: auditID}
	p := &Proof{Index: -1}
	var size int64
	var n int64
	err := eachFileLine(files, func(line []byte) bool {
		if p.Index < 0 {
			if _, ok := q.Match(line); ok {
				p.Index, p.Line = n, string(line)
			}
		} else if bytes.HasPrefix(line, []byte(checkpointPrefix)) {
			var c checkpointLine
			if json.Unmarshal(line, &c) == nil {
				if s, ok := checkpointSize(c.Checkpoint); ok && s > p.Index {
					p.Checkpoint, size = c.Checkpoint, s
				}
			}
		}
		n++
		return true
	})
	if err != nil {
		return nil, err
	}
	if p.Index < 0 {
		return nil, fmt.Errorf("audit id %s: %w", auditID, ErrNoRecord)
	}
	if p.Checkpoint == "" {
		return nil, fmt.Errorf("audit id %s: %w: no checkpoint covers line %d yet", auditID, ErrNoRecord, p.Index+1)
	}

	// The indexes tlog reads depend on the sizes alone: ask it which, then
	// collect them while hashing the lines again.
	need := map[int64]tlog.Hash{}
	if _, err := tlog.ProveRecord(size, p.Index, tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		for _, i := range idx {
			need[i] = tlog.Hash{}
		}
		return make([]tlog.Hash, len(idx)), nil
	})); err != nil {
		return nil, err
	}
	var t tree
	store := func(i int64, h tlog.Hash) {
		if _, ok := need[i]; ok {
			need[i] = h
		}
	}
	var aerr error
	if err := eachFileLine(files, func(line []byte) bool {
		aerr = t.add(tlog.RecordHash(line), store)
		return aerr == nil && t.n < size
	}); err != nil {
		return nil, err
	}
	if aerr != nil {
		return nil, aerr
	}
	if t.n < size {
		return nil, fmt.Errorf("the journal changed while it was read: %d lines, the checkpoint covers %d", t.n, size)
	}
	proof, err := tlog.ProveRecord(size, p.Index, tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for k, i := range idx {
			out[k] = need[i]
		}
		return out, nil
	}))
	if err != nil {
		return nil, err
	}
	p.Proof = make([]string, len(proof))
	for i, h := range proof {
		p.Proof[i] = hashString(h)
	}
	return p, nil
}

// checkpointSize reads a checkpoint note's tree size without checking its
// signature (CheckProof does).
func checkpointSize(msg string) (int64, bool) {
	lines := strings.SplitN(msg, "\n", 3)
	if len(lines) < 3 {
		return 0, false
	}
	n, err := strconv.ParseInt(lines[1], 10, 64)
	return n, err == nil && n >= 0
}

// eachFileLine calls fn with each line of the files, in order, until it
// returns false.
func eachFileLine(files []string, fn func(line []byte) bool) error {
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		stop := false
		err = eachLine(f, func(_ int64, line []byte, _ bool) bool {
			stop = !fn(line)
			return !stop
		})
		_ = f.Close()
		if err != nil {
			return fmt.Errorf("read %s: %w", name, err)
		}
		if stop {
			return nil
		}
	}
	return nil
}

// maxProofBytes bounds a proof file: a line, a note and 64 hashes.
const maxProofBytes = 8 << 20

// CheckProof checks a proof (Proof's JSON) with the verifier key alone:
// the checkpoint's signature, then the line's inclusion in its tree. It
// returns the checkpoint on success.
func CheckProof(r io.Reader, key note.Verifier) (*Checkpoint, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxProofBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read the proof: %w", err)
	}
	if len(b) > maxProofBytes {
		return nil, fmt.Errorf("the proof is larger than %d bytes", maxProofBytes)
	}
	var p Proof
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("the proof is not a proof object: %w", err)
	}
	cp, err := OpenCheckpoint([]byte(p.Checkpoint), note.VerifierList(key))
	if err != nil {
		return nil, fmt.Errorf("the checkpoint: %w", err)
	}
	if p.Index < 0 || p.Index >= cp.Size {
		return nil, fmt.Errorf("index %d is not in the checkpoint's tree of %d lines", p.Index, cp.Size)
	}
	proof := make(tlog.RecordProof, len(p.Proof))
	for i, s := range p.Proof {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(b) != len(proof[i]) {
			return nil, fmt.Errorf("proof hash %d is not a base64 SHA-256 hash", i)
		}
		copy(proof[i][:], b)
	}
	if err := tlog.CheckRecord(proof, cp.Size, cp.Root, p.Index, tlog.RecordHash([]byte(p.Line))); err != nil {
		return nil, fmt.Errorf("the line is not in the checkpoint's tree at index %d: %w", p.Index, err)
	}
	return cp, nil
}
