import { describe, expect, it, vi } from "vitest";
import { LiveStore } from "../src/live/store";
import { manualFrames, notification, order } from "./helpers";

describe("LiveStore", () => {
  it("applies a burst of notifications in one flush per frame and notifies once", () => {
    const frames = manualFrames();
    const store = new LiveStore(frames.schedule);
    const listener = vi.fn();
    store.subscribe(listener);
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
});
