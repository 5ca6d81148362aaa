import { describe, expect, it, vi } from "vitest";
import { LiveStore } from "../src/live/store";
import { manualFrames, notification, order } from "./helpers";

describe("LiveStore", () => {
  it("applies a burst of notifications in one flush per frame and notifies once", () => {
    const frames = manualFrames();
    const store = new LiveStore(frames.schedule);
    const listener = vi.fn();
    store.subscribeOps(listener);
    for (let i = 1; i <= 100; i++) store.push(notification(i, order(i).order_id, "order.placed", "ops.orders"));
    expect(frames.pending).toBe(1);
    expect(listener).not.toHaveBeenCalled();
    frames.frame();
    expect(listener).toHaveBeenCalledTimes(1);
    expect(store.getOps().feed).toHaveLength(100);
    expect(store.getOps().byKind["order.placed"]).toBe(100);
    expect(store.flushes).toBe(1);
  });

  it("wakes only the listeners of the order that changed and keeps the others' snapshots", () => {
    const frames = manualFrames();
    const store = new LiveStore(frames.schedule);
    const a = order(1).order_id;
    const b = order(2).order_id;
    store.push(notification(1, a, "order.placed"));
    store.push(notification(2, b, "order.placed"));
    frames.frame();
    const before = store.order(b);
    const la = vi.fn();
    const lb = vi.fn();
    store.subscribeOrder(a, la);
    store.subscribeOrder(b, lb);
    store.push(notification(3, a, "order.confirmed"));
    frames.frame();
    expect(la).toHaveBeenCalledTimes(1);
    expect(lb).not.toHaveBeenCalled();
    expect(store.order(a)?.status).toBe("confirmed");
    expect(store.order(b)).toBe(before);
  });

  it("never moves an order back to an older status", () => {
    const frames = manualFrames();
    const store = new LiveStore(frames.schedule);
    const a = order(1).order_id;
    store.push(notification(5, a, "order.confirmed"));
    store.push(notification(4, a, "order.placed"));
    frames.frame();
    expect(store.order(a)?.status).toBe("confirmed");
  });

  it("counts unread after the read mark, newest first", () => {
    const frames = manualFrames();
    const store = new LiveStore(frames.schedule);
    for (let i = 1; i <= 5; i++) store.push(notification(i, order(i).order_id, "order.placed"));
    frames.frame();
    expect(store.getInbox().map((n) => n.seq)).toEqual([5, 4, 3, 2, 1]);
    expect(store.unread()).toBe(5);
    store.markRead(3);
    expect(store.unread()).toBe(2);
    store.markRead(1); // never backwards
    expect(store.getReadSeq()).toBe(3);
  });

  it("keeps the feed bounded", () => {
    const frames = manualFrames();
    const store = new LiveStore(frames.schedule);
    for (let i = 1; i <= LiveStore.feedLimit + 10; i++) store.push(notification(i, order(i).order_id, "order.placed", "ops.orders"));
    frames.frame();
    expect(store.getOps().feed).toHaveLength(LiveStore.feedLimit);
    expect(store.getOps().total).toBe(LiveStore.feedLimit + 10);
  });

  it("counts throughput per whole second, changing the series once a second", () => {
    const frames = manualFrames();
    let now = 10_000;
    const store = new LiveStore(frames.schedule, () => now);
    const burst = (n: number, from: number) => {
      for (let i = 0; i < n; i++) store.push(notification(from + i, order(from + i).order_id, "order.placed", "ops.orders"));
      frames.frame();
    };
    burst(3, 1);
    const series = store.getOps().perSecond;
    now += 400;
    burst(2, 10);
    expect(store.getOps().perSecond).toBe(series); // same second: same array
    expect(store.getOps().current).toBe(5);
    now += 700; // the next second
    burst(1, 20);
    expect(store.getOps().perSecond.at(-1)).toBe(5);
    expect(store.getOps().current).toBe(1);
    now += 3000; // two idle seconds in between
    burst(1, 30);
    expect(store.getOps().perSecond.slice(-3)).toEqual([1, 0, 0]);
    expect(store.getOps().perSecond).toHaveLength(60);
  });

  it("publishes the ops snapshot at most once per period: the first change at once, the rest at the period's end", () => {
    const frames = manualFrames();
    const timers: { f: () => void; ms: number }[] = [];
    let now = 50_000;
    const store = new LiveStore(frames.schedule, () => now, { opsEveryMs: 250, later: (f, ms) => void timers.push({ f, ms }) });
    const ops = vi.fn();
    const inbox = vi.fn();
    store.subscribeOps(ops);
    store.subscribe(inbox);
    let seq = 0;
    const frame = (n: number) => {
      for (let i = 0; i < n; i++, seq++) store.push(notification(seq, order(seq).order_id, "order.placed", "ops.orders"));
      frames.frame();
      now += 16;
    };
    frame(8); // after a quiet period: published at once
    expect(ops).toHaveBeenCalledTimes(1);
    expect(store.getOps().total).toBe(8);
    const published = store.getOps();
    for (let i = 0; i < 10; i++) frame(8); // 160 ms of frames: nothing published, one timer set
    expect(store.flushes).toBe(11);
    expect(ops).toHaveBeenCalledTimes(1);
    expect(store.getOps()).toBe(published); // stable between publishes
    expect(timers).toHaveLength(1);
    expect(timers[0]!.ms).toBe(250 - 16);
    now += 100;
    timers.shift()!.f();
    expect(ops).toHaveBeenCalledTimes(2);
    expect(store.getOps().total).toBe(88);
    expect(store.getOps().feed).toHaveLength(88);
    expect(store.getOps().feed.at(-1)?.id).toBe(`n-ops.orders-87`); // newest last, in order
    expect(store.getOps().byKind["order.placed"]).toBe(88);
    expect(store.publishes).toBe(2);
    // Ops traffic never wakes the inbox's listeners.
    expect(inbox).not.toHaveBeenCalled();
    // The next change waits for the period again; a flush with nothing new publishes nothing.
    frame(1);
    expect(timers).toHaveLength(1);
    timers.shift()!.f();
    expect(ops).toHaveBeenCalledTimes(3);
    now += 1000;
    store.flush();
    expect(ops).toHaveBeenCalledTimes(3);
  });

  it("wakes the inbox's listeners, not the ops listeners, for user notifications", () => {
    const frames = manualFrames();
    const store = new LiveStore(frames.schedule);
    const ops = vi.fn();
    const inbox = vi.fn();
    store.subscribeOps(ops);
    store.subscribe(inbox);
    store.push(notification(1, order(1).order_id, "order.placed"));
    frames.frame();
    expect(inbox).toHaveBeenCalledTimes(1);
    expect(ops).not.toHaveBeenCalled();
  });

  it("keeps the feed bounded across many flushes between two publishes", () => {
    const frames = manualFrames();
    const timers: (() => void)[] = [];
    let now = 1_000;
    const store = new LiveStore(frames.schedule, () => now, { later: (f) => void timers.push(f) });
    let seq = 0;
    for (let f = 0; f < 30; f++) {
      for (let i = 0; i < 500; i++, seq++) store.push(notification(seq, order(seq).order_id, "order.confirmed", "ops.orders"));
      frames.frame();
    }
    timers.shift()!();
    expect(store.getOps().feed).toHaveLength(LiveStore.feedLimit);
    expect(store.getOps().feed.at(-1)?.id).toBe(`n-ops.orders-${seq - 1}`);
    expect(store.getOps().feed[0]?.id).toBe(`n-ops.orders-${seq - LiveStore.feedLimit}`);
    expect(store.getOps().total).toBe(seq);
  });
});
