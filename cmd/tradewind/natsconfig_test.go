package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/tradewind/tradewind/internal/natsauth"
	"github.com/tradewind/tradewind/internal/testenv"
)

// TestNATSConfigRunsAServerWithTheUsers: the generated auth.conf, included
// from a server configuration as deploy/nats does, gives a server that
// accepts each user with its password only and enforces its permissions;
// a second run keeps the passwords.
func TestNATSConfigRunsAServerWithTheUsers(t *testing.T) {
	dir := t.TempDir()
	run := func() {
		t.Helper()
		cmd := newRoot()
		cmd.SetArgs([]string{"nats-config", "--out", dir, "--roles-set", "orders,relay"})
		cmd.SetOut(&testWriter{t})
		if err := cmd.Execute(); err != nil {
			t.Fatal(err)
		}
	}
	run()
	creds := filepath.Join(dir, "credentials")
	first, err := natsauth.ReadPassword(creds, "orders_relay")
	if err != nil {
		t.Fatal(err)
	}
	run()
	if again, _ := natsauth.ReadPassword(creds, "orders_relay"); again != first {
		t.Fatal("a second run changed a password")
	}
	for _, f := range []string{"auth.conf", "credentials/ops", "credentials/producer-orders"} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f, st.Mode().Perm())
		}
	}

	conf := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(conf, []byte("listen: 127.0.0.1:-1\ninclude \"auth.conf\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	opts.NoLog, opts.NoSigs = true, true
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(s.Shutdown)
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}

	if _, err := nats.Connect(s.ClientURL(), nats.UserInfo("orders", "wrong")); err == nil {
		t.Fatal("a wrong password was accepted")
	}
	pw, err := natsauth.ReadPassword(creds, natsauth.ProducerPrefix+"orders")
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(s.ClientURL(), natsauth.ClientOptions(natsauth.ProducerPrefix+"orders", pw)...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := nc.Publish("evt.payments.authorized.x", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, "the producer's event publish refused", func() bool {
		err := nc.LastError()
		return errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), "evt.payments.authorized.x")
	})

	// The CLI next to a deployment: NATS_URL without a user plus the
	// credentials directory connects as ops.
	t.Setenv("TRADEWIND_NATS_CREDENTIALS", creds)
	url, err := resolveNATS(s.ClientURL()+","+s.ClientURL(), "")
	if err != nil {
		t.Fatal(err)
	}
	ops, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("the CLI as ops: %v", err)
	}
	defer ops.Close()
	if _, err := ops.SubscribeSync(">"); err != nil {
		t.Fatal(err)
	}
	if err := ops.Flush(); err != nil || ops.LastError() != nil {
		t.Fatalf("ops subscribes to everything: %v %v", err, ops.LastError())
	}
}
