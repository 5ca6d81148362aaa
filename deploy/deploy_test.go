// Package deploy_test checks the deployment files: docker-compose.yml
// loads as `docker compose config` would load it, the NATS configurations
// parse with nats-server's own parser, every Kubernetes manifest decodes
// with the fields the roles need, and the Prometheus rules are valid
// (promtool when installed, a structural check always).
package deploy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/nats-io/nats-server/v2/server"
	"go.yaml.in/yaml/v4"

	"github.com/tradewind/tradewind/internal/config"
	"github.com/tradewind/tradewind/internal/natsauth"
)

func TestComposeFileLoads(t *testing.T) {
	opts, err := cli.NewProjectOptions([]string{"../docker-compose.yml"},
		cli.WithWorkingDirectory(".."), cli.WithOsEnv, cli.WithName("tradewind"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("docker compose config: %v", err)
	}
	want := []string{"nats-1", "nats-2", "nats-3", "postgres", "migrate", "payment-provider", "prometheus", "grafana"}
	want = append(want, config.AllRoles...)
	for _, name := range want {
		if _, err := p.GetService(name); err != nil {
			t.Errorf("service %s: %v", name, err)
		}
	}
	for _, role := range config.AllRoles {
		s, err := p.GetService(role)
		if err != nil {
			continue
		}
		env := s.Environment
		if v := env["TRADEWIND_ROLES"]; v == nil || *v != role {
			t.Errorf("service %s runs roles %v, want %s", role, deref(v), role)
		}
		if v := env["TRADEWIND_STREAM_REPLICAS"]; v == nil || *v != "3" {
			t.Errorf("service %s: TRADEWIND_STREAM_REPLICAS = %v, want 3 on the cluster", role, deref(v))
		}
		if v := env["NATS_URL"]; v == nil || strings.Count(*v, "nats://") != 3 {
			t.Errorf("service %s: NATS_URL = %v, want the three nodes", role, deref(v))
		}
		if _, ok := s.DependsOn["migrate"]; !ok {
			t.Errorf("service %s does not wait for migrations", role)
		}
		if v := env["TRADEWIND_NATS_CREDENTIALS"]; v == nil || !mounts(s, "nats-auth", filepath.Dir(*v)) {
			t.Errorf("service %s: TRADEWIND_NATS_CREDENTIALS = %v, want a directory of the nats-auth volume", role, deref(v))
		}
	}
	// NATS: users from the nats-auth volume, client and monitoring ports
	// on the host's loopback only.
	if _, err := p.GetService("nats-auth"); err != nil {
		t.Error("no nats-auth service generating the NATS users")
	}
	for _, name := range []string{"nats-1", "nats-2", "nats-3"} {
		s, err := p.GetService(name)
		if err != nil {
			continue
		}
		if !mounts(s, "nats-auth", "/etc/nats-auth") {
			t.Errorf("service %s does not mount the nats-auth volume at /etc/nats-auth", name)
		}
		if _, ok := s.DependsOn["nats-auth"]; !ok {
			t.Errorf("service %s does not wait for its users", name)
		}
		for _, port := range s.Ports {
			if port.HostIP != "127.0.0.1" {
				t.Errorf("service %s publishes %d on %q, want 127.0.0.1", name, port.Target, port.HostIP)
			}
		}
	}
	// Every file a service mounts exists in the repository.
	for _, s := range p.Services {
		for _, v := range s.Volumes {
			if v.Type != "bind" {
				continue
			}
			if _, err := os.Stat(v.Source); err != nil {
				t.Errorf("service %s mounts %s: %v", s.Name, v.Source, err)
			}
		}
	}
}

// mounts reports whether s mounts the named volume at target.
func mounts(s types.ServiceConfig, volume, target string) bool {
	for _, v := range s.Volumes {
		if v.Type == "volume" && v.Source == volume && v.Target == target {
			return true
		}
	}
	return false
}

func deref(p *string) string {
	if p == nil {
		return "<unset>"
	}
	return *p
}

func TestNATSClusterConfigs(t *testing.T) {
	files, _ := filepath.Glob("nats/nats-*.conf")
	if len(files) != 3 {
		t.Fatalf("want 3 node configurations, found %v", files)
	}
	names := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		o, err := server.ProcessConfigFile(withNATSAuth(t, b))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		wantUsers(t, f, o)
		names[o.ServerName] = true
		if !o.JetStream || !o.SyncAlways {
			t.Errorf("%s: JetStream=%v sync always=%v, want both", f, o.JetStream, o.SyncAlways)
		}
		if o.Cluster.Name != "tradewind" || len(o.Routes) != 2 {
			t.Errorf("%s: cluster %q with %d routes, want tradewind with 2", f, o.Cluster.Name, len(o.Routes))
		}
	}
	if len(names) != 3 {
		t.Errorf("server names %v are not distinct", names)
	}
}

