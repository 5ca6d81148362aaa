package provider_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"

	"github.com/tradewind/tradewind/internal/provider"
)

// twin is one simulator under test: its server, URL and the authorization
// ids it gave each order.
type twin struct {
	sim  *provider.Server
	srv  *httptest.Server
	auth map[string]string
}

func newTwin(t *testing.T, opts provider.Options) *twin {
	t.Helper()
	opts.Seed = 1
	sim, err := provider.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(func() { srv.Close(); _ = sim.Close() })
	return &twin{sim: sim, srv: srv, auth: map[string]string{}}
}

// reply is an answer as the client saw it.
type reply struct {
	status   int
	body     string
	replayed bool
}

func (tw *twin) post(t *testing.T, path, key, body string) reply {
	t.Helper()
	return postReply(t, tw.srv.URL+path, key, body)
}

func (tw *twin) authorize(t *testing.T, order string, amount int64) reply {
	t.Helper()
	r := tw.post(t, "/v1/authorizations", "auth:"+order, authBody(order, amount))
	var a provider.Authorization
	if err := json.Unmarshal([]byte(r.body), &a); err != nil || a.ID == "" {
		t.Fatalf("authorize %s: %d %s", order, r.status, r.body)
	}
	tw.auth[order] = a.ID
	return r
}

func (tw *twin) list(t *testing.T, order string) []provider.Authorization {
	t.Helper()
	status, body := get(t, tw.srv.URL+"/v1/authorizations?order_id="+order)
	var l provider.AuthorizationList
	if err := json.Unmarshal([]byte(body), &l); status != http.StatusOK || err != nil {
		t.Fatalf("list %s: %d %s", order, status, body)
	}
	return l.Authorizations
}

func authBody(order string, amount int64) string {
	return fmt.Sprintf(`{"order_id":%q,"customer_id":"c","amount":%d,"currency":"EUR"}`, order, amount)
}

// facts is what two simulators given the same requests must agree on in
// an authorization (ids and times are their own).
func facts(as []provider.Authorization) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = fmt.Sprintf("%s %d %s %s %d %d", a.OrderID, a.Amount, a.Status, a.DeclineCode, a.Captured, a.Refunded)
	}
	return out
}

func sameLedger(t *testing.T, got, want provider.Ledger) {
	t.Helper()
	if !slices.Equal(facts(got.Authorizations), facts(want.Authorizations)) {
		t.Errorf("ledger:\n%v\nwant (unbounded):\n%v", facts(got.Authorizations), facts(want.Authorizations))
	}
	if fmt.Sprint(got.Totals) != fmt.Sprint(want.Totals) {
		t.Errorf("totals %+v, want (unbounded) %+v", got.Totals, want.Totals)
	}
}

func checkBound(t *testing.T, sim *provider.Server, bound int) {
	t.Helper()
	auths, keys, orders, entries := sim.Resident()
	if entries > bound || auths > bound || orders > bound || keys > 3*bound {
		t.Fatalf("in memory: %d entries, %d authorizations, %d orders, %d keys; want at most %d (keys %d)",
			entries, auths, orders, keys, bound, 3*bound)
	}
}

