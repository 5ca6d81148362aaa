// HTTP to Tradewind: the read API (GET /v1/…, problem+json errors) and the
// command gateway (POST with an Idempotency-Key). The read models' shapes
// are those of internal/readapi.

/** An order as GET /v1/orders returns it (readapi.Order). */
export interface Order {
  order_id: string;
  customer_id: string;
  status: "pending" | "confirmed" | "cancelled";
  currency: string;
  total: number;
  item_count: number;
  lines: { sku: string; quantity: number; unit_price: number }[];
  stock_status: string | null;
  payment_status: string | null;
  cancel_reason: string | null;
  placed_at: string;
  updated_at: string;
  confirmed_at: string | null;
  cancelled_at: string | null;
}

export interface OrderPage {
  orders: Order[];
  next_cursor?: string;
}

export interface TimelineStep {
  step: string;
  type: string;
  event_id: string;
  at: string;
  since_prev_ms: number;
  since_placed_ms: number;
  position: number;
  detail: unknown;
}

export interface Product {
  sku: string;
  name: string;
  description?: string;
  category_id: string | null;
  category_name: string;
  price: number;
  currency: string;
  rank?: number;
  /** The product's images, oldest first (GET /v1/products/{sku} and search). */
  images?: ProductImage[];
}

/** An image of a product (readapi.ProductImage): content-addressed URLs. */
export interface ProductImage {
  hash: string;
  content_type: string;
  width: number;
  height: number;
  bytes: number;
  url: string;
  /** Narrowest first; never wider than the original. */
  thumbnails: { width: number; height: number; url: string }[];
}

/** The gateway's 202 to an image upload (api.ImageAccepted). */
export interface ImageAccepted extends Accepted {
  image: ProductImage & { sku: string };
}

export interface SalesDay {
  day: string;
  currency: string;
  orders: number;
  units: number;
  revenue: number;
  revenue_running_total: number;
  revenue_7d_avg: number;
  orders_7d_avg: number;
}

/** A category with revenue rolled up from its descendants (readapi.CategoryRevenue). */
export interface CategoryRevenue {
  category_id: string;
  parent_id: string | null;
  name: string;
  depth: number;
  path: string;
  currency: string;
  revenue: number;
  units: number;
  own_revenue: number;
}

/** A row of sales_category_pivot (readapi.PivotRow). */
export interface PivotRow {
  category_id: string;
  path: string | null;
  currency: string;
  revenue_total: number;
  revenue_7d: number;
  revenue_30d: number;
  orders_total: number;
  units_total: number;
  avg_order_revenue: number | null;
}

/** A suspected duplicate customer (readapi.Duplicate). */
export interface Duplicate {
  matched_on: "email" | "name";
  match_key: string;
  customer_id: string;
  email: string;
  name: string;
  rn: number;
  keep_id: string;
}

/** The gateway's 202 (api.Accepted). */
export interface Accepted {
  status: "accepted";
  id: string;
  command_id: string;
  type: string;
  position: string;
  location: string;
}

/** An answer other than 2xx; problem is the RFC 9457 body when there is one. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly problem: { title?: string; detail?: string; type?: string } | null,
    readonly retryAfter: number | null,
  ) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
  }
}

type Fetch = typeof fetch;

async function fail(res: Response): Promise<never> {
  let problem = null;
  try {
    problem = (await res.json()) as ApiError["problem"];
  } catch {
    /* not JSON */
  }
  const ra = Number(res.headers.get("Retry-After"));
  throw new ApiError(res.status, problem, Number.isFinite(ra) && ra > 0 ? ra : null);
}

/** GET path with the bearer token; the JSON body or an ApiError. */
export async function get<T>(path: string, token: string, signal?: AbortSignal, f: Fetch = fetch): Promise<T> {
  const res = await f(path, { headers: { Authorization: `Bearer ${token}`, Accept: "application/json" }, signal });
  if (!res.ok) await fail(res);
  return (await res.json()) as T;
}

/** GET path with the bearer token as a file (e.g. an analytics route's ?format=csv), or an ApiError. */
export async function getBlob(path: string, token: string, signal?: AbortSignal, f: Fetch = fetch): Promise<Blob> {
  const res = await f(path, { headers: { Authorization: `Bearer ${token}` }, signal });
  if (!res.ok) await fail(res);
  return res.blob();
}

