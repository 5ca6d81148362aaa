// Live operations: every order notification as it happens (ops.orders),
// virtualized; counters per kind and the throughput of the last minute;
// consumers with their lag; dead letters to show, replay and purge.
import { memo, useCallback, useDeferredValue, useRef, useState, type MouseEvent } from "react";
import { useVirtualizer } from "@tanstack/react-virtual";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useNavigate } from "react-router";
import { useOps } from "../live/hooks";
import type { FeedItem } from "../live/store";
import { Sparkline } from "../components/Sparkline";
import { useSession } from "../auth";
import { ApiError, get } from "../api";

export default function Ops() {
  return (
    <section className="ops">
      <h1>Live operations</h1>
      <Counters />
      <Feed />
      <Consumers />
      <DeadLetters />
      <Flags />
    </section>
  );
}

function Counters() {
  const { total, byKind, perSecond } = useOps();
  const last = perSecond[perSecond.length - 1] ?? 0; // the last whole second
  return (
    <div className="counters">
      <div>
        <span className="n" id="feed-total">{total}</span> notifications
      </div>
      {Object.entries(byKind)
        .sort()
        .map(([k, n]) => (
          <div key={k}>
            <span className="n">{n}</span> {k}
          </div>
        ))}
      <div>
        <Sparkline values={perSecond} /> {last}/s
      </div>
    </div>
  );
}

const rowHeight = 28;
const fixedRowHeight = () => rowHeight;

const FeedRow = memo(function FeedRow({ item, top }: { item: FeedItem; top: number }) {
  return (
    <div className="feed-row" style={{ transform: `translateY(${top}px)` }}>
      <span className="t">{item.clock}</span>
      <span className={`k ${item.kind.replace(".", "-")}`}>{item.kind}</span>
      <span className="u">{item.user}</span>
      <a href={`/orders/${item.orderId}`}>{item.orderId.slice(0, 8)}</a>
      <span className="title">{item.title}</span>
    </div>
  );
});

/**
 * The feed, newest first. The store publishes it at most every
 * LiveStore.opsEveryMs (nobody reads 500 rows a second); FeedList draws
 * it in an interruptible background render (useDeferredValue) that
 * yields to input. Hazard: a store that changed during a background
 * render makes React redo that render synchronously ("teared render"),
 * so the store read here must not change every frame — it changes only
 * at a publish — and FeedList itself reads no store.
 */
function Feed() {
  const feed = useDeferredValue(useOps().feed);
  return <FeedList feed={feed} />;
}

/**
 * The visible rows only (about 20 in the DOM whatever the count). Rows
 * are plain links and one handler on the list routes their clicks: a
 * router Link per row would cost its hooks for every row at every
 * publish, as the newest-first rows all shift.
 */
