// Command tradewind is the event-driven commerce backbone: `serve` runs the
// system, the other subcommands publish, inspect and operate it.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "tradewind",
		Short: "Tradewind: an event-driven commerce backbone on NATS JetStream and PostgreSQL",
		Long: `Tradewind receives commands and events from producer services, runs a
choreographed order saga with exactly-once effects, builds read models in
PostgreSQL and pushes notifications to browsers.

Start everything in one process with 'tradewind serve' (or 'make run').`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	for _, c := range commands {
		root.AddCommand(c())
	}
	return root
}

// commands are the subcommand constructors, one file each.
var commands = []func() *cobra.Command{newNATSConfigCmd}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRoot().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "tradewind:", err)
		os.Exit(1)
	}
}
