// Package config holds Tradewind's settings: every setting has an
// environment variable and a matching flag (the flag wins), a default next
// to its declaration, and Validate lists every problem at once.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// AllRoles are the roles `serve` can run; the default is all of them.
var AllRoles = []string{"api", "ws", "orders", "inventory", "payments", "notifier", "projections", "relay"}

// DefaultOpsAddr is where /metrics and /readyz listen by default:
// loopback only.
const DefaultOpsAddr = "127.0.0.1:9464"

// Config is the whole configuration of `tradewind serve` and the CLI.
type Config struct {
	NATSURL         string        // NATS_URL: external NATS; empty starts an embedded server
	NATSListen      string        // TRADEWIND_NATS_LISTEN: embedded server's client address
	NATSSync        string        // TRADEWIND_NATS_SYNC: embedded JetStream fsync: "default", "always" or a duration
	NATSUser        string        // TRADEWIND_NATS_USER: NATS user; empty: named after the roles (internal/natsauth)
	NATSCredentials string        // TRADEWIND_NATS_CREDENTIALS: directory of NATS password files (one per user)
	DatabaseURL     string        // DATABASE_URL
	HTTPAddr        string        // TRADEWIND_HTTP_ADDR
	OpsAddr         string        // TRADEWIND_OPS_ADDR: /metrics and /readyz
	DataDir         string        // TRADEWIND_DATA_DIR
	Roles           []string      // TRADEWIND_ROLES
	Replicas        int           // TRADEWIND_STREAM_REPLICAS
	DuplicateWindow time.Duration // TRADEWIND_DUPLICATE_WINDOW
	MaxDeliver      int           // TRADEWIND_MAX_DELIVER
	BatchSize       int           // TRADEWIND_BATCH_SIZE
	OrderDeadline   time.Duration // TRADEWIND_ORDER_DEADLINE
	LogFormat       string        // TRADEWIND_LOG_FORMAT: text or json
	LogLevel        string        // TRADEWIND_LOG_LEVEL: debug, info, warn, error

	// Command gateway (api role).
	APIBodyLimit     int           // TRADEWIND_API_BODY_LIMIT: bytes of a request body
	IdempotencyTTL   time.Duration // TRADEWIND_IDEMPOTENCY_TTL
	RateLimit        int           // TRADEWIND_RATE_LIMIT: requests/s per caller and route class
	RateBurst        int           // TRADEWIND_RATE_BURST
	RateLimitStore   string        // TRADEWIND_RATE_LIMIT_STORE: nats or postgres
	TokenMaxLifetime time.Duration // TRADEWIND_TOKEN_MAX_LIFETIME

	// Mode and user-token credentials (see Development and TokenSecrets).
	Dev                   bool          // TRADEWIND_DEV: development mode even on a non-loopback address
	JWTSecret             string        // TRADEWIND_JWT_SECRET: HS256 key shared by every replica
	JWTSecretFile         string        // TRADEWIND_JWT_SECRET_FILE: the same, read from a file (compose/k8s secrets)
	JWTPreviousSecret     string        // TRADEWIND_JWT_PREVIOUS_SECRET: still verified, never signs (rotation)
	JWTPreviousSecretFile string        // TRADEWIND_JWT_PREVIOUS_SECRET_FILE
	JWTAudience           string        // TRADEWIND_JWT_AUDIENCE: aud of Tradewind's own tokens
	IDPJWKSURL            string        // TRADEWIND_IDP_JWKS_URL: the identity provider's key set (RS256/ES256)
	IDPIssuer             string        // TRADEWIND_IDP_ISSUER: required iss of its tokens
	IDPAudience           string        // TRADEWIND_IDP_AUDIENCE: required aud of its tokens
	IDPCustomerClaim      string        // TRADEWIND_IDP_CUSTOMER_CLAIM: the claim naming the customer
	IDPJWKSRefresh        time.Duration // TRADEWIND_IDP_JWKS_REFRESH: key set refresh period
	// WebSocket fan-out (ws role): ws.Config.
	WSOrigins                []string      // TRADEWIND_WS_ORIGINS: Origin hosts allowed besides the server's own
	WSAuthTimeout            time.Duration // TRADEWIND_WS_AUTH_TIMEOUT
	WSMaxConnections         int           // TRADEWIND_WS_MAX_CONNECTIONS: per instance
	WSMaxConnectionsPerUser  int           // TRADEWIND_WS_MAX_CONNECTIONS_PER_USER
	WSMaxAuthenticatingPerIP int           // TRADEWIND_WS_MAX_AUTHENTICATING_PER_IP
	WSMaxSubscriptions       int           // TRADEWIND_WS_MAX_SUBSCRIPTIONS: per connection
	WSMaxFrameBytes          int           // TRADEWIND_WS_MAX_FRAME_BYTES: largest client frame

	// Order saga (orders, inventory, payments roles).
	PaymentURL             string        // TRADEWIND_PAYMENT_URL: payment provider; empty starts the simulator in-process
	PaymentTimeout         time.Duration // TRADEWIND_PAYMENT_TIMEOUT: one provider request
	PaymentBreakerCooldown time.Duration // TRADEWIND_PAYMENT_BREAKER_COOLDOWN: how long the breaker stays open
	ProviderListen         string        // TRADEWIND_PROVIDER_LISTEN: in-process simulator's address
	DeadlineSweep          time.Duration // TRADEWIND_DEADLINE_SWEEP: period of the order deadline sweeper
	Partitions             int           // TRADEWIND_PARTITIONS: event partitions of the saga roles (1: none)
	PartitionLeaseTTL      time.Duration // TRADEWIND_PARTITION_LEASE_TTL: life of an unrenewed partition lease

	// Tracing (internal/tracing).
	OTLPEndpoint    string // OTEL_EXPORTER_OTLP_ENDPOINT: OTLP/HTTP collector; empty: tracing off
	OTELServiceName string // OTEL_SERVICE_NAME: service.name of the spans

	envErrs []error
}

