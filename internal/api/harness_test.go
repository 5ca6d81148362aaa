package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradewind/tradewind/internal/api"
	"github.com/tradewind/tradewind/internal/auth"
	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/idempotency"
	"github.com/tradewind/tradewind/internal/images"
	"github.com/tradewind/tradewind/internal/ratelimit"
	"github.com/tradewind/tradewind/internal/testenv"
	"github.com/tradewind/tradewind/notifier/prefs"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var tokenKey = []byte("test-token-key-0123456789abcdef-0123")

// system is one NATS server and the package's database, shared by the
// gateway instances of a test.
type system struct {
	t    testing.TB
	emb  *broker.Embedded
	js   jetstream.JetStream
	keys *auth.Keys
	pool *pgxpool.Pool
	// natsURL is the NATS server gateways connect to (emb's when empty).
	natsURL string
	// idemOpts configure the idempotency store of gateways made next.
	idemOpts []idempotency.Option
	// failures is the failed-authentication throttle of gateways made
	// next (nil: each gateway's default).
	failures *auth.Throttle
}

func newSystem(t testing.TB) *system {
	t.Helper()
	emb, _, js := testenv.JetStream(t)
	pool := testenv.Pool(t)
	keys, err := auth.NewKeys(pool)
	if err != nil {
		t.Fatal(err)
	}
	return &system{t: t, emb: emb, js: js, keys: keys, pool: pool}
}

// gateway is one gateway instance: its own NATS connection, limiter,
// stores and HTTP server, as a separate `serve --roles=api` would have.
type gateway struct {
	srv  *api.Server
	mux  *http.ServeMux
	http *httptest.Server
	lim  *ratelimit.Limiter
	idem *idempotency.Store
}

type gwOption func(*api.Config)

func (s *system) gateway(opts ...gwOption) *gateway {
	t := s.t
	t.Helper()
	ctx := context.Background()
	js := s.js // a system on NATS with accounts: its (ops) connection
	if s.emb != nil || s.natsURL != "" {
		url := s.natsURL
		if url == "" {
			url = s.emb.URL
		}
		_, js = testenv.Connect(t, url)
	}
	pool := testenv.Pool(t)
	keys, _ := auth.NewKeys(pool)
	rev, err := auth.NewRevocations(ctx, js, 1, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ver, err := auth.NewVerifier(tokenKey, time.Hour, rev)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := ratelimit.NewKV(ctx, js, "", 1)
	if err != nil {
		t.Fatal(err)
	}
	lim, _ := ratelimit.New(kv)
	// As the api role does.
	idemPool, err := pgxpool.NewWithConfig(ctx, idempotency.PoolConfig(pool.Config()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(idemPool.Close)
	idem, err := idempotency.New(idemPool, time.Hour, time.Minute, s.idemOpts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(idem.Close)
	obs, err := broker.EnsureImageStore(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	cfg := api.Config{Limit: ratelimit.Limit{Rate: 1e5, Burst: 1e5}}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := api.New(cfg, api.Deps{
		Publisher: api.JetStreamPublisher{JS: js}, Keys: keys, Tokens: ver, Sessions: rev,
		Limiter: lim, Idempotency: idem, Orders: api.PostgresOrders{Pool: pool}, Catalog: api.PostgresCatalog{Pool: pool},
		Images: images.Store{OBS: obs}, Preferences: prefs.Store{Pool: pool}, Log: slog.New(slog.DiscardHandler), Failures: s.failures,
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	srv.Register(mux)
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return &gateway{srv: srv, mux: mux, http: hs, lim: lim, idem: idem}
}

// product puts a product into the catalog read model the gateway prices
// orders from (public.product_search, as the projection would), replacing
// any earlier price.
func (s *system) product(sku string, price int64, currency string) {
	s.t.Helper()
	_, err := s.pool.Exec(context.Background(), `
		INSERT INTO public.product_search (sku, name, price, currency, updated_at, last_seq) VALUES ($1, $1, $2, $3, now(), 0)
		ON CONFLICT (sku) DO UPDATE SET price = excluded.price, currency = excluded.currency`, sku, price, currency)
	if err != nil {
		s.t.Fatal(err)
	}
}

func (s *system) apiKey(scopes ...string) string {
	s.t.Helper()
	k, _, err := s.keys.Create(context.Background(), auth.NewKeyInput{Name: s.t.Name(), Scopes: scopes})
	if err != nil {
		s.t.Fatal(err)
	}
	return k
}

func userToken(t testing.TB, customer, role string) string {
	t.Helper()
	tok, _, err := auth.Issue(tokenKey, customer, role, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// request is one HTTP call; zero fields get sensible defaults.
type request struct {
	method, path, body string
	header             map[string]string
	noKey              bool // omit Idempotency-Key
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) problem(t testing.TB) api.Problem {
	t.Helper()
	var p api.Problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("not a problem document (%d): %s", r.status, r.body)
	}
	if r.header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("problem with Content-Type %q", r.header.Get("Content-Type"))
	}
	return p
}

func (r response) accepted(t testing.TB) api.Accepted {
	t.Helper()
	if r.status != http.StatusAccepted {
		t.Fatalf("status %d, want 202: %s", r.status, r.body)
	}
	var a api.Accepted
	if err := json.Unmarshal(r.body, &a); err != nil {
		t.Fatal(err)
	}
	return a
}

func (g *gateway) do(t testing.TB, bearer string, rq request) response {
	t.Helper()
	if rq.method == "" {
		rq.method = http.MethodPost
	}
	req, err := http.NewRequest(rq.method, g.http.URL+rq.path, bytes.NewBufferString(rq.body))
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if rq.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if !rq.noKey {
		req.Header.Set("Idempotency-Key", uuid.NewString())
	}
	for k, v := range rq.header {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	res, err := g.http.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{status: res.StatusCode, header: res.Header, body: b}
}

const validOrder = `{"customer_id":"c-1","currency":"EUR","lines":[{"sku":"SKU-1","quantity":2,"unit_price":1250}]}`

// streamMsg returns the message at a stream position.
func streamMsg(t testing.TB, js jetstream.JetStream, stream string, seq uint64) *jetstream.RawStreamMsg {
	t.Helper()
	st, err := js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetMsg(context.Background(), seq)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func streamMsgs(t testing.TB, js jetstream.JetStream, stream string) uint64 {
	t.Helper()
	st, err := js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}