// TestBoundedWorkingSetAnswersAsIfNothingWasEvicted: with a bound of 3, a
// simulator keeps at most 3 entries in memory, and what it evicted —
// authorizations, idempotency records (with or without an authorization),
// orders — answers exactly like an unbounded simulator given the same
// requests, before and after a restart.
func TestBoundedWorkingSetAnswersAsIfNothingWasEvicted(t *testing.T) {
	const bound = 3
	dir := t.TempDir()
	b := newTwin(t, provider.Options{DataDir: dir, MaxInMemory: bound})
	u := newTwin(t, provider.Options{}) // memory only: never evicts
	both := []*twin{b, u}

	first := map[string]reply{}
	amounts := map[string]int64{}
	for i := range 20 {
		order := fmt.Sprintf("o-%d", i)
		amount := int64(1000 + i)
		if i == 5 {
			amount = 1051 // declined
		}
		amounts[order] = amount
		for _, tw := range both {
			r := tw.authorize(t, order, amount)
			if tw == b {
				first[order] = r
			}
		}
	}
	// An answer that changed no authorization is recorded too (404).
	missing := map[*twin]reply{}
	for _, tw := range both {
		missing[tw] = tw.post(t, "/v1/authorizations/auth_missing/capture", "cap:missing", `{"amount":1}`)
		if missing[tw].status != http.StatusNotFound {
			t.Fatalf("capture of a missing authorization: %d", missing[tw].status)
		}
	}
	missingBody := missing[b].body
	for i := 20; i < 30; i++ {
		for _, tw := range both {
			tw.authorize(t, fmt.Sprintf("o-%d", i), int64(2000+i))
		}
	}
	checkBound(t, b.sim, bound)
	if b.sim.ResidentAuthorization(b.auth["o-0"]) || b.sim.ResidentKey("auth:o-1") || b.sim.ResidentKey("cap:missing") {
		t.Fatal("old entries still in memory: the test would not exercise eviction")
	}

	exercise := func(t *testing.T, phase string, capture, replay, conflict, list string) {
		t.Helper()
		for _, tw := range both {
			if r := tw.post(t, "/v1/authorizations/"+tw.auth[capture]+"/capture", phase+":cap:"+capture, `{"amount":500}`); r.status != http.StatusCreated {
				t.Errorf("%s: capture of evicted %s: %d %s", phase, capture, r.status, r.body)
			}
		}
		r := b.post(t, "/v1/authorizations", "auth:"+replay, authBody(replay, amounts[replay]))
		if want := first[replay]; !r.replayed || r.status != want.status || r.body != want.body {
			t.Errorf("%s: replay of evicted key auth:%s: %+v, want the first answer %+v replayed", phase, replay, r, want)
		}
		if r := b.post(t, "/v1/authorizations", "auth:"+conflict, authBody(conflict, 7)); r.status != http.StatusUnprocessableEntity {
			t.Errorf("%s: reuse of evicted key auth:%s with another body: %d, want 422", phase, conflict, r.status)
		}
		if r := b.post(t, "/v1/authorizations/auth_missing/capture", "cap:missing", `{"amount":1}`); !r.replayed || r.body != missingBody {
			t.Errorf("%s: replay of an evicted record without an authorization: %+v, want %q replayed", phase, r, missingBody)
		}
		if r := b.post(t, "/v1/authorizations/auth_never/capture", phase+":cap:never", `{"amount":1}`); r.status != http.StatusNotFound || r.replayed {
			t.Errorf("%s: capture of an authorization never made: %+v, want 404", phase, r)
		}
		if got, want := facts(b.list(t, list)), facts(u.list(t, list)); len(want) != 1 || !slices.Equal(got, want) {
			t.Errorf("%s: authorizations of evicted order %s: %v, want %v", phase, list, got, want)
		}
		if got := b.list(t, phase+"-never-seen"); len(got) != 0 {
			t.Errorf("%s: an order never seen lists %v", phase, got)
		}
		sameLedger(t, b.sim.Ledger(), u.sim.Ledger())
		status, body := get(t, b.srv.URL+"/v1/ledger")
		var l provider.Ledger
		if err := json.Unmarshal([]byte(body), &l); status != http.StatusOK || err != nil {
			t.Fatalf("%s: GET /v1/ledger: %d %s", phase, status, body)
		}
		sameLedger(t, l, u.sim.Ledger())
		checkBound(t, b.sim, bound)
	}
	exercise(t, "running", "o-0", "o-2", "o-3", "o-4")
	if len(b.sim.Ledger().Authorizations) != 30 {
		t.Fatalf("ledger has %d authorizations, want 30", len(b.sim.Ledger().Authorizations))
	}

	// A capture of an authorization after its key was re-admitted: the
	// authorization brought back with the key is its latest state.
	b.post(t, "/v1/authorizations", "auth:o-6", authBody("o-6", 1006))
	for _, tw := range both {
		if r := tw.post(t, "/v1/authorizations/"+tw.auth["o-6"]+"/capture", "cap:o-6", `{"amount":6}`); r.status != http.StatusCreated {
			t.Fatalf("capture of o-6: %+v", r)
		}
	}
	for i := 30; i < 40; i++ { // evict it all again
		for _, tw := range both {
			tw.authorize(t, fmt.Sprintf("o-%d", i), int64(3000+i))
		}
	}
	for _, tw := range both {
		if r := tw.post(t, "/v1/authorizations/"+tw.auth["o-6"]+"/refund", "ref:o-6", `{"amount":6}`); r.status != http.StatusCreated {
			t.Fatalf("refund of evicted, captured o-6: %+v", r)
		}
	}

	// The authorize key of refunded o-6, re-admitted, brings back the
	// authorization as it stands now, not as that answer left it: a
	// capture is refused.
	for i := 40; i < 45; i++ {
		for _, tw := range both {
			tw.authorize(t, fmt.Sprintf("o-%d", i), int64(4000+i))
		}
	}
	if r := b.post(t, "/v1/authorizations", "auth:o-6", authBody("o-6", 1006)); !r.replayed {
		t.Fatalf("replay of auth:o-6: %+v", r)
	}
	for _, tw := range both {
		if r := tw.post(t, "/v1/authorizations/"+tw.auth["o-6"]+"/capture", "cap2:o-6", `{"amount":6}`); r.status != http.StatusConflict {
			t.Errorf("capture of refunded o-6: %+v, want 409", r)
		}
	}

	// A second authorization for an order whose first was evicted: the
	// order lists both, oldest first.
	for _, tw := range both {
		if r := tw.post(t, "/v1/authorizations", "auth2:o-1", authBody("o-1", 1101)); r.status != http.StatusCreated {
			t.Fatalf("second authorization of o-1: %+v", r)
		}
	}
	twice := facts(u.list(t, "o-1"))
	if got := facts(b.list(t, "o-1")); len(twice) != 2 || !slices.Equal(got, twice) {
		t.Errorf("authorizations of o-1: %v, want %v", got, twice)
	}

	// Restart with the same bound: replay respects it, and everything
	// answers as before.
	b.srv.Close()
	if err := b.sim.Close(); err != nil {
		t.Fatal(err)
	}
	b2 := newTwin(t, provider.Options{DataDir: dir, MaxInMemory: bound})
	b2.auth = b.auth
	checkBound(t, b2.sim, bound)
	b = b2
	both[0] = b
	if r := b.post(t, "/v1/authorizations/"+b.auth["o-0"]+"/capture", "running:cap:o-0", `{"amount":500}`); !r.replayed || r.status != http.StatusCreated {
		t.Errorf("restarted: replay of the capture made before: %+v", r)
	}
	exercise(t, "restarted", "o-7", "o-8", "o-9", "o-10")
	if got := facts(b.list(t, "o-1")); !slices.Equal(got, twice) {
		t.Errorf("restarted: authorizations of o-1: %v, want %v", got, twice)
	}
}

