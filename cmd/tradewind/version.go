package main

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"
)

// newVersionCmd builds the `version` subcommand.
func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "tradewind %s (%s)\n", version, runtime.Version())
		},
	}
}
