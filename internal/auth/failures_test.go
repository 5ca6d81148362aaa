package auth_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/tradewind/tradewind/internal/auth"
	"github.com/tradewind/tradewind/internal/testenv"
)

// TestBogusKeyIsNotAQueryEachTime: a failed key lookup is remembered for
// NegativeTTL. The proof, against the real database: once a bogus key has
// failed, a row that would make it valid is inserted behind the cache's
// back, and the key still fails (no query was made); a store without the
// negative cache accepts it at once.
func TestBogusKeyIsNotAQueryEachTime(t *testing.T) {
	ctx := context.Background()
	pool := testenv.Pool(t)
	keys, err := auth.NewKeys(pool)
	if err != nil {
		t.Fatal(err)
	}
	// An id of this run's: the package database keeps the row it inserts
	// below for the next run (go test -count=N).
	id, secret := fmt.Sprintf("%016x", rand.Uint64()), strings.Repeat("s", 43)
	bogus := auth.KeyPrefix + id + "_" + secret
	if _, err := keys.Authenticate(ctx, bogus); !errors.Is(err, auth.ErrInvalid) {
		t.Fatalf("bogus key: %v, want ErrInvalid", err)
	}
	sum := sha256.Sum256([]byte(secret))
	if _, err := pool.Exec(ctx, `INSERT INTO core.api_keys (key_id, name, secret_sha256, scopes) VALUES ($1, 'late', $2, $3)`,
		id, sum[:], []string{auth.ScopeOrdersWrite}); err != nil {
		t.Fatal(err)
	}
	for range 100 {
		if _, err := keys.Authenticate(ctx, bogus); !errors.Is(err, auth.ErrInvalid) {
			t.Fatalf("second try: %v, want the cached ErrInvalid (no database query)", err)
		}
	}
	fresh, _ := auth.NewKeys(pool)
	fresh.NegativeTTL = 0
	if _, err := fresh.Authenticate(ctx, bogus); err != nil {
		t.Fatalf("without the negative cache the key is read from the database: %v", err)
	}
}

// TestFailedAuthenticationsAreThrottledPerClient: Burst failures in a row,
// then the client waits; another client is unaffected; the bucket refills.
func TestFailedAuthenticationsAreThrottledPerClient(t *testing.T) {
	th := &auth.Throttle{Burst: 3, Every: 10 * time.Second}
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	auth.SetThrottleClock(th, func() time.Time { return now })
	for i := range 3 {
		if ok, _ := th.Allow("10.0.0.1"); !ok {
			t.Fatalf("attempt %d refused, want %d admitted", i+1, 3)
		}
		th.Fail("10.0.0.1")
	}
	ok, wait := th.Allow("10.0.0.1")
	if ok || wait != 10*time.Second {
		t.Fatalf("after 3 failures: allowed %v, wait %s; want refused for 10s", ok, wait)
	}
	if ok, _ := th.Allow("10.0.0.2"); !ok {
		t.Error("another client is throttled too")
	}
	now = now.Add(10 * time.Second)
	if ok, _ := th.Allow("10.0.0.1"); !ok {
		t.Error("refused after the bucket refilled one failure")
	}
}
