// The inbox: the user channel's notifications, newest first, gap-free
// (the client resumes from the last seq after a reconnect), with the
// unread count and a read mark.
import { Link } from "react-router";
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
