// LiveStore holds what the WebSocket streams: the user's inbox, each
// order's latest known status, and (for operators) the ops.orders feed
// with its counters and throughput. It lives outside React; components
// read it with useSyncExternalStore (live/hooks.ts).
//
// Invariants:
//   - notifications arrive in any number per frame but are applied at most
//     once per animation frame: push() queues, flush() applies the queue;
//   - the inbox, the read mark and the connection state notify subscribe()
//     listeners at that flush; the ops feed, its counters and throughput
//     notify subscribeOps() listeners at most once per opsEveryMs (250 ms
//     by default: the first change after a quiet period at once, the rest
//     at the end of the period), so a 500/s stream costs the page four
//     small renders a second, not one per frame;
//   - a snapshot is immutable: a flush or a publish replaces what changed
//     (a new order entry, a new feed array) and keeps the identity of what
//     did not, so a row reading an unchanged order does not re-render;
//     between two publishes getOps() returns the same object, so a
//     concurrent render never sees it change under it;
//   - order listeners are per order id: an update to one order wakes only
//     the components that read that order.
import type { Notification } from "@tradewind/client";

export type OrderStatus = "pending" | "confirmed" | "cancelled";

/** What the stream last said about an order. */
export interface OrderLive {
  status: OrderStatus;
  kind: string;
  /** The source event's time (ISO 8601). */
  at: string;
  seq: number;
}

/** A row of the ops feed. */
export interface FeedItem {
  /** Unique per item (the notification's CloudEvent id). */
  id: string;
  user: string;
  orderId: string;
  kind: string;
  title: string;
  at: string;
  /** at as HH:MM:SS (UTC), made once here rather than per render. */
  clock: string;
}

export interface OpsSnapshot {
  /** Newest last; at most feedLimit. */
  feed: readonly FeedItem[];
  total: number;
  byKind: Readonly<Record<string, number>>;
  /** Notifications per whole second over the last 60 s, oldest first. */
  perSecond: readonly number[];
  /** Notifications so far in the current second. */
  current: number;
}

export type ConnState = "connecting" | "open" | "reconnecting" | "stopped";

const statusOfKind: Record<string, OrderStatus> = {
  "order.placed": "pending",
  "order.confirmed": "confirmed",
  "order.cancelled": "cancelled",
};

/** Schedules a flush; requestAnimationFrame in a page. */
export type Scheduler = (flush: () => void) => void;

/** Runs f after ms; setTimeout in a page. */
export type Timer = (f: () => void, ms: number) => void;

const frame: Scheduler = (f) =>
  typeof requestAnimationFrame === "function" ? void requestAnimationFrame(() => f()) : void setTimeout(f, 16);

const timeout: Timer = (f, ms) => void setTimeout(f, ms);

export interface LiveStoreOptions {
  /** Least time between two publishes of the ops snapshot (ms); 0: at every flush. */
  opsEveryMs?: number;
  /** Schedules the trailing publish. */
  later?: Timer;
}

export class LiveStore {
  static readonly feedLimit = 5000;
  static readonly inboxLimit = 1000;
  static readonly opsEveryMs = 250;

  private queue: Notification[] = [];
  private scheduled = false;
  private readonly orders = new Map<string, OrderLive>();
  private readonly orderListeners = new Map<string, Set<() => void>>();
  private readonly listeners = new Set<() => void>();
  private readonly opsListeners = new Set<() => void>();
  private inbox: readonly Notification[] = [];
  /** The published ops snapshot (what getOps returns). */
  private ops: OpsSnapshot = { feed: [], total: 0, byKind: {}, perSecond: new Array(60).fill(0), current: 0 };
  // The ops state as of the last flush, published at most every opsEveryMs.
  private feedAdds: FeedItem[] = [];
  private total = 0;
  private byKind: Record<string, number> = {};
  private perSecond: readonly number[] = this.ops.perSecond;
  private current = 0;
  private secondAt = 0;
  private opsDirty = false;
  private publishPending = false;
  private publishedAt = -Infinity;
  private readonly opsEveryMs: number;
  private readonly later: Timer;
  private readSeq = 0;
  private conn: ConnState = "stopped";
  private connDetail = "";
  /** Flushes so far (tests and the e2e read it). */
  flushes = 0;
  /** Ops snapshots published so far (tests and the e2e read it). */
  publishes = 0;

  constructor(
    private readonly schedule: Scheduler = frame,
    private readonly now: () => number = Date.now,
    opts: LiveStoreOptions = {},
  ) {
    this.opsEveryMs = opts.opsEveryMs ?? LiveStore.opsEveryMs;
    this.later = opts.later ?? timeout;
  }

  /** Queues a notification; applied at the next frame. */
  push = (n: Notification): void => {
    this.queue.push(n);
    if (!this.scheduled) {
      this.scheduled = true;
      this.schedule(this.flush);
    }
  };

  setConnection = (s: ConnState, detail = ""): void => {
    if (s === this.conn && detail === this.connDetail) return;
    this.conn = s;
    this.connDetail = detail;
    this.emit();
  };

