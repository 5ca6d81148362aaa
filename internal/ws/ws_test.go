package ws_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"

	"github.com/tradewind/tradewind/internal/auth"
	"github.com/tradewind/tradewind/internal/ws"
)

func TestAuthentication(t *testing.T) {
	e := newEnv(t)
	s := e.server(ws.Config{AuthTimeout: 300 * time.Millisecond})
	u := user(t, "auth")
	good, _ := e.token(u, auth.RoleCustomer)
	revoked, rc := e.token(u, auth.RoleCustomer)
	if err := e.rev.Revoke(context.Background(), rc.ID); err != nil {
		t.Fatal(err)
	}
	otherKey, _, _ := auth.Issue([]byte("another-key-0123456789abcdef0123"), u, auth.RoleCustomer, time.Minute)

	cases := []struct {
		name     string
		query    string // access_token query parameter
		frame    string // auth frame token ("" sends nothing)
		wantCode websocket.StatusCode
	}{
		{name: "good token in auth frame is accepted", frame: good},
		{name: "good token in access_token is accepted", query: good},
		{name: "token signed with another key is refused", frame: otherKey, wantCode: ws.CloseAuthFailed},
		{name: "garbage token is refused", frame: "not-a-jwt", wantCode: ws.CloseAuthFailed},
		{name: "expired token is refused", frame: expiredToken(t, u), wantCode: ws.CloseAuthFailed},
		{name: "revoked session is refused", frame: revoked, wantCode: ws.CloseRevoked},
		{name: "revoked session in access_token is refused", query: revoked, wantCode: ws.CloseRevoked},
		{name: "no auth frame in time closes", wantCode: ws.CloseAuthFailed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			url := s.url
			if tc.query != "" {
				url += "?access_token=" + tc.query
			}
			c, _, err := dial(t, url, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			cl := &client{t: t, ws: c}
			if tc.frame != "" {
				cl.send(map[string]any{"type": "auth", "token": tc.frame})
			}
			if tc.wantCode == 0 {
				if f := cl.next(); f.Type != "authenticated" || f.UserID != u {
					t.Fatalf("got %s, want authenticated as %s", f.raw, u)
				}
				return
			}
			if got := closeCode(t, c); got != tc.wantCode {
				t.Fatalf("close code %d, want %d", got, tc.wantCode)
			}
		})
	}
}

func TestRevokingASessionClosesItsOpenConnections(t *testing.T) {
	e := newEnv(t)
	s := e.server(ws.Config{})
	u := user(t, "rev")
	tok, claims := e.token(u, auth.RoleCustomer)
	other, _ := e.token(u, auth.RoleCustomer)
	victim := connect(t, s.url, tok)
	bystander := connect(t, s.url, other)
	if err := e.rev.Revoke(context.Background(), claims.ID); err != nil {
		t.Fatal(err)
	}
	s.Revoke(claims.ID) // what the role's revocation watch does
	if got := closeCode(t, victim.ws); got != ws.CloseRevoked {
		t.Fatalf("close code %d, want %d", got, ws.CloseRevoked)
	}
	// The user's other session stays up and keeps receiving.
	bystander.subscribe("user", 0)
	seq := e.notify(u, "")
	if got := bystander.notifications("user", 1); got[0] != seq {
		t.Fatalf("bystander got %v, want %d", got, seq)
	}
}

func TestAuthorization(t *testing.T) {
	e := newEnv(t)
	s := e.server(ws.Config{})
	alice, bob := user(t, "alice"), user(t, "bob")
	aliceOrder, bobOrder := uuid.NewString(), uuid.NewString()
	e.notify(alice, aliceOrder)
	e.notify(bob, bobOrder)
	aliceTok, _ := e.token(alice, auth.RoleCustomer)
	opsTok, _ := e.token(user(t, "op"), auth.RoleOps)

	cases := []struct {
		name    string
		token   string
		channel string
		want    string // "subscribed" or an error code
	}{
		{"own user channel", aliceTok, "user", "subscribed"},
		{"own order", aliceTok, "order." + aliceOrder, "subscribed"},
		{"another user's order", aliceTok, "order." + bobOrder, "forbidden"},
		{"an order nobody has", aliceTok, "order." + uuid.NewString(), "forbidden"},
		{"ops feed without the ops role", aliceTok, "ops.orders", "forbidden"},
		{"ops feed with the ops role", opsTok, "ops.orders", "subscribed"},
		{"another user's personal channel by name", aliceTok, "user." + bob, "unknown_channel"},
		{"malformed order id", aliceTok, "order.../x", "unknown_channel"},
		{"wildcard", aliceTok, "order.>", "unknown_channel"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := connect(t, s.url, tc.token)
			c.subscribe(tc.channel, 0)
			f := c.next()
			got := f.Type
			if f.Type == "error" {
				got = f.Code
			}
			if got != tc.want {
				t.Fatalf("subscribe %s: got %s, want %s", tc.channel, f.raw, tc.want)
			}
		})
	}
	t.Run("own order backfills only its notifications", func(t *testing.T) {
		other := uuid.NewString()
		e.notify(alice, other)
		e.notify(alice, aliceOrder)
		c := connect(t, s.url, aliceTok)
		c.subscribe("order."+aliceOrder, 0)
		if got := c.notifications("order."+aliceOrder, 2); got[0] != 1 || got[1] != 3 {
			t.Fatalf("order backfill seqs %v, want [1 3]", got)
		}
	})
}

