package loadgen

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/retry"
)

// The catalogue a run seeds. Every id carries the run id, so runs never
// share SKUs: a scarce SKU holds exactly scarceStock units in every run.
const (
	scarceSKUs  = 5
	scarceStock = 2         // out-of-stock orders ask for scarceStock+1
	plentyStock = 1_000_000 // per in-stock SKU: no happy order ever runs out
	categories  = 3
	declineIDs  = 5
	currency    = "EUR"
)

var countries = []string{"DE", "FR", "NL", "ES", "IT", "PL", "SE"}

// catalogue is what a run seeded, for building orders.
type catalogue struct {
	skus      []string // in stock
	prices    []int64  // of skus; multiples of 100, so totals end in 00
	scarce    []string
	customers []string
	decliners []string // ids containing "decline"
}

func (g *Generator) newCatalogue() catalogue {
	var c catalogue
	for i := range g.cfg.SKUs {
		c.skus = append(c.skus, fmt.Sprintf("%s-sku-%03d", g.run, i))
		c.prices = append(c.prices, int64(i%40+1)*100)
	}
	for i := range scarceSKUs {
		c.scarce = append(c.scarce, fmt.Sprintf("%s-scarce-%d", g.run, i))
	}
	for i := range g.cfg.Customers {
		c.customers = append(c.customers, fmt.Sprintf("%s-c-%04d", g.run, i))
	}
	for i := range declineIDs {
		c.decliners = append(c.decliners, fmt.Sprintf("%s-decline-%02d", g.run, i))
	}
	return c
}

// seed publishes the categories, products, customers and restocks a
// producer service would, then waits until inventory has applied every
// restock (its inventory.restocked events), so that no order of the run
// meets an unknown SKU.
func (g *Generator) seed(ctx context.Context) error {
	c := g.cat
	root := g.run + "-root"
	type command struct {
		typ  string
		data any
	}
	var cmds []command
	add := func(typ string, data any) { cmds = append(cmds, command{typ, data}) }
	add(events.UpsertCategoryV1, events.Category{CategoryID: root, Name: "Load " + g.run})
	for i := range categories {
		add(events.UpsertCategoryV1, events.Category{CategoryID: fmt.Sprintf("%s-cat-%d", g.run, i), ParentID: root, Name: fmt.Sprintf("Category %d", i)})
	}
	for i, sku := range c.skus {
		add(events.UpsertProductV1, events.Product{SKU: sku, Name: "Product " + sku, CategoryID: fmt.Sprintf("%s-cat-%d", g.run, i%categories),
			Price: c.prices[i], Currency: currency})
	}
	for _, sku := range c.scarce {
		add(events.UpsertProductV1, events.Product{SKU: sku, Name: "Scarce " + sku, CategoryID: root, Price: 500, Currency: currency})
	}
	for i, id := range append(append([]string{}, c.customers...), c.decliners...) {
		segment := "retail"
		if i%5 == 0 {
			segment = "business"
		}
		add(events.UpsertCustomerV1, events.Customer{CustomerID: id, Email: id + "@load.tradewind.test", Name: "Customer " + id,
			Segment: segment, Country: countries[i%len(countries)]})
	}
	// One duplicate, as real customer data has: the first customer signed
	// up again under another id, the email typed in upper case. It places
	// no orders; it is there for the data quality checks
	// (dq_duplicate_customers, docs/analysts.md).
	first := c.customers[0]
	add(events.UpsertCustomerV1, events.Customer{CustomerID: g.run + "-dup-0000", Email: strings.ToUpper(first) + "@load.tradewind.test",
		Name: "customer " + first, Segment: "retail", Country: countries[0]})
	g.mu.Lock()
	for _, sku := range c.skus {
		add(events.RestockV1, events.Restock{SKU: sku, Quantity: plentyStock})
		g.unseeded[sku] = true
	}
	for _, sku := range c.scarce {
		add(events.RestockV1, events.Restock{SKU: sku, Quantity: scarceStock})
		g.unseeded[sku] = true
	}
	g.mu.Unlock()

	for _, cmd := range cmds {
		e, err := events.New(cmd.typ, "", cmd.data, events.WithSource(Source))
		if err != nil {
			return fmt.Errorf("seed: %w", err)
		}
		if err := g.publish(ctx, e); err != nil {
			return fmt.Errorf("seed: %w", err)
		}
	}
	g.log.Info("seeded; waiting for inventory to apply the restocks", "commands", len(cmds), "skus", len(c.skus)+len(c.scarce))

	deadline := time.Now().Add(g.cfg.SeedWait)
	for {
		g.mu.Lock()
		left := len(g.unseeded)
		g.mu.Unlock()
		if left == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("seed: %d SKUs still not restocked after %s: is the inventory role running?", left, g.cfg.SeedWait)
		}
		if !retry.Sleep(ctx, 50*time.Millisecond) {
			return ctx.Err()
		}
	}
}

// lines builds the lines of an order of class c: in-stock SKUs for a
// total ending in 00; plus, for OutOfStock, more of a scarce SKU than
// exists; for half the declines a line that makes the total end in 51.
func (g *Generator) lines(c Class, declineByAmount bool) []events.OrderLine {
	n := 1 + g.rnd.IntN(3)
	out := make([]events.OrderLine, 0, n+1)
	used := map[int]bool{}
	for range n {
		i := g.rnd.IntN(len(g.cat.skus))
		if used[i] {
			continue
		}
		used[i] = true
		out = append(out, events.OrderLine{SKU: g.cat.skus[i], Quantity: int64(1 + g.rnd.IntN(3)), UnitPrice: g.cat.prices[i]})
	}
	switch {
	case c == OutOfStock:
		out = append(out, events.OrderLine{SKU: g.cat.scarce[g.rnd.IntN(len(g.cat.scarce))], Quantity: scarceStock + 1, UnitPrice: 500})
	case c == Decline && declineByAmount:
		// Quantity 1 at a price ending in 51: the total ends in 51.
		out = append(out, events.OrderLine{SKU: g.cat.skus[0], Quantity: 1, UnitPrice: g.cat.prices[0] + 51})
	}
	return out
}
