package auth

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// DefaultRevocationBucket is the NATS KV bucket of revoked sessions.
const DefaultRevocationBucket = "tradewind_revoked"

// Revocations is the shared revocation store: a NATS KV bucket keyed by
// token id (jti). Every verification reads it (one round trip to the
// stream's leader, so a revocation acknowledged on one instance is seen by
// the next check on any other). Entries expire with the bucket's TTL, the
// longest accepted token lifetime: by then the token has expired anyway.
type Revocations struct {
	kv jetstream.KeyValue
}

// NewRevocations creates or opens the bucket. maxLifetime must be the
// Verifier's: a shorter TTL would forget revocations of live tokens.
func NewRevocations(ctx context.Context, js jetstream.JetStream, replicas int, maxLifetime time.Duration) (*Revocations, error) {
	if js == nil {
		return nil, errors.New("auth: revocations need JetStream")
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      DefaultRevocationBucket,
		Description: "tradewind revoked sessions (token ids), kept for the longest token lifetime",
		History:     1,
		TTL:         maxLifetime + time.Minute, // + the verifier's leeway, generously
		Storage:     jetstream.FileStorage,
		Replicas:    max(1, replicas),
	})
	if err != nil {
		return nil, fmt.Errorf("revocation bucket: %w", err)
	}
	return &Revocations{kv: kv}, nil
}

// Revoke records that a session is revoked; it is durable once this
// returns.
func (r *Revocations) Revoke(ctx context.Context, tokenID string) error {
	if !jtiRE.MatchString(tokenID) {
		return fmt.Errorf("revoke session: malformed token id")
	}
	if _, err := r.kv.Put(ctx, tokenID, []byte(strconv.FormatInt(time.Now().Unix(), 10))); err != nil {
		return fmt.Errorf("revoke session %s: %w", tokenID, err)
	}
	return nil
}

// IsRevoked implements RevocationChecker.
func (r *Revocations) IsRevoked(ctx context.Context, tokenID string) (bool, error) {
	_, err := r.kv.Get(ctx, tokenID)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return false, nil
	}
	return false, fmt.Errorf("check session %s: %w", tokenID, err)
}

// Watch reports token ids revoked from now on until ctx ends, for
// long-lived sessions (WebSockets) to close at once. The channel closes
// when ctx ends or the watch fails.
func (r *Revocations) Watch(ctx context.Context) (<-chan string, error) {
	w, err := r.kv.WatchAll(ctx, jetstream.UpdatesOnly())
	if err != nil {
		return nil, fmt.Errorf("watch revocations: %w", err)
	}
	out := make(chan string, 64)
	go func() {
		defer close(out)
		defer func() { _ = w.Stop() }()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e == nil || e.Operation() != jetstream.KeyValuePut {
					continue
				}
				select {
				case out <- e.Key():
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}
