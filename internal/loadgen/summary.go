package loadgen

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// Summary is the outcome of a run. Rates are measured over the main phase
// (every class but timeout, whose phase mostly waits for deadlines).
type Summary struct {
	Run             string                   `json:"run"`
	Mix             string                   `json:"mix"`
	Orders          int                      `json:"orders"`    // drawn
	Accepted        int                      `json:"accepted"`  // acknowledged by JetStream
	Failed          int                      `json:"failed"`    // publish gave up
	Completed       int                      `json:"completed"` // reached their terminal event
	Pending         int                      `json:"pending"`   // accepted, no terminal event seen in time
	PublishRetries  int64                    `json:"publish_retries"`
	SeedSeconds     float64                  `json:"seed_seconds"`
	TotalSeconds    float64                  `json:"total_seconds"`
	AcceptedPerSec  float64                  `json:"accepted_per_sec"`
	CompletedPerSec float64                  `json:"completed_per_sec"`
	Latency         Latency                  `json:"latency_ms"` // publish to first terminal event
	Hops            []Hop                    `json:"hops_ms"`    // the happy path, step by step
	Outcomes        map[string]int           `json:"outcomes"`   // "confirmed", "cancelled:<reason>", "pending", "failed"
	ByClass         map[Class]map[string]int `json:"by_class"`
	PendingOrders   []string                 `json:"pending_orders,omitempty"` // up to 20
	Notes           []string                 `json:"notes,omitempty"`
}

// Hop is the time from one saga event to the next (from the command's
// publish to orders.placed for the first) over the orders that had both.
type Hop struct {
	From    string  `json:"from"`
	To      string  `json:"to"`
	Orders  int     `json:"orders"`
	Latency Latency `json:"latency"`
}

// hopLatencies measures each hop over the orders.
func hopLatencies(orders []*order) []Hop {
	out := make([]Hop, 0, len(hops))
	for _, h := range hops {
		var d []time.Duration
		for _, o := range orders {
			from, ok := o.stored[h[0]]
			if h[0] == "publish" {
				from, ok = o.sent, !o.sent.IsZero()
			}
			to, ok2 := o.stored[h[1]]
			if ok && ok2 {
				d = append(d, max(0, to.Sub(from)))
			}
		}
		out = append(out, Hop{From: h[0], To: h[1], Orders: len(d), Latency: percentiles(d)})
	}
	return out
}

// Latency percentiles in milliseconds.
type Latency struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func (g *Generator) summarize(start, seeded time.Time, mix Mix) *Summary {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := &Summary{
		Run: g.run, Mix: mix.String(), PublishRetries: g.retries.Load(),
		SeedSeconds:  seeded.Sub(start).Seconds(),
		TotalSeconds: time.Since(start).Seconds(),
		Outcomes:     map[string]int{}, ByClass: map[Class]map[string]int{},
	}
	var lat []time.Duration
	var first, lastAck, lastDone time.Time
	mainAccepted, mainDone := 0, 0
	ids := make([]string, 0, len(g.orders))
	for id := range g.orders {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		o := g.orders[id]
		s.Orders++
		outcome := o.outcome
		switch {
		case o.failed:
			s.Failed++
			outcome = "failed"
		case o.acked.IsZero():
			outcome = "not sent"
		case !o.done:
			s.Accepted++
			s.Pending++
			if outcome == "" {
				outcome = "pending"
			}
			if len(s.PendingOrders) < 20 {
				s.PendingOrders = append(s.PendingOrders, o.id)
			}
		default:
			s.Accepted++
			s.Completed++
			lat = append(lat, o.terminal.Sub(o.sent))
		}
		s.Outcomes[outcome]++
		if s.ByClass[o.class] == nil {
			s.ByClass[o.class] = map[string]int{}
		}
		s.ByClass[o.class][outcome]++
		if o.class == Timeout || o.sent.IsZero() {
			continue
		}
		if first.IsZero() || o.sent.Before(first) {
			first = o.sent
		}
		if !o.acked.IsZero() {
			mainAccepted++
			if o.acked.After(lastAck) {
				lastAck = o.acked
			}
		}
		if o.done {
			mainDone++
			if o.terminal.After(lastDone) {
				lastDone = o.terminal
			}
		}
	}
	if d := lastAck.Sub(first).Seconds(); d > 0 {
		s.AcceptedPerSec = float64(mainAccepted) / d
	}
	if d := lastDone.Sub(first).Seconds(); d > 0 {
		s.CompletedPerSec = float64(mainDone) / d
	}
	s.Latency = percentiles(lat)
	all := make([]*order, 0, len(ids))
	for _, id := range ids {
		all = append(all, g.orders[id])
	}
	s.Hops = hopLatencies(all)
	return s
}

func percentiles(d []time.Duration) Latency {
	if len(d) == 0 {
		return Latency{}
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	at := func(p float64) float64 {
		i := int(p*float64(len(d))+0.5) - 1
		i = max(0, min(i, len(d)-1))
		return ms(d[i])
	}
	return Latency{P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: ms(d[len(d)-1])}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Print writes the summary for people.
func (s *Summary) Print(w io.Writer) {
	fmt.Fprintf(w, "run %s  mix %s\n", s.Run, s.Mix)
	fmt.Fprintf(w, "orders     %d drawn, %d accepted, %d failed, %d completed, %d pending (publish retries %d)\n",
		s.Orders, s.Accepted, s.Failed, s.Completed, s.Pending, s.PublishRetries)
	fmt.Fprintf(w, "time       %.1fs seeding, %.1fs in all\n", s.SeedSeconds, s.TotalSeconds)
	fmt.Fprintf(w, "throughput %.1f orders/s accepted, %.1f orders/s completed (main phase)\n", s.AcceptedPerSec, s.CompletedPerSec)
	fmt.Fprintf(w, "latency    p50 %s  p90 %s  p99 %s  max %s  (publish to terminal event)\n",
		fmtMS(s.Latency.P50), fmtMS(s.Latency.P90), fmtMS(s.Latency.P99), fmtMS(s.Latency.Max))
	for _, h := range s.Hops {
		if h.Orders > 0 {
			fmt.Fprintf(w, "  hop      %-20s -> %-20s p50 %-9s p99 %-9s (%d orders)\n",
				h.From, h.To, fmtMS(h.Latency.P50), fmtMS(h.Latency.P99), h.Orders)
		}
	}
	fmt.Fprintf(w, "outcomes   %s\n", counts(s.Outcomes))
	for _, c := range Classes {
		if m, ok := s.ByClass[c]; ok {
			fmt.Fprintf(w, "  %-8s %s\n", c, counts(m))
		}
	}
	if len(s.PendingOrders) > 0 {
		fmt.Fprintf(w, "pending    %s\n", strings.Join(s.PendingOrders, " "))
	}
	for _, n := range s.Notes {
		fmt.Fprintf(w, "note       %s\n", n)
	}
}

func fmtMS(v float64) string {
	return time.Duration(v * float64(time.Millisecond)).Round(100 * time.Microsecond).String()
}

func counts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}
