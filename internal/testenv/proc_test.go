package testenv

import (
	"net"
	"strconv"
	"testing"
)

// FreeAddr's port is free and, where the kernel says its ephemeral range,
// below it, so no other test's port-0 listener can be handed it.
func TestFreeAddrIsFreeAndBelowTheEphemeralRange(t *testing.T) {
	for range 20 {
		addr := FreeAddr(t)
		_, p, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatal(err)
		}
		port, _ := strconv.Atoi(p)
		if lo := ephemeralLow(); lo > minTestPort+1000 && (port < minTestPort || port >= lo) {
			t.Fatalf("port %d outside [%d, %d)", port, minTestPort, lo)
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("FreeAddr gave %s, which cannot be listened on: %v", addr, err)
		}
		_ = l.Close()
	}
}
