package testenv

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// FreeAddr returns a loopback host:port nobody listens on right now (a
// process started later may still take it first: use it at once, and
// prefer port 0 with the address read back where the code allows it).
//
// The port is drawn below the kernel's ephemeral range: a port the kernel
// picked for FreeAddr's own probe would be among those it hands out to
// every other test's port-0 listener and outgoing connection, and one of
// them took such a port between FreeAddr and serve once (bind: address
// already in use).
func FreeAddr(t testing.TB) string {
	t.Helper()
	if lo := ephemeralLow(); lo > minTestPort+1000 {
		for range 100 {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", minTestPort+rand.IntN(lo-minTestPort)))
			if err != nil {
				continue // taken: draw again
			}
			defer l.Close()
			return l.Addr().String()
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// minTestPort is the lowest port FreeAddr draws: above the well-known and
// the usual service ports of a development machine.
const minTestPort = 10000

// ephemeralLow is the first port of the kernel's ephemeral range (Linux:
// /proc/sys/net/ipv4/ip_local_port_range), 0 when unknown.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	var lo, hi int
	if _, err := fmt.Sscan(string(b), &lo, &hi); err != nil {
		return 0
	}
	return lo
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
