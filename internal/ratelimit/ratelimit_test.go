package ratelimit_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradewind/tradewind/internal/ratelimit"
	"github.com/tradewind/tradewind/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestBucketAdmitsBurstThenRate(t *testing.T) {
	lim := ratelimit.Limit{Rate: 10, Burst: 3} // one every 100ms
	t0 := time.Unix(1_000_000, 0)
	steps := []struct {
		at        time.Duration
		allowed   bool
		remaining int
	}{
		{0, true, 2},
		{0, true, 1},
		{0, true, 0},
		{0, false, 0},
		{50 * time.Millisecond, false, 0},
		{100 * time.Millisecond, true, 0},
		{100 * time.Millisecond, false, 0},
		{time.Second, true, 2}, // idle long enough: full again
	}
	s := ratelimit.NewLocal()
	for i, st := range steps {
		d, err := s.Take(context.Background(), "b", t0.Add(st.at), lim)
		if err != nil {
			t.Fatal(err)
		}
		if d.Allowed != st.allowed || d.Remaining != st.remaining {
			t.Errorf("step %d at %s: allowed=%v remaining=%d, want %v %d", i, st.at, d.Allowed, d.Remaining, st.allowed, st.remaining)
		}
		if !d.Allowed && d.RetryAfter <= 0 {
			t.Errorf("step %d: denied without a Retry-After", i)
		}
	}
}

func TestLimitValidate(t *testing.T) {
	cases := []struct {
		lim ratelimit.Limit
		ok  bool
	}{
		{ratelimit.Limit{Rate: 100, Burst: 20}, true},
		{ratelimit.Limit{Rate: 0, Burst: 1}, false},
		{ratelimit.Limit{Rate: 1, Burst: 0}, false},
		{ratelimit.Limit{Rate: 0.0001, Burst: 10}, false}, // refills in 27h
	}
	for _, c := range cases {
		if err := c.lim.Validate(); (err == nil) != c.ok {
			t.Errorf("%+v.Validate() = %v, want ok=%v", c.lim, err, c.ok)
		}
	}
}

