package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/tradewind/tradewind/internal/app"
	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/pgboot"
	"github.com/tradewind/tradewind/internal/projector"
	"github.com/tradewind/tradewind/internal/store"
	"github.com/tradewind/tradewind/projections"
)

// projFlags find NATS and PostgreSQL as the other operations commands do.
type projFlags struct{ natsURL, dbURL, dataDir string }

func (f *projFlags) bind(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&f.natsURL, "nats-url", os.Getenv("NATS_URL"), "NATS URL (env NATS_URL; default: the running system's state file)")
	cmd.PersistentFlags().StringVar(&f.dbURL, "database-url", os.Getenv("DATABASE_URL"), "PostgreSQL URL (env DATABASE_URL; default: the running system's state file, else localhost:5432)")
	cmd.PersistentFlags().StringVar(&f.dataDir, "data-dir", envOr("TRADEWIND_DATA_DIR", "./.tradewind"), "data directory of the running system (env TRADEWIND_DATA_DIR)")
}

// open connects to both; call closeAll when done.
func (f *projFlags) open(ctx context.Context) (pool *pgxpool.Pool, js jetstream.JetStream, closeAll func(), err error) {
	url := f.dbURL
	if url == "" {
		if st, err := app.ReadState(f.dataDir); err == nil {
			url = st.DatabaseURL
		}
	}
	res, err := pgboot.Resolve(ctx, pgboot.Options{DatabaseURL: url, DataDir: f.dataDir, Logger: quietLog()})
	if err != nil {
		return nil, nil, nil, err
	}
	if pool, err = store.Open(ctx, res.URL); err != nil {
		_ = res.Stop(ctx)
		return nil, nil, nil, err
	}
	natsURL, err := resolveNATS(f.natsURL, f.dataDir)
	if err != nil {
		pool.Close()
		_ = res.Stop(ctx)
		return nil, nil, nil, err
	}
	nc, err := broker.Connect(natsURL, "tradewind-projections")
	if err != nil {
		pool.Close()
		_ = res.Stop(ctx)
		return nil, nil, nil, err
	}
	if js, err = jetstream.New(nc); err != nil {
		nc.Close()
		pool.Close()
		_ = res.Stop(ctx)
		return nil, nil, nil, fmt.Errorf("JetStream: %w", err)
	}
	return pool, js, func() { nc.Close(); pool.Close(); _ = res.Stop(context.WithoutCancel(ctx)) }, nil
}

func newProjectionsCmd() *cobra.Command {
	var f projFlags
	cmd := &cobra.Command{
		Use:   "projections",
		Short: "Inspect and rebuild the read models",
		Long: `Read models (projections) are built from the EVENTS stream into
PostgreSQL. Each has a checkpoint (the stream position it has applied) per
version in public.projection_checkpoints.`,
	}
	f.bind(cmd)
	cmd.AddCommand(projectionsStatus(&f), projectionsRebuild(&f))
	return cmd
}

