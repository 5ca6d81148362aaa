package cluster_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// deployedNATSConf is the production node config whose JetStream
// durability setting the test cluster copies (relative to this package).
const deployedNATSConf = "../../../deploy/nats/nats-1.conf"

// buildNATSServer compiles the nats-server module go.mod already requires
// (so it works offline and runs the server version Tradewind is tested
// against) into the test's temporary directory.
func buildNATSServer(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "nats-server")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/nats-io/nats-server/v2").CombinedOutput()
	if err != nil {
		t.Fatalf("go build nats-server: %v\n%s", err, out)
	}
	return bin
}

// deployedSyncInterval reads jetstream.sync_interval from the deployed
// node config, so the test's nodes fsync exactly as production's do.
func deployedSyncInterval(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(deployedNATSConf)
	if err != nil {
		t.Fatalf("read the deployed NATS config: %v", err)
	}
	m := regexp.MustCompile(`(?m)^\s*sync_interval:\s*(\S+)`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("%s sets no sync_interval", deployedNATSConf)
	}
	return string(m[1])
}

// startMarker begins what the test writes into a node's log each time it
// starts the node.
const startMarker = "=== test: starting"

// natsProcs is a JetStream cluster of nats-server OS processes routed to
// each other on loopback ports, each with its own config file, store
// directory and log file. Node i keeps its ports and store across kill and
// start, so clients given URL reconnect to it and peers re-route to it.
//
// Every process runs in its own process group; kill and the test's
// cleanup SIGKILL the whole group. Pdeathsig also kills a node when the
// test binary dies without running cleanups (a -timeout panic); it fires
// when the OS thread that started the node exits, which for the Go
// runtime's unlocked threads means the process.
type natsProcs struct {
	bin   string
	nodes []*natsProc

	mu sync.Mutex // guards every node's cmd, done, killed and exit
}

type natsProc struct {
	name                   string // tradewind-<i+1>: the JetStream server name
	client, route, monitor string // loopback host:port
	conf, log              string // file paths
	cmd                    *exec.Cmd
	done                   chan struct{} // closed once the process has exited
	killed                 bool          // kill signalled it: an exit without this is a crash
	exit                   *os.ProcessState
}

