package projections_test

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/loadgen"
)

// A synthetic but realistic order-saga stream for the rebuild benchmark:
// orders placed every 10 ms with the classes of the load generator's
// default mix (loadgen.DefaultMix), each followed by the events the saga's
// handlers emit on its path (sagas/README.md), all interleaved in time
// order as they would sit in EVENTS. It also computes the orders read
// model the stream must produce, so the benchmark can both COPY exactly
// those rows as its baseline and check the rebuild against them.

// sagaKind is one event of an order's saga.
type sagaKind uint8

const (
	kPlaced sagaKind = iota
	kReserved
	kRejected
	kAuthorized
	kDeclined
	kConfirmed
	kCommitted
	kCaptured
	kCancelled
	kReleased
	kReturned
	kVoided
	kRefunded
)

var sagaTypes = [...]string{
	kPlaced: events.OrderPlacedV1, kReserved: events.StockReservedV1, kRejected: events.StockRejectedV1,
	kAuthorized: events.PaymentAuthorizedV1, kDeclined: events.PaymentDeclinedV1, kConfirmed: events.OrderConfirmedV1,
	kCommitted: events.StockCommittedV1, kCaptured: events.PaymentCapturedV1, kCancelled: events.OrderCancelledV1,
	kReleased: events.StockReleasedV1, kReturned: events.StockReturnedV1, kVoided: events.PaymentVoidedV1,
	kRefunded: events.PaymentRefundedV1,
}

// sagaStart is when the first order is placed.
var sagaStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// sagaEvent is one event of the stream: which order, what, when (after
// sagaStart). It holds no pointer, so a million of them cost the garbage
// collector nothing while the rebuild runs.
type sagaEvent struct {
	after time.Duration
	order int32
	kind  sagaKind
}

func (e sagaEvent) at() time.Time { return sagaStart.Add(e.after) }

// sagaOrder is one order of the stream and the orders row it must end as.
type sagaOrder struct {
	id       uuid.UUID
	customer string
	lines    []events.OrderLine
	total    int64
	placedAt time.Time
	reason   string // cancellation reason, "" when never cancelled
	prev     string // status the cancellation found
	want     benchRow
}

// benchRow is the expected row of proj.orders, in orderCols order.
type benchRow struct {
	status, stock, payment, authID, reason string // "" is NULL (status never is)
	confirmedAt, cancelledAt               time.Time
	updatedAt                              time.Time
	lastSeq                                uint64
}

type sagaStream struct {
	orders []sagaOrder
	events []sagaEvent
	// perClass counts orders per load-generator class.
	perClass map[loadgen.Class]int
}

// sagaStep is an event at an offset after the placement.
type sagaStep struct {
	after time.Duration
	kind  sagaKind
}

var (
	happySteps = []sagaStep{{0, kPlaced}, {4 * time.Millisecond, kReserved}, {35 * time.Millisecond, kAuthorized},
		{41 * time.Millisecond, kConfirmed}, {47 * time.Millisecond, kCommitted}, {80 * time.Millisecond, kCaptured}}
	// The provider is down: the breaker holds the authorization ~3 s.
	outageSteps = []sagaStep{{0, kPlaced}, {4 * time.Millisecond, kReserved}, {3 * time.Second, kAuthorized},
		{3*time.Second + 6*time.Millisecond, kConfirmed}, {3*time.Second + 12*time.Millisecond, kCommitted},
		{3*time.Second + 45*time.Millisecond, kCaptured}}
	oosSteps     = []sagaStep{{0, kPlaced}, {4 * time.Millisecond, kRejected}, {9 * time.Millisecond, kCancelled}}
	declineSteps = []sagaStep{{0, kPlaced}, {4 * time.Millisecond, kReserved}, {35 * time.Millisecond, kDeclined},
		{41 * time.Millisecond, kCancelled}, {47 * time.Millisecond, kReleased}}
	// The customer cancels before the authorization (payments then
	// authorizes nothing)...
	earlyCancelSteps = []sagaStep{{0, kPlaced}, {4 * time.Millisecond, kReserved}, {20 * time.Millisecond, kCancelled},
		{26 * time.Millisecond, kReleased}}
	// ...or after the confirmation: refund and return.
	lateCancelSteps = append(slices.Clone(happySteps), sagaStep{500 * time.Millisecond, kCancelled},
		sagaStep{506 * time.Millisecond, kReturned}, sagaStep{540 * time.Millisecond, kRefunded})
	// The provider hangs past the deadline (15 min): the sweeper cancels,
	// inventory releases, and the authorization that finally returns is
	// voided.
	timeoutSteps = []sagaStep{{0, kPlaced}, {4 * time.Millisecond, kReserved},
		{15*time.Minute + time.Second, kCancelled}, {15*time.Minute + time.Second + 6*time.Millisecond, kReleased},
		{15*time.Minute + 30*time.Second, kAuthorized}, {15*time.Minute + 30*time.Second + 8*time.Millisecond, kVoided}}
)

