package readapi_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/projector"
	"github.com/tradewind/tradewind/internal/readapi"
	"github.com/tradewind/tradewind/internal/testenv"
	"github.com/tradewind/tradewind/projections"
)

// analyticsData adds to system's dataset a category tree, sales in two
// currencies and three customers who are one person; it returns once every
// projection has applied them.
//
//	electronics (Electronics)      toys (Toys)
//	├── cables (Cables)
//	└── phones (Phones)
//
// Confirmed: order 10 (2 × PH-2 at 300, EUR), order 11 (PH-2 at 300 and
// CB-2 at 20, EUR), order 13 (PH-2 at 300, USD); order 12 (CB-2, EUR)
// stays pending. system's order 1 (100 EUR, no category) is confirmed.
func analyticsData(t *testing.T, publish func(ceType, subject string, data any) uint64) {
	t.Helper()
	publish(events.CategoryUpsertedV1, "electronics", events.Category{CategoryID: "electronics", Name: "Electronics"})
	publish(events.CategoryUpsertedV1, "phones", events.Category{CategoryID: "phones", ParentID: "electronics", Name: "Phones"})
	publish(events.CategoryUpsertedV1, "cables", events.Category{CategoryID: "cables", ParentID: "electronics", Name: "Cables"})
	publish(events.CategoryUpsertedV1, "toys", events.Category{CategoryID: "toys", Name: "Toys"})
	publish(events.ProductUpsertedV1, "PH-2", events.Product{SKU: "PH-2", Name: "Borealis phone", CategoryID: "phones", Price: 300, Currency: "EUR"})
	publish(events.ProductUpsertedV1, "CB-2", events.Product{SKU: "CB-2", Name: "Short cable", CategoryID: "cables", Price: 20, Currency: "EUR"})
	publish(events.CustomerUpsertedV1, "d-1", events.Customer{CustomerID: "d-1", Email: "grace@example.com", Name: "Grace Hopper"})
	publish(events.CustomerUpsertedV1, "d-2", events.Customer{CustomerID: "d-2", Email: "GRACE@example.com", Name: "grace  hopper."})
	publish(events.CustomerUpsertedV1, "d-3", events.Customer{CustomerID: "d-3", Email: "g3@example.com", Name: "@Grace Hopper"})
	order := func(n int, currency string, confirm bool, lines ...events.OrderLine) uint64 {
		var total int64
		for _, l := range lines {
			total += l.UnitPrice * int64(l.Quantity)
		}
		placed := "2026-03-02T10:00:00Z"
		seq := publish(events.OrderPlacedV1, orderID(n), events.OrderPlaced{OrderID: orderID(n), CustomerID: "d-1", Currency: currency, Total: total,
			Lines: lines, PlacedAt: placed, Deadline: "2026-03-02T11:00:00Z"})
		if confirm {
			seq = publish(events.OrderConfirmedV1, orderID(n), events.OrderConfirmed{OrderID: orderID(n), CustomerID: "d-1", Currency: currency, Total: total,
				AuthorizationID: fmt.Sprint("a-", n), ConfirmedAt: "2026-03-02T10:01:00Z", PlacedAt: placed})
		}
		return seq
	}
	order(10, "EUR", true, events.OrderLine{SKU: "PH-2", Quantity: 2, UnitPrice: 300})
	order(11, "EUR", true, events.OrderLine{SKU: "PH-2", Quantity: 1, UnitPrice: 300}, events.OrderLine{SKU: "CB-2", Quantity: 1, UnitPrice: 20})
	order(12, "EUR", false, events.OrderLine{SKU: "CB-2", Quantity: 1, UnitPrice: 20})
	last := order(13, "USD", true, events.OrderLine{SKU: "PH-2", Quantity: 1, UnitPrice: 300})
	pool := testenv.Pool(t)
	for _, p := range projections.All() {
		if _, err := projector.WaitFor(context.Background(), pool, p.Name(), last, 20*time.Second); err != nil {
			t.Fatal(err)
		}
	}
}

// rows GETs path's JSON and returns the array under key.
func rows(t *testing.T, base, path, key string) []map[string]any {
	t.Helper()
	a := get(t, base+path)
	if a.status != http.StatusOK {
		t.Fatalf("GET %s: %d %v", path, a.status, a.body)
	}
	raw, ok := a.body[key].([]any)
	if !ok {
		t.Fatalf("GET %s: no array %q in %v", path, key, a.body)
	}
	out := make([]map[string]any, len(raw))
	for i, r := range raw {
		out[i] = r.(map[string]any)
	}
	return out
}

// project renders each row's cols as strings, for comparing with a want.
func project(rs []map[string]any, cols ...string) []string {
	var out []string
	for _, r := range rs {
		var s []string
		for _, c := range cols {
			s = append(s, fmt.Sprint(r[c]))
		}
		out = append(out, strings.Join(s, " "))
	}
	return out
}

