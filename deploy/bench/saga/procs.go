package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// clkTck is the kernel's USER_HZ: /proc/<pid>/stat counts CPU in 1/100 s.
const clkTck = 100

// procTicks is utime+stime of pid in clock ticks; 0 when it is gone.
func procTicks(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return u + st
}

// procStatusKB reads a "VmRSS:"-style field of /proc/<pid>/status in kB.
func procStatusKB(pid int, field string) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			v, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return v
		}
	}
	return 0
}

// cpuSample is the CPU ticks of the processes a run is made of, at one
// moment. PostgreSQL is the backends connected to the run's database, by
// pid: a backend that appears later counts from zero, one that leaves
// takes its ticks with it (the pools keep theirs open, so little is lost).
type cpuSample struct {
	at       time.Time
	serve    int64
	nats     int64
	provider int64 // 0 when serve runs the simulator
	pg       map[int]int64
}

// CPU is CPU milliseconds per completed order, by process.
type CPU struct {
	Serve    float64 `json:"serve"`
	NATS     float64 `json:"nats_server"`
	Postgres float64 `json:"postgres"`
	// Provider is the payment provider simulator's own process, when it
	// runs apart: an external service in production, not in Total.
	Provider float64 `json:"payment_provider,omitempty"`
}

// Total is the sum of the three: serve, nats-server and PostgreSQL.
func (c CPU) Total() float64 { return c.Serve + c.NATS + c.Postgres }

func (s *stack) cpu(ctx context.Context) cpuSample {
	c := cpuSample{at: time.Now(), serve: procTicks(s.servePID()), nats: procTicks(s.natsPID()), pg: pgBackendTicks(ctx, s.pool)}
	if s.provider != nil {
		c.provider = procTicks(s.provider.pid())
	}
	return c
}

// perOrder turns two samples into CPU ms per order.
func perOrder(a, b cpuSample, orders int) CPU {
	if orders <= 0 {
		return CPU{}
	}
	var pg int64
	for pid, t := range b.pg {
		pg += t - a.pg[pid]
	}
	n := float64(orders)
	ms := func(t int64) float64 { return float64(t) * 1000 / clkTck / n }
	return CPU{Serve: ms(b.serve - a.serve), NATS: ms(b.nats - a.nats), Postgres: ms(pg), Provider: ms(b.provider - a.provider)}
}

// pgBackendTicks is the CPU ticks of every backend of pool's database but
// the one asking.
func pgBackendTicks(ctx context.Context, pool *pgxpool.Pool) map[int]int64 {
	out := map[int]int64{}
	rows, err := pool.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`)
	if err != nil {
		return out
	}
	defer rows.Close()
	for rows.Next() {
		var pid int
		if rows.Scan(&pid) == nil {
			out[pid] = procTicks(pid)
		}
	}
	return out
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// proc is a child process with its log file.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

func startProc(name, dir string, env []string, bin string, args ...string) (*proc, error) {
	logPath := filepath.Join(dir, name+".log")
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); lf.Close(); close(p.done) }()
	return p, nil
}

func (p *proc) pid() int {
	if p == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, then SIGKILL after grace.
func (p *proc) stop(grace time.Duration) {
	if p == nil || p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// tail is the last n bytes of the process's log.
func (p *proc) tail(n int64) string {
	f, err := os.Open(p.log)
	if err != nil {
		return ""
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		_, _ = f.Seek(-n, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

// waitHTTP waits until url answers 200 or the process exits.
func waitHTTP(ctx context.Context, p *proc, url string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if p.exited() {
			return fmt.Errorf("%s exited: %v\n%s", p.name, p.err, p.tail(4000))
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s not ready at %s after %s\n%s", p.name, url, within, p.tail(4000))
}
