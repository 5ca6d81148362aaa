package auth_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tradewind/tradewind/internal/auth"
	"github.com/tradewind/tradewind/internal/testenv"
)

const (
	idpIssuer   = "https://login.shop.example/"
	idpAudience = "tradewind-api"
	// A namespaced claim, as identity providers name custom claims.
	customerClaim = "https://shop.example/customer_id"
)

func rsaKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func ecKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// signingKey is one key of the identity provider: its private half signs
// tokens, its public half is published in the JWKS.
type signingKey struct {
	kid    string
	method jwt.SigningMethod
	priv   crypto.Signer
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// jwk is the public key in JWK form (RFC 7517/7518).
func (k signingKey) jwk(t *testing.T) map[string]string {
	t.Helper()
	switch pub := k.priv.Public().(type) {
	case *rsa.PublicKey:
		return map[string]string{"kty": "RSA", "kid": k.kid, "alg": "RS256", "use": "sig",
			"n": b64(pub.N.Bytes()), "e": b64(big.NewInt(int64(pub.E)).Bytes())}
	case *ecdsa.PublicKey:
		ec, err := pub.ECDH()
		if err != nil {
			t.Fatal(err)
		}
		raw := ec.Bytes() // 0x04 || X || Y
		return map[string]string{"kty": "EC", "kid": k.kid, "alg": "ES256", "use": "sig", "crv": "P-256",
			"x": b64(raw[1:33]), "y": b64(raw[33:])}
	}
	t.Fatalf("unsupported key %T", k.priv)
	return nil
}

func (k signingKey) sign(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(k.method, claims)
	tok.Header["kid"] = k.kid
	s, err := tok.SignedString(k.priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// jwksServer is the identity provider's JWKS endpoint: a real HTTP server
// whose key set a test replaces (a rotation), counting fetches.
type jwksServer struct {
	*httptest.Server
	set     atomic.Pointer[[]byte]
	fetches atomic.Int64
	down    atomic.Bool
}

func newJWKSServer(t *testing.T, keys ...signingKey) *jwksServer {
	t.Helper()
	s := &jwksServer{}
	s.publish(t, keys...)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		if s.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(*s.set.Load())
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) publish(t *testing.T, keys ...signingKey) {
	t.Helper()
	set := struct {
		Keys []map[string]string `json:"keys"`
	}{Keys: []map[string]string{}}
	for _, k := range keys {
		set.Keys = append(set.Keys, k.jwk(t))
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	s.set.Store(&b)
}

func newIdentityProvider(t *testing.T, url string, refresh time.Duration) *auth.IdentityProvider {
	t.Helper()
	p, err := auth.NewIdentityProvider(auth.IdentityProviderConfig{
		JWKSURL: url, Issuer: idpIssuer, Audience: idpAudience, CustomerClaim: customerClaim,
		Refresh: refresh, UnknownKeyInterval: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func idpClaims(edit func(jwt.MapClaims)) jwt.MapClaims {
	now := time.Now().Unix()
	c := jwt.MapClaims{"iss": idpIssuer, "aud": idpAudience, "sub": "auth0|5f1c", customerClaim: "c-42",
		"jti": "7b1d0c2e", "iat": now, "exp": now + 600}
	if edit != nil {
		edit(c)
	}
	return c
}

func TestIdentityProviderTokensAreVerifiedThroughItsJWKS(t *testing.T) {
	ctx := context.Background()
	rs := signingKey{"rsa-1", jwt.SigningMethodRS256, rsaKey(t)}
	es := signingKey{"ec-1", jwt.SigningMethodES256, ecKey(t)}
	stranger := signingKey{"rsa-1", jwt.SigningMethodRS256, rsaKey(t)} // same kid, not the provider's key
	srv := newJWKSServer(t, rs, es)
	_, _, js := testenv.JetStream(t)
	rev, err := auth.NewRevocations(ctx, js, 1, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(key, time.Hour, rev, auth.WithIdentityProvider(newIdentityProvider(t, srv.URL, time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(rs.priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Unix()
	cases := []struct {
		name  string
		token string
		want  error
	}{
		{"RS256", rs.sign(t, idpClaims(nil)), nil},
		{"ES256", es.sign(t, idpClaims(nil)), nil},
		{"aud as a list", rs.sign(t, idpClaims(func(c jwt.MapClaims) { c["aud"] = []string{"other", idpAudience} })), nil},
		{"no jti", rs.sign(t, idpClaims(func(c jwt.MapClaims) { delete(c, "jti") })), nil},
		{"wrong issuer", rs.sign(t, idpClaims(func(c jwt.MapClaims) { c["iss"] = "https://evil.example/" })), auth.ErrInvalid},
		{"wrong audience", rs.sign(t, idpClaims(func(c jwt.MapClaims) { c["aud"] = "another-app" })), auth.ErrInvalid},
		{"no audience", rs.sign(t, idpClaims(func(c jwt.MapClaims) { delete(c, "aud") })), auth.ErrInvalid},
		{"exp as a string", rs.sign(t, idpClaims(func(c jwt.MapClaims) { c["exp"] = strconv.FormatInt(now+600, 10) })), auth.ErrInvalid},
		{"no exp", es.sign(t, idpClaims(func(c jwt.MapClaims) { delete(c, "exp") })), auth.ErrInvalid},
		{"expired", es.sign(t, idpClaims(func(c jwt.MapClaims) { c["iat"], c["exp"] = now-700, now-60 })), auth.ErrExpired},
		{"lifetime beyond maximum", rs.sign(t, idpClaims(func(c jwt.MapClaims) { c["exp"] = now + 7200 })), auth.ErrInvalid},
		{"no customer claim", rs.sign(t, idpClaims(func(c jwt.MapClaims) { delete(c, customerClaim) })), auth.ErrInvalid},
		{"customer claim not a string", rs.sign(t, idpClaims(func(c jwt.MapClaims) { c[customerClaim] = 42 })), auth.ErrInvalid},
		{"signed by another key with the same kid", stranger.sign(t, idpClaims(nil)), auth.ErrInvalid},
		{"RS256 header on the EC key's kid", signingKey{"ec-1", jwt.SigningMethodRS256, rs.priv}.sign(t, idpClaims(nil)), auth.ErrInvalid},
		{"HS256 keyed with the provider's public key", sign(t, jwt.SigningMethodHS256, pubDER, idpClaims(nil)), auth.ErrInvalid},
		{"RS384", signingKey{"rsa-1", jwt.SigningMethodRS384, rs.priv}.sign(t, idpClaims(nil)), auth.ErrInvalid},
		{"alg none", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, idpClaims(nil)), auth.ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := v.Verify(ctx, tc.token)
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("Verify = %v, want %v", err, tc.want)
				}
				t.Logf("refused: %v", err)
				return
			}
			if err != nil {
				t.Fatalf("Verify = %v", err)
			}
			if c.Subject != "c-42" || c.Role != auth.RoleCustomer || c.ID == "" {
				t.Errorf("claims = %+v, want customer c-42 with a session id", c)
			}
		})
	}

	// Tradewind's own tokens still verify next to the provider's.
	own, _, _ := auth.Issue(key, "c-1", auth.RoleOps, time.Minute)
	if c, err := v.Verify(ctx, own); err != nil || c.Role != auth.RoleOps {
		t.Errorf("own token: %+v, %v", c, err)
	}
	// Logout revokes a provider's session like one of Tradewind's.
	tok := es.sign(t, idpClaims(nil))
	c, err := v.Verify(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if err := rev.Revoke(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx, tok); !errors.Is(err, auth.ErrRevoked) {
		t.Errorf("after logout: Verify = %v, want ErrRevoked", err)
	}
	if got := srv.fetches.Load(); got != 1 {
		t.Errorf("the key set was fetched %d times, want once (cached)", got)
	}
}

func TestIdentityProviderKeyRotation(t *testing.T) {
	ctx := context.Background()
	old := signingKey{"2026-11", jwt.SigningMethodRS256, rsaKey(t)}
	next := signingKey{"2026-12", jwt.SigningMethodES256, ecKey(t)}
	srv := newJWKSServer(t, old)
	v, err := auth.NewVerifier(nil, time.Hour, nil, auth.WithIdentityProvider(newIdentityProvider(t, srv.URL, time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	oldTok := old.sign(t, idpClaims(nil))
	for range 20 {
		if _, err := v.Verify(ctx, oldTok); err != nil {
			t.Fatal(err)
		}
	}
	if got := srv.fetches.Load(); got != 1 {
		t.Fatalf("%d fetches for 20 verifications, want 1 (cached)", got)
	}

	// The provider rotates: the new key replaces the old one. A token with
	// the new kid fetches the set at once; the old key is gone with it.
	srv.publish(t, next)
	if c, err := v.Verify(ctx, next.sign(t, idpClaims(nil))); err != nil || c.Subject != "c-42" {
		t.Fatalf("token of the new key: %+v, %v", c, err)
	}
	if got := srv.fetches.Load(); got != 2 {
		t.Errorf("%d fetches, want 2 (one for the unknown kid)", got)
	}
	if _, err := v.Verify(ctx, oldTok); !errors.Is(err, auth.ErrInvalid) {
		t.Errorf("token of the dropped key: %v, want ErrInvalid", err)
	}
	// Forged kids cannot make Tradewind hammer the provider: unknown-kid
	// fetches are rate-limited.
	for i := range 10 {
		forged := signingKey{"forged-" + strconv.Itoa(i), jwt.SigningMethodRS256, old.priv}
		if _, err := v.Verify(ctx, forged.sign(t, idpClaims(nil))); !errors.Is(err, auth.ErrInvalid) {
			t.Fatalf("forged kid: %v, want ErrInvalid", err)
		}
	}
	if got := srv.fetches.Load(); got > 3 {
		t.Errorf("%d fetches after 10 forged kids, want at most 3", got)
	}
	// Shared HS256 tokens are refused when no shared key is configured.
	own := sign(t, jwt.SigningMethodHS256, key, jwt.MapClaims{"iss": auth.Issuer, "aud": auth.DefaultAudience, "sub": "c-1",
		"jti": "s-1", "iat": time.Now().Unix(), "exp": time.Now().Unix() + 60})
	if _, err := v.Verify(ctx, own); !errors.Is(err, auth.ErrInvalid) {
		t.Errorf("HS256 without a shared key: %v, want ErrInvalid", err)
	}
}

func TestIdentityProviderRefreshesPeriodicallyAndSurvivesAnOutage(t *testing.T) {
	ctx := context.Background()
	k1 := signingKey{"k1", jwt.SigningMethodES256, ecKey(t)}
	k2 := signingKey{"k2", jwt.SigningMethodRS256, rsaKey(t)}
	srv := newJWKSServer(t, k1)
	srv.down.Store(true) // down at start: not fatal
	v, err := auth.NewVerifier(nil, time.Hour, nil, auth.WithIdentityProvider(newIdentityProvider(t, srv.URL, 50*time.Millisecond)))
	if err != nil {
		t.Fatalf("a provider down at start must not stop Tradewind: %v", err)
	}
	tok1 := k1.sign(t, idpClaims(nil))
	srv.down.Store(false)
	testenv.Eventually(t, 5*time.Second, "the key set fetched once the provider is back", func() bool {
		_, err := v.Verify(ctx, tok1)
		return err == nil
	})
	// The provider drops k1 and publishes k2: the periodic refresh applies
	// it without any token naming an unknown kid.
	srv.publish(t, k2)
	testenv.Eventually(t, 5*time.Second, "the dropped key refused after a periodic refresh", func() bool {
		_, err := v.Verify(ctx, tok1)
		return errors.Is(err, auth.ErrInvalid)
	})
	// A failed refresh keeps the cached keys.
	srv.down.Store(true)
	tok2 := k2.sign(t, idpClaims(nil))
	n := srv.fetches.Load()
	testenv.Eventually(t, 5*time.Second, "refreshes failing", func() bool { return srv.fetches.Load() >= n+2 })
	if _, err := v.Verify(ctx, tok2); err != nil {
		t.Errorf("cached key during an outage: %v", err)
	}
}
