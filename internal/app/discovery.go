package app

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/tradewind/tradewind/internal/runner"
)

// Version is the running build's version, reported by discovery and the
// build_info metric. cmd/tradewind sets it from its -ldflags version.
var Version = "dev"

// ServiceName is the NATS micro service name of a role.
func ServiceName(role string) string { return "tradewind-" + role }

// RoleStatus is what a role's status endpoint and its micro stats report.
type RoleStatus struct {
	Role     string          `json:"role"`
	Version  string          `json:"version"`
	PID      int             `json:"pid"`
	Host     string          `json:"host"`
	Services []ServiceStatus `json:"services"`
}

// ServiceStatus describes one service of a role; consumers add their
// counters.
type ServiceStatus struct {
	Name         string `json:"name"`
	Running      *bool  `json:"running,omitempty"`
	Applied      int64  `json:"applied,omitempty"`
	Duplicates   int64  `json:"duplicates,omitempty"`
	Retried      int64  `json:"retried,omitempty"`
	DeadLettered int64  `json:"dead_lettered,omitempty"`
}

// registerDiscovery registers each role of this process as a NATS micro
// service "tradewind-<role>" (so `nats micro ls` lists every running
// instance), with the build's version, the process in its metadata, and a
// "status" endpoint on tradewind.<role>.status answering RoleStatus (also
// returned as the endpoint's stats data). The returned stop deregisters
// every service; it is safe to call once.
func registerDiscovery(nc *nats.Conn, version string, byRole map[string][]Service, meta map[string]string) (stop func(), err error) {
	host, _ := os.Hostname()
	semver := SemVer(version)
	var started []micro.Service
	stop = func() {
		for _, s := range started {
			_ = s.Stop()
		}
	}
	names := make([]string, 0, len(byRole))
	for role := range byRole {
		names = append(names, role)
	}
	sort.Strings(names)
	for _, role := range names {
		services := byRole[role]
		status := func() RoleStatus {
			return roleStatus(role, version, host, services)
		}
		md := map[string]string{"role": role, "host": host, "pid": strconv.Itoa(os.Getpid()), "version": version}
		for k, v := range meta {
			md[k] = v
		}
		svc, err := micro.AddService(nc, micro.Config{
			Name:         ServiceName(role),
			Version:      semver,
			Description:  "Tradewind " + role + " role: " + roles[role].Help,
			Metadata:     md,
			StatsHandler: func(*micro.Endpoint) any { return status() },
		})
		if err != nil {
			stop()
			return nil, fmt.Errorf("discovery: register %s: %w", ServiceName(role), err)
		}
		started = append(started, svc)
		err = svc.AddEndpoint("status", micro.HandlerFunc(func(req micro.Request) {
			b, err := json.Marshal(status())
			if err != nil {
				_ = req.Error("500", err.Error(), nil)
				return
			}
			_ = req.Respond(b)
		}), micro.WithEndpointSubject("tradewind."+role+".status"))
		if err != nil {
			stop()
			return nil, fmt.Errorf("discovery: %s status endpoint: %w", ServiceName(role), err)
		}
	}
	return stop, nil
}

func roleStatus(role, version, host string, services []Service) RoleStatus {
	st := RoleStatus{Role: role, Version: version, PID: os.Getpid(), Host: host, Services: []ServiceStatus{}}
	for _, s := range services {
		ss := ServiceStatus{Name: s.Name()}
		if r, ok := s.(interface{ Running() bool }); ok {
			running := r.Running()
			ss.Running = &running
		}
		if r, ok := s.(interface{ Stats() *runner.Stats }); ok {
			c := r.Stats()
			ss.Applied, ss.Duplicates = c.Applied.Load(), c.Duplicates.Load()
			ss.Retried, ss.DeadLettered = c.Retried.Load(), c.DeadLettered.Load()
		}
		st.Services = append(st.Services, ss)
	}
	return st
}

// semVerish is the regular expression semver.org suggests (the one micro
// validates with).
var semVerish = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)

// SemVer turns a build version into the SemVer micro requires:
// "v1.2.3" gives "1.2.3"; anything else (dev, a git describe of an
// untagged tree) gives "0.0.0+<version with other characters as dashes>".
func SemVer(v string) string {
	if s := strings.TrimPrefix(v, "v"); semVerish.MatchString(s) {
		return s
	}
	clean := strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '-' {
			return r
		}
		return '-'
	}, v)
	if clean == "" {
		clean = "unknown"
	}
	return "0.0.0+" + clean
}
