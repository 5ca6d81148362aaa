package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// stack is one Tradewind system under test: a nats-server process, a fresh
// database on the shared PostgreSQL and `tradewind serve` with every role,
// each its own process so their CPU is measured apart.
type stack struct {
	cfg      *config
	dir      string
	dbName   string
	dbURL    string
	natsURL  string
	httpAddr string
	opsAddr  string // the operator listener: /readyz, /metrics, /debug/pprof/
	nats     *proc
	serve    *proc
	provider *proc // the payment provider simulator in its own process; nil: serve runs it
	pool     *pgxpool.Pool
	nc       *nats.Conn
	js       jetstream.JetStream
}

func (s *stack) servePID() int { return s.serve.pid() }
func (s *stack) natsPID() int  { return s.nats.pid() }

// startStack starts nats-server, creates the database and starts serve.
// With ownProvider, the payment provider simulator runs as its own
// process (`tradewind payment-provider`), as the external service it
// stands for, so its CPU is not counted as serve's; without, serve runs it
// in-process as `make run` does.
func startStack(ctx context.Context, cfg *config, name string, ownProvider bool) (_ *stack, err error) {
	dir, err := os.MkdirTemp("", "tw-bench-saga-")
	if err != nil {
		return nil, err
	}
	s := &stack{cfg: cfg, dir: dir, dbName: fmt.Sprintf("tw_bench_%s_%d", name, os.Getpid())}
	defer func() {
		if err != nil {
			s.close(ctx)
		}
	}()
	natsPort, err := freePort()
	if err != nil {
		return nil, err
	}
	monPort, err := freePort()
	if err != nil {
		return nil, err
	}
	s.natsURL = fmt.Sprintf("nats://127.0.0.1:%d", natsPort)
	s.nats, err = startProc("nats-server", dir, nil, cfg.natsServer, "-js", "-sd", filepath.Join(dir, "jetstream"),
		"-a", "127.0.0.1", "-p", strconv.Itoa(natsPort), "-m", strconv.Itoa(monPort))
	if err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, s.nats, fmt.Sprintf("http://127.0.0.1:%d/healthz?js-enabled-only=true", monPort), 30*time.Second); err != nil {
		return nil, err
	}

	if err := adminExec(ctx, cfg.pgBase, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", s.dbName)); err != nil {
		return nil, err
	}
	if err := adminExec(ctx, cfg.pgBase, "CREATE DATABASE "+s.dbName); err != nil {
		return nil, err
	}
	s.dbURL = fmt.Sprintf("%s/%s?sslmode=disable", cfg.pgBase, s.dbName)

	httpPort, err := freePort()
	if err != nil {
		return nil, err
	}
	s.httpAddr = fmt.Sprintf("127.0.0.1:%d", httpPort)
	opsPort, err := freePort()
	if err != nil {
		return nil, err
	}
	s.opsAddr = fmt.Sprintf("127.0.0.1:%d", opsPort)
	env := []string{}
	if ownProvider {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		s.provider, err = startProc("payment-provider", dir, nil, cfg.bin, "payment-provider", "--listen", addr,
			"--data-dir", filepath.Join(dir, "provider"))
		if err != nil {
			return nil, err
		}
		if err := waitHTTP(ctx, s.provider, "http://"+addr+"/healthz", 30*time.Second); err != nil {
			return nil, err
		}
		env = append(env, "TRADEWIND_PAYMENT_URL=http://"+addr)
	}
	s.serve, err = startProc("serve", dir, append(env,
		"TRADEWIND_DATA_DIR="+filepath.Join(dir, "data"),
		"DATABASE_URL="+s.dbURL,
		"NATS_URL="+s.natsURL,
		"TRADEWIND_HTTP_ADDR="+s.httpAddr,
		"TRADEWIND_OPS_ADDR="+s.opsAddr,
		"TRADEWIND_LOG_LEVEL=warn",
	), cfg.bin, "serve")
	if err != nil {
		return nil, err
	}
	// /readyz is on the operator listener (TRADEWIND_OPS_ADDR), not the API's.
	if err := waitHTTP(ctx, s.serve, "http://"+s.opsAddr+"/readyz", 2*time.Minute); err != nil {
		return nil, err
	}
	if s.pool, err = pgxpool.New(ctx, s.dbURL); err != nil {
		return nil, err
	}
	if s.nc, err = nats.Connect(s.natsURL, nats.Name("bench-saga")); err != nil {
		return nil, err
	}
	if s.js, err = jetstream.New(s.nc); err != nil {
		return nil, err
	}
	return s, nil
}

