package logx_test

import (
	"bytes"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"testing"

	"github.com/tradewind/tradewind/internal/logx"
)

func TestSecretsNeverReachTheLog(t *testing.T) {
	u, _ := url.Parse("postgres://app:hunter2@db:5432/tradewind")
	tests := []struct {
		name string
		log  func(l *slog.Logger)
		want string // must appear (the non-secret part)
	}{
		{"secret key", func(l *slog.Logger) { l.Info("x", "api_token", "hunter2") }, "api_token=[REDACTED]"},
		{"password key", func(l *slog.Logger) { l.Info("x", "DB_PASSWORD", "hunter2") }, "DB_PASSWORD=[REDACTED]"},
		{"authorization header", func(l *slog.Logger) { l.Info("x", "Authorization", "Bearer hunter2") }, "Authorization=[REDACTED]"},
		{"url string", func(l *slog.Logger) { l.Info("x", "url", u.String()) }, "app:xxxxx@db"},
		{"url value", func(l *slog.Logger) { l.Info("x", "url", u) }, "app:xxxxx@db"},
		{"error quoting a dsn", func(l *slog.Logger) {
			l.Error("x", "err", errors.New("connect postgres://app:hunter2@db/x: refused"))
		}, "app:xxxxx@db"},
		{"message", func(l *slog.Logger) { l.Info("dial postgres://app:hunter2@db/x") }, "app:xxxxx@db"},
		{"group", func(l *slog.Logger) { l.Info("x", slog.Group("req", "cookie", "hunter2", "path", "/a")) }, "req.path=/a"},
		{"with attrs", func(l *slog.Logger) { l.With("secret", "hunter2").Info("x") }, "secret=[REDACTED]"},
		{"with group then attrs", func(l *slog.Logger) { l.WithGroup("g").With("token", "hunter2").Info("x") }, "g.token=[REDACTED]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			l := slog.New(logx.Redact(slog.NewTextHandler(&buf, nil)))
			tt.log(l)
			out := buf.String()
			if strings.Contains(out, "hunter2") {
				t.Errorf("secret logged: %s", out)
			}
			if !strings.Contains(out, tt.want) {
				t.Errorf("log %q lacks %q", out, tt.want)
			}
		})
	}
}

func TestOrdinaryValuesAreUntouched(t *testing.T) {
	for _, s := range []string{"nats://127.0.0.1:4222", "postgres://app@db/x", "plain text", "user@example.com"} {
		if got := logx.RedactString(s); got != s {
			t.Errorf("RedactString(%q) = %q", s, got)
		}
	}
}
