package orders

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/handlers"
	"github.com/tradewind/tradewind/internal/runner"
)

// orderIDNamespace derives an order id from the command id when the
// producer did not choose one: the same command always names the same order.
var orderIDNamespace = uuid.MustParse("6f1c2a53-8d0e-4c8e-9a54-6a3f0f6b1c11")

// PlaceOrder records a new order as pending and emits orders.placed. It
// reads the newest version of the command (the consumer upcasts v1) into
// its own struct, so v2's shipping address and promotion code are kept on
// the order and carried on orders.placed. The deadline it sets is what the
// deadline sweeper enforces. If the customer's cancel arrived first
// (cancel_order left a tombstone that has not expired), the order is
// cancelled at once with reason customer: orders.placed then
// orders.cancelled, and the participants compensate as for any cancel
// before confirmation.
//
// A command it cannot place (its lines total less than 1 minor unit) is
// recorded as rejected and answered with orders.rejected only: the saga
// never starts, so nothing is reserved, authorized or dead-lettered
// downstream. The prices are the command's: the package doc says why they
// can be trusted.
type PlaceOrder struct {
	// Deadline is how long the saga has to confirm the order.
	Deadline time.Duration
	now      func() time.Time
}

// NewPlaceOrder validates the configuration.
func NewPlaceOrder(deadline time.Duration) (*PlaceOrder, error) {
	if deadline <= 0 {
		return nil, errors.New("place order: deadline must be positive")
	}
	return &PlaceOrder{Deadline: deadline, now: handlers.UTCNow}, nil
}

// Reaction implements Reactor.
func (h *PlaceOrder) Reaction() handlers.Reaction {
	return handlers.Reaction{Step: "place_order", Participant: handlers.Orders, Trigger: events.PlaceOrderV2,
		Emits: []string{events.OrderPlacedV1, events.OrderCancelledV1, events.OrderRejectedV1}}
}

// placement is what place_order makes of a command before touching the
// database: the order, its total and orders.placed — or why it cannot be
// placed (reason, detail).
type placement struct {
	cmd                *event.Event
	in                 events.PlaceOrderV2Data
	orderID            string
	total              int64
	reason, detail     string
	placedAt, deadline time.Time
	lines, address     []byte // JSON; address nil without one
	placed             *event.Event
}

// prepare decodes a command and builds its placement.
func (h *PlaceOrder) prepare(cmd *event.Event) (placement, error) {
	p := placement{cmd: cmd}
	if err := handlers.Decode(cmd, &p.in); err != nil {
		return p, err
	}
	p.orderID = p.in.OrderID
	if p.orderID == "" {
		p.orderID = uuid.NewSHA1(orderIDNamespace, []byte(cmd.ID())).String()
	}
	p.placedAt = h.now()
	p.total, p.reason, p.detail = orderTotal(p.in.Lines)
	if p.reason != "" {
		return p, nil
	}
	p.deadline = p.placedAt.Add(h.Deadline)
	var err error
	if p.lines, err = json.Marshal(p.in.Lines); err != nil {
		return p, fmt.Errorf("place order %s: %w", p.orderID, err)
	}
	if p.in.ShippingAddress != nil {
		if p.address, err = json.Marshal(p.in.ShippingAddress); err != nil {
			return p, fmt.Errorf("place order %s: %w", p.orderID, err)
		}
	}
	p.placed, err = events.New(events.OrderPlacedV1, p.orderID, events.OrderPlaced{
		OrderID:         p.orderID,
		CustomerID:      p.in.CustomerID,
		Lines:           p.in.Lines,
		Currency:        p.in.Currency,
		Total:           p.total,
		PlacedAt:        p.placedAt.Format(time.RFC3339Nano),
		Deadline:        p.deadline.Format(time.RFC3339Nano),
		ShippingAddress: p.in.ShippingAddress,
		PromoCode:       p.in.PromoCode,
	}, events.CausedBy(cmd))
	return p, err
}

