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
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/auth"
	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/cenats"
	"github.com/tradewind/tradewind/internal/config"
	"github.com/tradewind/tradewind/internal/runner"
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
	IdemKeys        []string `json:"idempotencyKeys"`
	Replayed202     string   `json:"replayed202"`
	ConfirmedLiveMs int64    `json:"confirmedLiveMs"`
	RowsAfterScroll int      `json:"rowsAfterScroll"`
	Timeline        []string `json:"timeline"`
	InboxSize       int      `json:"inboxSize"`
	Search          []string `json:"search"`
	SalesRows       int      `json:"salesRows"`
	SalesCSV        string   `json:"salesCsvHeader"`
	Rollup          []string `json:"rollup"`
	RollupRows      int      `json:"rollupRows"`
	PivotRows       int      `json:"pivotRows"`
	Replayed        bool     `json:"replayed"`
	InboxBefore     int      `json:"inboxBeforeDrop"`
	InboxAfter      int      `json:"inboxAfterReconnect"`
	Streamed        int      `json:"streamed"`
	Received        int      `json:"received"`
	FeedRowsInDOM   int      `json:"feedRowsInDom"`
	Seconds         float64  `json:"seconds"`
	LongestTaskMs   float64  `json:"longestTaskMs"`
	LongTasks       int      `json:"longTasks"`
	FPS             float64  `json:"fps"`
	Flushes         int      `json:"flushes"`
	Publishes       int      `json:"publishes"`
	// What the longest animation frame was (Long Animation Frames API):
	// its scripts with their invokers, its render and layout.
	LongestFrame     json.RawMessage `json:"longestFrame"`
	IdleLongestFrame json.RawMessage `json:"idleLongestFrame"`
	IdleLongestMs    float64         `json:"idleLongestTaskMs"`
	IdleLongTasks    int             `json:"idleLongTasks"`
	MainThreadCPU    float64         `json:"mainThreadCpuS"`
	ScriptS          float64         `json:"scriptS"`
	StyleLayoutS     float64         `json:"styleLayoutS"`
	Thumbnail        struct {
		Src, Srcset, Loading, Decoding, Sizes string
	} `json:"thumbnail"`
	ImageRefused string `json:"imageRefused"`
	// Mute a type and receive none of it.
	MutedKinds         []string `json:"mutedKinds"`
	MutedConfirmations int      `json:"mutedConfirmations"`
	MutedOrderPlaced   int      `json:"mutedOrderPlaced"`
	MutedGapFree       bool     `json:"mutedGapFree"`
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
	// SKU-1's category, toys, under a root: the Analytics roll-up's tree.
	send(t, base, opsToken, "/v1/categories", `{"category_id":"outdoor","name":"Outdoor"}`)
	send(t, base, opsToken, "/v1/categories", `{"category_id":"toys","parent_id":"outdoor","name":"Toys"}`)
	send(t, base, opsToken, "/v1/products", `{"sku":"SKU-1","name":"Kite","description":"A sturdy kite","category_id":"toys","price":1250,"currency":"EUR"}`)
	// The gateway prices orders from the catalog read model: wait for it.
	testenv.Eventually(t, 60*time.Second, "SKU-1 in the catalog read model", func() bool {
		req, _ := http.NewRequest("GET", base+"/v1/products/search?q=Kite", nil)
		req.Header.Set("Authorization", "Bearer "+opsToken)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode == http.StatusOK && strings.Contains(string(b), "SKU-1")
	})
	// Three pages of orders for the customer (the console shows 20 a page).
	var last string
	for range 2*20 + 5 {
		last, _ = place(t, base, custToken)
	}
	readable(t, base, custToken, "/v1/orders?limit=1&after="+last)

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
	// A dead letter the operator replays in the browser: a valid command
	// the orders consumer has never applied.
	dead := uuid.NewString()
	deadLetterOrder(t, nc, dead, customer)
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
	var load float64 // the machine's, around the stream
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		t.Log("driver:", line)
		switch {
		case line == "offline":
			// The page's socket is cut: an order placed and confirmed
			// now reaches the page only through the resume.
			_, id := place(t, base, custToken)
			confirmed(t, base, custToken, id)
			_, _ = io.WriteString(stdin, "online\n")
		case line == "muted":
			// The page muted order.confirmed: an order confirmed now makes
			// no notification. Once the notifier has handled every event,
			// a second order's "placed" is the page's barrier.
			_, x := place(t, base, custToken)
			confirmed(t, base, custToken, x)
			notifierCaughtUp(t, nc)
			_, y := place(t, base, custToken)
			_, _ = fmt.Fprintf(stdin, "placed %s %s\n", x, y)
		case line == "stream":
			load = max(load, loadAverage())
			n := stream(t, nc, msgs)
			load = max(load, loadAverage())
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
		"%d store flushes, %d ops publishes, %d feed rows in the DOM; idle page before: longest task %.0f ms (%d over 50 ms); load average %.1f; "+
		"longest frame %s; idle longest frame %s; screenshots in %s",
		f.ConfirmedLiveMs, f.Received, f.Streamed, f.Seconds, f.LongestTaskMs, f.LongTasks, f.FPS, f.MainThreadCPU, f.ScriptS,
		f.StyleLayoutS, f.Flushes, f.Publishes, f.FeedRowsInDOM, f.IdleLongestMs, f.IdleLongTasks, load, f.LongestFrame, f.IdleLongestFrame, shots)
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
	// The 50 ms budget is judged unless the machine is visibly starving
	// the browser: the same page idle just before already had a task over
	// the budget, or the machine ran more than one runnable job per CPU
	// around the stream (shared cores: make test runs other packages'
	// servers beside this one, and a task waiting for a core is not the
	// page's work). Then a task's wall-clock duration
	// says nothing about the page, and the test says why it did not judge.
	switch overloaded := float64(runtime.NumCPU()); {
	case f.LongestTaskMs <= longTaskBudget:
	case f.IdleLongestMs > longTaskBudget || load > overloaded:
		msg := fmt.Sprintf("longest task %.0f ms over the %.0f ms budget, not judged: load average %.1f on %d CPUs (judged up to %.0f), "+
			"the idle page's longest task %.0f ms; the CPU bound above held",
			f.LongestTaskMs, longTaskBudget, load, runtime.NumCPU(), overloaded, f.IdleLongestMs)
		t.Log(msg)
		fmt.Println(msg)
	default:
		t.Errorf("longest task %.0f ms, budget %.0f ms (load average %.1f on %d CPUs; the idle page's longest task %.0f ms); longest frame %s",
			f.LongestTaskMs, longTaskBudget, load, runtime.NumCPU(), f.IdleLongestMs, f.LongestFrame)
	}
	if f.RowsAfterScroll < 2*20+1 {
		t.Errorf("%d orders after scrolling, want the third page", f.RowsAfterScroll)
	}
	// Analytics: the roll-up puts Toys under Outdoor, both with the kites'
	// revenue; the pivot has SKU-1's category; the CSV is the API's.
	if want := []string{"0 Outdoor", "1 Toys"}; !slices.Equal(f.Rollup, want) {
		t.Errorf("roll-up bars %v, want %v", f.Rollup, want)
	}
	if f.RollupRows != 2 || f.PivotRows < 1 {
		t.Errorf("roll-up table %d rows (want 2), pivot %d (want some)", f.RollupRows, f.PivotRows)
	}
	if want := "day,currency,orders,units,revenue,revenue_running_total,revenue_7d_avg,orders_7d_avg"; f.SalesCSV != want {
		t.Errorf("the sales CSV starts %q, want the header %q", f.SalesCSV, want)
	}
	if len(f.Search) == 0 || f.Search[0] != "Kite" {
		t.Errorf("catalog search found %v, want Kite", f.Search)
	}
	// Issue 13's images: the uploaded PNG's 160 px thumbnail is the src,
	// the srcset offers every width, lazy and async; a renamed executable
	// is refused (415) with a message naming the accepted types.
	if th := f.Thumbnail; !strings.HasSuffix(th.Src, "/160.jpg") || !strings.Contains(th.Srcset, "320w") ||
		!strings.Contains(th.Srcset, "400w") || th.Loading != "lazy" || th.Decoding != "async" || th.Sizes == "" {
		t.Errorf("product image %+v", th)
	}
	if !strings.Contains(f.ImageRefused, "JPEG, PNG and WebP") {
		t.Errorf("a renamed executable: %q", f.ImageRefused)
	}
	// Issue 13's preferences: the muted kind never reached the inbox,
	// the order's other notification did, and the seqs have no gap.
	if fmt.Sprint(f.MutedKinds) != "[order.confirmed]" || f.MutedConfirmations != 0 || f.MutedOrderPlaced != 1 || !f.MutedGapFree {
		t.Errorf("muting order.confirmed: stored %v; %d confirmations and %d placed of the order shown, gap-free %v; want [order.confirmed], 0, 1, true",
			f.MutedKinds, f.MutedConfirmations, f.MutedOrderPlaced, f.MutedGapFree)
	}
	// The replayed dead letter was processed: its order exists.
	readable(t, base, custToken, "/v1/orders/"+dead)
	if f.FeedRowsInDOM > 100 {
		t.Errorf("%d feed rows in the DOM: the feed is not virtualized", f.FeedRowsInDOM)
	}
}