// BenchmarkWorkingSet reports the live heap after b.N authorizations, with
// a bound of 1,000, with a journal but a bound never reached, and in
// memory-only mode:
//
//	go test -run '^$' -bench WorkingSet -benchtime 200000x ./internal/provider/
func BenchmarkWorkingSet(b *testing.B) {
	for _, c := range []struct {
		name string
		opts func(b *testing.B) provider.Options
	}{
		{"bound=1000", func(b *testing.B) provider.Options { return provider.Options{DataDir: b.TempDir(), MaxInMemory: 1000} }},
		{"journal-never-evicting", func(b *testing.B) provider.Options {
			return provider.Options{DataDir: b.TempDir(), MaxInMemory: 1 << 30}
		}},
		{"memory-only", func(*testing.B) provider.Options { return provider.Options{} }},
	} {
		b.Run(c.name, func(b *testing.B) {
			sim, err := provider.NewServer(c.opts(b))
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = sim.Close() }()
			h := sim.Handler()
			for i := 0; b.Loop(); i++ {
				order := fmt.Sprintf("o-%d", i)
				req := httptest.NewRequest(http.MethodPost, "/v1/authorizations", bytes.NewBufferString(authBody(order, 1000)))
				req.Header.Set(provider.HeaderIdempotencyKey, "auth:"+order)
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusCreated {
					b.Fatalf("authorize: %d %s", w.Code, w.Body)
				}
			}
			runtime.GC()
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			b.ReportMetric(float64(m.HeapAlloc)/(1<<20), "heap-MiB")
			runtime.KeepAlive(sim)
		})
	}
}

