package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/tradewind/tradewind/internal/consumers"
)

func newConsumersCmd() *cobra.Command {
	var nf natsFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "consumers",
		Short: "Show each durable consumer's position, pending, ack-pending, redeliveries and dead letters",
		Long: `List every durable JetStream consumer: the stream sequence it delivered
last (position), its ack floor, how many messages wait (pending: the lag),
how many are delivered but unacknowledged, out for redelivery, and its dead
letters in the DLQ stream.`,
		Example: `  tradewind consumers
  tradewind consumers reset projection-orders --to 1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			nc, js, err := nf.connect("tradewind-consumers")
			if err != nil {
				return err
			}
			defer nc.Close()
			list, err := consumers.List(cmd.Context(), js)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return json.NewEncoder(out).Encode(list)
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "STREAM\tCONSUMER\tPOSITION\tACK FLOOR\tPENDING\tACK PENDING\tREDELIVERED\tDEAD LETTERS")
			for _, c := range list {
				name := c.Name
				if c.Paused {
					name += " (paused)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\n", c.Stream, name, c.Delivered, c.AckFloor,
					c.Pending, c.AckPending, c.Redelivered, c.DeadLetters)
			}
			return tw.Flush()
		},
	}
	nf.bind(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(consumersReset(&nf))
	return cmd
}

func consumersReset(nf *natsFlags) *cobra.Command {
	var to uint64
	var stream string
	var yes bool
	cmd := &cobra.Command{
		Use:   "reset NAME --to SEQ",
		Short: "Reposition a consumer to a stream sequence (asks for confirmation)",
		Long: `Make consumer NAME deliver from stream sequence SEQ next. Going back
re-delivers messages it handled: handlers skip them through the inbox, and
projections rebuild from there. Unacknowledged deliveries are forgotten.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("to") {
				return fmt.Errorf("--to SEQ is required")
			}
			nc, js, err := nf.connect("tradewind-consumers")
			if err != nil {
				return err
			}
			defer nc.Close()
			c, err := consumers.Find(cmd.Context(), js, stream, args[0])
			if err != nil {
				return err
			}
			q := fmt.Sprintf("Consumer %s on %s is at %d (ack floor %d, %d pending); it will deliver from %d next.",
				c.Name, c.Stream, c.Delivered, c.AckFloor, c.Pending, to)
			if err := confirm(cmd, yes, q, c.Name); err != nil {
				return err
			}
			after, err := consumers.Reset(cmd.Context(), js, c.Stream, c.Name, to)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "reset %s on %s to %s: %d pending\n", after.Name, after.Stream, strconv.FormatUint(to, 10), after.Pending)
			return nil
		},
	}
	cmd.Flags().Uint64Var(&to, "to", 0, "stream sequence to deliver next")
	cmd.Flags().StringVar(&stream, "stream", "", "the consumer's stream, when the name is on several")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}