// notifierCaughtUp waits until the notifier consumer has handled every
// event stored so far (none pending, none unacknowledged).
func notifierCaughtUp(t *testing.T, nc *nats.Conn) {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, "the notifier handled every event", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := js.Consumer(ctx, broker.StreamEvents, "notifier")
		if err != nil {
			return false
		}
		ci, err := c.Info(ctx)
		return err == nil && ci.NumPending == 0 && ci.NumAckPending == 0
	})
}

// loadAverage is the machine's one-minute load average (0 where
// /proc/loadavg is missing).
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	var l float64
	_, _ = fmt.Sscan(string(b), &l)
	return l
}

// place places an order of one SKU-1 for the token's customer.
func place(t *testing.T, base, token string) (position, id string) {
	t.Helper()
	return sendID(t, base, token, "/v1/orders", `{"currency":"EUR","lines":[{"sku":"SKU-1","quantity":1,"unit_price":1250}]}`)
}

// confirmed waits until order id is confirmed in the read model.
func confirmed(t *testing.T, base, token, id string) {
	t.Helper()
	testenv.Eventually(t, 60*time.Second, "order "+id+" confirmed", func() bool {
		req, _ := http.NewRequest("GET", base+"/v1/orders/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer res.Body.Close()
		var o struct{ Status string }
		return res.StatusCode == http.StatusOK && json.NewDecoder(res.Body).Decode(&o) == nil && o.Status == "confirmed"
	})
}

// send POSTs a command and returns the 202's position token.
func send(t *testing.T, base, token, path, body string) string {
	t.Helper()
	pos, _ := sendID(t, base, token, path, body)
	return pos
}

// sendID POSTs a command and returns the 202's position token and id.
func sendID(t *testing.T, base, token, path, body string) (position, id string) {
	t.Helper()
	req, _ := http.NewRequest("POST", base+path, strings.NewReader(body))
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
		t.Fatalf("POST %s: %d %s", path, res.StatusCode, b)
	}
	var acc struct{ Position, ID string }
	_ = json.Unmarshal(b, &acc)
	return acc.Position, acc.ID
}

