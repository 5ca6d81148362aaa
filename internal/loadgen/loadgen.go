// Package loadgen is `tradewind load`: it acts as the producer services
// would — seeds a catalogue, stock and customers, then places orders at a
// target rate with a mix of paths (happy, out of stock, declined, customer
// cancel, timeout, provider outage) — and measures how long each order
// takes from the command's publish to its terminal event.
//
// It talks to Tradewind only as a producer does: commands published to
// NATS with broker.Publish (the order id chosen by the generator), events
// read from the EVENTS stream with an ordered consumer (which survives a
// NATS restart and resumes where it was). Timeouts and outages are made
// by switching the payment provider simulator's /admin/faults.
//
// Hazard: fault windows act on the whole system, not on single orders.
// Orders of any class placed during an outage wait for the provider;
// timeout orders are therefore placed in a phase of their own after every
// other order has finished, with the provider hanging until each of them
// is cancelled.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/schollz/progressbar/v3"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/provider"
	"github.com/tradewind/tradewind/internal/retry"
	"github.com/tradewind/tradewind/schemas"
)

// Source is the CloudEvent source of everything the generator publishes.
const Source = "/tradewind/load"

// Config configures a run. Orders or Duration bounds it.
type Config struct {
	Orders      int           // orders to place (0: until Duration has passed)
	Duration    time.Duration // how long to place orders when Orders is 0
	Rate        float64       // orders per second; 0 places them as fast as Concurrency allows
	Mix         Mix           // weights per class (default DefaultMix)
	Concurrency int           // publishes in flight (default 32)
	Wait        time.Duration // how long to wait for terminal events after the last order (default 2m)
	SeedWait    time.Duration // how long to wait for the seeded stock to be applied (default 2m)
	PaymentURL  string        // the provider simulator; without it timeout and outage orders are placed as happy
	OutageFor   time.Duration // length of one provider outage window (default 3s; keep it below the order deadline)
	CancelAfter time.Duration // a customer cancel follows its order by up to this (default 200ms)
	SKUs        int           // in-stock SKUs to seed (default 50)
	Customers   int           // customers to seed (default 100)
	Seed        uint64        // random seed (0: random)
	Progress    io.Writer     // progress bar destination; nil for none
	Log         *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Mix == nil {
		c.Mix, _ = ParseMix(DefaultMix)
	}
	if c.Concurrency == 0 {
		c.Concurrency = 32
	}
	if c.Wait == 0 {
		c.Wait = 2 * time.Minute
	}
	if c.SeedWait == 0 {
		c.SeedWait = 2 * time.Minute
	}
	if c.OutageFor == 0 {
		c.OutageFor = 3 * time.Second
	}
	if c.CancelAfter == 0 {
		c.CancelAfter = 200 * time.Millisecond
	}
	if c.SKUs == 0 {
		c.SKUs = 50
	}
	if c.Customers == 0 {
		c.Customers = 100
	}
	if c.Seed == 0 {
		c.Seed = rand.Uint64()
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if c.Orders < 0 || c.Duration < 0 || (c.Orders == 0 && c.Duration == 0) {
		errs = append(errs, errors.New("give a positive --orders or --duration"))
	}
	if c.Rate < 0 {
		errs = append(errs, fmt.Errorf("--rate must not be negative, got %g", c.Rate))
	}
	if c.Concurrency < 1 || c.Concurrency > 10000 {
		errs = append(errs, fmt.Errorf("--concurrency: want 1..10000, got %d", c.Concurrency))
	}
	if c.SKUs < 1 || c.SKUs > 100000 || c.Customers < 1 || c.Customers > 1000000 {
		errs = append(errs, fmt.Errorf("--skus and --customers: want 1..100000 and 1..1000000, got %d and %d", c.SKUs, c.Customers))
	}
	return errors.Join(errs...)
}

// Generator places one run of orders.
type Generator struct {
	cfg    Config
	js     jetstream.JetStream
	log    *slog.Logger
	run    string // prefix of every id the run creates
	cat    catalogue
	rnd    *rand.Rand // main loop only
	faults *faults    // nil without a provider URL

	mu       sync.Mutex
	orders   map[string]*order
	unseeded map[string]bool // SKUs whose restock is not applied yet

	done     atomic.Int64
	retries  atomic.Int64
	bar      *progressbar.ProgressBar
	inflight sync.WaitGroup
}

// order is what the generator knows of one order.
type order struct {
	id       string
	class    Class
	sent     time.Time // first publish attempt
	acked    time.Time // JetStream's ack (zero: never acknowledged)
	failed   bool      // publish gave up
	terminal time.Time // first terminal event
	outcome  string    // "confirmed" or "cancelled:<reason>", the latest seen
	done     bool
	// stored is when the EVENTS stream stored each of the order's saga
	// events (by "context.name"), for the per-hop breakdown.
	stored map[string]time.Time
}

// New validates the configuration.
func New(cfg Config, js jetstream.JetStream) (*Generator, error) {
	if js == nil {
		return nil, errors.New("load: a JetStream connection is required")
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	g := &Generator{
		cfg: cfg, js: js, log: cfg.Log,
		run:      "load-" + uuid.NewString()[:8],
		rnd:      rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x5DEECE66D)),
		orders:   map[string]*order{},
		unseeded: map[string]bool{},
	}
	if cfg.PaymentURL != "" {
		g.faults = newFaults(cfg.PaymentURL)
	}
	g.cat = g.newCatalogue()
	return g, nil
}

