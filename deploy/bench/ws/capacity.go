package main

import (
	"fmt"
	"math"
	"runtime"
	"time"
)

// The capacity ramp. At 1,000 clients the fixed rates offer less than
// either server delivers, so both deliver everything and the fixed-rate
// run's messages/s ratio is 1 by construction. The ramp multiplies both
// rates (the same mix, more of it) by -capacity-factor per step until a
// step fails, then bisects between the highest passing and the lowest
// failing multiplier until they are within -capacity-resolution. A step
// passes when every publication reaches every subscriber, no connection
// is dropped, and p99 is at most -capacity-p99: a server that falls
// behind still delivers everything eventually, but its backlog, and with
// it p99, grows with every second of the step (at 10% over capacity, a
// 4 s step ends 0.4 s behind). Its capacity is the highest passing step's
// offered deliveries/s. On a shared machine one step can fail for a
// neighbour's sake, so a step is tried -capacity-tries times before it
// counts as failed: the same for both systems.

// maxSteps bounds the steps of one ramp.
const maxSteps = 16

// capacity is the ramp of one system at one client count.
type capacity struct {
	system  string
	clients int
	steps   []step
}

// step is one try of the ramp: the fixed rates × mult.
type step struct {
	mult float64
	load load
	sample
	pass bool
}

// sustained is the highest passing step; ok=false when none passed.
func (c *capacity) sustained() (best step, ok bool) {
	for _, s := range c.steps {
		if s.pass && (!ok || s.mult > best.mult) {
			best, ok = s, true
		}
	}
	return best, ok
}

// peak is the highest delivered rate of any step: above capacity, what
// the server delivers while it falls behind.
func (c *capacity) peak() float64 {
	p := 0.0
	for _, s := range c.steps {
		p = max(p, s.rate)
	}
	return p
}

// perCPUSecond is the deliveries per second of server CPU time over all
// the steps.
func (c *capacity) perCPUSecond() float64 {
	var all sample
	for _, s := range c.steps {
		all.delivered += s.delivered
		all.cpu += s.cpu
	}
	return all.perCPUSecond()
}

// ramp runs the capacity ramp on f's connections.
func ramp(f *fleet, o options) (*capacity, error) {
	c := &capacity{system: f.s.name(), clients: f.n}
	try := func(m float64) (bool, error) {
		l := load{
			personal: max(1, int(math.Round(float64(o.personalRate)*m))),
			shared:   max(1, int(math.Round(float64(o.sharedRate)*m))),
			d:        o.capStep,
		}
		for range o.capTries {
			smp, err := f.run(l, nil)
			if err != nil {
				return false, err
			}
			st := step{mult: m, load: l, sample: smp}
			st.pass = smp.lost == 0 && smp.delivered >= smp.expected && smp.p99 <= o.capP99
			c.steps = append(c.steps, st)
			verdict := "fail"
			if st.pass {
				verdict = "pass"
			}
			fmt.Printf("  %s, %d clients, rates ×%.2f (%d + %d msg/s): offered %.0f/s, delivered %d/%d at %.0f/s, p50 %s p99 %s, dropped conns %d, %.0f msgs per server CPU-s: %s\n",
				c.system, f.n, m, l.personal, l.shared, smp.offered, smp.delivered, smp.expected, smp.rate,
				smp.p50.Round(time.Millisecond), smp.p99.Round(time.Millisecond), smp.lost, smp.perCPUSecond(), verdict)
			if st.pass {
				return true, nil
			}
		}
		return false, nil
	}
	// lo < m < hi throughout: lo the highest multiplier that passed, hi
	// the lowest that failed (0 and +Inf before there is one).
	lo, hi, m := 0.0, math.Inf(1), 1.0
	for range maxSteps {
		ok, err := try(m)
		if err != nil {
			return c, err
		}
		if ok {
			lo = m
		} else {
			hi = m
		}
		switch {
		case math.IsInf(hi, 1):
			m *= o.capFactor
		case lo == 0:
			m /= o.capFactor
		case hi/lo <= o.capResolution:
			return c, nil
		default:
			m = math.Sqrt(lo * hi)
		}
	}
	return c, nil
}

// printCapacity prints the ramps side by side, one row per client count.
func printCapacity(o options, cs []*capacity) {
	fmt.Printf("\nCapacity: personal %d + shared %d msg/s scaled ×%.2f per step, bisected to within ×%.2f; a rate is sustained when a %s step delivers every publication, drops no connection and keeps p99 ≤ %s (%d tries per step), GOMAXPROCS=%d\n\n",
		o.personalRate, o.sharedRate, o.capFactor, o.capResolution, o.capStep, o.capP99, o.capTries, runtime.GOMAXPROCS(0))
	fmt.Printf("| clients | Tradewind sustained msg/s | p99 | Centrifugo sustained msg/s | p99 | ratio | Tradewind peak msg/s | Centrifugo peak msg/s | peak ratio | Tradewind msgs per server CPU-s | Centrifugo msgs per server CPU-s | ratio |\n")
	fmt.Printf("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	var order []int
	by := map[int]map[string]*capacity{}
	for _, c := range cs {
		if by[c.clients] == nil {
			by[c.clients] = map[string]*capacity{}
			order = append(order, c.clients)
		}
		by[c.clients][c.system] = c
	}
	for _, n := range order {
		tw, cf := by[n][(&tradewind{}).name()], by[n][(&centrifugo{}).name()]
		twRate, twCell, twP99 := sustainedCells(tw)
		cfRate, cfCell, cfP99 := sustainedCells(cf)
		fmt.Printf("| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", n, twCell, twP99, cfCell, cfP99, ratio(twRate, cfRate),
			cell(tw, (*capacity).peak), cell(cf, (*capacity).peak), ratio(value(tw, (*capacity).peak), value(cf, (*capacity).peak)),
			cell(tw, (*capacity).perCPUSecond), cell(cf, (*capacity).perCPUSecond),
			ratio(value(tw, (*capacity).perCPUSecond), value(cf, (*capacity).perCPUSecond)))
	}
}

// sustainedCells are a ramp's sustained rate (0 when unknown) and its
// table cells.
func sustainedCells(c *capacity) (rate float64, cell, p99 string) {
	if c == nil {
		return 0, "–", "–"
	}
	best, ok := c.sustained()
	if !ok {
		lowest := math.Inf(1)
		for _, s := range c.steps {
			lowest = min(lowest, s.offered)
		}
		return 0, fmt.Sprintf("< %.0f", lowest), "–"
	}
	return best.offered, fmt.Sprintf("%.0f", best.offered), best.p99.Round(time.Millisecond).String()
}

// value is f(c), 0 when there is no c.
func value(c *capacity, f func(*capacity) float64) float64 {
	if c == nil {
		return 0
	}
	return f(c)
}

// cell is f(c) for the table, a dash when there is no c.
func cell(c *capacity, f func(*capacity) float64) string {
	if c == nil {
		return "–"
	}
	return fmt.Sprintf("%.0f", f(c))
}

// ratio is a/b, or a dash when either is unknown.
func ratio(a, b float64) string {
	if a <= 0 || b <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2fx", a/b)
}
