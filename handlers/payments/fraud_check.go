package payments

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/tradewind/tradewind/internal/provider"
	"github.com/tradewind/tradewind/internal/runner"
)

// FlagFraudCheck is the feature flag that rolls the fraud check out: for
// the customers it is on for, an authorization must first pass the fraud
// rule (`tradewind flags set fraud-check --percent 25`).
const FlagFraudCheck = "fraud-check"

// DeclineFraudSuspected is the payments.declined code of an authorization
// the fraud rule refused; the order is then cancelled like any decline.
const DeclineFraudSuspected = "fraud_suspected"

// FlagReader is what FraudCheck needs of the feature flags
// (flags.Store). Enabled is called on the hot path: it must not block.
type FlagReader interface {
	Enabled(flag, customerID string) bool
}

// FraudRule is a deterministic fraud rule: the same request always gets
// the same answer, so a redelivered message is judged as the first one.
type FraudRule struct {
	// MaxAmount is the largest total (minor units) authorized without
	// suspicion; 0 means no limit.
	MaxAmount int64
	// Marker, when not empty, makes every customer id containing it
	// suspect (tests and the load generator force the path with it).
	Marker string
}

// DefaultFraudRule suspects totals above 10 000.00 and customer ids
// containing "fraud".
var DefaultFraudRule = FraudRule{MaxAmount: 1_000_000, Marker: "fraud"}

// Suspect returns why req is suspected, "" when it is not.
func (r FraudRule) Suspect(req provider.AuthorizeRequest) string {
	switch {
	case r.MaxAmount > 0 && req.Amount > r.MaxAmount:
		return fmt.Sprintf("amount %d above %d", req.Amount, r.MaxAmount)
	case r.Marker != "" && strings.Contains(req.CustomerID, r.Marker):
		return "customer id marked " + r.Marker
	}
	return ""
}

// FraudCheckedProvider is what FraudCheck needs of the payment provider:
// authorizing, and finding what it already holds for an order.
type FraudCheckedProvider interface {
	Authorizer
	AuthorizationFinder
}

// FraudCheck is the optional fraud-check step before payment: an
// Authorizer that, for the customers the fraud-check flag is on for,
// declines suspect authorizations itself with DeclineFraudSuspected
// (without calling the provider) and passes the rest on. Wire it in front
// of the provider: NewAuthorizePayment(NewFraudCheck(provider, flags, rule), provider).
//
// The first decision that reached the provider wins. The flag is read at
// each attempt, so it may change between two deliveries of one message;
// if the first attempt passed and reached the provider and its answer was
// lost, declining the retry would leave the provider holding an
// authorization for a cancelled order. So before declining, the check
// asks the provider for the order's authorizations (only for suspect
// orders of the rollout: rare) and, when there is one, passes the request
// on: its idempotency key replays the provider's first answer.
type FraudCheck struct {
	next  FraudCheckedProvider
	flags FlagReader
	rule  FraudRule
}

var _ Authorizer = (*FraudCheck)(nil)

// NewFraudCheck validates the dependencies.
func NewFraudCheck(next FraudCheckedProvider, flags FlagReader, rule FraudRule) (*FraudCheck, error) {
	var errs []error
	if next == nil {
		errs = append(errs, errors.New("provider is required"))
	}
	if flags == nil {
		errs = append(errs, errors.New("flags are required"))
	}
	if rule.MaxAmount < 0 {
		errs = append(errs, fmt.Errorf("max amount %d: want 0 (no limit) or more", rule.MaxAmount))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("fraud check: %w", err)
	}
	return &FraudCheck{next: next, flags: flags, rule: rule}, nil
}

// Authorize implements Authorizer.
func (f *FraudCheck) Authorize(ctx context.Context, key string, req provider.AuthorizeRequest) (provider.Authorization, error) {
	if !f.flags.Enabled(FlagFraudCheck, req.CustomerID) {
		return f.next.Authorize(ctx, key, req)
	}
	reason := f.rule.Suspect(req)
	if reason == "" {
		return f.next.Authorize(ctx, key, req)
	}
	held, err := f.next.Authorizations(ctx, req.OrderID)
	if err != nil {
		return provider.Authorization{}, fmt.Errorf("fraud check of order %s: %w", req.OrderID, err)
	}
	if len(held) > 0 {
		runner.LoggerFrom(ctx).Info("fraud check passed an order the provider already decided", "order_id", req.OrderID, "reason", reason)
		return f.next.Authorize(ctx, key, req)
	}
	runner.LoggerFrom(ctx).Info("fraud check declined the authorization", "order_id", req.OrderID, "reason", reason)
	return provider.Authorization{
		OrderID: req.OrderID, CustomerID: req.CustomerID, Amount: req.Amount, Currency: req.Currency,
		Status: provider.StatusDeclined, DeclineCode: DeclineFraudSuspected,
	}, nil
}