// Run seeds, places the orders, waits for their terminal events and
// returns the summary. An interrupted run (ctx cancelled) still returns
// the summary of what happened, with the context's error.
func (g *Generator) Run(ctx context.Context) (*Summary, error) {
	start := time.Now()
	stopWatch, err := g.watch(ctx)
	if err != nil {
		return nil, err
	}
	defer stopWatch()

	notes := []string{}
	mix := Mix{}
	for c, w := range g.cfg.Mix {
		mix[c] = w
	}
	if g.faults == nil && (mix[Timeout] > 0 || mix[Outage] > 0) {
		notes = append(notes, "no payment provider URL: timeout and outage orders were placed as happy ones")
		mix[Happy] += mix[Timeout] + mix[Outage]
		mix[Timeout], mix[Outage] = 0, 0
	}
	if g.faults != nil {
		saved, err := g.faults.get(ctx)
		if err != nil {
			return nil, fmt.Errorf("load: %w (give --payment-url, or a mix without timeout and outage)", err)
		}
		defer func() {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if saved.Outage == "" {
				saved.Outage = provider.OutageOff
			}
			if err := g.faults.restore(rctx, saved); err != nil {
				g.log.Warn("could not restore the payment provider's faults", "err", err)
			}
		}()
	}

	if err := g.seed(ctx); err != nil {
		return nil, err
	}
	seeded := time.Now()

	total := int64(g.cfg.Orders)
	if total == 0 {
		total = -1
	}
	if g.cfg.Progress != nil {
		g.bar = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(g.cfg.Progress),
			progressbar.OptionSetDescription("orders done"),
			progressbar.OptionShowCount(),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionSetElapsedTime(true),
			progressbar.OptionClearOnFinish(),
		)
	}

	// Main phase: every class but timeout.
	timeouts, runErr := g.placeMain(ctx, mix)
	g.inflight.Wait()
	runErr = errors.Join(runErr, g.waitDone(ctx, func(o *order) bool { return o.class != Timeout }))

	// Timeout phase: the provider hangs until every timeout order is cancelled.
	if timeouts > 0 && runErr == nil {
		runErr = g.placeTimeouts(ctx, timeouts)
		if runErr != nil {
			notes = append(notes, "timeout phase: "+runErr.Error())
			runErr = nil
		}
	}
	if g.bar != nil {
		_ = g.bar.Finish()
		fmt.Fprintln(g.cfg.Progress)
	}
	sum := g.summarize(start, seeded, mix)
	sum.Notes = append(sum.Notes, notes...)
	if err := ctx.Err(); err != nil {
		sum.Notes = append(sum.Notes, "interrupted: "+err.Error())
		return sum, err
	}
	return sum, runErr
}

