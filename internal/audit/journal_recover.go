package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"

	"go.uber.org/zap"
)

// completeInterrupted appends a completed record, decision interrupted,
// for every received record of the last recoveryWindow bytes that has no
// completed record after it. It runs at open, while this is the file's
// only writer, so a received record without its completed one belongs to
// a request that no running gateway holds.
func (j *Journal) completeInterrupted() error {
	if j.seal != nil {
		if err := j.seal.lockChain(j.path); err != nil {
			return err
		}
		defer j.seal.unlockChain()
	}
	if err := j.f.Lock(); err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	n, read, err := j.completeInterruptedLocked()
	if uerr := j.f.Unlock(); err == nil && uerr != nil {
		err = fmt.Errorf("unlock: %w", uerr)
	}
	if err != nil {
		return fmt.Errorf("complete the records of interrupted requests: %w", err)
	}
	if n > 0 {
		j.log.Warn("completed the audit records of requests a crash interrupted",
			zap.String("journal", j.path),
			zap.Int("interrupted", n),
			zap.Int64("bytes_read", read))
	}
	return nil
}

// completeInterruptedLocked does it under the file lock, and returns how
// many records it completed and how many bytes it read.
func (j *Journal) completeInterruptedLocked() (n int, read int64, err error) {
	fi, err := j.f.Stat()
	if err != nil {
		return 0, 0, fmt.Errorf("stat: %w", err)
	}
	recs, read, err := interrupted(j.f, fi.Size())
	if err != nil || len(recs) == 0 {
		return 0, read, err
	}
	b := &batch{}
	for i := range recs {
		line, err := j.encode(&recs[i])
		if err != nil {
			return 0, read, err
		}
		b.buf = append(b.buf, line.Bytes()...)
		b.ends = append(b.ends, len(b.buf))
		b.records++
		line.Free()
	}
	// The batch has no timeout: the open that runs this is not a request.
	return b.records, read, j.appendLocked(b)
}

// interrupted reads the last recoveryWindow bytes of a journal of size
// bytes that ends in a newline, and returns, in file order, the completed
// record with decision interrupted of each received record there that no
// later completed record of the same audit id follows, and how many bytes
// it read. A line cut by the window's start, or that is not a record, is
// skipped.
func interrupted(r io.ReaderAt, size int64) ([]Record, int64, error) {
	start := max(size-recoveryWindow, 0)
	from := max(start-1, 0) // the byte before the window says whether it starts a line
	data := make([]byte, size-from)
	if n, err := r.ReadAt(data, from); n < len(data) {
		return nil, 0, fmt.Errorf("read the last %d bytes: %w", size-start, err)
	}
	if start > 0 {
		// Skip the line the window cuts, or the newline just before it.
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			data = data[i+1:]
		} else {
			data = nil
		}
	}
	var out []Record
	unpaired := map[string]int{} // audit id → its record's index in out
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		var l journalLine
		if json.Unmarshal(line, &l) != nil || l.AuditID == "" {
			continue
		}
		switch l.Stage {
		case StageReceived:
			if _, dup := unpaired[l.AuditID]; !dup {
				unpaired[l.AuditID] = len(out)
				out = append(out, l.interrupted())
			}
		case StageCompleted:
			if i, ok := unpaired[l.AuditID]; ok {
				out[i].AuditID = ""
				delete(unpaired, l.AuditID)
			}
		}
	}
	out = slices.DeleteFunc(out, func(r Record) bool { return r.AuditID == "" })
	return out, size - start, nil
}

// journalLine is what recovery reads of a journal line: the pairing keys,
// at the top level in either format, and the identity of the request, the
// fields a received record has: flat in FormatJSON, in the protoPayload
// in FormatCloudAuditLog.
type journalLine struct {
	AuditID        string   `json:"audit_id"`
	Stage          Stage    `json:"stage"`
	Service        string   `json:"service"`
	Method         string   `json:"method"`
	Operation      string   `json:"operation"`
	Principal      string   `json:"principal"`
	TokenID        string   `json:"token_id"`
	ScopesAccepted []string `json:"scopes_accepted"`
	ScopeUsed      string   `json:"scope_used"`
	ClientIP       string   `json:"client_ip"`
	UserAgent      string   `json:"user_agent"`
	Protocol       string   `json:"protocol"`

	ProtoPayload json.RawMessage `json:"protoPayload"`
}

// interrupted is the completed record of a received line whose request
// never finished: what is known of it, and no status. A payload that does
// not parse leaves only the audit id known.
func (l *journalLine) interrupted() Record {
	if l.ProtoPayload != nil {
		r, _ := cloudIdentity(l.ProtoPayload)
		r.AuditID, r.Stage, r.Decision = l.AuditID, StageCompleted, Interrupted
		return r
	}
	return Record{
		AuditID:        l.AuditID,
		Stage:          StageCompleted,
		Decision:       Interrupted,
		Service:        l.Service,
		Method:         l.Method,
		Operation:      l.Operation,
		Principal:      l.Principal,
		TokenID:        l.TokenID,
		ScopesAccepted: l.ScopesAccepted,
		ScopeUsed:      l.ScopeUsed,
		ClientIP:       l.ClientIP,
		UserAgent:      l.UserAgent,
		Protocol:       l.Protocol,
	}
}
