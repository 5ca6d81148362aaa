package provider_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tradewind/tradewind/internal/provider"
	"github.com/tradewind/tradewind/internal/testenv"
)

func newSim(t *testing.T, dir string) (*provider.Server, *httptest.Server) {
	t.Helper()
	sim, err := provider.NewServer(provider.Options{DataDir: dir, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(func() { srv.Close(); _ = sim.Close() })
	return sim, srv
}

func newClient(t *testing.T, url string, cfg provider.ClientConfig) *provider.Client {
	t.Helper()
	cfg.BaseURL = url
	c, err := provider.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func post(t *testing.T, url, key, body string) (int, string) {
	t.Helper()
	r := postReply(t, url, key, body)
	return r.status, r.body
}

// postReply POSTs body with the idempotency key and returns the answer.
func postReply(t *testing.T, url, key, body string) reply {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewBufferString(body))
	req.Header.Set(provider.HeaderIdempotencyKey, key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return reply{resp.StatusCode, b.String(), resp.Header.Get(provider.HeaderReplayed) == "true"}
}

func TestIdempotencyKeySemantics(t *testing.T) {
	_, srv := newSim(t, "")
	body := `{"order_id":"o-1","customer_id":"c-1","amount":1000,"currency":"EUR"}`
	tests := []struct {
		name       string
		key, body  string
		wantStatus int
		sameAsKey1 bool
	}{
		{"first request is applied", "k1", body, http.StatusCreated, true},
		{"same key and body replays the first answer", "k1", body, http.StatusCreated, true},
		{"same key with another body is refused", "k1", `{"order_id":"o-1","customer_id":"c-1","amount":999,"currency":"EUR"}`, http.StatusUnprocessableEntity, false},
		{"missing key is refused", "", body, http.StatusBadRequest, false},
	}
	var first string
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, got := post(t, srv.URL+"/v1/authorizations", tc.key, tc.body)
			if status != tc.wantStatus {
				t.Fatalf("status %d, want %d (%s)", status, tc.wantStatus, got)
			}
			if first == "" {
				first = got
			} else if tc.sameAsKey1 && got != first {
				t.Errorf("replay differs:\n%s\n%s", got, first)
			}
		})
	}
}

func TestAuthorizationLifecycle(t *testing.T) {
	sim, srv := newSim(t, "")
	c := newClient(t, srv.URL, provider.ClientConfig{})
	ctx := context.Background()
	tests := []struct {
		name       string
		customer   string
		amount     int64
		wantStatus string
		wantCode   string
	}{
		{"ordinary amount is authorized", "c-1", 1000, provider.StatusAuthorized, ""},
		{"amount ending in 51 is declined", "c-1", 1051, provider.StatusDeclined, "insufficient_funds"},
		{"customer marked decline is declined", "c-decline-1", 1000, provider.StatusDeclined, "card_declined"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := c.Authorize(ctx, tc.name, provider.AuthorizeRequest{OrderID: tc.name, CustomerID: tc.customer, Amount: tc.amount, Currency: "EUR"})
			if err != nil {
				t.Fatal(err)
			}
			if a.Status != tc.wantStatus || a.DeclineCode != tc.wantCode {
				t.Fatalf("case %d: got %s/%s, want %s/%s", i, a.Status, a.DeclineCode, tc.wantStatus, tc.wantCode)
			}
		})
	}
	a, _ := c.Authorize(ctx, "o-cap", provider.AuthorizeRequest{OrderID: "o-cap", CustomerID: "c", Amount: 500, Currency: "EUR"})
	if _, err := c.Refund(ctx, "refund-early:o-cap", a.ID, 500); !errors.Is(err, provider.ErrRefused) {
		t.Errorf("refund before capture: err = %v, want ErrRefused", err)
	}
	if _, err := c.Capture(ctx, "capture:o-cap", a.ID, 500); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Void(ctx, "void:o-cap", a.ID); !errors.Is(err, provider.ErrRefused) {
		t.Errorf("void after capture: err = %v, want ErrRefused", err)
	}
	op, err := c.Refund(ctx, "refund:o-cap", a.ID, 500)
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.Refund(ctx, "refund:o-cap", a.ID, 500)
	if err != nil || again.ID != op.ID {
		t.Errorf("retried refund: %v, id %s, want the first refund %s", err, again.ID, op.ID)
	}
	l := sim.Ledger()
	if l.Totals.RefundedAmount != 500 || l.Totals.CapturedAmount != 500 {
		t.Errorf("ledger totals %+v, want one capture and one refund of 500", l.Totals)
	}
}

func TestLedgerSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	sim, srv := newSim(t, dir)
	c := newClient(t, srv.URL, provider.ClientConfig{})
	a, err := c.Authorize(context.Background(), "o-1", provider.AuthorizeRequest{OrderID: "o-1", CustomerID: "c", Amount: 700, Currency: "EUR"})
	if err != nil {
		t.Fatal(err)
	}
	before := sim.Ledger()
	srv.Close()
	_ = sim.Close()

	sim2, srv2 := newSim(t, dir)
	if got := sim2.Ledger(); len(got.Authorizations) != 1 || got.Authorizations[0] != before.Authorizations[0] {
		t.Fatalf("ledger after restart = %+v, want %+v", got.Authorizations, before.Authorizations)
	}
	// The idempotency record survived too: the retry gets the same authorization.
	c2 := newClient(t, srv2.URL, provider.ClientConfig{})
	b, err := c2.Authorize(context.Background(), "o-1", provider.AuthorizeRequest{OrderID: "o-1", CustomerID: "c", Amount: 700, Currency: "EUR"})
	if err != nil || b.ID != a.ID {
		t.Fatalf("retry after restart: %v, id %s, want %s", err, b.ID, a.ID)
	}
}

func TestBreakerOpensDuringOutageAndClosesAfter(t *testing.T) {
	sim, srv := newSim(t, "")
	c := newClient(t, srv.URL, provider.ClientConfig{Attempts: 2, Backoff: time.Millisecond, FailuresToOpen: 4, Cooldown: 50 * time.Millisecond})
	ctx := context.Background()
	req := provider.AuthorizeRequest{OrderID: "o-1", CustomerID: "c", Amount: 100, Currency: "EUR"}
	if err := sim.SetFaults(provider.Faults{Outage: provider.OutageError}); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		var u *provider.UnavailableError
		if _, err := c.Authorize(ctx, "o-1", req); !errors.As(err, &u) {
			t.Fatalf("call %d during outage: err = %v, want UnavailableError", i, err)
		}
	}
	if c.BreakerState() != "open" {
		t.Fatalf("breaker %s after 4 failures, want open", c.BreakerState())
	}
	_, err := c.Authorize(ctx, "o-1", req)
	var u *provider.UnavailableError
	if !errors.As(err, &u) || u.RetryAfter != 50*time.Millisecond {
		t.Fatalf("call while open: err = %v, want UnavailableError with RetryAfter = cool-down", err)
	}
	if len(sim.Ledger().Authorizations) != 0 {
		t.Fatal("the outage recorded an authorization")
	}
	_ = sim.SetFaults(provider.Faults{Outage: provider.OutageOff})
	time.Sleep(60 * time.Millisecond) // past the cool-down: the next call is the trial
	if _, err := c.Authorize(ctx, "o-1", req); err != nil {
		t.Fatalf("after the outage: %v", err)
	}
	if c.BreakerState() != "closed" {
		t.Fatalf("breaker %s after a successful trial, want closed", c.BreakerState())
	}
}

