package testenv

import (
	"net"
	"os/exec"
	"path/filepath"
	"testing"
)

// FreeAddr returns a loopback host:port nobody listens on right now (a
// process started later may still take it first: use it at once).
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// BuildTradewind compiles cmd/tradewind into the test's temporary
// directory and returns the binary's path.
func BuildTradewind(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "tradewind")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/tradewind/tradewind/cmd/tradewind").CombinedOutput()
	if err != nil {
		t.Fatalf("go build tradewind: %v\n%s", err, out)
	}
	return bin
}