func projectionsStatus(f *projFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show each projection's versions, position and lag",
		Long: `For every projection version: whether readers see it (live), the stream
position it has applied, the lag (messages of its subjects still to apply
when it last applied a batch), how far it trails the stream's head, and when
it last moved. A non-live version is a rebuild in progress (or one that
crashed: the next rebuild drops it).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			pool, js, closeAll, err := f.open(ctx)
			if err != nil {
				return err
			}
			defer closeAll()
			cps, err := projector.Checkpoints(ctx, pool)
			if err != nil {
				return err
			}
			stream, err := projector.ReadStream(ctx, js)
			if err != nil {
				return err
			}
			head := stream.LastSeq
			// Each version against the stream it counts in; the inbox's
			// command positions against COMMANDS.
			states := make([]string, len(cps))
			var stale []string
			for i, c := range cps {
				states[i] = "ok"
				if err := projector.CheckStream(c, stream); err != nil {
					states[i] = "STALE"
					if c.Live {
						stale = append(stale, err.Error())
					}
				} else if c.LastSeq < head {
					states[i] = "catching up"
				}
			}
			var inboxErr string
			if err := projector.CheckCommandsInbox(ctx, pool, js); err != nil {
				inboxErr = err.Error()
			}
			out := cmd.OutOrStdout()
			if asJSON {
				type row struct {
					projector.Checkpoint
					State string `json:"state"`
				}
				rows := make([]row, len(cps))
				for i, c := range cps {
					rows[i] = row{c, states[i]}
				}
				return json.NewEncoder(out).Encode(map[string]any{"head": head, "stream_created": stream.Created,
					"projections": rows, "stale": stale, "inbox": inboxErr})
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "PROJECTION\tVERSION\tLIVE\tPOSITION\tLAG\tBEHIND HEAD\tSTATE\tUPDATED\n")
			for i, c := range cps {
				behind := "0"
				switch {
				case head > c.LastSeq:
					behind = strconv.FormatUint(head-c.LastSeq, 10)
				case c.LastSeq > head:
					behind = "ahead by " + strconv.FormatUint(c.LastSeq-head, 10)
				}
				fmt.Fprintf(tw, "%s\t%d\t%t\t%d\t%d\t%s\t%s\t%s\n", c.Name, c.Version, c.Live, c.LastSeq, c.Lag, behind, states[i], c.UpdatedAt.Format("2006-01-02 15:04:05"))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			for _, s := range stale {
				fmt.Fprintln(out, s)
			}
			if inboxErr != "" {
				fmt.Fprintln(out, inboxErr)
			}
			if len(stale) > 0 {
				return fmt.Errorf("%d read models are stale: %s", len(stale), projector.RebuildHint)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func projectionsRebuild(f *projFlags) *cobra.Command {
	var batch int
	var quiet, all bool
	cmd := &cobra.Command{
		Use:   "rebuild NAME | --all",
		Short: "Rebuild a projection from the start of the stream with zero downtime",
		Long: `Build the next version of projection NAME into new tables from the start
of the EVENTS stream while the live version keeps answering and updating,
catch up with it, then switch readers to the new version in one
transaction and drop the old one. Safe to interrupt: the unfinished
version is dropped by the next rebuild; readers never see it.`,
		Example: `  tradewind projections rebuild orders
  tradewind projections rebuild --all   # e.g. after NATS was reset: every read model from the current stream`,
		Args: func(cmd *cobra.Command, args []string) error {
			if all && len(args) > 0 {
				return fmt.Errorf("give a projection NAME or --all, not both")
			}
			if !all && len(args) != 1 {
				return fmt.Errorf("give a projection NAME (one of %s) or --all", strings.Join(projectionNames(), ", "))
			}
			return nil
		},
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return projectionNames(), cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ps := projections.All()
			if !all {
				p, err := projections.ByName(args[0])
				if err != nil {
					return err
				}
				ps = []projector.Projection{p}
			}
			ctx := cmd.Context()
			pool, js, closeAll, err := f.open(ctx)
			if err != nil {
				return err
			}
			defer closeAll()
			for _, p := range ps {
				if err := rebuildOne(cmd, pool, js, p, batch, quiet); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "rebuild every projection, one after the other")
	cmd.Flags().IntVar(&batch, "batch", 5000, "events per transaction")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	return cmd
}

func projectionNames() []string {
	var names []string
	for _, p := range projections.All() {
		names = append(names, p.Name())
	}
	return names
}

// rebuildOne rebuilds p, with a progress bar unless quiet.
func rebuildOne(cmd *cobra.Command, pool *pgxpool.Pool, js jetstream.JetStream, p projector.Projection, batch int, quiet bool) error {
	ctx := cmd.Context()
	opts := projector.RebuildOptions{BatchSize: batch}
	if !quiet {
		var bar *progressbar.ProgressBar
		opts.Progress = func(pos, head uint64) {
			if bar == nil {
				bar = progressbar.NewOptions64(int64(max(head, 1)),
					progressbar.OptionSetWriter(cmd.ErrOrStderr()),
					progressbar.OptionSetDescription("rebuild "+p.Name()),
					progressbar.OptionShowCount(), progressbar.OptionShowIts(),
					progressbar.OptionSetItsString("positions"), progressbar.OptionThrottle(100e6))
			}
			_ = bar.Set64(int64(pos))
		}
		defer func() {
			if bar != nil {
				_ = bar.Finish()
				fmt.Fprintln(cmd.ErrOrStderr())
			}
		}()
	}
	res, err := projector.Rebuild(ctx, pool, js, p, opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "rebuilt %s: v%d -> v%d at position %d, %d events in %s\n",
		res.Name, res.OldVersion, res.NewVersion, res.Position, res.Events, res.Took.Round(1e6))
	return nil
}
