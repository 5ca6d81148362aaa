package ws_test

import (
	"bytes"
	"context"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tradewind/tradewind/internal/auth"
	"github.com/tradewind/tradewind/internal/metrics"
	"github.com/tradewind/tradewind/internal/testenv"
	"github.com/tradewind/tradewind/internal/ws"
)

// The server's pings go out through the send queue and its feed records
// the pongs: of two connections pinged by the same heartbeat, the one
// whose client reads (and so answers) stays, the one whose client never
// reads is dropped.
func TestHeartbeatDropsOnlyThePeerThatDoesNotAnswer(t *testing.T) {
	e := newEnv(t)
	s := e.server(ws.Config{PingInterval: 100 * time.Millisecond, PongTimeout: 2 * time.Second})
	tok, _ := e.token(user(t, "hb"), auth.RoleCustomer)
	silent := connect(t, s.url, tok)
	_ = silent // never reads again: its pongs are never sent
	live := connect(t, s.url, tok)
	readErr := make(chan error, 1)
	frames := make(chan []byte, 16)
	go func() {
		for {
			_, b, err := live.ws.Read(context.Background())
			if err != nil {
				readErr <- err
				return
			}
			frames <- b
		}
	}()
	testenv.Eventually(t, 10*time.Second, "the silent connection dropped", func() bool { return s.Connections() == 1 })
	select {
	case err := <-readErr:
		t.Fatalf("the answering connection was dropped too: %v", err)
	default:
	}
	if err := live.ws.Write(context.Background(), websocket.MessageText, []byte(`{"type":"subscribe","channel":"user","since":0}`)); err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-frames:
		if !bytes.Contains(b, []byte(`"subscribed"`)) {
			t.Fatalf("got %s, want subscribed", b)
		}
	case err := <-readErr:
		t.Fatalf("the answering connection was dropped: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no answer to subscribe")
	}
}

// A client's ping is answered by the feed, once the connection is handed
// over, with no goroutine of the server waiting inside coder/websocket.
func TestClientPingIsAnswered(t *testing.T) {
	e := newEnv(t)
	s := e.server(ws.Config{})
	tok, _ := e.token(user(t, "ping"), auth.RoleCustomer)
	c := connect(t, s.url, tok)
	go func() { _, _, _ = c.ws.Read(context.Background()) }() // the client reads the pong
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.ws.Ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
}

// An idle connection holds no goroutine inside coder/websocket's read
// path (that path needs a 4 KiB stack): only the feed's pump, parked in
// the socket read. readMessages runs while a message waits, then ends.
func TestIdleConnectionsHoldOnlyThePump(t *testing.T) {
	e := newEnv(t)
	s := e.server(ws.Config{})
	const n = 20
	before := testutil.ToFloat64(metrics.WSConnections) // earlier tests' servers have stopped: their connections are counted out
	var clients []*client
	for i := range n {
		tok, _ := e.token(user(t, "idle"), auth.RoleCustomer)
		c := connect(t, s.url, tok)
		c.subscribe("user", 0)
		if f := c.next(); f.Type != "subscribed" {
			t.Fatalf("client %d: got %s", i, f.raw)
		}
		clients = append(clients, c)
	}
	count := func(fn string) int {
		var b strings.Builder
		_ = pprof.Lookup("goroutine").WriteTo(&b, 2)
		k := 0
		for g := range strings.SplitSeq(b.String(), "\n\n") {
			if strings.Contains(g, fn) {
				k++
			}
		}
		return k
	}
	testenv.Eventually(t, 10*time.Second, "no goroutine reading inside coder/websocket", func() bool {
		return count("internal/ws.(*conn).readMessages") == 0
	})
	if got := count("internal/ws.(*feed).pump"); got != n {
		t.Fatalf("%d pumps for %d idle connections", got, n)
	}
	if s.Connections() != n {
		t.Fatalf("%d connections, want %d", s.Connections(), n)
	}
	if got := testutil.ToFloat64(metrics.WSConnections) - before; got != n {
		t.Fatalf("the connections gauge rose by %v, want %d", got, n)
	}
	// Each connection is counted out once, when its pump has ended.
	for _, c := range clients {
		_ = c.ws.Close(websocket.StatusNormalClosure, "")
	}
	testenv.Eventually(t, 10*time.Second, "every connection ended", func() bool { return s.Connections() == 0 })
	if got := testutil.ToFloat64(metrics.WSConnections) - before; got != 0 {
		t.Fatalf("the connections gauge is %v off after every connection ended", got)
	}
	testenv.Eventually(t, 10*time.Second, "no pump left", func() bool { return count("internal/ws.(*feed).pump") == 0 })
}

// A connection whose token expires while it is open is closed with
// CloseAuthFailed (by the watchdog's scan, within a second).
func TestConnectionClosesWhenItsTokenExpires(t *testing.T) {
	e := newEnv(t)
	s := e.server(ws.Config{})
	tok, _, err := auth.Issue(jwtKey, user(t, "exp"), auth.RoleCustomer, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c := connect(t, s.url, tok)
	if code := closeCode(t, c.ws); code != ws.CloseAuthFailed {
		t.Fatalf("close %d, want %d (token expired)", code, ws.CloseAuthFailed)
	}
}

// The periodic revalidation asks the revocation store about each
// connection's session: a revocation that the watch missed (the role's
// watch calls Server.Revoke; here nothing does) still closes the session's
// connections, and only those.
func TestRevalidationClosesARevokedSessionTheWatchMissed(t *testing.T) {
	e := newEnv(t)
	s := e.server(ws.Config{RevalidateEvery: 100 * time.Millisecond})
	u := user(t, "reval")
	tok, claims := e.token(u, auth.RoleCustomer)
	other, _ := e.token(u, auth.RoleCustomer)
	victim := connect(t, s.url, tok)
	bystander := connect(t, s.url, other)
	if err := e.rev.Revoke(context.Background(), claims.ID); err != nil {
		t.Fatal(err)
	}
	if got := closeCode(t, victim.ws); got != ws.CloseRevoked {
		t.Fatalf("close code %d, want %d", got, ws.CloseRevoked)
	}
	bystander.subscribe("user", 0)
	if f := bystander.next(); f.Type != "subscribed" {
		t.Fatalf("bystander got %s", f.raw)
	}
}
