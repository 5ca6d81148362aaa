package ratelimit

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradewind/tradewind/internal/retry"
)

// conflictBackoff spaces repeated compare-and-set conflicts on one
// bucket: up to 1 ms after the second, doubling to 16 ms.
var conflictBackoff = retry.Backoff{Base: time.Millisecond, Max: 16 * time.Millisecond}

// DefaultKVBucket is the NATS KV bucket of the shared limiter.
const DefaultKVBucket = "tradewind_ratelimit"

// KV keeps buckets in NATS KV with compare-and-set: a bucket's value is
// its theoretical arrival time, written with Update(expected revision),
// which fails when another instance wrote in between; the decision is then
// recomputed on fresh state. A denied request writes nothing.
//
// Two local refinements keep round trips and conflicts down. Requests of
// one instance for the same bucket are serialised (striped locks), so
// compare-and-set conflicts come only from other instances. And the last
// state an instance wrote or read is cached: an allowed request tries its
// Update against the cached revision directly (one round trip instead of
// two), and a request the cached state already denies is denied with no
// round trip at all — safe because a bucket's arrival time only grows, so
// the shared state denies whatever stale state denies.
type KV struct {
	kv      jetstream.KeyValue
	retries int
	stripes [256]stripe
}

type stripe struct {
	mu    sync.Mutex
	state map[string]kvState
}

type kvState struct {
	rev uint64
	tat int64
}

// maxCachedPerStripe bounds the cache; past it a stripe starts afresh.
const maxCachedPerStripe = 4096

// NewKV creates or opens the bucket. Entries expire after MaxTolerance:
// a bucket untouched that long is full again, so forgetting it is exact.
func NewKV(ctx context.Context, js jetstream.JetStream, bucket string, replicas int) (*KV, error) {
	if js == nil {
		return nil, errors.New("ratelimit: JetStream is required")
	}
	if bucket == "" {
		bucket = DefaultKVBucket
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      bucket,
		Description: "tradewind gateway rate limits (GCRA state)",
		History:     1,
		TTL:         MaxTolerance,
		Storage:     jetstream.MemoryStorage, // losing it on restart only refills buckets
		Replicas:    max(1, replicas),
	})
	if err != nil {
		return nil, fmt.Errorf("rate limit KV bucket %s: %w", bucket, err)
	}
	s := &KV{kv: kv, retries: 32}
	for i := range s.stripes {
		s.stripes[i].state = map[string]kvState{}
	}
	return s, nil
}

// Take implements Store.
func (s *KV) Take(ctx context.Context, bucket string, now time.Time, l Limit) (Decision, error) {
	_, d, err := s.TakeN(ctx, bucket, now, l, 1)
	return d, err
}

// TakeN implements Leaser: one compare-and-set takes up to n tokens.
func (s *KV) TakeN(ctx context.Context, bucket string, now time.Time, l Limit, n int) (int, Decision, error) {
	key := base64.RawURLEncoding.EncodeToString([]byte(bucket)) // KV keys allow [-_=.a-zA-Z0-9]
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	st := &s.stripes[h.Sum32()%uint32(len(s.stripes))]
	st.mu.Lock()
	defer st.mu.Unlock()
	cur, known := st.state[key]
	for attempt := range s.retries {
		if !known {
			e, err := s.kv.Get(ctx, key)
			switch {
			case errors.Is(err, jetstream.ErrKeyNotFound):
				cur = kvState{}
			case err != nil:
				return 0, Decision{}, fmt.Errorf("rate limit %s: read: %w", bucket, err)
			default:
				cur.rev = e.Revision()
				if cur.tat, err = strconv.ParseInt(string(e.Value()), 10, 64); err != nil {
					cur.tat = 0 // corrupt state: a full bucket, overwritten below
				}
			}
		}
		next, granted, d := gcraN(now.UnixNano(), cur.tat, l, n)
		if granted == 0 {
			return 0, d, nil
		}
		val := []byte(strconv.FormatInt(next, 10))
		var rev uint64
		var err error
		if cur.rev == 0 {
			rev, err = s.kv.Create(ctx, key, val)
		} else {
			rev, err = s.kv.Update(ctx, key, val, cur.rev)
		}
		if err == nil {
			if len(st.state) >= maxCachedPerStripe {
				clear(st.state)
			}
			st.state[key] = kvState{rev: rev, tat: next}
			return granted, d, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			delete(st.state, key)
			return 0, Decision{}, fmt.Errorf("rate limit %s: write: %w", bucket, err)
		}
		// Another instance wrote (or the entry expired): decide again on
		// fresh state, backing off a little once conflicts repeat.
		known = false
		if attempt >= 2 && !retry.Sleep(ctx, conflictBackoff.Delay(attempt-1)) {
			return 0, Decision{}, fmt.Errorf("rate limit %s: %w", bucket, ctx.Err())
		}
		now = time.Now()
	}
	delete(st.state, key)
	return 0, Decision{}, fmt.Errorf("rate limit %s: %d compare-and-set conflicts in a row", bucket, s.retries)
}
