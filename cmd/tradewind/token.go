package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/tradewind/tradewind/internal/auth"
)

func init() {
	commands = append(commands, func() *cobra.Command {
		var user, role, dataDir, secret string
		var ttl time.Duration
		cmd := &cobra.Command{
			Use:   "token",
			Short: "Issue a user access token (development)",
			Long: `Issue a JWT access token for a customer, signed with TRADEWIND_JWT_SECRET or,
when it is unset, the development key in the data directory (the one a
'make run' system verifies with). For development and tests: production
tokens come from your identity provider, signed with the same key.`,
			Example: `  tradewind token --user c-1
  tradewind token --user ops-anna --role ops --ttl 1h`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				key, dev, err := auth.SigningKey(secret, dataDir)
				if err != nil {
					return err
				}
				tok, c, err := auth.Issue(key, user, role, ttl)
				if err != nil {
					return err
				}
				src := "TRADEWIND_JWT_SECRET"
				if dev {
					src = "the development key in " + dataDir
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "token for %s (role %s, session %s, expires %s), signed with %s:\n",
					c.Subject, c.Role, c.ID, c.ExpiresAt.Format(time.RFC3339), src)
				fmt.Fprintln(cmd.OutOrStdout(), tok)
				return nil
			},
		}
		f := cmd.Flags()
		f.StringVar(&user, "user", "", "customer id (the sub claim; required)")
		f.StringVar(&role, "role", auth.RoleCustomer, "role claim: customer or ops")
		f.DurationVar(&ttl, "ttl", time.Hour, "lifetime (at most TRADEWIND_TOKEN_MAX_LIFETIME, 24h by default)")
		f.StringVar(&dataDir, "data-dir", envOr("TRADEWIND_DATA_DIR", "./.tradewind"), "data directory (env TRADEWIND_DATA_DIR)")
		f.StringVar(&secret, "jwt-secret", os.Getenv("TRADEWIND_JWT_SECRET"), "signing key (env TRADEWIND_JWT_SECRET)")
		_ = cmd.MarkFlagRequired("user")
		return cmd
	})
}
