package api_test

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/handlers/orders"
	"github.com/tradewind/tradewind/internal/auth"
	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/runner"
	"github.com/tradewind/tradewind/internal/testenv"
)

// TestTwoInstancesTogetherAdmitAtMostLimitPlusBurst hits two gateway
// instances (own NATS connections and limiters, one NATS and database)
// with one key whose limit is 20/s, burst 5.
func TestTwoInstancesTogetherAdmitAtMostLimitPlusBurst(t *testing.T) {
	sys := newSystem(t)
	gws := []*gateway{sys.gateway(), sys.gateway()}
	key, _, err := sys.keys.Create(context.Background(), auth.NewKeyInput{Name: "limited", Scopes: []string{auth.ScopeAll}, RatePerSecond: 20, Burst: 5})
	if err != nil {
		t.Fatal(err)
	}
	var admitted, limited atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for w := range 4 {
		gw := gws[w%2]
		wg.Go(func() {
			for time.Since(start) < 700*time.Millisecond {
				time.Sleep(time.Millisecond)
				res := gw.do(t, key, request{path: "/v1/categories", body: `{"category_id":"c","name":"C"}`})
				switch res.status {
				case http.StatusAccepted:
					admitted.Add(1)
				case http.StatusTooManyRequests:
					limited.Add(1)
					ra, _ := strconv.Atoi(res.header.Get("Retry-After"))
					if ra < 1 || res.header.Get("RateLimit-Limit") != "5" || res.header.Get("RateLimit-Remaining") != "0" || res.header.Get("RateLimit-Reset") == "" {
						t.Errorf("429 headers: %v", res.header)
					}
				default:
					t.Errorf("status %d: %s", res.status, res.body)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	bound := int64(20*elapsed.Seconds()) + 5 + 1
	t.Logf("admitted %d, limited %d in %s (bound %d)", admitted.Load(), limited.Load(), elapsed, bound)
	if admitted.Load() > bound {
		t.Errorf("two instances admitted %d in %s, more than burst + limit·t = %d", admitted.Load(), elapsed, bound)
	}
	if admitted.Load() < 5 || limited.Load() == 0 {
		t.Errorf("admitted %d, limited %d: the limit was not reached", admitted.Load(), limited.Load())
	}
}

func TestLogoutRevokesTheSessionOnEveryInstance(t *testing.T) {
	sys := newSystem(t)
	sys.product("SKU-1", 1250, "EUR") // validOrder's price
	a, b := sys.gateway(), sys.gateway()
	tok := userToken(t, "c-1", auth.RoleCustomer)
	other := userToken(t, "c-1", auth.RoleCustomer)
	for _, gw := range []*gateway{a, b} {
		gw.do(t, tok, request{path: "/v1/orders", body: validOrder}).accepted(t)
	}
	if res := a.do(t, tok, request{path: "/v1/auth/logout", noKey: true}); res.status != http.StatusNoContent {
		t.Fatalf("logout: %d %s", res.status, res.body)
	}
	for name, gw := range map[string]*gateway{"instance that logged out": a, "other instance": b} {
		t.Run(name, func(t *testing.T) {
			res := gw.do(t, tok, request{path: "/v1/orders", body: validOrder})
			if res.status != http.StatusUnauthorized || res.problem(t).Detail != "the credentials were revoked" {
				t.Errorf("revoked token: %d %s", res.status, res.body)
			}
			gw.do(t, other, request{path: "/v1/orders", body: validOrder}).accepted(t) // other sessions live on
		})
	}
}

// TestStreamMixingVersionsReplaysAsOneShape publishes v1 and v2 place-order
// commands into COMMANDS and consumes them as the orders role does: the
// handler sees only v2 and every order is placed.
func TestStreamMixingVersionsReplaysAsOneShape(t *testing.T) {
	_, _, js := testenv.JetStream(t)
	pool := testenv.Pool(t)
	ctx := context.Background()
	lines := []events.OrderLine{{SKU: "SKU-1", Quantity: 1, UnitPrice: 100}}
	var want []string
	for i := range 6 {
		id := uuid.NewString() // new per run: -count=N keeps the package's database
		var e *event.Event
		var err error
		if i%2 == 0 {
			e, err = events.New(events.PlaceOrderV1, id, events.PlaceOrder{OrderID: id, CustomerID: "c-v", Lines: lines, Currency: "EUR"})
		} else {
			e, err = events.New(events.PlaceOrderV2, id, events.PlaceOrderV2Data{OrderID: id, CustomerID: "c-v", Lines: lines, Currency: "EUR", PromoCode: "P" + strconv.Itoa(i)})
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, err := broker.Publish(ctx, js, e); err != nil {
			t.Fatal(err)
		}
		want = append(want, id)
	}
	place, err := orders.NewPlaceOrder(time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	h := runner.HandlerFunc(func(ctx context.Context, tx pgx.Tx, ev *event.Event) ([]*event.Event, error) {
		mu.Lock()
		seen[ev.Type()]++
		mu.Unlock()
		return place.Handle(ctx, tx, ev)
	})
	r, err := runner.New(runner.Config{
		Name: "versions-" + strconv.FormatInt(time.Now().UnixNano(), 36), Stream: broker.StreamCommands,
		FilterSubjects: []string{events.MustLookup(events.PlaceOrderV1).SubjectFilter()},
		Upcast:         events.Upcast,
	}, js, pool, h)
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(rctx) }()
	t.Cleanup(func() { cancel(); <-done })
	testenv.Eventually(t, 10*time.Second, "every order placed", func() bool {
		var n int
		_ = pool.QueryRow(ctx, `SELECT count(*) FROM orders.orders WHERE order_id::text = ANY($1)`, want).Scan(&n)
		return n == len(want)
	})
	mu.Lock()
	defer mu.Unlock()
	if seen[events.PlaceOrderV2] != len(want) || len(seen) != 1 {
		t.Errorf("handler saw %v, want only %d × %s", seen, len(want), events.PlaceOrderV2)
	}
	if r.Stats().DeadLettered.Load() != 0 {
		t.Error("a command was dead-lettered")
	}
}
