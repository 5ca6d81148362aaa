package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/tradewind/tradewind/internal/config"
)

const secret = "0123456789abcdef0123456789abcdef-test"

// parse binds a fresh Config with the code's defaults (the environment's
// Tradewind variables cleared) and parses args.
func parse(t *testing.T, env map[string]string, args ...string) config.Config {
	t.Helper()
	settings(t) // clears every Tradewind variable for the test
	for k, v := range env {
		t.Setenv(k, v)
	}
	var c config.Config
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	c.Bind(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestModeFollowsTheListenAddresses(t *testing.T) {
	cases := []struct {
		name string
		args []string
		env  map[string]string
		dev  bool
	}{
		{"make run defaults", nil, nil, true},
		{"localhost", []string{"--http-addr", "localhost:8080"}, nil, true},
		{"IPv6 loopback", []string{"--http-addr", "[::1]:8080"}, nil, true},
		{"all interfaces", []string{"--http-addr", "0.0.0.0:8080"}, nil, false},
		{"empty host", []string{"--http-addr", ":8080"}, nil, false},
		{"a host name", []string{"--http-addr", "api.internal:8080"}, nil, false},
		{"embedded NATS on all interfaces", []string{"--nats-listen", "0.0.0.0:4222"}, nil, false},
		{"external NATS: its listen setting is unused", []string{"--nats-listen", "0.0.0.0:4222", "--nats-url", "nats://n:4222"}, nil, true},
		{"--dev", []string{"--http-addr", "0.0.0.0:8080", "--dev"}, nil, true},
		{"TRADEWIND_DEV=1", []string{"--http-addr", "0.0.0.0:8080"}, map[string]string{"TRADEWIND_DEV": "1"}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := parse(t, tc.env, tc.args...)
			if got := c.Development(); got != tc.dev {
				t.Errorf("Development() = %v, want %v", got, tc.dev)
			}
		})
	}
}

func TestProductionModeRequiresTokenCredentials(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "jwt")
	short := filepath.Join(dir, "short")
	if err := os.WriteFile(good, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(short, []byte("too-short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	prod := []string{"--http-addr", "0.0.0.0:8080"}
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want []string // substrings of the error; none: valid
	}{
		{"no secret", prod, nil, []string{"production mode (TRADEWIND_HTTP_ADDR 0.0.0.0:8080 is not a loopback address)", "TRADEWIND_JWT_SECRET_FILE", "--dev"}},
		{"no secret, roles without tokens", append(prod, "--roles", "orders,relay"), nil, nil},
		{"secret in the environment", prod, map[string]string{"TRADEWIND_JWT_SECRET": secret}, nil},
		{"secret file", append(prod, "--jwt-secret-file", good), nil, nil},
		{"JWKS only", append(prod, "--idp-jwks-url", "https://idp.example/.well-known/jwks.json", "--idp-issuer", "https://idp.example/", "--idp-audience", "tradewind"), nil, nil},
		{"development", append(prod, "--dev"), nil, nil},
		{"short secret", prod, map[string]string{"TRADEWIND_JWT_SECRET": "short"}, []string{"TRADEWIND_JWT_SECRET: want at least 32 bytes, got 5"}},
		{"short secret file", append(prod, "--jwt-secret-file", short), nil, []string{"TRADEWIND_JWT_SECRET_FILE " + short + ": want at least 32 bytes"}},
		{"missing secret file", append(prod, "--jwt-secret-file", filepath.Join(dir, "nope")), nil, []string{"TRADEWIND_JWT_SECRET_FILE:"}},
		{"secret twice", append(prod, "--jwt-secret-file", good), map[string]string{"TRADEWIND_JWT_SECRET": secret}, []string{"set one of them, not both"}},
		{"previous without current", []string{"--jwt-previous-secret-file", good}, nil, []string{"TRADEWIND_JWT_PREVIOUS_SECRET: set only together"}},
		{"JWKS without issuer and audience", append(prod, "--idp-jwks-url", "https://idp.example/jwks"), nil, []string{"TRADEWIND_IDP_ISSUER: required", "TRADEWIND_IDP_AUDIENCE: required"}},
		{"JWKS over plain http", append(prod, "--idp-jwks-url", "http://idp.example/jwks", "--idp-issuer", "i", "--idp-audience", "a"), nil, []string{"want https"}},
		{"JWKS over http on loopback", append(prod, "--idp-jwks-url", "http://127.0.0.1:9999/jwks", "--idp-issuer", "i", "--idp-audience", "a"), nil, nil},
		{"issuer without JWKS", []string{"--idp-issuer", "i"}, nil, []string{"set TRADEWIND_IDP_JWKS_URL too"}},
		{"bad TRADEWIND_DEV", nil, map[string]string{"TRADEWIND_DEV": "yes please"}, []string{`TRADEWIND_DEV "yes please"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := parse(t, tc.env, tc.args...)
			err := c.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate accepted it, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error shows the secret:\n%v", err)
			}
		})
	}
}

func TestSecretsNeverShowAsDefaults(t *testing.T) {
	settings(t)
	t.Setenv("TRADEWIND_JWT_SECRET", secret)
	t.Setenv("TRADEWIND_JWT_PREVIOUS_SECRET", secret+"-old")
	var c config.Config
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	c.Bind(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if c.JWTSecret != secret || c.JWTPreviousSecret != secret+"-old" {
		t.Fatal("the secrets were not taken from the environment")
	}
	if usage := fs.FlagUsages(); strings.Contains(usage, secret) {
		t.Errorf("--help shows the secret:\n%s", usage)
	}
	for _, s := range config.Settings() {
		if strings.Contains(s.Default, secret) {
			t.Errorf("setting %s documents the secret as its default", s.Env)
		}
	}
	ts, err := c.TokenSecrets()
	if err != nil || string(ts.Current) != secret || string(ts.Previous) != secret+"-old" {
		t.Errorf("TokenSecrets = %q, %q, %v", ts.Current, ts.Previous, err)
	}
}
