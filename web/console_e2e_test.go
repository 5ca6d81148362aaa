package web_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/auth"
	"github.com/tradewind/tradewind/internal/cenats"
	"github.com/tradewind/tradewind/internal/config"
	"github.com/tradewind/tradewind/internal/testenv"
)

// Streaming load of the ops feed test: rate per second, for how long, and
// the longest main-thread task the page may have meanwhile.
const (
	opsRate        = 500
	opsDuration    = 10 * time.Second
	longTaskBudget = 50.0 // ms
)

// consoleFigures is what e2e/console.mjs reports.
type consoleFigures struct {
	Order           string   `json:"order"`
	PlacedMs        int64    `json:"placedMs"`
	ConfirmedLiveMs int64    `json:"confirmedLiveMs"`
	Inbox           []string `json:"inbox"`
	Streamed        int      `json:"streamed"`
	Received        int      `json:"received"`
	FeedRowsInDOM   int      `json:"feedRowsInDom"`
	Seconds         float64  `json:"seconds"`
	LongestTaskMs   float64  `json:"longestTaskMs"`
	LongTasks       int      `json:"longTasks"`
	FPS             float64  `json:"fps"`
	Flushes         int      `json:"flushes"`
	IdleLongestMs   float64  `json:"idleLongestTaskMs"`
	IdleLongTasks   int      `json:"idleLongTasks"`
	MainThreadCPU   float64  `json:"mainThreadCpuS"`
	ScriptS         float64  `json:"scriptS"`
	StyleLayoutS    float64  `json:"styleLayoutS"`
}

