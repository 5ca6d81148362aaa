package opsapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradewind/tradewind/internal/auth"
	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/dlq"
	"github.com/tradewind/tradewind/internal/flags"
	"github.com/tradewind/tradewind/internal/opsapi"
	"github.com/tradewind/tradewind/internal/runner"
	"github.com/tradewind/tradewind/internal/testenv"
)

// principals stands in for the gateway's credentials: the bearer names
// the caller.
func principals(r *http.Request) (auth.Principal, error) {
	switch r.Header.Get("Authorization") {
	case "Bearer ops":
		return auth.Principal{Kind: auth.KindUser, Caller: "user:ops-1", Subject: "ops-1", Role: auth.RoleOps}, nil
	case "Bearer customer":
		return auth.Principal{Kind: auth.KindUser, Caller: "user:c-1", Subject: "c-1", Role: auth.RoleCustomer}, nil
	case "Bearer key-orders":
		return auth.Principal{Kind: auth.KindAPIKey, Caller: "key:1", Scopes: []string{auth.ScopeOrdersWrite}}, nil
	}
	return auth.Principal{}, auth.ErrInvalid
}

func setup(t *testing.T) (string, jetstream.JetStream) {
	t.Helper()
	_, _, js := testenv.JetStream(t)
	api, err := opsapi.New(js, principals, nil)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	api.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL, js
}

// deadLetter puts a dead letter of consumer into the DLQ stream, as the
// runner would.
func deadLetter(t *testing.T, js jetstream.JetStream, consumer, eventID string) uint64 {
	t.Helper()
	m := nats.NewMsg(runner.DeadLetterSubject(consumer, "cmd.orders.place"))
	m.Header.Set(runner.HdrDLQConsumer, consumer)
	m.Header.Set(runner.HdrDLQSubject, "cmd.orders.place")
	m.Header.Set(runner.HdrDLQStream, broker.StreamCommands)
	m.Header.Set(runner.HdrDLQSeq, "7")
	m.Header.Set(runner.HdrDLQAttempts, "5")
	m.Header.Set(runner.HdrDLQReason, "permanent: unknown SKU")
	m.Header.Set("ce-id", eventID)
	m.Header.Set("ce-type", "com.tradewind.orders.place.v1")
	m.Data = []byte(`{"customer_id":"c-1"}`)
	ack, err := js.PublishMsg(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

func call(t *testing.T, method, url, bearer string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode >= 400 && res.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("%s %s: %d with %q, want problem+json", method, url, res.StatusCode, res.Header.Get("Content-Type"))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, url, err, b)
		}
	}
	return res.StatusCode
}

func TestOnlyOperatorsReachTheOpsEndpoints(t *testing.T) {
	base, _ := setup(t)
	for _, c := range []struct {
		bearer string
		want   int
	}{{"", 401}, {"nonsense", 401}, {"customer", 403}, {"key-orders", 403}, {"ops", 200}} {
		for _, path := range []string{"/v1/ops/consumers", "/v1/ops/dlq"} {
			if got := call(t, "GET", base+path, c.bearer, nil); got != c.want {
				t.Errorf("GET %s as %q: %d, want %d", path, c.bearer, got, c.want)
			}
		}
	}
	if got := call(t, "DELETE", base+"/v1/ops/dlq?confirm=purge", "customer", nil); got != 403 {
		t.Errorf("purge as a customer: %d, want 403", got)
	}
}

