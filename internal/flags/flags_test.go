package flags_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/tradewind/tradewind/internal/flags"
	"github.com/tradewind/tradewind/internal/testenv"
)

// customers are sequential ids, the worst case for a weak hash.
func customers(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("c-%d", i+1)
	}
	return out
}

func TestRolloutReachesItsShareOfCustomers(t *testing.T) {
	t.Parallel()
	const n = 20000
	ids := customers(n)
	for _, percent := range []float64{0, 0.5, 10, 25, 50, 99, 100} {
		t.Run(fmt.Sprint(percent), func(t *testing.T) {
			f := flags.Flag{Name: "share", Percent: percent}
			on := 0
			for _, id := range ids {
				if f.EnabledFor(id) {
					on++
				}
			}
			got := 100 * float64(on) / n
			// 4 standard deviations of a binomial share: fails by chance
			// about once in 15000 runs of a correct hash.
			tol := 4 * 100 * math.Sqrt(percent/100*(1-percent/100)/n)
			if math.Abs(got-percent) > tol {
				t.Fatalf("flag at %v%% is on for %.2f%% of %d customers, want within %.2f", percent, got, n, tol)
			}
		})
	}
}

func TestRolloutIsStableAndOnlyGrows(t *testing.T) {
	t.Parallel()
	ids := customers(5000)
	at25 := flags.Flag{Name: "grow", Percent: 25}
	at50 := flags.Flag{Name: "grow", Percent: 50}
	other := flags.Flag{Name: "other", Percent: 25}
	same := 0
	for _, id := range ids {
		first := at25.EnabledFor(id)
		if at25.EnabledFor(id) != first {
			t.Fatalf("customer %s: two answers from one flag", id)
		}
		if first && !at50.EnabledFor(id) {
			t.Fatalf("customer %s is in the 25%% rollout but not in the 50%% one", id)
		}
		if first == other.EnabledFor(id) {
			same++
		}
	}
	// Independent flags agree on about 25%·25% + 75%·75% = 62.5% of customers.
	if share := float64(same) / float64(len(ids)); share > 0.7 || share < 0.55 {
		t.Fatalf("two flags at 25%% agree on %.1f%% of customers: they pick the same customers", 100*share)
	}
}

func TestAllowAndDenyListsOverrideTheRollout(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		flag     flags.Flag
		customer string
		want     bool
	}{
		{"off, allowed", flags.Flag{Percent: 0, Allow: []string{"c-1"}}, "c-1", true},
		{"off, not allowed", flags.Flag{Percent: 0, Allow: []string{"c-1"}}, "c-2", false},
		{"on, denied", flags.Flag{Percent: 100, Deny: []string{"c-1"}}, "c-1", false},
		{"on, not denied", flags.Flag{Percent: 100, Deny: []string{"c-1"}}, "c-2", true},
		{"deny beats allow", flags.Flag{Percent: 100, Allow: []string{"c-1"}, Deny: []string{"c-1"}}, "c-1", false},
		{"on, no customer", flags.Flag{Percent: 100}, "", true},
		{"partial, no customer", flags.Flag{Percent: 99.99}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.flag.Name = "lists"
			if got := tt.flag.EnabledFor(tt.customer); got != tt.want {
				t.Fatalf("EnabledFor(%q) = %v, want %v", tt.customer, got, tt.want)
			}
		})
	}
}

func TestInvalidFlagsAreRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		flag flags.Flag
	}{
		{"empty name", flags.Flag{Percent: 1}},
		{"name with a space", flags.Flag{Name: "fraud check"}},
		{"name with a wildcard", flags.Flag{Name: "fraud.>"}},
		{"negative percent", flags.Flag{Name: "f", Percent: -1}},
		{"percent above 100", flags.Flag{Name: "f", Percent: 100.5}},
		{"NaN percent", flags.Flag{Name: "f", Percent: math.NaN()}},
		{"empty customer id", flags.Flag{Name: "f", Allow: []string{""}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.flag.Validate(); !errors.Is(err, flags.ErrInvalidFlag) {
				t.Fatalf("Validate() = %v, want ErrInvalidFlag", err)
			}
		})
	}
}