// placeMain places the main phase's orders, opening a provider outage
// window when an outage order is drawn, and returns how many timeout
// orders were drawn (they are placed later).
func (g *Generator) placeMain(ctx context.Context, mix Mix) (timeouts int, err error) {
	sem := make(chan struct{}, g.cfg.Concurrency)
	start := time.Now()
	var outageUntil time.Time
	defer func() {
		if outageUntil.IsZero() {
			return
		}
		// The window lasts its full length even when the last order
		// came earlier: the breaker must see the outage.
		retry.Sleep(ctx, time.Until(outageUntil))
		g.setOutage(ctx, provider.OutageOff)
	}()
	for i := 0; ; i++ {
		if g.cfg.Orders > 0 && i >= g.cfg.Orders || g.cfg.Orders == 0 && time.Since(start) >= g.cfg.Duration {
			return timeouts, nil
		}
		if err := g.pace(ctx, start, i); err != nil {
			return timeouts, err
		}
		if !outageUntil.IsZero() && time.Now().After(outageUntil) {
			g.setOutage(ctx, provider.OutageOff)
			outageUntil = time.Time{}
		}
		c := mix.pick(g.rnd)
		switch c {
		case Timeout:
			timeouts++
			continue
		case Outage:
			if outageUntil.IsZero() {
				g.setOutage(ctx, provider.OutageError)
				outageUntil = time.Now().Add(g.cfg.OutageFor)
			}
		}
		if err := g.launch(ctx, sem, c); err != nil {
			return timeouts, err
		}
	}
}

// placeTimeouts places n orders while the provider hangs, waits for
// them to be cancelled, then lets the provider answer again.
func (g *Generator) placeTimeouts(ctx context.Context, n int) error {
	g.log.Info("timeout phase: the provider hangs until these orders pass their deadline", "orders", n)
	if err := g.faults.setOutage(ctx, provider.OutageTimeout); err != nil {
		return err
	}
	defer g.setOutage(ctx, provider.OutageOff)
	sem := make(chan struct{}, g.cfg.Concurrency)
	start := time.Now()
	for i := range n {
		if err := g.pace(ctx, start, i); err != nil {
			return err
		}
		if err := g.launch(ctx, sem, Timeout); err != nil {
			return err
		}
	}
	g.inflight.Wait()
	return g.waitDone(ctx, func(o *order) bool { return o.class == Timeout })
}

func (g *Generator) setOutage(ctx context.Context, mode string) {
	if g.faults == nil {
		return
	}
	if err := g.faults.setOutage(context.WithoutCancel(ctx), mode); err != nil {
		g.log.Warn("could not switch the payment provider's outage", "mode", mode, "err", err)
	}
}

// pace sleeps until order i's slot at the target rate.
func (g *Generator) pace(ctx context.Context, start time.Time, i int) error {
	if g.cfg.Rate <= 0 {
		return ctx.Err()
	}
	at := start.Add(time.Duration(float64(i) / g.cfg.Rate * float64(time.Second)))
	retry.Sleep(ctx, time.Until(at))
	return ctx.Err()
}

// launch builds an order of class c and publishes it (and, for Cancel,
// its cancellation) in a goroutine bounded by sem.
func (g *Generator) launch(ctx context.Context, sem chan struct{}, c Class) error {
	id, err := uuid.NewV7()
	if err != nil {
		return err
	}
	customer := g.cat.customers[g.rnd.IntN(len(g.cat.customers))]
	byAmount := g.rnd.IntN(2) == 0
	if c == Decline && !byAmount {
		customer = g.cat.decliners[g.rnd.IntN(len(g.cat.decliners))]
	}
	place, err := events.New(events.PlaceOrderV1, "", events.PlaceOrder{
		OrderID: id.String(), CustomerID: customer, Currency: currency, Lines: g.lines(c, byAmount),
	}, events.WithSource(Source), withPartition(id.String()))
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	cancelDelay := time.Duration(g.rnd.Int64N(int64(g.cfg.CancelAfter) + 1))
	o := &order{id: id.String(), class: c}

	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	g.mu.Lock()
	g.orders[o.id] = o // before the publish: its events may come quickly
	g.mu.Unlock()
	g.inflight.Add(1)
	go func() {
		defer g.inflight.Done()
		defer func() { <-sem }()
		sent := time.Now()
		err := g.publish(ctx, place)
		g.mu.Lock()
		o.sent = sent
		if err != nil {
			o.failed = true
		} else {
			o.acked = time.Now()
		}
		g.mu.Unlock()
		if err != nil {
			g.log.Warn("order not placed", "order", o.id, "err", err)
			return
		}
		if c != Cancel {
			return
		}
		if !retry.Sleep(ctx, cancelDelay) {
			return
		}
		cancel, err := events.New(events.CancelOrderV1, "", events.CancelOrder{OrderID: o.id}, events.WithSource(Source), withPartition(o.id))
		if err == nil {
			err = g.publish(ctx, cancel)
		}
		if err != nil {
			g.log.Warn("cancel not sent", "order", o.id, "err", err)
		}
	}()
	return nil
}