// Handle implements runner.Handler.
func (h *PlaceOrder) Handle(ctx context.Context, tx pgx.Tx, cmd *event.Event) ([]*event.Event, error) {
	p, err := h.prepare(cmd)
	if err != nil {
		return nil, err
	}
	if p.reason != "" {
		return h.reject(ctx, tx, p)
	}
	out, err := h.insert(ctx, tx, []placement{p})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// HandleBatch implements BatchReactor: one INSERT for every order of the
// batch, one round trip for their early-cancel locks and tombstones.
// Rejected commands (rare) are recorded one by one. A second command for
// an order id already taken in this batch has no effect, as when the
// order existed before.
func (h *PlaceOrder) HandleBatch(ctx context.Context, tx pgx.Tx, msgs []runner.Msg) ([][]*event.Event, error) {
	out := make([][]*event.Event, len(msgs))
	var todo []placement
	at := map[string]int{} // order id -> index into msgs
	for i, m := range msgs {
		p, err := h.prepare(m.Event)
		if err != nil {
			return nil, err
		}
		if _, taken := at[p.orderID]; taken {
			continue
		}
		at[p.orderID] = i
		if p.reason != "" {
			if out[i], err = h.reject(ctx, tx, p); err != nil {
				return nil, err
			}
			continue
		}
		todo = append(todo, p)
	}
	placed, err := h.insert(ctx, tx, todo)
	if err != nil {
		return nil, err
	}
	for j, evs := range placed {
		out[at[todo[j].orderID]] = evs
	}
	return out, nil
}

// insert records the placements as pending orders (those whose id is not
// taken yet), logs the steps, applies the early cancels it finds, and
// returns what each placement emits (out[j] for ps[j]; nothing for an
// id already taken).
func (h *PlaceOrder) insert(ctx context.Context, tx pgx.Tx, ps []placement) ([][]*event.Event, error) {
	n := len(ps)
	out := make([][]*event.Event, n)
	if n == 0 {
		return out, nil
	}
	var (
		ids, customers, currencies, lines, placedBy, corr, promo = make([]string, n), make([]string, n), make([]string, n),
			make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		totals              = make([]int64, n)
		deadlines, placedAt = make([]time.Time, n), make([]time.Time, n)
		addresses           = make([]*string, n)
	)
	for j, p := range ps {
		ids[j], customers[j], currencies[j], lines[j] = p.orderID, p.in.CustomerID, p.in.Currency, string(p.lines)
		placedBy[j], corr[j], promo[j] = p.cmd.ID(), events.StringExt(p.placed, events.ExtCorrelationID), p.in.PromoCode
		totals[j], deadlines[j], placedAt[j] = p.total, p.deadline, p.placedAt
		if p.address != nil {
			a := string(p.address)
			addresses[j] = &a
		}
	}
	rows, err := tx.Query(ctx, `
		INSERT INTO orders.orders (order_id, customer_id, status, currency, total, lines, deadline, placed_by, created_at, updated_at,
			correlation_id, shipping_address, promo_code)
		SELECT o::uuid, c, 'pending', cur, t, l::jsonb, d, pb, pa, pa, co, a::jsonb, NULLIF(pr, '')
		FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::timestamptz[], $7::text[],
			$8::timestamptz[], $9::text[], $10::text[], $11::text[]) AS u(o, c, cur, t, l, d, pb, pa, co, a, pr)
		ON CONFLICT (order_id) DO NOTHING
		RETURNING order_id::text`,
		ids, customers, currencies, totals, lines, deadlines, placedBy, placedAt, corr, addresses, promo)
	if err != nil {
		return nil, fmt.Errorf("place %d orders: %w", n, err)
	}
	inserted, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("place %d orders: %w", n, err)
	}
	// Another command already placed an order id: the order exists once;
	// this command has no further effect. (Ids compare in PostgreSQL's
	// canonical form, whatever form the command used.)
	fresh := make(map[string]bool, len(inserted))
	for _, id := range inserted {
		fresh[id] = true
	}
	canonical := make([]string, n)
	var placedIDs []string
	for j, p := range ps {
		u, err := uuid.Parse(p.orderID)
		if err != nil {
			return nil, fmt.Errorf("place order %s: %w", p.orderID, err)
		}
		canonical[j] = u.String()
		if fresh[canonical[j]] {
			placedIDs = append(placedIDs, p.orderID)
		}
	}
	early, err := takeCancels(ctx, tx, placedIDs, ps[0].placedAt)
	if err != nil {
		return nil, err
	}
	for j, p := range ps {
		if !fresh[canonical[j]] {
			continue
		}
		err = handlers.LogStep(ctx, tx, handlers.Step{OrderID: p.orderID, Step: "place_order", Participant: handlers.Orders, Cause: p.cmd,
			Outcome: "placed", Emitted: p.placed})
		if err != nil {
			return nil, err
		}
		evs := []*event.Event{p.placed}
		if cmdID := early[canonical[j]]; cmdID != "" {
			o := order{id: p.orderID, customerID: p.in.CustomerID, status: events.StatusPending, currency: p.in.Currency,
				total: p.total, deadline: p.deadline, placedAt: p.placedAt}
			cancelled, err := cancel(ctx, tx, o, events.CancelCustomer, "cancel_order", p.cmd, p.placedAt)
			if err != nil {
				return nil, fmt.Errorf("place order %s: apply the cancel %s that came first: %w", p.orderID, cmdID, err)
			}
			evs = append(evs, cancelled)
		}
		out[j] = evs
	}
	return out, nil
}