const FeedList = memo(function FeedList({ feed }: { feed: readonly FeedItem[] }) {
  const parent = useRef<HTMLDivElement>(null);
  const navigate = useNavigate();
  const onClick = useCallback(
    (e: MouseEvent<HTMLDivElement>) => {
      const a = (e.target as Element).closest("a");
      if (!a || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
      e.preventDefault();
      void navigate(a.getAttribute("href")!);
    },
    [navigate],
  );
  // Stable callbacks: the virtualizer recomputes its measurements when
  // they change, so only a new feed (not a re-render) costs that.
  const getItemKey = useCallback((i: number) => feed[feed.length - 1 - i]!.id, [feed]);
  const v = useVirtualizer({
    count: feed.length,
    getScrollElement: useCallback(() => parent.current, []),
    estimateSize: fixedRowHeight,
    overscan: 5,
    getItemKey,
  });
  return (
    <div ref={parent} className="feed" id="feed" data-count={feed.length} onClick={onClick}>
      <div style={{ height: v.getTotalSize(), position: "relative" }}>
        {v.getVirtualItems().map((r) => {
          const item = feed[feed.length - 1 - r.index]!;
          return <FeedRow key={item.id} item={item} top={r.start} />;
        })}
      </div>
    </div>
  );
});

interface ConsumerInfo {
  stream: string;
  name: string;
  pending: number;
  ack_pending: number;
  redelivered: number;
  dead_letters: number;
  paused: boolean;
}

function Consumers() {
  const session = useSession();
  const q = useQuery({
    queryKey: ["ops", "consumers"],
    queryFn: ({ signal }) => get<{ consumers: ConsumerInfo[] }>("/v1/ops/consumers", session.token, signal),
    refetchInterval: 2000,
  });
  return (
    <div>
      <h2>Consumers</h2>
      {q.error && <p className="error">{q.error.message}</p>}
      <table id="consumers">
        <thead>
          <tr>
            <th>Stream</th>
            <th>Consumer</th>
            <th className="num">Lag</th>
            <th className="num">Unacked</th>
            <th className="num">Redelivered</th>
            <th className="num">Dead letters</th>
          </tr>
        </thead>
        <tbody>
          {q.data?.consumers.map((c) => (
            <tr key={`${c.stream}/${c.name}`}>
              <td>{c.stream}</td>
              <td>{c.name}</td>
              <td className="num">{c.pending}</td>
              <td className="num">{c.ack_pending}</td>
              <td className="num">{c.redelivered}</td>
              <td className="num">{c.dead_letters}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

interface DeadLetter {
  id: number;
  consumer: string;
  subject: string;
  attempts: number;
  dead_lettered_at: string;
  event_id: string;
  reason: string;
  body?: unknown;
  headers?: Record<string, string[]>;
}

async function send(method: string, path: string, token: string): Promise<unknown> {
  const res = await fetch(path, { method, headers: { Authorization: `Bearer ${token}` } });
  if (!res.ok) throw new ApiError(res.status, await res.json().catch(() => null), null);
  return res.json();
}

function DeadLetters() {
  const session = useSession();
  const qc = useQueryClient();
  const [shown, setShown] = useState<number | null>(null);
  const list = useQuery({
    queryKey: ["ops", "dlq"],
    queryFn: ({ signal }) => get<{ entries: DeadLetter[]; total: number }>("/v1/ops/dlq?limit=200", session.token, signal),
    refetchInterval: 5000,
  });
  const detail = useQuery({
    queryKey: ["ops", "dlq", shown],
    queryFn: ({ signal }) => get<DeadLetter>(`/v1/ops/dlq/${shown}`, session.token, signal),
    enabled: shown !== null,
  });
  const act = useMutation({
    mutationFn: ({ method, path }: { method: string; path: string }) => send(method, path, session.token),
    onSettled: () => qc.invalidateQueries({ queryKey: ["ops", "dlq"] }),
  });
  const entries = list.data?.entries ?? [];
  const total = list.data?.total ?? 0;
  return (
    <div>
      <h2>
        Dead letters <small id="dlq-count">{total}</small>{" "}
        <button
          type="button"
          disabled={total === 0 || act.isPending}
          onClick={() => confirm(`Purge ${total} dead letters for good?`) && act.mutate({ method: "DELETE", path: "/v1/ops/dlq?confirm=purge" })}
        >
          Purge all
        </button>
      </h2>
      {(list.error || act.error) && <p className="error">{(list.error ?? act.error)?.message}</p>}
      <table id="dlq">
        <thead>
          <tr>
            <th>ID</th>
            <th>Consumer</th>
            <th>Subject</th>
            <th className="num">Attempts</th>
            <th>Reason</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {entries.map((e) => (
            <tr key={e.id} data-dlq={e.id}>
              <td>{e.id}</td>
              <td>{e.consumer}</td>
              <td>{e.subject}</td>
              <td className="num">{e.attempts}</td>
              <td className="reason">{e.reason}</td>
              <td>
                <button type="button" onClick={() => setShown(shown === e.id ? null : e.id)}>
                  Show
                </button>{" "}
                <button type="button" disabled={act.isPending} onClick={() => act.mutate({ method: "POST", path: `/v1/ops/dlq/${e.id}/replay` })}>
                  Replay
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {shown !== null && detail.data && entries.some((e) => e.id === shown) && (
        <pre className="dlq-detail">{JSON.stringify(detail.data, null, 2)}</pre>
      )}
    </div>
  );
}

interface FlagInfo {
  name: string;
  percent: number;
  allowed: number;
  denied: number;
  updated_at: string;
}

/** Feature flags and their rollout (`tradewind flags set` changes them). */
function Flags() {
  const session = useSession();
  const q = useQuery({
    queryKey: ["ops", "flags"],
    queryFn: ({ signal }) => get<{ flags: FlagInfo[] }>("/v1/ops/flags", session.token, signal),
    refetchInterval: 10_000,
  });
  return (
    <div>
      <h2>Feature flags</h2>
      {q.error && <p className="error">{q.error.message}</p>}
      {q.data?.flags.length === 0 && <p>No flags (tradewind flags set NAME --percent 10).</p>}
      <table id="flags">
        <tbody>
          {q.data?.flags.map((f) => (
            <tr key={f.name}>
              <td>{f.name}</td>
              <td className="rollout">
                <meter min={0} max={100} value={f.percent} /> {f.percent}%
              </td>
              <td>
                {f.allowed} allowed, {f.denied} denied
              </td>
              <td className="meta">{new Date(f.updated_at).toLocaleString()}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
