package app

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tradewind/tradewind/internal/auth"
	"github.com/tradewind/tradewind/internal/config"
	"github.com/tradewind/tradewind/internal/readapi"
	"github.com/tradewind/tradewind/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestReadAPIServesEachUserOnlyTheirOwnOrders wires the read API the way
// the projections role does and checks who may read what: users their own
// data, operators all, API keys what their read scopes name.
func TestReadAPIServesEachUserOnlyTheirOwnOrders(t *testing.T) {
	ctx := context.Background()
	_, nc, js := testenv.JetStream(t)
	pool := testenv.Pool(t)
	d := &Deps{Cfg: config.Config{DataDir: t.TempDir(), Replicas: 1, TokenMaxLifetime: time.Hour}, NC: nc, JS: js, Pool: pool}
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
	if readapi.ScopeOrders != auth.ScopeOrdersRead || readapi.ScopeCustomers != auth.ScopeCustomersRead || readapi.ScopeAnalytics != auth.ScopeAnalyticsRead {
		t.Fatal("the read API's scope names differ from the API keys' scope names")
	}
	key, _, err := creds.Keys.Create(ctx, auth.NewKeyInput{Name: "everything", Scopes: []string{auth.ScopeAll}})
	if err != nil {
		t.Fatal(err)
	}
	writer, _, err := creds.Keys.Create(ctx, auth.NewKeyInput{Name: "storefront", Scopes: []string{auth.ScopeOrdersWrite}})
	if err != nil {
		t.Fatal(err)
	}
	orderReader, _, err := creds.Keys.Create(ctx, auth.NewKeyInput{Name: "fulfilment", Scopes: []string{auth.ScopeOrdersRead}})
	if err != nil {
		t.Fatal(err)
	}
	analyst, _, err := creds.Keys.Create(ctx, auth.NewKeyInput{Name: "bi", Scopes: []string{auth.ScopeAnalyticsRead, auth.ScopeCustomersRead}})
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
		{"API key with * reads anyone", "/v1/orders?customer_id=bob", key, http.StatusOK},
		{"write-only key lists no orders", "/v1/orders", writer, http.StatusForbidden},
		{"write-only key reads no customer's orders", "/v1/orders?customer_id=bob", writer, http.StatusForbidden},
		{"write-only key reads no customer", "/v1/customers/bob/history", writer, http.StatusNotFound},
		{"write-only key reads no analytics", "/v1/analytics/sales", writer, http.StatusForbidden},
		{"orders:read lists orders", "/v1/orders?customer_id=bob", orderReader, http.StatusOK},
		{"orders:read reads no analytics", "/v1/analytics/sales", orderReader, http.StatusForbidden},
		{"analytics:read reads analytics", "/v1/analytics/sales", analyst, http.StatusOK},
		{"analytics:read lists no orders", "/v1/orders", analyst, http.StatusForbidden},
		{"customer reads no other history", "/v1/customers/bob/history", alice, http.StatusNotFound},
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
