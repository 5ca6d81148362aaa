// The WebSocket client's handling of bursts: frames a browser dispatches
// in one task are handled for at most sliceMs there, the rest in later
// tasks, in arrival order. A fake WebSocket and a fake clock stand in for
// the browser; each notification "costs" 1 ms of the fake clock.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { NotificationClient, sliceMs, type Notification } from "@tradewind/client";

class FakeSocket {
  static last: FakeSocket | null = null;
  sent: string[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((m: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  constructor(readonly url: string) {
    FakeSocket.last = this;
  }
  send(d: string) {
    this.sent.push(d);
  }
  close() {}
  /** The server sends a frame. */
  frame(f: object) {
    this.onmessage?.({ data: JSON.stringify(f) });
  }
}

let now = 0;
const notificationFrame = (channel: string, seq: number) => ({
  type: "notification", channel, seq,
  event: { id: `n-${seq}`, type: "com.tradewind.notifications.notification.v1", data: { seq, kind: "order.placed", title: "t" } },
});

/** A started client, authenticated, whose every delivery costs 1 ms. */
async function connected(channels: ("user" | "ops.orders")[] = ["ops.orders"]) {
  const seen: Notification[] = [];
  const store = new Map<string, string>();
  const client = new NotificationClient({
    url: "ws://test/v1/ws",
    token: () => "t",
    channels,
    storage: { getItem: (k) => store.get(k) ?? null, setItem: (k, v) => void store.set(k, v) },
    onNotification: (n) => {
      seen.push(n);
      now += 1;
    },
  });
  client.start();
  for (let i = 0; i < 10 && !FakeSocket.last; i++) await Promise.resolve(); // token() answered
  expect(FakeSocket.last).not.toBeNull();
  const ws = FakeSocket.last!;
  ws.onopen?.();
  ws.frame({ type: "authenticated", user_id: "u" });
  vi.runOnlyPendingTimers(); // that task ends
  return { client, ws, seen };
}

/** Runs the queued tasks one by one; returns the longest one's work (fake ms). */
function runTasks(): { longest: number; tasks: number } {
  let longest = 0;
  let tasks = 0;
  while (vi.getTimerCount() > 0) {
    const before = now;
    vi.advanceTimersToNextTimer();
    longest = Math.max(longest, now - before);
    tasks++;
  }
  return { longest, tasks };
}

beforeEach(() => {
  FakeSocket.last = null;
  now = 0;
  vi.useFakeTimers();
  vi.spyOn(performance, "now").mockImplementation(() => now);
  vi.stubGlobal("WebSocket", FakeSocket);
});

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
  vi.unstubAllGlobals();
});

describe("NotificationClient", () => {
  it("subscribes after authenticating and delivers a frame in its own message event", async () => {
    const { ws, seen } = await connected(["user"]);
    expect(ws.sent.map((s) => JSON.parse(s).type)).toEqual(["auth", "subscribe"]);
    ws.frame(notificationFrame("user", 1));
    expect(seen.map((n) => n.seq)).toEqual([1]);
  });

  it("spreads a burst dispatched in one task over tasks of at most sliceMs, in order", async () => {
    const { ws, seen } = await connected();
    // 100 batch frames of 5 (5 ms each) dispatched in one task: 500 ms of work.
    let seq = 0;
    for (let b = 0; b < 100; b++) {
      ws.frame({ type: "batch", messages: Array.from({ length: 5 }, () => notificationFrame("ops.orders", ++seq)) });
    }
    const inFirstTask = now;
    expect(seen.length).toBeGreaterThan(0);
    expect(inFirstTask).toBeLessThan(sliceMs + 5);
    // A frame arriving in a later task, while some still wait, goes behind them.
    vi.advanceTimersToNextTimer();
    ws.frame(notificationFrame("ops.orders", ++seq));
    const { longest, tasks } = runTasks();
    expect(longest).toBeLessThan(sliceMs + 5); // the slice plus at most one frame
    expect(tasks).toBeGreaterThan(30);
    expect(seen.map((n) => n.seq)).toEqual(Array.from({ length: seq }, (_, i) => i + 1));
  });

  it("drops ordered duplicates across a queued burst and remembers the last seq", async () => {
    const { client, ws, seen } = await connected(["user"]);
    for (let i = 1; i <= 40; i++) ws.frame(notificationFrame("user", i));
    for (let i = 30; i <= 45; i++) ws.frame(notificationFrame("user", i)); // a resume's overlap
    runTasks();
    expect(seen.map((n) => n.seq)).toEqual(Array.from({ length: 45 }, (_, i) => i + 1));
    expect(client.lastSeq("user")).toBe(45);
  });

  it("delivers nothing queued after stop", async () => {
    const { client, ws, seen } = await connected();
    for (let i = 1; i <= 50; i++) ws.frame(notificationFrame("ops.orders", i));
    const delivered = seen.length;
    expect(delivered).toBeLessThan(50);
    client.stop();
    runTasks();
    expect(seen).toHaveLength(delivered);
  });

  it("goes on with the frames behind a callback that threw", async () => {
    const { ws, seen } = await connected();
    for (let i = 1; i <= 20; i++) ws.frame(notificationFrame("ops.orders", i));
    const bad = seen.length + 1; // the first queued one
    const push = seen.push.bind(seen);
    seen.push = (...items: Notification[]) => {
      if (items[0]?.seq === bad) throw new Error("callback failed");
      return push(...items);
    };
    expect(() => vi.runOnlyPendingTimers()).toThrow("callback failed");
    runTasks();
    expect(seen.map((n) => n.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1).filter((s) => s !== bad));
  });
});