  /** Applies every queued notification and notifies once. */
  flush = (): void => {
    this.scheduled = false;
    const q = this.queue;
    if (q.length === 0) return;
    this.queue = [];
    this.flushes++;
    const changed = new Set<string>();
    const inboxAdds: Notification[] = [];
    const feedAdds: FeedItem[] = [];
    for (const n of q) {
      const d = n.event.data;
      const at = d.source.time ?? n.event.time ?? "";
      if (n.channel === "ops.orders") {
        feedAdds.push({ id: n.event.id, user: d.user_id, orderId: d.order_id ?? "", kind: d.kind, title: d.title, at, clock: at.slice(11, 19) });
        continue;
      }
      if (n.channel === "user") inboxAdds.push(n);
      const status = statusOfKind[d.kind];
      if (d.order_id && status) {
        const prev = this.orders.get(d.order_id);
        if (!prev || prev.seq < d.seq) {
          this.orders.set(d.order_id, { status, kind: d.kind, at, seq: d.seq });
          changed.add(d.order_id);
        }
      }
    }
    if (inboxAdds.length > 0) {
      const merged = [...inboxAdds.reverse(), ...this.inbox];
      this.inbox = merged.length > LiveStore.inboxLimit ? merged.slice(0, LiveStore.inboxLimit) : merged;
    }
    if (feedAdds.length > 0) this.addFeed(feedAdds);
    for (const id of changed) this.orderListeners.get(id)?.forEach((l) => l());
    if (inboxAdds.length > 0) this.emit();
    if (feedAdds.length > 0) this.requestPublish();
  };

  /** Counts a flush's feed items into the unpublished ops state (no copy of the feed). */
  private addFeed(adds: FeedItem[]): void {
    for (const a of adds) this.feedAdds.push(a);
    // Between publishes only the newest feedLimit items can be shown.
    if (this.feedAdds.length > 2 * LiveStore.feedLimit) this.feedAdds = this.feedAdds.slice(-LiveStore.feedLimit);
    for (const a of adds) this.byKind[a.kind] = (this.byKind[a.kind] ?? 0) + 1;
    this.total += adds.length;
    // perSecond holds whole seconds only, so it changes (and the
    // sparkline redraws) once a second, not at every publish.
    const sec = Math.floor(this.now() / 1000);
    if (this.secondAt === 0) this.secondAt = sec;
    if (sec > this.secondAt) {
      const gap = Math.min(sec - this.secondAt - 1, 60);
      this.perSecond = this.perSecond.concat([this.current], new Array(gap).fill(0)).slice(-60);
      this.current = 0;
      this.secondAt = sec;
    }
    this.current += adds.length;
    this.opsDirty = true;
  }

  /** Publishes now if the last publish is opsEveryMs old, else once at the end of the period. */
  private requestPublish(): void {
    if (this.publishPending) return;
    const wait = this.publishedAt + this.opsEveryMs - this.now();
    if (wait <= 0) {
      this.publish();
      return;
    }
    this.publishPending = true;
    this.later(() => {
      this.publishPending = false;
      this.publish();
    }, wait);
  }

  /** Makes the ops state as of the last flush the snapshot, and notifies. */
  private publish(): void {
    if (!this.opsDirty) return;
    this.opsDirty = false;
    this.publishedAt = this.now();
    this.publishes++;
    const adds = this.feedAdds;
    this.feedAdds = [];
    let feed = this.ops.feed.concat(adds);
    if (feed.length > LiveStore.feedLimit) feed = feed.slice(feed.length - LiveStore.feedLimit);
    this.ops = { feed, total: this.total, byKind: { ...this.byKind }, perSecond: this.perSecond, current: this.current };
    this.opsListeners.forEach((l) => l());
  }

  private emit(): void {
    this.listeners.forEach((l) => l());
  }

  /** Subscribes to the inbox, the read mark and the connection state (not the ops feed: subscribeOps). */
  subscribe = (l: () => void): (() => void) => {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  };

  /** Subscribes to the ops snapshot (getOps): called at most once per opsEveryMs. */
  subscribeOps = (l: () => void): (() => void) => {
    this.opsListeners.add(l);
    return () => this.opsListeners.delete(l);
  };

  /** Subscribes to one order's changes. */
  subscribeOrder(id: string, l: () => void): () => void {
    let s = this.orderListeners.get(id);
    if (!s) this.orderListeners.set(id, (s = new Set()));
    s.add(l);
    return () => {
      s.delete(l);
      if (s.size === 0) this.orderListeners.delete(id);
    };
  }

  /** Marks the inbox read up to seq (never backwards). */
  markRead = (seq: number): void => {
    if (seq <= this.readSeq) return;
    this.readSeq = seq;
    this.emit();
  };
  getReadSeq = (): number => this.readSeq;
  /** Inbox notifications after the read mark. */
  unread(): number {
    let n = 0;
    for (const x of this.inbox) if (x.seq > this.readSeq) n++;
    return n;
  }

  order(id: string): OrderLive | undefined {
    return this.orders.get(id);
  }
  getInbox = (): readonly Notification[] => this.inbox;
  getOps = (): OpsSnapshot => this.ops;
  getConnection = (): ConnState => this.conn;
  getConnectionDetail = (): string => this.connDetail;
}