// publish validates e, then publishes it until JetStream acknowledges it,
// retrying with backoff through NATS outages. Every retry sends the same
// event id, so the broker (or, past its duplicate window, the consumer's
// inbox) drops the copies.
func (g *Generator) publish(ctx context.Context, e *event.Event) error {
	if err := schemas.ValidateEvent(e); err != nil {
		return err
	}
	backoff := retry.Backoff{Base: 100 * time.Millisecond, Max: 2 * time.Second}
	const attempts = 100
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := broker.Publish(actx, g.js, e)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || attempt == attempts {
			return err
		}
		g.retries.Add(1)
		if !retry.Sleep(ctx, backoff.Delay(attempt)) {
			return ctx.Err()
		}
	}
}

// waitDone waits until every acknowledged order that sel picks is done,
// or Wait passes (the summary then counts the rest as pending).
func (g *Generator) waitDone(ctx context.Context, sel func(*order) bool) error {
	deadline := time.Now().Add(g.cfg.Wait)
	for {
		left := 0
		g.mu.Lock()
		for _, o := range g.orders {
			if sel(o) && !o.acked.IsZero() && !o.done {
				left++
			}
		}
		g.mu.Unlock()
		if left == 0 || time.Now().After(deadline) {
			if left > 0 {
				g.log.Warn("gave up waiting for terminal events", "orders", left, "wait", g.cfg.Wait)
			}
			return nil
		}
		if !retry.Sleep(ctx, 50*time.Millisecond) {
			return ctx.Err()
		}
	}
}

// Accepted returns the ids of the orders JetStream acknowledged: every one
// of them must end up in orders.orders, terminal.
func (g *Generator) Accepted() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]string, 0, len(g.orders))
	for _, o := range g.orders {
		if !o.acked.IsZero() {
			out = append(out, o.id)
		}
	}
	return out
}

// stored notes when the stream stored one of an order's saga events.
func (g *Generator) stored(orderID, name string, at time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	o, ok := g.orders[orderID]
	if !ok {
		return
	}
	if o.stored == nil {
		o.stored = make(map[string]time.Time, 4)
	}
	if _, seen := o.stored[name]; !seen {
		o.stored[name] = at
	}
}

// record notes an order's terminal event.
func (g *Generator) record(orderID, outcome string, at time.Time) {
	g.mu.Lock()
	o, ok := g.orders[orderID]
	if !ok {
		g.mu.Unlock()
		return
	}
	if o.terminal.IsZero() {
		o.terminal = at
	}
	o.outcome = outcome
	finished := !o.done && (o.class != Cancel || strings.HasPrefix(outcome, "cancelled"))
	if finished {
		o.done = true
	}
	g.mu.Unlock()
	if finished {
		g.done.Add(1)
		if g.bar != nil {
			_ = g.bar.Add(1)
		}
	}
}

// withPartition sets the partitionkey of a command to its order id, as a
// careful producer does: the runner then keeps an order's commands in
// order (a cancel is parked behind its order's failing place).
func withPartition(orderID string) events.Option {
	return func(e *event.Event) { e.SetExtension(events.ExtPartitionKey, orderID) }
}