// readable waits until GET path answers 200.
func readable(t *testing.T, base, token, path string) {
	t.Helper()
	testenv.Eventually(t, 60*time.Second, "GET "+path, func() bool {
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})
}

// deadLetterOrder puts a place-order command into the DLQ stream as the
// orders consumer would have after giving up on it.
func deadLetterOrder(t *testing.T, nc *nats.Conn, orderID, customer string) {
	t.Helper()
	ev, err := events.New(events.PlaceOrderV1, "", events.PlaceOrder{OrderID: orderID, CustomerID: customer, Currency: "EUR",
		Lines: []events.OrderLine{{SKU: "SKU-1", Quantity: 1, UnitPrice: 1250}}}, events.WithSource("/tradewind/e2e"))
	if err != nil {
		t.Fatal(err)
	}
	subject, err := events.NATSSubject(ev)
	if err != nil {
		t.Fatal(err)
	}
	m, err := cenats.NewMsg(runner.DeadLetterSubject("orders-commands", subject), ev)
	if err != nil {
		t.Fatal(err)
	}
	m.Header.Del(nats.MsgIdHdr)
	m.Header.Set(runner.HdrDLQConsumer, "orders-commands")
	m.Header.Set(runner.HdrDLQSubject, subject)
	m.Header.Set(runner.HdrDLQStream, broker.StreamCommands)
	m.Header.Set(runner.HdrDLQAttempts, "5")
	m.Header.Set(runner.HdrDLQReason, "e2e: a bug, since fixed")
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
}

// restock gives SKU-1 stock through the gateway (an operator holds every
// scope) and waits until the inventory read model has it.
func restock(t *testing.T, base, token string) {
	t.Helper()
	pos := send(t, base, token, "/v1/inventory/SKU-1/restock", `{"quantity":1000}`)
	readable(t, base, token, "/v1/inventory/SKU-1?after="+pos)
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