func TestTimeoutOutageIsUnavailable(t *testing.T) {
	sim, srv := newSim(t, "")
	_ = sim.SetFaults(provider.Faults{Outage: provider.OutageTimeout})
	c := newClient(t, srv.URL, provider.ClientConfig{Timeout: 50 * time.Millisecond, Attempts: 1})
	_, err := c.Authorize(context.Background(), "o-1", provider.AuthorizeRequest{OrderID: "o-1", CustomerID: "c", Amount: 100, Currency: "EUR"})
	if !errors.Is(err, provider.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
}

func TestFaultsAdminChangesOnlyNamedFields(t *testing.T) {
	sim, srv := newSim(t, "")
	_ = sim.SetFaults(provider.Faults{Outage: provider.OutageOff, Latency: provider.Duration(time.Millisecond), DeclineRate: 0.5})
	req, _ := http.NewRequest(http.MethodPut, srv.URL+"/admin/faults", bytes.NewBufferString(`{"outage":"error"}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT /admin/faults: %d", resp.StatusCode)
	}
	f := sim.Faults()
	if f.Outage != provider.OutageError || f.DeclineRate != 0.5 || f.Latency != provider.Duration(time.Millisecond) {
		t.Errorf("faults = %+v, want outage error with latency and decline rate kept", f)
	}
}

// TestAuthorizationsFindWhatTheProviderHoldsForAnOrder: the lookup a
// caller uses after losing an answer lists every authorization made for
// the order with its current status, survives a restart (rebuilt from the
// journal) and, like every provider call, is unavailable during an outage.
func TestAuthorizationsFindWhatTheProviderHoldsForAnOrder(t *testing.T) {
	dir := t.TempDir()
	_, srv := newSim(t, dir)
	c := newClient(t, srv.URL, provider.ClientConfig{Attempts: 1})
	ctx := context.Background()
	authorize := func(order string, amount int64) provider.Authorization {
		t.Helper()
		a, err := c.Authorize(ctx, order, provider.AuthorizeRequest{OrderID: order, CustomerID: "c", Amount: amount, Currency: "EUR"})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	held := authorize("o-held", 100)
	voided := authorize("o-voided", 100)
	if _, err := c.Void(ctx, "void:o-voided", voided.ID); err != nil {
		t.Fatal(err)
	}
	authorize("o-declined", 151)

	sim2, srv2 := newSim(t, dir) // a restarted provider answers the same
	c2 := newClient(t, srv2.URL, provider.ClientConfig{Attempts: 1, FailuresToOpen: 100})
	tests := []struct {
		order      string
		wantStatus []string
	}{
		{"o-never-seen", nil},
		{"o-held", []string{provider.StatusAuthorized}},
		{"o-voided", []string{provider.StatusVoided}},
		{"o-declined", []string{provider.StatusDeclined}},
	}
	for _, tc := range tests {
		t.Run(tc.order, func(t *testing.T) {
			for name, cl := range map[string]*provider.Client{"running": c, "restarted": c2} {
				got, err := cl.Authorizations(ctx, tc.order)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				var statuses []string
				for _, a := range got {
					if a.OrderID != tc.order {
						t.Errorf("%s: authorization %s of order %s listed for %s", name, a.ID, a.OrderID, tc.order)
					}
					statuses = append(statuses, a.Status)
				}
				if !slices.Equal(statuses, tc.wantStatus) {
					t.Errorf("%s: statuses %v, want %v", name, statuses, tc.wantStatus)
				}
			}
		})
	}
	if got, _ := c2.Authorizations(ctx, "o-held"); len(got) != 1 || got[0].ID != held.ID {
		t.Errorf("restarted provider lists %+v, want %s", got, held.ID)
	}
	if status, _ := get(t, srv2.URL+"/v1/authorizations"); status != http.StatusBadRequest {
		t.Errorf("lookup without order_id: %d, want 400", status)
	}
	if err := sim2.SetFaults(provider.Faults{Outage: provider.OutageError}); err != nil {
		t.Fatal(err)
	}
	if _, err := c2.Authorizations(ctx, "o-held"); !errors.Is(err, provider.ErrUnavailable) {
		t.Errorf("lookup during an outage: err = %v, want ErrUnavailable", err)
	}
}

// TestRequestWhoseClientGaveUpBeforeItRanIsNotExecuted: a payment request
// still waiting out the provider's latency when its client times out is
// never executed, so a lookup made after the client gave up sees all that
// will ever exist for it.
func TestRequestWhoseClientGaveUpBeforeItRanIsNotExecuted(t *testing.T) {
	sim, srv := newSim(t, "")
	if err := sim.SetFaults(provider.Faults{Outage: provider.OutageOff, Latency: provider.Duration(300 * time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, srv.URL, provider.ClientConfig{Timeout: 50 * time.Millisecond, Attempts: 1})
	_, err := c.Authorize(context.Background(), "o-1", provider.AuthorizeRequest{OrderID: "o-1", CustomerID: "c", Amount: 100, Currency: "EUR"})
	if !errors.Is(err, provider.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable (timed out)", err)
	}
	time.Sleep(400 * time.Millisecond) // past the latency the request was waiting out
	if got := sim.Authorizations("o-1"); len(got) != 0 {
		t.Errorf("the provider executed a request whose client had gone: %+v", got)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

// TestHoldIsWhatACallWouldMeet: Hold is 0 while a call would go through
// (closed, half-open with the trial not taken) and the cool-down while
// the breaker would refuse it (open, half-open with the trial in flight).
func TestHoldIsWhatACallWouldMeet(t *testing.T) {
	sim, srv := newSim(t, "")
	const cooldown = 100 * time.Millisecond
	c := newClient(t, srv.URL, provider.ClientConfig{Timeout: 5 * time.Second, Attempts: 2, Backoff: time.Millisecond, FailuresToOpen: 4, Cooldown: cooldown})
	ctx := context.Background()
	req := provider.AuthorizeRequest{OrderID: "o-1", CustomerID: "c", Amount: 100, Currency: "EUR"}
	if h := c.Hold(); h != 0 {
		t.Fatalf("closed: Hold = %s, want 0", h)
	}
	_ = sim.SetFaults(provider.Faults{Outage: provider.OutageError})
	for range 2 {
		_, _ = c.Authorize(ctx, "o-1", req)
	}
	if h := c.Hold(); c.BreakerState() != "open" || h != cooldown {
		t.Fatalf("breaker %s, Hold = %s; want open, %s", c.BreakerState(), h, cooldown)
	}
	testenv.Eventually(t, 5*time.Second, "half-open with the trial free", func() bool { return c.Hold() == 0 })
	if s := c.BreakerState(); s != "half-open" {
		t.Fatalf("breaker %s after the cool-down, want half-open", s)
	}

	// The trial hangs (the provider lost the request): Hold says wait.
	_ = sim.SetFaults(provider.Faults{Outage: provider.OutageTimeout})
	tctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = c.Authorize(tctx, "o-1", req)
	}()
	testenv.Eventually(t, 5*time.Second, "the trial in flight", func() bool {
		return c.Hold() == cooldown && c.BreakerState() == "half-open"
	})
	cancel()
	<-done

	_ = sim.SetFaults(provider.Faults{Outage: provider.OutageOff})
	testenv.Eventually(t, 5*time.Second, "a call let through again", func() bool { return c.Hold() == 0 })
	if _, err := c.Authorize(ctx, "o-1", req); err != nil {
		t.Fatalf("after the outage: %v", err)
	}
	if h := c.Hold(); c.BreakerState() != "closed" || h != 0 {
		t.Fatalf("breaker %s, Hold = %s after a successful call; want closed, 0", c.BreakerState(), h)
	}
}

// Calls in flight together each get a connection, and every one of those
// goes back to the client's idle pool when its call ends (none is closed
// for want of room), so the next calls reuse them instead of dialing.
func TestClientKeepsTheConnectionsOfConcurrentCallsForReuse(t *testing.T) {
	const inFlight = 16
	sim, err := provider.NewServer(provider.Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	arrived := make(chan struct{}, inFlight)
	release := make(chan struct{})
	h := sim.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release // every call holds its connection until all are in flight
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL, provider.ClientConfig{})

	var mu sync.Mutex
	var kept, refused int
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{PutIdleConn: func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			refused++
		} else {
			kept++
		}
	}})
	errs := make(chan error, inFlight)
	for i := range inFlight {
		go func() {
			_, err := c.Authorize(ctx, fmt.Sprintf("k%d", i), provider.AuthorizeRequest{OrderID: fmt.Sprintf("o%d", i), CustomerID: "c", Amount: 1000, Currency: "EUR"})
			errs <- err
		}()
	}
	for range inFlight {
		<-arrived
	}
	close(release)
	for range inFlight {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 5*time.Second, "every connection handed back to the client's pool", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return kept+refused == inFlight
	})
	if refused > 0 {
		t.Errorf("%d of %d connections closed after their call instead of kept for reuse", refused, inFlight)
	}
}
