package auth_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tradewind/tradewind/internal/auth"
	"github.com/tradewind/tradewind/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var key = []byte("0123456789abcdef0123456789abcdef")

func sign(t *testing.T, method jwt.SigningMethod, k any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVerifyAcceptsOnlyPinnedWellFormedTokens(t *testing.T) {
	ctx := context.Background()
	_, _, js := testenv.JetStream(t)
	rev, err := auth.NewRevocations(ctx, js, 1, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(key, time.Hour, rev)
	if err != nil {
		t.Fatal(err)
	}
	good, claims, err := auth.Issue(key, "c-1", auth.RoleCustomer, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	revoked, rc, _ := auth.Issue(key, "c-2", auth.RoleOps, 10*time.Minute)
	if err := rev.Revoke(ctx, rc.ID); err != nil {
		t.Fatal(err)
	}
	now := time.Now().Unix()
	base := func(edit func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"iss": auth.Issuer, "aud": auth.DefaultAudience, "sub": "c-1", "jti": "s-1", "iat": now, "exp": now + 600}
		if edit != nil {
			edit(c)
		}
		return c
	}
	cases := []struct {
		name  string
		token string
		want  error
	}{
		{"valid", good, nil},
		{"valid ops role", sign(t, jwt.SigningMethodHS256, key, base(func(c jwt.MapClaims) { c["role"] = "ops" })), nil},
		{"expired", sign(t, jwt.SigningMethodHS256, key, base(func(c jwt.MapClaims) { c["iat"], c["exp"] = now-700, now-60 })), auth.ErrExpired},
		{"revoked", revoked, auth.ErrRevoked},
		{"other algorithm HS512", sign(t, jwt.SigningMethodHS512, key, base(nil)), auth.ErrInvalid},
		{"alg none", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, base(nil)), auth.ErrInvalid},
		{"wrong key", sign(t, jwt.SigningMethodHS256, []byte(strings.Repeat("x", 32)), base(nil)), auth.ErrInvalid},
		{"no exp", sign(t, jwt.SigningMethodHS256, key, base(func(c jwt.MapClaims) { delete(c, "exp") })), auth.ErrInvalid},
		{"no iat", sign(t, jwt.SigningMethodHS256, key, base(func(c jwt.MapClaims) { delete(c, "iat") })), auth.ErrInvalid},
		{"no sub", sign(t, jwt.SigningMethodHS256, key, base(func(c jwt.MapClaims) { delete(c, "sub") })), auth.ErrInvalid},
		{"no jti", sign(t, jwt.SigningMethodHS256, key, base(func(c jwt.MapClaims) { delete(c, "jti") })), auth.ErrInvalid},
		{"other issuer", sign(t, jwt.SigningMethodHS256, key, base(func(c jwt.MapClaims) { c["iss"] = "evil" })), auth.ErrInvalid},
		{"aud as a list", sign(t, jwt.SigningMethodHS256, key, base(func(c jwt.MapClaims) { c["aud"] = []string{"other", auth.DefaultAudience} })), nil},
		{"no aud", sign(t, jwt.SigningMethodHS256, key, base(func(c jwt.MapClaims) { delete(c, "aud") })), auth.ErrInvalid},
		{"other audience", sign(t, jwt.SigningMethodHS256, key, base(func(c jwt.MapClaims) { c["aud"] = "billing" })), auth.ErrInvalid},
		{"exp as a string", sign(t, jwt.SigningMethodHS256, key, base(func(c jwt.MapClaims) { c["exp"] = strconv.FormatInt(now+600, 10) })), auth.ErrInvalid},
		{"iat as a string", sign(t, jwt.SigningMethodHS256, key, base(func(c jwt.MapClaims) { c["iat"] = strconv.FormatInt(now, 10) })), auth.ErrInvalid},
		{"nbf as a string", sign(t, jwt.SigningMethodHS256, key, base(func(c jwt.MapClaims) { c["nbf"] = strconv.FormatInt(now, 10) })), auth.ErrInvalid},
		{"role not a string", sign(t, jwt.SigningMethodHS256, key, base(func(c jwt.MapClaims) { c["role"] = []string{"ops"} })), auth.ErrInvalid},
		{"RS256 without an identity provider", sign(t, jwt.SigningMethodRS256, rsaKey(t), base(nil)), auth.ErrInvalid},
		{"unknown role", sign(t, jwt.SigningMethodHS256, key, base(func(c jwt.MapClaims) { c["role"] = "admin" })), auth.ErrInvalid},
		{"lifetime beyond maximum", sign(t, jwt.SigningMethodHS256, key, base(func(c jwt.MapClaims) { c["exp"] = now + 7200 })), auth.ErrInvalid},
		{"garbage", "not.a.token", auth.ErrInvalid},
		{"empty", "", auth.ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := v.Verify(ctx, tc.token)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Verify = %v", err)
				}
				if c.Subject != "c-1" || c.ID == "" {
					t.Errorf("claims = %+v", c)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
	if c, _ := v.Verify(ctx, good); c.ID != claims.ID || c.Role != auth.RoleCustomer {
		t.Errorf("claims %+v, issued %+v", c, claims)
	}
}

func TestVerifyFailsClosedWhenRevocationStoreIsDown(t *testing.T) {
	ctx := context.Background()
	emb, _, js := testenv.JetStream(t)
	rev, err := auth.NewRevocations(ctx, js, 1, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := auth.NewVerifier(key, time.Hour, rev)
	tok, _, _ := auth.Issue(key, "c-1", auth.RoleCustomer, time.Minute)
	emb.Shutdown()
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if _, err := v.Verify(ctx, tok); !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("Verify with NATS down = %v, want ErrUnavailable", err)
	}
}

func TestWatchReportsRevocations(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, _, js := testenv.JetStream(t)
	rev, err := auth.NewRevocations(ctx, js, 1, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := rev.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := rev.Revoke(ctx, "session-9"); err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-ch:
		if id != "session-9" {
			t.Errorf("watched %q", id)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no revocation reported")
	}
}

func TestAPIKeys(t *testing.T) {
	ctx := context.Background()
	keys, err := auth.NewKeys(testenv.Pool(t))
	if err != nil {
		t.Fatal(err)
	}
	keys.CacheTTL = 0 // every call reads the database
	plain, k, err := keys.Create(ctx, auth.NewKeyInput{Name: "storefront", Scopes: []string{auth.ScopeOrdersWrite}})
	if err != nil {
		t.Fatal(err)
	}
	if !auth.IsAPIKey(plain) || strings.Contains(plain, "storefront") {
		t.Fatalf("key %q", plain)
	}
	p, err := keys.Authenticate(ctx, plain)
	if err != nil {
		t.Fatal(err)
	}
	if p.Caller != "key:"+k.ID || !p.Can(auth.ScopeOrdersWrite) || p.Can(auth.ScopeCatalogWrite) {
		t.Errorf("principal %+v", p)
	}
	var stored []byte
	if err := testenv.Pool(t).QueryRow(ctx, `SELECT secret_sha256 FROM core.api_keys WHERE key_id = $1`, k.ID).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plain, string(stored)) || len(stored) != 32 {
		t.Errorf("stored secret is not a SHA-256 digest: %x", stored)
	}
	last := "A"
	if strings.HasSuffix(plain, "A") {
		last = "B"
	}
	tampered := plain[:len(plain)-1] + last
	for name, tok := range map[string]string{
		"wrong secret": tampered,
		"unknown id":   auth.KeyPrefix + "0000000000000000" + plain[len(auth.KeyPrefix)+16:],
		"malformed":    "tw_short",
	} {
		if _, err := keys.Authenticate(ctx, tok); !errors.Is(err, auth.ErrInvalid) {
			t.Errorf("%s: Authenticate = %v, want ErrInvalid", name, err)
		}
	}
	if err := keys.Revoke(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := keys.Authenticate(ctx, plain); !errors.Is(err, auth.ErrRevoked) {
		t.Errorf("revoked key: Authenticate = %v, want ErrRevoked", err)
	}
	if _, _, err := keys.Create(ctx, auth.NewKeyInput{Name: "x", Scopes: []string{"orders:delete"}}); err == nil {
		t.Error("created a key with an unknown scope")
	}
}

// TestSharedKeyRotation follows docs/security.md: replicas first accept
// the new and the previous key, then only the new one.
func TestSharedKeyRotation(t *testing.T) {
	ctx := context.Background()
	oldKey, newKey := key, []byte("fedcba9876543210fedcba9876543210-new")
	oldTok, _, _ := auth.Issue(oldKey, "c-1", auth.RoleCustomer, time.Minute)
	newTok, _, _ := auth.Issue(newKey, "c-1", auth.RoleCustomer, time.Minute)
	during, err := auth.NewVerifier(newKey, time.Hour, nil, auth.WithPreviousKey(oldKey))
	if err != nil {
		t.Fatal(err)
	}
	after, err := auth.NewVerifier(newKey, time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		v     *auth.Verifier
		token string
		ok    bool
	}{
		{"during: a token of the previous key", during, oldTok, true},
		{"during: a token of the new key", during, newTok, true},
		{"after: a token of the previous key", after, oldTok, false},
		{"after: a token of the new key", after, newTok, true},
	} {
		if _, err := tc.v.Verify(ctx, tc.token); (err == nil) != tc.ok {
			t.Errorf("%s: Verify = %v, want accepted %v", tc.name, err, tc.ok)
		}
	}
	if _, err := auth.NewVerifier(nil, time.Hour, nil, auth.WithPreviousKey(oldKey)); err == nil {
		t.Error("a previous key without a current one was accepted")
	}
	if _, err := auth.NewVerifier(newKey, time.Hour, nil, auth.WithPreviousKey([]byte("short"))); err == nil {
		t.Error("a short previous key was accepted")
	}
}
