package api_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// cpuMeter measures the CPU time a benchmark costs, which a machine
// shared with other work disturbs far less than wall-clock throughput:
// this process (gateway, HTTP client, embedded NATS) and the PostgreSQL
// backends serving this test's database (read from /proc, so only when
// the server runs on this machine; otherwise reported as 0).
type cpuMeter struct {
	pool *pgxpool.Pool
	self time.Duration
	pg   map[int]time.Duration
}

func startCPU(pool *pgxpool.Pool) *cpuMeter {
	m := &cpuMeter{pool: pool}
	m.self, m.pg = selfCPU(), m.backends()
	return m
}

// report adds gw-cpu-µs/op and pg-cpu-µs/op for n operations.
func (m *cpuMeter) report(b *testing.B, n int) {
	if n == 0 {
		return
	}
	self := selfCPU() - m.self
	var pg time.Duration
	for pid, t := range m.backends() {
		pg += t - m.pg[pid] // a backend started since counts from zero
	}
	b.ReportMetric(float64(self.Microseconds())/float64(n), "gw-cpu-µs/op")
	b.ReportMetric(float64(pg.Microseconds())/float64(n), "pg-cpu-µs/op")
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// backends returns the CPU time so far of each backend of this database.
func (m *cpuMeter) backends() map[int]time.Duration {
	out := map[int]time.Duration{}
	rows, err := m.pool.Query(context.Background(), `SELECT pid FROM pg_stat_activity WHERE datname = current_database()`)
	if err != nil {
		return out
	}
	defer rows.Close()
	for rows.Next() {
		var pid int
		if rows.Scan(&pid) != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			continue
		}
		// Fields after the command name (which may hold spaces): state is
		// field 3, utime 14, stime 15, in clock ticks (100 per second).
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		if len(f) < 13 {
			continue
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		out[pid] = time.Duration(ut+st) * 10 * time.Millisecond
	}
	return out
}