// Setting documents one configuration knob (docs/configuration.md is
// generated from the same list by a test).
type Setting struct {
	Env, Flag, Default, Help string
}

// Bind registers every setting on fs with defaults taken from the
// environment. Call Validate after fs.Parse.
func (c *Config) Bind(fs *pflag.FlagSet) {
	b := binder{fs: fs, c: c}
	b.str(&c.NATSURL, "NATS_URL", "nats-url", "", "NATS server URL; empty starts an embedded NATS JetStream server")
	b.str(&c.NATSListen, "TRADEWIND_NATS_LISTEN", "nats-listen", "127.0.0.1:4222", "embedded NATS client address (port taken: a free port is used)")
	b.str(&c.NATSSync, "TRADEWIND_NATS_SYNC", "nats-sync", "default", `embedded JetStream fsync: "default" (server's 2m interval), "always", or an interval like 1s`)
	b.str(&c.NATSUser, "TRADEWIND_NATS_USER", "nats-user", "", `NATS user this process connects as; empty: its roles' user (one role: the role, all roles: "tradewind", else e.g. "orders_relay")`)
	b.str(&c.NATSCredentials, "TRADEWIND_NATS_CREDENTIALS", "nats-credentials", "", "directory holding the NATS user's password in a file named after the user (`tradewind nats-config` writes it; a mounted k8s Secret has the same shape); empty: NATS_URL's user:password, or with the embedded server <data dir>/nats-credentials")
	b.str(&c.DatabaseURL, "DATABASE_URL", "database-url", "", "PostgreSQL URL; empty tries localhost:5432, then a throwaway cluster")
	b.str(&c.HTTPAddr, "TRADEWIND_HTTP_ADDR", "http-addr", "127.0.0.1:8080", "HTTP listen address (API, WebSocket, /healthz)")
	b.str(&c.OpsAddr, "TRADEWIND_OPS_ADDR", "ops-addr", DefaultOpsAddr, "operator listen address: /metrics, /readyz, /debug/pprof/ (keep it off the public network; default port taken: a free port is used)")
	b.str(&c.DataDir, "TRADEWIND_DATA_DIR", "data-dir", "./.tradewind", "local state: embedded NATS store, throwaway PostgreSQL, state file")
	b.list(&c.Roles, "TRADEWIND_ROLES", "roles", AllRoles, "roles to run in this process")
	b.int(&c.Replicas, "TRADEWIND_STREAM_REPLICAS", "stream-replicas", 1, "JetStream stream replicas (3 on a cluster)")
	b.dur(&c.DuplicateWindow, "TRADEWIND_DUPLICATE_WINDOW", "duplicate-window", 2*time.Minute, "JetStream duplicate window (Nats-Msg-Id dedupe)")
	b.int(&c.MaxDeliver, "TRADEWIND_MAX_DELIVER", "max-deliver", 5, "delivery attempts before a message is dead-lettered")
	b.int(&c.BatchSize, "TRADEWIND_BATCH_SIZE", "batch-size", 100, "messages per consumer transaction")
	b.dur(&c.OrderDeadline, "TRADEWIND_ORDER_DEADLINE", "order-deadline", 30*time.Second, "time an order has to be confirmed")
	b.str(&c.LogFormat, "TRADEWIND_LOG_FORMAT", "log-format", "text", "log format: text or json")
	b.str(&c.LogLevel, "TRADEWIND_LOG_LEVEL", "log-level", "info", "log level: debug, info, warn, error")
	b.int(&c.APIBodyLimit, "TRADEWIND_API_BODY_LIMIT", "api-body-limit", 1<<20, "largest command request body in bytes (larger: 413)")
	b.dur(&c.IdempotencyTTL, "TRADEWIND_IDEMPOTENCY_TTL", "idempotency-ttl", 24*time.Hour, "how long an Idempotency-Key and its response are kept")
	b.int(&c.RateLimit, "TRADEWIND_RATE_LIMIT", "rate-limit", 100, "default requests per second per caller and route class, shared by all gateways")
	b.int(&c.RateBurst, "TRADEWIND_RATE_BURST", "rate-burst", 200, "default burst per caller and route class")
	b.str(&c.RateLimitStore, "TRADEWIND_RATE_LIMIT_STORE", "rate-limit-store", "nats", "where shared rate limit state lives: nats (KV) or postgres")
	b.dur(&c.TokenMaxLifetime, "TRADEWIND_TOKEN_MAX_LIFETIME", "token-max-lifetime", 24*time.Hour, "longest accepted access token lifetime (revocations are kept this long)")
	b.bool(&c.Dev, "TRADEWIND_DEV", "dev", false, "development mode on any address: a generated token key and a printed all-scope API key (never in production); without it, a non-loopback listen address means production mode")
	b.secret(&c.JWTSecret, "TRADEWIND_JWT_SECRET", "jwt-secret", "HS256 key (32+ bytes) of user access tokens, the same on every replica; required in production unless TRADEWIND_IDP_JWKS_URL is set (prefer TRADEWIND_JWT_SECRET_FILE)")
	b.str(&c.JWTSecretFile, "TRADEWIND_JWT_SECRET_FILE", "jwt-secret-file", "", "file holding TRADEWIND_JWT_SECRET (a compose or Kubernetes secret); trailing newline ignored")
	b.secret(&c.JWTPreviousSecret, "TRADEWIND_JWT_PREVIOUS_SECRET", "jwt-previous-secret", "the previous HS256 key during a rotation: tokens it signed are still accepted, nothing new is signed with it")
	b.str(&c.JWTPreviousSecretFile, "TRADEWIND_JWT_PREVIOUS_SECRET_FILE", "jwt-previous-secret-file", "", "file holding TRADEWIND_JWT_PREVIOUS_SECRET")
	b.str(&c.JWTAudience, "TRADEWIND_JWT_AUDIENCE", "jwt-audience", "tradewind", "aud claim Tradewind's own HS256 tokens must carry")
	b.str(&c.IDPJWKSURL, "TRADEWIND_IDP_JWKS_URL", "idp-jwks-url", "", "JWKS URL of your identity provider: its RS256/ES256 user tokens are accepted too (https; http only on loopback)")
	b.str(&c.IDPIssuer, "TRADEWIND_IDP_ISSUER", "idp-issuer", "", "iss the identity provider's tokens must carry (required with TRADEWIND_IDP_JWKS_URL)")
	b.str(&c.IDPAudience, "TRADEWIND_IDP_AUDIENCE", "idp-audience", "", "aud the identity provider's tokens must carry (required with TRADEWIND_IDP_JWKS_URL)")
	b.str(&c.IDPCustomerClaim, "TRADEWIND_IDP_CUSTOMER_CLAIM", "idp-customer-claim", "sub", "claim of the identity provider's tokens that holds the customer id (a top-level string claim)")
	b.dur(&c.IDPJWKSRefresh, "TRADEWIND_IDP_JWKS_REFRESH", "idp-jwks-refresh", 15*time.Minute, "how often the identity provider's key set is fetched again (an unknown key id fetches it at once)")
	b.list(&c.WSOrigins, "TRADEWIND_WS_ORIGINS", "ws-origins", nil, "WebSocket: Origin hosts allowed besides the server's own (patterns like shop.example.com, *.example.com); clients sending no Origin are allowed")
	b.dur(&c.WSAuthTimeout, "TRADEWIND_WS_AUTH_TIMEOUT", "ws-auth-timeout", 5*time.Second, "WebSocket: time a client has to authenticate")
	b.int(&c.WSMaxConnections, "TRADEWIND_WS_MAX_CONNECTIONS", "ws-max-connections", 10000, "WebSocket: connections per instance, authenticating ones included (more: 503)")
	b.int(&c.WSMaxConnectionsPerUser, "TRADEWIND_WS_MAX_CONNECTIONS_PER_USER", "ws-max-connections-per-user", 16, "WebSocket: connections per user and instance")
	b.int(&c.WSMaxAuthenticatingPerIP, "TRADEWIND_WS_MAX_AUTHENTICATING_PER_IP", "ws-max-authenticating-per-ip", 64, "WebSocket: connections one remote IP may hold before they authenticate (more: 429)")
	b.int(&c.WSMaxSubscriptions, "TRADEWIND_WS_MAX_SUBSCRIPTIONS", "ws-max-subscriptions", 16, "WebSocket: subscriptions per connection")
	b.int(&c.WSMaxFrameBytes, "TRADEWIND_WS_MAX_FRAME_BYTES", "ws-max-frame-bytes", 4096, "WebSocket: largest client frame in bytes (larger closes 1009)")
	b.str(&c.PaymentURL, "TRADEWIND_PAYMENT_URL", "payment-url", "", "payment provider base URL; empty starts the payment provider simulator in-process")
	b.dur(&c.PaymentTimeout, "TRADEWIND_PAYMENT_TIMEOUT", "payment-timeout", 2*time.Second, "timeout of one payment provider request")
	b.dur(&c.PaymentBreakerCooldown, "TRADEWIND_PAYMENT_BREAKER_COOLDOWN", "payment-breaker-cooldown", 5*time.Second, "how long the payment circuit breaker stays open before a trial request (messages wait this long)")
	b.str(&c.ProviderListen, "TRADEWIND_PROVIDER_LISTEN", "provider-listen", "127.0.0.1:8090", "in-process payment provider simulator address (port taken: a free port is used)")
	b.dur(&c.DeadlineSweep, "TRADEWIND_DEADLINE_SWEEP", "deadline-sweep", time.Second, "how often overdue pending orders are cancelled (reason timeout)")
	b.int(&c.Partitions, "TRADEWIND_PARTITIONS", "partitions", 1, "saga scale-out: the saga roles' events are split by order (aggregate) id into this many partitions, each consumed by one instance of a role at a time, which takes it through a lease (1: no partitions, every instance shares one consumer per role); the same on every process")
	b.dur(&c.PartitionLeaseTTL, "TRADEWIND_PARTITION_LEASE_TTL", "partition-lease-ttl", 15*time.Second, "how long a partition's lease outlives its instance's last renewal (renewed every third of it); a crashed instance's partitions are taken over after it")
	b.str(&c.OTLPEndpoint, "OTEL_EXPORTER_OTLP_ENDPOINT", "otel-endpoint", "", "OpenTelemetry collector base URL (OTLP/HTTP, spans go to <url>/v1/traces); empty: tracing off, at no cost")
	b.str(&c.OTELServiceName, "OTEL_SERVICE_NAME", "otel-service-name", "tradewind", "service.name of the exported spans")
}

