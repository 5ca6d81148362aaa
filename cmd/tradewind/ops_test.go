package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/dlq"
	"github.com/tradewind/tradewind/internal/runner"
	"github.com/tradewind/tradewind/internal/testenv"
)

// cli runs the tradewind command with args and stdin, returning stdout.
func cli(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	root := newRoot()
	var out, errOut bytes.Buffer
	root.SetArgs(args)
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&out)
	root.SetErr(&errOut)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

func TestOperatorCommands(t *testing.T) {
	emb, _, js := testenv.JetStream(t)
	url := "--nats-url=" + emb.URL
	ctx := context.Background()

	if _, err := broker.EnsureConsumer(ctx, js, broker.ConsumerSpec{
		Name: "cli-orders", Stream: broker.StreamCommands, FilterSubjects: []string{"cmd.orders.place"}, MaxDeliver: 3,
	}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := js.Publish(ctx, "cmd.orders.place", []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	m := nats.NewMsg(runner.DeadLetterSubject("cli-orders", "cmd.orders.place"))
	m.Header.Set("ce-id", "ev-1")
	m.Header.Set(runner.HdrDLQConsumer, "cli-orders")
	m.Header.Set(runner.HdrDLQSubject, "cmd.orders.place")
	m.Header.Set(runner.HdrDLQAttempts, "3")
	m.Header.Set(runner.HdrDLQReason, "warehouse rejects\nthe order")
	m.Header.Set(runner.HdrDLQTime, time.Now().UTC().Format(time.RFC3339Nano))
	if _, err := js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		stdin   string
		args    []string
		want    []string
		wantErr error
	}{
		{"consumers", "", []string{"consumers", url}, []string{"cli-orders", "COMMANDS"}, nil},
		{"list", "", []string{"dlq", "list", url}, []string{"cli-orders", "ev-1", "warehouse rejects the order"}, nil},
		{"show", "", []string{"dlq", "show", "1", url}, []string{`"attempts": 3`, `"event_id": "ev-1"`}, nil},
		{"show unknown", "", []string{"dlq", "show", "99", url}, nil, dlq.ErrNotFound},
		{"purge refused", "no\n", []string{"dlq", "purge", url}, nil, errNotConfirmed},
		{"list after refusal", "", []string{"dlq", "list", url}, []string{"ev-1"}, nil},
		{"reset refused", "other\n", []string{"consumers", "reset", "cli-orders", "--to", "1", url}, nil, errNotConfirmed},
		{"reset confirmed", "cli-orders\n", []string{"consumers", "reset", "cli-orders", "--to", "2", url}, []string{"1 pending"}, nil},
		{"replay", "", []string{"dlq", "replay", "1", url}, []string{"replayed 1 (cli-orders, event ev-1) to cmd.orders.place"}, nil},
		{"purge confirmed but empty", "purge\n", []string{"dlq", "purge", url}, []string{"no dead letters"}, nil},
	}
	for _, tt := range tests {
		out, err := cli(t, tt.stdin, tt.args...)
		switch {
		case tt.wantErr != nil:
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("%s: err %v, want %v", tt.name, err, tt.wantErr)
			}
		case err != nil:
			t.Errorf("%s: %v", tt.name, err)
		}
		for _, w := range tt.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: output lacks %q:\n%s", tt.name, w, out)
			}
		}
	}
	// The replay landed on the original subject, without DLQ headers.
	st, err := js.Stream(ctx, broker.StreamCommands)
	if err != nil {
		t.Fatal(err)
	}
	last, err := st.GetLastMsgForSubject(ctx, "cmd.orders.place")
	if err != nil {
		t.Fatal(err)
	}
	if last.Header.Get("ce-id") != "ev-1" || last.Header.Get(runner.HdrDLQReason) != "" {
		t.Errorf("replayed message headers %v", last.Header)
	}
}
