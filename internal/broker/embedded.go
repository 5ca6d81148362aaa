// Package broker holds Tradewind's NATS plumbing: the embedded server used
// by `make run` and the tests, connections, and the JetStream topology.
package broker

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// DefaultPort is the NATS client port; the embedded server falls back to a
// free port when it is taken (as it is where a NATS server already runs).
const DefaultPort = 4222

// EmbeddedConfig configures an in-process nats-server with JetStream.
type EmbeddedConfig struct {
	// Dir holds JetStream's file store. Required.
	Dir string
	// Host is the loopback address to listen on (default 127.0.0.1).
	Host string
	// Port is the client port: 0 means DefaultPort, or a free port when it
	// is taken; -1 means a random free port.
	Port int
	// SyncInterval is how often JetStream fsyncs its files. The server's
	// default is two minutes: an acknowledged message can be lost on power
	// failure inside that window. SyncAlways fsyncs every write (safest,
	// slowest). Zero keeps the server's default.
	SyncInterval time.Duration
	SyncAlways   bool
	// ServerName names the node (default "tradewind").
	ServerName string
	// Cluster, when ClusterPort is non-zero, joins the node to a JetStream
	// cluster with the given routes (nats://host:port of peers).
	ClusterName string
	ClusterPort int
	Routes      []string
	// Debug enables the server's own logging.
	Debug bool
	// Users, when set, are the only clients the server accepts, each with
	// its permissions (internal/natsauth builds them); empty: no
	// authentication (tests of one package, a server on loopback).
	Users []*server.User
}

// Embedded is a running in-process NATS server.
type Embedded struct {
	Server *server.Server
	URL    string
}

// StartEmbedded starts nats-server in this process and waits until it
// accepts clients.
func StartEmbedded(cfg EmbeddedConfig) (*Embedded, error) {
	if cfg.Dir == "" {
		return nil, errors.New("embedded NATS: a store directory is required")
	}
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	port := cfg.Port
	switch {
	case port == 0 && portFree(cfg.Host, DefaultPort):
		port = DefaultPort
	case port == 0:
		port = -1
	}
	name := cfg.ServerName
	if name == "" {
		name = "tradewind"
	}
	opts := &server.Options{
		ServerName:   name,
		Host:         cfg.Host,
		Port:         port,
		JetStream:    true,
		StoreDir:     cfg.Dir,
		SyncInterval: cfg.SyncInterval,
		SyncAlways:   cfg.SyncAlways,
		NoSigs:       true,
		NoLog:        !cfg.Debug,
		MaxPayload:   8 << 20,
		Users:        cfg.Users,
	}
	if cfg.ClusterPort != 0 {
		opts.Cluster = server.ClusterOpts{Name: cfg.ClusterName, Host: cfg.Host, Port: cfg.ClusterPort}
		if len(cfg.Routes) > 0 {
			opts.Routes = server.RoutesFromStr(strings.Join(cfg.Routes, ","))
		}
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	if cfg.Debug {
		s.ConfigureLogger()
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, errors.New("embedded NATS: not ready for connections after 10s")
	}
	return &Embedded{Server: s, URL: s.ClientURL()}, nil
}

// Shutdown stops the server and waits for it to finish.
func (e *Embedded) Shutdown() {
	e.Server.Shutdown()
	e.Server.WaitForShutdown()
}

func portFree(host string, port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}