// newSagaStream builds orders until their events number at least n.
// The same n always gives the same stream (fixed seed).
func newSagaStream(n int) (*sagaStream, error) {
	mix, err := loadgen.ParseMix(loadgen.DefaultMix)
	if err != nil {
		return nil, err
	}
	weights := 0
	for _, c := range loadgen.Classes {
		weights += mix[c]
	}
	r := rand.New(rand.NewPCG(1, 2))
	s := &sagaStream{events: make([]sagaEvent, 0, n+n/8), perClass: map[loadgen.Class]int{}}
	for i := 0; len(s.events) < n; i++ {
		var class loadgen.Class
		for w, c := r.IntN(weights), 0; ; c++ {
			if w < mix[loadgen.Classes[c]] {
				class = loadgen.Classes[c]
				break
			}
			w -= mix[loadgen.Classes[c]]
		}
		s.perClass[class]++
		o := sagaOrder{
			id:       uuid.UUID(benchUUID(i)),
			customer: "c-" + strconv.Itoa(r.IntN(20000)),
			placedAt: sagaStart.Add(time.Duration(i) * 10 * time.Millisecond),
		}
		for range 1 + r.IntN(3) {
			l := events.OrderLine{SKU: "SKU-" + strconv.Itoa(r.IntN(500)), Quantity: 1 + r.Int64N(3), UnitPrice: 100 * (1 + r.Int64N(50))}
			o.lines = append(o.lines, l)
			o.total += l.Quantity * l.UnitPrice
		}
		var steps []sagaStep
		switch class {
		case loadgen.Happy:
			steps = happySteps
		case loadgen.Outage:
			steps = outageSteps
		case loadgen.OutOfStock:
			steps, o.reason, o.prev = oosSteps, events.CancelOutOfStock, events.StatusPending
		case loadgen.Decline:
			steps, o.reason, o.prev = declineSteps, events.CancelPaymentDeclined, events.StatusPending
		case loadgen.Cancel:
			steps, o.reason, o.prev = earlyCancelSteps, events.CancelCustomer, events.StatusPending
			if r.IntN(2) == 0 {
				steps, o.prev = lateCancelSteps, events.StatusConfirmed
			}
		case loadgen.Timeout:
			steps, o.reason, o.prev = timeoutSteps, events.CancelTimeout, events.StatusPending
		default:
			return nil, fmt.Errorf("saga stream: class %s has no path", class)
		}
		for _, st := range steps {
			s.events = append(s.events, sagaEvent{after: o.placedAt.Sub(sagaStart) + st.after, order: int32(i), kind: st.kind})
		}
		s.orders = append(s.orders, o)
	}
	// Stable: an order's steps keep their order, and ties between orders
	// keep the order of placement.
	slices.SortStableFunc(s.events, func(a, b sagaEvent) int { return cmp.Compare(a.after, b.after) })
	return s, nil
}

// benchUUID is a deterministic UUIDv7-shaped id for order i.
func benchUUID(i int) [16]byte {
	u, _ := uuid.Parse(fmt.Sprintf("01900000-0000-7000-8000-%012d", i))
	return u
}

