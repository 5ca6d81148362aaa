package app

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

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

	// A client that keeps failing is throttled: 429 with Retry-After, and
	// then even a valid credential is not checked until the wait is over.
	// (The cases above already spent some of the client's failures.)
	for i := 0; ; i++ {
		got := get("/v1/orders?customer_id=bob", "bogus-token")
		if got == http.StatusTooManyRequests {
			break
		}
		if got != http.StatusUnauthorized || i == creds.Failures.Burst {
			t.Fatalf("failure %d: %d, want 401 and, within the burst of %d, 429", i+1, got, creds.Failures.Burst)
		}
	}
	r := httptest.NewRequest(http.MethodGet, "/v1/orders?customer_id=bob", nil)
	r.Header.Set("Authorization", "Bearer "+ops)
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" {
		t.Errorf("throttled client: %d Retry-After %q, want 429 with Retry-After", w.Code, w.Header().Get("Retry-After"))
	}
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

// TestProductionCredentialsAcceptTheIdentityProvidersTokens wires the
// identity provider from the configuration alone: no shared secret, a real
// JWKS endpoint; its ES256 tokens authenticate the customer named by the
// configured claim, and HS256 tokens are refused.
func TestProductionCredentialsAcceptTheIdentityProvidersTokens(t *testing.T) {
	_, nc, js := testenv.JetStream(t)
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := priv.PublicKey.ECDH()
	if err != nil {
		t.Fatal(err)
	}
	raw := pub.Bytes() // 0x04 || X || Y
	b64 := base64.RawURLEncoding.EncodeToString
	jwks, _ := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig", "x": b64(raw[1:33]), "y": b64(raw[33:]),
	}}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(jwks) }))
	defer srv.Close()

	d := &Deps{Cfg: config.Config{HTTPAddr: "0.0.0.0:8080", NATSURL: "nats://n:4222", DataDir: t.TempDir(), Replicas: 1,
		TokenMaxLifetime: time.Hour, IDPJWKSURL: srv.URL, IDPIssuer: "https://idp.example/", IDPAudience: "shop",
		IDPCustomerClaim: "customer_id", IDPJWKSRefresh: time.Hour}, NC: nc, JS: js, Pool: testenv.Pool(t)}
	creds, err := d.Credentials()
	if err != nil {
		t.Fatal(err)
	}
	defer d.closeCredentials()
	if creds.Signing != nil || creds.Development {
		t.Errorf("signing key %v, development %v: want neither with only an identity provider", creds.Signing != nil, creds.Development)
	}
	now := time.Now().Unix()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": "https://idp.example/", "aud": "shop",
		"sub": "user-123", "customer_id": "c-9", "iat": now, "exp": now + 300})
	tok.Header["kid"] = "k1"
	signed, err := tok.SignedString(priv)
	if err != nil {
		t.Fatal(err)
	}
	p, err := creds.Principal(bearer(signed))
	if err != nil || p.Subject != "c-9" || p.Role != auth.RoleCustomer {
		t.Errorf("identity provider token: %+v, %v; want customer c-9", p, err)
	}
	hs, _, _ := auth.Issue([]byte(strings.Repeat("s", 32)), "c-9", auth.RoleOps, time.Minute)
	if _, err := creds.Principal(bearer(hs)); !errors.Is(err, auth.ErrInvalid) {
		t.Errorf("HS256 token without a shared secret: %v, want ErrInvalid", err)
	}
}
