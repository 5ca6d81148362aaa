package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/tradewind/tradewind/internal/broker"
)

// natsFlags are the flags every operations command uses to find NATS.
type natsFlags struct {
	url, dataDir string
}

func (f *natsFlags) bind(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&f.url, "nats-url", os.Getenv("NATS_URL"), "NATS URL (env NATS_URL; default: the running system's state file)")
	cmd.PersistentFlags().StringVar(&f.dataDir, "data-dir", envOr("TRADEWIND_DATA_DIR", "./.tradewind"), "data directory of the running system (env TRADEWIND_DATA_DIR)")
}

// connect finds NATS as `publish` does and opens JetStream; close the
// connection when done.
func (f *natsFlags) connect(client string) (*nats.Conn, jetstream.JetStream, error) {
	url, err := resolveNATS(f.url, f.dataDir)
	if err != nil {
		return nil, nil, err
	}
	nc, err := broker.Connect(url, client)
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("JetStream: %w", err)
	}
	return nc, js, nil
}

var errNotConfirmed = errors.New("not confirmed; nothing was changed")

// confirm asks the operator to type want (a consumer name, "yes") before a
// destructive change; yes skips the question (--yes).
func confirm(cmd *cobra.Command, yes bool, question, want string) error {
	if yes {
		return nil
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "%s\nType %q to confirm: ", question, want)
	line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read confirmation: %w", err)
	}
	if strings.TrimSpace(line) != want {
		return errNotConfirmed
	}
	return nil
}

// quietLog is the logger CLI commands give pgboot: its "postgres: using
// DATABASE_URL" progress lines are for serve; a command that found the
// URL in the state file must not claim it came from DATABASE_URL. Only
// warnings and errors get through.
func quietLog() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}