// Settings lists every setting Bind registers.
func Settings() []Setting {
	var c Config
	fs := pflag.NewFlagSet("settings", pflag.ContinueOnError)
	c.Bind(fs)
	var out []Setting
	fs.VisitAll(func(f *pflag.Flag) {
		env := f.Annotations["env"]
		if len(env) == 0 {
			return
		}
		out = append(out, Setting{Env: env[0], Flag: "--" + f.Name, Default: f.DefValue, Help: f.Usage})
	})
	return out
}

// Validate returns every problem at once, each naming what to set.
func (c *Config) Validate() error {
	errs := slices.Clone(c.envErrs)
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.NATSURL != "" {
		if u, err := url.Parse(c.NATSURL); err != nil || u.Host == "" {
			add("NATS_URL %q: want nats://host:port", c.NATSURL)
		}
	}
	if _, _, err := net.SplitHostPort(c.NATSListen); err != nil {
		add("TRADEWIND_NATS_LISTEN %q: want host:port", c.NATSListen)
	}
	if _, _, err := c.SyncSetting(); err != nil {
		add("TRADEWIND_NATS_SYNC: %v", err)
	}
	if c.DatabaseURL != "" {
		if u, err := url.Parse(c.DatabaseURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			add("DATABASE_URL: want postgres://user@host:port/db")
		}
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		add("TRADEWIND_HTTP_ADDR %q: want host:port", c.HTTPAddr)
	}
	if _, _, err := net.SplitHostPort(c.OpsAddr); err != nil {
		add("TRADEWIND_OPS_ADDR %q: want host:port", c.OpsAddr)
	}
	if strings.TrimSpace(c.DataDir) == "" {
		add("TRADEWIND_DATA_DIR: must not be empty")
	}
	if len(c.Roles) == 0 {
		add("TRADEWIND_ROLES: at least one role is required (%s)", strings.Join(AllRoles, ","))
	}
	for _, r := range c.Roles {
		if !slices.Contains(AllRoles, r) {
			add("TRADEWIND_ROLES: unknown role %q (known: %s)", r, strings.Join(AllRoles, ","))
		}
	}
	if c.Replicas != 1 && c.Replicas != 3 && c.Replicas != 5 {
		add("TRADEWIND_STREAM_REPLICAS: want 1, 3 or 5, got %d", c.Replicas)
	}
	if c.DuplicateWindow < time.Second {
		add("TRADEWIND_DUPLICATE_WINDOW: want at least 1s, got %s", c.DuplicateWindow)
	}
	if c.MaxDeliver < 1 || c.MaxDeliver > 1000 {
		add("TRADEWIND_MAX_DELIVER: want 1..1000, got %d", c.MaxDeliver)
	}
	if c.Partitions < 1 || c.Partitions > 256 {
		add("TRADEWIND_PARTITIONS: want 1..256, got %d", c.Partitions)
	}
	if c.PartitionLeaseTTL < time.Second || c.PartitionLeaseTTL > 10*time.Minute {
		add("TRADEWIND_PARTITION_LEASE_TTL: want 1s..10m, got %s", c.PartitionLeaseTTL)
	}
	if c.BatchSize < 1 || c.BatchSize > 10000 {
		add("TRADEWIND_BATCH_SIZE: want 1..10000, got %d", c.BatchSize)
	}
	if c.OrderDeadline < time.Second {
		add("TRADEWIND_ORDER_DEADLINE: want at least 1s, got %s", c.OrderDeadline)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		add("TRADEWIND_LOG_FORMAT: want text or json, got %q", c.LogFormat)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		add("TRADEWIND_LOG_LEVEL: want debug, info, warn or error, got %q", c.LogLevel)
	}
	if c.APIBodyLimit < 1024 || c.APIBodyLimit > 64<<20 {
		add("TRADEWIND_API_BODY_LIMIT: want 1024..67108864 bytes, got %d", c.APIBodyLimit)
	}
	if c.IdempotencyTTL < time.Minute {
		add("TRADEWIND_IDEMPOTENCY_TTL: want at least 1m, got %s", c.IdempotencyTTL)
	}
	if c.RateLimit < 1 || c.RateBurst < 1 || c.RateBurst > 3600*c.RateLimit {
		add("TRADEWIND_RATE_LIMIT / TRADEWIND_RATE_BURST: want both at least 1 and burst at most 3600 x limit, got %d and %d", c.RateLimit, c.RateBurst)
	}
	if c.RateLimitStore != "nats" && c.RateLimitStore != "postgres" {
		add("TRADEWIND_RATE_LIMIT_STORE: want nats or postgres, got %q", c.RateLimitStore)
	}
	errs = append(errs, c.validateCredentials()...)
	if c.TokenMaxLifetime < time.Minute {
		add("TRADEWIND_TOKEN_MAX_LIFETIME: want at least 1m, got %s", c.TokenMaxLifetime)
	}
	for _, o := range c.WSOrigins {
		if _, err := path.Match(o, ""); err != nil || strings.Contains(o, "/") {
			add("TRADEWIND_WS_ORIGINS: %q is not a host pattern (want e.g. shop.example.com or *.example.com)", o)
		}
	}
	if c.WSAuthTimeout < 100*time.Millisecond || c.WSAuthTimeout > time.Minute {
		add("TRADEWIND_WS_AUTH_TIMEOUT: want 100ms..1m, got %s", c.WSAuthTimeout)
	}
	for _, l := range []struct {
		env    string
		v, max int
	}{
		{"TRADEWIND_WS_MAX_CONNECTIONS", c.WSMaxConnections, 1_000_000},
		{"TRADEWIND_WS_MAX_CONNECTIONS_PER_USER", c.WSMaxConnectionsPerUser, 10_000},
		{"TRADEWIND_WS_MAX_AUTHENTICATING_PER_IP", c.WSMaxAuthenticatingPerIP, 1_000_000},
		{"TRADEWIND_WS_MAX_SUBSCRIPTIONS", c.WSMaxSubscriptions, 10_000},
		{"TRADEWIND_WS_MAX_FRAME_BYTES", c.WSMaxFrameBytes, 1 << 20},
	} {
		if l.v < 1 || l.v > l.max {
			add("%s: want 1..%d, got %d", l.env, l.max, l.v)
		}
	}
	if c.PaymentURL != "" {
		if u, err := url.Parse(c.PaymentURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("TRADEWIND_PAYMENT_URL %q: want http(s)://host:port", c.PaymentURL)
		}
	}
	if c.PaymentTimeout < 10*time.Millisecond || c.PaymentTimeout > time.Minute {
		add("TRADEWIND_PAYMENT_TIMEOUT: want 10ms..1m, got %s", c.PaymentTimeout)
	}
	if c.PaymentBreakerCooldown < 10*time.Millisecond || c.PaymentBreakerCooldown > 10*time.Minute {
		add("TRADEWIND_PAYMENT_BREAKER_COOLDOWN: want 10ms..10m, got %s", c.PaymentBreakerCooldown)
	}
	if _, _, err := net.SplitHostPort(c.ProviderListen); err != nil {
		add("TRADEWIND_PROVIDER_LISTEN %q: want host:port", c.ProviderListen)
	}
	if c.DeadlineSweep < 10*time.Millisecond || c.DeadlineSweep > time.Minute {
		add("TRADEWIND_DEADLINE_SWEEP: want 10ms..1m, got %s", c.DeadlineSweep)
	}
	if c.OTLPEndpoint != "" {
		if u, err := url.Parse(c.OTLPEndpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("OTEL_EXPORTER_OTLP_ENDPOINT %q: want http(s)://host:port of an OTLP/HTTP collector", c.OTLPEndpoint)
		}
	}
	if strings.TrimSpace(c.OTELServiceName) == "" {
		add("OTEL_SERVICE_NAME: must not be empty")
	}
	if len(errs) == 0 {
		return nil
	}
	return &Error{Problems: errs}
}