// startNATSProcs writes n node configs under dir, starts every node and
// registers a cleanup that SIGKILLs whatever still runs (and, on failure,
// logs the tail of every node's log).
func startNATSProcs(t *testing.T, bin, dir string, n int, syncInterval string) *natsProcs {
	t.Helper()
	addrs := freeAddrs(t, 3*n)
	c := &natsProcs{bin: bin}
	for i := range n {
		c.nodes = append(c.nodes, &natsProc{
			name:   fmt.Sprintf("tradewind-%d", i+1),
			client: addrs[3*i], route: addrs[3*i+1], monitor: addrs[3*i+2],
			conf: filepath.Join(dir, fmt.Sprintf("node-%d.conf", i+1)),
			log:  filepath.Join(dir, fmt.Sprintf("node-%d.log", i+1)),
		})
	}
	for i, nd := range c.nodes {
		var routes []string
		for j, peer := range c.nodes {
			if j != i {
				routes = append(routes, "nats://"+peer.route)
			}
		}
		// The shape of deploy/nats/nats-<i>.conf, on loopback ports.
		conf := fmt.Sprintf(`server_name: %s
listen: %s
http: %s
max_payload: 8MB
jetstream {
  store_dir: %q
  sync_interval: %s
}
cluster {
  name: tradewind
  listen: %s
  routes: [%s]
}
`, nd.name, nd.client, nd.monitor, filepath.Join(dir, nd.name), syncInterval, nd.route, strings.Join(routes, ", "))
		if err := os.WriteFile(nd.conf, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for i := range c.nodes {
			if err := c.kill(i); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
		if t.Failed() {
			for _, nd := range c.nodes {
				t.Logf("last lines of %s's log:\n%s", nd.name, tail(nd.log, 40))
			}
		}
	})
	for i := range c.nodes {
		if err := c.start(i); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// URLs are the client URLs of every node, running or not.
func (c *natsProcs) URLs() []string {
	out := make([]string, len(c.nodes))
	for i, nd := range c.nodes {
		out[i] = "nats://" + nd.client
	}
	return out
}

// URL is URLs joined by commas, the form NATS_URL takes.
func (c *natsProcs) URL() string { return strings.Join(c.URLs(), ",") }

// start runs node i's process on its config (and so its ports and store
// directory). It does not wait for the node to be ready: see waitReady.
func (c *natsProcs) start(i int) error {
	nd := c.nodes[i]
	c.mu.Lock()
	defer c.mu.Unlock()
	if nd.cmd != nil && !closed(nd.done) {
		return fmt.Errorf("start %s: already running (pid %d)", nd.name, nd.cmd.Process.Pid)
	}
	logf, err := os.OpenFile(nd.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("start %s: %w", nd.name, err)
	}
	defer logf.Close() // the child has its own descriptor
	fmt.Fprintf(logf, "%s %s at %s\n", startMarker, nd.name, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(c.bin, "-c", nd.conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", nd.name, err)
	}
	done := make(chan struct{})
	nd.cmd, nd.done, nd.killed, nd.exit = cmd, done, false, nil
	go func() {
		_ = cmd.Wait() // the exit status is read from ProcessState
		c.mu.Lock()
		nd.exit = cmd.ProcessState
		c.mu.Unlock()
		close(done)
	}()
	return nil
}

// kill SIGKILLs node i's process group — no shutdown, no lame duck, no
// final fsync — and waits until the process has exited. It is a no-op for
// a node that is not running, and an error if the node had exited by
// itself or did not die of the signal.
func (c *natsProcs) kill(i int) error {
	nd := c.nodes[i]
	c.mu.Lock()
	cmd, done := nd.cmd, nd.done
	if cmd == nil || nd.killed {
		c.mu.Unlock()
		return nil
	}
	if closed(done) {
		exit := nd.exit
		c.mu.Unlock()
		return fmt.Errorf("%s exited before it was killed: %v", nd.name, exit)
	}
	nd.killed = true
	c.mu.Unlock()
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill %s: %w", nd.name, err)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		return fmt.Errorf("%s (pid %d) still running 30s after SIGKILL", nd.name, cmd.Process.Pid)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if ws, ok := nd.exit.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		return fmt.Errorf("%s did not die of SIGKILL: %v", nd.name, nd.exit)
	}
	return nil
}

// running reports whether node i's process is alive.
func (c *natsProcs) running(i int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	nd := c.nodes[i]
	return nd.cmd != nil && !closed(nd.done)
}

// crashed describes every node that exited without being killed ("" if none).
func (c *natsProcs) crashed() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, nd := range c.nodes {
		if nd.cmd != nil && !nd.killed && closed(nd.done) {
			out = append(out, fmt.Sprintf("%s exited by itself (%v); its log ends:\n%s", nd.name, nd.exit, tail(nd.log, 20)))
		}
	}
	return strings.Join(out, "\n")
}

// waitReady waits until every running node answers its full /healthz —
// JetStream enabled, a meta leader known and the node current with it,
// and every stream and consumer replica placed on the node current — and
// has a route to every other running node. A node that exits by itself
// fails the wait at once.
func (c *natsProcs) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if why := c.crashed(); why != "" {
			return errors.New(why)
		}
		why := c.notReady()
		if why == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("NATS cluster not ready after %s: %s", timeout, why)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// notReady says why the running nodes are not ready ("" when they are).
func (c *natsProcs) notReady() string {
	var up []*natsProc
	for i, nd := range c.nodes {
		if c.running(i) {
			up = append(up, nd)
		}
	}
	hc := http.Client{Timeout: 2 * time.Second}
	for _, nd := range up {
		resp, err := hc.Get("http://" + nd.monitor + "/healthz")
		if err != nil {
			return nd.name + ": " + err.Error()
		}
		var health struct {
			Status string `json:"status"`
			Error  string `json:"error"`
		}
		err = json.NewDecoder(resp.Body).Decode(&health)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			return fmt.Sprintf("%s: /healthz %d %s %s", nd.name, resp.StatusCode, health.Status, health.Error)
		}
		resp, err = hc.Get("http://" + nd.monitor + "/routez")
		if err != nil {
			return nd.name + ": " + err.Error()
		}
		var routez struct {
			Routes []struct {
				RemoteName string `json:"remote_name"`
			} `json:"routes"`
		}
		err = json.NewDecoder(resp.Body).Decode(&routez)
		resp.Body.Close()
		if err != nil {
			return fmt.Sprintf("%s: /routez: %v", nd.name, err)
		}
		peers := map[string]bool{}
		for _, r := range routez.Routes {
			peers[r.RemoteName] = true
		}
		for _, peer := range up {
			if peer != nd && !peers[peer.name] {
				return fmt.Sprintf("%s: no route to %s", nd.name, peer.name)
			}
		}
	}
	return ""
}

// restored returns how many messages node i's log says it restored from
// its store for stream when it last started (nats-server's "Restored N
// messages for stream" notice), and whether the notice is there yet.
func (c *natsProcs) restored(i int, stream string) (int, bool) {
	b, err := os.ReadFile(c.nodes[i].log)
	if err != nil {
		return 0, false
	}
	last := string(b)
	if k := strings.LastIndex(last, startMarker); k >= 0 {
		last = last[k:]
	}
	m := regexp.MustCompile(`Restored ([\d,]+) messages for stream '[^']* > ` + regexp.QuoteMeta(stream) + `'`).FindStringSubmatch(last)
	if m == nil {
		return 0, false
	}
	n, err := strconv.Atoi(strings.ReplaceAll(m[1], ",", ""))
	return n, err == nil
}

// refusesClients reports whether nothing accepts connections on node i's
// client port: a killed node is down, not merely unready.
func (c *natsProcs) refusesClients(i int) bool {
	conn, err := net.DialTimeout("tcp", c.nodes[i].client, time.Second)
	if err != nil {
		return true
	}
	_ = conn.Close()
	return false
}

// freeAddrs returns n distinct loopback host:ports nobody listens on now.
// They are held open together while choosing, so they are distinct;
// another process may still take one before a node listens on it, which
// fails that node's start (and the test) rather than going unnoticed.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("choose a free port: %v", err)
		}
		defer l.Close()
		out = append(out, l.Addr().String())
	}
	return out
}

func closed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// tail returns the last n lines of the file at path (or why it cannot).
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
