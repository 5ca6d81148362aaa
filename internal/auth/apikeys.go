package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// KeyPrefix starts every API key, so that secret scanners and the gateway
// tell keys from JWTs at a glance.
const KeyPrefix = "tw_"

// Key describes a stored API key (never its secret).
type Key struct {
	ID            string
	Name          string
	Scopes        []string
	RatePerSecond float64 // 0: the gateway default
	Burst         int     // 0: the gateway default
	CreatedAt     time.Time
	RevokedAt     *time.Time
}

// Keys stores API keys in core.api_keys: the key id in clear, the SHA-256
// of the secret (256 random bits, so a fast hash leaves nothing to guess),
// the scopes and optional limits.
//
// Authenticate caches successful lookups for CacheTTL (default 10s) to
// keep the database off the hot path: a revoked key stays usable on an
// instance for at most that long. It caches failures (an unknown key, a
// wrong secret, a revoked key) for NegativeTTL (default 1m), so the same
// bogus key is one query per minute, not one per request; a key created
// meanwhile is never in that cache (its id and secret are fresh).
type Keys struct {
	pool        *pgxpool.Pool
	CacheTTL    time.Duration
	NegativeTTL time.Duration

	mu     sync.Mutex
	cache  map[[32]byte]cachedKey
	misses map[[32]byte]cachedMiss
}

type cachedMiss struct {
	err     error
	expires time.Time
}

type cachedKey struct {
	p       Principal
	expires time.Time
}

const maxCachedKeys = 10_000

// NewKeys wires the store.
func NewKeys(pool *pgxpool.Pool) (*Keys, error) {
	if pool == nil {
		return nil, errors.New("auth: keys need a pool")
	}
	return &Keys{pool: pool, CacheTTL: 10 * time.Second, NegativeTTL: time.Minute,
		cache: map[[32]byte]cachedKey{}, misses: map[[32]byte]cachedMiss{}}, nil
}

// NewKeyInput describes a key to create.
type NewKeyInput struct {
	Name          string
	Scopes        []string
	RatePerSecond float64
	Burst         int
}

// Create stores a new key and returns it with its plaintext, which is
// shown once and never stored.
func (k *Keys) Create(ctx context.Context, in NewKeyInput) (string, Key, error) {
	var errs []error
	if in.Name == "" || len(in.Name) > 128 {
		errs = append(errs, errors.New("name must be 1..128 characters"))
	}
	if len(in.Scopes) == 0 {
		errs = append(errs, fmt.Errorf("at least one scope is required (%s)", strings.Join(KnownScopes, ", ")))
	}
	for _, s := range in.Scopes {
		if !slices.Contains(KnownScopes, s) {
			errs = append(errs, fmt.Errorf("unknown scope %q (known: %s)", s, strings.Join(KnownScopes, ", ")))
		}
	}
	if in.RatePerSecond < 0 || in.Burst < 0 || (in.RatePerSecond > 0) != (in.Burst > 0) {
		errs = append(errs, errors.New("rate and burst must both be positive, or both unset"))
	}
	if err := errors.Join(errs...); err != nil {
		return "", Key{}, fmt.Errorf("create API key: %w", err)
	}
	idb := make([]byte, 8)
	secret := make([]byte, 32)
	if _, err := rand.Read(idb); err != nil {
		return "", Key{}, fmt.Errorf("create API key: %w", err)
	}
	if _, err := rand.Read(secret); err != nil {
		return "", Key{}, fmt.Errorf("create API key: %w", err)
	}
	id := hex.EncodeToString(idb)
	sec := base64.RawURLEncoding.EncodeToString(secret)
	sum := sha256.Sum256([]byte(sec))
	key := Key{ID: id, Name: in.Name, Scopes: in.Scopes, RatePerSecond: in.RatePerSecond, Burst: in.Burst}
	var rate *float64
	var burst *int
	if in.RatePerSecond > 0 {
		rate, burst = &in.RatePerSecond, &in.Burst
	}
	err := k.pool.QueryRow(ctx, `
		INSERT INTO core.api_keys (key_id, name, secret_sha256, scopes, rate_per_second, burst)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING created_at`,
		id, in.Name, sum[:], in.Scopes, rate, burst).Scan(&key.CreatedAt)
	if err != nil {
		return "", Key{}, fmt.Errorf("create API key %s: %w", in.Name, err)
	}
	return KeyPrefix + id + "_" + sec, key, nil
}