func TestAnalyticsRollupPivotAndDuplicates(t *testing.T) {
	base, _, publish := system(t, 5*time.Second)
	analyticsData(t, publish)

	cats := rows(t, base, "/v1/analytics/categories", "categories")
	want := []string{
		"electronics 0 Electronics EUR 920 4 0 <nil>",
		"cables 1 Electronics > Cables EUR 20 1 20 electronics",
		"phones 1 Electronics > Phones EUR 900 3 900 electronics",
		"toys 0 Toys EUR 0 0 0 <nil>",
		"electronics 0 Electronics USD 300 1 0 <nil>",
		"cables 1 Electronics > Cables USD 0 0 0 electronics",
		"phones 1 Electronics > Phones USD 300 1 300 electronics",
		"toys 0 Toys USD 0 0 0 <nil>",
	}
	if got := project(cats, "category_id", "depth", "path", "currency", "revenue", "units", "own_revenue", "parent_id"); !slices.Equal(got, want) {
		t.Errorf("roll-up:\n got %q\nwant %q", got, want)
	}

	pivot := rows(t, base, "/v1/analytics/pivot", "categories")
	want = []string{
		"phones Electronics > Phones EUR 900 2 3 450",
		" <nil> EUR 100 1 1 100", // system's order 1: a product without a category
		"cables Electronics > Cables EUR 20 1 1 20",
		"phones Electronics > Phones USD 300 1 1 300",
	}
	if got := project(pivot, "category_id", "path", "currency", "revenue_total", "orders_total", "units_total", "avg_order_revenue"); !slices.Equal(got, want) {
		t.Errorf("pivot:\n got %q\nwant %q", got, want)
	}
	for _, r := range pivot {
		for _, c := range []string{"revenue_7d", "revenue_30d"} {
			if _, ok := r[c].(float64); !ok {
				t.Errorf("pivot row %v: %s is not a number", r, c)
			}
		}
	}

	dups := rows(t, base, "/v1/analytics/duplicates", "duplicates")
	want = []string{
		"email grace@example.com d-2 2 d-1",
		"name grace hopper d-2 2 d-1",
		"name grace hopper d-3 3 d-1",
	}
	if got := project(dups, "matched_on", "match_key", "customer_id", "rn", "keep_id"); !slices.Equal(got, want) {
		t.Errorf("duplicates:\n got %q\nwant %q", got, want)
	}
	if got := rows(t, base, "/v1/analytics/duplicates?limit=1", "duplicates"); len(got) != 1 {
		t.Errorf("limit=1: %d rows", len(got))
	}
}

// TestAnalyticsCSVIsTheJSONAsATable: ?format=csv answers a header row of
// the JSON rows' field names, in the order the JSON has them, and the
// same rows; a text cell a spreadsheet would run as a formula is
// prefixed with an apostrophe.
func TestAnalyticsCSVIsTheJSONAsATable(t *testing.T) {
	base, _, publish := system(t, 5*time.Second)
	analyticsData(t, publish)
	for _, tc := range []struct{ path, key, file string }{
		{"/v1/analytics/sales?from=2026-03-01", "days", "sales.csv"},
		{"/v1/analytics/categories", "categories", "categories.csv"},
		{"/v1/analytics/pivot", "categories", "pivot.csv"},
		{"/v1/analytics/duplicates", "duplicates", "duplicates.csv"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			fields := jsonFieldOrder(t, base+tc.path, tc.key)
			js := rows(t, base, tc.path, tc.key)
			sep := "?"
			if strings.Contains(tc.path, "?") {
				sep = "&"
			}
			res, err := http.Get(base + tc.path + sep + "format=csv")
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/csv; charset=utf-8" {
				t.Fatalf("%d %q: %s", res.StatusCode, res.Header.Get("Content-Type"), body)
			}
			if cd := res.Header.Get("Content-Disposition"); cd != `attachment; filename="`+tc.file+`"` {
				t.Errorf("Content-Disposition %q", cd)
			}
			if res.Header.Get(readapi.HeaderPosition) == "" {
				t.Errorf("no %s", readapi.HeaderPosition)
			}
			if !strings.HasSuffix(string(body), "\r\n") {
				t.Errorf("records do not end in CRLF: %q", body)
			}
			recs, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
			if err != nil {
				t.Fatalf("not CSV: %v\n%s", err, body)
			}
			if len(recs) == 0 || !slices.Equal(recs[0], fields) {
				t.Fatalf("header %v, want the JSON fields %v", recs[0], fields)
			}
			if len(recs)-1 != len(js) || len(js) == 0 {
				t.Fatalf("%d CSV rows, %d JSON rows (want equal, and some)", len(recs)-1, len(js))
			}
			for i, r := range js {
				for j, f := range fields {
					want := ""
					switch v := r[f].(type) {
					case nil:
					case string:
						want = v
						if strings.ContainsAny(v[:min(1, len(v))], "=+-@") {
							want = "'" + v
						}
					case float64:
						want = strconv.FormatFloat(v, 'f', -1, 64)
					default:
						want = fmt.Sprint(v)
					}
					if recs[i+1][j] != want {
						t.Errorf("row %d %s: CSV %q, JSON %v", i, f, recs[i+1][j], r[f])
					}
				}
			}
		})
	}
	// The formula guard, seen whole.
	res, err := http.Get(base + "/v1/analytics/duplicates?format=csv")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if !strings.Contains(string(body), "\r\nname,grace hopper,d-3,g3@example.com,'@Grace Hopper,3,d-1\r\n") {
		t.Errorf("the @ name is not neutralised:\n%s", body)
	}
}

