package loadgen

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestParseMixAcceptsWeightsAndRejectsNonsense(t *testing.T) {
	cases := []struct {
		in      string
		want    string // Mix.String(); "" means an error is wanted
		wantErr bool
	}{
		{in: DefaultMix, want: DefaultMix},
		{in: "happy=1", want: "happy=1"},
		{in: " cancel = 5 , happy=0 ", want: "cancel=5"},
		{in: "happy=70,oos=10,", want: "happy=70,oos=10"},
		{in: "", wantErr: true},
		{in: "happy=0", wantErr: true},
		{in: "happy", wantErr: true},
		{in: "happy=-1", wantErr: true},
		{in: "happy=x", wantErr: true},
		{in: "refund=3", wantErr: true},
	}
	for _, tc := range cases {
		m, err := ParseMix(tc.in)
		if tc.wantErr {
			if err == nil {
				t.Errorf("ParseMix(%q) = %v, want an error", tc.in, m)
			}
			continue
		}
		if err != nil || m.String() != tc.want {
			t.Errorf("ParseMix(%q) = %q, %v; want %q", tc.in, m.String(), err, tc.want)
		}
	}
}

func TestPickFollowsTheWeights(t *testing.T) {
	m, err := ParseMix("happy=3,cancel=1,timeout=0")
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	n := map[Class]int{}
	for range 40000 {
		n[m.pick(r)]++
	}
	if n[Timeout] != 0 || n[Happy]+n[Cancel] != 40000 {
		t.Fatalf("picked %v: a zero weight was drawn", n)
	}
	if share := float64(n[Cancel]) / 40000; share < 0.23 || share > 0.27 {
		t.Errorf("cancel drawn %.3f of the time, want about 0.25", share)
	}
}

func TestPercentilesUseNearestRank(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(101-i)*time.Millisecond) // unsorted on purpose
	}
	got := percentiles(d)
	want := Latency{P50: 50, P90: 90, P99: 99, Max: 100}
	if got != want {
		t.Errorf("percentiles = %+v, want %+v", got, want)
	}
	if (percentiles(nil) != Latency{}) {
		t.Error("percentiles of nothing are not zero")
	}
}

func TestLinesMakeEachClassTakeItsPath(t *testing.T) {
	if _, err := New(Config{Orders: 1, Seed: 3}, nil); err == nil {
		t.Fatal("New accepted a nil JetStream")
	}
	g := &Generator{cfg: Config{SKUs: 10, Customers: 5}, run: "load-t", rnd: rand.New(rand.NewPCG(3, 4))}
	g.cat = g.newCatalogue()
	total := func(c Class, byAmount bool) (sum int64, scarce int64) {
		for _, l := range g.lines(c, byAmount) {
			sum += l.Quantity * l.UnitPrice
			for _, s := range g.cat.scarce {
				if l.SKU == s {
					scarce += l.Quantity
				}
			}
		}
		return sum, scarce
	}
	for range 200 {
		if sum, scarce := total(Happy, true); sum%100 != 0 || scarce != 0 {
			t.Fatalf("happy order: total %d (must end in 00), %d scarce units", sum, scarce)
		}
		if sum, _ := total(Decline, true); sum%100 != 51 {
			t.Fatalf("decline by amount: total %d, must end in 51", sum)
		}
		if _, scarce := total(OutOfStock, false); scarce <= scarceStock {
			t.Fatalf("out-of-stock order asks %d scarce units, more than %d wanted", scarce, scarceStock)
		}
	}
}
