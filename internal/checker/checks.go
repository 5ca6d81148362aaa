package checker

// The checks, one SQL query each. Every query returns the violations it
// finds as rows of (subject, message): subject names the order ("order
// <id>"), SKU ("sku <sku>") or event ("event <id>") at fault, message says
// what was found and what was wanted. A consistent system returns no rows.
//
// Every query may use these named arguments (pgx.NamedArgs):
//
//	@settle  seconds: a terminal order changed less than this long ago is
//	         still in flight (its compensations may be on their way) and
//	         is skipped by the checks that need an order at rest
//	@slack   seconds: a pending order is overdue once deadline + slack has passed
//	@events  jsonb array of {"id","subject","order_id","name","ts"}: the
//	         EVENTS stream's messages (checks needing it run only when it is read)
//	@snapshot the time the database snapshot was taken
//	@ledger  jsonb array of provider.Authorization: the provider's ledger
//
// settledCTE names the orders at rest: terminal, and untouched for @settle.
// An order with events still in core.outbox is in flight whatever its age.
const settledCTE = `settled AS (
	SELECT o.* FROM orders.orders o
	WHERE o.status <> 'pending'
	  AND GREATEST(o.updated_at, o.confirmed_at, o.cancelled_at) <= now() - @settle::float8 * interval '1 second'
	  AND NOT EXISTS (SELECT 1 FROM core.outbox ob WHERE split_part(ob.subject, '.', 4) = o.order_id::text)
)`

// opsCTE summarises payments.payment_ops per order: how many of each
// operation, the provider ids, and the amounts (largest and total, which
// differ only when an operation was repeated).
const opsCTE = `ops AS (
	SELECT order_id,
		count(*) FILTER (WHERE op = 'authorize') AS auths,
		count(*) FILTER (WHERE op = 'capture')   AS captures,
		count(*) FILTER (WHERE op = 'void')      AS voids,
		count(*) FILTER (WHERE op = 'refund')    AS refunds,
		max(provider_id) FILTER (WHERE op = 'authorize') AS auth_id,
		max(provider_id) FILTER (WHERE op = 'capture')   AS capture_id,
		max(provider_id) FILTER (WHERE op = 'void')      AS void_id,
		max(provider_id) FILTER (WHERE op = 'refund')    AS refund_id,
		max(amount) FILTER (WHERE op = 'authorize') AS auth_amount,
		max(amount) FILTER (WHERE op = 'capture')   AS captured_max,
		sum(amount) FILTER (WHERE op = 'capture')   AS captured_sum,
		max(amount) FILTER (WHERE op = 'refund')    AS refunded_max,
		sum(amount) FILTER (WHERE op = 'refund')    AS refunded_sum
	FROM payments.payment_ops GROUP BY order_id
)`

// need says which outside input a check reads besides PostgreSQL.
type need int

const (
	needDB need = iota
	needStream
	needLedger
)

// check is one invariant.
type check struct {
	Name  string
	Doc   string
	Needs need
	SQL   string
}

