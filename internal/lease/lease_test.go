package lease_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradewind/tradewind/internal/lease"
	"github.com/tradewind/tradewind/internal/testenv"
)

const (
	ttl   = 2 * time.Second
	renew = 250 * time.Millisecond
	wait  = 20 * time.Second
)

// ledger records which instance runs which partition's work, and fails the
// test if two run one partition at the same time.
type ledger struct {
	t       *testing.T
	mu      sync.Mutex
	running map[int]string // partition -> instance
	starts  map[string]int // instance -> works started
}

func newLedger(t *testing.T) *ledger {
	return &ledger{t: t, running: map[int]string{}, starts: map[string]int{}}
}

func (l *ledger) work(instance string) lease.Work {
	return func(ctx context.Context, p int) error {
		l.mu.Lock()
		if other, ok := l.running[p]; ok {
			l.t.Errorf("partition %d run by %s while %s runs it", p, instance, other)
		}
		l.running[p] = instance
		l.starts[instance]++
		l.mu.Unlock()
		<-ctx.Done()
		l.mu.Lock()
		delete(l.running, p)
		l.mu.Unlock()
		return nil
	}
}

// counts returns how many partitions each instance runs.
func (l *ledger) counts() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]int{}
	for _, inst := range l.running {
		out[inst]++
	}
	return out
}

func (l *ledger) startsOf(instance string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.starts[instance]
}

// instance is one Keeper on a connection of its own.
type instance struct {
	name   string
	nc     *nats.Conn
	keeper *lease.Keeper
	cancel context.CancelFunc
	done   chan struct{}
}

func start(t *testing.T, url, name string, partitions int, l *ledger) *instance {
	t.Helper()
	nc, js := testenv.Connect(t, url)
	return startOn(t, nc, js, name, partitions, l)
}

func startOn(t *testing.T, nc *nats.Conn, js jetstream.JetStream, name string, partitions int, l *ledger) *instance {
	t.Helper()
	k, err := lease.New(js, lease.Config{Group: "orders", Partitions: partitions, Instance: name, TTL: ttl, Renew: renew,
		Bucket: "test_leases"}, l.work(name))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{name: name, nc: nc, keeper: k, cancel: cancel, done: make(chan struct{})}
	go func() { defer close(in.done); _ = k.Run(ctx) }()
	t.Cleanup(in.stop)
	return in
}

func (in *instance) stop() {
	in.cancel()
	<-in.done
}

func TestOneInstanceTakesEveryPartitionAndKeepsThemPastTheTTL(t *testing.T) {
	nats := testenv.NATS(t)
	l := newLedger(t)
	a := start(t, nats.URL, "a", 4, l)
	testenv.Eventually(t, wait, "a holds the 4 partitions", func() bool { return l.counts()["a"] == 4 })
	// Renewal keeps them: more than a TTL later, a still holds all four
	// with the works it started first (none was lost and taken again).
	deadline := time.Now().Add(2 * ttl)
	testenv.Eventually(t, wait, "two TTLs passed", func() bool { return time.Now().After(deadline) })
	if got := l.counts()["a"]; got != 4 || l.startsOf("a") != 4 || len(a.keeper.Held()) != 4 {
		t.Errorf("after two TTLs a runs %d partitions, started %d works, holds %v; want 4, 4, all", got, l.startsOf("a"), a.keeper.Held())
	}
}

func TestInstancesShareThePartitionsFairly(t *testing.T) {
	nats := testenv.NATS(t)
	l := newLedger(t)
	const partitions = 8
	start(t, nats.URL, "a", partitions, l)
	testenv.Eventually(t, wait, "a alone holds all partitions", func() bool { return l.counts()["a"] == partitions })
	start(t, nats.URL, "b", partitions, l)
	start(t, nats.URL, "c", partitions, l)
	// ceil(8/3) = 3 at most each, every partition run: 3+3+2.
	testenv.Eventually(t, wait, "8 partitions spread 3/3/2 over a, b and c", func() bool {
		c := l.counts()
		total := 0
		for _, inst := range []string{"a", "b", "c"} {
			if c[inst] < 2 || c[inst] > 3 {
				return false
			}
			total += c[inst]
		}
		return total == partitions
	})
}

func TestStoppedInstanceReleasesItsPartitions(t *testing.T) {
	nats := testenv.NATS(t)
	l := newLedger(t)
	const partitions = 4
	a := start(t, nats.URL, "a", partitions, l)
	start(t, nats.URL, "b", partitions, l)
	testenv.Eventually(t, wait, "a and b hold 2 each", func() bool {
		c := l.counts()
		return c["a"] == 2 && c["b"] == 2
	})
	a.stop()
	if n := l.counts()["a"]; n != 0 || len(a.keeper.Held()) != 0 {
		t.Fatalf("a stopped but still runs %d partitions", n)
	}
	// b takes them over well before a's leases would have expired:
	// a deleted them on its way down.
	stopped := time.Now()
	testenv.Eventually(t, wait, "b holds all 4", func() bool { return l.counts()["b"] == partitions })
	if took := time.Since(stopped); took >= ttl {
		t.Errorf("b took a's partitions after %s, not before the TTL (%s): a did not release them", took, ttl)
	}
}

func TestLeaseOfAVanishedInstanceExpiresAndIsTakenOver(t *testing.T) {
	nats := testenv.NATS(t)
	l := newLedger(t)
	const partitions = 4
	ncA, jsA := testenv.Connect(t, nats.URL)
	a := startOn(t, ncA, jsA, "a", partitions, l)
	testenv.Eventually(t, wait, "a holds all 4", func() bool { return l.counts()["a"] == partitions })
	start(t, nats.URL, "b", partitions, l)
	testenv.Eventually(t, wait, "b took its share", func() bool { return l.counts()["b"] == 2 })
	// a loses the broker: it can neither renew nor release. Its works
	// stop at its next renewal; b takes its leases once they expire.
	ncA.Close()
	testenv.Eventually(t, wait, "a stopped its works after failing to renew", func() bool { return l.counts()["a"] == 0 })
	testenv.Eventually(t, wait, "b took over a's expired leases", func() bool { return l.counts()["b"] == partitions })
	if len(a.keeper.Held()) != 0 {
		t.Errorf("a still claims %v", a.keeper.Held())
	}
}

func TestConfigIsValidated(t *testing.T) {
	nats := testenv.NATS(t)
	_, js := testenv.Connect(t, nats.URL)
	work := func(context.Context, int) error { return nil }
	for _, cfg := range []lease.Config{
		{Group: "", Partitions: 2},
		{Group: "orders.x", Partitions: 2},
		{Group: "orders", Partitions: 0},
		{Group: "orders", Partitions: 2, TTL: time.Second, Renew: time.Second},
	} {
		if _, err := lease.New(js, cfg, work); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
	if _, err := lease.New(js, lease.Config{Group: "orders", Partitions: 2}, work); err != nil {
		t.Errorf("defaults refused: %v", err)
	}
}
