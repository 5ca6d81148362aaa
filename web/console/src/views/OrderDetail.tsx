// Order detail: the order and its saga timeline (GET /v1/orders/{id} and
// …/timeline). The queries are keyed by the order's live seq, so each
// notification about the order refetches them while it is in flight.
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { Link, useParams } from "react-router";
import { get, money, type Order, type TimelineStep } from "../api";
import { useSession } from "../auth";
import { useOrderLive } from "../live/hooks";

/** Steps that undo an earlier one. */
const compensations = new Set(["inventory.released", "inventory.returned", "payments.voided", "payments.refunded"]);

export default function OrderDetail() {
  const { id = "" } = useParams();
  const session = useSession();
  const live = useOrderLive(id);
  const seq = live?.seq ?? 0;
  const order = useQuery({
    queryKey: ["order", id, seq],
    queryFn: ({ signal }) => get<Order>(`/v1/orders/${id}`, session.token, signal),
    placeholderData: keepPreviousData,
  });
  const timeline = useQuery({
    queryKey: ["timeline", id, seq],
    queryFn: ({ signal }) => get<{ steps: TimelineStep[] }>(`/v1/orders/${id}/timeline`, session.token, signal),
    placeholderData: keepPreviousData,
  });
  const o = order.data;
  return (
    <section>
      <p>
        <Link to="/orders">← My orders</Link>
      </p>
      <h1>Order {id.slice(0, 8)}</h1>
      {order.error && <p className="error">{order.error.message}</p>}
      {o && (
        <dl className="facts">
          <dt>Status</dt>
          <dd>
            <span className={`status ${o.status}`} id="order-status">
              {o.status}
            </span>
            {o.cancel_reason && ` (${o.cancel_reason})`}
          </dd>
          <dt>Total</dt>
          <dd>{money(o.total, o.currency)}</dd>
          <dt>Stock</dt>
          <dd>{o.stock_status ?? "—"}</dd>
          <dt>Payment</dt>
          <dd>{o.payment_status ?? "—"}</dd>
          <dt>Lines</dt>
          <dd>{o.lines.map((l) => `${l.quantity} × ${l.sku}`).join(", ")}</dd>
        </dl>
      )}
      <h2>Saga timeline</h2>
      {timeline.error && <p className="error">{timeline.error.message}</p>}
      <ol className="timeline">
        {timeline.data?.steps.map((s) => {
          const [participant, step] = s.step.split(".", 2);
          return (
            <li key={s.event_id} className={compensations.has(s.step) ? "compensation" : undefined} data-step={s.step}>
              <span className="participant">{participant}</span> <strong>{step}</strong>
              {compensations.has(s.step) && <span className="tag">compensation</span>}
              <span className="meta">
                {new Date(s.at).toLocaleTimeString()} · +{s.since_prev_ms} ms (total {s.since_placed_ms} ms)
              </span>
            </li>
          );
        })}
      </ol>
    </section>
  );
}
