// Tradewind notifications client: connect, authenticate, subscribe with
// the last seq seen (kept in localStorage), reconnect with exponential
// backoff and jitter, resume without loss or duplicates. No framework.
//
// The protocol is documented in docs/websocket.md.
//
// Frames are handled as they arrive, in the message event, except in a
// burst: a browser may dispatch many queued message events in one task
// (after the page was busy or the tab was in the background), and the
// client's share of a task is bounded by sliceMs. Past it, frames wait
// in a queue, in order, for the next task (setTimeout 0, so the page can
// render and take input in between). Delivery order is the arrival
// order either way; the only visible change in a burst is that
// onNotification runs a few milliseconds later.

import type { CloudEvent, CustomerId, NotificationsNotificationV1, OrderId } from "./events.gen.js";

export type { CloudEvent, CustomerId, NotificationsNotificationV1, OrderId } from "./events.gen.js";

/** A notification CloudEvent (com.tradewind.notifications.notification.v1). */
export type NotificationEvent = CloudEvent<"com.tradewind.notifications.notification.v1">;

/** Channels a client may subscribe to. */
export type Channel = "user" | `order.${OrderId}` | "ops.orders";

/** Close codes the server uses (docs/websocket.md). */
export const CloseCode = {
  AuthFailed: 4001,
  Revoked: 4003,
  SlowConsumer: 4008,
  TooManyConnections: 4029,
  Restart: 1012,
  Policy: 1008,
  TooBig: 1009,
  TryAgain: 1013,
} as const;

export interface Notification {
  channel: Channel;
  seq: number;
  event: NotificationEvent;
}

export type ClientState = "connecting" | "open" | "reconnecting" | "stopped";

export interface ClientOptions {
  /** ws(s)://host/v1/ws; defaults to the page's own origin. */
  url?: string;
  /** Returns a valid access token; called at every (re)connect. */
  token: () => string | Promise<string>;
  /** Channels to subscribe to; "user" by default. */
  channels?: Channel[];
  /** Where the last seq per channel is kept; localStorage by default. */
  storage?: Pick<Storage, "getItem" | "setItem">;
  /** Storage key prefix (one per user, so two users on one browser do not mix). */
  storageKey?: string;
  /** Backoff: first delay, cap (ms). */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  onNotification?: (n: Notification) => void;
  onState?: (s: ClientState, detail?: string) => void;
  onError?: (code: string, message: string, channel?: string) => void;
}

interface ServerFrame {
  type: string;
  channel?: string;
  seq?: number;
  since?: number;
  code?: string;
  message?: string;
  user_id?: string;
  event?: NotificationEvent;
  /** batch: notification frames, in order (the client asks for batches at auth). */
  messages?: ServerFrame[];
}

/** Brands a string as an OrderId (after checking it looks like a UUID). */
export function orderId(s: string): OrderId {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(s)) {
    throw new Error(`not an order id: ${s}`);
  }
  return s as OrderId;
}

/** Brands a string as a CustomerId. */
export function customerId(s: string): CustomerId {
  if (s.length < 1 || s.length > 64) throw new Error(`not a customer id: ${s}`);
  return s as CustomerId;
}

/**
 * The most time (ms) the client spends on frames before letting the
 * page's other tasks run: half a 60 Hz frame, well under the 50 ms of a
 * long task.
 */
export const sliceMs = 8;

const clock: () => number = typeof performance !== "undefined" ? () => performance.now() : () => Date.now();

/** Full jitter backoff: a random delay in [0, min(max, base * 2^attempt)). */
export function backoff(attempt: number, baseMs: number, maxMs: number): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 16));
  return Math.floor(Math.random() * ceiling);
}

/**
 * A self-healing connection. Every notification is delivered to
 * onNotification once and in seq order per channel: after a drop the
 * client resumes each channel from the last seq it delivered, and the
 * server backfills what was missed.
 */
export class NotificationClient {
  private ws: WebSocket | null = null;
  private attempt = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private stopped = false;
  private readonly channels: Channel[];
  private readonly storage: Pick<Storage, "getItem" | "setItem"> | null;
  private readonly key: string;
  /** Frames received but not yet handled, oldest first from head (only during a burst). */
  private frames: { ws: WebSocket; data: string }[] = [];
  private head = 0;
  private drainScheduled = false;
  /** When the current slice began (clock()); -Infinity: none is open. */
  private sliceStart = -Infinity;
  private sliceEndScheduled = false;

  constructor(private readonly opts: ClientOptions) {
    this.channels = opts.channels ?? ["user"];
    this.storage = opts.storage ?? (typeof localStorage === "undefined" ? null : localStorage);
    this.key = opts.storageKey ?? "tradewind.seq";
  }

  /** The last seq delivered on a channel (0: none yet). */
  lastSeq(channel: Channel): number {
    const v = this.storage?.getItem(`${this.key}.${channel}`);
    const n = v ? Number(v) : 0;
    return Number.isSafeInteger(n) && n > 0 ? n : 0;
  }

