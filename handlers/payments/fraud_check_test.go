package payments_test

import (
	"context"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/tradewind/tradewind/handlers/payments"
	"github.com/tradewind/tradewind/internal/flags"
	"github.com/tradewind/tradewind/internal/provider"
	"github.com/tradewind/tradewind/internal/testenv"
)

// approvingProvider stands in for the payment provider (not a broker or a
// database): it authorizes everything, counts the calls per order and
// lists what it authorized.
type approvingProvider struct {
	mu    sync.Mutex
	calls map[string]int
	held  map[string]provider.Authorization
}

func (p *approvingProvider) Authorize(_ context.Context, _ string, req provider.AuthorizeRequest) (provider.Authorization, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.calls == nil {
		p.calls, p.held = map[string]int{}, map[string]provider.Authorization{}
	}
	p.calls[req.OrderID]++
	a := provider.Authorization{ID: "auth-" + req.OrderID, OrderID: req.OrderID, CustomerID: req.CustomerID,
		Amount: req.Amount, Currency: req.Currency, Status: provider.StatusAuthorized}
	p.held[req.OrderID] = a
	return a, nil
}

func (p *approvingProvider) Authorizations(_ context.Context, orderID string) ([]provider.Authorization, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if a, ok := p.held[orderID]; ok {
		return []provider.Authorization{a}, nil
	}
	return nil, nil
}

func (p *approvingProvider) called(orderID string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[orderID]
}

// fraudCheckAt returns a fraud check reading a live flag store whose
// fraud-check flag is at percent.
func fraudCheckAt(t *testing.T, percent float64) (*payments.FraudCheck, *approvingProvider) {
	t.Helper()
	emb := testenv.NATS(t)
	_, js := testenv.Connect(t, emb.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	store, err := flags.Open(ctx, js, flags.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.Admin().Update(ctx, payments.FlagFraudCheck, func(f *flags.Flag) { f.Percent = percent }); err != nil {
		t.Fatal(err)
	}
	if err := store.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	p := &approvingProvider{}
	fc, err := payments.NewFraudCheck(p, store, payments.FraudRule{MaxAmount: 100_000, Marker: "fraud"})
	if err != nil {
		t.Fatal(err)
	}
	return fc, p
}

// suspectOrders are n authorizations the rule suspects (above the limit),
// one per customer.
func suspectOrders(n int) []provider.AuthorizeRequest {
	out := make([]provider.AuthorizeRequest, n)
	for i := range out {
		out[i] = provider.AuthorizeRequest{OrderID: fmt.Sprintf("o-%d", i), CustomerID: fmt.Sprintf("c-%d", i),
			Amount: 250_000, Currency: "EUR"}
	}
	return out
}

func TestFraudCheckDeclinesItsShareOfSuspectOrders(t *testing.T) {
	t.Parallel()
	const n = 4000
	for _, percent := range []float64{0, 25, 100} {
		t.Run(fmt.Sprintf("%v%%", percent), func(t *testing.T) {
			t.Parallel()
			fc, p := fraudCheckAt(t, percent)
			ctx := context.Background()
			declined := map[string]bool{}
			for _, req := range suspectOrders(n) {
				a, err := fc.Authorize(ctx, req.OrderID, req)
				if err != nil {
					t.Fatal(err)
				}
				switch a.Status {
				case provider.StatusDeclined:
					if a.DeclineCode != payments.DeclineFraudSuspected {
						t.Fatalf("order %s declined with %q, want %q", req.OrderID, a.DeclineCode, payments.DeclineFraudSuspected)
					}
					if p.called(req.OrderID) != 0 {
						t.Fatalf("order %s was declined for fraud but still sent to the provider", req.OrderID)
					}
					declined[req.CustomerID] = true
				case provider.StatusAuthorized:
					if p.called(req.OrderID) != 1 {
						t.Fatalf("order %s authorized without one provider call", req.OrderID)
					}
				}
			}
			got := 100 * float64(len(declined)) / n
			tol := 4 * 100 * math.Sqrt(percent/100*(1-percent/100)/n) // 4 standard deviations
			if math.Abs(got-percent) > tol {
				t.Fatalf("at %v%% the fraud check declined %.2f%% of %d suspect orders, want within %.2f", percent, got, n, tol)
			}
			// Stable: the same customer gets the same answer on a new order.
			for _, req := range suspectOrders(n) {
				req.OrderID += "-again"
				a, err := fc.Authorize(ctx, req.OrderID, req)
				if err != nil {
					t.Fatal(err)
				}
				if again := a.Status == provider.StatusDeclined; again != declined[req.CustomerID] {
					t.Fatalf("customer %s: fraud check declined = %v, then %v", req.CustomerID, declined[req.CustomerID], again)
				}
			}
		})
	}
}

func TestFraudCheckOnlyDeclinesWhatTheRuleSuspects(t *testing.T) {
	t.Parallel()
	fc, p := fraudCheckAt(t, 100)
	tests := []struct {
		name        string
		req         provider.AuthorizeRequest
		wantDecline bool
	}{
		{"small total from a plain customer", provider.AuthorizeRequest{OrderID: "o-1", CustomerID: "c-1", Amount: 100_000}, false},
		{"total above the limit", provider.AuthorizeRequest{OrderID: "o-2", CustomerID: "c-1", Amount: 100_001}, true},
		{"marked customer", provider.AuthorizeRequest{OrderID: "o-3", CustomerID: "c-fraud-1", Amount: 10}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.Currency = "EUR"
			a, err := fc.Authorize(context.Background(), tt.req.OrderID, tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if declined := a.Status == provider.StatusDeclined; declined != tt.wantDecline {
				t.Fatalf("declined = %v (%s), want %v", declined, a.DeclineCode, tt.wantDecline)
			}
			if wantCalls := map[bool]int{true: 0, false: 1}[tt.wantDecline]; p.called(tt.req.OrderID) != wantCalls {
				t.Fatalf("provider called %d times, want %d", p.called(tt.req.OrderID), wantCalls)
			}
		})
	}
}

// TestFraudCheckKeepsTheProvidersFirstDecision: an order the provider
// already authorized (an attempt before the flag was turned on, whose
// answer was lost) is passed on, not declined, so the provider's
// authorization is recorded rather than left dangling.
func TestFraudCheckKeepsTheProvidersFirstDecision(t *testing.T) {
	t.Parallel()
	fc, p := fraudCheckAt(t, 100)
	ctx := context.Background()
	req := provider.AuthorizeRequest{OrderID: "o-first", CustomerID: "c-fraud-2", Amount: 10, Currency: "EUR"}
	if _, err := p.Authorize(ctx, req.OrderID, req); err != nil { // the first attempt, flag off
		t.Fatal(err)
	}
	a, err := fc.Authorize(ctx, req.OrderID, req)
	if err != nil {
		t.Fatal(err)
	}
	if a.Status != provider.StatusAuthorized || a.ID != "auth-o-first" {
		t.Fatalf("retry got %s %s, want the provider's authorization auth-o-first", a.Status, a.ID)
	}
}

func TestNewFraudCheckRefusesMissingDependencies(t *testing.T) {
	t.Parallel()
	if _, err := payments.NewFraudCheck(nil, nil, payments.DefaultFraudRule); err == nil {
		t.Fatal("NewFraudCheck(nil, nil) succeeded")
	}
}
