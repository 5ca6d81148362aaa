// My orders: keyset pages of GET /v1/orders as an infinite query, the next
// page fetched when the sentinel below the table scrolls into view; each
// row's status live from the WebSocket; place and cancel through the
// gateway with an Idempotency-Key.
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { useInfiniteQuery, useMutation, useQueryClient, type InfiniteData } from "@tanstack/react-query";
import { cancelOrder, get, placeOrder, type Order, type OrderPage } from "../api";
import { useSession } from "../auth";
import { OrderRow } from "../components/OrderRow";

export const pageSize = 20;

export default function Orders() {
  const session = useSession();
  const orders = useInfiniteQuery({
    queryKey: ["orders", session.user],
    queryFn: ({ pageParam, signal }) =>
      get<OrderPage>(`/v1/orders?limit=${pageSize}${pageParam ? `&cursor=${encodeURIComponent(pageParam)}` : ""}`, session.token, signal),
    initialPageParam: "",
    getNextPageParam: (last) => last.next_cursor || undefined,
  });
  const rows = useMemo(() => orders.data?.pages.flatMap((p) => p.orders) ?? [], [orders.data]);
  return (
    <section>
      <h1>My orders</h1>
      <PlaceOrder />
      {orders.error && <p className="error">{String(orders.error.message)}</p>}
      <OrderTable orders={rows} />
      <Sentinel
        onVisible={orders.fetchNextPage}
        active={orders.hasNextPage && !orders.isFetchingNextPage}
        label={orders.isFetching ? "loading…" : orders.hasNextPage ? "more" : `${rows.length} orders`}
        pages={orders.data?.pages.length ?? 0}
      />
    </section>
  );
}

/** The table of orders; rows are memoised and keyed by order id. */
export function OrderTable({ orders, onRender }: { orders: Order[]; onRender?: (id: string) => void }) {
  const session = useSession();
  const [cancelling, setCancelling] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const onCancel = useCallback(
    (id: string) => {
      setCancelling(id);
      setError(null);
      cancelOrder(session.token, id)
        .catch((e: Error) => setError(`cancel ${id.slice(0, 8)}: ${e.message}`))
        .finally(() => setCancelling(null));
    },
    [session.token],
  );
  return (
    <>
      {error && <p className="error">{error}</p>}
      <table className="orders">
        <thead>
          <tr>
            <th>Order</th>
            <th>Placed</th>
            <th>Items</th>
            <th className="num">Total</th>
            <th>Status</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {orders.map((o) => (
            <OrderRow key={o.order_id} order={o} onCancel={onCancel} cancelling={cancelling === o.order_id} onRender={onRender} />
          ))}
        </tbody>
      </table>
    </>
  );
}

/** Calls onVisible whenever it scrolls into view while active. */
function Sentinel({ onVisible, active, label, pages }: { onVisible: () => unknown; active: boolean; label: string; pages: number }) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = ref.current;
    if (!el || !active) return;
    const io = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) void onVisible();
    }, { rootMargin: "200px" });
    io.observe(el);
    return () => io.disconnect();
  }, [onVisible, active]);
  return (
    <div ref={ref} className="sentinel" data-pages={pages}>
      {label}
    </div>
  );
}

function PlaceOrder() {
  const session = useSession();
  const qc = useQueryClient();
  const [sku, setSku] = useState("SKU-1");
  const [quantity, setQuantity] = useState(1);
  const place = useMutation({
    mutationFn: async () => {
      const acc = await placeOrder(session.token, session.user, [{ sku, quantity, unit_price: 1250 }]);
      // Read-your-writes: wait until the read model holds the order.
      return get<Order>(`/v1/orders/${acc.id}?after=${encodeURIComponent(acc.position)}`, session.token);
    },
    onSuccess: (order) => {
      qc.setQueryData<InfiniteData<OrderPage, string>>(["orders", session.user], (d) =>
        d && d.pages[0]
          ? { ...d, pages: [{ ...d.pages[0], orders: [order, ...d.pages[0].orders.filter((o) => o.order_id !== order.order_id)] }, ...d.pages.slice(1)] }
          : d,
      );
    },
  });
  return (
    <form
      className="place"
      onSubmit={(e) => {
        e.preventDefault();
        place.mutate();
      }}
    >
      <label>
        SKU <input value={sku} onChange={(e) => setSku(e.target.value)} pattern="[A-Za-z0-9_\-]{1,64}" required />
      </label>
      <label>
        Quantity <input type="number" min={1} max={100} value={quantity} onChange={(e) => setQuantity(Number(e.target.value))} />
      </label>
      <button type="submit" id="place" disabled={place.isPending}>
        {place.isPending ? "Placing…" : "Place order"}
      </button>
      {place.error && <span className="error">{place.error.message}</span>}
      {place.data && <span className="ok" data-placed={place.data.order_id}>placed {place.data.order_id.slice(0, 8)}</span>}
    </form>
  );
}