  private remember(channel: Channel, seq: number): void {
    this.storage?.setItem(`${this.key}.${channel}`, String(seq));
  }

  start(): void {
    this.stopped = false;
    void this.connect();
  }

  stop(): void {
    this.stopped = true;
    this.frames = [];
    this.head = 0;
    if (this.timer) clearTimeout(this.timer);
    this.ws?.close(1000, "bye");
    this.ws = null;
    this.opts.onState?.("stopped");
  }

  private url(): string {
    if (this.opts.url) return this.opts.url;
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    return `${proto}//${location.host}/v1/ws`;
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    this.opts.onState?.(this.attempt === 0 ? "connecting" : "reconnecting");
    let token: string;
    try {
      token = await this.opts.token();
    } catch (e) {
      this.retry(`token: ${String(e)}`);
      return;
    }
    const ws = new WebSocket(this.url());
    this.ws = ws;
    // batch: the server may coalesce queued notifications into one
    // {"type":"batch","messages":[…]} frame, which onFrame unpacks.
    ws.onopen = () => ws.send(JSON.stringify({ type: "auth", token, batch: true }));
    ws.onmessage = (m) => this.receive(ws, m.data);
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (ev.code === CloseCode.AuthFailed || ev.code === CloseCode.Revoked) {
        // A new token is needed: token() is asked again before reconnecting.
        this.opts.onError?.("auth", `closed ${ev.code}: ${ev.reason}`);
      }
      this.retry(`closed ${ev.code} ${ev.reason}`);
    };
  }

  private retry(detail: string): void {
    if (this.stopped) return;
    const delay = backoff(this.attempt++, this.opts.backoffBaseMs ?? 250, this.opts.backoffMaxMs ?? 15000);
    this.opts.onState?.("reconnecting", `${detail}; retry in ${delay} ms`);
    this.timer = setTimeout(() => void this.connect(), delay);
  }

  /**
   * Handles a frame now if the current slice has time left and no frame
   * waits before it; else queues it for drain.
   */
  private receive(ws: WebSocket, data: unknown): void {
    if (typeof data !== "string" || this.stopped) return;
    if (this.head === this.frames.length && this.sliceLeft()) {
      this.onFrame(ws, data);
      return;
    }
    this.frames.push({ ws, data });
    this.scheduleDrain();
  }

  /**
   * Whether the current slice has time left, opening one if none is.
   * A slice is closed by the next macrotask: message events dispatched
   * together in one task share one slice.
   */
  private sliceLeft(): boolean {
    const now = clock();
    if (!this.sliceEndScheduled) {
      this.sliceEndScheduled = true;
      this.sliceStart = now;
      setTimeout(() => {
        this.sliceEndScheduled = false;
        this.sliceStart = -Infinity;
      }, 0);
    }
    return now - this.sliceStart < sliceMs;
  }

  private scheduleDrain(): void {
    if (this.drainScheduled) return;
    this.drainScheduled = true;
    setTimeout(() => this.drain(), 0);
  }

  /** Handles queued frames for at most sliceMs, then yields to the page. */
  private drain(): void {
    this.drainScheduled = false;
    const start = clock();
    try {
      while (this.head < this.frames.length && !this.stopped) {
        const { ws, data } = this.frames[this.head++]!;
        this.onFrame(ws, data);
        if (clock() - start >= sliceMs) break;
      }
    } finally {
      // Also after a callback threw: the frames behind it still go out.
      if (this.head < this.frames.length) {
        this.scheduleDrain();
      } else {
        this.frames = [];
        this.head = 0;
      }
    }
  }

  private onFrame(ws: WebSocket, data: string): void {
    let f: ServerFrame;
    try {
      f = JSON.parse(data) as ServerFrame;
    } catch {
      return;
    }
    switch (f.type) {
      case "authenticated":
        if (ws !== this.ws) break; // queued from a socket since replaced
        this.attempt = 0;
        this.opts.onState?.("open", f.user_id);
        for (const ch of this.channels) {
          ws.send(JSON.stringify({ type: "subscribe", channel: ch, since: this.lastSeq(ch) }));
        }
        break;
      case "notification":
        this.onNotification(f);
        break;
      case "batch":
        for (const m of f.messages ?? []) {
          if (m.type === "notification") this.onNotification(m);
        }
        break;
      case "error":
        this.opts.onError?.(f.code ?? "error", f.message ?? "", f.channel);
        break;
    }
  }

  private onNotification(f: ServerFrame): void {
    const ch = f.channel as Channel;
    const seq = f.seq ?? 0;
    const ordered = ch !== "ops.orders";
    if (ordered && seq <= this.lastSeq(ch)) return; // already delivered
    if (ordered) this.remember(ch, seq);
    if (f.event) this.opts.onNotification?.({ channel: ch, seq, event: f.event });
  }
}
