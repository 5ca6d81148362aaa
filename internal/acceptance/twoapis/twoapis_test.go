// Package twoapis_test runs two `tradewind serve --roles=api` processes
// on different ports against one NATS server and one PostgreSQL database,
// and checks the two promises the gateway makes across instances: the
// rate limit of a caller is shared (together they admit at most burst +
// rate × time), and a session revoked on one instance is refused by the
// other.
package twoapis_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tradewind/tradewind/internal/auth"
	"github.com/tradewind/tradewind/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const (
	// jwtSecret is shared by both processes, as a deployment's instances
	// share TRADEWIND_JWT_SECRET.
	jwtSecret = "twoapis-test-secret-0123456789abcdef"
	// rate and burst make MaxLease 1 (rate < 8/s; docs/gateway.md), so
	// every request is decided against the shared bucket, with no leased
	// tokens to loosen the bound; the slow rate keeps that bound (about
	// the burst in a short window) far below the 2 × burst that two
	// independent buckets would admit, so a per-instance limit fails.
	rate  = 2
	burst = 10
	// storeFailed is what a limiter logs when it falls back to local
	// limits (fail open, documented in docs/gateway.md).
	storeFailed = "rate limit store failed"
)

// gateway is one `tradewind serve --roles=api` process.
type gateway struct {
	name string
	addr string
	ops  string // the operator listener: /readyz, /metrics
	log  *logWriter
}

// TestTwoGatewayProcesses starts the two gateways once (a build and two
// process starts are the slow part) and checks each cross-instance
// promise against them.
func TestTwoGatewayProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs two processes")
	}
	// A database of this run's own (keys, sessions; -count=N).
	dbURL := testenv.FreshDatabaseURL(t)
	gws := startGateways(t, dbURL)
	// The rate limit runs first: it needs the key's bucket idle, and the
	// revocation check uses another caller (a user), so another bucket.
	t.Run("the same key is admitted at most burst plus rate times elapsed across both", func(t *testing.T) {
		sharedRateLimit(t, gws, dbURL)
	})
	t.Run("a logout on one gateway is refused by the other", func(t *testing.T) {
		logoutRevokesEverywhere(t, gws, dbURL)
	})
}