func TestBackfillThenLiveHasNoGapAndNoDuplicateUnderConcurrentPublishing(t *testing.T) {
	e := newEnv(t)
	s := e.server(ws.Config{BackfillPage: 7}) // several pages per backfill
	u := user(t, "seam")
	tok, _ := e.token(u, auth.RoleCustomer)
	for range 20 {
		e.notify(u, "")
	}
	const writers, each = 4, 15
	total := int64(20 + writers*each)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for range each {
				e.notify(u, "")
			}
		}()
	}
	// Subscribers join at different moments of the concurrent publishing,
	// each from a different since; every one must see since+1..total once.
	sinces := []int64{0, 5, 20, 33}
	results := make([][]int64, len(sinces))
	var rg sync.WaitGroup
	close(start)
	for i, since := range sinces {
		c := connect(t, s.url, tok)
		c.subscribe("user", since)
		if f := c.next(); f.Type != "subscribed" || f.Since != since {
			t.Fatalf("got %s", f.raw)
		}
		rg.Add(1)
		go func() {
			defer rg.Done()
			results[i] = c.notifications("user", int(total-since))
		}()
		time.Sleep(20 * time.Millisecond)
	}
	wg.Wait()
	rg.Wait()
	for i, since := range sinces {
		wantRun(t, results[i], since+1, total)
	}
}

func TestLostLiveMessageIsFilledFromTheInbox(t *testing.T) {
	e := newEnv(t)
	s := e.server(ws.Config{})
	u := user(t, "gap")
	tok, _ := e.token(u, auth.RoleCustomer)
	c := connect(t, s.url, tok)
	c.subscribe("user", 0)
	c.next() // subscribed
	e.notify(u, "")
	wantRun(t, c.notifications("user", 1), 1, 1)
	// Seq 2 reaches the inbox but its live message is lost; seq 3 arrives
	// live, and the jump makes the server read seq 2 from the inbox.
	if seq := e.notifyLost(u); seq != 2 {
		t.Fatalf("lost seq = %d, want 2", seq)
	}
	e.notify(u, "")
	wantRun(t, c.notifications("user", 2), 2, 3)
}

func TestSlowConsumerIsClosedAndResumesWithoutLoss(t *testing.T) {
	e := newEnv(t)
	s := e.server(ws.Config{QueueSize: 8}, smallBuffers)
	u := user(t, "slow")
	tok, _ := e.token(u, auth.RoleCustomer)
	c, _, err := dial(t, s.url+"?access_token="+tok, smallReadBufferDialer())
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	slow := &client{t: t, ws: c}
	slow.next() // authenticated
	slow.subscribe("user", 0)
	slow.next() // subscribed
	// The client now stops reading while notifications keep coming.
	const n = 300
	for range n {
		e.notify(u, "")
	}
	// Read what was delivered before the close, remembering the last seq,
	// as the TypeScript client does in localStorage.
	var last int64
	var code websocket.StatusCode
	for {
		f, err := slow.read(15 * time.Second)
		if err != nil {
			code = websocket.CloseStatus(err)
			break
		}
		if f.Type == "notification" {
			if f.Seq != last+1 {
				t.Fatalf("before the close: seq %d after %d", f.Seq, last)
			}
			last = f.Seq
		}
	}
	if code != ws.CloseSlowConsumer {
		t.Fatalf("close code %d, want %d (slow consumer)", code, ws.CloseSlowConsumer)
	}
	if last >= n {
		t.Fatalf("every notification was delivered before the close; the test did not make the client slow")
	}
	resumed := connect(t, s.url, tok)
	resumed.subscribe("user", last)
	wantRun(t, resumed.notifications("user", int(n-last)), last+1, n)
}

func TestTwoInstancesBothDeliver(t *testing.T) {
	e := newEnv(t)
	a, b := e.server(ws.Config{}), e.server(ws.Config{})
	u := user(t, "two")
	tok, _ := e.token(u, auth.RoleCustomer)
	ca, cb := connect(t, a.url, tok), connect(t, b.url, tok)
	for _, c := range []*client{ca, cb} {
		c.subscribe("user", 0)
		c.next()
	}
	for range 10 {
		e.notify(u, "")
	}
	wantRun(t, ca.notifications("user", 10), 1, 10)
	wantRun(t, cb.notifications("user", 10), 1, 10)
}

