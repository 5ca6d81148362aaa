package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/tradewind/tradewind/internal/config"
)

// TestWebSocketLimitsAreSettings: the WebSocket origin patterns and limits
// are read from the environment (and flags) and validated with the rest.
func TestWebSocketLimitsAreSettings(t *testing.T) {
	t.Setenv("TRADEWIND_WS_ORIGINS", "shop.example.com, *.example.org")
	t.Setenv("TRADEWIND_WS_MAX_AUTHENTICATING_PER_IP", "5")
	var c config.Config
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	c.Bind(fs)
	if err := fs.Parse([]string{"--ws-max-connections=100", "--ws-auth-timeout=2s"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(c.WSOrigins) != 2 || c.WSOrigins[1] != "*.example.org" || c.WSMaxAuthenticatingPerIP != 5 ||
		c.WSMaxConnections != 100 || c.WSAuthTimeout != 2*time.Second || c.WSMaxConnectionsPerUser != 16 {
		t.Errorf("settings not read: %+v", c)
	}

	t.Setenv("TRADEWIND_WS_ORIGINS", "https://shop.example.com/,[")
	t.Setenv("TRADEWIND_WS_MAX_FRAME_BYTES", "0")
	var bad config.Config
	fs = pflag.NewFlagSet("t", pflag.ContinueOnError)
	bad.Bind(fs)
	_ = fs.Parse(nil)
	err := bad.Validate()
	if err == nil {
		t.Fatal("bad WebSocket settings accepted")
	}
	for _, want := range []string{`TRADEWIND_WS_ORIGINS: "https://shop.example.com/"`, `TRADEWIND_WS_ORIGINS: "["`, "TRADEWIND_WS_MAX_FRAME_BYTES"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}