// payload is the CloudEvent type and data of e, as the handlers emit it.
func (s *sagaStream) payload(e sagaEvent) (string, any) {
	o := &s.orders[e.order]
	id := o.id.String()
	auth := "auth-" + id[len(id)-8:]
	stock := func() []events.StockLine {
		out := make([]events.StockLine, len(o.lines))
		for i, l := range o.lines {
			out[i] = events.StockLine{SKU: l.SKU, Quantity: l.Quantity}
		}
		return out
	}
	stamp := e.at().Format(time.RFC3339Nano)
	var data any
	switch e.kind {
	case kPlaced:
		data = events.OrderPlaced{OrderID: id, CustomerID: o.customer, Lines: o.lines, Currency: "EUR", Total: o.total,
			PlacedAt: stamp, Deadline: o.placedAt.Add(15 * time.Minute).Format(time.RFC3339Nano)}
	case kReserved:
		data = events.StockReserved{OrderID: id, CustomerID: o.customer, Currency: "EUR", Total: o.total, Lines: stock()}
	case kRejected:
		data = events.StockRejected{OrderID: id, Reason: events.RejectOutOfStock, SKU: o.lines[0].SKU, Requested: o.lines[0].Quantity}
	case kAuthorized:
		data = events.PaymentAuthorized{OrderID: id, AuthorizationID: auth, Amount: o.total, Currency: "EUR"}
	case kDeclined:
		data = events.PaymentDeclined{OrderID: id, Amount: o.total, Currency: "EUR", Code: "card_declined"}
	case kConfirmed:
		data = events.OrderConfirmed{OrderID: id, CustomerID: o.customer, Currency: "EUR", Total: o.total,
			AuthorizationID: auth, ConfirmedAt: stamp, PlacedAt: o.placedAt.Format(time.RFC3339Nano)}
	case kCancelled:
		data = events.OrderCancelled{OrderID: id, CustomerID: o.customer, Currency: "EUR", Total: o.total,
			Reason: o.reason, PreviousStatus: o.prev, CancelledAt: stamp, PlacedAt: o.placedAt.Format(time.RFC3339Nano)}
	case kCommitted, kReleased, kReturned:
		data = events.StockMovement{OrderID: id, Lines: stock()}
	case kCaptured, kVoided, kRefunded:
		data = events.PaymentSettled{OrderID: id, AuthorizationID: auth, OperationID: "op-" + strconv.Itoa(int(e.kind)), Amount: o.total, Currency: "EUR"}
	}
	return sagaTypes[e.kind], data
}

// expect folds e, published at stream sequence seq, into its order's
// expected row: the read model's documented meaning of each event
// (projections/orders.go), written out independently of it.
func (s *sagaStream) expect(e sagaEvent, seq uint64) {
	o := &s.orders[e.order]
	w := &o.want
	id := o.id.String()
	switch e.kind {
	case kPlaced:
		w.status = events.StatusPending
	case kReserved:
		w.stock = "reserved"
	case kRejected:
		w.stock = "rejected"
	case kReleased:
		w.stock = "released"
	case kCommitted:
		w.stock = "committed"
	case kReturned:
		w.stock = "returned"
	case kAuthorized:
		w.payment, w.authID = "authorized", "auth-"+id[len(id)-8:]
	case kDeclined:
		w.payment = "declined"
	case kCaptured:
		w.payment = "captured"
	case kVoided:
		w.payment = "voided"
	case kRefunded:
		w.payment = "refunded"
	case kConfirmed:
		w.status, w.confirmedAt, w.authID = events.StatusConfirmed, e.at(), "auth-"+id[len(id)-8:]
	case kCancelled:
		w.status, w.cancelledAt, w.reason = events.StatusCancelled, e.at(), o.reason
	}
	w.updatedAt, w.lastSeq = e.at(), seq
}

// rows are the expected orders rows, as CopyFrom values in orderCols order.
func (s *sagaStream) rows() ([][]any, error) {
	null := func(v string) any {
		if v == "" {
			return nil
		}
		return v
	}
	nullTime := func(t time.Time) any {
		if t.IsZero() {
			return nil
		}
		return t
	}
	out := make([][]any, 0, len(s.orders))
	for i := range s.orders {
		o := &s.orders[i]
		lines, err := json.Marshal(o.lines)
		if err != nil {
			return nil, err
		}
		var items int64
		for _, l := range o.lines {
			items += l.Quantity
		}
		w := o.want
		out = append(out, []any{[16]byte(o.id), o.customer, w.status, "EUR", o.total, items, lines,
			null(w.stock), null(w.payment), null(w.authID), null(w.reason),
			o.placedAt, o.placedAt.Add(15 * time.Minute), nullTime(w.confirmedAt), nullTime(w.cancelledAt),
			w.updatedAt, int64(w.lastSeq)})
	}
	return out, nil
}

// summary describes the stream: orders per class and events per type.
func (s *sagaStream) summary() string {
	perType := map[sagaKind]int{}
	for _, e := range s.events {
		perType[e.kind]++
	}
	classes := ""
	for _, c := range loadgen.Classes {
		classes += fmt.Sprintf(" %s=%d", c, s.perClass[c])
	}
	types := ""
	for _, k := range slices.Sorted(maps.Keys(perType)) {
		types += fmt.Sprintf(" %s=%d", sagaTypes[k], perType[k])
	}
	return fmt.Sprintf("%d orders (%s) / %d events (%s)", len(s.orders), classes[1:], len(s.events), types[1:])
}