// TestTornJournalLineDoesNotSwallowTheNext: a line torn by a kill is
// ended at the next start, so the first line appended after it is not
// glued to it (and lost at the start after).
func TestTornJournalLineDoesNotSwallowTheNext(t *testing.T) {
	dir := t.TempDir()
	a := newTwin(t, provider.Options{DataDir: dir})
	a.authorize(t, "o-1", 100)
	a.srv.Close()
	_ = a.sim.Close()
	f, err := os.OpenFile(filepath.Join(dir, provider.JournalFile), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"key":"torn","rec":{"ha`); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()

	b := newTwin(t, provider.Options{DataDir: dir})
	first := b.authorize(t, "o-2", 200)
	b.srv.Close()
	_ = b.sim.Close()

	c := newTwin(t, provider.Options{DataDir: dir})
	if got := facts(c.sim.Ledger().Authorizations); !slices.Equal(got, []string{"o-1 100 authorized  0 0", "o-2 200 authorized  0 0"}) {
		t.Errorf("ledger after two restarts: %v", got)
	}
	if r := c.post(t, "/v1/authorizations", "auth:o-2", authBody("o-2", 200)); !r.replayed || r.body != first.body {
		t.Errorf("retry of the request answered after the torn line: %+v, want %q replayed", r, first.body)
	}
}

// TestBoundedWorkingSetUnderConcurrentRequests: clients authorizing and
// capturing at once, while the ledger is read, against a bound far below
// what they make: every capture lands, the ledger has them all, and
// memory stays within the bound (run with -race).
func TestBoundedWorkingSetUnderConcurrentRequests(t *testing.T) {
	const bound, clients, each = 5, 4, 40
	b := newTwin(t, provider.Options{DataDir: t.TempDir(), MaxInMemory: bound})
	c := newClient(t, b.srv.URL, provider.ClientConfig{Attempts: 1})
	ctx := t.Context()
	errs := make(chan error, clients+1)
	done := make(chan struct{})
	go func() { // the ledger read while requests run
		for {
			select {
			case <-done:
				errs <- nil
				return
			default:
				_ = b.sim.Ledger()
			}
		}
	}()
	var wg sync.WaitGroup
	for w := range clients {
		wg.Go(func() {
			var held []provider.Authorization
			for i := range each {
				order := fmt.Sprintf("w%d-o%d", w, i)
				a, err := c.Authorize(ctx, "auth:"+order, provider.AuthorizeRequest{OrderID: order, CustomerID: "c", Amount: 100, Currency: "EUR"})
				if err != nil {
					errs <- fmt.Errorf("authorize %s: %w", order, err)
					return
				}
				held = append(held, a)
			}
			for _, a := range held { // most were evicted meanwhile
				if _, err := c.Capture(ctx, "cap:"+a.OrderID, a.ID, 100); err != nil {
					errs <- fmt.Errorf("capture %s: %w", a.OrderID, err)
					return
				}
			}
			errs <- nil
		})
	}
	wg.Wait()
	close(done)
	for range clients + 1 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	l := b.sim.Ledger()
	if len(l.Authorizations) != clients*each || l.Totals.ByStatus[provider.StatusCaptured] != clients*each {
		t.Fatalf("ledger: %d authorizations, totals %+v; want %d, all captured", len(l.Authorizations), l.Totals, clients*each)
	}
	checkBound(t, b.sim, bound)
}
