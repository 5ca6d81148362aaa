package app

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tradewind/tradewind/internal/auth"
	"github.com/tradewind/tradewind/internal/config"
	"github.com/tradewind/tradewind/internal/readapi"
	"github.com/tradewind/tradewind/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestReadAPIServesEachUserOnlyTheirOwnOrders wires the read API the way
// the projections role does and checks who may read what.
func TestReadAPIServesEachUserOnlyTheirOwnOrders(t *testing.T) {
	ctx := context.Background()
	_, nc, js := testenv.JetStream(t)
	pool := testenv.Pool(t)
	d := &Deps{Cfg: config.Config{Dev: true, DataDir: t.TempDir(), Replicas: 1, TokenMaxLifetime: time.Hour}, NC: nc, JS: js, Pool: pool}
	creds, err := d.Credentials()
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := d.Credentials(); again != creds {
		t.Fatal("credentials are built more than once per process")
	}
	api, err := readapi.New(readapi.Config{Pool: pool, CallerFrom: creds.ReadCaller})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	api.Register(mux)

	alice, _, err := auth.Issue(creds.Signing, "alice", auth.RoleCustomer, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ops, _, _ := auth.Issue(creds.Signing, "olga", auth.RoleOps, time.Hour)
	key, _, err := creds.Keys.Create(ctx, auth.NewKeyInput{Name: "analytics", Scopes: []string{auth.ScopeAll}})
	if err != nil {
		t.Fatal(err)
	}
	get := func(path, bearer string) int {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		if bearer != "" {
			r.Header.Set("Authorization", "Bearer "+bearer)
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		return w.Code
	}
	tests := []struct {
		name, path, bearer string
		want               int
	}{
		{"anonymous", "/v1/orders?customer_id=alice", "", http.StatusUnauthorized},
		{"garbage token", "/v1/orders?customer_id=alice", "not-a-token", http.StatusUnauthorized},
		{"own orders", "/v1/orders?customer_id=alice", alice, http.StatusOK},
		{"someone else's orders", "/v1/orders?customer_id=bob", alice, http.StatusForbidden},
		{"analytics as a customer", "/v1/analytics/sales", alice, http.StatusForbidden},
		{"operator reads anyone", "/v1/orders?customer_id=bob", ops, http.StatusOK},
		{"API key reads anyone", "/v1/orders?customer_id=bob", key, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := get(tt.path, tt.bearer); got != tt.want {
				t.Errorf("GET %s = %d, want %d", tt.path, got, tt.want)
			}
		})
	}
	// Logging out revokes the session for the read API too.
	claims, err := creds.Verifier.Verify(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	if err := creds.Revocations.Revoke(ctx, claims.ID); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, "revoked token refused", func() bool {
		return get("/v1/orders?customer_id=alice", alice) == http.StatusUnauthorized
	})
}

// TestProductionCredentialsAreConfiguredNeverGenerated: on a non-loopback
// address the credentials come from the configuration only — no token key
// is generated, Development (which makes the api role print an all-scope
// key) stays false — and without any, they are refused.
func TestProductionCredentialsAreConfiguredNeverGenerated(t *testing.T) {
	_, nc, js := testenv.JetStream(t)
	pool := testenv.Pool(t)
	const secret = "a-shared-secret-of-at-least-32-bytes!"
	prod := func(edit func(*config.Config)) *Deps {
		cfg := config.Config{HTTPAddr: "0.0.0.0:8080", NATSURL: "nats://n:4222", DataDir: t.TempDir(), Replicas: 1, TokenMaxLifetime: time.Hour, JWTAudience: "shop-api"}
		edit(&cfg)
		return &Deps{Cfg: cfg, NC: nc, JS: js, Pool: pool}
	}

	if _, err := prod(func(*config.Config) {}).Credentials(); err == nil || !strings.Contains(err.Error(), "production mode") {
		t.Fatalf("production without a secret: %v, want a production mode error", err)
	}

	d := prod(func(c *config.Config) { c.JWTSecret = secret })
	creds, err := d.Credentials()
	if err != nil {
		t.Fatal(err)
	}
	if creds.Development || string(creds.Signing) != secret {
		t.Errorf("development %v, signing key is the configured secret: %v", creds.Development, string(creds.Signing) == secret)
	}
	if _, err := os.Stat(filepath.Join(d.Cfg.DataDir, auth.DevSecretFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a development key was written in production: %v", err)
	}
	// Another replica with the same secret accepts the token; the
	// configured audience is required.
	other, err := prod(func(c *config.Config) { c.JWTSecret = secret }).Credentials()
	if err != nil {
		t.Fatal(err)
	}
	good, _, _ := auth.Issue([]byte(secret), "c-7", auth.RoleCustomer, time.Minute, auth.ForAudience("shop-api"))
	wrongAud, _, _ := auth.Issue([]byte(secret), "c-7", auth.RoleCustomer, time.Minute)
	for name, c := range map[string]*Credentials{"replica 1": creds, "replica 2": other} {
		if p, err := c.Principal(bearer(good)); err != nil || p.Subject != "c-7" {
			t.Errorf("%s: %+v, %v", name, p, err)
		}
		if _, err := c.Principal(bearer(wrongAud)); !errors.Is(err, auth.ErrInvalid) {
			t.Errorf("%s: token for another audience: %v, want ErrInvalid", name, err)
		}
	}
}

func bearer(tok string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	return r
}
