package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"
)

// MinSecretBytes is the shortest accepted HS256 key.
const MinSecretBytes = 32

// Development reports whether this process runs in development mode:
// TRADEWIND_DEV is set, or every address it listens on is a loopback
// address (`make run` on 127.0.0.1). Any other process runs in production
// mode, where Validate requires configured token credentials for the api
// and ws roles and nothing is generated or printed: no token key, no API
// key.
func (c *Config) Development() bool {
	return c.Dev || c.publicListener() == ""
}

// publicListener names the first setting that listens beyond loopback
// ("" when none does): the HTTP address, and the embedded NATS server's
// when there is no external one.
func (c *Config) publicListener() string {
	if !isLoopback(c.HTTPAddr) {
		return "TRADEWIND_HTTP_ADDR " + c.HTTPAddr
	}
	if c.NATSURL == "" && !isLoopback(c.NATSListen) {
		return "TRADEWIND_NATS_LISTEN " + c.NATSListen
	}
	return ""
}

// isLoopback reports whether a host:port listens on loopback only. An
// empty host (all interfaces), a wildcard or a name other than localhost
// is not loopback.
func isLoopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// TokenSecrets are the resolved HS256 keys of user access tokens.
type TokenSecrets struct {
	// Current signs and verifies; nil when none is configured.
	Current []byte
	// Previous only verifies (a rotation in progress); nil when unset.
	Previous []byte
}

// TokenSecrets resolves TRADEWIND_JWT_SECRET / _FILE and the previous
// secret. Errors name the setting, never the secret.
func (c *Config) TokenSecrets() (TokenSecrets, error) {
	var ts TokenSecrets
	var errs []error
	var err error
	if ts.Current, err = secretValue("TRADEWIND_JWT_SECRET", c.JWTSecret, c.JWTSecretFile); err != nil {
		errs = append(errs, err)
	}
	if ts.Previous, err = secretValue("TRADEWIND_JWT_PREVIOUS_SECRET", c.JWTPreviousSecret, c.JWTPreviousSecretFile); err != nil {
		errs = append(errs, err)
	}
	if ts.Previous != nil && ts.Current == nil && len(errs) == 0 {
		errs = append(errs, errors.New("TRADEWIND_JWT_PREVIOUS_SECRET: set only together with TRADEWIND_JWT_SECRET (the new key)"))
	}
	return ts, errors.Join(errs...)
}

// secretValue reads a secret given inline or as a file (one of them).
func secretValue(env, inline, file string) ([]byte, error) {
	switch {
	case inline != "" && file != "":
		return nil, fmt.Errorf("%s and %s_FILE: set one of them, not both", env, env)
	case inline != "":
		if len(inline) < MinSecretBytes {
			return nil, fmt.Errorf("%s: want at least %d bytes, got %d (e.g. openssl rand -base64 48)", env, MinSecretBytes, len(inline))
		}
		return []byte(inline), nil
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("%s_FILE: %w", env, err)
		}
		b = []byte(strings.TrimRight(string(b), "\r\n"))
		if len(b) < MinSecretBytes {
			return nil, fmt.Errorf("%s_FILE %s: want at least %d bytes, got %d (e.g. openssl rand -base64 48 > %s)", env, file, MinSecretBytes, len(b), file)
		}
		return b, nil
	}
	return nil, nil
}

// validateCredentials checks the mode and the token settings.
func (c *Config) validateCredentials() []error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	secrets, err := c.TokenSecrets()
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = append(errs, j.Unwrap()...)
	}
	if strings.TrimSpace(c.JWTAudience) == "" {
		add("TRADEWIND_JWT_AUDIENCE: must not be empty")
	}
	if c.IDPJWKSURL != "" {
		u, err := url.Parse(c.IDPJWKSURL)
		switch {
		case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
			add("TRADEWIND_IDP_JWKS_URL %q: want https://host/path of the identity provider's JWKS", c.IDPJWKSURL)
		case u.Scheme == "http" && !isLoopback(hostPort(u)):
			add("TRADEWIND_IDP_JWKS_URL: want https (plain http only on a loopback address)")
		}
		if strings.TrimSpace(c.IDPIssuer) == "" {
			add("TRADEWIND_IDP_ISSUER: required with TRADEWIND_IDP_JWKS_URL (the iss of your identity provider's tokens)")
		}
		if strings.TrimSpace(c.IDPAudience) == "" {
			add("TRADEWIND_IDP_AUDIENCE: required with TRADEWIND_IDP_JWKS_URL (the aud your identity provider gives Tradewind's tokens)")
		}
		if strings.TrimSpace(c.IDPCustomerClaim) == "" {
			add("TRADEWIND_IDP_CUSTOMER_CLAIM: must not be empty (sub by default)")
		}
	} else if c.IDPIssuer != "" || c.IDPAudience != "" {
		add("TRADEWIND_IDP_ISSUER / TRADEWIND_IDP_AUDIENCE: set TRADEWIND_IDP_JWKS_URL too, or they have no effect")
	}
	if c.IDPJWKSRefresh < 10*time.Second || c.IDPJWKSRefresh > 24*time.Hour {
		add("TRADEWIND_IDP_JWKS_REFRESH: want 10s..24h, got %s", c.IDPJWKSRefresh)
	}
	if !c.Development() && (c.HasRole("api") || c.HasRole("ws")) && secrets.Current == nil && c.IDPJWKSURL == "" {
		add("production mode (%s is not a loopback address): set TRADEWIND_JWT_SECRET_FILE or TRADEWIND_JWT_SECRET "+
			"(%d+ random bytes, the same on every replica) or TRADEWIND_IDP_JWKS_URL; or run with --dev (TRADEWIND_DEV=1) for development",
			c.publicListener(), MinSecretBytes)
	}
	return errs
}

// hostPort gives a URL's host:port, with the scheme's default port.
func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	return net.JoinHostPort(u.Hostname(), "443")
}
