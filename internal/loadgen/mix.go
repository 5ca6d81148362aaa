package loadgen

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
)

// Class is the path an order is meant to take. The saga decides the real
// outcome; the summary reports both.
type Class string

// Classes, in the order --mix names them.
const (
	// Happy orders in-stock SKUs for a total that ends in 00: confirmed.
	Happy Class = "happy"
	// OutOfStock asks for more of a scarce SKU than was ever restocked:
	// cancelled out_of_stock.
	OutOfStock Class = "oos"
	// Decline uses the provider's deterministic declines (a customer id
	// containing "decline", or a total ending in 51): cancelled
	// payment_declined.
	Decline Class = "decline"
	// Cancel is a happy order the customer cancels shortly after placing
	// it (before or after confirmation, as the race falls): cancelled customer.
	Cancel Class = "cancel"
	// Timeout is placed while the provider hangs (outage "timeout") for
	// longer than the order deadline: cancelled timeout.
	Timeout Class = "timeout"
	// Outage is placed during a short provider outage (503s): the breaker
	// holds its payment until the provider is back, then it is confirmed.
	Outage Class = "outage"
)

// Classes lists every class in --mix order.
var Classes = []Class{Happy, OutOfStock, Decline, Cancel, Timeout, Outage}

// Mix is a weight per class.
type Mix map[Class]int

// DefaultMix is the mix of `tradewind load` without --mix.
const DefaultMix = "happy=70,oos=10,decline=10,cancel=5,timeout=3,outage=2"

// ParseMix reads "happy=70,oos=10,...": non-negative integer weights, at
// least one positive; unnamed classes weigh 0.
func ParseMix(s string) (Mix, error) {
	m := Mix{}
	total := 0
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, val, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("mix %q: want class=weight, got %q", s, part)
		}
		c := Class(strings.TrimSpace(name))
		if !knownClass(c) {
			return nil, fmt.Errorf("mix %q: unknown class %q (known: %s)", s, c, classNames())
		}
		w, err := strconv.Atoi(strings.TrimSpace(val))
		if err != nil || w < 0 {
			return nil, fmt.Errorf("mix %q: weight of %s must be a non-negative integer, got %q", s, c, val)
		}
		m[c] = w
		total += w
	}
	if total == 0 {
		return nil, fmt.Errorf("mix %q: at least one class needs a positive weight", s)
	}
	return m, nil
}

func (m Mix) String() string {
	parts := make([]string, 0, len(Classes))
	for _, c := range Classes {
		if m[c] > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", c, m[c]))
		}
	}
	return strings.Join(parts, ",")
}

// pick draws a class by weight.
func (m Mix) pick(r *rand.Rand) Class {
	total := 0
	for _, c := range Classes {
		total += m[c]
	}
	n := r.IntN(total)
	for _, c := range Classes {
		if n < m[c] {
			return c
		}
		n -= m[c]
	}
	return Happy
}

func knownClass(c Class) bool {
	for _, k := range Classes {
		if k == c {
			return true
		}
	}
	return false
}

func classNames() string {
	s := make([]string, len(Classes))
	for i, c := range Classes {
		s[i] = string(c)
	}
	return strings.Join(s, ", ")
}
