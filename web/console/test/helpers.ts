import type { Notification } from "@tradewind/client";
import type { Order } from "../src/api";

/** A JWT-shaped token (the console decodes, the server verifies). */
export function fakeToken(sub: string, role = "customer"): string {
  const b64 = (o: object) => btoa(JSON.stringify(o)).replace(/=+$/, "");
  return `${b64({ alg: "HS256" })}.${b64({ sub, role, exp: 4102444800 })}.sig`;
}

export function order(i: number, status: Order["status"] = "pending"): Order {
  const id = `00000000-0000-4000-8000-${String(i).padStart(12, "0")}`;
  return {
    order_id: id, customer_id: "c-1", status, currency: "EUR", total: 1250 * i, item_count: 1,
    lines: [{ sku: "SKU-1", quantity: 1, unit_price: 1250 }], stock_status: null, payment_status: null,
    cancel_reason: null, placed_at: "2026-12-07T10:00:00Z", updated_at: "2026-12-07T10:00:00Z",
    confirmed_at: null, cancelled_at: null,
  };
}

/** A notification about an order, as the WebSocket delivers it. */
export function notification(seq: number, orderId: string, kind: string, channel: Notification["channel"] = "user"): Notification {
  return {
    channel, seq,
    event: {
      specversion: "1.0", id: `n-${channel}-${seq}`, source: "/tradewind/notifier", type: "com.tradewind.notifications.notification.v1",
      time: "2026-12-07T10:00:01Z",
      data: {
        user_id: "c-1", seq, kind, title: kind, body: "", links: {}, order_id: orderId,
        source: { id: `e-${seq}`, type: "com.tradewind.orders.confirmed.v1", time: "2026-12-07T10:00:01Z" },
      },
    } as unknown as Notification["event"],
  } as Notification;
}

/** A scheduler the test runs by hand: frame() runs what was scheduled. */
export function manualFrames() {
  let pending: (() => void)[] = [];
  return {
    schedule: (f: () => void) => void pending.push(f),
    frame: () => {
      const p = pending;
      pending = [];
      p.forEach((f) => f());
    },
    get pending() {
      return pending.length;
    },
  };
}
