package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tradewind/tradewind/internal/natsauth"
)

// newNATSConfigCmd writes the NATS users of a deployment (internal/natsauth).
func newNATSConfigCmd() *cobra.Command {
	var out string
	var sets []string
	cmd := &cobra.Command{
		Use:   "nats-config",
		Short: "Generate NATS users, passwords and permissions for a deployment (auth.conf + credentials/)",
		Long: `Writes into --out:
  credentials/<user>  each user's password (0600), generated once and kept
                      on later runs: one user per role, "tradewind" (every
                      role), "ops", and "producer-<context>" per context
                      that receives commands;
  auth.conf           the nats-server authorization block: every user with
                      its permissions and the bcrypt hash of its password
                      (include it from the server's configuration).

A process connects as its roles' user with TRADEWIND_NATS_CREDENTIALS set to
the credentials directory (or NATS_URL=nats://<user>:<password>@host:4222).
--roles-set adds a user for a process running several roles (e.g.
"orders,relay" gives the user "orders_relay"). Rotate a password by deleting
its file and running the command again (docs/security.md, NATS accounts).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var extra [][]string
			for _, s := range sets {
				extra = append(extra, splitRoles(s))
			}
			ps, err := natsauth.Principals(extra...)
			if err != nil {
				return err
			}
			names := make([]string, len(ps))
			for i, p := range ps {
				names[i] = p.User
			}
			credDir := filepath.Join(out, "credentials")
			pws, err := natsauth.Ensure(credDir, names)
			if err != nil {
				return err
			}
			conf, err := natsauth.ServerConfig(ps, pws)
			if err != nil {
				return err
			}
			path := filepath.Join(out, "auth.conf")
			if err := os.WriteFile(path+".tmp", conf, 0o600); err != nil {
				return fmt.Errorf("write %s: %w", path, err)
			}
			if err := os.Rename(path+".tmp", path); err != nil {
				return fmt.Errorf("write %s: %w", path, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (%d users) and %s/<user>: %s\n", path, len(ps), credDir, strings.Join(names, ", "))
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "./nats-auth", "directory to write auth.conf and credentials/ into")
	cmd.Flags().StringArrayVar(&sets, "roles-set", nil, `a user for a process running several roles, e.g. "orders,relay" (repeatable)`)
	return cmd
}

func splitRoles(s string) []string {
	var out []string
	for _, r := range strings.Split(s, ",") {
		if r = strings.TrimSpace(r); r != "" {
			out = append(out, r)
		}
	}
	return out
}