type manifest struct {
	APIVersion string         `yaml:"apiVersion"`
	Kind       string         `yaml:"kind"`
	Metadata   map[string]any `yaml:"metadata"`
	Spec       map[string]any `yaml:"spec"`
	Data       map[string]any `yaml:"data"`
	file       string
}

func manifests(t *testing.T) []manifest {
	t.Helper()
	files, _ := filepath.Glob("k8s/*.yaml")
	if len(files) == 0 {
		t.Fatal("no manifests in k8s/")
	}
	var out []manifest
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for i := 0; ; i++ {
			var m manifest
			err := dec.Decode(&m)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s document %d: %v", f, i, err)
			}
			if m.APIVersion == "" || m.Kind == "" {
				t.Errorf("%s document %d: apiVersion %q kind %q", f, i, m.APIVersion, m.Kind)
			}
			if m.Kind != "Kustomization" && m.Metadata["name"] == nil {
				t.Errorf("%s document %d (%s): no metadata.name", f, i, m.Kind)
			}
			m.file = f
			out = append(out, m)
		}
	}
	return out
}

// get walks a decoded YAML tree: keys for maps, ints for lists.
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func TestKubernetesManifests(t *testing.T) {
	all := manifests(t)
	deployments := map[string]manifest{}
	pdbs := map[string]bool{}
	var nats *manifest
	for i, m := range all {
		switch m.Kind {
		case "Deployment":
			deployments[m.Metadata["name"].(string)] = m
		case "PodDisruptionBudget":
			pdbs[m.Metadata["name"].(string)] = true
		case "StatefulSet":
			if m.Metadata["name"] == "nats" {
				nats = &all[i]
			}
		}
	}
	for _, role := range config.AllRoles {
		name := "tradewind-" + role
		d, ok := deployments[name]
		if !ok {
			t.Errorf("no Deployment %s", name)
			continue
		}
		if !pdbs[name] {
			t.Errorf("no PodDisruptionBudget for %s", name)
		}
		c := get(d.Spec, "template", "spec", "containers", 0)
		checks := map[string]any{
			"liveness /healthz": get(c, "livenessProbe", "httpGet", "path"),
			"readiness /readyz": get(c, "readinessProbe", "httpGet", "path"),
			"role env":          get(c, "env", 0, "value"),
		}
		want := map[string]any{"liveness /healthz": "/healthz", "readiness /readyz": "/readyz", "role env": role}
		for k, v := range checks {
			if v != want[k] {
				t.Errorf("%s: %s = %v, want %v", name, k, v, want[k])
			}
		}
		// Its own NATS password only, where TRADEWIND_NATS_CREDENTIALS points.
		if get(d.Spec, "template", "spec", "volumes", 1, "secret", "secretName") != "tradewind-nats-credentials" ||
			get(d.Spec, "template", "spec", "volumes", 1, "secret", "items", 0, "key") != role ||
			get(d.Spec, "template", "spec", "volumes", 1, "secret", "items", 1) != nil ||
			get(c, "volumeMounts", 1, "mountPath") != "/run/nats-auth/credentials" {
			t.Errorf("%s: want the tradewind-nats-credentials Secret's key %s (only) at /run/nats-auth/credentials", name, role)
		}
		for _, r := range []string{"requests", "limits"} {
			if get(c, "resources", r, "memory") == nil || get(c, "resources", r, "cpu") == nil {
				t.Errorf("%s: resources.%s needs cpu and memory", name, r)
			}
		}
	}
	if nats == nil {
		t.Fatal("no NATS StatefulSet")
	}
	if r := get(nats.Spec, "replicas"); r != 3 {
		t.Errorf("NATS replicas = %v, want 3", r)
	}
	if !pdbs["nats"] {
		t.Error("no PodDisruptionBudget for NATS")
	}
	if get(nats.Spec, "template", "spec", "containers", 0, "volumeMounts", 1, "mountPath") != "/etc/nats-auth" {
		t.Error("NATS does not mount its users (the nats-auth Secret) at /etc/nats-auth")
	}
}

// TestKubernetesNATSConfigParses feeds the ConfigMap's nats.conf to
// nats-server's parser, as a pod would see it.
func TestKubernetesNATSConfigParses(t *testing.T) {
	var conf string
	for _, m := range manifests(t) {
		if m.Kind == "ConfigMap" && m.Metadata["name"] == "nats-config" {
			conf, _ = m.Data["nats.conf"].(string)
		}
	}
	if conf == "" {
		t.Fatal("no nats-config ConfigMap with nats.conf")
	}
	t.Setenv("POD_NAME", "nats-0")
	o, err := server.ProcessConfigFile(withNATSAuth(t, []byte(conf)))
	if err != nil {
		t.Fatal(err)
	}
	wantUsers(t, "nats-config ConfigMap", o)
	if o.ServerName != "nats-0" || !o.SyncAlways || len(o.Routes) != 3 {
		t.Errorf("server %q sync always %v routes %d", o.ServerName, o.SyncAlways, len(o.Routes))
	}
}

