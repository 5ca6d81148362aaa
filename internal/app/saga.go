package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/handlers"
	"github.com/tradewind/tradewind/handlers/inventory"
	"github.com/tradewind/tradewind/handlers/orders"
	"github.com/tradewind/tradewind/handlers/payments"
	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/config"
	"github.com/tradewind/tradewind/internal/flags"
	"github.com/tradewind/tradewind/internal/metrics"
	"github.com/tradewind/tradewind/internal/outbox"
	"github.com/tradewind/tradewind/internal/provider"
	"github.com/tradewind/tradewind/internal/retry"
	"github.com/tradewind/tradewind/internal/runner"
)

// The saga roles (orders, inventory, payments) are described by plans:
// each durable consumer with the router of its reactions, plus the
// deadline sweeper. Build turns a plan into runners; Reactions reads the
// same plans, so the saga table in sagas/ is checked against exactly what
// the roles wire.

// consumerPlan is one durable consumer of a saga role.
type consumerPlan struct {
	name       string
	stream     string
	router     *handlers.Router
	batchSize  int // 0: TRADEWIND_BATCH_SIZE
	maxDeliver int // 0: TRADEWIND_MAX_DELIVER
	workers    int // runners on the consumer in this process (≥ 1)
	// hold, when set, holds batches back while a dependency is down
	// (runner.Config.Hold).
	hold func() time.Duration
}

// paymentsMaxDeliver lets payments-events ride out a provider outage:
// while the breaker is open each message is redelivered once per
// cool-down (TRADEWIND_PAYMENT_BREAKER_COOLDOWN, default 5 s), so 1000
// deliveries cover more than an hour before anything is dead-lettered.
const paymentsMaxDeliver = 1000

// paymentsWorkers is how many runners share payments-events in one
// process: its handlers wait on the provider's HTTP answers, so a few
// transactions in flight keep throughput up. The payment row lock keeps
// the reactions to one order serial.
const paymentsWorkers = 4

// deadlineBatch bounds the orders one sweep cancels.
const deadlineBatch = 500

func ordersPlan(cfg config.Config) ([]consumerPlan, *orders.Deadlines, error) {
	place, err := orders.NewPlaceOrder(cfg.OrderDeadline)
	if err != nil {
		return nil, nil, err
	}
	commands, err := handlers.NewRouter(place, orders.NewCancelOrder(), orders.UpsertCustomer{})
	if err != nil {
		return nil, nil, fmt.Errorf("orders-commands: %w", err)
	}
	evts, err := handlers.NewRouter(orders.NewConfirmOrder(), orders.NewCancelOnRejection(), orders.NewCancelOnDecline())
	if err != nil {
		return nil, nil, fmt.Errorf("orders-events: %w", err)
	}
	deadlines, err := orders.NewDeadlines(deadlineBatch)
	if err != nil {
		return nil, nil, err
	}
	return []consumerPlan{
		{name: "orders-commands", stream: broker.StreamCommands, router: commands},
		{name: "orders-events", stream: broker.StreamEvents, router: evts},
	}, deadlines, nil
}

func inventoryPlan() ([]consumerPlan, error) {
	commands, err := handlers.NewRouter(inventory.Restock{}, inventory.UpsertProduct{}, inventory.UpsertCategory{}, inventory.AddProductImage{})
	if err != nil {
		return nil, fmt.Errorf("inventory-commands: %w", err)
	}
	// release_stock before return_stock: release leaves the tombstone a
	// late orders.placed must find.
	evts, err := handlers.NewRouter(inventory.ReserveStock{}, inventory.CommitStock{}, inventory.ReleaseStock{}, inventory.ReturnStock{})
	if err != nil {
		return nil, fmt.Errorf("inventory-events: %w", err)
	}
	// Both lock a batch's SKUs up front, in SKU order (inventory.LockStock):
	// restocks and reactions then cannot deadlock each other.
	return []consumerPlan{
		{name: "inventory-commands", stream: broker.StreamCommands, router: commands.LockWith(inventory.LockStock)},
		{name: "inventory-events", stream: broker.StreamEvents, router: evts.LockWith(inventory.LockStock)},
	}, nil
}

