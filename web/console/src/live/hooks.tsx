// React's view of the LiveStore: a context holding the store (its identity
// never changes during a session, so the context never re-renders
// anyone) and hooks that read slices of it with useSyncExternalStore.
import { createContext, useCallback, useContext, useEffect, useMemo, useSyncExternalStore, type ReactNode } from "react";
import { NotificationClient, type Channel } from "@tradewind/client";
import { LiveStore, type OrderLive } from "./store";
import type { Session } from "../auth";

const LiveContext = createContext<LiveStore | null>(null);

/** Provides a store; connect starts the WebSocket for a session. */
export function LiveProvider({ session, store: given, children }: { session: Session | null; store?: LiveStore; children: ReactNode }) {
  // One store per signed-in user: a new user starts from an empty inbox.
  const store = useMemo(() => given ?? new LiveStore(), [given, session?.user]); // eslint-disable-line react-hooks/exhaustive-deps
  useEffect(() => {
    if (!session || given) return;
    const channels: Channel[] = session.role === "ops" ? ["user", "ops.orders"] : ["user"];
    // The last seq per channel lives in memory, not localStorage: a page
    // load shows the whole inbox (since 0); a reconnect resumes after the
    // last seq delivered, so nothing is lost and nothing shown twice.
    const seqs = new Map<string, string>();
    const client = new NotificationClient({
      token: () => session.token,
      channels,
      storage: { getItem: (k) => seqs.get(k) ?? null, setItem: (k, v) => void seqs.set(k, v) },
      onNotification: store.push,
      onState: (s, detail) => store.setConnection(s, detail ?? ""),
      onError: (code, message) => store.setConnection(store.getConnection(), `${code}: ${message}`),
    });
    const readKey = `tradewind.read.${session.user}`;
    store.markRead(Number(localStorage.getItem(readKey)) || 0);
    let saved = store.getReadSeq();
    const unsubscribe = store.subscribe(() => {
      const seq = store.getReadSeq();
      if (seq !== saved) localStorage.setItem(readKey, String((saved = seq))); // not on every feed flush
    });
    client.start();
    (window as unknown as { tradewindLive?: LiveStore }).tradewindLive = store;
    return () => {
      unsubscribe();
      client.stop();
    };
  }, [session, store, given]);
  return <LiveContext.Provider value={store}>{children}</LiveContext.Provider>;
}

export function useLiveStore(): LiveStore {
  const s = useContext(LiveContext);
  if (!s) throw new Error("useLiveStore outside LiveProvider");
  return s;
}

/** What the stream last said about one order; re-renders only when that order changes. */
export function useOrderLive(id: string): OrderLive | undefined {
  const store = useLiveStore();
  const subscribe = useCallback((l: () => void) => store.subscribeOrder(id, l), [store, id]);
  return useSyncExternalStore(subscribe, () => store.order(id));
}

export function useInbox() {
  const s = useLiveStore();
  return useSyncExternalStore(s.subscribe, s.getInbox);
}

/** The ops feed, counters and throughput; re-renders at most once per LiveStore.opsEveryMs. */
export function useOps() {
  const s = useLiveStore();
  return useSyncExternalStore(s.subscribeOps, s.getOps);
}

export function useConnection() {
  const s = useLiveStore();
  return useSyncExternalStore(s.subscribe, s.getConnection);
}

/** The inbox's unread count (notifications after the read mark). */
export function useUnread(): number {
  const s = useLiveStore();
  return useSyncExternalStore(s.subscribe, () => s.unread());
}

/** The read mark. */
export function useReadSeq(): number {
  const s = useLiveStore();
  return useSyncExternalStore(s.subscribe, s.getReadSeq);
}