// withNATSAuth lays a node configuration out as the containers see it:
// <dir>/nats/nats.conf next to <dir>/nats-auth/auth.conf, generated as
// `tradewind nats-config` (the compose init service, or the k8s Secret)
// generates it. It returns the configuration's path.
func withNATSAuth(t *testing.T, conf []byte) string {
	t.Helper()
	dir := t.TempDir()
	auth, err := authConf()
	if err != nil {
		t.Fatal(err)
	}
	for path, b := range map[string][]byte{"nats/nats.conf": conf, "nats-auth/auth.conf": auth} {
		path = filepath.Join(dir, path)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "nats", "nats.conf")
}

// authConf is one generated auth.conf for every test (bcrypt is slow on
// purpose).
var authConf = sync.OnceValues(func() ([]byte, error) {
	ps, err := natsauth.Principals()
	if err != nil {
		return nil, err
	}
	pws := map[string]string{}
	for _, p := range ps {
		pws[p.User] = "test-password-" + p.User
	}
	return natsauth.ServerConfig(ps, pws)
})

// wantUsers checks that a node accepts only Tradewind's users, each role
// with its permissions.
func wantUsers(t *testing.T, name string, o *server.Options) {
	t.Helper()
	users := map[string]*server.User{}
	for _, u := range o.Users {
		users[u.Username] = u
	}
	for _, want := range append([]string{natsauth.UserOps, natsauth.UserAll, natsauth.ProducerPrefix + "orders"}, config.AllRoles...) {
		u, ok := users[want]
		if !ok {
			t.Errorf("%s: no NATS user %s", name, want)
			continue
		}
		if want != natsauth.UserOps && (u.Permissions == nil || u.Permissions.Publish == nil || len(u.Permissions.Publish.Allow) == 0) {
			t.Errorf("%s: user %s has no publish permissions", name, want)
		}
	}
}

// requiredAlerts are the rules issue 7 asks for, by name.
var requiredAlerts = []string{
	"TradewindHTTPErrorRateHigh", "TradewindConsumerErrorRateHigh", "TradewindConsumerLagGrowing",
	"TradewindDeadLetters", "TradewindSagaTimeoutsRising", "TradewindCircuitBreakerOpen",
}

func TestAlertRules(t *testing.T) {
	b, err := os.ReadFile("prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert  string            `yaml:"alert"`
				Expr   string            `yaml:"expr"`
				For    string            `yaml:"for"`
				Labels map[string]string `yaml:"labels"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, g := range doc.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Errorf("group %q: needs a name and rules", g.Name)
		}
		for _, r := range g.Rules {
			names = append(names, r.Alert)
			if r.Alert == "" || strings.TrimSpace(r.Expr) == "" || r.For == "" || r.Labels["severity"] == "" {
				t.Errorf("rule %q: alert, expr, for and a severity label are required", r.Alert)
			}
		}
	}
	for _, want := range requiredAlerts {
		if !slices.Contains(names, want) {
			t.Errorf("no alert %s", want)
		}
	}

	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Log("promtool not installed: structural check only (apt-get install prometheus for promtool)")
		return
	}
	for _, args := range [][]string{
		{"check", "rules", "prometheus/alerts.yml"},
		{"test", "rules", "prometheus/alerts_test.yml"},
		{"check", "config", "--syntax-only", "prometheus/prometheus.yml"},
	} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile("grafana/dashboards/tradewind.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID    string `json:"uid"`
		Panels []struct {
			Type    string `json:"type"`
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	exprs := ""
	for _, p := range d.Panels {
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs += tg.Expr + "\n"
		}
	}
	// The dashboard shows every family the issue lists.
	for _, series := range []string{
		"tradewind_http_requests_total", "tradewind_consumer_batch_size", "tradewind_consumer_processing_seconds",
		"tradewind_consumer_redeliveries_total", "tradewind_dlq_messages", "tradewind_consumer_pending",
		"tradewind_consumer_ack_pending", "tradewind_outbox_backlog", "tradewind_outbox_publish_seconds",
		"tradewind_saga_outcomes_total", "tradewind_saga_duration_seconds", "tradewind_projection_lag_seconds",
		"tradewind_ws_connections", "tradewind_ws_queue_overflows_total", "tradewind_ws_delivered_total",
		"tradewind_ratelimit_rejections_total", "tradewind_circuit_breaker_state",
	} {
		if !strings.Contains(exprs, series) {
			t.Errorf("dashboard does not chart %s", series)
		}
	}
}
