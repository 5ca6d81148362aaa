package main

import (
	"encoding/xml"
	"io"
	"strings"
	"testing"
)

func sampleRecord(date string, orders float64) Record {
	r := Record{Date: date, Commit: "abcdef0123", Cores: 2, LoadAvg: "1.0", Valid: true,
		MaxDefault:          Phase{Orders: 5000, Completed: 5000, CompletedPS: orders, Latency: Latency{P50: 20, P99: 90}, CPU: CPU{Serve: 0.5, NATS: 0.2, Postgres: 0.3}},
		MaxHappy:            Phase{Orders: 5000, Completed: 5000, CompletedPS: orders * 1.2},
		At100:               Phase{Completed: 2000, CompletedPS: 100, Latency: Latency{P50: 12, P99: 25}},
		At1000:              Phase{Completed: 20000, CompletedPS: 1000, Latency: Latency{P50: 30, P99: 140}},
		WatermillMsgsPerSec: 150,
		DBOS:                []DBOS{{Concurrency: 16, CompletedPerSec: 400}, {Concurrency: 64, CompletedPerSec: 450}},
		Ceiling:             Ceiling{OrdersPerSec: 3000, TopTables: []TableRate{{"core.outbox", 11.6}, {"core.inbox", 7.6}}},
	}
	return r
}

// wellFormed fails the test unless s parses as XML to the end.
func wellFormed(t *testing.T, s string) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(s))
	for {
		if _, err := d.Token(); err == io.EOF {
			return
		} else if err != nil {
			t.Fatalf("not well-formed SVG: %v", err)
		}
	}
}

func TestHistoryChartIsStaticSVGWithEverySeries(t *testing.T) {
	runs := []Record{sampleRecord("2026-12-01 10:00 UTC", 1800), sampleRecord("2026-12-02 10:00 UTC", 2400), sampleRecord("2026-12-03 10:00 UTC", 2100)}
	svg := historyChart(runs)
	wellFormed(t, svg)
	if strings.Contains(svg, "<script") {
		t.Error("the chart must not carry script")
	}
	for _, want := range []string{"Tradewind, default mix", "DBOS Transact saga (best)", "Watermill slice", "machine ceiling", "Tradewind at 1,000/s", "abcdef0", "3 kept runs, 2026-12-01 to 2026-12-03"} {
		if !strings.Contains(svg, want) {
			t.Errorf("chart lacks %q", want)
		}
	}
	if got := strings.Count(svg, "<polyline"); got != 8 {
		t.Errorf("want 8 series drawn, got %d", got)
	}
}

func TestTableComparesAgainstTheBestDBOSRunAndTheTargets(t *testing.T) {
	r := sampleRecord("2026-12-02 10:00 UTC", 2400)
	r.AtQuarter = &Phase{Rate: 20, Completed: 400, CompletedPS: 20, Latency: Latency{P50: 8, P99: 15}}
	table := renderTable(&r)
	for _, want := range []string{
		"| Tradewind max, default mix (5000 orders) | 2400 |",
		"5.33× DBOS", // 2400 / 450, the better of the two DBOS runs
		"16.00× Watermill slice",
		"0.50 + 0.20 + 0.30 = **1.00**",
		"≥ 2,000/s default mix: met",
		"p99 ≤ 150 ms at 1,000/s: met",
		"p50 ≤ 30 ms at 100/s: met",
		"≥ 4× DBOS: met",
		"rows written per order, most first: core.outbox 11.6, core.inbox 7.6",
		"| Tradewind at rest, 20/s offered (a quarter of the maximum) | 20 | 8.0 | 15.0 |",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
}

func TestCeilingAddsTheTimesOfNATSAndPostgreSQL(t *testing.T) {
	c := Ceiling{PublishPerSec: 10000, ConsumePerSec: 20000, CopyRowsPerSec: 50000, PublishesPerOrder: 5, DeliveriesPerOrd: 10, RowsPerOrder: 25}
	c.estimate()
	// NATS: 5/10000 + 10/20000 = 1 ms; PostgreSQL: 25/50000 = 0.5 ms.
	if c.NATSOrdersPerSec != 1000 || c.PGOrdersPerSec != 2000 || int(c.OrdersPerSec) != 666 {
		t.Errorf("got NATS %.1f, PostgreSQL %.1f, both %.1f; want 1000, 2000, 666.7", c.NATSOrdersPerSec, c.PGOrdersPerSec, c.OrdersPerSec)
	}
}

// A flat series that swings between samples (garbage collections, vacuums)
// is flat, whatever its last sample; a series that keeps rising is not.
func TestSoakGrowthComparesMediansAfterWarmUp(t *testing.T) {
	series := func(f func(i int) float64) []sample {
		out := make([]sample, 50)
		for i := range out {
			out[i] = sample{rssMB: f(i)}
		}
		return out
	}
	rss := func(s sample) float64 { return s.rssMB }
	swinging := series(func(i int) float64 {
		if i < 10 {
			return float64(100 + 50*i) // warm-up
		}
		if i == 49 {
			return 660 // a last sample at the top of a swing
		}
		return 600 + float64(i%3-1)*30
	})
	if g := growth(swinging, rss); g < -5 || g > 5 {
		t.Errorf("swinging flat series: growth %+.1f %%, want within ±5 %%", g)
	}
	rising := series(func(i int) float64 { return 500 + 5*float64(i) })
	if g := growth(rising, rss); g < 20 {
		t.Errorf("rising series: growth %+.1f %%, want well above 5 %%", g)
	}
}
