// Package serveproc runs `tradewind serve` processes for the acceptance
// tests that need several of them (split roles, scale-out): start one,
// wait until it is ready, read its metrics, and a payment provider
// simulator for them to share.
package serveproc

import (
	"bufio"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tradewind/tradewind/internal/app"
	"github.com/tradewind/tradewind/internal/provider"
	"github.com/tradewind/tradewind/internal/testenv"
)

// Process is one `tradewind serve`.
type Process struct {
	Name    string
	DataDir string
	OpsAddr string // the operator listener (/readyz, /metrics), from the state file
	Stop    func() // interrupts serve and waits for it to exit (also run when the test ends)
}

// Start runs `bin serve` for p with env, p's data directory, ports the
// kernel picks (a port found free and released first may be taken by
// another package's test before serve binds it) and warn-level logs,
// copied into the test log until it stops.
func Start(t *testing.T, bin string, p *Process, env []string) {
	t.Helper()
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(), append(env,
		"TRADEWIND_DATA_DIR="+p.DataDir,
		"TRADEWIND_HTTP_ADDR=127.0.0.1:0",
		"TRADEWIND_OPS_ADDR=127.0.0.1:0",
		"TRADEWIND_LOG_LEVEL=warn",
	)...)
	lw := &LogWriter{T: t, Prefix: "serve " + p.Name + ": "}
	cmd.Stdout, cmd.Stderr = lw, lw
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("start serve %s: %v", p.Name, err)
	}
	p.Stop = sync.OnceFunc(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		lw.Stop()
	})
	t.Cleanup(p.Stop)
}

// WaitReady waits for p's state file (which names its operator listener)
// and a 200 from /readyz, and returns the checks /readyz reported.
func WaitReady(t *testing.T, p *Process) map[string]string {
	t.Helper()
	var checks map[string]string
	testenv.Eventually(t, 60*time.Second, "serve "+p.Name+" ready", func() bool {
		if p.OpsAddr == "" {
			st, err := app.ReadState(p.DataDir)
			if err != nil || st.OpsURL == "" {
				return false
			}
			p.OpsAddr = strings.TrimPrefix(st.OpsURL, "http://")
		}
		resp, err := http.Get("http://" + p.OpsAddr + "/readyz")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var body struct {
			Checks map[string]string `json:"checks"`
		}
		if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
			return false
		}
		checks = body.Checks
		return resp.StatusCode == http.StatusOK
	})
	return checks
}

// StartProvider runs the payment provider simulator on a loopback port
// and returns its URL.
func StartProvider(t *testing.T) string {
	t.Helper()
	sim, err := provider.NewServer(provider.Options{DataDir: t.TempDir(), Seed: 1, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(func() { srv.Close(); _ = sim.Close() })
	return srv.URL
}

// Scrape reads p's /metrics: each series (name{labels}) and its value.
func Scrape(p *Process) (map[string]float64, error) {
	resp, err := http.Get("http://" + p.OpsAddr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] += v
		}
	}
	return out, sc.Err()
}

// Sum adds the values of the series whose name{labels} starts with prefix
// (a family's name sums the family).
func Sum(series map[string]float64, prefix string) float64 {
	var v float64
	for k, x := range series {
		if strings.HasPrefix(k, prefix) {
			v += x
		}
	}
	return v
}

// LogWriter copies a process's output, line by line, into the test log
// until Stop (a test must not log after it ends).
type LogWriter struct {
	T       *testing.T
	Prefix  string
	mu      sync.Mutex
	stopped bool
}

func (w *LogWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
			w.T.Log(w.Prefix + l)
		}
	}
	return len(b), nil
}

// Stop ends the copying.
func (w *LogWriter) Stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
}