// sharedRateLimit: the same API key hammering two gateway processes at
// once is admitted at most burst + rate × elapsed times in total, and the
// rest get 429 with Retry-After and RateLimit-*.
func sharedRateLimit(t *testing.T, gws []*gateway, dbURL string) {
	ctx := context.Background()
	keys, err := auth.NewKeys(testenv.PoolOn(t, dbURL))
	if err != nil {
		t.Fatal(err)
	}
	key, _, err := keys.Create(ctx, auth.NewKeyInput{Name: "twoapis", Scopes: []string{auth.ScopeAll}})
	if err != nil {
		t.Fatal(err)
	}

	const requests, workers = 60, 8 // four concurrent clients per process
	type result struct {
		gw     int
		status int
		header http.Header
	}
	results := make([]result, requests)
	next := make(chan int, requests)
	for i := range requests {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		wg.Go(func() {
			for i := range next {
				g := (w + i) % len(gws) // alternate the processes
				res := post(t, gws[g], key, order("c-1"))
				results[i] = result{gw: g, status: res.status, header: res.header}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)

	accepted, limited := 0, 0
	perGateway := make([]int, len(gws))
	for i, r := range results {
		perGateway[r.gw]++
		switch r.status {
		case http.StatusAccepted:
			accepted++
		case http.StatusTooManyRequests:
			limited++
			checkLimitedHeaders(t, i, r.header)
		default:
			t.Errorf("request %d on %s: status %d, want 202 or 429", i, gws[r.gw].name, r.status)
		}
	}
	for g, n := range perGateway {
		if n == 0 {
			t.Errorf("no request reached %s", gws[g].name)
		}
	}

	// The documented bound (docs/gateway.md): from an idle bucket all
	// instances together admit at most burst + rate × time. Every decision
	// falls inside [start, start+elapsed], so that window bounds it.
	bound := burst + int(rate*elapsed.Seconds())
	failedOpen := gws[0].log.saw(storeFailed) || gws[1].log.saw(storeFailed)
	if failedOpen {
		// The shared store timed out (an overloaded machine): each
		// instance falls back to its own bucket, bounded by n × the
		// limit, as documented. The shared bound was not under test.
		bound *= len(gws)
		t.Logf("a gateway fell back to local limits; checking the fail-open bound instead")
	}
	t.Logf("%d requests in %s: %d accepted, %d limited; bound %d", requests, elapsed.Round(time.Millisecond), accepted, limited, bound)
	if accepted > bound {
		t.Errorf("two gateways admitted %d requests in %s, want at most burst %d + rate %d/s × time = %d",
			accepted, elapsed, burst, rate, bound)
	}
	if accepted < min(burst, requests) && !failedOpen {
		t.Errorf("admitted %d requests from an idle bucket, want at least the burst %d", accepted, burst)
	}
	if limited == 0 {
		t.Errorf("no request was limited although %d were sent against a bound of %d", requests, bound)
	}
}

// logoutRevokesEverywhere: a session logged out on one gateway is
// refused (401) by the other within a few seconds.
func logoutRevokesEverywhere(t *testing.T, gws []*gateway, dbURL string) {
	token, _, err := auth.Issue([]byte(jwtSecret), "c-rev", auth.RoleCustomer, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// A user's order is priced from the catalog read model: it must hold
	// order()'s product at order()'s price.
	if _, err := testenv.PoolOn(t, dbURL).Exec(context.Background(), `
		INSERT INTO public.product_search (sku, name, price, currency, updated_at, last_seq) VALUES ('SKU-1', 'SKU-1', 1250, 'EUR', now(), 0)
		ON CONFLICT (sku) DO UPDATE SET price = excluded.price, currency = excluded.currency`); err != nil {
		t.Fatal(err)
	}
	// The token works on both before the logout: a 401 later means revoked.
	for _, g := range gws {
		if res := post(t, g, token, order("c-rev")); res.status != http.StatusAccepted {
			t.Fatalf("before logout, %s answered %d: %s", g.name, res.status, res.body)
		}
	}
	res := do(t, gws[0], http.MethodPost, "/v1/auth/logout", token, "")
	if res.status != http.StatusNoContent {
		t.Fatalf("logout on %s: status %d, want 204: %s", gws[0].name, res.status, res.body)
	}
	for _, g := range []*gateway{gws[1], gws[0]} {
		testenv.Eventually(t, 5*time.Second, "the logged-out token refused by "+g.name, func() bool {
			return post(t, g, token, order("c-rev")).status == http.StatusUnauthorized
		})
	}
}

// startGateways starts an embedded NATS server and two api-only serve
// processes on it, and waits until both are ready.
func startGateways(t *testing.T, dbURL string) []*gateway {
	t.Helper()
	bin := testenv.BuildTradewind(t)
	nats := testenv.NATS(t)
	gws := []*gateway{{name: "gateway 1"}, {name: "gateway 2"}}
	env := []string{
		"DATABASE_URL=" + dbURL,
		"NATS_URL=" + nats.URL,
		"TRADEWIND_ROLES=api",
		"TRADEWIND_JWT_SECRET=" + jwtSecret,
		"TRADEWIND_RATE_LIMIT=" + strconv.Itoa(rate),
		"TRADEWIND_RATE_BURST=" + strconv.Itoa(burst),
		"TRADEWIND_LOG_LEVEL=warn",
	}
	for _, g := range gws {
		g.addr, g.ops = testenv.FreeAddr(t), testenv.FreeAddr(t)
		serve(t, bin, g, env)
	}
	for _, g := range gws {
		testenv.Eventually(t, 60*time.Second, g.name+" ready", func() bool {
			resp, err := http.Get("http://" + g.ops + "/readyz")
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			return resp.StatusCode == http.StatusOK
		})
	}
	return gws
}

// serve starts g's process; it is interrupted and waited for when the
// test ends.
func serve(t *testing.T, bin string, g *gateway, env []string) {
	t.Helper()
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(), append(env,
		"TRADEWIND_DATA_DIR="+t.TempDir(),
		"TRADEWIND_HTTP_ADDR="+g.addr,
		"TRADEWIND_OPS_ADDR="+g.ops,
	)...)
	g.log = &logWriter{t: t, prefix: g.name + ": "}
	cmd.Stdout, cmd.Stderr = g.log, g.log
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", g.name, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		g.log.stop()
	})
}

// order is a valid PlaceOrder body for customer.
func order(customer string) string {
	return fmt.Sprintf(`{"customer_id":%q,"currency":"EUR","lines":[{"sku":"SKU-1","quantity":2,"unit_price":1250}]}`, customer)
}

type response struct {
	status int
	header http.Header
	body   string
}

// post sends a command with a fresh Idempotency-Key.
func post(t *testing.T, g *gateway, bearer, body string) response {
	return do(t, g, http.MethodPost, "/v1/orders", bearer, body)
}

var client = &http.Client{Timeout: 30 * time.Second}

func do(t *testing.T, g *gateway, method, path, bearer, body string) response {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+g.addr+path, strings.NewReader(body))
	if err != nil {
		t.Error(err)
		return response{}
	}
	req.Header.Set("Authorization", "Bearer "+bearer)
	req.Header.Set("Idempotency-Key", uuid.NewString())
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Errorf("%s %s on %s: %v", method, path, g.name, err)
		return response{}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// checkLimitedHeaders checks a 429's Retry-After and RateLimit-* headers.
func checkLimitedHeaders(t *testing.T, i int, h http.Header) {
	t.Helper()
	tests := []struct {
		name string
		ok   func(int) bool
		want string
	}{
		{"Retry-After", func(n int) bool { return n >= 1 }, "whole seconds ≥ 1"},
		{"RateLimit-Limit", func(n int) bool { return n == burst }, "the burst " + strconv.Itoa(burst)},
		{"RateLimit-Remaining", func(n int) bool { return n == 0 }, "0"},
		{"RateLimit-Reset", func(n int) bool { return n >= 1 }, "whole seconds ≥ 1"},
	}
	for _, tt := range tests {
		v := h.Get(tt.name)
		if n, err := strconv.Atoi(v); err != nil || !tt.ok(n) {
			t.Errorf("429 of request %d: %s %q, want %s", i, tt.name, v, tt.want)
		}
	}
}

// logWriter copies a process's output into the test log until stop and
// remembers it, so the test can tell whether a limiter failed open.
type logWriter struct {
	t       *testing.T
	prefix  string
	mu      sync.Mutex
	all     strings.Builder
	stopped bool
}

func (w *logWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.all.Len() < 1<<20 {
		w.all.Write(b)
	}
	if !w.stopped {
		for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
			w.t.Log(w.prefix + l)
		}
	}
	return len(b), nil
}

func (w *logWriter) saw(s string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Contains(w.all.String(), s)
}

func (w *logWriter) stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
}
