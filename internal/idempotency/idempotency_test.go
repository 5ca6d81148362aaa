package idempotency_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tradewind/tradewind/internal/idempotency"
	"github.com/tradewind/tradewind/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestIdempotencyKeyLifecycle(t *testing.T) {
	modes := map[string][]idempotency.Option{
		"group commit":            nil,
		"one statement per write": {idempotency.WithFlushers(0)},
	}
	for mode, opts := range modes {
		t.Run(mode, func(t *testing.T) { testLifecycle(t, opts...) })
	}
}

func testLifecycle(t *testing.T, opts ...idempotency.Option) {
	ctx := context.Background()
	pool := testenv.Pool(t)
	s, err := idempotency.New(pool, time.Hour, time.Minute, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	reqA := func(key string) idempotency.Request {
		return idempotency.Request{Caller: "key:1", Key: key, Hash: idempotency.Hash([]byte("POST"), []byte("/v1/orders"), []byte(`{"a":1}`))}
	}
	reqB := func(key string) idempotency.Request {
		r := reqA(key)
		r.Hash = idempotency.Hash([]byte("POST"), []byte("/v1/orders"), []byte(`{"a":2}`))
		return r
	}
	resp := idempotency.Response{Status: 202, Header: http.Header{"Location": {"/v1/orders/1"}}, Body: []byte("{\"id\":\"1\"}\n")}
	exec := func(t *testing.T, sql string, args ...any) {
		t.Helper()
		if _, err := pool.Exec(ctx, sql, args...); err != nil {
			t.Fatal(err)
		}
	}

	cases := []struct {
		name string
		run  func(t *testing.T, key string)
	}{
		{"same request after completion replays the stored response", func(t *testing.T, key string) {
			c, _, err := s.Begin(ctx, reqA(key))
			if err != nil || c == nil {
				t.Fatalf("Begin = %v, %v", c, err)
			}
			if err := s.Complete(ctx, c, resp); err != nil {
				t.Fatal(err)
			}
			c2, replay, err := s.Begin(ctx, reqA(key))
			if err != nil || c2 != nil || replay == nil {
				t.Fatalf("second Begin = %v, %v, %v", c2, replay, err)
			}
			if replay.Status != 202 || !bytes.Equal(replay.Body, resp.Body) || replay.Header.Get("Location") != "/v1/orders/1" {
				t.Errorf("replay = %+v", replay)
			}
		}},
		{"different request under the same key is a mismatch", func(t *testing.T, key string) {
			c, _, _ := s.Begin(ctx, reqA(key))
			_ = s.Complete(ctx, c, resp)
			if _, _, err := s.Begin(ctx, reqB(key)); !errors.Is(err, idempotency.ErrMismatch) {
				t.Fatalf("Begin = %v, want ErrMismatch", err)
			}
		}},
		{"same request while the first runs is in flight", func(t *testing.T, key string) {
			if _, _, err := s.Begin(ctx, reqA(key)); err != nil {
				t.Fatal(err)
			}
			if _, _, err := s.Begin(ctx, reqA(key)); !errors.Is(err, idempotency.ErrInFlight) {
				t.Fatalf("Begin = %v, want ErrInFlight", err)
			}
		}},
		{"released key executes again", func(t *testing.T, key string) {
			c, _, _ := s.Begin(ctx, reqA(key))
			if err := s.Release(ctx, c); err != nil {
				t.Fatal(err)
			}
			if c2, _, err := s.Begin(ctx, reqA(key)); err != nil || c2 == nil {
				t.Fatalf("Begin after release = %v, %v", c2, err)
			}
		}},
		{"crashed owner's claim is taken over after its lease", func(t *testing.T, key string) {
			old, _, _ := s.Begin(ctx, reqA(key))
			exec(t, `UPDATE core.idempotency SET lease_until = now() - interval '1s' WHERE idem_key = $1`, key)
			if _, _, err := s.Begin(ctx, reqB(key)); !errors.Is(err, idempotency.ErrMismatch) {
				t.Fatalf("a different request took over: %v", err)
			}
			c, _, err := s.Begin(ctx, reqA(key))
			if err != nil || c == nil {
				t.Fatalf("Begin after lease = %v, %v", c, err)
			}
			// The old owner finishing late writes nothing.
			_ = s.Complete(ctx, old, idempotency.Response{Status: 500})
			_ = s.Complete(ctx, c, resp)
			if _, replay, _ := s.Begin(ctx, reqA(key)); replay == nil || replay.Status != 202 {
				t.Fatalf("replay = %+v", replay)
			}
		}},
		{"request that gave up does not block its key", func(t *testing.T, key string) {
			gone, cancel := context.WithCancel(ctx)
			cancel()
			if _, _, err := s.Begin(gone, reqA(key)); !errors.Is(err, context.Canceled) {
				t.Fatalf("Begin with a cancelled context = %v", err)
			}
			testenv.Eventually(t, 5*time.Second, "the key to be claimable", func() bool {
				c, _, err := s.Begin(ctx, reqA(key))
				return err == nil && c != nil
			})
		}},
		{"expired key is forgotten and cleaned up", func(t *testing.T, key string) {
			c, _, _ := s.Begin(ctx, reqA(key))
			_ = s.Complete(ctx, c, resp)
			exec(t, `UPDATE core.idempotency SET expires_at = now() - interval '1s' WHERE idem_key = $1`, key)
			if n, err := s.Cleanup(ctx, 100); err != nil || n < 1 {
				t.Fatalf("Cleanup = %d, %v", n, err)
			}
			if c2, _, err := s.Begin(ctx, reqB(key)); err != nil || c2 == nil {
				t.Fatalf("Begin after expiry = %v, %v", c2, err)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, t.Name()+"-"+strconv.FormatInt(time.Now().UnixNano(), 36)) })
	}
}

// TestConcurrentRequestsShareFlushes runs many requests at once through
// the group-commit writer: each key is claimed exactly once (its
// concurrent duplicates, in the same batch or not, are in flight), every
// response is stored, and the writes took fewer round trips than
// requests.
func TestConcurrentRequestsShareFlushes(t *testing.T) {
	ctx := context.Background()
	s, err := idempotency.New(testenv.Pool(t), time.Hour, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	const keys, dups = 200, 3 // each key sent by three concurrent requests
	caller := "key:" + strconv.FormatInt(time.Now().UnixNano(), 36)
	var claimed, inFlight atomic.Int64
	var wg sync.WaitGroup
	for i := range keys * dups {
		wg.Go(func() {
			req := idempotency.Request{Caller: caller, Key: "k-" + strconv.Itoa(i%keys), Hash: idempotency.Hash([]byte("POST"), []byte{byte(i % keys)})}
			c, replay, err := s.Begin(ctx, req)
			switch {
			case errors.Is(err, idempotency.ErrInFlight):
				inFlight.Add(1)
				return
			case err != nil:
				t.Error(err)
				return
			case replay != nil:
				return // the first finished before this one began
			}
			claimed.Add(1)
			if err := s.Complete(ctx, c, idempotency.Response{Status: 202, Body: []byte(req.Key)}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if claimed.Load() != keys {
		t.Errorf("%d claims for %d keys (%d in flight)", claimed.Load(), keys, inFlight.Load())
	}
	for i := range keys {
		_, replay, err := s.Begin(ctx, idempotency.Request{Caller: caller, Key: "k-" + strconv.Itoa(i), Hash: idempotency.Hash([]byte("POST"), []byte{byte(i)})})
		if err != nil || replay == nil || string(replay.Body) != "k-"+strconv.Itoa(i) {
			t.Fatalf("key %d: replay %+v, %v", i, replay, err)
		}
	}
	writes := claimed.Load()*2 + int64(keys*dups) - claimed.Load()
	t.Logf("%d writes in %d flushes", writes, s.Flushes())
	if s.Flushes() >= writes {
		t.Errorf("%d flushes for %d writes: nothing was grouped", s.Flushes(), writes)
	}
}
