// A live update to one order re-renders that order's row only: the list,
// the table and the other rows do not render again.
import { act, Profiler } from "react";
import { createRoot } from "react-dom/client";
import { MemoryRouter } from "react-router";
import { afterEach, describe, expect, it } from "vitest";
import { AuthProvider } from "../src/auth";
import { LiveProvider } from "../src/live/hooks";
import { LiveStore } from "../src/live/store";
import { OrderTable } from "../src/views/Orders";
import { fakeToken, manualFrames, notification, order } from "./helpers";

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

let cleanup: (() => void) | null = null;
afterEach(() => cleanup?.());

describe("OrderTable", () => {
  it("re-renders only the row whose order changed", async () => {
    const frames = manualFrames();
    const store = new LiveStore(frames.schedule);
    const orders = Array.from({ length: 50 }, (_, i) => order(i + 1));
    const renders = new Map<string, number>();
    const onRender = (id: string) => renders.set(id, (renders.get(id) ?? 0) + 1);
    let tableCommits = 0;
    const token = fakeToken("c-1");
    const el = document.createElement("div");
    document.body.append(el);
    const root = createRoot(el);
    cleanup = () => {
      act(() => root.unmount());
      el.remove();
    };
    await act(async () => {
      root.render(
        <AuthProvider token={token}>
          <LiveProvider session={null} store={store}>
            <MemoryRouter>
              <Profiler id="table" onRender={() => tableCommits++}>
                <OrderTable orders={orders} onRender={onRender} />
              </Profiler>
            </MemoryRouter>
          </LiveProvider>
        </AuthProvider>,
      );
    });
    expect(renders.size).toBe(50);
    expect([...renders.values()].every((n) => n === 1)).toBe(true);
    const commitsBefore = tableCommits;

    const target = orders[6]!.order_id;
    await act(async () => {
      store.push(notification(8, target, "order.confirmed"));
      frames.frame();
    });

    const rerendered = [...renders].filter(([, n]) => n > 1).map(([id]) => id);
    console.log(`re-renders after a live update to 1 of 50 orders: ${rerendered.length} row(s), ${tableCommits - commitsBefore} commit(s)`);
    expect(rerendered).toEqual([target]);
    expect(renders.get(target)).toBe(2);
    expect(tableCommits - commitsBefore).toBe(1);
    expect(el.querySelector(`tr[data-order="${target}"]`)?.getAttribute("data-status")).toBe("confirmed");
    expect(el.querySelectorAll('tr[data-status="confirmed"]')).toHaveLength(1);
  });

  it("shows the further status of the read model's and the stream's", async () => {
    const frames = manualFrames();
    const store = new LiveStore(frames.schedule);
    const orders = [order(1, "confirmed"), order(2, "pending")];
    const el = document.createElement("div");
    document.body.append(el);
    const root = createRoot(el);
    cleanup = () => {
      act(() => root.unmount());
      el.remove();
    };
    await act(async () => {
      store.push(notification(1, orders[0]!.order_id, "order.placed")); // older than the row
      store.push(notification(2, orders[1]!.order_id, "order.cancelled")); // newer
      frames.frame();
      root.render(
        <AuthProvider token={fakeToken("c-1")}>
          <LiveProvider session={null} store={store}>
            <MemoryRouter>
              <OrderTable orders={orders} />
            </MemoryRouter>
          </LiveProvider>
        </AuthProvider>,
      );
    });
    const status = (o: (typeof orders)[number]) => el.querySelector(`tr[data-order="${o.order_id}"]`)?.getAttribute("data-status");
    expect(status(orders[0]!)).toBe("confirmed");
    expect(status(orders[1]!)).toBe("cancelled");
  });
});