func TestEveryInstanceSeesAFlagChangeLive(t *testing.T) {
	t.Parallel()
	emb := testenv.NATS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Two instances, each with its own connection and watcher.
	_, jsA := testenv.Connect(t, emb.URL)
	_, jsB := testenv.Connect(t, emb.URL)
	a, err := flags.Open(ctx, jsA, flags.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := flags.Open(ctx, jsB, flags.Options{})
	if err != nil {
		t.Fatal(err)
	}
	admin := a.Admin()
	steps := []struct {
		name   string
		change func() error
		want   bool // for customer c-7
	}{
		{"unknown flag is off", func() error { return nil }, false},
		{"turned on", func() error {
			_, _, err := admin.Update(ctx, "beta", func(f *flags.Flag) { f.Percent = 100 })
			return err
		}, true},
		{"denied", func() error {
			_, _, err := admin.Update(ctx, "beta", func(f *flags.Flag) { f.Deny = []string{"c-7"} })
			return err
		}, false},
		{"deny-list cleared, percent kept", func() error {
			_, _, err := admin.Update(ctx, "beta", func(f *flags.Flag) { f.Deny = nil })
			return err
		}, true},
		{"deleted", func() error { return admin.Delete(ctx, "beta") }, false},
	}
	for _, st := range steps {
		if err := st.change(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		for name, s := range map[string]*flags.Store{"writer": a, "other instance": b} {
			if err := s.Sync(ctx); err != nil {
				t.Fatalf("%s: %s: %v", st.name, name, err)
			}
			if got := s.Enabled("beta", "c-7"); got != st.want {
				t.Fatalf("%s: %s sees beta = %v for c-7, want %v", st.name, name, got, st.want)
			}
		}
	}
}

func TestOpenLoadsFlagsWrittenBefore(t *testing.T) {
	t.Parallel()
	_, _, js := testenv.JetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	admin, err := flags.Ensure(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "b", "c"} {
		if _, _, err := admin.Update(ctx, name, func(f *flags.Flag) { f.Percent = 100 }); err != nil {
			t.Fatal(err)
		}
	}
	if err := admin.Delete(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	s, err := flags.Open(ctx, js, flags.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// No Sync: Open returns with the initial values loaded.
	for name, want := range map[string]bool{"a": true, "b": false, "c": true} {
		if got := s.Enabled(name, "c-1"); got != want {
			t.Errorf("%s = %v right after Open, want %v", name, got, want)
		}
	}
	list, err := admin.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Name != "a" || list[1].Name != "c" {
		t.Fatalf("List = %+v, want a and c", list)
	}
	if _, err := admin.Get(ctx, "b"); !errors.Is(err, flags.ErrNotFound) {
		t.Fatalf("Get(deleted) = %v, want ErrNotFound", err)
	}
	if err := admin.Delete(ctx, "b"); !errors.Is(err, flags.ErrNotFound) {
		t.Fatalf("Delete(deleted) = %v, want ErrNotFound", err)
	}
}

func TestConcurrentUpdatesAreNotLost(t *testing.T) {
	t.Parallel()
	emb := testenv.NATS(t)
	_, js := testenv.Connect(t, emb.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	admin, err := flags.Ensure(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	const writers = 5
	errc := make(chan error, writers)
	for i := range writers {
		go func() {
			_, _, err := admin.Update(ctx, "crowd", func(f *flags.Flag) {
				f.Allow = append(f.Allow, fmt.Sprintf("c-%d", i))
			})
			errc <- err
		}()
	}
	for range writers {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	f, err := admin.Get(ctx, "crowd")
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Allow) != writers {
		t.Fatalf("allow-list after %d concurrent additions = %v", writers, f.Allow)
	}
}

func TestExistingRequiresTheBucket(t *testing.T) {
	t.Parallel()
	emb := testenv.NATS(t)
	_, js := testenv.Connect(t, emb.URL)
	if _, err := flags.Existing(context.Background(), js); !errors.Is(err, flags.ErrNoBucket) {
		t.Fatalf("Existing without a bucket = %v, want ErrNoBucket", err)
	}
}

func BenchmarkEnabled(b *testing.B) {
	emb := testenv.NATS(b)
	_, js := testenv.Connect(b, emb.URL)
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel) // before the server stops: the watcher ends quietly
	s, err := flags.Open(ctx, js, flags.Options{})
	if err != nil {
		b.Fatal(err)
	}
	if _, _, err := s.Admin().Update(ctx, "bench", func(f *flags.Flag) { f.Percent = 25; f.Allow = []string{"vip"} }); err != nil {
		b.Fatal(err)
	}
	if err := s.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	ids := customers(1024)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			s.Enabled("bench", ids[i%len(ids)])
			i++
		}
	})
}
