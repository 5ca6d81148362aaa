// The inbox: the user channel's notifications, newest first, gap-free
// (the client resumes from the last seq after a reconnect), with the
// unread count and a read mark; and the user's preferences: the kinds
// they muted, which the notifier then never makes (no seq, no push, not
// unread; docs/websocket.md). Entries already in the inbox stay.
import { memo, useCallback } from "react";
import { Link } from "react-router";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { getPreferences, putPreferences, type NotificationPreferences } from "../api";
import { useSession } from "../auth";
import { useInbox, useLiveStore, useReadSeq, useUnread } from "../live/hooks";

export default function Notifications() {
  const inbox = useInbox();
  const unread = useUnread();
  const read = useReadSeq();
  const store = useLiveStore();
  return (
    <section>
      <h1>
        Notifications <small id="unread-count">{unread} unread</small>
      </h1>
      <button type="button" disabled={unread === 0} onClick={() => store.markRead(inbox[0]?.seq ?? 0)}>
        Mark all read
      </button>
      <Preferences />
      <ol className="inbox" id="inbox">
        {inbox.map((n) => {
          const d = n.event.data;
          return (
            <li key={n.seq} data-seq={n.seq} data-kind={d.kind} className={n.seq > read ? "unread" : undefined}>
              <strong>{d.title}</strong>
              <div>{d.body}</div>
              <div className="meta">
                #{n.seq} · {d.kind} · {new Date(n.event.time ?? d.source.time ?? Date.now()).toLocaleTimeString()}
                {d.order_id && (
                  <>
                    {" · "}
                    <Link to={`/orders/${d.order_id}`}>order</Link>
                  </>
                )}
              </div>
            </li>
          );
        })}
      </ol>
      {inbox.length === 0 && <p>No notifications yet: place an order.</p>}
    </section>
  );
}

const preferencesKey = ["notification-preferences"] as const;

/** A checkbox per notification kind: checked is "notify me". */
const Preferences = memo(function Preferences() {
  const session = useSession();
  const qc = useQueryClient();
  const q = useQuery({ queryKey: preferencesKey, queryFn: ({ signal }) => getPreferences(session.token, signal) });
  const save = useMutation({
    mutationFn: (muted: string[]) => putPreferences(session.token, muted),
    onSuccess: (p) => qc.setQueryData<NotificationPreferences>(preferencesKey, p),
  });
  const muted = q.data?.muted_kinds;
  const { mutate } = save;
  const toggle = useCallback(
    (kind: string, notify: boolean) => {
      if (!muted) return;
      mutate(notify ? muted.filter((k) => k !== kind) : [...muted, kind]);
    },
    [muted, mutate],
  );
  return (
    <fieldset id="preferences" className="preferences" disabled={!q.data || save.isPending} aria-busy={save.isPending}>
      <legend>Notify me about</legend>
      {q.data?.kinds.map((kind) => (
        <KindToggle key={kind} kind={kind} notify={!q.data.muted_kinds.includes(kind)} onToggle={toggle} />
      ))}
      {(q.error || save.error) && <p className="error">{(q.error ?? save.error)?.message}</p>}
    </fieldset>
  );
});

const KindToggle = memo(function KindToggle({ kind, notify, onToggle }: { kind: string; notify: boolean; onToggle: (kind: string, notify: boolean) => void }) {
  return (
    <label>
      <input type="checkbox" data-kind={kind} checked={notify} onChange={(e) => onToggle(kind, e.target.checked)} /> {kind}
    </label>
  );
});
