package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/tradewind/tradewind/internal/auth"
	"github.com/tradewind/tradewind/internal/config"
)

func init() {
	commands = append(commands, func() *cobra.Command {
		var user, role, dataDir, secret, secretFile, audience string
		var ttl time.Duration
		cmd := &cobra.Command{
			Use:   "token",
			Short: "Issue a user access token (development)",
			Long: `Issue a JWT access token for a customer or an operator, signed with
TRADEWIND_JWT_SECRET(_FILE) or, when it is unset, the development key in
the data directory (the one a 'make run' system verifies with). In
production, customers' tokens usually come from your identity provider
(TRADEWIND_IDP_JWKS_URL); this command mints operators' tokens with the
shared secret. The token goes to stdout, nothing else does.`,
			Example: `  tradewind token --user c-1
  tradewind token --user ops-anna --role ops --ttl 1h`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				cfg := config.Config{JWTSecret: secret, JWTSecretFile: secretFile}
				secrets, err := cfg.TokenSecrets()
				if err != nil {
					return err
				}
				key, dev, err := auth.SigningKey(string(secrets.Current), dataDir)
				if err != nil {
					return err
				}
				tok, c, err := auth.Issue(key, user, role, ttl, auth.ForAudience(audience))
				if err != nil {
					return err
				}
				src := "the configured TRADEWIND_JWT_SECRET"
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
		f.StringVar(&secret, "jwt-secret", "", "signing key (env TRADEWIND_JWT_SECRET; prefer the file)")
		secret = os.Getenv("TRADEWIND_JWT_SECRET") // not a displayed default: --help never shows it
		f.StringVar(&secretFile, "jwt-secret-file", os.Getenv("TRADEWIND_JWT_SECRET_FILE"), "file holding the signing key (env TRADEWIND_JWT_SECRET_FILE)")
		f.StringVar(&audience, "audience", envOr("TRADEWIND_JWT_AUDIENCE", auth.DefaultAudience), "aud claim: the verifiers' TRADEWIND_JWT_AUDIENCE (env TRADEWIND_JWT_AUDIENCE)")
		_ = cmd.MarkFlagRequired("user")
		return cmd
	})
}
