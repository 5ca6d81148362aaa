package pgboot

import (
	"net/url"
	"regexp"
	"strings"
)

const redacted = "xxxxx"

var (
	// password=... in a key/value connection string, quoted or not.
	kvPasswordRE = regexp.MustCompile(`(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S*)`)
	// password=... inside a URL query.
	queryPasswordRE = regexp.MustCompile(`(?i)((?:^|&)password=)[^&]*`)
	// scheme://user:password@ in a URL net/url cannot parse (multi-host, ...).
	uriUserinfoRE = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9+.-]*://[^:@/]*):.*@`)
)

// Redact returns the connection string (URL or key/value form) with any
// password replaced by "xxxxx", for logging and error messages.
func Redact(s string) string {
	if !strings.Contains(s, "://") {
		return kvPasswordRE.ReplaceAllString(s, "${1}"+redacted)
	}
	u, err := url.Parse(s)
	if err != nil {
		s = uriUserinfoRE.ReplaceAllString(s, "${1}:"+redacted+"@")
		if i := strings.IndexByte(s, '?'); i >= 0 {
			s = s[:i+1] + queryPasswordRE.ReplaceAllString(s[i+1:], "${1}"+redacted)
		}
		return s
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), redacted)
		}
	}
	u.RawQuery = queryPasswordRE.ReplaceAllString(u.RawQuery, "${1}"+redacted)
	return u.String()
}