// checks are run in this order; names are stable (scripts grep them).
var checks = []check{
	{
		Name: "order-terminal",
		Doc:  "every order is confirmed or cancelled once its deadline plus slack has passed",
		SQL: `
SELECT 'order ' || order_id, format('still pending %s after its deadline %s (slack %ss)',
	date_trunc('second', now() - deadline), deadline, @slack::float8)
FROM orders.orders
WHERE status = 'pending' AND deadline + @slack::float8 * interval '1 second' < now()
ORDER BY deadline`,
	},
	{
		Name: "stock-non-negative",
		Doc:  "per SKU, on_hand and reserved are never negative and reserved <= on_hand",
		SQL: `
SELECT 'sku ' || sku, format('on_hand %s, reserved %s: want 0 <= reserved <= on_hand', on_hand, reserved)
FROM inventory.inventory
WHERE on_hand < 0 OR reserved < 0 OR reserved > on_hand
ORDER BY sku`,
	},
	{
		Name: "stock-balance",
		Doc:  "per SKU, on_hand = restocked - committed + returned and reserved = units of open reservations",
		// A returned reservation was committed and put back, so it counts in
		// neither term: committed below is the rows still committed.
		SQL: `
WITH restocked AS (
	SELECT sku, sum(quantity) AS q FROM inventory.restocks GROUP BY sku
), moved AS (
	SELECT sku,
		coalesce(sum(quantity) FILTER (WHERE status = 'committed'), 0) AS committed,
		coalesce(sum(quantity) FILTER (WHERE status = 'returned'), 0)  AS returned,
		coalesce(sum(quantity) FILTER (WHERE status = 'reserved'), 0)  AS reserved
	FROM inventory.reservations GROUP BY sku
), b AS (
	SELECT i.sku, i.on_hand, i.reserved,
		coalesce(r.q, 0) AS restocked,
		coalesce(m.committed, 0) + coalesce(m.returned, 0) AS committed,
		coalesce(m.returned, 0) AS returned,
		coalesce(m.reserved, 0) AS open
	FROM inventory.inventory i
	LEFT JOIN restocked r USING (sku)
	LEFT JOIN moved m USING (sku)
)
SELECT 'sku ' || sku, msg FROM b, LATERAL (VALUES
	(on_hand <> restocked - committed + returned,
	 format('on_hand %s, want restocked %s - committed %s + returned %s = %s',
		on_hand, restocked, committed, returned, restocked - committed + returned)),
	(reserved <> open,
	 format('reserved %s, want %s (the units of its reservations with status reserved)', reserved, open))
) AS v(bad, msg)
WHERE bad
ORDER BY sku`,
	},
	{
		Name: "reservation-settled",
		Doc:  "no reservation is still open for an order at rest",
		SQL: `
WITH ` + settledCTE + `
SELECT 'order ' || r.order_id, format('sku %s: %s units still reserved although the order is %s',
	r.sku, r.quantity, s.status)
FROM inventory.reservations r JOIN settled s ON s.order_id = r.order_id
WHERE r.status = 'reserved'
ORDER BY r.order_id, r.sku`,
	},
	{
		Name: "stock-at-rest",
		Doc:  "reserved = 0 for every SKU when no order is pending or in flight",
		SQL: `
SELECT 'sku ' || sku, format('reserved %s with no order pending or in flight, want 0', reserved)
FROM inventory.inventory
WHERE reserved <> 0 AND NOT EXISTS (
	SELECT 1 FROM orders.orders o
	WHERE o.status = 'pending'
	   OR GREATEST(o.updated_at, o.confirmed_at, o.cancelled_at) > now() - @settle::float8 * interval '1 second')
ORDER BY sku`,
	},
	{
		Name: "confirmed-order",
		Doc:  "a confirmed order at rest is captured once for its total, its stock committed, nothing voided or refunded",
		SQL: `
WITH ` + settledCTE + `, ` + opsCTE + `, c AS (
	SELECT s.order_id, s.total, s.authorization_id,
		p.status AS pay, p.amount, p.authorization_id AS pay_auth, so.status AS stock,
		coalesce(o.auths, 0) AS auths, coalesce(o.captures, 0) AS captures,
		coalesce(o.voids, 0) AS voids, coalesce(o.refunds, 0) AS refunds, o.captured_max AS captured, o.auth_id
	FROM settled s
	LEFT JOIN payments.payments p ON p.order_id = s.order_id
	LEFT JOIN inventory.stock_orders so ON so.order_id = s.order_id
	LEFT JOIN ops o ON o.order_id = s.order_id
	WHERE s.status = 'confirmed'
)
SELECT 'order ' || order_id, msg FROM c, LATERAL (VALUES
	(pay IS DISTINCT FROM 'captured', format('payment status %s, want captured', coalesce(pay, 'missing'))),
	(stock IS DISTINCT FROM 'committed', format('stock status %s, want committed', coalesce(stock, 'missing'))),
	(auths <> 1, format('%s authorizations, want exactly 1', auths)),
	(captures <> 1, format('%s captures, want exactly 1', captures)),
	(voids + refunds > 0, format('%s voids and %s refunds, want none', voids, refunds)),
	(captured IS DISTINCT FROM total, format('captured %s, want the order total %s', coalesce(captured::text, 'nothing'), total)),
	(amount IS DISTINCT FROM total, format('payment amount %s, want the order total %s', coalesce(amount::text, 'missing'), total)),
	(authorization_id IS DISTINCT FROM auth_id OR pay_auth IS DISTINCT FROM auth_id,
	 format('authorization ids disagree: order %s, payment %s, provider call %s',
		coalesce(authorization_id, '-'), coalesce(pay_auth, '-'), coalesce(auth_id, '-')))
) AS v(bad, msg)
WHERE bad
ORDER BY order_id`,
	},
	{
		Name: "cancelled-order",
		Doc:  "a cancelled order at rest holds no money and no stock: its authorization voided or refunded, its stock released, returned or never reserved",
		SQL: `
WITH ` + settledCTE + `, ` + opsCTE + `, c AS (
	SELECT s.order_id, s.cancel_reason, p.status AS pay, so.status AS stock,
		coalesce(o.auths, 0) AS auths, coalesce(o.captures, 0) AS captures,
		coalesce(o.voids, 0) AS voids, coalesce(o.refunds, 0) AS refunds
	FROM settled s
	LEFT JOIN payments.payments p ON p.order_id = s.order_id
	LEFT JOIN inventory.stock_orders so ON so.order_id = s.order_id
	LEFT JOIN ops o ON o.order_id = s.order_id
	WHERE s.status = 'cancelled'
)
SELECT 'order ' || order_id, msg FROM c, LATERAL (VALUES
	(cancel_reason IS NULL, 'cancelled without a reason'),
	(pay IS NOT NULL AND pay NOT IN ('new', 'declined', 'voided', 'refunded'),
	 format('payment status %s, want new, declined, voided or refunded', pay)),
	(stock IS NOT NULL AND stock NOT IN ('rejected', 'released', 'returned', 'cancelled'),
	 format('stock status %s, want rejected, released, returned or cancelled', stock)),
	(auths > 0 AND voids + refunds = 0 AND pay IS DISTINCT FROM 'declined', 'authorized but neither voided nor refunded'),
	(captures > 0 AND refunds = 0, 'captured but not refunded'),
	(voids > 0 AND captures > 0, 'both voided and captured')
) AS v(bad, msg)
WHERE bad
ORDER BY order_id`,
	},
	{
		Name: "payment-ops",
		Doc:  "no double authorization, charge, void or refund; every operation follows its authorization and stays within it",
		SQL: `
WITH ` + opsCTE + `
SELECT 'order ' || order_id, msg FROM ops, LATERAL (VALUES
	(auths > 1, format('authorized %s times (double authorization)', auths)),
	(captures > 1, format('captured %s times (double charge)', captures)),
	(voids > 1, format('voided %s times', voids)),
	(refunds > 1, format('refunded %s times (double refund)', refunds)),
	(auths = 0, 'a capture, void or refund without an authorization'),
	(refunds > 0 AND captures = 0, 'refunded without a capture'),
	(captured_sum > auth_amount, format('captured %s, more than the %s authorized', captured_sum, auth_amount)),
	(refunded_sum > captured_sum, format('refunded %s, more than the %s captured', refunded_sum, captured_sum))
) AS v(bad, msg)
WHERE bad
ORDER BY order_id`,
	},
	{
		Name: "inbox-once",
		Doc:  "no event id is applied twice by the same consumer (core.inbox)",
		SQL: `
SELECT 'event ' || event_id, format('applied %s times by consumer %s', count(*), consumer)
FROM core.inbox
GROUP BY consumer, event_id
HAVING count(*) > 1
ORDER BY event_id`,
	},
	{
		Name:  "stream-once",
		Doc:   "no two messages on the EVENTS stream carry the same event id (ce-id)",
		Needs: needStream,
		SQL: `
SELECT 'event ' || id, format('%s messages on the EVENTS stream with this id (subjects %s)',
	count(*), string_agg(DISTINCT subject, ', '))
FROM jsonb_to_recordset(@events::jsonb) AS e(id text, subject text)
GROUP BY id
HAVING count(*) > 1
ORDER BY id`,
	},
	{
		Name:  "stream-orders",
		Doc:   "every saga event on the EVENTS stream belongs to an order Tradewind holds",
		Needs: needStream,
		SQL: `
SELECT 'order ' || e.order_id, format('%s events on the stream (%s) but no such order in orders.orders',
	count(*), string_agg(DISTINCT e.name, ', '))
FROM jsonb_to_recordset(@events::jsonb) AS e(order_id text, name text, ts timestamptz)
WHERE e.order_id <> '' AND e.ts < @snapshot::timestamptz
  AND NOT EXISTS (SELECT 1 FROM orders.orders o WHERE o.order_id::text = e.order_id)
GROUP BY e.order_id
ORDER BY e.order_id`,
	},
	{
		Name:  "stream-path",
		Doc:   "the events of an order at rest on the EVENTS stream follow one of the saga's paths (sagas/README.md) and agree with its status",
		Needs: needStream,
		SQL: `
WITH ` + settledCTE + `, ev AS (
	SELECT order_id, name, count(*) AS n
	FROM jsonb_to_recordset(@events::jsonb) AS e(order_id text, name text)
	WHERE order_id <> ''
	GROUP BY order_id, name
), c AS (
	SELECT s.order_id, s.status,
		coalesce(string_agg(ev.name || CASE WHEN ev.n > 1 THEN ' x' || ev.n ELSE '' END, ', ' ORDER BY ev.name), 'none') AS seen,
		coalesce(max(ev.n), 0) AS most,
		coalesce(sum(ev.n) FILTER (WHERE ev.name = 'orders.placed'), 0)        AS placed,
		coalesce(sum(ev.n) FILTER (WHERE ev.name = 'orders.confirmed'), 0)     AS confirmed,
		coalesce(sum(ev.n) FILTER (WHERE ev.name = 'orders.cancelled'), 0)     AS cancelled,
		coalesce(sum(ev.n) FILTER (WHERE ev.name = 'orders.rejected'), 0)      AS refused,
		coalesce(sum(ev.n) FILTER (WHERE ev.name = 'inventory.reserved'), 0)   AS reserved,
		coalesce(sum(ev.n) FILTER (WHERE ev.name = 'inventory.rejected'), 0)   AS rejected,
		coalesce(sum(ev.n) FILTER (WHERE ev.name = 'inventory.released'), 0)   AS released,
		coalesce(sum(ev.n) FILTER (WHERE ev.name = 'inventory.committed'), 0)  AS committed,
		coalesce(sum(ev.n) FILTER (WHERE ev.name = 'inventory.returned'), 0)   AS returned,
		coalesce(sum(ev.n) FILTER (WHERE ev.name = 'payments.authorized'), 0)  AS authorized,
		coalesce(sum(ev.n) FILTER (WHERE ev.name = 'payments.declined'), 0)    AS declined,
		coalesce(sum(ev.n) FILTER (WHERE ev.name = 'payments.captured'), 0)    AS captured,
		coalesce(sum(ev.n) FILTER (WHERE ev.name = 'payments.voided'), 0)      AS voided,
		coalesce(sum(ev.n) FILTER (WHERE ev.name = 'payments.refunded'), 0)    AS refunded
	FROM settled s LEFT JOIN ev ON ev.order_id = s.order_id::text
	GROUP BY s.order_id, s.status
)
SELECT 'order ' || order_id, format('events [%s] (status %s): %s', seen, status, msg) FROM c, LATERAL (VALUES
	(most > 1, 'an event type appears more than once'),
	(status <> 'rejected' AND placed <> 1, 'want exactly one orders.placed'),
	(status <> 'rejected' AND refused > 0, 'orders.rejected for an order that was placed'),
	(status = 'rejected' AND seen <> 'orders.rejected', 'a rejected order wants exactly one orders.rejected and nothing else'),
	(status = 'confirmed' AND (confirmed <> 1 OR cancelled <> 0 OR captured <> 1 OR committed <> 1),
	 'a confirmed order wants orders.confirmed, payments.captured and inventory.committed and no orders.cancelled'),
	(status = 'cancelled' AND cancelled <> 1, 'a cancelled order wants exactly one orders.cancelled'),
	(reserved + rejected > 1, 'both reserved and rejected'),
	(reserved <> released + committed, 'a reservation wants exactly one of released or committed'),
	(rejected > cancelled, 'rejected but not cancelled'),
	(committed > confirmed, 'committed but not confirmed'),
	(returned <> committed * cancelled, 'want inventory.returned exactly when committed and then cancelled'),
	(authorized + declined > reserved, 'a payment decision without a reservation'),
	(authorized + declined > 1, 'both authorized and declined'),
	(authorized <> captured + voided, 'an authorization wants exactly one of captured or voided'),
	(declined > cancelled, 'declined but not cancelled'),
	(captured > confirmed, 'captured but not confirmed'),
	(refunded <> captured * cancelled, 'want payments.refunded exactly when captured and then cancelled'),
	(confirmed > 0 AND (reserved = 0 OR authorized = 0), 'confirmed without a reservation and an authorization')
) AS v(bad, msg)
WHERE bad
ORDER BY order_id`,
	},
	{
		Name:  "provider-ledger",
		Doc:   "the payment provider's ledger agrees with payments.payments and payments.payment_ops",
		Needs: needLedger,
		SQL: `
WITH ` + settledCTE + `, l AS (
	SELECT * FROM jsonb_to_recordset(@ledger::jsonb) AS x(id text, order_id text, amount bigint,
		status text, decline_code text, capture_id text, captured bigint, void_id text, refund_id text, refunded bigint)
), per_order AS (
	SELECT order_id, count(*) AS n, count(*) FILTER (WHERE status <> 'declined') AS held
	FROM l GROUP BY order_id
), ` + opsCTE + `, mine AS (
	SELECT s.order_id::text AS order_id, p.status AS pay, o.auth_id, o.auth_amount,
		o.capture_id, o.captured_max AS captured, o.void_id, o.refund_id, o.refunded_max AS refunded
	FROM settled s
	JOIN payments.payments p ON p.order_id = s.order_id
	LEFT JOIN ops o ON o.order_id = s.order_id
)
SELECT 'order ' || p.order_id, format('provider holds %s authorizations for the order (%s not declined), want at most 1', p.n, p.held)
FROM per_order p JOIN settled s ON s.order_id::text = p.order_id
WHERE p.n > 1
UNION ALL
SELECT 'order ' || m.order_id, msg
FROM mine m LEFT JOIN l ON l.id = m.auth_id, LATERAL (VALUES
	(m.auth_id IS NOT NULL AND l.id IS NULL, format('authorization %s is not in the provider''s ledger', m.auth_id)),
	(l.id IS NOT NULL AND l.order_id <> m.order_id, format('provider''s authorization %s belongs to order %s', l.id, l.order_id)),
	(l.id IS NOT NULL AND l.amount IS DISTINCT FROM m.auth_amount, format('provider authorized %s, Tradewind recorded %s', l.amount, m.auth_amount)),
	(l.id IS NOT NULL AND l.status IS DISTINCT FROM m.pay, format('provider says %s, payments.payments says %s', l.status, m.pay)),
	(l.id IS NOT NULL AND (l.capture_id IS DISTINCT FROM m.capture_id OR coalesce(l.captured, 0) <> coalesce(m.captured, 0)),
	 format('provider capture %s of %s, Tradewind recorded %s of %s', coalesce(l.capture_id, '-'), coalesce(l.captured, 0), coalesce(m.capture_id, '-'), coalesce(m.captured, 0))),
	(l.id IS NOT NULL AND l.void_id IS DISTINCT FROM m.void_id, format('provider void %s, Tradewind recorded %s', coalesce(l.void_id, '-'), coalesce(m.void_id, '-'))),
	(l.id IS NOT NULL AND (l.refund_id IS DISTINCT FROM m.refund_id OR coalesce(l.refunded, 0) <> coalesce(m.refunded, 0)),
	 format('provider refund %s of %s, Tradewind recorded %s of %s', coalesce(l.refund_id, '-'), coalesce(l.refunded, 0), coalesce(m.refund_id, '-'), coalesce(m.refunded, 0))),
	(m.pay = 'declined' AND NOT EXISTS (SELECT 1 FROM l d WHERE d.order_id = m.order_id AND d.status = 'declined'),
	 'declined, but the provider has no declined authorization for the order')
) AS v(bad, msg)
WHERE bad
UNION ALL
SELECT 'order ' || l.order_id, format('provider holds %s authorization %s of %s that Tradewind never recorded', l.status, l.id, l.amount)
FROM l JOIN settled s ON s.order_id::text = l.order_id
WHERE l.status <> 'declined'
  AND NOT EXISTS (SELECT 1 FROM payments.payment_ops o WHERE o.op = 'authorize' AND o.provider_id = l.id)
ORDER BY 1, 2`,
	},
}
