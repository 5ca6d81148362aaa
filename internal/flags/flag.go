// Package flags holds Tradewind's feature flags: gradual rollouts stored
// in the NATS KV bucket TRADEWIND_FLAGS and watched live by every
// instance.
//
// A flag is on for a customer when the customer is not on its deny-list
// and either is on its allow-list or falls inside its rollout percentage.
// The rollout is a stable hash of the flag name and the customer id
// (FNV-1a, mod 10000, compared with percent×100), so one customer gets
// the same answer on every instance and every delivery, raising the
// percentage only adds customers, and different flags pick different
// customers. An unknown flag is off.
//
// Reads (Store.Enabled) never touch the network: a watcher keeps an
// immutable in-memory snapshot current and readers load it atomically.
// Writes (Admin, `tradewind flags set`) go to the bucket and reach every
// watching instance within milliseconds.
package flags

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"regexp"
	"slices"
	"time"
)

// Flag is one feature flag as stored in the bucket (JSON, key = Name).
type Flag struct {
	Name string `json:"name"`
	// Percent of customers the flag is on for, 0..100 in steps of 0.01;
	// 100 is on for everyone, 0 off (but for the allow-list).
	Percent float64 `json:"percent"`
	// Allow lists customer ids the flag is always on for.
	Allow []string `json:"allow,omitempty"`
	// Deny lists customer ids the flag is always off for; it beats Allow.
	Deny      []string  `json:"deny,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Errors.
var (
	ErrNotFound    = errors.New("flag not found")
	ErrInvalidFlag = errors.New("invalid flag")
	ErrNoBucket    = errors.New("no flags bucket (" + Bucket + "): start `tradewind serve` once, which creates it")
)

// nameRE is what a flag name may look like: a valid KV key that reads
// well on a command line.
var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// maxListed bounds allow- and deny-lists: a flag is read into every
// instance's memory and a KV value is bounded by the server's max payload.
const maxListed = 10000

// Validate reports what is wrong with f.
func (f Flag) Validate() error {
	var errs []error
	if !nameRE.MatchString(f.Name) {
		errs = append(errs, fmt.Errorf("name %q: want lower-case letters, digits, '.', '_' or '-', at most 64", f.Name))
	}
	if math.IsNaN(f.Percent) || f.Percent < 0 || f.Percent > 100 {
		errs = append(errs, fmt.Errorf("percent %v: want 0..100", f.Percent))
	}
	if len(f.Allow) > maxListed || len(f.Deny) > maxListed {
		errs = append(errs, fmt.Errorf("allow- and deny-lists: at most %d customer ids each", maxListed))
	}
	for _, id := range slices.Concat(f.Allow, f.Deny) {
		if id == "" {
			errs = append(errs, errors.New("allow- and deny-lists: empty customer id"))
			break
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidFlag, err)
	}
	return nil
}

// Slots is the resolution of a rollout: a customer is in the rollout
// when Slot(flag, customer) < percent×100.
const Slots = 10000

// Slot places a customer of a flag in 0..Slots-1: FNV-1a 64 of the
// flag name, a NUL and the customer id. It must never change: changing it
// reshuffles who has every partially rolled-out flag.
func Slot(flag, customerID string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(flag))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(customerID))
	return h.Sum64() % Slots
}

// basisPoints is percent×100, rounded.
func basisPoints(percent float64) uint64 {
	return uint64(math.Round(min(max(percent, 0), 100) * 100))
}

// compiled is a flag prepared for the hot path.
type compiled struct {
	flag  Flag
	bps   uint64
	allow map[string]struct{}
	deny  map[string]struct{}
}

func compile(f Flag) *compiled {
	c := &compiled{flag: f, bps: basisPoints(f.Percent)}
	if len(f.Allow) > 0 {
		c.allow = make(map[string]struct{}, len(f.Allow))
		for _, id := range f.Allow {
			c.allow[id] = struct{}{}
		}
	}
	if len(f.Deny) > 0 {
		c.deny = make(map[string]struct{}, len(f.Deny))
		for _, id := range f.Deny {
			c.deny[id] = struct{}{}
		}
	}
	return c
}

// enabled decides for one customer. An empty customer id gets only the
// all-or-nothing answer: on at 100 %, off below.
func (c *compiled) enabled(customerID string) bool {
	if _, denied := c.deny[customerID]; denied {
		return false
	}
	if _, allowed := c.allow[customerID]; allowed {
		return true
	}
	switch {
	case c.bps >= Slots:
		return true
	case c.bps == 0 || customerID == "":
		return false
	}
	return Slot(c.flag.Name, customerID) < c.bps
}

// EnabledFor reports whether f is on for the customer (the same rule as
// Store.Enabled, for one flag at hand).
func (f Flag) EnabledFor(customerID string) bool { return compile(f).enabled(customerID) }

// Off answers every flag off. It is for code that builds handlers only to
// read their wiring (the saga table check) and must not be used to serve.
type Off struct{}

// Enabled is always false.
func (Off) Enabled(string, string) bool { return false }