func TestSameNotificationIsTheSameBytesForEverySubscriber(t *testing.T) {
	e := newEnv(t)
	s := e.server(ws.Config{})
	u := user(t, "bytes")
	tok, _ := e.token(u, auth.RoleCustomer)
	c1, c2 := connect(t, s.url, tok), connect(t, s.url, tok)
	for _, c := range []*client{c1, c2} {
		c.subscribe("user", 0)
		c.next()
	}
	// "subscribed" precedes the backfill, so the first notification may
	// reach a client from the inbox; once each has it, both are live.
	e.notify(u, "")
	c1.next()
	c2.next()
	e.notify(u, "")
	f1, f2 := c1.next(), c2.next()
	if string(f1.raw) != string(f2.raw) {
		t.Fatalf("frames differ:\n%s\n%s", f1.raw, f2.raw)
	}
}

func TestGracefulShutdownClosesWithRestartAndRefusesNewConnections(t *testing.T) {
	e := newEnv(t)
	s := e.server(ws.Config{})
	u := user(t, "restart")
	tok, _ := e.token(u, auth.RoleCustomer)
	c := connect(t, s.url, tok)
	c.subscribe("user", 0)
	c.next()
	done := make(chan struct{})
	go func() { s.stop(); close(done) }()
	if got := closeCode(t, c.ws); got != ws.CloseRestart {
		t.Fatalf("close code %d, want %d (restart)", got, ws.CloseRestart)
	}
	<-done
	if _, resp, err := dial(t, s.url, nil); err == nil {
		t.Fatal("a stopped server accepted a connection")
	} else if resp != nil && resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d after shutdown", resp.StatusCode)
	}
}

func TestLimits(t *testing.T) {
	e := newEnv(t)
	s := e.server(ws.Config{MaxConnections: 3, MaxConnectionsPerUser: 2, MaxSubscriptions: 1, MaxFrameBytes: 1024, OriginPatterns: []string{"shop.example.com"}})
	u := user(t, "lim")
	tok, _ := e.token(u, auth.RoleCustomer)
	// Each case needs the instance idle: a connection the client closed
	// still counts until the server has seen it go.
	idle := func(t *testing.T) { testenv_eventually(t, func() bool { return s.Connections() == 0 }) }

	t.Run("connections per user", func(t *testing.T) {
		a, b := connect(t, s.url, tok), connect(t, s.url, tok)
		defer a.ws.CloseNow()
		defer b.ws.CloseNow()
		c, _, err := dial(t, s.url+"?access_token="+tok, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := closeCode(t, c); got != ws.CloseTooManyConnections {
			t.Fatalf("third connection of a user: close %d, want %d", got, ws.CloseTooManyConnections)
		}
	})
	t.Run("connections per instance", func(t *testing.T) {
		idle(t)
		var open []*client
		for i := range 3 {
			tk, _ := e.token(user(t, "many"+string(rune('a'+i))), auth.RoleCustomer)
			open = append(open, connect(t, s.url, tk))
		}
		_, resp, err := dial(t, s.url, nil)
		if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("fourth connection: err %v, resp %v; want 503", err, resp)
		}
		for _, c := range open {
			_ = c.ws.Close(websocket.StatusNormalClosure, "")
		}
		idle(t)
	})
	t.Run("subscriptions per connection", func(t *testing.T) {
		idle(t)
		c := connect(t, s.url, tok)
		defer c.ws.CloseNow()
		c.subscribe("user", 0)
		if f := c.next(); f.Type != "subscribed" {
			t.Fatalf("got %s", f.raw)
		}
		c.subscribe("order."+uuid.NewString(), 0)
		if f := c.next(); f.Code != "too_many_subscriptions" {
			t.Fatalf("got %s, want too_many_subscriptions", f.raw)
		}
	})
	t.Run("frame size", func(t *testing.T) {
		idle(t)
		c := connect(t, s.url, tok)
		defer c.ws.CloseNow()
		big := make([]byte, 2048)
		for i := range big {
			big[i] = 'x'
		}
		c.send(map[string]any{"type": "subscribe", "channel": string(big)})
		if got := closeCode(t, c.ws); got != websocket.StatusMessageTooBig {
			t.Fatalf("close %d, want %d", got, websocket.StatusMessageTooBig)
		}
	})
	t.Run("origin allow-list", func(t *testing.T) {
		idle(t)
		for origin, want := range map[string]int{"https://evil.example.org": http.StatusForbidden, "https://shop.example.com": http.StatusSwitchingProtocols} {
			c, resp, _ := dial(t, s.url, &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {origin}}})
			if c != nil {
				c.CloseNow()
			}
			if resp == nil || resp.StatusCode != want {
				t.Errorf("origin %s: response %v, want %d", origin, resp, want)
			}
		}
	})
	t.Run("protocol violation", func(t *testing.T) {
		c := connect(t, s.url, tok)
		if err := c.ws.Write(context.Background(), websocket.MessageText, []byte("not json")); err != nil {
			t.Fatal(err)
		}
		if got := closeCode(t, c.ws); got != ws.ClosePolicy {
			t.Fatalf("close %d, want %d", got, ws.ClosePolicy)
		}
	})
}

func testenv_eventually(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