export interface CommandOptions {
  /** The fetch to use (tests). */
  fetch?: Fetch;
  /** Attempts in all, the first included (default 4). */
  attempts?: number;
  /** Delay before retry n (ms); default 250·2ⁿ. */
  delay?: (attempt: number) => number;
  /** The key; a new UUID by default. Exposed so a caller may show it. */
  idempotencyKey?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * POSTs a command. One Idempotency-Key for all attempts: a network error
 * (the request may have arrived) or a 503/409-in-flight answer is retried
 * with the same key, so the gateway runs the command once and replays its
 * 202 to the retry. Other answers are final.
 */
export async function command(path: string, body: unknown, token: string, o: CommandOptions = {}): Promise<Accepted> {
  const f = o.fetch ?? fetch;
  const attempts = o.attempts ?? 4;
  const key = o.idempotencyKey ?? crypto.randomUUID();
  const delay = o.delay ?? ((n: number) => 250 * 2 ** n);
  let last: unknown;
  for (let n = 0; n < attempts; n++) {
    if (n > 0) await sleep(delay(n - 1));
    let res: Response;
    try {
      res = await f(path, {
        method: "POST",
        headers: {
          Authorization: `Bearer ${token}`,
          "Content-Type": "application/json",
          "Idempotency-Key": key,
        },
        body: JSON.stringify(body),
      });
    } catch (e) {
      last = e; // a network error: the command may or may not have arrived
      continue;
    }
    if (res.ok) return (await res.json()) as Accepted;
    if (res.status === 503 || res.status === 409) {
      last = await fail(res).catch((e: unknown) => e);
      continue;
    }
    await fail(res);
  }
  throw last instanceof Error ? last : new Error(String(last));
}

/** Places an order for the signed-in customer (POST /v1/orders). */
export function placeOrder(token: string, customer: string, lines: Order["lines"], o?: CommandOptions): Promise<Accepted> {
  return command("/v1/orders", { customer_id: customer, currency: "EUR", lines }, token, o);
}

/** Cancels an order (POST /v1/orders/{id}/cancel). */
export function cancelOrder(token: string, id: string, o?: CommandOptions): Promise<Accepted> {
  return command(`/v1/orders/${encodeURIComponent(id)}/cancel`, {}, token, o);
}

/**
 * Uploads an image of a product (POST /v1/products/{sku}/images, multipart,
 * field "image"). Needs no Idempotency-Key: the gateway derives the
 * command from the SKU and the bytes, so a retry is the same upload. The
 * type is decided by the gateway from the content (JPEG, PNG, WebP): a
 * renamed file is refused with 415, one over the size limit with 413.
 */
export async function uploadImage(token: string, sku: string, file: Blob, name: string, f: Fetch = fetch): Promise<ImageAccepted> {
  const form = new FormData();
  form.append("image", file, name);
  const res = await f(`/v1/products/${encodeURIComponent(sku)}/images`, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, Accept: "application/json" },
    body: form,
  });
  if (!res.ok) await fail(res);
  return (await res.json()) as ImageAccepted;
}

/** The signed-in user's notification preferences (GET/PUT /v1/notifications/preferences). */
export interface NotificationPreferences {
  /** The kinds the user muted: the notifier makes none of them (no seq, no push, not unread). */
  muted_kinds: string[];
  /** Every notification kind there is. */
  kinds: string[];
}

export const preferencesPath = "/v1/notifications/preferences";

/** Reads the signed-in user's notification preferences. */
export function getPreferences(token: string, signal?: AbortSignal, f: Fetch = fetch): Promise<NotificationPreferences> {
  return get<NotificationPreferences>(preferencesPath, token, signal, f);
}

/**
 * Replaces the signed-in user's muted kinds. A PUT of the whole list:
 * repeating it is harmless, so it needs no Idempotency-Key; a failure is
 * shown, not retried (the user may click again).
 */
export async function putPreferences(token: string, muted: readonly string[], f: Fetch = fetch): Promise<NotificationPreferences> {
  const res = await f(preferencesPath, {
    method: "PUT",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify({ muted_kinds: muted }),
  });
  if (!res.ok) await fail(res);
  return (await res.json()) as NotificationPreferences;
}

export const money = (minor: number, currency: string) =>
  new Intl.NumberFormat(undefined, { style: "currency", currency }).format(minor / 100);