// close stops everything and drops the database.
func (s *stack) close(ctx context.Context) {
	if s.nc != nil {
		s.nc.Close()
	}
	if s.pool != nil {
		s.pool.Close()
	}
	s.serve.stop(15 * time.Second)
	if s.provider != nil {
		s.provider.stop(10 * time.Second)
	}
	s.nats.stop(10 * time.Second)
	if s.cfg.keep {
		fmt.Fprintf(os.Stderr, "bench-saga: kept %s and database %s\n", s.dir, s.dbName)
		return
	}
	_ = adminExec(ctx, s.cfg.pgBase, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", s.dbName))
	_ = os.RemoveAll(s.dir)
}

// peakRSS is the serve and nats-server peak resident sets in MB.
func (s *stack) peakRSS() (serve, nats float64) {
	return float64(procStatusKB(s.servePID(), "VmHWM")) / 1024, float64(procStatusKB(s.natsPID(), "VmHWM")) / 1024
}

// waitIdle waits until the system is at rest: every consumer of every
// stream has nothing pending or unacknowledged, the outbox is empty, and
// serve used under 5 % of a core over the last second; twice in a row.
func (s *stack) waitIdle(ctx context.Context, within time.Duration) error {
	deadline := time.Now().Add(within)
	quiet := 0
	for time.Now().Before(deadline) {
		t0 := procTicks(s.servePID())
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
		busy := procTicks(s.servePID())-t0 > clkTck/20
		if !busy && s.backlog(ctx) == 0 {
			quiet++
			if quiet >= 2 {
				return nil
			}
		} else {
			quiet = 0
		}
	}
	return fmt.Errorf("not idle after %s (backlog %d)", within, s.backlog(ctx))
}

// backlog is the messages still pending or unacknowledged over every
// consumer someone reads from, plus the outbox rows not yet relayed.
func (s *stack) backlog(ctx context.Context) int {
	n := 0
	for name := range s.js.StreamNames(ctx).Name() {
		st, err := s.js.Stream(ctx, name)
		if err != nil {
			continue
		}
		for ci := range st.ListConsumers(ctx).Info() {
			// An ephemeral consumer nobody pulls from is a client that
			// left (a finished `tradewind load`) and expires by itself.
			if ci.Config.Durable == "" && ci.NumWaiting == 0 && !ci.PushBound {
				continue
			}
			n += int(ci.NumPending) + ci.NumAckPending
		}
	}
	var outbox int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM core.outbox`).Scan(&outbox); err == nil {
		n += outbox
	}
	return n
}

// natsCounts is what the streams hold and what consumers were delivered,
// to derive messages per order.
func (s *stack) natsCounts(ctx context.Context) (published, delivered uint64, avgSize float64) {
	var bytes uint64
	for name := range s.js.StreamNames(ctx).Name() {
		st, err := s.js.Stream(ctx, name)
		if err != nil {
			continue
		}
		info, err := st.Info(ctx)
		if err != nil {
			continue
		}
		published += info.State.LastSeq
		bytes += info.State.Bytes
		if info.State.Msgs > 0 && name == "EVENTS" {
			avgSize = float64(info.State.Bytes) / float64(info.State.Msgs)
		}
		for ci := range st.ListConsumers(ctx).Info() {
			delivered += ci.Delivered.Consumer
		}
	}
	return published, delivered, avgSize
}

// LoadSummary is the part of `tradewind load --json` the bench reads.
type LoadSummary struct {
	Orders          int            `json:"orders"`
	Accepted        int            `json:"accepted"`
	Failed          int            `json:"failed"`
	Completed       int            `json:"completed"`
	Pending         int            `json:"pending"`
	TotalSeconds    float64        `json:"total_seconds"`
	AcceptedPerSec  float64        `json:"accepted_per_sec"`
	CompletedPerSec float64        `json:"completed_per_sec"`
	Latency         Latency        `json:"latency_ms"`
	Outcomes        map[string]int `json:"outcomes"`

	clientCPU time.Duration // the load generator's own CPU
}

// Latency percentiles in milliseconds.
type Latency struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// load runs `tradewind load --json` with args and returns its summary.
// A run that left orders pending still returns its summary with an error.
func (s *stack) load(ctx context.Context, args ...string) (*LoadSummary, error) {
	args = append([]string{"load", "--json", "--quiet", "--nats-url", s.natsURL, "--data-dir", filepath.Join(s.dir, "data")}, args...)
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, s.cfg.bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	runErr := cmd.Run()
	var sum LoadSummary
	if cmd.ProcessState != nil {
		sum.clientCPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	if err := json.Unmarshal(out.Bytes(), &sum); err != nil {
		return nil, fmt.Errorf("tradewind %s: %v: %s", strings.Join(args, " "), runErr, lastLines(errb.String(), 5))
	}
	if runErr != nil {
		return &sum, fmt.Errorf("tradewind load: %v: %s", runErr, lastLines(errb.String(), 3))
	}
	return &sum, nil
}

// check runs `tradewind check --wait` and returns the number of violations
// and its last lines.
func (s *stack) check(ctx context.Context) (violations int, report string, err error) {
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, s.cfg.bin, "check", "--wait", "1m", "--database-url", s.dbURL,
		"--nats-url", s.natsURL, "--data-dir", filepath.Join(s.dir, "data"))
	cmd.Stdout, cmd.Stderr = &out, &out
	runErr := cmd.Run()
	text := out.String()
	violations = strings.Count(text, "VIOLATION ")
	var exit *exec.ExitError
	if runErr != nil && !errors.As(runErr, &exit) {
		return 0, text, fmt.Errorf("tradewind check: %w", runErr)
	}
	if runErr != nil && violations == 0 {
		violations = -1 // failed without naming a violation
	}
	return violations, lastLines(text, 6), nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// adminExec runs one statement on the server's postgres database.
func adminExec(ctx context.Context, base, sql string) error {
	pool, err := pgxpool.New(ctx, base+"/postgres?sslmode=disable")
	if err != nil {
		return err
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, sql); err != nil {
		return fmt.Errorf("%s: %w", sql, err)
	}
	return nil
}
