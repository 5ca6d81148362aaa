// Analytics: sales per day (GET /v1/analytics/sales) as a uPlot chart of
// revenue, its 7-day average and running total; the numbers one click away
// as a table, and as CSV. uPlot is loaded by this route only.
import { useEffect, useMemo, useRef, useState } from "react";
import { useQuery } from "@tanstack/react-query";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { get, type SalesDay } from "../api";
import { useSession } from "../auth";

const columns: (keyof SalesDay)[] = ["day", "currency", "orders", "units", "revenue", "revenue_running_total", "revenue_7d_avg", "orders_7d_avg"];

/** RFC 4180 CSV of the rows. */
export function toCSV(rows: SalesDay[]): string {
  const cell = (v: unknown) => {
    const s = String(v);
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return [columns.join(","), ...rows.map((r) => columns.map((c) => cell(r[c])).join(","))].join("\r\n") + "\r\n";
}

export default function Analytics() {
  const session = useSession();
  const [from, setFrom] = useState(() => new Date(Date.now() - 30 * 864e5).toISOString().slice(0, 10));
  const [table, setTable] = useState(false);
  const sales = useQuery({
    queryKey: ["sales", from],
    queryFn: ({ signal }) => get<{ days: SalesDay[] }>(`/v1/analytics/sales?from=${from}`, session.token, signal),
  });
  const days = sales.data?.days ?? [];
  const currencies = useMemo(() => [...new Set(days.map((d) => d.currency))], [days]);
  const [currency, setCurrency] = useState("EUR");
  const rows = useMemo(() => days.filter((d) => d.currency === currency), [days, currency]);
  const csvHref = useMemo(() => URL.createObjectURL(new Blob([toCSV(days)], { type: "text/csv" })), [days]);
  useEffect(() => () => URL.revokeObjectURL(csvHref), [csvHref]);
  return (
    <section>
      <h1>Sales</h1>
      <div className="controls">
        <label>
          From <input type="date" value={from} onChange={(e) => setFrom(e.target.value)} />
        </label>
        <label>
          Currency{" "}
          <select value={currency} onChange={(e) => setCurrency(e.target.value)}>
            {(currencies.length ? currencies : ["EUR"]).map((c) => (
              <option key={c}>{c}</option>
            ))}
          </select>
        </label>
        <button type="button" onClick={() => setTable(!table)} id="toggle-table">
          {table ? "Chart" : "Table"}
        </button>
        <a href={csvHref} download={`sales-from-${from}.csv`} id="csv">
          Download CSV
        </a>
      </div>
      {sales.error && <p className="error">{sales.error.message}</p>}
      {table ? <SalesTable rows={rows} /> : <SalesChart rows={rows} />}
      {rows.length === 0 && !sales.isPending && <p>No sales in this range.</p>}
    </section>
  );
}

function SalesTable({ rows }: { rows: SalesDay[] }) {
  return (
    <table id="sales-table">
      <thead>
        <tr>
          {columns.map((c) => (
            <th key={c}>{c}</th>
          ))}
        </tr>
      </thead>
      <tbody>
        {rows.map((r) => (
          <tr key={r.day + r.currency}>
            {columns.map((c) => (
              <td key={c} className={typeof r[c] === "number" ? "num" : undefined}>
                {String(r[c])}
              </td>
            ))}
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
