package broker

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ClusterConfig configures an in-process JetStream cluster: several
// embedded nats-server nodes routed to each other on loopback ports. It
// exists for tests and demonstrations of R3 streams and node failures; a
// production cluster runs nats-server processes (deploy/nats).
type ClusterConfig struct {
	// Dir holds one JetStream store directory per node (Dir/<node name>).
	// Required. A node restarted with Restart reuses its directory.
	Dir string
	// Nodes is the cluster size (default 3; JetStream needs a majority of
	// nodes up to elect its meta leader and every R3 stream leader).
	Nodes int
	// Name is the cluster name (default "tradewind"); nodes are named
	// <Name>-1 … <Name>-<Nodes>.
	Name string
	// Host is the loopback address every node listens on (default 127.0.0.1).
	Host string
	// SyncAlways fsyncs every write on every node (see EmbeddedConfig).
	SyncAlways bool
	// Debug enables the servers' own logging.
	Debug bool
}

// Cluster is a running in-process JetStream cluster. Each node keeps its
// client and route ports across Stop and Restart, so clients given URL()
// reconnect to a restarted node and peers re-establish their routes.
type Cluster struct {
	cfg   ClusterConfig
	mu    sync.Mutex
	nodes []*Embedded // nil while a node is stopped
	ecfgs []EmbeddedConfig
	urls  []string
}

// StartCluster starts every node and waits (up to readyTimeout) until the
// nodes route to each other and JetStream has elected a meta leader that
// every node follows. On error the nodes already started are shut down.
func StartCluster(cfg ClusterConfig, readyTimeout time.Duration) (*Cluster, error) {
	if cfg.Dir == "" {
		return nil, errors.New("embedded cluster: a store directory is required")
	}
	if cfg.Nodes == 0 {
		cfg.Nodes = 3
	}
	if cfg.Nodes < 1 {
		return nil, fmt.Errorf("embedded cluster: want at least one node, got %d", cfg.Nodes)
	}
	if cfg.Name == "" {
		cfg.Name = "tradewind"
	}
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	// Ports are chosen up front: every node's routes name every peer, and
	// a restarted node must come back on the ports its peers and clients
	// know. (A port taken between choosing and listening fails the start.)
	ports, err := freePorts(cfg.Host, 2*cfg.Nodes)
	if err != nil {
		return nil, fmt.Errorf("embedded cluster: %w", err)
	}
	routes := make([]string, cfg.Nodes)
	for i := range cfg.Nodes {
		routes[i] = "nats://" + net.JoinHostPort(cfg.Host, strconv.Itoa(ports[2*i+1]))
	}
	c := &Cluster{cfg: cfg, nodes: make([]*Embedded, cfg.Nodes)}
	for i := range cfg.Nodes {
		name := fmt.Sprintf("%s-%d", cfg.Name, i+1)
		c.ecfgs = append(c.ecfgs, EmbeddedConfig{
			Dir:         filepath.Join(cfg.Dir, name),
			Host:        cfg.Host,
			Port:        ports[2*i],
			SyncAlways:  cfg.SyncAlways,
			ServerName:  name,
			ClusterName: cfg.Name,
			ClusterPort: ports[2*i+1],
			Routes:      routes,
			Debug:       cfg.Debug,
		})
		c.urls = append(c.urls, "nats://"+net.JoinHostPort(cfg.Host, strconv.Itoa(ports[2*i])))
	}
	for i := range c.nodes {
		if err := c.Restart(i); err != nil {
			c.Shutdown()
			return nil, err
		}
	}
	if err := c.WaitReady(readyTimeout); err != nil {
		c.Shutdown()
		return nil, err
	}
	return c, nil
}

// URLs are the client URLs of every node, running or not.
func (c *Cluster) URLs() []string { return append([]string(nil), c.urls...) }

// URL is URLs joined by commas: the form NATS_URL and nats.Connect take.
func (c *Cluster) URL() string { return strings.Join(c.urls, ",") }

// Stop shuts node i down and waits until it has stopped. Its store
// directory is kept for Restart.
func (c *Cluster) Stop(i int) {
	c.mu.Lock()
	n := c.nodes[i]
	c.nodes[i] = nil
	c.mu.Unlock()
	if n != nil {
		n.Shutdown()
	}
}

// Restart starts node i again (or for the first time) on its ports and
// store directory. It does not wait for the node to catch up: use
// WaitReady, and the streams' replica state, for that.
func (c *Cluster) Restart(i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nodes[i] != nil {
		return fmt.Errorf("embedded cluster: node %s is running", c.ecfgs[i].ServerName)
	}
	n, err := StartEmbedded(c.ecfgs[i])
	if err != nil {
		return fmt.Errorf("embedded cluster: node %s: %w", c.ecfgs[i].ServerName, err)
	}
	c.nodes[i] = n
	return nil
}

// WaitReady waits until every running node has routes to every other
// running node, a meta leader is elected and every running node's view of
// the JetStream meta group is current.
func (c *Cluster) WaitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		why := c.notReady()
		if why == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("embedded cluster: not ready after %s: %s", timeout, why)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// notReady says why the cluster is not ready ("" when it is).
func (c *Cluster) notReady() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var running []*Embedded
	for _, n := range c.nodes {
		if n != nil {
			running = append(running, n)
		}
	}
	leader := false
	for _, n := range running {
		s := n.Server
		if !s.JetStreamEnabled() {
			return s.Name() + ": JetStream not enabled yet"
		}
		// With a route pool, NumRoutes counts connections, not peers;
		// at least one per peer is what matters.
		if s.NumRoutes() < len(running)-1 {
			return fmt.Sprintf("%s: %d routes, want at least %d", s.Name(), s.NumRoutes(), len(running)-1)
		}
		if !s.JetStreamIsCurrent() {
			return s.Name() + ": JetStream meta group not current"
		}
		leader = leader || s.JetStreamIsLeader()
	}
	if !leader {
		return "no JetStream meta leader"
	}
	return ""
}

// Shutdown stops every running node.
func (c *Cluster) Shutdown() {
	for i := range c.nodes {
		c.Stop(i)
	}
}

// freePorts returns n distinct free TCP ports on host. They are held open
// together while choosing, so they are distinct; another process may
// still take one before the node listens on it.
func freePorts(host string, n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, fmt.Errorf("choose a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
