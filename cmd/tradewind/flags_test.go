package main

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tradewind/tradewind/internal/flags"
	"github.com/tradewind/tradewind/internal/testenv"
)

func TestFlagsCommandsChangeWhatInstancesSee(t *testing.T) {
	emb, _, js := testenv.JetStream(t)
	url := "--nats-url=" + emb.URL
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	if _, err := cli(t, "", "flags", "list", url); !errors.Is(err, flags.ErrNoBucket) {
		t.Fatalf("flags list before any serve = %v, want ErrNoBucket", err)
	}
	// A running instance: it creates the bucket and watches it.
	store, err := flags.Open(ctx, js, flags.Options{})
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name      string
		stdin     string
		args      []string
		wantOut   []string
		wantErr   string
		enabled   map[string]bool // customer → store.Enabled("fraud-check", customer) afterwards
		wantError error
	}{
		{name: "empty list", args: []string{"flags", "list"}, wantOut: []string{"no flags"}},
		{name: "set needs something", args: []string{"flags", "set", "fraud-check"}, wantErr: "nothing to set"},
		{name: "one rollout at a time", args: []string{"flags", "set", "fraud-check", "--on", "--percent", "5"}, wantErr: "one of"},
		{name: "percent out of range", args: []string{"flags", "set", "fraud-check", "--percent", "101"}, wantError: flags.ErrInvalidFlag},
		{name: "allow-list only", args: []string{"flags", "set", "fraud-check", "--allow", "c-1,c-2"},
			wantOut: []string{"set fraud-check: off, allow c-1,c-2, deny -"},
			enabled: map[string]bool{"c-1": true, "c-2": true, "c-3": false}},
		{name: "on, lists kept", args: []string{"flags", "set", "fraud-check", "--on", "--deny", "c-2"},
			wantOut: []string{"set fraud-check: on, allow c-1,c-2, deny c-2"},
			enabled: map[string]bool{"c-1": true, "c-2": false, "c-3": true}},
		{name: "percent", args: []string{"flags", "set", "fraud-check", "--percent", "25", "--deny", ""},
			wantOut: []string{"set fraud-check: 25%, allow c-1,c-2, deny -"},
			enabled: map[string]bool{"c-2": true}},
		{name: "list", args: []string{"flags", "list"}, wantOut: []string{"fraud-check", "25%", "c-1,c-2"}},
		{name: "get", args: []string{"flags", "get", "fraud-check"}, wantOut: []string{`"percent": 25`, `"c-1"`}},
		{name: "get unknown", args: []string{"flags", "get", "nope"}, wantError: flags.ErrNotFound},
		{name: "delete refused", stdin: "no\n", args: []string{"flags", "delete", "fraud-check"}, wantError: errNotConfirmed,
			enabled: map[string]bool{"c-1": true}},
		{name: "delete confirmed", stdin: "fraud-check\n", args: []string{"flags", "delete", "fraud-check"},
			wantOut: []string{"deleted fraud-check"}, enabled: map[string]bool{"c-1": false, "c-3": false}},
		{name: "list after delete", args: []string{"flags", "list", "--json"}, wantOut: []string{"[]"}},
	}
	for _, tt := range tests {
		out, err := cli(t, tt.stdin, append(tt.args, url)...)
		switch {
		case tt.wantError != nil:
			if !errors.Is(err, tt.wantError) {
				t.Fatalf("%s: err = %v, want %v", tt.name, err, tt.wantError)
			}
		case tt.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("%s: err = %v, want one containing %q", tt.name, err, tt.wantErr)
			}
		case err != nil:
			t.Fatalf("%s: %v", tt.name, err)
		}
		for _, w := range tt.wantOut {
			if !strings.Contains(out, w) {
				t.Fatalf("%s: output %q lacks %q", tt.name, out, w)
			}
		}
		if err := store.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		for customer, want := range tt.enabled {
			if got := store.Enabled("fraud-check", customer); got != want {
				t.Fatalf("%s: a running instance sees fraud-check = %v for %s, want %v", tt.name, got, customer, want)
			}
		}
	}
}
