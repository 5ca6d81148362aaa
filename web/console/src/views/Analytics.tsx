// Analytics (operators): sales per day (GET /v1/analytics/sales) as a uPlot
// chart of revenue, its 7-day average and running total; revenue rolled up
// the category tree (…/categories) as indented bars; the per-category pivot
// (…/pivot); suspected duplicate customers (…/duplicates). Each chart's
// numbers are one click away as a table, and every panel downloads the
// API's own CSV (?format=csv), so the file is what the API serves. uPlot
// and everything here load with this route only.
import { useEffect, useMemo, useRef, useState, type ReactNode } from "react";
import { useQuery } from "@tanstack/react-query";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import "./Analytics.css";
import { get, getBlob, money, type CategoryRevenue, type Duplicate, type PivotRow, type SalesDay } from "../api";
import { useSession } from "../auth";

const salesColumns: (keyof SalesDay)[] = ["day", "currency", "orders", "units", "revenue", "revenue_running_total", "revenue_7d_avg", "orders_7d_avg"];
const rollupColumns: (keyof CategoryRevenue)[] = ["name", "depth", "path", "currency", "revenue", "own_revenue", "units", "category_id"];
const pivotColumns: (keyof PivotRow)[] = ["path", "category_id", "currency", "revenue_total", "revenue_7d", "revenue_30d", "orders_total", "units_total", "avg_order_revenue"];
const duplicateColumns: (keyof Duplicate)[] = ["matched_on", "match_key", "customer_id", "email", "name", "rn", "keep_id"];

/** path with ?format=csv added: the API's CSV of the same rows. */
export function csvPath(path: string): string {
  return path + (path.includes("?") ? "&" : "?") + "format=csv";
}

export default function Analytics() {
  const session = useSession();
  const [from, setFrom] = useState(() => new Date(Date.now() - 30 * 864e5).toISOString().slice(0, 10));
  const [table, setTable] = useState(false);
  const salesPath = `/v1/analytics/sales?from=${from}`;
  const sales = useQuery({
    queryKey: ["analytics", "sales", from],
    queryFn: ({ signal }) => get<{ days: SalesDay[] }>(salesPath, session.token, signal),
  });
  const rollup = useQuery({
    queryKey: ["analytics", "categories"],
    queryFn: ({ signal }) => get<{ categories: CategoryRevenue[] }>("/v1/analytics/categories", session.token, signal),
  });
  const days = sales.data?.days ?? [];
  const cats = rollup.data?.categories ?? [];
  const currencies = useMemo(() => [...new Set([...days, ...cats].map((d) => d.currency))].sort(), [days, cats]);
  const [currency, setCurrency] = useState("EUR");
  const rows = useMemo(() => days.filter((d) => d.currency === currency), [days, currency]);
  return (
    <div className="analytics">
      <section>
        <h1>Sales</h1>
        <div className="controls">
          <label>
            From <input type="date" value={from} onChange={(e) => setFrom(e.target.value)} />
          </label>
          <label>
            Currency{" "}
            <select value={currency} onChange={(e) => setCurrency(e.target.value)} id="currency">
              {(currencies.length ? currencies : ["EUR"]).map((c) => (
                <option key={c}>{c}</option>
              ))}
            </select>
          </label>
          <button type="button" onClick={() => setTable(!table)} id="toggle-table">
            {table ? "Chart" : "Table"}
          </button>
          <CsvButton id="csv" path={salesPath} file={`sales-from-${from}.csv`} />
        </div>
        {sales.error && <p className="error">{sales.error.message}</p>}
        {table ? <Table id="sales-table" columns={salesColumns} rows={rows} rowKey={(r) => r.day + r.currency} /> : <SalesChart rows={rows} />}
        {rows.length === 0 && !sales.isPending && <p>No sales in this range.</p>}
      </section>
      <Rollup rows={cats} currency={currency} error={rollup.error} pending={rollup.isPending} />
      <Pivot currency={currency} />
      <Duplicates />
    </div>
  );
}

/** Revenue rolled up the category tree: indented bars, or the table. */
function Rollup({ rows: all, currency, error, pending }: { rows: CategoryRevenue[]; currency: string; error: Error | null; pending: boolean }) {
  const [table, setTable] = useState(false);
  const rows = useMemo(() => all.filter((r) => r.currency === currency), [all, currency]);
  return (
    <section>
      <h2>Revenue by category, with subcategories</h2>
      <div className="controls">
        <button type="button" onClick={() => setTable(!table)} id="toggle-rollup">
          {table ? "Chart" : "Table"}
        </button>
        <CsvButton id="rollup-csv" path="/v1/analytics/categories" file="categories.csv" />
      </div>
      {error && <p className="error">{error.message}</p>}
      {table ? (
        <Table
          id="rollup-table"
          columns={rollupColumns}
          rows={rows}
          rowKey={(r) => r.category_id + r.currency}
          render={{ name: (r) => <span style={{ paddingLeft: `${r.depth * 1.5}rem` }}>{r.name}</span> }}
        />
      ) : (
        <RollupBars rows={rows} />
      )}
      {rows.length === 0 && !pending && !error && <p>No categories with sales in {currency}.</p>}
    </section>
  );
}

