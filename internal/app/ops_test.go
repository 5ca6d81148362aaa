package app

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/internal/testenv"
)

// TestReadyzNamesTheDependencyDownWithoutItsError: /readyz and /metrics
// are served on the operator listener; a failing PostgreSQL check is
// reported as "unreachable", never with the driver's error text (which
// names users, databases and hosts).
func TestReadyzNamesTheDependencyDownWithoutItsError(t *testing.T) {
	u, err := url.Parse(testenv.DatabaseURL(t))
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/tradewind_no_such_database"
	ready := &readiness{log: slog.New(slog.DiscardHandler)}
	var pgErr error
	ready.set(func(r *readiness) {
		r.nats = func() bool { return true }
		r.pg = func(ctx context.Context) error {
			conn, err := pgx.Connect(ctx, u.String())
			if err == nil {
				conn.Close(ctx)
			}
			pgErr = err
			return err
		}
	})
	ready.started.Store(true)
	base, stop, err := startOps("127.0.0.1:0", ready, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)

	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz = %d, want 503: %s", resp.StatusCode, b)
	}
	if pgErr == nil {
		t.Fatal("the check did not fail")
	}
	var body struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatal(err)
	}
	if body.Checks["postgres"] != "unreachable" || body.Checks["nats"] != "ok" {
		t.Errorf("checks = %v, want postgres unreachable, nats ok", body.Checks)
	}
	if strings.Contains(string(b), "tradewind_no_such_database") || strings.Contains(string(b), "SQLSTATE") {
		t.Errorf("/readyz leaks the driver's error: %s", b)
	}

	resp, err = http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/metrics = %d on the operator listener", resp.StatusCode)
	}
}

// groupStub is a service running several consumers, as the projection
// group does, with a readiness per consumer.
type groupStub map[string]string

func (groupStub) Name() string                   { return "projections" }
func (groupStub) Run(ctx context.Context) error  { <-ctx.Done(); return nil }
func (groupStub) Running() bool                  { return true }
func (g groupStub) Readiness() map[string]string { return g }

// TestReadyzReportsEachProjectionOfTheGroup: one service applies every
// read model, and /readyz still names each as consumer:projection-<name>,
// ready or with its reason; one not ready makes the process not ready.
func TestReadyzReportsEachProjectionOfTheGroup(t *testing.T) {
	ready := &readiness{log: slog.New(slog.DiscardHandler)}
	g := groupStub{"projection-orders": "", "projection-sales": "read model refers to another incarnation; run `tradewind projections rebuild --all`"}
	ready.set(func(r *readiness) { r.services = []Service{g} })
	ready.started.Store(true)
	base, stop, err := startOps("127.0.0.1:0", ready, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	get := func() (int, map[string]string) {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct {
			Checks map[string]string `json:"checks"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, body.Checks
	}
	code, checks := get()
	if code != http.StatusServiceUnavailable || checks["consumer:projection-orders"] != "ok" ||
		!strings.Contains(checks["consumer:projection-sales"], "rebuild --all") {
		t.Errorf("/readyz = %d %v: want 503, orders ok, sales with its reason", code, checks)
	}
	if _, ok := checks["consumer:projections"]; ok {
		t.Errorf("the group itself is listed: %v", checks)
	}
	g["projection-sales"] = ""
	if code, checks := get(); code != http.StatusOK || checks["consumer:projection-sales"] != "ok" {
		t.Errorf("/readyz = %d %v: want 200 with every projection ok", code, checks)
	}
}
