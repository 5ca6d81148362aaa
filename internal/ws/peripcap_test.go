package ws_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/tradewind/tradewind/internal/auth"
	"github.com/tradewind/tradewind/internal/testenv"
	"github.com/tradewind/tradewind/internal/ws"
)

// TestSocketsThatNeverAuthenticateAreCappedPerIP: one address may hold
// MaxAuthenticatingPerIP sockets that have not sent a token; the next is
// refused with 429 before the upgrade. Once one authenticates, its slot
// is free again.
func TestSocketsThatNeverAuthenticateAreCappedPerIP(t *testing.T) {
	e := newEnv(t)
	s := e.server(ws.Config{MaxAuthenticatingPerIP: 2, AuthTimeout: time.Minute})
	a, _, err := dial(t, s.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.CloseNow()
	b, _, err := dial(t, s.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.CloseNow()
	testenv.Eventually(t, 5*time.Second, "two sockets authenticating", func() bool { return s.Authenticating() == 2 })
	c, resp, err := dial(t, s.url, nil)
	if err == nil {
		c.CloseNow()
		t.Fatal("a third unauthenticated socket from the same address was accepted")
	}
	if resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third socket: %v, want 429", resp)
	}
	tok, _ := e.token(user(t, "capped"), auth.RoleCustomer)
	ca := &client{t: t, ws: a}
	ca.send(map[string]any{"type": "auth", "token": tok})
	if f := ca.next(); f.Type != "authenticated" {
		t.Fatalf("after auth got %s", f.raw)
	}
	testenv.Eventually(t, 5*time.Second, "one socket authenticating", func() bool { return s.Authenticating() == 1 })
	d := connect(t, s.url, tok)
	defer d.ws.CloseNow()
}
