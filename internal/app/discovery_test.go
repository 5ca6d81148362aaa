package app

import (
	"context"
	"encoding/json"
	"sort"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/tradewind/tradewind/internal/testenv"
)

// collect publishes a request and gathers every reply for a moment, as
// `nats micro ls` does: many instances answer one $SRV.PING.
func collect(t *testing.T, nc *nats.Conn, subject string) [][]byte {
	t.Helper()
	inbox := nats.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.PublishRequest(subject, inbox, nil); err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for {
		m, err := sub.NextMsg(300 * time.Millisecond)
		if err != nil {
			return out
		}
		out = append(out, m.Data)
	}
}

func TestEveryRoleIsDiscoverableAsAMicroService(t *testing.T) {
	emb := testenv.NATS(t)
	nc, _ := testenv.Connect(t, emb.URL)
	idle := func(ctx context.Context) error { <-ctx.Done(); return nil }
	byRole := map[string][]Service{
		"orders": {ServiceFunc("orders-commands", idle)},
		"relay":  {ServiceFunc("outbox-relay", idle)},
	}
	// Two instances of the orders role, as two processes would register.
	stop1, err := registerDiscovery(nc, "v1.4.2", byRole, map[string]string{"http": "http://a"})
	if err != nil {
		t.Fatal(err)
	}
	defer stop1()
	stop2, err := registerDiscovery(nc, "v1.4.2", map[string][]Service{"orders": byRole["orders"]}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer stop2()

	var names []string
	for _, b := range collect(t, nc, "$SRV.PING") {
		var p micro.Ping
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatal(err)
		}
		if p.Version != "1.4.2" {
			t.Errorf("%s version %q, want 1.4.2", p.Name, p.Version)
		}
		names = append(names, p.Name)
	}
	sort.Strings(names)
	if want := []string{"tradewind-orders", "tradewind-orders", "tradewind-relay"}; !equal(names, want) {
		t.Errorf("PING answered by %v, want %v", names, want)
	}

	infos := collect(t, nc, "$SRV.INFO.tradewind-relay")
	if len(infos) != 1 {
		t.Fatalf("INFO tradewind-relay: %d answers, want 1", len(infos))
	}
	var info micro.Info
	if err := json.Unmarshal(infos[0], &info); err != nil {
		t.Fatal(err)
	}
	if info.Metadata["role"] != "relay" || info.Metadata["http"] != "http://a" || info.Metadata["version"] != "v1.4.2" {
		t.Errorf("metadata %v", info.Metadata)
	}
	if len(info.Endpoints) != 1 || info.Endpoints[0].Subject != "tradewind.relay.status" {
		t.Errorf("endpoints %+v, want the status endpoint", info.Endpoints)
	}

	resp, err := nc.Request("tradewind.relay.status", nil, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var st RoleStatus
	if err := json.Unmarshal(resp.Data, &st); err != nil {
		t.Fatal(err)
	}
	if st.Role != "relay" || len(st.Services) != 1 || st.Services[0].Name != "outbox-relay" {
		t.Errorf("status %+v", st)
	}

	stats := collect(t, nc, "$SRV.STATS.tradewind-orders")
	if len(stats) != 2 {
		t.Fatalf("STATS tradewind-orders: %d answers, want one per instance", len(stats))
	}

	stop2()
	if got := len(collect(t, nc, "$SRV.PING.tradewind-orders")); got != 1 {
		t.Errorf("after one instance stopped, %d orders instances answer, want 1", got)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSemVer(t *testing.T) {
	tests := []struct{ in, want string }{
		{"v1.2.3", "1.2.3"},
		{"1.2.3-rc.1", "1.2.3-rc.1"},
		{"dev", "0.0.0+dev"},
		{"v0.1.0-3-gabc1234-dirty", "0.1.0-3-gabc1234-dirty"},
		{"abc1234", "0.0.0+abc1234"},
		{"", "0.0.0+unknown"},
		{"1.0.0-01", "0.0.0+1-0-0-01"},
		{"weird/ver sion", "0.0.0+weird-ver-sion"},
	}
	for _, tt := range tests {
		if got := SemVer(tt.in); got != tt.want {
			t.Errorf("SemVer(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