// paymentProvider is the whole provider API the payments role uses.
type paymentProvider interface {
	payments.Authorizer
	payments.AuthorizationFinder
	payments.Capturer
	payments.Voider
	payments.Refunder
	// Hold is how long a call would be refused at once (an open breaker).
	Hold() time.Duration
}

// paymentsPlan wires the payments participant. Authorizations pass the
// fraud check first for the customers the fraud-check flag is on for.
func paymentsPlan(p paymentProvider, fl payments.FlagReader) ([]consumerPlan, error) {
	fraud, err := payments.NewFraudCheck(p, fl, payments.DefaultFraudRule)
	if err != nil {
		return nil, err
	}
	authorize, err := payments.NewAuthorizePayment(fraud, p)
	if err != nil {
		return nil, err
	}
	capture, err := payments.NewCapturePayment(p)
	if err != nil {
		return nil, err
	}
	void, err := payments.NewVoidPayment(p)
	if err != nil {
		return nil, err
	}
	refund, err := payments.NewRefundPayment(p)
	if err != nil {
		return nil, err
	}
	// void before refund: void records that the order is cancelled.
	evts, err := handlers.NewRouter(authorize, capture, void, refund)
	if err != nil {
		return nil, fmt.Errorf("payments-events: %w", err)
	}
	// While the provider's breaker refuses calls, a batch is held back
	// before it touches PostgreSQL: each redelivery during an outage used
	// to cost a rolled-back fast path plus a savepoint per message, every
	// one failing on the breaker. The reactions that need no call (an
	// order cancelled before its payment was authorized, a decided
	// duplicate) wait for the provider too; the handlers accept their
	// events in either order, as they do after any redelivery.
	return []consumerPlan{{
		name: "payments-events", stream: broker.StreamEvents, router: evts,
		batchSize: 20, maxDeliver: paymentsMaxDeliver, workers: paymentsWorkers,
		hold: p.Hold,
	}}, nil
}

// paymentClient builds the provider client from the configuration.
func paymentClient(cfg config.Config, d *Deps) (*provider.Client, error) {
	if cfg.PaymentURL == "" {
		return nil, errors.New("payments: TRADEWIND_PAYMENT_URL is empty and no in-process payment provider runs")
	}
	ccfg := provider.ClientConfig{BaseURL: cfg.PaymentURL, Timeout: cfg.PaymentTimeout, Cooldown: cfg.PaymentBreakerCooldown}
	if d != nil && d.Log != nil {
		log := d.Log.With("component", "payment-client")
		ccfg.OnStateChange = func(from, to string) {
			metrics.SetBreakerState("payment-provider", to)
			log.Warn("payment provider circuit breaker changed", "from", from, "to", to)
		}
	}
	return provider.NewClient(ccfg)
}

// runners turns a role's plans into runners (workers of one consumer
// share its name). With TRADEWIND_PARTITIONS > 1 the plans on EVENTS run
// partitioned instead (partitioned.go); commands are consumed as before.
func (d *Deps) runners(role string, plans []consumerPlan) ([]Service, error) {
	var out, shared []consumerPlan
	for _, p := range plans {
		if d.Cfg.Partitions > 1 && p.stream == broker.StreamEvents {
			out = append(out, p)
		} else {
			shared = append(shared, p)
		}
	}
	var services []Service
	for _, p := range shared {
		for range max(p.workers, 1) {
			r, err := d.planRunner(p, -1)
			if err != nil {
				return nil, err
			}
			services = append(services, r)
		}
	}
	if len(out) > 0 {
		k, err := d.partitionKeeper(role, out)
		if err != nil {
			return nil, err
		}
		services = append(services, k)
	}
	return services, nil
}

// planRunner builds the runner of plan p, or of its partition when
// partition ≥ 0 (a durable consumer of its own on broker.StreamPartitions,
// keeping p's name for the inbox, metrics and dead letters).
func (d *Deps) planRunner(p consumerPlan, partition int) (*runner.Runner, error) {
	cfg := runner.Config{
		Name: p.name, Stream: p.stream, FilterSubjects: p.router.FilterSubjects(),
		BatchSize: p.batchSize, MaxDeliver: p.maxDeliver,
		Upcast:  events.Upcast, // old versions reach the handlers as the newest
		Trusted: p.stream == broker.StreamEvents,
		Hold:    p.hold,
	}
	if partition >= 0 {
		cfg.Durable = partitionDurable(p.name, partition)
		cfg.Stream = broker.StreamPartitions
		for i, f := range cfg.FilterSubjects {
			cfg.FilterSubjects[i] = broker.PartitionFilter(partition, f)
		}
	}
	return d.NewRunner(cfg, p.router)
}

// deadlineSweeper runs the order deadline sweeper every period: each sweep
// is one transaction that cancels overdue orders and writes their
// orders.cancelled events to the outbox, and deletes expired cancel
// tombstones (an index lookup that finds nothing almost every time). It
// commits and publishes as the runner does (outbox.Publisher.Transact).
func (d *Deps) deadlineSweeper(h *orders.Deadlines, period time.Duration) Service {
	log := d.Log.With("component", "deadlines")
	sweep := func(ctx context.Context) (int, error) {
		var evs []*event.Event
		err := d.Outbox.Transact(ctx, d.Pool, func(ctx context.Context, tx pgx.Tx, _ *outbox.Pending) (err error) {
			if evs, err = h.CancelOverdue(ctx, tx); err != nil {
				return err
			}
			if _, err := orders.PurgeCancelTombstones(ctx, tx, time.Now(), deadlineBatch); err != nil {
				return err
			}
			return outbox.Add(ctx, tx, evs...)
		})
		if err != nil {
			return 0, err
		}
		observeSagaOutcomes(evs)
		return len(evs), nil
	}
	return ServiceFunc("order-deadlines", func(ctx context.Context) error {
		return retry.Every(ctx, period, log, "deadline sweep failed; retrying", func(ctx context.Context) (bool, error) {
			n, err := sweep(ctx)
			if n > 0 {
				log.Info("overdue orders cancelled", "orders", n)
			}
			return n >= h.Batch, err
		})
	})
}

// Reactions returns, per saga role, the reactions its consumers and its
// timer wire, in wiring order: what the saga table in sagas/ is checked
// against. It builds the plans without starting anything.
func Reactions(cfg config.Config) (map[string][]handlers.Reaction, error) {
	out := map[string][]handlers.Reaction{}
	ordersPlans, deadlines, err := ordersPlan(cfg)
	if err != nil {
		return nil, err
	}
	for _, p := range ordersPlans {
		out["orders"] = append(out["orders"], p.router.Reactions()...)
	}
	out["orders"] = append(out["orders"], deadlines.Reaction())
	inventoryPlans, err := inventoryPlan()
	if err != nil {
		return nil, err
	}
	for _, p := range inventoryPlans {
		out["inventory"] = append(out["inventory"], p.router.Reactions()...)
	}
	if cfg.PaymentURL == "" {
		cfg.PaymentURL = "http://127.0.0.1:1" // never called: the plan is only read
	}
	client, err := paymentClient(cfg, nil)
	if err != nil {
		return nil, err
	}
	paymentsPlans, err := paymentsPlan(client, flags.Off{}) // read, never run
	if err != nil {
		return nil, err
	}
	for _, p := range paymentsPlans {
		out["payments"] = append(out["payments"], p.router.Reactions()...)
	}
	return out, nil
}