// Revoke marks a key revoked (visible everywhere after CacheTTL).
func (k *Keys) Revoke(ctx context.Context, id string) error {
	tag, err := k.pool.Exec(ctx, `UPDATE core.api_keys SET revoked_at = now() WHERE key_id = $1 AND revoked_at IS NULL`, id)
	if err != nil {
		return fmt.Errorf("revoke API key %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("revoke API key %s: no such active key", id)
	}
	return nil
}

// List returns every key, newest first.
func (k *Keys) List(ctx context.Context) ([]Key, error) {
	rows, err := k.pool.Query(ctx, `
		SELECT key_id, name, scopes, COALESCE(rate_per_second, 0), COALESCE(burst, 0), created_at, revoked_at
		FROM core.api_keys ORDER BY created_at DESC`)
	if err != nil {
		return nil, fmt.Errorf("list API keys: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Key, error) {
		var key Key
		err := r.Scan(&key.ID, &key.Name, &key.Scopes, &key.RatePerSecond, &key.Burst, &key.CreatedAt, &key.RevokedAt)
		return key, err
	})
}

// IsAPIKey tells an API key from a JWT by its prefix.
func IsAPIKey(token string) bool { return strings.HasPrefix(token, KeyPrefix) }

// Authenticate checks an API key. Errors wrap ErrInvalid, ErrRevoked or
// ErrUnavailable; the key itself never appears in them.
func (k *Keys) Authenticate(ctx context.Context, token string) (Principal, error) {
	full := sha256.Sum256([]byte(token))
	now := time.Now()
	k.mu.Lock()
	c, ok := k.cache[full]
	miss, missed := k.misses[full]
	k.mu.Unlock()
	if ok && now.Before(c.expires) {
		return c.p, nil
	}
	if missed && now.Before(miss.expires) {
		return Principal{}, miss.err
	}
	p, err := k.lookup(ctx, token)
	switch {
	case err == nil:
		k.mu.Lock()
		if len(k.cache) >= maxCachedKeys {
			clear(k.cache)
		}
		k.cache[full] = cachedKey{p: p, expires: now.Add(k.CacheTTL)}
		k.mu.Unlock()
	case k.NegativeTTL > 0 && (errors.Is(err, ErrInvalid) || errors.Is(err, ErrRevoked)):
		k.mu.Lock()
		if len(k.misses) >= maxCachedKeys {
			clear(k.misses)
		}
		k.misses[full] = cachedMiss{err: err, expires: now.Add(k.NegativeTTL)}
		k.mu.Unlock()
	}
	return p, err
}

// lookup checks an API key against the database.
func (k *Keys) lookup(ctx context.Context, token string) (Principal, error) {
	rest, ok := strings.CutPrefix(token, KeyPrefix)
	id, sec, ok2 := strings.Cut(rest, "_")
	if !ok || !ok2 || len(id) != 16 || len(sec) != 43 {
		return Principal{}, fmt.Errorf("%w: malformed API key", ErrInvalid)
	}
	if _, err := hex.DecodeString(id); err != nil {
		return Principal{}, fmt.Errorf("%w: malformed API key", ErrInvalid)
	}
	var (
		name    string
		stored  []byte
		scopes  []string
		rate    float64
		burst   int
		revoked *time.Time
	)
	err := k.pool.QueryRow(ctx, `
		SELECT name, secret_sha256, scopes, COALESCE(rate_per_second, 0), COALESCE(burst, 0), revoked_at
		FROM core.api_keys WHERE key_id = $1`, id).Scan(&name, &stored, &scopes, &rate, &burst, &revoked)
	if errors.Is(err, pgx.ErrNoRows) {
		return Principal{}, fmt.Errorf("%w: unknown API key", ErrInvalid)
	}
	if err != nil {
		return Principal{}, fmt.Errorf("%w: look up API key %s: %w", ErrUnavailable, id, err)
	}
	sum := sha256.Sum256([]byte(sec))
	if subtle.ConstantTimeCompare(sum[:], stored) != 1 {
		return Principal{}, fmt.Errorf("%w: unknown API key", ErrInvalid)
	}
	if revoked != nil {
		return Principal{}, fmt.Errorf("%w: API key %s revoked at %s", ErrRevoked, id, revoked.Format(time.RFC3339))
	}
	return Principal{Kind: KindAPIKey, Caller: "key:" + id, Name: name, Scopes: scopes, RatePerSecond: rate, Burst: burst}, nil
}
