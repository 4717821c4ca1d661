package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/egressgate/egressgate/audit"
)

func auditCommand() *cobra.Command {
	var stateDir, file, bottle string
	var all, asJSON bool
	var last int
	cmd := &cobra.Command{
		Use:   "audit [--state-dir DIR | --file FILE] [--bottle NAME] [--all] [-n N]",
		Short: "Show what the agents tried: the last refusals (or all requests) of the audit trail",
		Long: `Read the audit trail serve and control write (STATE_DIR/audit.log, one JSON
record per agent request and per refused or tunnelled CONNECT, with its
rotated .gz backups beside it) and print its
last refusals in a table: when, which bottle and agent, what was asked, and
why it was refused. --all shows every decision; --json prints the records.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				file = filepath.Join(stateDir, audit.FileName)
			}
			// The rotated, compressed backups beside the file count too:
			// the last refusals may be older than the last rotation.
			records, bad, err := audit.TailFiles(file, audit.Filter{Bottle: bottle, All: all}, last)
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("no audit trail at %s: is egressgate serve or control running with --state-dir %s?", file, stateDir)
			}
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				for _, r := range records {
					if err := enc.Encode(r); err != nil {
						return err
					}
				}
				return nil
			}
			if bad > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "egressgate audit: skipped %d lines of %s that are not records\n", bad, file)
			}
			return printAudit(out, records, all)
		},
	}
	f := cmd.Flags()
	f.StringVar(&stateDir, "state-dir", ".egressgate", "egressgate's state directory (as for serve or control)")
	f.StringVar(&file, "file", "", "the audit log to read (default STATE_DIR/audit.log)")
	f.StringVar(&bottle, "bottle", "", "only this bottle's records")
	f.BoolVar(&all, "all", false, "every decision, not only refusals")
	f.IntVarP(&last, "last", "n", 20, "how many records, the most recent")
	f.BoolVar(&asJSON, "json", false, "print the records as JSON lines")
	return cmd
}

func printAudit(w io.Writer, records []audit.Record, all bool) error {
	if len(records) == 0 {
		what := "refusals"
		if all {
			what = "records"
		}
		_, err := fmt.Fprintf(w, "no %s in the audit trail\n", what)
		return err
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tBOTTLE\tAGENT\tREQUEST\tSTATUS\tDECISION\tREASON")
	for _, r := range records {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", r.Time.UTC().Format(time.RFC3339), oneLine(r.Bottle), orDash(r.Agent),
			requestText(r), r.Status, oneLine(r.Decision), orDash(r.Reason))
	}
	return tw.Flush()
}

// requestText is what was asked: "CONNECT evil.test:443",
// "GET chatgpt.com/backend-api/…".
func requestText(r audit.Record) string {
	target := r.Host
	if r.Port != 0 {
		target += ":" + strconv.FormatUint(uint64(r.Port), 10)
	}
	return oneLine(r.Method + " " + target + r.Path)
}