function RollupBars({ rows }: { rows: CategoryRevenue[] }) {
  const max = Math.max(1, ...rows.map((r) => r.revenue));
  return (
    <ul id="rollup-chart" className="rollup">
      {rows.map((r) => (
        <li key={r.category_id} data-depth={r.depth} title={r.path}>
          <span className="name" style={{ paddingLeft: `${r.depth * 1.5}rem` }}>
            {r.name}
          </span>
          <span className="track">
            <span className="bar" style={{ width: `${(Math.max(0, r.revenue) / max) * 100}%` }} />
          </span>
          <span className="num">{money(r.revenue, r.currency)}</span>
        </li>
      ))}
    </ul>
  );
}

/** sales_category_pivot: each category's metrics as columns. */
function Pivot({ currency }: { currency: string }) {
  const session = useSession();
  const q = useQuery({
    queryKey: ["analytics", "pivot"],
    queryFn: ({ signal }) => get<{ categories: PivotRow[] }>("/v1/analytics/pivot", session.token, signal),
  });
  const rows = useMemo(() => (q.data?.categories ?? []).filter((r) => r.currency === currency), [q.data, currency]);
  return (
    <section>
      <h2>Category metrics</h2>
      <p className="meta">Each category's own sales (not rolled up); the 7- and 30-day columns count back from today. Amounts in minor units.</p>
      <div className="controls">
        <CsvButton id="pivot-csv" path="/v1/analytics/pivot" file="pivot.csv" />
      </div>
      {q.error && <p className="error">{q.error.message}</p>}
      <Table
        id="pivot-table"
        columns={pivotColumns}
        rows={rows}
        rowKey={(r) => r.category_id + r.currency}
        render={{ path: (r) => r.path ?? (r.category_id === "" ? "(no category)" : r.category_id) }}
      />
    </section>
  );
}

/** The data quality report: customers who look like an older one. */
function Duplicates() {
  const session = useSession();
  const q = useQuery({
    queryKey: ["analytics", "duplicates"],
    queryFn: ({ signal }) => get<{ duplicates: Duplicate[] }>("/v1/analytics/duplicates", session.token, signal),
  });
  const rows = q.data?.duplicates ?? [];
  return (
    <section>
      <h2>Suspected duplicate customers</h2>
      <p className="meta">Current customers sharing an email or a normalised name with an older one (keep_id). Personal data: the first 1,000.</p>
      <div className="controls">
        <CsvButton id="dups-csv" path="/v1/analytics/duplicates" file="duplicates.csv" />
      </div>
      {q.error && <p className="error">{q.error.message}</p>}
      <Table id="dups-table" columns={duplicateColumns} rows={rows} rowKey={(r) => r.matched_on + r.customer_id} />
      {rows.length === 0 && !q.isPending && !q.error && <p>No suspected duplicates.</p>}
    </section>
  );
}

/**
 * Downloads the API's CSV of path. A plain link cannot send the bearer
 * token, so the file is fetched and handed to the browser as a blob.
 */
export function CsvButton({ id, path, file }: { id: string; path: string; file: string }) {
  const session = useSession();
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const download = async () => {
    setBusy(true);
    setError(null);
    try {
      const url = URL.createObjectURL(await getBlob(csvPath(path), session.token));
      const a = document.createElement("a");
      a.href = url;
      a.download = file;
      document.body.append(a);
      a.click();
      a.remove();
      // The download holds its own reference once started.
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <button type="button" id={id} onClick={download} disabled={busy}>
        Download CSV
      </button>
      {error && <span className="error">{error}</span>}
    </>
  );
}

function Table<T extends object>({
  id,
  columns,
  rows,
  rowKey,
  render = {},
}: {
  id: string;
  columns: (keyof T & string)[];
  rows: T[];
  rowKey: (r: T) => string;
  render?: Partial<Record<keyof T & string, (r: T) => ReactNode>>;
}) {
  return (
    <table id={id}>
      <thead>
        <tr>
          {columns.map((c) => (
            <th key={c}>{c}</th>
          ))}
        </tr>
      </thead>
      <tbody>
        {rows.map((r) => (
          <tr key={rowKey(r)}>
            {columns.map((c) => {
              const v = r[c];
              const f = render[c];
              return (
                <td key={c} className={typeof v === "number" ? "num" : undefined}>
                  {f ? f(r) : v == null ? "" : String(v)}
                </td>
              );
            })}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function SalesChart({ rows }: { rows: SalesDay[] }) {
  const el = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!el.current || rows.length === 0) return;
    const data: uPlot.AlignedData = [
      rows.map((r) => Date.parse(r.day) / 1000),
      rows.map((r) => r.revenue / 100),
      rows.map((r) => r.revenue_7d_avg / 100),
      rows.map((r) => r.revenue_running_total / 100),
    ];
    const plot = new uPlot(
      {
        width: Math.min(960, el.current.clientWidth || 960),
        height: 320,
        series: [
          {},
          { label: "revenue", stroke: "#2563eb", width: 2 },
          { label: "7-day average", stroke: "#f59e0b", width: 2 },
          { label: "running total", stroke: "#10b981", scale: "total" },
        ],
        axes: [{}, { label: "per day" }, { side: 1, scale: "total", label: "running total", grid: { show: false } }],
      },
      data,
      el.current,
    );
    return () => plot.destroy();
  }, [rows]);
  return <div ref={el} id="sales-chart" />;
}
