package web_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tradewind/tradewind/internal/auth"
	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/testenv"
	"github.com/tradewind/tradewind/internal/ws"
	"github.com/tradewind/tradewind/web"
)

// verifierAuth authenticates user tokens as the ws role does.
type verifierAuth struct{ v *auth.Verifier }

func (a verifierAuth) Authenticate(ctx context.Context, token string) (ws.Principal, error) {
	c, err := a.v.Verify(ctx, token)
	if err != nil {
		return ws.Principal{}, err
	}
	return ws.Principal{UserID: c.Subject, SessionID: c.ID, ExpiresAt: c.ExpiresAt}, nil
}

// TestDemoWriteEndpointsExistOnlyInDevelopment: outside development mode
// no /demo/* write endpoint is mounted (POST /demo/orders, which published
// a hard-coded price straight to JetStream, is gone in every mode); in
// development POST /demo/seed wants a user token and restocks at most once
// a minute however often it is called.
func TestDemoWriteEndpointsExistOnlyInDevelopment(t *testing.T) {
	_, _, js := testenv.JetStream(t)
	ctx := context.Background()
	rev, err := auth.NewRevocations(ctx, js, 1, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ver, err := auth.NewVerifier([]byte(e2eKey), time.Hour, rev)
	if err != nil {
		t.Fatal(err)
	}
	seed, err := web.NewDemoSeed(verifierAuth{ver}, js)
	if err != nil {
		t.Fatal(err)
	}
	token, _, err := auth.Issue([]byte(e2eKey), "c-demo", auth.RoleCustomer, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	server := func(cfg web.Config) *httptest.Server {
		mux := http.NewServeMux()
		web.Register(mux, cfg)
		srv := httptest.NewServer(mux)
		t.Cleanup(srv.Close)
		return srv
	}
	post := func(srv *httptest.Server, path, bearer string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, nil)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	commands := func() uint64 {
		t.Helper()
		st, err := js.Stream(ctx, broker.StreamCommands)
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}

	minute := func() time.Time { return time.Now().UTC().Truncate(time.Minute) }
	prod := server(web.Config{Seed: seed}) // Dev defaults to false
	began := minute()
	dev := server(web.Config{Dev: true, Seed: seed})
	for _, tc := range []struct {
		name       string
		srv        *httptest.Server
		path, auth string
		want       int
	}{
		{"production: no seed", prod, "/demo/seed", token, http.StatusNotFound},
		{"production: no demo orders", prod, "/demo/orders", token, http.StatusNotFound},
		{"development: no demo orders either", dev, "/demo/orders", token, http.StatusNotFound},
		{"development: the seed wants a token", dev, "/demo/seed", "", http.StatusUnauthorized},
		{"development: a user seeds", dev, "/demo/seed", token, http.StatusAccepted},
		{"development: seeding again the same minute", dev, "/demo/seed", token, http.StatusAccepted},
	} {
		if got := post(tc.srv, tc.path, tc.auth); got != tc.want {
			t.Errorf("%s: POST %s = %d, want %d", tc.name, tc.path, got, tc.want)
		}
	}
	if minute() != began {
		t.Log("a minute boundary passed between the seeds: the count is not checked")
	} else if n := commands(); n != 2 {
		t.Errorf("%d commands on COMMANDS after two seeds in a minute, want 2 (one product upsert, one restock)", n)
	}
	if res, err := http.Get(prod.URL + "/"); err != nil || res.StatusCode != http.StatusOK {
		t.Errorf("the demo page itself is served in production: %v %v", res, err)
	} else {
		res.Body.Close()
	}
}
