package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tradewind/tradewind/internal/flags"
)

func newFlagsCmd() *cobra.Command {
	var nf natsFlags
	cmd := &cobra.Command{
		Use:   "flags",
		Short: "List and change feature flags (gradual rollouts by customer)",
		Long: `Feature flags live in the NATS KV bucket ` + flags.Bucket + `; every running
instance watches it and applies a change within milliseconds, no restart.

A flag is on for a customer when the customer is not on its deny-list and
either is on its allow-list or falls in its rollout: a stable hash of the
flag name and customer id, so a customer keeps its answer, and raising the
percentage only adds customers. An unknown flag is off.

Flags the system reads: fraud-check (payments: a fraud rule runs before
authorization for the customers it is on for).`,
		Example: `  tradewind flags set fraud-check --percent 25 --allow c-42,c-43
  tradewind flags set fraud-check --on
  tradewind flags list
  tradewind flags delete fraud-check`,
	}
	nf.bind(cmd)
	cmd.AddCommand(flagsList(&nf), flagsGet(&nf), flagsSet(&nf), flagsDelete(&nf))
	return cmd
}

// admin opens the running system's flags bucket.
func (f *natsFlags) admin(cmd *cobra.Command) (*flags.Admin, func(), error) {
	nc, js, err := f.connect("tradewind-flags")
	if err != nil {
		return nil, nil, err
	}
	a, err := flags.Existing(cmd.Context(), js)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return a, nc.Close, nil
}

func flagsList(nf *natsFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List every flag with its rollout and lists",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, done, err := nf.admin(cmd)
			if err != nil {
				return err
			}
			defer done()
			list, err := a.List(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				if list == nil {
					list = []flags.Flag{}
				}
				return json.NewEncoder(out).Encode(list)
			}
			if len(list) == 0 {
				fmt.Fprintln(out, "no flags")
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "FLAG\tROLLOUT\tALLOW\tDENY\tUPDATED")
			for _, f := range list {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", f.Name, rollout(f.Percent),
					listed(f.Allow), listed(f.Deny), f.UpdatedAt.Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func flagsGet(nf *natsFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "get NAME",
		Short: "Print one flag as JSON",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, done, err := nf.admin(cmd)
			if err != nil {
				return err
			}
			defer done()
			f, err := a.Get(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(f)
		},
	}
}

func flagsSet(nf *natsFlags) *cobra.Command {
	var percent float64
	var on, off bool
	var allow, deny []string
	cmd := &cobra.Command{
		Use:   "set NAME (--percent P | --on | --off) [--allow IDS] [--deny IDS]",
		Short: "Create or change a flag: its rollout and allow-/deny-lists",
		Long: `Change only what is given: --percent (0..100, steps of 0.01), --on
(100) or --off (0) set the rollout; --allow and --deny replace the lists of
customer ids (--allow "" clears it). A new flag starts off with empty
lists. Concurrent changes are compare-and-set, none is lost.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fs := cmd.Flags()
			rollouts := 0
			for _, name := range []string{"percent", "on", "off"} {
				if fs.Changed(name) {
					rollouts++
				}
			}
			switch {
			case rollouts > 1:
				return errors.New("give one of --percent, --on and --off")
			case rollouts == 0 && !fs.Changed("allow") && !fs.Changed("deny"):
				return errors.New("nothing to set: give --percent, --on, --off, --allow or --deny")
			}
			a, done, err := nf.admin(cmd)
			if err != nil {
				return err
			}
			defer done()
			f, rev, err := a.Update(cmd.Context(), args[0], func(f *flags.Flag) {
				switch {
				case on:
					f.Percent = 100
				case off:
					f.Percent = 0
				case fs.Changed("percent"):
					f.Percent = percent
				}
				if fs.Changed("allow") {
					f.Allow = nonEmpty(allow)
				}
				if fs.Changed("deny") {
					f.Deny = nonEmpty(deny)
				}
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "set %s: %s, allow %s, deny %s (revision %d)\n",
				f.Name, rollout(f.Percent), listed(f.Allow), listed(f.Deny), rev)
			return nil
		},
	}
	cmd.Flags().Float64Var(&percent, "percent", 0, "share of customers the flag is on for, 0..100")
	cmd.Flags().BoolVar(&on, "on", false, "on for every customer (--percent 100)")
	cmd.Flags().BoolVar(&off, "off", false, "off but for the allow-list (--percent 0)")
	cmd.Flags().StringSliceVar(&allow, "allow", nil, "customer ids the flag is always on for (replaces the list)")
	cmd.Flags().StringSliceVar(&deny, "deny", nil, "customer ids the flag is always off for, beating --allow (replaces the list)")
	return cmd
}

func flagsDelete(nf *natsFlags) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a flag: it reads as off everywhere (asks for confirmation)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, done, err := nf.admin(cmd)
			if err != nil {
				return err
			}
			defer done()
			f, err := a.Get(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			q := fmt.Sprintf("Flag %s is %s (allow %s, deny %s); deleted, it is off for every customer.",
				f.Name, rollout(f.Percent), listed(f.Allow), listed(f.Deny))
			if err := confirm(cmd, yes, q, f.Name); err != nil {
				return err
			}
			if err := a.Delete(cmd.Context(), f.Name); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted %s\n", f.Name)
			return nil
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

func rollout(percent float64) string {
	switch percent {
	case 0:
		return "off"
	case 100:
		return "on"
	}
	return strconv.FormatFloat(percent, 'f', -1, 64) + "%"
}

func listed(ids []string) string {
	const shown = 5
	switch {
	case len(ids) == 0:
		return "-"
	case len(ids) > shown:
		return strings.Join(ids[:shown], ",") + fmt.Sprintf(",… (%d)", len(ids))
	}
	return strings.Join(ids, ",")
}

// nonEmpty drops empty ids (`--allow ""` clears a list).
func nonEmpty(ids []string) []string {
	var out []string
	for _, id := range ids {
		if id = strings.TrimSpace(id); id != "" {
			out = append(out, id)
		}
	}
	return out
}
