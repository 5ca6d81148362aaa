package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/internal/app"
	"github.com/tradewind/tradewind/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestServeThenPublishYieldsTheOrderRow is the README tour as a test: serve
// with an embedded NATS, find it through the state file, publish a
// PlaceOrder with the CLI, see the read-model row.
func TestServeThenPublishYieldsTheOrderRow(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := testenv.BuildTradewind(t)
	dbURL := testenv.FreshDatabaseURL(t) // a new stream each run: a new database
	dataDir := t.TempDir()
	httpAddr := testenv.FreeAddr(t)
	opsAddr := testenv.FreeAddr(t)
	env := append(os.Environ(),
		"TRADEWIND_OPS_ADDR="+opsAddr,
		"DATABASE_URL="+dbURL,
		"TRADEWIND_DATA_DIR="+dataDir,
		"TRADEWIND_HTTP_ADDR="+httpAddr,
		"TRADEWIND_NATS_LISTEN="+testenv.FreeAddr(t),
		"NATS_URL=",
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	serve := exec.CommandContext(ctx, bin, "serve")
	serve.Env = env
	serve.Stderr = &testWriter{t: t}
	serve.Cancel = func() error { return serve.Process.Signal(os.Interrupt) }
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = serve.Wait() }()

	testenv.Eventually(t, 60*time.Second, "/readyz 200", func() bool {
		resp, err := http.Get("http://" + opsAddr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	st, err := app.ReadState(dataDir)
	if err != nil {
		t.Fatalf("state file: %v", err)
	}
	if st.HTTPURL != "http://"+httpAddr || st.OpsURL != "http://"+opsAddr || !strings.HasPrefix(st.NATSURL, "nats://") {
		t.Fatalf("state file = %+v", st)
	}

	customer := "tour-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	pub := exec.Command(bin, "publish", "orders.place", "--data",
		`{"customer_id":"`+customer+`","currency":"EUR","lines":[{"sku":"SKU-1","quantity":2,"unit_price":1250}]}`)
	pub.Env = append(env[:len(env)-1:len(env)-1], "NATS_URL=") // found via the state file
	start := time.Now()
	if out, err := pub.CombinedOutput(); err != nil {
		t.Fatalf("publish: %v\n%s", err, out)
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var total int64
	testenv.Eventually(t, 10*time.Second, "the orders row", func() bool {
		return conn.QueryRow(ctx, `SELECT total FROM public.orders WHERE customer_id = $1`, customer).Scan(&total) == nil
	})
	t.Logf("publish → read-model row in %s", time.Since(start))
	if total != 2500 {
		t.Errorf("total = %d, want 2500", total)
	}

	// A producer on the structured content mode is understood as well.
	structured := exec.Command(bin, "publish", "orders.place", "--structured", "--data",
		`{"customer_id":"`+customer+`-s","currency":"EUR","lines":[{"sku":"SKU-1","quantity":3,"unit_price":1000}]}`)
	structured.Env = pub.Env
	if out, err := structured.CombinedOutput(); err != nil {
		t.Fatalf("publish --structured: %v\n%s", err, out)
	}
	testenv.Eventually(t, 10*time.Second, "the orders row of the structured command", func() bool {
		return conn.QueryRow(ctx, `SELECT total FROM public.orders WHERE customer_id = $1`, customer+"-s").Scan(&total) == nil && total == 3000
	})

	// Bad input is refused by the CLI with the field named, not sent.
	bad := exec.Command(bin, "publish", "orders.place", "--data", `{"customer_id":"x","currency":"EUR","lines":[{"sku":"A","quantity":-1,"unit_price":1}]}`)
	bad.Env = pub.Env
	out, err := bad.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "/lines/0/quantity") {
		t.Errorf("bad publish: err=%v out=%s", err, out)
	}

	// The operator endpoints are not on the API listener.
	for _, path := range []string{"/readyz", "/metrics"} {
		resp, err := http.Get("http://" + httpAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("API listener GET %s = %d, want 404 (operator listener only)", path, resp.StatusCode)
		}
	}
	// /readyz reports each check.
	resp, err := http.Get("http://" + opsAddr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"nats", "postgres", "consumer:orders-commands"} {
		if body.Checks[k] != "ok" {
			t.Errorf("readyz check %s = %q", k, body.Checks[k])
		}
	}
}

func TestServeRejectsBadConfigurationListingEveryProblem(t *testing.T) {
	cmd := newRoot()
	cmd.SetArgs([]string{"serve", "--http-addr", "nope", "--max-deliver", "0", "--roles", "api,bogus"})
	err := cmd.Execute()
	if err == nil {
		t.Fatal("serve accepted a bad configuration")
	}
	for _, want := range []string{"TRADEWIND_HTTP_ADDR", "TRADEWIND_MAX_DELIVER", `unknown role "bogus"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s:\n%v", want, err)
		}
	}
}

func TestEverySubcommandHasHelp(t *testing.T) {
	for _, c := range newRoot().Commands() {
		if c.Short == "" {
			t.Errorf("%s has no help", c.Name())
		}
	}
}

type testWriter struct{ t *testing.T }

func (w *testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