// TestConsoleInBrowser runs every role in one tradewind serve against real
// NATS and PostgreSQL and drives the console in headless Chromium: a
// customer places an order and sees it confirm live; an operator's feed
// takes 500 notifications/s for 10 s with no long task over 50 ms. The
// screenshots go to a temporary directory, or to docs/images with
// TRADEWIND_SCREENSHOTS=update (how the README's picture is made).
func TestConsoleInBrowser(t *testing.T) {
	browser := chromium(t)
	emb := testenv.NATS(t)
	cfg := baseConfig(t, emb.URL, config.AllRoles...)
	cfg.HTTPAddr = testenv.FreeAddr(t)
	cfg.ProviderListen = testenv.FreeAddr(t)
	serve(t, cfg)
	base := "http://" + cfg.HTTPAddr

	customer := "e2e-" + uuid.NewString()[:8]
	custToken, _, err := auth.Issue([]byte(e2eKey), customer, auth.RoleCustomer, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	opsToken, _, err := auth.Issue([]byte(e2eKey), "ops-e2e", auth.RoleOps, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	restock(t, base, opsToken)

	shots := t.TempDir()
	if os.Getenv("TRADEWIND_SCREENSHOTS") == "update" {
		shots, _ = filepath.Abs(filepath.Join("..", "docs", "images"))
		if err := os.MkdirAll(shots, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	nc, err := nats.Connect(emb.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	msgs := opsNotifications(t, opsRate*int(opsDuration/time.Second))

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "e2e/console.mjs", base, custToken, opsToken, shots)
	cmd.Env = append(os.Environ(), "CHROMIUM="+browser)
	cmd.Stderr = testWriter{t}
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var result string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		t.Log("driver:", line)
		switch {
		case line == "stream":
			n := stream(t, nc, msgs)
			_, _ = fmt.Fprintf(stdin, "sent %d\n", n)
		case strings.HasPrefix(line, "PASS"), strings.HasPrefix(line, "FAIL"):
			result = line
		}
	}
	_ = cmd.Wait()
	if !strings.HasPrefix(result, "PASS ") {
		t.Fatalf("browser check: %q", result)
	}
	var f consoleFigures
	if err := json.Unmarshal([]byte(strings.TrimPrefix(result, "PASS ")), &f); err != nil {
		t.Fatal(err)
	}
	summary := fmt.Sprintf("console e2e: order confirmed live %d ms after the click; ops feed: %d/%d notifications in %.1f s, "+
		"longest task %.0f ms (%d over 50 ms), %.1f frames/s, main thread CPU %.2f s (script %.2f s, style+layout %.2f s), "+
		"%d store flushes, %d feed rows in the DOM; idle page before: longest task %.0f ms (%d over 50 ms); screenshots in %s",
		f.ConfirmedLiveMs, f.Received, f.Streamed, f.Seconds, f.LongestTaskMs, f.LongTasks, f.FPS, f.MainThreadCPU, f.ScriptS,
		f.StyleLayoutS, f.Flushes, f.FeedRowsInDOM, f.IdleLongestMs, f.IdleLongTasks, shots)
	t.Log(summary)
	fmt.Println(summary)
	if f.Received < f.Streamed {
		t.Errorf("the feed counted %d of %d notifications", f.Received, f.Streamed)
	}
	// The page's own work must leave the main thread mostly idle, whatever
	// the machine's load: CPU time is not inflated by waiting for a core.
	if busy := f.MainThreadCPU / f.Seconds; busy > 0.5 {
		t.Errorf("the page's main thread was busy %.0f%% of the stream", busy*100)
	}
	switch {
	case f.LongestTaskMs <= longTaskBudget:
	case f.IdleLongestMs > longTaskBudget:
		// The same page, idle, already had long tasks: the machine is
		// starving the browser (shared cores), so task durations say
		// nothing about the page. CI runs on a machine of its own.
		t.Logf("longest task %.0f ms over the %.0f ms budget, but the idle page had one of %.0f ms: the machine is "+
			"too loaded to judge task durations (load average: see uptime); the CPU bound above still held",
			f.LongestTaskMs, longTaskBudget, f.IdleLongestMs)
	default:
		t.Errorf("longest task %.0f ms, budget %.0f ms", f.LongestTaskMs, longTaskBudget)
	}
	if f.FeedRowsInDOM > 100 {
		t.Errorf("%d feed rows in the DOM: the feed is not virtualized", f.FeedRowsInDOM)
	}
}

// restock gives SKU-1 stock through the gateway (an operator holds every
// scope) and waits until the inventory read model has it.
func restock(t *testing.T, base, token string) {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/v1/inventory/SKU-1/restock", strings.NewReader(`{"quantity":1000}`))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", uuid.NewString())
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusAccepted {
		t.Fatalf("restock: %d %s", res.StatusCode, b)
	}
	var acc struct{ Position string }
	_ = json.Unmarshal(b, &acc)
	testenv.Eventually(t, 30*time.Second, "the restock in the inventory read model", func() bool {
		req, _ := http.NewRequest("GET", base+"/v1/inventory/SKU-1?after="+acc.Position, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})
}

// opsNotifications renders n notifications as the notifier publishes them
// on ntf.ops.orders (binary CloudEvents), for many users and orders.
func opsNotifications(t *testing.T, n int) []*nats.Msg {
	t.Helper()
	kinds := []string{"order.placed", "order.confirmed", "order.cancelled"}
	out := make([]*nats.Msg, n)
	for i := range out {
		user := fmt.Sprintf("load-%d", i%200)
		orderID := uuid.NewString()
		ev, err := events.New(events.NotificationV1, events.ChannelUserPrefix+user, events.NotificationData{
			UserID: user, Seq: int64(i/200 + 1), Kind: kinds[i%3], Title: "Order update " + orderID[:8], Body: "streamed by the e2e test",
			OrderID: orderID, Source: events.NotificationCause{ID: uuid.NewString(), Type: "com.tradewind.orders.placed.v1", Time: time.Now().UTC().Format(time.RFC3339Nano)},
		}, events.WithSource("/tradewind/e2e"))
		if err != nil {
			t.Fatal(err)
		}
		m, err := cenats.NewMsg("ntf."+events.ChannelOpsOrders, ev)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = m
	}
	return out
}

// stream publishes msgs at opsRate per second, in 10 ms ticks.
func stream(t *testing.T, nc *nats.Conn, msgs []*nats.Msg) int {
	t.Helper()
	perTick := opsRate / 100
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	sent := 0
	for sent < len(msgs) {
		<-tick.C
		for i := 0; i < perTick && sent < len(msgs); i++ {
			if err := nc.PublishMsg(msgs[sent]); err != nil {
				t.Fatalf("publish: %v", err)
			}
			sent++
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return sent
}