// Error lists every configuration problem.
type Error struct{ Problems []error }

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "invalid configuration (%d problems):", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  - " + p.Error())
	}
	return b.String()
}

// HasRole reports whether this process runs role.
func (c *Config) HasRole(role string) bool { return slices.Contains(c.Roles, role) }

// SyncSetting parses NATSSync into the embedded server's fsync settings.
func (c *Config) SyncSetting() (interval time.Duration, always bool, err error) {
	switch c.NATSSync {
	case "", "default":
		return 0, false, nil
	case "always":
		return 0, true, nil
	}
	d, err := time.ParseDuration(c.NATSSync)
	if err != nil || d <= 0 {
		return 0, false, fmt.Errorf(`want "default", "always" or a positive duration, got %q`, c.NATSSync)
	}
	return d, false, nil
}

type binder struct {
	fs *pflag.FlagSet
	c  *Config
}

func (b binder) annotate(flag, env string) {
	_ = b.fs.SetAnnotation(flag, "env", []string{env})
}

func (b binder) str(p *string, env, flag, def, help string) {
	if v, ok := os.LookupEnv(env); ok {
		def = v
	}
	b.fs.StringVar(p, flag, def, help+" (env "+env+")")
	b.annotate(flag, env)
}

// secret binds a setting whose value must never be shown: the
// environment's value is not the flag's displayed default, so neither
// --help nor the generated docs can print it.
func (b binder) secret(p *string, env, flag, help string) {
	b.fs.StringVar(p, flag, "", help+" (env "+env+")")
	if v, ok := os.LookupEnv(env); ok {
		*p = v
	}
	b.annotate(flag, env)
}

