package idempotency_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/tradewind/tradewind/internal/idempotency"
	"github.com/tradewind/tradewind/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestIdempotencyKeyLifecycle(t *testing.T) {
	ctx := context.Background()
	pool := testenv.Pool(t)
	s, err := idempotency.New(pool, time.Hour, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
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
		t.Run(tc.name, func(t *testing.T) { tc.run(t, tc.name) })
	}
}
