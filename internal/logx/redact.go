// Package logx keeps secrets out of logs: a slog.Handler wrapper that
// redacts attributes named like secrets and passwords inside URLs, before
// any line is written.
//
// Invariant: a value logged under a secret-like key (password, token,
// secret, authorization, cookie, api_key, ...) or a URL with a password in
// it never reaches the wrapped handler in clear text, whatever the group
// nesting or the level.
package logx

import (
	"context"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
)

// Redacted replaces a secret value.
const Redacted = "[REDACTED]"

// secretKeys are substrings of attribute keys whose values are secrets.
var secretKeys = []string{"password", "passwd", "secret", "token", "authorization", "cookie", "api_key", "apikey", "private_key", "credential"}

// IsSecretKey reports whether an attribute key names a secret.
func IsSecretKey(key string) bool {
	k := strings.ToLower(key)
	for _, s := range secretKeys {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}

// urlWithPassword finds scheme://user:password@ in free text (error
// messages often quote a connection string).
var urlWithPassword = regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)([^@\s]+)(@)`)

// RedactString masks passwords in URLs embedded in s.
func RedactString(s string) string {
	if !strings.Contains(s, "://") || !strings.Contains(s, "@") {
		return s
	}
	if u, err := url.Parse(s); err == nil && u.User != nil {
		if _, has := u.User.Password(); has {
			return u.Redacted()
		}
	}
	return urlWithPassword.ReplaceAllString(s, "${1}xxxxx${3}")
}

// Redact wraps h so that every record and every attribute added with
// WithAttrs is redacted before h sees it.
func Redact(h slog.Handler) slog.Handler {
	if _, already := h.(*redactor); already {
		return h
	}
	return &redactor{next: h}
}

type redactor struct{ next slog.Handler }

func (r *redactor) Enabled(ctx context.Context, l slog.Level) bool { return r.next.Enabled(ctx, l) }

func (r *redactor) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, RedactString(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(redactAttr(a))
		return true
	})
	return r.next.Handle(ctx, out)
}

func (r *redactor) WithAttrs(attrs []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		red[i] = redactAttr(a)
	}
	return &redactor{next: r.next.WithAttrs(red)}
}

func (r *redactor) WithGroup(name string) slog.Handler {
	return &redactor{next: r.next.WithGroup(name)}
}

func redactAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		g := v.Group()
		out := make([]slog.Attr, len(g))
		for i, ga := range g {
			out[i] = redactAttr(ga)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(out...)}
	}
	if IsSecretKey(a.Key) {
		return slog.String(a.Key, Redacted)
	}
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, RedactString(v.String()))
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			if s := x.Error(); RedactString(s) != s {
				return slog.String(a.Key, RedactString(s))
			}
		case *url.URL:
			if x != nil {
				return slog.String(a.Key, x.Redacted())
			}
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}
