package natsauth

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Credentials directory layout: one file per user, named after the user,
// holding its password (one line), readable by the owner only. The
// embedded server keeps it at <data dir>/nats-credentials;
// `tradewind nats-config` writes one for a deployment, and a k8s Secret
// mounted as a volume has the same shape.
const (
	// DirName is the credentials directory under the data directory.
	DirName  = "nats-credentials"
	dirMode  = 0o700
	fileMode = 0o600
)

// ErrNoPassword is returned when a credentials directory has no file for
// the user.
var ErrNoPassword = errors.New("natsauth: no password for the user")

// Ensure makes sure dir holds a password for every user, generating the
// missing ones (32 random bytes, base64url) and never changing an existing
// one; it returns user → password. Rotating a password is deleting its
// file and running Ensure again (then restarting the server and that
// user's processes).
func Ensure(dir string, users []string) (map[string]string, error) {
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return nil, fmt.Errorf("NATS credentials directory %s: %w", dir, err)
	}
	if err := os.Chmod(dir, dirMode); err != nil {
		return nil, fmt.Errorf("NATS credentials directory %s: %w", dir, err)
	}
	out := make(map[string]string, len(users))
	for _, u := range users {
		pw, err := ReadPassword(dir, u)
		if errors.Is(err, ErrNoPassword) {
			pw, err = newPassword()
			if err == nil {
				err = writeFile(filepath.Join(dir, fileName(u)), []byte(pw+"\n"))
			}
		}
		if err != nil {
			return nil, fmt.Errorf("NATS password of %s: %w", u, err)
		}
		out[u] = pw
	}
	return out, nil
}

// ReadPassword reads a user's password from a credentials directory.
func ReadPassword(dir, user string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, fileName(user)))
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%w %q in %s", ErrNoPassword, user, dir)
	}
	if err != nil {
		return "", fmt.Errorf("NATS password of %s: %w", user, err)
	}
	pw := strings.TrimSpace(string(b))
	if pw == "" {
		return "", fmt.Errorf("NATS password of %s in %s: the file is empty", user, dir)
	}
	return pw, nil
}

// fileName is the user itself: user names are roles, "_"-joined role
// sets, ops and producer-<context>, all safe as file names (and as k8s
// Secret keys).
func fileName(user string) string { return user }

func newPassword() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// writeFile writes atomically with owner-only permissions.
func writeFile(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, fileMode); err != nil {
		return err
	}
	if err := os.Chmod(tmp, fileMode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
