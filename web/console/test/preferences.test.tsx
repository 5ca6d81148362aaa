// The Notifications view's preferences: a checkbox per kind from GET; a
// change PUTs the whole muted list and shows what the server stored.
import { act } from "react";
import { createRoot } from "react-dom/client";
import { MemoryRouter } from "react-router";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ApiError, putPreferences } from "../src/api";
import { AuthProvider } from "../src/auth";
import { LiveProvider } from "../src/live/hooks";
import { LiveStore } from "../src/live/store";
import Notifications from "../src/views/Notifications";
import { fakeToken, manualFrames } from "./helpers";

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

const kinds = ["order.cancelled", "order.confirmed", "order.placed", "payment.refunded"];
const json = (body: unknown, status = 200) => new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });

let cleanup: (() => void) | null = null;
afterEach(() => {
  cleanup?.();
  vi.unstubAllGlobals();
});

describe("putPreferences", () => {
  it("PUTs the whole list without an Idempotency-Key and reports a refusal", async () => {
    const calls: RequestInit[] = [];
    const f = (async (_u: RequestInfo | URL, init?: RequestInit) => {
      calls.push(init!);
      return json({ type: "https://tradewind.dev/problems/invalid-field", title: "Invalid request body", status: 422, detail: '/muted_kinds/0: "x" is not a notification kind' }, 422);
    }) as typeof fetch;
    const err = await putPreferences("tok", ["x"], f).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(422);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.method).toBe("PUT");
    expect(JSON.parse(calls[0]!.body as string)).toEqual({ muted_kinds: ["x"] });
    expect(new Headers(calls[0]!.headers).get("Idempotency-Key")).toBeNull();
  });
});

describe("Notifications preferences", () => {
  it("mutes a kind when its box is unchecked", async () => {
    let stored: string[] = [];
    const puts: unknown[] = [];
    vi.stubGlobal("fetch", async (url: string, init?: RequestInit) => {
      expect(url).toBe("/v1/notifications/preferences");
      if (init?.method === "PUT") {
        const body = JSON.parse(init.body as string) as { muted_kinds: string[] };
        puts.push(body);
        stored = [...body.muted_kinds].sort();
      }
      return json({ muted_kinds: stored, kinds });
    });
    const el = document.createElement("div");
    document.body.append(el);
    const root = createRoot(el);
    cleanup = () => {
      act(() => root.unmount());
      el.remove();
    };
    const qc = new QueryClient({ defaultOptions: { queries: { retry: false } } });
    // Query and mutation results land asynchronously: wait inside act.
    const until = (check: () => void) => act(() => vi.waitFor(check));
    const box = (kind: string) => el.querySelector<HTMLInputElement>(`#preferences input[data-kind="${kind}"]`);
    await act(async () => {
      root.render(
        <AuthProvider token={fakeToken("c-1")}>
          <QueryClientProvider client={qc}>
            <LiveProvider session={null} store={new LiveStore(manualFrames().schedule)}>
              <MemoryRouter>
                <Notifications />
              </MemoryRouter>
            </LiveProvider>
          </QueryClientProvider>
        </AuthProvider>,
      );
    });
    await until(() => expect(box("order.confirmed")).not.toBeNull());
    expect(kinds.every((k) => box(k)!.checked)).toBe(true);

    await act(async () => box("order.confirmed")!.click());
    await until(() => expect(box("order.confirmed")!.checked).toBe(false));
    expect(puts).toEqual([{ muted_kinds: ["order.confirmed"] }]);
    expect(box("order.placed")!.checked).toBe(true);

    await act(async () => box("order.confirmed")!.click());
    await until(() => expect(box("order.confirmed")!.checked).toBe(true));
    expect(puts).toEqual([{ muted_kinds: ["order.confirmed"] }, { muted_kinds: [] }]);
  });
});
