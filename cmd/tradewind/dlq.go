package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tradewind/tradewind/internal/dlq"
)

func newDLQCmd() *cobra.Command {
	var nf natsFlags
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "Inspect, replay and purge dead letters",
		Long: `Dead letters are messages a consumer gave up on (invalid input, a
permanent error, or TRADEWIND_MAX_DELIVER failed attempts). They wait in the
DLQ stream with their original headers and body, the consumer, the attempts
and the reason. An entry's ID is its sequence in the DLQ stream.

After fixing the cause, replay them: each goes back to its original subject
with a new delivery but the same event id, so consumers that had applied it
skip it and the one that failed applies it once.`,
		Example: `  tradewind dlq list
  tradewind dlq show 12
  tradewind dlq replay 12
  tradewind dlq replay --all --consumer orders-commands
  tradewind dlq purge --consumer orders-commands`,
		Args: cobra.NoArgs,
	}
	nf.bind(cmd)
	cmd.AddCommand(dlqList(&nf), dlqShow(&nf), dlqReplay(&nf), dlqPurge(&nf))
	return cmd
}

func openQueue(cmd *cobra.Command, nf *natsFlags) (*dlq.Queue, func(), error) {
	nc, js, err := nf.connect("tradewind-dlq")
	if err != nil {
		return nil, nil, err
	}
	q, err := dlq.Open(cmd.Context(), js)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return q, nc.Close, nil
}

func dlqList(nf *natsFlags) *cobra.Command {
	var f dlq.Filter
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List dead letters with their consumer, attempts and reason",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q, done, err := openQueue(cmd, nf)
			if err != nil {
				return err
			}
			defer done()
			entries, err := q.List(cmd.Context(), f)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return json.NewEncoder(out).Encode(entriesJSON(entries))
			}
			if len(entries) == 0 {
				fmt.Fprintln(out, "no dead letters")
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tCONSUMER\tSUBJECT\tATTEMPTS\tAGE\tEVENT ID\tREASON")
			for _, e := range entries {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\t%s\n", e.ID, e.Consumer, e.Subject, e.Attempts,
					time.Since(e.At).Round(time.Second), e.EventID, oneLine(e.Reason, 80))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&f.Consumer, "consumer", "", "only this consumer's dead letters")
	cmd.Flags().IntVar(&f.Limit, "limit", 0, "at most this many (0: all)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func dlqShow(nf *natsFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show one dead letter: reason, headers and body",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID(args[0])
			if err != nil {
				return err
			}
			q, done, err := openQueue(cmd, nf)
			if err != nil {
				return err
			}
			defer done()
			e, err := q.Get(cmd.Context(), id)
			if err != nil {
				return err
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(e.View(true))
		},
	}
}

func dlqReplay(nf *natsFlags) *cobra.Command {
	var all bool
	var f dlq.Filter
	cmd := &cobra.Command{
		Use:   "replay ID | --all [--consumer NAME]",
		Short: "Republish dead letters to their original subject (same event id) and remove them",
		Args: func(cmd *cobra.Command, args []string) error {
			if all == (len(args) == 1) || len(args) > 1 {
				return errors.New("give one ID, or --all")
			}
			if !all && f.Consumer != "" {
				return errors.New("--consumer goes with --all")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			q, done, err := openQueue(cmd, nf)
			if err != nil {
				return err
			}
			defer done()
			out := cmd.OutOrStdout()
			var reps []dlq.Replayed
			if all {
				reps, err = q.ReplayAll(cmd.Context(), f)
			} else {
				var id uint64
				if id, err = parseID(args[0]); err == nil {
					var r dlq.Replayed
					if r, err = q.Replay(cmd.Context(), id); err == nil {
						reps = append(reps, r)
					}
				}
			}
			for _, r := range reps {
				dup := ""
				if r.Duplicate {
					dup = " (already replayed: the broker dropped the copy)"
				}
				fmt.Fprintf(out, "replayed %d (%s, event %s) to %s: %s seq %d%s\n",
					r.Entry.ID, r.Entry.Consumer, r.Entry.EventID, r.Entry.Subject, r.Stream, r.Seq, dup)
			}
			if err != nil {
				return err
			}
			if len(reps) == 0 {
				fmt.Fprintln(out, "no dead letters to replay")
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "replay every dead letter (of --consumer)")
	cmd.Flags().StringVar(&f.Consumer, "consumer", "", "with --all: only this consumer's dead letters")
	return cmd
}

func dlqPurge(nf *natsFlags) *cobra.Command {
	var f dlq.Filter
	var yes bool
	cmd := &cobra.Command{
		Use:   "purge [--consumer NAME]",
		Short: "Delete dead letters for good (asks for confirmation)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q, done, err := openQueue(cmd, nf)
			if err != nil {
				return err
			}
			defer done()
			n, err := q.Count(cmd.Context(), f)
			if err != nil {
				return err
			}
			if n == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no dead letters to purge")
				return nil
			}
			what := "every consumer"
			if f.Consumer != "" {
				what = "consumer " + f.Consumer
			}
			if err := confirm(cmd, yes, fmt.Sprintf("This deletes %d dead letters of %s; they cannot be replayed afterwards.", n, what), "purge"); err != nil {
				return err
			}
			n, err = q.Purge(cmd.Context(), f)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "purged %d dead letters\n", n)
			return nil
		},
	}
	cmd.Flags().StringVar(&f.Consumer, "consumer", "", "only this consumer's dead letters")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

func parseID(s string) (uint64, error) {
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil || id == 0 {
		return 0, fmt.Errorf("dead letter ID %q: want a DLQ stream sequence (see `tradewind dlq list`)", s)
	}
	return id, nil
}

func oneLine(s string, n int) string {
	b := []rune(s)
	for i, r := range b {
		if r == '\n' || r == '\r' {
			b[i] = ' '
		}
	}
	if len(b) > n {
		return string(b[:n-1]) + "…"
	}
	return string(b)
}

func entriesJSON(es []dlq.Entry) []dlq.View {
	out := make([]dlq.View, len(es))
	for i, e := range es {
		out[i] = e.View(false)
	}
	return out
}
