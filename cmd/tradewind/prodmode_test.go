package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/internal/auth"
	"github.com/tradewind/tradewind/internal/testenv"
)

// clearCredentialEnv unsets the variables that would change the mode or
// configure credentials, for the duration of the test.
func clearCredentialEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{"TRADEWIND_DEV", "TRADEWIND_JWT_SECRET", "TRADEWIND_JWT_SECRET_FILE",
		"TRADEWIND_JWT_PREVIOUS_SECRET", "TRADEWIND_JWT_PREVIOUS_SECRET_FILE", "TRADEWIND_IDP_JWKS_URL",
		"TRADEWIND_IDP_ISSUER", "TRADEWIND_IDP_AUDIENCE", "TRADEWIND_ROLES"} {
		t.Setenv(k, "") // restored after the test
		_ = os.Unsetenv(k)
	}
}

func TestServeRefusesProductionModeWithoutASecret(t *testing.T) {
	clearCredentialEnv(t)
	cmd := newRoot()
	cmd.SetArgs([]string{"serve", "--http-addr", "0.0.0.0:0"})
	err := cmd.Execute()
	if err == nil {
		t.Fatal("serve started in production mode without token credentials")
	}
	for _, want := range []string{"production mode", "TRADEWIND_HTTP_ADDR 0.0.0.0:0 is not a loopback address",
		"TRADEWIND_JWT_SECRET_FILE", "TRADEWIND_IDP_JWKS_URL", "--dev"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
}

// apiKeyRE matches an API key's prefix and id (auth.Keys.Create).
var apiKeyRE = regexp.MustCompile(regexp.QuoteMeta(auth.KeyPrefix) + `[0-9a-f]{16}_`)

// lockedBuffer collects a process's stderr while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	t   *testing.T
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.t.Log(strings.TrimRight(string(p), "\n"))
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestServeInProductionModeStartsWithASecretAndPrintsNoKey runs the binary
// on a non-loopback address with the secret in a file (as compose and
// Kubernetes mount it): it starts, accepts tokens signed with the secret,
// refuses others, and neither creates nor prints an API key or a token
// key, nor logs the secret.
func TestServeInProductionModeStartsWithASecretAndPrintsNoKey(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	clearCredentialEnv(t)
	bin := testenv.BuildTradewind(t)
	dataDir := t.TempDir()
	const secret = "prod-secret-0123456789abcdef0123456789abcdef"
	secretFile := filepath.Join(t.TempDir(), "jwt-secret")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(testenv.FreeAddr(t))
	opsAddr := testenv.FreeAddr(t) // /readyz is on the operator listener
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// A database of its own: the package's would carry a previous run's
	// checkpoints into this run's new embedded NATS (go test -count=N).
	dbURL := testenv.FreshDatabaseURL(t)
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	devKeys := func() (n int) {
		// Before the first start the table may not exist yet: 0.
		_ = conn.QueryRow(ctx, `SELECT count(*) FROM core.api_keys WHERE name = 'development'`).Scan(&n)
		return n
	}
	before := devKeys()

	serve := exec.CommandContext(ctx, bin, "serve")
	serve.Env = append(os.Environ(),
		"DATABASE_URL="+dbURL,
		"TRADEWIND_DATA_DIR="+dataDir,
		"TRADEWIND_HTTP_ADDR=0.0.0.0:"+port,
		"TRADEWIND_NATS_LISTEN="+testenv.FreeAddr(t),
		"TRADEWIND_PROVIDER_LISTEN="+testenv.FreeAddr(t),
		"NATS_URL=",
		"TRADEWIND_JWT_SECRET_FILE="+secretFile,
		"TRADEWIND_OPS_ADDR="+opsAddr,
	)
	stderr := &lockedBuffer{t: t}
	serve.Stderr = stderr
	serve.Cancel = func() error { return serve.Process.Signal(os.Interrupt) }
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = serve.Wait() }()
	base := "http://127.0.0.1:" + port
	testenv.Eventually(t, 60*time.Second, "/readyz 200", func() bool {
		resp, err := http.Get("http://" + opsAddr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	get := func(token string) int {
		req, _ := http.NewRequest(http.MethodGet, base+"/v1/orders?customer_id=c-prod", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	good, _, err := auth.Issue([]byte(secret), "c-prod", auth.RoleCustomer, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	forged, _, _ := auth.Issue([]byte(strings.Repeat("k", 32)), "c-prod", auth.RoleCustomer, time.Minute)
	if got := get(good); got != http.StatusOK {
		t.Errorf("token signed with the configured secret: %d, want 200", got)
	}
	if got := get(forged); got != http.StatusUnauthorized {
		t.Errorf("token signed with another key: %d, want 401", got)
	}

	out := stderr.String()
	if k := apiKeyRE.FindString(out); k != "" {
		t.Errorf("production serve printed an API key %s…", k)
	}
	for _, leak := range []string{"Development credentials", secret} {
		if strings.Contains(out, leak) {
			t.Errorf("production serve printed %q", leak)
		}
	}
	for _, f := range []string{auth.DevSecretFile, "dev-api-key"} {
		if _, err := os.Stat(filepath.Join(dataDir, f)); err == nil {
			t.Errorf("production serve wrote %s in the data directory", f)
		}
	}
	if after := devKeys(); after != before {
		t.Errorf("production serve created %d development API keys", after-before)
	}
}

// TestTokenCommandSignsWithTheSecretFile: inside a production container
// the secret is a file; `tradewind token` signs with it and the configured
// audience, prints only the token on stdout, and never shows the secret.
func TestTokenCommandSignsWithTheSecretFile(t *testing.T) {
	clearCredentialEnv(t)
	const secret = "token-cmd-secret-0123456789abcdef0123456789"
	f := filepath.Join(t.TempDir(), "jwt")
	if err := os.WriteFile(f, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TRADEWIND_JWT_SECRET_FILE", f)
	t.Setenv("TRADEWIND_JWT_AUDIENCE", "shop-api")
	var stdout, stderr bytes.Buffer
	cmd := newRoot()
	cmd.SetOut(&stdout)
	cmd.SetErr(&stderr)
	cmd.SetArgs([]string{"token", "--user", "ops-anna", "--role", "ops", "--ttl", "5m", "--data-dir", t.TempDir()})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier([]byte(secret), time.Hour, nil, auth.WithAudience("shop-api"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Verify(context.Background(), strings.TrimSpace(stdout.String()))
	if err != nil || c.Subject != "ops-anna" || c.Role != auth.RoleOps {
		t.Fatalf("minted token: %+v, %v", c, err)
	}
	if strings.Contains(stdout.String()+stderr.String(), secret) {
		t.Error("token printed the secret")
	}

	t.Setenv("TRADEWIND_JWT_SECRET", secret)
	t.Setenv("TRADEWIND_JWT_SECRET_FILE", "")
	help := newRoot()
	var out bytes.Buffer
	help.SetOut(&out)
	help.SetArgs([]string{"token", "--help"})
	if err := help.Execute(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), secret) {
		t.Error("token --help shows the secret from the environment")
	}
}
