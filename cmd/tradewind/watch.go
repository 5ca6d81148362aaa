package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/tradewind/tradewind/internal/broker"
)

// newWatchCmd prints events as the saga emits them: the tour's second
// shell, with no nats CLI to install.
func newWatchCmd() *cobra.Command {
	var natsURL, dataDir, stream string
	var subjects []string
	var all, data bool
	var count int
	cmd := &cobra.Command{
		Use:   "watch",
		Short: "Print the events (or commands) of a running Tradewind as they arrive",
		Long: `Follow a stream of the running system and print one line per message:
stream position, CloudEvent type, subject (the aggregate id), and with
--data its JSON data. New messages only, unless --all. The system is found
through the state file, or --nats-url / NATS_URL.`,
		Example: `  tradewind watch                          # every saga event from now on
  tradewind watch --subject 'evt.orders.>'  # only the orders' events
  tradewind watch --stream COMMANDS --all   # every command so far, then new ones`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			url, err := resolveNATS(natsURL, dataDir)
			if err != nil {
				return err
			}
			nc, err := broker.Connect(url, "tradewind-watch")
			if err != nil {
				return err
			}
			defer nc.Close()
			js, err := jetstream.New(nc)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			cfg := jetstream.OrderedConsumerConfig{FilterSubjects: subjects, DeliverPolicy: jetstream.DeliverNewPolicy,
				InactiveThreshold: time.Minute}
			if all {
				cfg.DeliverPolicy = jetstream.DeliverAllPolicy
			}
			cons, err := js.OrderedConsumer(ctx, stream, cfg)
			if err != nil {
				return fmt.Errorf("watch %s: %w", stream, err)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(cmd.ErrOrStderr(), "watching %s (Ctrl-C to stop)\n", stream)
			for n := 0; count == 0 || n < count; n++ {
				m, err := cons.Next(jetstream.FetchContext(ctx))
				if errors.Is(err, context.Canceled) || ctx.Err() != nil {
					return nil
				}
				if err != nil {
					return fmt.Errorf("watch %s: %w", stream, err)
				}
				meta, _ := m.Metadata()
				var seq uint64
				if meta != nil {
					seq = meta.Sequence.Stream
				}
				h := m.Headers()
				line := fmt.Sprintf("%s:%d  %s  %s", stream, seq, h.Get("ce-type"), h.Get("ce-subject"))
				if data {
					var compact json.RawMessage
					if json.Unmarshal(m.Data(), &compact) == nil {
						line += "  " + string(compact)
					}
				}
				fmt.Fprintln(out, line)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&natsURL, "nats-url", os.Getenv("NATS_URL"), "NATS URL (env NATS_URL; default: the running system's state file)")
	f.StringVar(&dataDir, "data-dir", envOr("TRADEWIND_DATA_DIR", "./.tradewind"), "data directory of the running system (env TRADEWIND_DATA_DIR)")
	f.StringVar(&stream, "stream", broker.StreamEvents, "stream to follow: EVENTS, COMMANDS, NOTIFICATIONS")
	f.StringSliceVar(&subjects, "subject", nil, "only these subjects (NATS wildcards)")
	f.BoolVar(&all, "all", false, "start at the stream's first message")
	f.BoolVar(&data, "data", false, "print each message's JSON data too")
	f.IntVar(&count, "count", 0, "stop after this many messages (0: never)")
	return cmd
}
