package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"syscall"
	"time"

	"github.com/tradewind/tradewind/internal/config"
	"github.com/tradewind/tradewind/internal/metrics"
)

// startOps serves the operator endpoints, GET /metrics, GET /readyz and
// the Go profiler (/debug/pprof/: CPU, heap, goroutines, for the operator
// and `make bench-saga -profile`), on
// their own listener (TRADEWIND_OPS_ADDR, loopback by default), apart from
// the API listener the public reaches: metrics and readiness describe the
// deployment and are for Prometheus and the orchestrator only. At the
// default address a port already taken gives way to a free one (logged,
// and written to the state file), so several processes can share a host.
func startOps(addr string, ready *readiness, log *slog.Logger) (url string, stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil && addr == config.DefaultOpsAddr && errors.Is(err, syscall.EADDRINUSE) {
		host, _, _ := net.SplitHostPort(addr)
		ln, err = net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(0)))
	}
	if err != nil {
		return "", nil, fmt.Errorf("listen on TRADEWIND_OPS_ADDR %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", ready.serve)
	mux.Handle("GET /metrics", metrics.Handler())
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 2 * time.Minute, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 16 << 10} // a CPU profile takes its seconds
	go func() { _ = srv.Serve(ln) }()
	url = "http://" + ln.Addr().String()
	log.Info("operator endpoints listening (/metrics, /readyz, /debug/pprof/)", "url", url)
	return url, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}
