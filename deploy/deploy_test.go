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
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v4"

	"github.com/tradewind/tradewind/internal/config"
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
		o, err := server.ProcessConfigFile(f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
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
	StringData map[string]any `yaml:"stringData"`
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
	f := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(f, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	o, err := server.ProcessConfigFile(f)
	if err != nil {
		t.Fatal(err)
	}
	if o.ServerName != "nats-0" || !o.SyncAlways || len(o.Routes) != 3 {
		t.Errorf("server %q sync always %v routes %d", o.ServerName, o.SyncAlways, len(o.Routes))
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

// tokenRoles are the roles that verify user tokens: only they get the
// secret.
var tokenRoles = []string{"api", "ws"}

const (
	composeSecret     = "tradewind_jwt_secret"
	composeSecretPath = "/run/secrets/" + composeSecret
	k8sSecret         = "tradewind-jwt"
)

// validateAs validates the configuration a container with env would run
// with, the secret file (when set) replaced by a real one. It reports the
// Validate error and whether the process would run in development mode.
func validateAs(t *testing.T, env map[string]string) (dev bool, err error) {
	t.Helper()
	for _, s := range config.Settings() {
		t.Setenv(s.Env, "") // restored after the test
		_ = os.Unsetenv(s.Env)
	}
	for k, v := range env {
		if k == "TRADEWIND_JWT_SECRET_FILE" {
			f := filepath.Join(t.TempDir(), "secret")
			if err := os.WriteFile(f, []byte("0123456789abcdef0123456789abcdef0123456789\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			v = f
		}
		t.Setenv(k, v)
	}
	var c config.Config
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	c.Bind(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	return c.Development(), c.Validate()
}

// TestComposeRunsInProductionModeWithTheSecret: every role starts in
// production mode; api and ws read the token secret from a compose secret
// (from the operator's environment or .env, never from the file itself),
// the other roles do not get it; NATS publishes no port and the operators'
// ports listen on loopback only.
func TestComposeRunsInProductionModeWithTheSecret(t *testing.T) {
	opts, err := cli.NewProjectOptions([]string{"../docker-compose.yml"},
		cli.WithWorkingDirectory(".."), cli.WithOsEnv, cli.WithName("tradewind"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("docker compose config: %v", err)
	}
	sec, ok := p.Secrets[composeSecret]
	if !ok || sec.Environment != "TRADEWIND_JWT_SECRET" || sec.File != "" {
		t.Errorf("secret %s = %+v, want it taken from the environment variable TRADEWIND_JWT_SECRET", composeSecret, sec)
	}
	for _, role := range config.AllRoles {
		s, err := p.GetService(role)
		if err != nil {
			t.Errorf("service %s: %v", role, err)
			continue
		}
		env := map[string]string{}
		for k, v := range s.Environment {
			if v != nil {
				env[k] = *v
			}
		}
		for _, k := range []string{"TRADEWIND_DEV", "TRADEWIND_JWT_SECRET", "TRADEWIND_JWT_PREVIOUS_SECRET"} {
			if _, set := env[k]; set {
				t.Errorf("service %s sets %s in its environment", role, k)
			}
		}
		var mounted bool
		for _, r := range s.Secrets {
			mounted = mounted || r.Source == composeSecret
		}
		wantsSecret := slices.Contains(tokenRoles, role)
		if mounted != wantsSecret || (env["TRADEWIND_JWT_SECRET_FILE"] == composeSecretPath) != wantsSecret {
			t.Errorf("service %s: secret mounted %v, TRADEWIND_JWT_SECRET_FILE %q; want the secret only for %v",
				role, mounted, env["TRADEWIND_JWT_SECRET_FILE"], tokenRoles)
		}
		t.Run(role, func(t *testing.T) {
			dev, err := validateAs(t, env)
			if err != nil || dev {
				t.Fatalf("the container's configuration: development %v, Validate: %v; want production mode, valid", dev, err)
			}
			if !wantsSecret {
				return
			}
			delete(env, "TRADEWIND_JWT_SECRET_FILE")
			if _, err := validateAs(t, env); err == nil || !strings.Contains(err.Error(), "production mode") {
				t.Errorf("without the secret: Validate = %v, want a production mode refusal", err)
			}
		})
	}
	for _, s := range p.Services {
		for _, port := range s.Ports {
			switch {
			case strings.HasPrefix(s.Name, "nats"):
				t.Errorf("service %s publishes NATS port %d on the host", s.Name, port.Target)
			case !slices.Contains(tokenRoles, s.Name) && port.HostIP != "127.0.0.1":
				t.Errorf("service %s publishes %d on %q, want 127.0.0.1 (an operator's port)", s.Name, port.Target, port.HostIP)
			}
		}
	}
}

// TestKubernetesRunsInProductionModeWithTheSecret: the pods run in
// production mode; api and ws mount the token secret that kustomize
// generates from a file the operator creates (git-ignored, never a
// committed value), readable by the image's user; no other role mounts it.
func TestKubernetesRunsInProductionModeWithTheSecret(t *testing.T) {
	b, err := os.ReadFile("k8s/kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var kust struct {
		SecretGenerator []struct {
			Name  string   `yaml:"name"`
			Files []string `yaml:"files"`
		} `yaml:"secretGenerator"`
	}
	if err := yaml.Unmarshal(b, &kust); err != nil {
		t.Fatal(err)
	}
	var secretFile string
	for _, g := range kust.SecretGenerator {
		if g.Name == k8sSecret && len(g.Files) == 1 {
			secretFile = g.Files[0]
		}
	}
	if secretFile == "" {
		t.Fatalf("kustomization.yaml does not generate the secret %s from one file", k8sSecret)
	}
	ignore, _ := os.ReadFile("k8s/.gitignore")
	if !slices.Contains(strings.Split(string(ignore), "\n"), secretFile) {
		t.Errorf("k8s/.gitignore does not list the secret file %s", secretFile)
	}

	all := manifests(t)
	shared := map[string]string{}
	for _, m := range all {
		switch {
		case m.Kind == "ConfigMap" && m.Metadata["name"] == "tradewind-config":
			for k, v := range m.Data {
				shared[k] = v.(string)
			}
		case m.Kind == "Secret":
			for k := range maps.Keys(m.StringData) {
				if strings.Contains(strings.ToLower(k), "jwt") {
					t.Errorf("%s: a committed Secret holds %s", m.file, k)
				}
			}
		}
	}
	for _, m := range all {
		if m.Kind != "Deployment" || !strings.HasPrefix(m.Metadata["name"].(string), "tradewind-") {
			continue
		}
		role := strings.TrimPrefix(m.Metadata["name"].(string), "tradewind-")
		if !slices.Contains(config.AllRoles, role) {
			continue
		}
		pod := get(m.Spec, "template", "spec")
		c := get(pod, "containers", 0)
		env := maps.Clone(shared)
		env["DATABASE_URL"] = "postgres://tradewind:x@postgres:5432/tradewind"
		list, _ := get(c, "env").([]any)
		for _, e := range list {
			name, _ := get(e, "name").(string)
			value, _ := get(e, "value").(string)
			env[name] = value
		}
		var secretVolume string
		vols, _ := get(pod, "volumes").([]any)
		for _, v := range vols {
			if get(v, "secret", "secretName") == k8sSecret {
				secretVolume, _ = get(v, "name").(string)
			}
		}
		var mountPath string
		mounts, _ := get(c, "volumeMounts").([]any)
		for _, v := range mounts {
			if get(v, "name") == secretVolume && secretVolume != "" {
				mountPath, _ = get(v, "mountPath").(string)
			}
		}
		wantsSecret := slices.Contains(tokenRoles, role)
		file := env["TRADEWIND_JWT_SECRET_FILE"]
		switch {
		case !wantsSecret && (secretVolume != "" || file != ""):
			t.Errorf("%s mounts the token secret; only %v need it", role, tokenRoles)
		case wantsSecret && (mountPath == "" || file != filepath.Join(mountPath, secretFile)):
			t.Errorf("%s: TRADEWIND_JWT_SECRET_FILE %q, secret %s mounted at %q; want the file %s in the mount", role, file, k8sSecret, mountPath, secretFile)
		case wantsSecret && get(pod, "securityContext", "fsGroup") != 65532:
			t.Errorf("%s: fsGroup %v, want 65532 so that the image's user reads the secret", role, get(pod, "securityContext", "fsGroup"))
		}
		t.Run(role, func(t *testing.T) {
			dev, err := validateAs(t, env)
			if err != nil || dev {
				t.Fatalf("the pod's configuration: development %v, Validate: %v; want production mode, valid", dev, err)
			}
		})
	}
	for _, m := range all {
		if m.Kind == "Service" && (get(m.Spec, "type") == "NodePort" || get(m.Spec, "type") == "LoadBalancer") && strings.Contains(m.file, "nats") {
			t.Errorf("%s: NATS exposed as %v", m.file, get(m.Spec, "type"))
		}
	}
}

// TestDockerfileHasNoDevelopmentDefaults: the image runs in production
// mode unless told otherwise, with no baked-in secret.
func TestDockerfileHasNoDevelopmentDefaults(t *testing.T) {
	b, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		for _, bad := range []string{"TRADEWIND_DEV", "JWT_SECRET", "--dev"} {
			if strings.Contains(line, bad) {
				t.Errorf("Dockerfile sets %s: %q", bad, line)
			}
		}
	}
}