// orderTotal is the pure decision of place_order: the order's total, or
// why the command cannot be placed (a reason of OrderRejectedV1 and a
// detail for people). The schema bounds every line (quantity ≤ 10⁴,
// unit_price ≤ 10⁸, ≤ 100 lines), so the sum cannot overflow.
func orderTotal(lines []events.OrderLine) (total int64, reason, detail string) {
	for _, l := range lines {
		total += l.Quantity * l.UnitPrice
	}
	if total < 1 {
		return total, events.RejectInvalidTotal,
			fmt.Sprintf("the lines total %d minor units; an order must total at least 1", total)
	}
	return total, "", ""
}

// reject records the order as rejected (so its id stays taken and a
// redelivered or repeated command changes nothing) and emits
// orders.rejected.
func (h *PlaceOrder) reject(ctx context.Context, tx pgx.Tx, p placement) ([]*event.Event, error) {
	cmd, in, orderID, total, reason, detail, now := p.cmd, p.in, p.orderID, p.total, p.reason, p.detail, p.placedAt
	lines, err := json.Marshal(in.Lines)
	if err != nil {
		return nil, fmt.Errorf("reject order %s: %w", orderID, err)
	}
	corr := events.StringExt(cmd, events.ExtCorrelationID) // as CausedBy names it
	if corr == "" {
		corr = cmd.ID()
	}
	tag, err := tx.Exec(ctx, `
		INSERT INTO orders.orders (order_id, customer_id, status, currency, total, lines, deadline, placed_by, created_at, updated_at,
			correlation_id, cancel_reason, promo_code)
		VALUES ($1, $2, 'rejected', $3, $4, $5, $6, $7, $6, $6, $8, $9, NULLIF($10, ''))
		ON CONFLICT (order_id) DO NOTHING`,
		orderID, in.CustomerID, in.Currency, total, lines, now, cmd.ID(), corr, reason, in.PromoCode)
	if err != nil {
		return nil, fmt.Errorf("reject order %s: %w", orderID, err)
	}
	if tag.RowsAffected() == 0 {
		return nil, nil // the id is taken: this command has no effect
	}
	ev, err := handlers.EmitAndLog(ctx, tx, handlers.Step{OrderID: orderID, Step: "place_order", Participant: handlers.Orders, Cause: cmd,
		Outcome: "rejected", Detail: reason},
		events.OrderRejectedV1, orderID, events.OrderRejected{
			OrderID: orderID, CustomerID: in.CustomerID, Lines: in.Lines, Currency: in.Currency, Total: total,
			Reason: reason, Detail: detail, RejectedAt: now.Format(time.RFC3339Nano),
		})
	if err != nil {
		return nil, err
	}
	return []*event.Event{ev}, nil
}