func TestDeadLetterListShowReplayPurge(t *testing.T) {
	base, js := setup(t)
	ctx := context.Background()
	id := deadLetter(t, js, "orders-commands", "ev-1")
	deadLetter(t, js, "orders-commands", "ev-2")
	deadLetter(t, js, "inventory", "ev-3")

	var list struct {
		Entries []opsapi.Entry `json:"entries"`
		Total   uint64         `json:"total"`
	}
	if code := call(t, "GET", base+"/v1/ops/dlq?consumer=orders-commands", "ops", &list); code != 200 || len(list.Entries) != 2 || list.Total != 2 {
		t.Fatalf("list: %d %+v", code, list)
	}
	if e := list.Entries[0]; e.ID != id || e.Reason != "permanent: unknown SKU" || e.Attempts != 5 || e.EventID != "ev-1" || e.Data != nil {
		t.Fatalf("first entry %+v", e)
	}
	var shown opsapi.Entry
	if code := call(t, "GET", base+"/v1/ops/dlq/"+itoa(id), "ops", &shown); code != 200 || string(shown.Data) != `{"customer_id":"c-1"}` {
		t.Fatalf("show: %d %+v", code, shown)
	}
	for _, bad := range []string{"0", "x", "-1"} {
		if code := call(t, "GET", base+"/v1/ops/dlq/"+bad, "ops", nil); code != 400 {
			t.Errorf("show %s: %d, want 400", bad, code)
		}
	}

	var rep struct{ Replayed []opsapi.Replayed }
	if code := call(t, "POST", base+"/v1/ops/dlq/"+itoa(id)+"/replay", "ops", &rep); code != 200 || len(rep.Replayed) != 1 || rep.Replayed[0].Stream != broker.StreamCommands {
		t.Fatalf("replay: %d %+v", code, rep)
	}
	cmds, err := js.Stream(ctx, broker.StreamCommands)
	if err != nil {
		t.Fatal(err)
	}
	m, err := cmds.GetMsg(ctx, rep.Replayed[0].Seq)
	if err != nil || m.Header.Get("ce-id") != "ev-1" || m.Header.Get(dlq.HdrReplayOf) == "" {
		t.Fatalf("the replayed command: %v %v", m, err)
	}
	if code := call(t, "POST", base+"/v1/ops/dlq/"+itoa(id)+"/replay", "ops", nil); code != 404 {
		t.Fatalf("second replay: %d, want 404 (the entry is gone)", code)
	}
	if code := call(t, "GET", base+"/v1/ops/dlq/"+itoa(id), "ops", nil); code != 404 {
		t.Fatalf("show after replay: %d, want 404", code)
	}

	var prob opsapi.Problem
	if code := call(t, "DELETE", base+"/v1/ops/dlq", "ops", &prob); code != 400 || !strings.Contains(prob.Detail, "deletes 2 dead letters") {
		t.Fatalf("purge without confirmation: %d %+v", code, prob)
	}
	var purged struct{ Purged uint64 }
	if code := call(t, "DELETE", base+"/v1/ops/dlq?confirm=purge&consumer=inventory", "ops", &purged); code != 200 || purged.Purged != 1 {
		t.Fatalf("purge inventory: %d %+v", code, purged)
	}
	var all struct{ Replayed []opsapi.Replayed }
	if code := call(t, "POST", base+"/v1/ops/dlq/replay", "ops", &all); code != 200 || len(all.Replayed) != 1 || all.Replayed[0].EventID != "ev-2" {
		t.Fatalf("replay all: %d %+v", code, all)
	}
	if code := call(t, "GET", base+"/v1/ops/dlq", "ops", &list); code != 200 || len(list.Entries) != 0 {
		t.Fatalf("after all: %d %+v", code, list)
	}
}

func TestConsumersShowLag(t *testing.T) {
	base, js := setup(t)
	ctx := context.Background()
	if _, err := js.CreateOrUpdateConsumer(ctx, broker.StreamCommands, jetstream.ConsumerConfig{Durable: "ops-test", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := js.Publish(ctx, "cmd.orders.place", []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	// The server counts a consumer's pending messages as the stream grows,
	// not before the publish ack: wait for the count.
	testenv.Eventually(t, 10*time.Second, "ops-test shows 3 pending on COMMANDS", func() bool {
		var out struct{ Consumers []opsapi.Consumer }
		if code := call(t, "GET", base+"/v1/ops/consumers", "ops", &out); code != 200 {
			t.Fatalf("consumers: %d", code)
		}
		for _, c := range out.Consumers {
			if c.Name == "ops-test" {
				return c.Stream == broker.StreamCommands && c.Pending == 3
			}
		}
		return false
	})
}

func TestFlagsShowTheirRollout(t *testing.T) {
	base, js := setup(t)
	var out struct{ Flags []opsapi.Flag }
	if code := call(t, "GET", base+"/v1/ops/flags", "ops", &out); code != 200 || len(out.Flags) != 0 {
		t.Fatalf("no bucket yet: %d %+v, want an empty list", code, out)
	}
	admin, err := flags.Ensure(context.Background(), js, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := admin.Update(context.Background(), "new-checkout", func(f *flags.Flag) {
		f.Percent = 12.5
		f.Allow = []string{"c-1", "c-2"}
	}); err != nil {
		t.Fatal(err)
	}
	if code := call(t, "GET", base+"/v1/ops/flags", "ops", &out); code != 200 || len(out.Flags) != 1 {
		t.Fatalf("flags: %d %+v", code, out)
	}
	if f := out.Flags[0]; f.Name != "new-checkout" || f.Percent != 12.5 || f.Allowed != 2 || f.Denied != 0 {
		t.Fatalf("flag %+v", f)
	}
	if code := call(t, "GET", base+"/v1/ops/flags", "customer", nil); code != 403 {
		t.Fatalf("flags as a customer: %d, want 403", code)
	}
}

func TestNewRefusesNilDependencies(t *testing.T) {
	if _, err := opsapi.New(nil, principals, nil); err == nil {
		t.Fatal("nil JetStream accepted")
	}
	_, _, js := testenv.JetStream(t)
	if _, err := opsapi.New(js, nil, nil); err == nil {
		t.Fatal("nil authenticator accepted")
	}
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }
