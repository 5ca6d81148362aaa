// The Analytics view: the roll-up's bars are indented by depth and its
// numbers are one click away; the pivot and the duplicates are tables;
// "Download CSV" fetches the API's own CSV (?format=csv) with the token.
import { act } from "react";
import { createRoot } from "react-dom/client";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { afterEach, describe, expect, it, vi } from "vitest";
import { AuthProvider } from "../src/auth";
import Analytics, { csvPath } from "../src/views/Analytics";
import { fakeToken } from "./helpers";

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

const answers: Record<string, unknown> = {
  "/v1/analytics/categories": {
    categories: [
      { category_id: "electronics", parent_id: null, name: "Electronics", depth: 0, path: "Electronics", currency: "EUR", revenue: 920, units: 4, own_revenue: 0 },
      { category_id: "phones", parent_id: "electronics", name: "Phones", depth: 1, path: "Electronics > Phones", currency: "EUR", revenue: 900, units: 3, own_revenue: 900 },
      { category_id: "phones", parent_id: "electronics", name: "Phones", depth: 1, path: "Electronics > Phones", currency: "USD", revenue: 300, units: 1, own_revenue: 300 },
    ],
  },
  "/v1/analytics/pivot": {
    categories: [
      { category_id: "phones", path: "Electronics > Phones", currency: "EUR", revenue_total: 900, revenue_7d: 0, revenue_30d: 0, orders_total: 2, units_total: 3, avg_order_revenue: 450 },
      { category_id: "", path: null, currency: "EUR", revenue_total: 100, revenue_7d: 0, revenue_30d: 0, orders_total: 1, units_total: 1, avg_order_revenue: 100 },
    ],
  },
  "/v1/analytics/duplicates": {
    duplicates: [{ matched_on: "email", match_key: "grace@example.com", customer_id: "d-2", email: "GRACE@example.com", name: "grace hopper", rn: 2, keep_id: "d-1" }],
  },
};

let cleanup: (() => void) | null = null;
afterEach(() => {
  cleanup?.();
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});

async function render() {
  const calls: { url: string; auth: string | null }[] = [];
  vi.stubGlobal("fetch", async (url: string, init: RequestInit) => {
    const auth = new Headers(init.headers).get("Authorization");
    calls.push({ url, auth });
    const u = new URL(url, "http://console.test");
    if (u.searchParams.get("format") === "csv") return new Response("category_id,name\r\nphones,Phones\r\n", { headers: { "Content-Type": "text/csv" } });
    if (u.pathname === "/v1/analytics/sales") return Response.json({ days: [] });
    return Response.json(answers[u.pathname]);
  });
  const el = document.createElement("div");
  document.body.append(el);
  const root = createRoot(el);
  cleanup = () => {
    act(() => root.unmount());
    el.remove();
  };
  const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  await act(async () => {
    root.render(
      <AuthProvider token={fakeToken("ops-1", "ops")}>
        <QueryClientProvider client={client}>
          <Analytics />
        </QueryClientProvider>
      </AuthProvider>,
    );
  });
  await vi.waitFor(() => expect(el.querySelectorAll("#rollup-chart li").length).toBe(2));
  await vi.waitFor(() => expect(el.querySelectorAll("#dups-table tbody tr").length).toBe(1));
  return { el, calls };
}

const click = (el: Element | null) => act(async () => (el as HTMLElement).click());

describe("Analytics", () => {
  it("shows the roll-up indented by depth in the chosen currency, and its numbers as a table", async () => {
    const { el } = await render();
    const bars = [...el.querySelectorAll<HTMLElement>("#rollup-chart li .name")];
    expect(bars.map((b) => [b.textContent, b.style.paddingLeft])).toEqual([
      ["Electronics", "0rem"],
      ["Phones", "1.5rem"],
    ]);
    await click(el.querySelector("#toggle-rollup"));
    const cells = [...el.querySelectorAll("#rollup-table tbody tr")].map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent));
    expect(cells).toEqual([
      ["Electronics", "0", "Electronics", "EUR", "920", "0", "4", "electronics"],
      ["Phones", "1", "Electronics > Phones", "EUR", "900", "900", "3", "phones"],
    ]);
    const pivot = [...el.querySelectorAll("#pivot-table tbody tr")].map((tr) => tr.querySelector("td")?.textContent);
    expect(pivot).toEqual(["Electronics > Phones", "(no category)"]);
  });

  it("downloads the API's CSV with the token", async () => {
    const { el, calls } = await render();
    const created = vi.spyOn(URL, "createObjectURL").mockImplementation(() => "blob:csv");
    let downloaded = "";
    const onClick = (e: Event) => {
      const a = e.target as HTMLAnchorElement;
      downloaded = `${a.download} ${a.getAttribute("href")}`;
      e.preventDefault();
    };
    document.addEventListener("click", onClick, true);
    try {
      await click(el.querySelector("#rollup-csv"));
      await vi.waitFor(() => expect(downloaded).toBe("categories.csv blob:csv"));
    } finally {
      document.removeEventListener("click", onClick, true);
    }
    const csv = calls.find((c) => c.url.includes("format=csv"));
    expect(csv).toEqual({ url: "/v1/analytics/categories?format=csv", auth: expect.stringMatching(/^Bearer /) });
    expect(await (created.mock.calls[0]![0] as Blob).text()).toBe("category_id,name\r\nphones,Phones\r\n");
  });

  it("adds format=csv to a path with or without a query", () => {
    expect(csvPath("/v1/analytics/pivot")).toBe("/v1/analytics/pivot?format=csv");
    expect(csvPath("/v1/analytics/sales?from=2026-03-01")).toBe("/v1/analytics/sales?from=2026-03-01&format=csv");
  });
});
