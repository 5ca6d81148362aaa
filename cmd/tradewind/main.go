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

	"github.com/tradewind/tradewind/internal/app"
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
	root.AddCommand(subcommands()...)
	return root
}

// subcommands are every subcommand of tradewind, one constructor per file:
// this list is the one place a new subcommand is added.
func subcommands() []*cobra.Command {
	return []*cobra.Command{
		newServeCmd(),
		newMigrateCmd(),
		newPublishCmd(),
		newLoadCmd(),
		newCheckCmd(),
		newConsumersCmd(),
		newDLQCmd(),
		newProjectionsCmd(),
		newFlagsCmd(),
		newKeysCmd(),
		newTokenCmd(),
		newPaymentProviderCmd(),
		newVersionCmd(),
		newNATSConfigCmd(),
		newWatchCmd(),
		newResetCmd(),
		newAnalystRoleCmd(),
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	app.Version = version // reported by discovery and tradewind_build_info
	if err := newRoot().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "tradewind:", err)
		os.Exit(1)
	}
}
