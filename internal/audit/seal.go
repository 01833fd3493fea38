package audit

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"iter"
	"math/bits"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// A sealed journal is a transparency log in one file. Every line,
// checkpoint lines included, is a leaf of one RFC 6962 Merkle tree: its
// leaf hash is tlog.RecordHash of the line without its newline (SHA-256
// over 0x00 and the bytes). Each line ends with its position and the leaf
// hash of the line before it:
//
//	{...the record...,"seq":42,"prev":"<base64 leaf hash of line 41>"}
//
// (line 1 has "prev":""). A checkpoint line carries a C2SP tlog-checkpoint
// note signed with the seal key, covering every line before it, and the
// right edge of the tree it covers (the roots of its maximal complete
// subtrees, largest first), from which a writer continues the tree without
// reading the lines before it:
//
//	{"checkpoint":"<origin>\n<size>\n<base64 root>\n\n— <origin> <sig>\n","edge":["<base64>",...],"seq":43,"prev":"..."}
//
// The hashing, the tree and the proofs are golang.org/x/mod/sumdb/tlog's;
// the keys and signatures are golang.org/x/mod/sumdb/note's.

// checkpointPrefix starts every checkpoint line and no record line (those
// start with the log entry's level).
const checkpointPrefix = `{"checkpoint":`

// defaultCheckpointLines is the most record lines a writer appends after
// a checkpoint before it appends the next one, whatever the interval.
const defaultCheckpointLines = 1000

// tree is an RFC 6962 tree known by its size and right edge: edge[l] is
// the root of the complete subtree of 2^l leaves that ends the tree's
// leaves, for each bit l set in n. That is what appending a leaf and
// computing the root read, so memory stays flat however long the journal.
type tree struct {
	n    int64
	edge [64]tlog.Hash
}

// ReadHashes serves tlog the edge's hashes; any other index is a bug.
func (t *tree) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		l, k := tlog.SplitStoredHashIndex(x)
		if l >= 64 || t.n>>l&1 == 0 || k != t.n>>l-1 {
			return nil, fmt.Errorf("hash %d is not on the right edge of a tree of %d leaves", x, t.n)
		}
		out[i] = t.edge[l]
	}
	return out, nil
}

// add appends a leaf by its hash. store, when set, sees every hash tlog
// computes, at its storage index: each subtree's root once it is complete.
func (t *tree) add(h tlog.Hash, store func(index int64, h tlog.Hash)) error {
	hs, err := tlog.StoredHashesForRecordHash(t.n, h, t)
	if err != nil {
		return err
	}
	if store != nil {
		base := tlog.StoredHashIndex(0, t.n)
		for i, s := range hs {
			store(base+int64(i), s)
		}
	}
	// The last stored hash is the subtree the new leaf completes, at the
	// level of the lowest bit of n+1; the levels below it are now empty.
	t.edge[len(hs)-1] = hs[len(hs)-1]
	t.n++
	return nil
}

// root is the tree's RFC 6962 root hash.
func (t *tree) root() (tlog.Hash, error) { return tlog.TreeHash(t.n, t) }

// edgeLevels yields the levels of the right edge of a tree of n leaves,
// largest subtree first: the order in which checkpoint lines and the
// chain record write the edge, and read it back.
func edgeLevels(n int64) iter.Seq[int] {
	return func(yield func(int) bool) {
		for l := 63; l >= 0; l-- {
			if n>>l&1 == 1 && !yield(l) {
				return
			}
		}
	}
}

// edgeList is the right edge, largest subtree first.
func (t *tree) edgeList() []string {
	out := make([]string, 0, bits.OnesCount64(uint64(t.n)))
	for l := range edgeLevels(t.n) {
		out = append(out, base64.StdEncoding.EncodeToString(t.edge[l][:]))
	}
	return out
}

// treeFromEdge rebuilds a tree of n leaves from its edgeList.
func treeFromEdge(n int64, edge []string) (tree, error) {
	t := tree{n: n}
	if n < 0 || bits.OnesCount64(uint64(n)) != len(edge) {
		return tree{}, fmt.Errorf("a tree of %d leaves has %d edge hashes, not %d", n, bits.OnesCount64(uint64(max(n, 0))), len(edge))
	}
	i := 0
	for l := range edgeLevels(n) {
		h, err := parseHash(edge[i])
		if err != nil {
			return tree{}, fmt.Errorf("edge hash %d: %w", i, err)
		}
		t.edge[l] = h
		i++
	}
	return t, nil
}

func parseHash(s string) (tlog.Hash, error) {
	var h tlog.Hash
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != len(h) {
		return h, fmt.Errorf("%q is not a base64 SHA-256 hash", s)
	}
	copy(h[:], b)
	return h, nil
}

