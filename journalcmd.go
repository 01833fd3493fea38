package lrocancel

import (
	"bufio"
	"crypto/rand"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"

	"github.com/lro-cancel/lro_cancel/internal/audit"
)

// `caddy lro-cancel journal ...`: the auditor's tools for a sealed
// journal, offline. Exit status: 0 intact (or found), 1 altered (or not
// proven, or nothing found by prove), 2 bad usage or unreadable input.

func journalCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "journal verify|query|prove|check-proof|keygen",
		Short: "Verifies, searches and proves records of a sealed audit journal",
		Long: `
Offline tools for the audit journal (audit { journal <path> { seal <key> } }):

  verify       checks every line against the chain and every checkpoint
  query        prints the records that match filters
  prove        exports one record with its inclusion proof and checkpoint
  check-proof  checks such a proof with the verifier key alone
  keygen       makes a seal (signer) key and its verifier key
`,
	}
	cmd.AddCommand(journalVerifyCommand(), journalQueryCommand(), journalProveCommand(),
		journalCheckProofCommand(), journalKeygenCommand())
	return cmd
}

func journalVerifyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "verify --key <verifier-key-file> [--checkpoint <file>]... [--format text|json] <journal>...",
		Short: "Checks a sealed journal's chain and checkpoints",
		Long: `
Checks the files of a sealed journal, oldest first (the files of a rotation),
as one chain: each line's seq and prev, each checkpoint's signature and root,
and the journal against the checkpoints given with --checkpoint (a file
holding one signed note, or a log whose JSON lines carry "checkpoint"
fields, as http.handlers.lro_cancel.checkpoint writes them). It reads the
files once, in constant memory.

Exit status: 0 when intact (it says how many lines, how many sealed, and how
many record lines after the last checkpoint are not yet sealed); 1 when
altered, naming the first bad file and line; 2 on bad usage.
`,
	}
	cmd.Flags().String("key", "", "The verifier key file")
	cmd.Flags().StringArray("checkpoint", nil, "A file of checkpoints shipped off the host (repeatable)")
	cmd.Flags().String("format", "text", "Output: text or json")
	cmd.RunE = caddycmd.WrapCommandFuncForCobra(cmdJournalVerify)
	cmd.SetFlagErrorFunc(usageError)
	return cmd
}

func cmdJournalVerify(fl caddycmd.Flags) (int, error) {
	format := fl.String("format")
	if format != "text" && format != "json" {
		return exitUsage, fmt.Errorf("--format must be text or json, not %q", format)
	}
	if len(fl.Args()) == 0 {
		return exitUsage, errors.New("verify needs at least one journal file")
	}
	key, err := verifierKey(fl)
	if err != nil {
		return exitUsage, err
	}
	var anchors []audit.Anchor
	for _, f := range stringArray(fl, "checkpoint") {
		a, err := audit.ReadAnchors(f)
		if err != nil {
			return exitUsage, err
		}
		anchors = append(anchors, a...)
	}
	res, err := audit.VerifyFiles(fl.Args(), key, anchors)
	if err != nil {
		return exitUsage, err
	}
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	if format == "json" {
		b, err := json.Marshal(res)
		if err != nil {
			return exitUsage, err
		}
		fmt.Fprintf(w, "%s\n", b)
	} else {
		for _, p := range res.Problems {
			fmt.Fprintf(w, "%s:%d: %s: %s\n", p.File, p.Line, p.Kind, p.Detail)
		}
		verdict := "intact"
		if !res.OK {
			verdict = "ALTERED"
		}
		fmt.Fprintf(w, "%s: %d lines, %d sealed, %d unsealed\n", verdict, res.Lines, res.Sealed, res.Unsealed)
	}
	if !res.OK {
		p := res.Problems[0]
		return exitRefuses, fmt.Errorf("the journal was altered: %s line %d: %s", p.File, p.Line, p.Kind)
	}
	return exitForwards, nil
}

// verifierKey reads --key.
func verifierKey(fl caddycmd.Flags) (note.Verifier, error) {
	path := fl.String("key")
	if path == "" {
		return nil, errors.New("--key <verifier-key-file> is required")
	}
	return audit.LoadVerifier(path)
}

func journalQueryCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use: "query [--since <RFC 3339>] [--until <RFC 3339>] [--principal <p>] [--service <s>] [--method <m>] [--operation <o>] " +
			"[--decision <d>] [--audit-id <id>] [--reason <substring>] [--stage received|completed|all] [--format jsonl|csv|text] <journal>...",
		Short: "Prints the records of journal files that match every filter",
		Long: `
Prints the records that match every filter given (default: completed
records), --since and --until on the record's ts, inclusive. --format jsonl
prints the journal's own record lines byte for byte, never its checkpoint
lines; csv and text print the main fields.

Exit status: 0 when the files were read (whether or not a record matched),
2 on bad usage or an unreadable file.
`,
	}
	f := cmd.Flags()
	f.String("since", "", "Records at or after this time (RFC 3339)")
	f.String("until", "", "Records at or before this time (RFC 3339)")
	f.String("principal", "", "The principal")
	f.String("service", "", "The API service")
	f.String("method", "", "The method (discovery id)")
	f.String("operation", "", "The operation name")
	f.String("decision", "", "The decision")
	f.String("audit-id", "", "The audit id")
	f.String("reason", "", "A substring of the request reason")
	f.String("stage", "completed", "received, completed or all")
	f.String("format", "jsonl", "Output: jsonl, csv or text")
	cmd.RunE = caddycmd.WrapCommandFuncForCobra(cmdJournalQuery)
	cmd.SetFlagErrorFunc(usageError)
	return cmd
}

func cmdJournalQuery(fl caddycmd.Flags) (int, error) {
	q := &audit.Query{
		Principal: fl.String("principal"), Service: fl.String("service"), Method: fl.String("method"),
		Operation: fl.String("operation"), Decision: fl.String("decision"), AuditID: fl.String("audit-id"),
		Reason: fl.String("reason"), Stage: fl.String("stage"),
	}
	for _, t := range []struct {
		flag string
		to   *time.Time
	}{{"since", &q.Since}, {"until", &q.Until}} {
		if v := fl.String(t.flag); v != "" {
			ts, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return exitUsage, fmt.Errorf("--%s: %w", t.flag, err)
			}
			*t.to = ts
		}
	}
	if err := q.Validate(); err != nil {
		return exitUsage, fmt.Errorf("--stage: %w", err)
	}
	format := fl.String("format")
	if len(fl.Args()) == 0 {
		return exitUsage, errors.New("query needs at least one journal file")
	}
	w := bufio.NewWriterSize(os.Stdout, 64<<10)
	defer w.Flush()
	var emit func(line []byte, r *audit.QueryRecord) error
	switch format {
	case "jsonl":
		emit = func(line []byte, _ *audit.QueryRecord) error {
			_, _ = w.Write(line)
			return w.WriteByte('\n')
		}
	case "csv":
		cw := csv.NewWriter(w)
		defer cw.Flush()
		_ = cw.Write([]string{"ts", "audit_id", "stage", "decision", "status", "service", "method", "operation", "principal", "reason", "user_project"})
		emit = func(_ []byte, r *audit.QueryRecord) error {
			status := ""
			if r.Status != 0 {
				status = strconv.Itoa(r.Status)
			}
			return cw.Write([]string{r.TS.Format(time.RFC3339Nano), r.AuditID, r.Stage, r.Decision, status,
				r.Service, r.Method, r.Operation, r.Principal, r.Reason, r.UserProject})
		}
	case "text":
		emit = func(_ []byte, r *audit.QueryRecord) error {
			fmt.Fprintf(w, "%s %s %s %s %d %s %s %s", r.TS.Format(time.RFC3339Nano), r.AuditID, r.Stage,
				r.Decision, r.Status, r.Service, r.Method, r.Operation)
			if r.Principal != "" {
				fmt.Fprintf(w, " principal=%s", r.Principal)
			}
			if r.Reason != "" {
				fmt.Fprintf(w, " reason=%q", r.Reason)
			}
			if r.UserProject != "" {
				fmt.Fprintf(w, " user_project=%s", r.UserProject)
			}
			return w.WriteByte('\n')
		}
	default:
		return exitUsage, fmt.Errorf("--format must be jsonl, csv or text, not %q", format)
	}
	if err := audit.QueryFiles(fl.Args(), q, emit); err != nil {
		return exitUsage, err
	}
	return exitForwards, nil
}

func journalProveCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "prove --audit-id <id> <journal>...",
		Short: "Exports one record with its inclusion proof",
		Long: `
Prints one JSON object: the completed record line of the audit id (verbatim),
its leaf index, the signed note of the latest checkpoint covering it, and the
RFC 6962 inclusion proof, so that one record can be handed to a third party
without the rest of the trail (see check-proof).

Exit status: 0 when proven; 1 when the record is not there or no checkpoint
covers it yet; 2 on bad usage or an unreadable file.
`,
	}
	cmd.Flags().String("audit-id", "", "The record's audit id")
	cmd.RunE = caddycmd.WrapCommandFuncForCobra(cmdJournalProve)
	cmd.SetFlagErrorFunc(usageError)
	return cmd
}

func cmdJournalProve(fl caddycmd.Flags) (int, error) {
	id := fl.String("audit-id")
	if id == "" || len(fl.Args()) == 0 {
		return exitUsage, errors.New("prove needs --audit-id <id> and at least one journal file")
	}
	p, err := audit.ProveFiles(fl.Args(), id)
	if errors.Is(err, audit.ErrNoRecord) {
		return exitRefuses, err
	}
	if err != nil {
		return exitUsage, err
	}
	b, err := json.Marshal(p)
	if err != nil {
		return exitUsage, err
	}
	fmt.Printf("%s\n", b)
	return exitForwards, nil
}

func journalCheckProofCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "check-proof --key <verifier-key-file> <proof-file>",
		Short: "Checks a record's proof with the verifier key alone",
		Long: `
Checks a proof made by prove: the checkpoint's signature with the verifier
key, then the record line's inclusion in the checkpoint's tree.

Exit status: 0 when the proof holds; 1 when it does not; 2 on bad usage or
an unreadable file.
`,
	}
	cmd.Flags().String("key", "", "The verifier key file")
	cmd.RunE = caddycmd.WrapCommandFuncForCobra(cmdJournalCheckProof)
	cmd.SetFlagErrorFunc(usageError)
	return cmd
}

func cmdJournalCheckProof(fl caddycmd.Flags) (int, error) {
	if len(fl.Args()) != 1 {
		return exitUsage, errors.New("check-proof needs one <proof-file>")
	}
	key, err := verifierKey(fl)
	if err != nil {
		return exitUsage, err
	}
	f, err := os.Open(fl.Args()[0])
	if err != nil {
		return exitUsage, err
	}
	defer f.Close()
	cp, err := audit.CheckProof(f, key)
	if err != nil {
		return exitRefuses, fmt.Errorf("the proof does not hold: %w", err)
	}
	fmt.Printf("the proof holds: the line is leaf of %s's tree of %d lines\n", cp.Origin, cp.Size)
	return exitForwards, nil
}

func journalKeygenCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keygen --name <origin> --key <file> --pub <file>",
		Short: "Makes a seal key and its verifier key",
		Long: `
Writes a new Ed25519 signer key (the journal's seal key, mode 0600) and its
verifier key (for verify and check-proof), in Go's note format, each on one
line with a trailing newline. The name is the checkpoints' origin, e.g. the
gateway's host name and "/audit". Existing files are not overwritten.

Exit status: 0 when written; 2 on bad usage or a file that cannot be written.
`,
	}
	cmd.Flags().String("name", "", "The key's name: the checkpoints' origin")
	cmd.Flags().String("key", "", "Where to write the signer key (mode 0600)")
	cmd.Flags().String("pub", "", "Where to write the verifier key")
	cmd.RunE = caddycmd.WrapCommandFuncForCobra(cmdJournalKeygen)
	cmd.SetFlagErrorFunc(usageError)
	return cmd
}

func cmdJournalKeygen(fl caddycmd.Flags) (int, error) {
	name, keyFile, pubFile := fl.String("name"), fl.String("key"), fl.String("pub")
	if name == "" || keyFile == "" || pubFile == "" || len(fl.Args()) != 0 {
		return exitUsage, errors.New("keygen needs --name, --key and --pub, and no arguments")
	}
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		return exitUsage, fmt.Errorf("generate a key named %q: %w", name, err)
	}
	if err := writeNew(keyFile, skey, 0o600); err != nil {
		return exitUsage, err
	}
	if err := writeNew(pubFile, vkey, 0o644); err != nil {
		return exitUsage, err
	}
	fmt.Printf("signer key: %s\nverifier key: %s\n", keyFile, pubFile)
	return exitForwards, nil
}

// writeNew writes one line to a file that must not exist yet.
func writeNew(path, line string, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	err = f.Chmod(mode) // whatever the umask
	if err == nil {
		_, err = io.WriteString(f, line+"\n")
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
