package web_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tradewind/tradewind/web"
)

// initialRouteBudget is the most JavaScript, gzipped, that the console's
// first view (/orders) may load before it shows: the entry chunk, its
// static imports, and the route's lazy chunk with its own.
const initialRouteBudget = 120 * 1024

func TestConsoleIsServedAtRootAndItsRoutes(t *testing.T) {
	mux := http.NewServeMux()
	web.Register(mux, web.Config{})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	var index string
	for _, path := range []string{"/", "/orders", "/orders/0b6f5c1e-8a44-4a4e-9a43-1f0f7e3f9d10", "/notifications", "/ops", "/analytics", "/catalog"} {
		body, res := fetch(t, srv.URL+path)
		if res.StatusCode != http.StatusOK || !strings.Contains(body, `<div id="root">`) {
			t.Fatalf("GET %s: %d, want the console's index.html", path, res.StatusCode)
		}
		if cc := res.Header.Get("Cache-Control"); cc != "no-cache" {
			t.Errorf("GET %s: Cache-Control %q, want no-cache", path, cc)
		}
		index = body
	}
	script := regexp.MustCompile(`src="(/assets/[^"]+\.js)"`).FindStringSubmatch(index)
	if script == nil {
		t.Fatalf("no entry script in index.html:\n%s", index)
	}
	_, res := fetch(t, srv.URL+script[1])
	if res.StatusCode != http.StatusOK || !strings.Contains(res.Header.Get("Cache-Control"), "immutable") ||
		!strings.Contains(res.Header.Get("Content-Type"), "javascript") {
		t.Fatalf("GET %s: %d %q %q, want 200 JavaScript cached as immutable", script[1], res.StatusCode,
			res.Header.Get("Content-Type"), res.Header.Get("Cache-Control"))
	}
	if _, res := fetch(t, srv.URL+"/assets/nope-0000.js"); res.StatusCode != http.StatusNotFound || res.Header.Get("Cache-Control") != "" {
		t.Fatalf("missing asset: %d, Cache-Control %q; want an uncached 404", res.StatusCode, res.Header.Get("Cache-Control"))
	}
	if body, res := fetch(t, srv.URL+"/demo"); res.StatusCode != http.StatusOK || !strings.Contains(body, "/app/demo/main.js") {
		t.Fatalf("GET /demo: %d, want the demo page", res.StatusCode)
	}
}

func fetch(t *testing.T, url string) (string, *http.Response) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), res
}

// TestConsoleInitialRouteJSIsWithinBudget reads the build's manifest
// (embedded, so it measures exactly what the binary serves) and gzips the
// chunks the first view loads.
func TestConsoleInitialRouteJSIsWithinBudget(t *testing.T) {
	b, err := fs.ReadFile(web.Assets(), "console/manifest.json")
	if err != nil {
		t.Fatalf("the console build is missing (npm ci && npm run build in web/): %v", err)
	}
	var manifest map[string]struct {
		File    string   `json:"file"`
		Imports []string `json:"imports"`
	}
	if err := json.Unmarshal(b, &manifest); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var files []string
	var walk func(string)
	walk = func(key string) {
		c, ok := manifest[key]
		if !ok {
			t.Fatalf("manifest has no %s", key)
		}
		if seen[c.File] {
			return
		}
		seen[c.File] = true
		files = append(files, c.File)
		for _, i := range c.Imports {
			walk(i)
		}
	}
	walk("index.html")
	walk("src/views/Orders.tsx")
	total := 0
	for _, f := range files {
		js, err := fs.ReadFile(web.Assets(), "console/"+f)
		if err != nil {
			t.Fatal(err)
		}
		var gz bytes.Buffer
		w, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
		_, _ = w.Write(js)
		_ = w.Close()
		total += gz.Len()
		t.Logf("%7.1f KB  %s", float64(gz.Len())/1024, f)
	}
	msg := fmt.Sprintf("console initial route JS: %.1f KB gzipped (budget %d KB)", float64(total)/1024, initialRouteBudget/1024)
	t.Log(msg)
	fmt.Println(msg) // shown by `go test -v` and in CI's log
	if total > initialRouteBudget {
		t.Fatal(msg)
	}
}

// TestConsoleUnitTests runs the console's Vitest suite (render counts, the
// live store, the Idempotency-Key retry) when Node.js and web/node_modules
// are present, so `make test` covers it.
func TestConsoleUnitTests(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("no node on PATH: the console's unit tests skipped")
	}
	if _, err := os.Stat(filepath.Join("node_modules", "vitest")); err != nil {
		t.Skip("web/node_modules missing (run npm ci in web/): the console's unit tests skipped")
	}
	if v, ok := nodeVersion(); !ok {
		t.Skipf("node %s is older than 20.19, which Vite and Vitest need: the console's unit tests skipped", v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "node_modules/vitest/vitest.mjs", "run", "--config", "console/vite.config.ts")
	cmd.Env = append(os.Environ(), "NO_COLOR=1", "CI=true")
	out, err := cmd.CombinedOutput()
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		t.Log(line)
	}
	if err != nil {
		t.Fatalf("vitest: %v", err)
	}
}

// nodeVersion is `node --version`, and whether it is at least 20.19.
func nodeVersion() (string, bool) {
	out, err := exec.Command("node", "--version").Output()
	v := strings.TrimSpace(string(out))
	var major, minor int
	if _, serr := fmt.Sscanf(v, "v%d.%d", &major, &minor); err != nil || serr != nil {
		return v, false
	}
	return v, major > 20 || major == 20 && minor >= 19
}
