import { memo } from "react";
import { Link } from "react-router";
import { money, type Order } from "../api";
import { useOrderLive } from "../live/hooks";

const progress: Record<Order["status"], number> = { pending: 0, confirmed: 1, cancelled: 2 };

export interface OrderRowProps {
  order: Order;
  onCancel: (id: string) => void;
  cancelling: boolean;
  /** Called on every render (the re-render test counts them). */
  onRender?: (id: string) => void;
}

/**
 * One order. Memoised: the list passes the same order object and a stable
 * onCancel, so a row re-renders only when its own live status changes
 * (useOrderLive subscribes to that order alone).
 */
export const OrderRow = memo(function OrderRow({ order, onCancel, cancelling, onRender }: OrderRowProps) {
  onRender?.(order.order_id);
  const live = useOrderLive(order.order_id);
  // An order's status only moves forward (pending → confirmed →
  // cancelled, or pending → cancelled): the further of the read model's
  // and the stream's is the current one, whichever arrived first.
  const status = live && progress[live.status] > progress[order.status] ? live.status : order.status;
  return (
    <tr data-order={order.order_id} data-status={status}>
      <td>
        <Link to={`/orders/${order.order_id}`}>{order.order_id.slice(0, 8)}</Link>
      </td>
      <td>{new Date(order.placed_at).toLocaleString()}</td>
      <td>{order.item_count}</td>
      <td className="num">{money(order.total, order.currency)}</td>
      <td>
        <span className={`status ${status}`}>{status}</span>
      </td>
      <td>
        {status !== "cancelled" && (
          <button type="button" disabled={cancelling} onClick={() => onCancel(order.order_id)}>
            Cancel
          </button>
        )}
      </td>
    </tr>
  );
});