func (b binder) bool(p *bool, env, flag string, def bool, help string) {
	if v, ok := os.LookupEnv(env); ok && v != "" {
		x, err := strconv.ParseBool(v)
		if err != nil {
			b.c.envErrs = append(b.c.envErrs, fmt.Errorf("%s %q: want 1/true or 0/false", env, v))
		} else {
			def = x
		}
	}
	b.fs.BoolVar(p, flag, def, help+" (env "+env+")")
	b.annotate(flag, env)
}

func (b binder) list(p *[]string, env, flag string, def []string, help string) {
	if v, ok := os.LookupEnv(env); ok {
		def = splitList(v)
	}
	b.fs.StringSliceVar(p, flag, def, help+" (env "+env+")")
	b.annotate(flag, env)
}

func (b binder) int(p *int, env, flag string, def int, help string) {
	if v, ok := os.LookupEnv(env); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			b.c.envErrs = append(b.c.envErrs, fmt.Errorf("%s %q: not an integer", env, v))
		} else {
			def = n
		}
	}
	b.fs.IntVar(p, flag, def, help+" (env "+env+")")
	b.annotate(flag, env)
}

func (b binder) dur(p *time.Duration, env, flag string, def time.Duration, help string) {
	if v, ok := os.LookupEnv(env); ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.c.envErrs = append(b.c.envErrs, fmt.Errorf("%s %q: not a duration (e.g. 30s, 2m)", env, v))
		} else {
			def = d
		}
	}
	b.fs.DurationVar(p, flag, def, help+" (env "+env+")")
	b.annotate(flag, env)
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// ErrNoSystem is returned by CLI commands that found neither a URL nor a
// running system's state file.
var ErrNoSystem = errors.New("no running Tradewind found: start one with `make run` (or `tradewind serve`), or set NATS_URL / DATABASE_URL")