// appendSealed appends body (a JSON object, with or without its newline)
// as the line at position seq after the line whose leaf hash is prev
// (ignored for seq 1), and returns the line's leaf hash.
func appendSealed(dst, body []byte, seq int64, prev tlog.Hash) ([]byte, tlog.Hash) {
	body = bytes.TrimSuffix(body, []byte("\n"))
	start := len(dst)
	dst = append(dst, body[:len(body)-1]...) // without its closing brace
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendInt(dst, seq, 10)
	dst = append(dst, `,"prev":"`...)
	if seq > 1 {
		dst = base64.StdEncoding.AppendEncode(dst, prev[:])
	}
	dst = append(dst, `"}`...)
	h := tlog.RecordHash(dst[start:])
	return append(dst, '\n'), h
}

// sealOf returns the position and previous leaf hash a sealed line (no
// newline) ends with; ok is false when it does not end as appendSealed
// writes. hasPrev is false for an empty prev (line 1).
func sealOf(line []byte) (seq int64, prev tlog.Hash, hasPrev, ok bool) {
	rest, found := bytes.CutSuffix(line, []byte(`"}`))
	if !found {
		return 0, prev, false, false
	}
	i := bytes.LastIndex(rest, []byte(`,"prev":"`))
	if i < 0 {
		return 0, prev, false, false
	}
	p := rest[i+len(`,"prev":"`):]
	switch len(p) {
	case 0:
	case base64.StdEncoding.EncodedLen(len(prev)):
		var b [33]byte // DecodedLen of 44 characters: an unpadded tail decodes to 33
		n, err := base64.StdEncoding.Decode(b[:], p)
		if err != nil || n != len(prev) {
			return 0, prev, false, false
		}
		copy(prev[:], b[:n])
		hasPrev = true
	default:
		return 0, prev, false, false
	}
	rest = rest[:i]
	j := bytes.LastIndex(rest, []byte(`,"seq":`))
	if j < 0 {
		return 0, prev, false, false
	}
	digits := rest[j+len(`,"seq":`):]
	if len(digits) == 0 || len(digits) > 18 || digits[0] == '0' {
		return 0, prev, false, false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, prev, false, false
		}
		seq = seq*10 + int64(c-'0')
	}
	return seq, prev, hasPrev, true
}

// checkpointLine is a checkpoint line's own fields.
type checkpointLine struct {
	Checkpoint string   `json:"checkpoint"`
	Edge       []string `json:"edge"`
}

// checkpointBody is the C2SP tlog-checkpoint body of a tree: origin,
// size, base64 root hash, one per line.
func checkpointBody(origin string, n int64, root tlog.Hash) string {
	return origin + "\n" + strconv.FormatInt(n, 10) + "\n" + base64.StdEncoding.EncodeToString(root[:]) + "\n"
}

// Checkpoint is a verified C2SP tlog-checkpoint.
type Checkpoint struct {
	Origin string
	Size   int64
	Root   tlog.Hash
	// Note is the signed note, as it was read.
	Note []byte
}

// OpenCheckpoint verifies a signed checkpoint note with the verifiers and
// parses its body. A signature error is a *note.InvalidSignatureError or
// *note.UnverifiedNoteError (no known key signed it).
func OpenCheckpoint(msg []byte, known note.Verifiers) (*Checkpoint, error) {
	n, err := note.Open(msg, known)
	if err != nil {
		return nil, err
	}
	lines := strings.SplitN(n.Text, "\n", 4)
	if len(lines) < 4 {
		return nil, errors.New("checkpoint body is not origin, size and root hash on three lines")
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		return nil, fmt.Errorf("checkpoint size %q is not a decimal tree size", lines[1])
	}
	root, err := parseHash(lines[2])
	if err != nil {
		return nil, fmt.Errorf("checkpoint root: %w", err)
	}
	if lines[0] != n.Sigs[0].Name {
		return nil, fmt.Errorf("checkpoint origin %q is not the name of the key that signed it (%q)", lines[0], n.Sigs[0].Name)
	}
	return &Checkpoint{Origin: lines[0], Size: size, Root: root, Note: msg}, nil
}

// LoadSigner reads a signer key (note.GenerateKey's skey, one line) from
// a file.
func LoadSigner(path string) (note.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read seal key: %w", err)
	}
	s, err := note.NewSigner(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("seal key %s is not a signer key (PRIVATE+KEY+<name>+...): %w", path, err)
	}
	return s, nil
}

// LoadVerifier reads a verifier key (note.GenerateKey's vkey, one line)
// from a file.
func LoadVerifier(path string) (note.Verifier, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read verifier key: %w", err)
	}
	v, err := note.NewVerifier(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("%s is not a verifier key (<name>+<hash>+<key>): %w", path, err)
	}
	return v, nil
}