// stores returns each shared store twice, as two gateway instances would
// hold them (separate connections to the same NATS / database).
func stores(t *testing.T) map[string][2]ratelimit.Store {
	emb, _, js1 := testenv.JetStream(t)
	_, js2 := testenv.Connect(t, emb.URL)
	ctx := context.Background()
	kv := func(js jetstream.JetStream) ratelimit.Store {
		s, err := ratelimit.NewKV(ctx, js, "", 1)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	pg := func() ratelimit.Store {
		s, err := ratelimit.NewPostgres(testenv.Pool(t))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	return map[string][2]ratelimit.Store{
		"nats-kv":  {kv(js1), kv(js2)},
		"postgres": {pg(), pg()},
	}
}

// TestInstancesTogetherAdmitAtMostLimitPlusBurst hammers one bucket from
// two instances of each shared store and checks the admitted count.
func TestInstancesTogetherAdmitAtMostLimitPlusBurst(t *testing.T) {
	lim := ratelimit.Limit{Rate: 50, Burst: 10}
	for name, pair := range stores(t) {
		t.Run(name, func(t *testing.T) {
			bucket := "caller-1:orders:" + name
			var admitted, denied atomic.Int64
			start := time.Now()
			var wg sync.WaitGroup
			for w := range 8 {
				s := pair[w%2]
				wg.Go(func() {
					for time.Since(start) < 400*time.Millisecond {
						d, err := s.Take(context.Background(), bucket, time.Now(), lim)
						if err != nil {
							t.Error(err)
							return
						}
						if d.Allowed {
							admitted.Add(1)
						} else {
							denied.Add(1)
						}
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			bound := int64(lim.Rate*elapsed.Seconds()) + int64(lim.Burst) + 1
			if admitted.Load() > bound {
				t.Errorf("admitted %d in %s, more than burst + rate·t = %d", admitted.Load(), elapsed, bound)
			}
			if admitted.Load() < int64(lim.Burst) || denied.Load() == 0 {
				t.Errorf("admitted %d, denied %d: the test did not reach the limit", admitted.Load(), denied.Load())
			}
		})
	}
}

type failing struct{}

func (failing) Take(context.Context, string, time.Time, ratelimit.Limit) (ratelimit.Decision, error) {
	return ratelimit.Decision{}, context.DeadlineExceeded
}

// TestStoreDownFallsBackToLocalLimits checks the documented failure
// direction, with a real store made unavailable and with a failing one.
func TestStoreDownFallsBackToLocalLimits(t *testing.T) {
	emb, _, js := testenv.JetStream(t)
	kv, err := ratelimit.NewKV(context.Background(), js, "", 1)
	if err != nil {
		t.Fatal(err)
	}
	emb.Shutdown() // NATS is gone
	lim := ratelimit.Limit{Rate: 1, Burst: 2}
	for name, store := range map[string]ratelimit.Store{"nats down": kv, "store errors": failing{}} {
		t.Run(name, func(t *testing.T) {
			l, err := ratelimit.New(store, ratelimit.WithTimeout(100*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			var got []bool
			for range 3 {
				d := l.Allow(context.Background(), "b", lim)
				if !d.Fallback {
					t.Fatalf("decision %+v not marked as fallback", d)
				}
				got = append(got, d.Allowed)
			}
			if !got[0] || !got[1] || got[2] {
				t.Errorf("local limits admitted %v, want [true true false] (burst 2)", got)
			}
		})
	}
}

// BenchmarkStores measures one decision on each store (the choice of KV
// as default rests on it): sequential and parallel on distinct buckets,
// and parallel on one contended bucket.
func BenchmarkStores(b *testing.B) {
	emb := testenv.NATS(b)
	_, js := testenv.Connect(b, emb.URL)
	kv, err := ratelimit.NewKV(context.Background(), js, "", 1)
	if err != nil {
		b.Fatal(err)
	}
	pg, err := ratelimit.NewPostgres(testenv.Pool(b))
	if err != nil {
		b.Fatal(err)
	}
	lim := ratelimit.Limit{Rate: 1e6, Burst: 1e6}
	for _, s := range []struct {
		name  string
		store ratelimit.Store
	}{{"local", ratelimit.NewLocal()}, {"nats-kv", kv}, {"postgres", pg}} {
		b.Run(s.name+"/distinct", func(b *testing.B) {
			var n atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				bucket := "bench-" + s.name + "-" + time.Now().String() + "-" + string(rune('a'+n.Add(1)))
				for pb.Next() {
					if _, err := s.store.Take(context.Background(), bucket, time.Now(), lim); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
		b.Run(s.name+"/contended", func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := s.store.Take(context.Background(), "hot-"+s.name, time.Now(), lim); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// TestLeasingInstancesTogetherAdmitAtMostLimitPlusBurst runs two Limiters
// (two instances, own NATS connections) that lease slices of one shared
// KV bucket: from an idle bucket they admit at most burst + rate·t when
// saturated, and under the limit most decisions make no round trip.
func TestLeasingInstancesTogetherAdmitAtMostLimitPlusBurst(t *testing.T) {
	pair := stores(t)["nats-kv"]
	cases := []struct {
		name      string
		lim       ratelimit.Limit
		maxLease  int
		pace      time.Duration // pause between a worker's requests
		saturated bool          // the load exceeds the limit
	}{
		{"saturated", ratelimit.Limit{Rate: 400, Burst: 80}, 20, 0, true},
		{"under the limit", ratelimit.Limit{Rate: 20000, Burst: 4000}, 256, time.Millisecond, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if c := ratelimit.MaxLease(tc.lim, 250*time.Millisecond); c != tc.maxLease {
				t.Fatalf("MaxLease = %d, want %d", c, tc.maxLease)
			}
			var limiters [2]*ratelimit.Limiter
			for i, s := range pair {
				l, err := ratelimit.New(s)
				if err != nil {
					t.Fatal(err)
				}
				limiters[i] = l
			}
			bucket := "leased-" + tc.name
			var admitted, denied atomic.Int64
			start := time.Now()
			var wg sync.WaitGroup
			for w := range 8 {
				l := limiters[w%2]
				wg.Go(func() {
					for time.Since(start) < 500*time.Millisecond {
						d := l.Allow(context.Background(), bucket, tc.lim)
						switch {
						case d.Fallback:
							t.Error("decided by the fallback: the store failed")
							return
						case d.Allowed:
							admitted.Add(1)
						case d.RetryAfter <= 0:
							t.Error("denied without a Retry-After")
							return
						default:
							denied.Add(1)
						}
						time.Sleep(tc.pace)
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			bound := int64(tc.lim.Rate*elapsed.Seconds()) + int64(tc.lim.Burst) + 1
			calls := limiters[0].StoreCalls() + limiters[1].StoreCalls()
			t.Logf("admitted %d, denied %d in %s (bound %d), %d store calls", admitted.Load(), denied.Load(), elapsed, bound, calls)
			if admitted.Load() > bound {
				t.Errorf("admitted %d in %s, more than burst + rate·t = %d", admitted.Load(), elapsed, bound)
			}
			if tc.saturated && (admitted.Load() < int64(tc.lim.Burst) || denied.Load() == 0) {
				t.Errorf("admitted %d, denied %d: the test did not reach the limit", admitted.Load(), denied.Load())
			}
			if !tc.saturated && denied.Load() > 0 {
				t.Errorf("denied %d requests under the limit", denied.Load())
			}
			if total := admitted.Load() + denied.Load(); calls*4 > total {
				t.Errorf("%d store calls for %d decisions: leases are not used", calls, total)
			}
		})
	}
}

func TestTakeNGrantsWhatTheBucketHolds(t *testing.T) {
	lim := ratelimit.Limit{Rate: 10, Burst: 5}
	t0 := time.Unix(1_000_000, 0)
	steps := []struct {
		at        time.Duration
		ask       int
		granted   int
		remaining int
	}{
		{0, 3, 3, 2},
		{0, 3, 2, 0}, // only two left: a partial grant
		{0, 1, 0, 0},
		{250 * time.Millisecond, 5, 2, 0}, // refilled two
		{10 * time.Second, 9, 5, 0},       // full again, never beyond the burst
	}
	s := ratelimit.NewLocal()
	for i, st := range steps {
		got, d, err := s.TakeN(context.Background(), "b", t0.Add(st.at), lim, st.ask)
		if err != nil {
			t.Fatal(err)
		}
		if got != st.granted || d.Allowed != (st.granted > 0) || d.Remaining != st.remaining {
			t.Errorf("step %d: granted %d (allowed %v, remaining %d), want %d (remaining %d)", i, got, d.Allowed, d.Remaining, st.granted, st.remaining)
		}
	}
}