// jsonFieldOrder is the field names of the first row under key, in the
// order the server wrote them.
func jsonFieldOrder(t *testing.T, u, key string) []string {
	t.Helper()
	res, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body map[string][]json.RawMessage
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil || len(body[key]) == 0 {
		t.Fatalf("GET %s: %v %v", u, err, body)
	}
	dec := json.NewDecoder(strings.NewReader(string(body[key][0])))
	var names []string
	if _, err := dec.Token(); err != nil { // {
		t.Fatal(err)
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return names
}

// scopes is a caller that is no customer and holds the scopes in the
// request's X-Test-Scopes header (comma-separated).
type scopes []string

func (scopes) CustomerID() string           { return "" }
func (s scopes) ReadsAll(scope string) bool { return slices.Contains(s, scope) }

// customer is a browser user's caller: their own data only.
type customer string

func (c customer) CustomerID() string { return string(c) }
func (customer) ReadsAll(string) bool { return false }

// TestAnalyticsScopesAndBadInput: the analytics routes take analytics:read
// (a customer or a key without it gets a 403 problem); the duplicates
// report, personal data, takes customers:read as well. Bad input is a 400
// problem, never a 500.
func TestAnalyticsScopesAndBadInput(t *testing.T) {
	_, _, publish := system(t, 5*time.Second)
	analyticsData(t, publish)
	api, err := readapi.New(readapi.Config{Pool: testenv.Pool(t), CallerFrom: func(r *http.Request) (readapi.Caller, error) {
		if c := r.Header.Get("X-Test-Customer"); c != "" {
			return customer(c), nil
		}
		h, ok := r.Header["X-Test-Scopes"]
		if !ok {
			return nil, errors.New("no credentials")
		}
		return scopes(strings.Split(strings.Join(h, ","), ",")), nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	api.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	do := func(path string, header ...string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		_, _ = io.Copy(io.Discard, res.Body)
		return res.StatusCode, res.Header.Get("Content-Type")
	}
	const problem = "application/problem+json"
	for _, tc := range []struct {
		path, who, scopes string
		status            int
	}{
		{"/v1/analytics/categories", "", "", 401},
		{"/v1/analytics/categories", "", "orders:read,customers:read", 403},
		{"/v1/analytics/categories", "c-1", "", 403},
		{"/v1/analytics/categories?format=csv", "", "orders:read", 403},
		{"/v1/analytics/categories", "", "analytics:read", 200},
		{"/v1/analytics/pivot", "", "customers:read", 403},
		{"/v1/analytics/pivot", "c-1", "", 403},
		{"/v1/analytics/pivot", "", "analytics:read", 200},
		{"/v1/analytics/sales", "", "customers:read", 403},
		{"/v1/analytics/sales", "", "analytics:read", 200},
		{"/v1/analytics/duplicates", "", "analytics:read", 403},
		{"/v1/analytics/duplicates", "", "customers:read", 403},
		{"/v1/analytics/duplicates", "d-1", "", 403},
		{"/v1/analytics/duplicates?format=csv", "", "analytics:read", 403},
		{"/v1/analytics/duplicates", "", "analytics:read,customers:read", 200},
		{"/v1/analytics/duplicates?format=csv", "", "analytics:read,customers:read", 200},
		// Bad input.
		{"/v1/analytics/categories?format=xml", "", "analytics:read", 400},
		{"/v1/analytics/pivot?format=CSV%00", "", "analytics:read", 400},
		{"/v1/analytics/sales?format=csv&from=March", "", "analytics:read", 400},
		{"/v1/analytics/duplicates?limit=0", "", "analytics:read,customers:read", 400},
		{"/v1/analytics/duplicates?limit=10001", "", "analytics:read,customers:read", 400},
		{"/v1/analytics/duplicates?limit=1e3", "", "analytics:read,customers:read", 400},
		{"/v1/orders?format=csv", "", "orders:read", 400},
	} {
		var h []string
		if tc.who != "" {
			h = append(h, "X-Test-Customer", tc.who)
		}
		if tc.scopes != "" {
			h = append(h, "X-Test-Scopes", tc.scopes)
		}
		status, ct := do(tc.path, h...)
		if status != tc.status {
			t.Errorf("GET %s as %q%q: %d, want %d", tc.path, tc.who, tc.scopes, status, tc.status)
		}
		if tc.status >= 400 && ct != problem {
			t.Errorf("GET %s as %q%q: %d with %q, want %s", tc.path, tc.who, tc.scopes, status, ct, problem)
		}
	}
}
